"""mailwire._imap.utf7: IMAP modified UTF-7 (RFC 3501 section 5.1.3).

Known vectors, round-trip properties, the strict decoder's refusals, and imapclient's codec as
an extra oracle when it is importable.
"""

from __future__ import annotations

import ast
import base64
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailwire._imap import utf7

try:
    from imapclient import imap_utf7 as imapclient_utf7
except ImportError:  # not a dependency of mailwire: the oracle tests are skipped without it
    imapclient_utf7 = None

needs_imapclient = pytest.mark.skipif(
    imapclient_utf7 is None, reason="imapclient is not importable"
)

# Any str that UTF-16 can carry: no surrogate code points.
names = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
# Names that lean on the interesting parts: "&", "-", printable ASCII, controls, astral chars.
mixed_names = st.lists(
    st.one_of(
        st.sampled_from(["&", "-", "&-", "/", ".", " ", "~", "\x7f", "\x00", "\x1f", "+", ","]),
        st.characters(min_codepoint=0x20, max_codepoint=0x7E),
        st.characters(min_codepoint=0x80, max_codepoint=0x2FF),
        st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=20,
).map("".join)

VECTORS = [
    ("", b""),
    ("INBOX", b"INBOX"),
    ("&", b"&-"),
    ("&-", b"&--"),
    ("a&b", b"a&-b"),
    ("Sent & Drafts", b"Sent &- Drafts"),
    ("~peter/mail/台北/日本語", b"~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
    ("台北", b"&U,BTFw-"),
    ("Entwürfe", b"Entw&APw-rfe"),  # Dovecot's on-disk name for the German Drafts folder
    ("Gelöschte Elemente", b"Gel&APY-schte Elemente"),
    ("Éléments envoyés", b"&AMk-l&AOk-ments envoy&AOk-s"),
    ("Отправленные", b"&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
    ("\U0001f600", b"&2D3eAA-"),  # astral: a surrogate pair
    ("ä&ö", b"&AOQ-&-&APY-"),
    ("\x00", b"&AAA-"),
    ("\x7f", b"&AH8-"),
    ("tab\there", b"tab&AAk-here"),
    (" ~", b" ~"),
]


@pytest.mark.parametrize(("name", "encoded"), VECTORS)
def test_known_vectors(name: str, encoded: bytes) -> None:
    assert utf7.encode(name) == encoded
    assert utf7.decode(encoded) == name
    assert type(utf7.decode(encoded)) is str
    assert type(utf7.encode(name)) is bytes


@given(names)
def test_round_trip(name: str) -> None:
    assert utf7.decode(utf7.encode(name)) == name


@given(mixed_names)
@example("&&&")
@example("ü&ü")
@example("-&-")
def test_round_trip_mixed(name: str) -> None:
    encoded = utf7.encode(name)
    assert utf7.decode(encoded) == name
    # The encoding is 7-bit printable ASCII only.
    assert re.fullmatch(rb"[\x20-\x7e]*", encoded)


ADJACENT_SEGMENTS = re.compile(rb"&[A-Za-z0-9+,]+-&[A-Za-z0-9+,]")


@given(st.one_of(mixed_names.map(utf7.encode), st.binary(max_size=30)))
def test_encoding_is_canonical(data: bytes) -> None:
    """Whatever decodes re-encodes to the same bytes, except that segments side by side merge."""
    try:
        name = utf7.decode(data)
    except ValueError:
        return
    again = utf7.encode(name)
    assert utf7.decode(again) == name
    if not ADJACENT_SEGMENTS.search(data):
        assert again == data


def _mutations(data: bytes) -> st.SearchStrategy[bytes]:
    if not data:
        return st.binary(max_size=3)
    return st.tuples(st.integers(0, len(data)), st.integers(0, 2), st.binary(max_size=2)).map(
        lambda edit: data[: edit[0]] + edit[2] + data[edit[0] + edit[1] :]
    )


@given(st.one_of(st.binary(max_size=40), mixed_names.map(utf7.encode).flatmap(_mutations)))
@example(b"&")
@example(b"&U,BTFw")
@example(b"\xff")
@example(b"&AGE-")
def test_decode_only_raises_valueerror(data: bytes) -> None:
    try:
        name = utf7.decode(data)
    except ValueError as exc:
        assert str(exc).startswith("invalid modified UTF-7: ")
        return
    # Anything accepted is something the RFC allows: encoding it again gives the same name.
    assert utf7.decode(utf7.encode(name)) == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"&", r"the '&' at offset 0 has no closing '-'"),
        (b"abc&U,BTFw", r"the '&' at offset 3 has no closing '-'"),
        (b"&U,BTFw-&ZeVn", r"the '&' at offset 8 has no closing '-'"),
        (b"Entw\xfcrfe", r"byte 0xfc at offset 4 is not printable"),
        (b"\xc3\xa4", r"byte 0xc3 at offset 0 is not printable"),
        (b"tab\there", r"byte 0x09 at offset 3 is not printable"),
        (b"a\x7f", r"byte 0x7f at offset 1 is not printable"),
        (b"&AOQ-\n", r"byte 0x0a at offset 5 is not printable"),
        (b"&U/BTFw-", r"'/' at offset 2 is not a modified base64 character"),
        (b"&U BTFw-", r"' ' at offset 2 is not a modified base64 character"),
        (b"&AOQ=-", r"'=' at offset 4 is not a modified base64 character"),
        (b"&A-", r"1-character base64 segment at offset 1 does not hold a whole number"),
        (b"&AO-", r"2-character base64 segment at offset 1"),
        (b"&AOQA-", r"4-character base64 segment at offset 1"),
        (b"&AOQAA-", r"5-character base64 segment at offset 1"),
        (b"&AOQAAAA-", r"7-character base64 segment at offset 1"),
        (b"&AOR-", r"segment at offset 1 ends with non-zero padding bits"),
        (b"x&AOQA5B-", r"segment at offset 2 ends with non-zero padding bits"),
        (b"&2D0-", r"segment at offset 1 is not well-formed UTF-16 \(unpaired surrogate\)"),
        (b"&3gA-", r"segment at offset 1 is not well-formed UTF-16"),
        (b"&2D3YPQ-", r"segment at offset 1 is not well-formed UTF-16"),
        (b"&AGE-", r"encodes the printable character 'a', which must be written directly"),
        (b"&ACY-", r"encodes the printable character '&'"),
        (b"&AOQAYQ-", r"encodes the printable character 'a'"),
    ],
)
def test_decode_refuses(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        utf7.decode(data)


def test_adjacent_segments_are_accepted() -> None:
    assert utf7.decode(b"&AOQ-&APY-") == "äö"
    assert utf7.encode("äö") == b"&AOQA9g-"


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(UnicodeEncodeError) as info:
        utf7.encode("ok\ud800")
    assert isinstance(info.value, ValueError)
    assert info.value.start == 2
    assert "lone surrogates" in str(info.value)
    with pytest.raises(ValueError):
        utf7.encode("\udc00\ud800")


@pytest.mark.parametrize("value", [b"INBOX", None, 5, bytearray(b"x")])
def test_encode_wants_str(value: Any) -> None:
    with pytest.raises(TypeError, match="must be str"):
        utf7.encode(value)


@pytest.mark.parametrize("value", ["INBOX", None, 5, ["&-"]])
def test_decode_wants_bytes(value: Any) -> None:
    with pytest.raises(TypeError, match="must be bytes-like"):
        utf7.decode(value)


def test_decode_accepts_any_bytes_like() -> None:
    for kind in (bytes, bytearray, memoryview):
        assert utf7.decode(kind(b"Entw&APw-rfe")) == "Entwürfe"


@given(st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=("Cs",)), min_size=1))
def test_segment_is_unpadded_modified_base64_of_utf16(name: str) -> None:
    encoded = utf7.encode(name)
    assert encoded.startswith(b"&")
    assert encoded.endswith(b"-")
    body = encoded[1:-1]
    assert b"=" not in body
    assert b"/" not in body
    standard = body.replace(b",", b"/")
    raw = base64.b64decode(standard + b"=" * (-len(standard) % 4))
    assert raw == name.encode("utf-16-be")


def test_parsers_stay_sans_io() -> None:
    tree = ast.parse(Path(utf7.__file__).read_text(encoding="utf-8"))
    forbidden = {"socket", "ssl", "select", "subprocess"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {alias.name.split(".")[0] for alias in node.names} & forbidden
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in forbidden
        elif isinstance(node, ast.Name):
            assert node.id != "print"


# ---------------------------------------------------------------------------------------------
# imapclient's codec as an extra oracle (imapclient is not a dependency: skipped without it)


@needs_imapclient
@given(st.one_of(names, mixed_names))
@example("~peter/mail/台北/日本語")
@example("&")
@example("")
def test_agrees_with_imapclient(name: str) -> None:
    encoded = utf7.encode(name)
    assert imapclient_utf7.encode(name) == encoded
    assert imapclient_utf7.decode(encoded) == name


@needs_imapclient
@pytest.mark.parametrize(("name", "encoded"), VECTORS)
def test_imapclient_agrees_on_known_vectors(name: str, encoded: bytes) -> None:
    assert imapclient_utf7.encode(name) == encoded
    assert imapclient_utf7.decode(encoded) == name


@needs_imapclient
@given(st.one_of(st.binary(max_size=30), mixed_names.map(utf7.encode).flatmap(_mutations)))
def test_imapclient_decodes_whatever_we_accept_the_same_way(data: bytes) -> None:
    try:
        name = utf7.decode(data)
    except ValueError:
        return  # imapclient's decoder is lenient; only what is valid is compared
    assert imapclient_utf7.decode(data) == name
