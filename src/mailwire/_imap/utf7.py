"""IMAP's modified UTF-7 for mailbox names (RFC 3501 section 5.1.3), strict, sans-IO.

Printable US-ASCII (0x20-0x7E) stands for itself, except ``&``, which is written ``&-``. Every
other run of characters is written as ``&``, the modified base64 of its UTF-16BE form (``,``
in place of ``/``, no ``=`` padding), then ``-``. Characters outside the BMP become surrogate
pairs.

``encode`` always produces the canonical form: each maximal run of non-printable characters in
one shifted segment. ``decode`` accepts exactly what the RFC allows and raises ``ValueError``,
naming the offset, for anything else:

- a byte outside 0x20-0x7E outside a shifted segment (8-bit or control bytes);
- ``&`` without a closing ``-`` (unterminated segment);
- a character that is not in the modified base64 alphabet (``A-Z a-z 0-9 + ,``) inside one;
- a segment whose length cannot hold whole UTF-16 code units, or whose unused trailing bits are
  not zero (so every valid name has a single spelling per segment);
- UTF-16 that is not well formed (an unpaired surrogate);
- a segment that encodes printable US-ASCII, which the RFC says MUST be written directly.

Two shifted segments side by side (``&AOQ-&APY-``) are accepted: the RFC does not forbid them,
although ``encode`` never writes them.
"""

from __future__ import annotations

import binascii
import re
from codecs import utf_16_be_decode, utf_16_be_encode

# typing costs about 1 MiB at start-up; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Union

__all__ = ["decode", "encode"]

# Characters that stand for themselves; "&" is escaped as "&-" before this is applied.
_SHIFTED_RUN = re.compile(r"[^\x20-\x7e]+")
_ENCODES_TO_ITSELF = re.compile(r"[\x20-\x25\x27-\x7e]*")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# The shape of a valid name: direct characters and "&...-" segments. Each step of the loop
# consumes one unambiguous token, so a failed match costs linear time.
_WELL_FORMED = re.compile(rb"(?:[\x20-\x25\x27-\x7e]|&[A-Za-z0-9+,]*-)*")
_DIRECT_BYTES = re.compile(rb"[\x20-\x7e]*")
_NOT_DIRECT_BYTE = re.compile(rb"[^\x20-\x7e]")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+,]")
_PRINTABLE_CHAR = re.compile(r"[\x20-\x7e]")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"
#: Byte -> its 6-bit value in the modified base64 alphabet (meaningful for alphabet bytes only).
_SIXBITS = bytes.maketrans(_ALPHABET, bytes(range(64)))
# For each length mod 8 that holds whole UTF-16 code units (0, 2 or 4 bytes beyond a multiple
# of 6): the "=" padding standard base64 wants, and the unused low bits of the last character,
# which must be zero.
_PADDING = {0: (b"", 0), 3: (b"=", 0b11), 6: (b"==", 0b1111)}


def _shift(run: re.Match[str]) -> str:
    raw = utf_16_be_encode(run.group())[0]
    text = binascii.b2a_base64(raw, newline=False).rstrip(b"=").replace(b"/", b",")
    return "&" + text.decode("ascii") + "-"


def encode(name: str) -> bytes:
    """Encode a mailbox name in IMAP modified UTF-7.

    Raises ``TypeError`` for anything but ``str`` and ``UnicodeEncodeError`` (a ``ValueError``)
    for a lone surrogate, which has no UTF-16 form.
    """
    if not isinstance(name, str):
        raise TypeError(f"encode() argument must be str, not {type(name).__name__}")
    if _ENCODES_TO_ITSELF.fullmatch(name):
        return name.encode("ascii")
    lone = _LONE_SURROGATE.search(name)
    if lone is not None:
        # Surrogate code points in a str (even two in a row) are not characters: UTF-16 has
        # no way to carry them.
        raise UnicodeEncodeError(
            "imap4-utf-7",
            name,
            lone.start(),
            lone.start() + 1,
            "lone surrogates have no UTF-16 form",
        )
    return _SHIFTED_RUN.sub(_shift, name.replace("&", "&-")).encode("ascii")


def _decode_segment(segment: bytes, offset: int) -> str:
    # ``segment`` is the non-empty text between "&" and "-", already known to be in the
    # alphabet; ``offset`` is where it starts in the input.
    rule = _PADDING.get(len(segment) % 8)
    if rule is None:
        raise ValueError(
            f"invalid modified UTF-7: the {len(segment)}-character base64 segment at offset "
            f"{offset} does not hold a whole number of UTF-16 code units"
        )
    padding, unused_bits = rule
    if _SIXBITS[segment[-1]] & unused_bits:
        raise ValueError(
            f"invalid modified UTF-7: the base64 segment at offset {offset} ends with "
            "non-zero padding bits"
        )
    raw = binascii.a2b_base64(segment.replace(b",", b"/") + padding)
    try:
        text: str = utf_16_be_decode(raw, "strict", True)[0]
    except UnicodeDecodeError:
        raise ValueError(
            f"invalid modified UTF-7: the base64 segment at offset {offset} is not well-formed "
            "UTF-16 (unpaired surrogate)"
        ) from None
    printable = _PRINTABLE_CHAR.search(text)
    if printable is not None:
        raise ValueError(
            f"invalid modified UTF-7: the base64 segment at offset {offset} encodes the "
            f"printable character {printable.group()!r}, which must be written directly"
        )
    return text


def _raise_first_problem(raw: bytes) -> None:
    """Walk input that is not well formed and raise a ValueError naming its first problem."""
    position = 0
    while position < len(raw):
        shift = raw.find(b"&", position)
        direct = raw[position:] if shift < 0 else raw[position:shift]
        if _DIRECT_BYTES.fullmatch(direct) is None:
            bad = _NOT_DIRECT_BYTE.search(direct)
            assert bad is not None
            at = position + bad.start()
            raise ValueError(
                f"invalid modified UTF-7: byte 0x{raw[at]:02x} at offset {at} is not printable "
                "US-ASCII (0x20-0x7E)"
            )
        if shift < 0:
            break
        close = raw.find(b"-", shift + 1)
        following = raw.find(b"&", shift + 1)
        if close < 0 or 0 <= following < close:
            raise ValueError(
                f"invalid modified UTF-7: the '&' at offset {shift} has no closing '-'"
            )
        segment = raw[shift + 1 : close]
        bad = _NOT_BASE64.search(segment)
        if bad is not None:
            at = shift + 1 + bad.start()
            raise ValueError(
                f"invalid modified UTF-7: {raw[at : at + 1]!r} at offset {at} is not a modified "
                "base64 character (A-Z a-z 0-9 + ,)"
            )
        if segment:
            _decode_segment(segment, shift + 1)
        position = close + 1
    raise ValueError("invalid modified UTF-7")  # not reached: the input was malformed


def decode(data: Union[bytes, bytearray, memoryview]) -> str:
    """Decode a mailbox name from IMAP modified UTF-7, strictly (see the module docstring).

    Raises ``TypeError`` for ``str`` (and other non-bytes) and ``ValueError`` for malformed
    input.
    """
    if type(data) is bytes:
        raw = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise TypeError(f"decode() argument must be bytes-like, not {type(data).__name__}")
    if _WELL_FORMED.fullmatch(raw) is None:
        _raise_first_problem(raw)
    if 0x26 not in raw:  # "&"
        return raw.decode("ascii")
    parts = raw.split(b"&")
    pieces: List[str] = [parts[0].decode("ascii")]
    offset = len(parts[0]) + 1  # where the segment in the current part starts
    for part in parts[1:]:
        segment, _, tail = part.partition(b"-")
        pieces.append(_decode_segment(segment, offset) if segment else "&")
        pieces.append(tail.decode("ascii"))
        offset += len(part) + 1
    return "".join(pieces)
