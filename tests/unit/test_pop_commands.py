"""The sans-IO POP3 command helpers in ``mailwire._pop.commands``.

Where the stdlib computes the same thing (APOP digests, STAT and CAPA parsing) its own methods
are the oracle, run on a bare ``poplib.POP3`` object with the network calls replaced.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import poplib as std_poplib
import time
from pathlib import Path
from typing import Any, Optional, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailwire._pop
from mailwire._pop import commands
from mailwire._pop.commands import BadReply

FORBIDDEN = "\r\n\x00"


def bare_stdlib_pop(**replies: Any) -> Any:
    """A stdlib POP3 object without a connection; ``replies`` replace its command methods."""
    pop = object.__new__(std_poplib.POP3)
    pop._debugging = 0
    pop.__dict__.update(replies)
    return pop


# -- check_command -----------------------------------------------------------------------------


@pytest.mark.parametrize("char", list(FORBIDDEN))
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_check_command_refuses_line_breaks_and_nul(char: str, where: str) -> None:
    line = {"start": char + "USER a", "middle": "USER a" + char + "b", "end": "USER a" + char}
    for candidate in (line[where], line[where].encode()):
        with pytest.raises(ValueError, match="must not contain CR, LF or NUL"):
            commands.check_command(candidate)


@pytest.mark.parametrize(
    "line",
    ["USER a\tb", "PASS \x01\x02\x1b\x7f", "PASS \x0b\x0c", "USER \u2028x\x85", "PASS ÿ€", ""],
)
def test_check_command_allows_other_controls(line: str) -> None:
    commands.check_command(line)
    commands.check_command(line.encode("utf-8"))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=20))
def test_check_command_property(text: str) -> None:
    bad = any(c in text for c in FORBIDDEN)
    for line in (text, text.encode("utf-8")):
        if bad:
            with pytest.raises(ValueError):
                commands.check_command(line)
        else:
            commands.check_command(line)


# -- APOP ----------------------------------------------------------------------------------------

RFC1939_GREETING = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"


def stdlib_apop_digest(welcome: bytes, password: str) -> Optional[str]:
    sent = []
    pop = bare_stdlib_pop(welcome=welcome, _shortcmd=sent.append)
    try:
        pop.apop("user", password)
    except std_poplib.error_proto as exc:
        assert exc.args == ("-ERR APOP not supported by server",)
        return None
    (line,) = sent
    assert line.startswith("APOP user ")
    return str(line[len("APOP user ") :])


def test_apop_rfc1939_example() -> None:
    digest = commands.apop_digest(RFC1939_GREETING, b"tanstaaf")
    assert digest == "c4c9334bac560ecc979e58001b3e22fb"  # RFC 1939, section 7
    by_hand = hashlib.md5(b"<1896.697170952@dbc.mtview.ca.us>tanstaaf").hexdigest()
    assert digest == by_hand == stdlib_apop_digest(RFC1939_GREETING, "tanstaaf")


def test_timestamp_pattern_is_the_stdlibs() -> None:
    assert commands.TIMESTAMP.pattern == std_poplib.POP3.timestamp.pattern
    assert commands.TIMESTAMP.flags == std_poplib.POP3.timestamp.flags


@pytest.mark.parametrize(
    "welcome",
    [
        b"+OK ready",
        b"+OK",
        b"-ERR <a@b>",
        b"+OK <unclosed",
        b"+OK<a>",
        b"+OK  <a> <b>",
        b"+OK x <a>>",
        b"+OK \n<a>",
        b"+OK <\n>",
        b"+OK <>",
    ],
)
def test_apop_digest_edge_cases(welcome: bytes) -> None:
    assert commands.apop_digest(welcome, b"pw") == stdlib_apop_digest(welcome, "pw")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"+OK", b" ", b"<", b">", b"a", b"\r", b"\n", b"\xff"]), max_size=20
    ).map(b"".join),
    st.text(max_size=5),
)
def test_apop_digest_equals_stdlib_on_evil_greetings(welcome: bytes, password: str) -> None:
    assert commands.apop_digest(welcome, password.encode()) == stdlib_apop_digest(welcome, password)


@pytest.mark.parametrize(
    "welcome",
    [
        b"+OK " + b"<" * 1_000_000,
        b"+OK " + b"<" * 500_000 + b">" * 500_000,
        b"+OK " + b"<a" * 500_000,
        b"+OK" + b" " * 1_000_000,
    ],
)
def test_apop_digest_bounded_time(welcome: bytes) -> None:
    started = time.monotonic()
    mine = commands.apop_digest(welcome, b"pw")
    assert time.monotonic() - started < 2
    started = time.monotonic()
    theirs = stdlib_apop_digest(welcome, "pw")
    assert time.monotonic() - started < 2  # the stdlib's pattern is linear too since 3.6.5
    assert mine == theirs


# -- STAT ----------------------------------------------------------------------------------------


def stdlib_stat(reply: bytes) -> Union[tuple[int, int], BaseException]:
    pop = bare_stdlib_pop(_shortcmd=lambda line: reply)
    try:
        return pop.stat()  # type: ignore[no-any-return]
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (b"+OK 2 320", (2, 320)),
        (b"+OK 0 0", (0, 0)),
        (b"+OK 2 320 extra words", (2, 320)),
        (b"+OK\t3\t9", (3, 9)),
        (b"+OK 1 2\x0b", (1, 2)),
    ],
)
def test_parse_stat(reply: bytes, expected: tuple[int, int]) -> None:
    assert commands.parse_stat(reply) == expected == stdlib_stat(reply)


@pytest.mark.parametrize("reply", [b"+OK", b"+OK 2", b""])
def test_parse_stat_short(reply: bytes) -> None:
    with pytest.raises(BadReply) as info:
        commands.parse_stat(reply)
    assert str(info.value) == "Invalid STAT response format"  # the newest stdlib's message
    assert isinstance(info.value, ValueError)
    # Older stdlib versions let an IndexError escape; the newest raise error_proto.
    assert isinstance(stdlib_stat(reply), (IndexError, std_poplib.error_proto))


@pytest.mark.parametrize("reply", [b"+OK a 2", b"+OK 2 b", b"+OK 2.0 3", b"+OK \xff 2"])
def test_parse_stat_non_numeric(reply: bytes) -> None:
    with pytest.raises(BadReply, match=r"^Invalid STAT response data: non-numeric values$"):
        commands.parse_stat(reply)
    assert isinstance(stdlib_stat(reply), (ValueError, std_poplib.error_proto))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([b"+OK", b" ", b"1", b"23", b"x", b"-", b"_", b"\t"]), max_size=8).map(
        b"".join
    )
)
def test_parse_stat_agrees_with_stdlib(reply: bytes) -> None:
    theirs = stdlib_stat(reply)
    if isinstance(theirs, BaseException):
        with pytest.raises(BadReply):
            commands.parse_stat(reply)
    else:
        assert commands.parse_stat(reply) == theirs


# -- CAPA ----------------------------------------------------------------------------------------


def stdlib_capa(lines: list[bytes]) -> Union[dict[str, list[str]], BaseException]:
    pop = bare_stdlib_pop(_longcmd=lambda line: (b"+OK", lines, 0))
    try:
        return pop.capa()  # type: ignore[no-any-return]
    except Exception as exc:
        return exc


def test_parse_capa() -> None:
    lines = [b"TOP", b"USER", b"SASL PLAIN  LOGIN", b"IMPLEMENTATION Cyrus POP3 v2", b"STLS"]
    expected = {
        "TOP": [],
        "USER": [],
        "SASL": ["PLAIN", "LOGIN"],
        "IMPLEMENTATION": ["Cyrus", "POP3", "v2"],
        "STLS": [],
    }
    assert commands.parse_capa(lines) == expected == stdlib_capa(lines)
    assert commands.parse_capa([]) == {} == stdlib_capa([])
    # A repeated capability: the last one wins, as in the stdlib.
    assert commands.parse_capa([b"A 1", b"A 2"]) == {"A": ["2"]} == stdlib_capa([b"A 1", b"A 2"])


def test_parse_capa_skips_blank_lines() -> None:
    lines = [b"TOP", b"", b"   ", b"\t", b"UIDL"]
    assert commands.parse_capa(lines) == {"TOP": [], "UIDL": []}
    # The stdlib (3.9 to the newest) fails with an IndexError on a blank line.
    assert isinstance(stdlib_capa(lines), IndexError)


def test_parse_capa_non_ascii() -> None:
    lines = [b"TOP", b"IMPLEMENTATION Caf\xc3\xa9"]
    with pytest.raises(BadReply, match="not ASCII"):
        commands.parse_capa(lines)
    # The stdlib lets the UnicodeDecodeError escape from capa().
    assert isinstance(stdlib_capa(lines), UnicodeDecodeError)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.lists(st.text(alphabet="ABCxyz-019.", min_size=1, max_size=6), min_size=1, max_size=4)
        .map(" ".join)
        .map(str.encode),
        max_size=8,
    )
)
def test_parse_capa_agrees_with_stdlib(lines: list[bytes]) -> None:
    assert commands.parse_capa(lines) == stdlib_capa(lines)


# -- SASL (RFC 5034) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "challenge"),
    [
        (b"+ ", b""),
        (b"+", b""),
        (b"+ Zm9v", b"foo"),
        (b"+Zm9v", b"foo"),
        (b"+   Zm9vYg==", b"foob"),
        (b"+ Zm9vYg", b"foob"),  # padding dropped by the server
        (b"+ " + base64.b64encode(bytes(range(256))), bytes(range(256))),
    ],
)
def test_decode_challenge(reply: bytes, challenge: bytes) -> None:
    assert commands.decode_challenge(reply) == challenge


@pytest.mark.parametrize("reply", [b"+ Zm9vY", b"+ Z"])
def test_decode_challenge_invalid(reply: bytes) -> None:
    with pytest.raises(BadReply, match="not valid base64"):
        commands.decode_challenge(reply)


def test_encode_response() -> None:
    assert commands.encode_response(b"", initial=True) == "="  # RFC 5034 section 4
    assert commands.encode_response(b"") == ""  # an empty answer to a challenge
    assert commands.encode_response(b"\x00alice\x00secret", initial=True) == "AGFsaWNlAHNlY3JldA=="
    assert commands.encode_response(b"foo") == "Zm9v"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_sasl_round_trip(data: bytes) -> None:
    encoded = commands.encode_response(data)
    assert commands.decode_challenge(b"+ " + encoded.encode()) == data
    commands.check_command(encoded)


# -- the parsers stay sans-IO --------------------------------------------------------------------

IO_MODULES = {"socket", "ssl", "select", "subprocess", "time", "selectors", "asyncio"}


@pytest.mark.parametrize(
    "path", sorted(Path(mailwire._pop.__file__).parent.glob("*.py")), ids=lambda p: p.name
)
def test_parsers_do_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & IO_MODULES
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert (node.module or "").split(".")[0] not in IO_MODULES
        elif isinstance(node, ast.Name):
            assert node.id not in ("print", "open", "input"), node.id
