"""Sans-IO building of IMAP command lines: argument encoding, quoting, injection checks."""

from __future__ import annotations

import re
from typing import Any

from .args import CRLF_NUL_MESSAGE

__all__ = ["check_line", "encode_argument"]

_FORBIDDEN = re.compile(rb"[\r\n\x00]")


def check_line(line: bytes) -> None:
    """Refuse a command line carrying NUL, CR or LF: it would end the command early and let
    the rest run as a command of its own (literal data travels separately and is exempt)."""
    if _FORBIDDEN.search(line):
        raise ValueError(CRLF_NUL_MESSAGE)


def encode_argument(arg: Any, encoding: str) -> bytes:
    """One command argument as it goes on the wire."""
    if isinstance(arg, str):
        return bytes(arg, encoding)
    if isinstance(arg, int) and not isinstance(arg, bool):
        return b"%d" % arg
    return arg  # type: ignore[no-any-return]
