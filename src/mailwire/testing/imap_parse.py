"""Sans-IO pieces of the embedded IMAP server: command parsing and response building.

Nothing here touches a socket. The server reads a command as a list of *parts* (the first line,
then each literal's data followed by the line that continues after it), and this module turns it
into a tag, a command name and arguments:

- :func:`parse_command` tokenizes atoms, quoted strings, literals (synchronising and LITERAL+)
  and parenthesized lists; an atom may hold a bracketed section with spaces in it, as
  ``BODY.PEEK[HEADER.FIELDS (From To)]<0.100>`` does;
- :func:`parse_sequence_set`, :func:`parse_fetch_items`, :func:`parse_search`,
  :func:`parse_flags` and :func:`parse_internal_date` read the arguments of FETCH, STORE,
  SEARCH and APPEND, raising :class:`ProtocolError` (a ``BAD`` answer) on anything malformed;
- :func:`parse_message` splits a message (bytes, CRLF line endings) into its MIME tree by byte
  offsets, and :func:`section_bytes`, :func:`envelope` and :func:`body_structure` build what
  FETCH returns for ``BODY[...]``, ``ENVELOPE``, ``BODY`` and ``BODYSTRUCTURE``;
- :func:`header_values` and :func:`body_text` give SEARCH decoded text to match against.

The response formats follow Dovecot 2.3 where it matters to clients: strings that are not plain
printable ASCII without ``"`` and ``\\`` are sent as literals, header field names in a
``HEADER.FIELDS`` section are upper-cased in the response, a text part without a charset gets
``("charset" "us-ascii")``, and an address without a domain gets ``MISSING_DOMAIN``.
"""

from __future__ import annotations

import bisect
import codecs
import email.errors
import email.header
import email.parser
import email.utils
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.message import Message
from email.policy import compat32
from functools import lru_cache
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "MONTHS",
    "SYSTEM_FLAGS",
    "Atom",
    "BadTagError",
    "FetchItem",
    "Literal",
    "Part",
    "ProtocolError",
    "SearchKey",
    "Section",
    "SequenceSet",
    "Token",
    "astring",
    "atom",
    "body_structure",
    "body_text",
    "envelope",
    "format_internal_date",
    "format_uid_set",
    "header_text",
    "header_values",
    "in_sequence_set",
    "literal_at_end",
    "mailbox_out",
    "nstring",
    "parse_command",
    "parse_fetch_items",
    "parse_flags",
    "parse_internal_date",
    "parse_message",
    "parse_search",
    "parse_sequence_set",
    "quoted_or_literal",
    "section_bytes",
    "sequence_matcher",
    "sequence_set_max",
    "tag_of",
]

#: IMAP system flags a client may set, in the order Dovecot lists them.
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name.upper(): number for number, name in enumerate(MONTHS, 1)}
#: Nesting deeper than this in a command (lists) or a message (MIME parts) is refused.
MAX_DEPTH = 32


class ProtocolError(Exception):
    """A malformed command: the server answers ``BAD``; ``str()`` is the reason.

    :func:`parse_command` fills in *tag* and *command* when it knows them.
    """

    def __init__(self, message: str, tag: str | None = None, command: str | None = None) -> None:
        super().__init__(message)
        self.tag = tag
        self.command = command


class BadTagError(ProtocolError):
    """The line has no usable tag: the server answers with an untagged ``BAD``."""


class Atom(str):
    """An unquoted atom from a command (``NIL``, ``\\Seen``, ``1:*``, ``BODY[TEXT]``...)."""


class Literal(bytes):
    """A string sent as a literal (``{n}`` or ``{n+}``); quoted strings are plain bytes."""


Token = Union[Atom, bytes, List[Any]]

# -- reading commands -------------------------------------------------------------------------

_LITERAL_END = re.compile(rb"\{([0-9]{1,20})(\+?)\}\Z")
# tag = 1*<any ASTRING-CHAR except "+">; Dovecot also refuses "]" and "\" in tags.
_TAG = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5b\x5e-\x7a\x7c-\x7e]+")
_COMMAND_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9]*")
_QUOTED_RUN = re.compile(rb'[^"\\]*')
# Atom characters: printable ASCII except SP ( ) { " (the rest of the atom-specials, such as
# % * \ ], is let through: flags, list patterns, sequence sets and sections need them).
_ATOM_RUN = re.compile(rb'[\x21\x23-\x27\x2a-\x5a\x5c-\x7a\x7c-\x7e]*')


def literal_at_end(line: bytes) -> tuple[int, bool] | None:
    """``(size, synchronising)`` if *line* ends with a literal announcement, else None."""
    match = _LITERAL_END.search(line)
    if match is None:
        return None
    return int(match.group(1)), not match.group(2)


class _Lexer:
    def __init__(self, parts: Sequence[bytes], position: int) -> None:
        self._parts = parts
        self._index = 0
        self.line = parts[0]
        self.pos = position

    def _skip_spaces(self) -> None:
        line, pos = self.line, self.pos
        while pos < len(line) and line[pos] == 0x20:
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        self._skip_spaces()
        return self.pos >= len(self.line)

    def token(self, depth: int = 0) -> Token:
        self._skip_spaces()
        line, pos = self.line, self.pos
        if pos >= len(line):
            raise ProtocolError("Missing argument")
        char = line[pos]
        if char == 0x28:  # (
            if depth >= MAX_DEPTH:
                raise ProtocolError("Too deeply nested lists")
            self.pos += 1
            items: list[Token] = []
            while True:
                self._skip_spaces()
                if self.pos >= len(self.line):
                    raise ProtocolError("Missing ')'")
                if self.line[self.pos] == 0x29:
                    self.pos += 1
                    return items
                items.append(self.token(depth + 1))
        if char == 0x29:
            raise ProtocolError("Unexpected ')'")
        if char == 0x22:
            return self._quoted()
        if char == 0x7B:
            return self._literal()
        return self._atom()

    def _quoted(self) -> bytes:
        line = self.line
        out = bytearray()
        pos = self.pos + 1
        while True:
            run = _QUOTED_RUN.match(line, pos)
            assert run is not None
            out += run.group()
            pos = run.end()
            if pos >= len(line):
                raise ProtocolError("Missing '\"'")
            if line[pos] == 0x22:
                self.pos = pos + 1
                return bytes(out)
            if pos + 1 >= len(line):
                raise ProtocolError("Missing '\"'")
            out.append(line[pos + 1])  # a backslash quotes the next character
            pos += 2

    def _literal(self) -> Literal:
        # The announcement must end the line, and the reader put the data in the next part.
        if (_LITERAL_END.match(self.line, self.pos) is None
                or self._index + 1 >= len(self._parts)):
            raise ProtocolError("Invalid literal")
        data = Literal(self._parts[self._index + 1])
        self._index += 2
        self.line = self._parts[self._index] if self._index < len(self._parts) else b""
        self.pos = 0
        return data

    def _atom(self) -> Atom:
        line = self.line
        start = pos = self.pos
        while True:
            run = _ATOM_RUN.match(line, pos)
            assert run is not None
            pos = run.end()
            if pos < len(line) and line[pos] == 0x5B:  # [ ... ] may hold spaces and parens
                close = line.find(b"]", pos)
                if close < 0:
                    raise ProtocolError("Missing ']'")
                pos = close + 1
                continue
            break
        if pos == start:
            raise ProtocolError("Invalid characters in atom")
        self.pos = pos
        text = line[start:pos]
        try:
            return Atom(text.decode("ascii"))
        except UnicodeDecodeError:
            raise ProtocolError("Invalid characters in atom") from None


def tag_of(line: bytes) -> str | None:
    """The tag at the start of a command line, if it has a valid one."""
    match = _TAG.match(line)
    if match is None or (match.end() < len(line) and line[match.end()] != 0x20):
        return None
    return match.group().decode("ascii")


def parse_command(parts: Sequence[bytes]) -> tuple[str, str, list[Token]]:
    """Split a command into its tag, upper-cased name and argument tokens.

    *parts* alternates lines (without CRLF) and literal data: every line but the last ends with
    a literal announcement whose data is the next part. Raises :class:`BadTagError` when there
    is no valid tag and :class:`ProtocolError` (``tag`` and ``command`` set) for the rest.
    """
    line = parts[0]
    tag = tag_of(line)
    if tag is None:
        raise BadTagError("Error in IMAP command received by server.")
    name_match = _COMMAND_NAME.match(line, len(tag) + 1)
    if name_match is None or (name_match.end() < len(line) and line[name_match.end()] != 0x20):
        raise ProtocolError("Error in IMAP command received by server.", tag, "")
    name = name_match.group().decode("ascii").upper()
    lexer = _Lexer(parts, name_match.end())
    args: list[Token] = []
    try:
        while not lexer.at_end():
            args.append(lexer.token())
    except ProtocolError as exc:
        raise ProtocolError(str(exc), tag, name) from None
    return tag, name, args


def atom(token: Token) -> str:
    """The atom's text; ProtocolError for a string or a list."""
    if isinstance(token, Atom):
        return str(token)
    raise ProtocolError("Invalid arguments")


def astring(token: Token) -> bytes:
    """An atom, quoted string or literal as bytes; ProtocolError for a list."""
    if isinstance(token, Atom):
        return token.encode("ascii")
    if isinstance(token, bytes):
        return token
    raise ProtocolError("Invalid arguments")


# -- sequence sets ----------------------------------------------------------------------------

#: ``((low, high), ...)``: each a range of numbers, ``None`` standing for ``*``.
SequenceSet = Tuple[Tuple[Optional[int], Optional[int]], ...]
# At most ten digits: a longer number is out of range anyway (and int() of thousands of
# digits raises ValueError on Python 3.11+).
_SEQ_ITEM = re.compile(r"([0-9]{1,10}|\*)(?::([0-9]{1,10}|\*))?\Z")
_MAX_NUMBER = 0xFFFFFFFF


def _seq_number(text: str) -> int | None:
    if text == "*":
        return None
    number = int(text)
    if not 1 <= number <= _MAX_NUMBER:
        raise ProtocolError("Invalid messageset")
    return number


def parse_sequence_set(token: Token) -> SequenceSet:
    """Parse ``1,3:5,7:*``; ProtocolError("Invalid messageset") if malformed."""
    if not isinstance(token, Atom) or not token:
        raise ProtocolError("Invalid messageset")
    ranges = []
    for item in token.split(","):
        match = _SEQ_ITEM.match(item)
        if match is None:
            raise ProtocolError("Invalid messageset")
        low = _seq_number(match.group(1))
        high = low if match.group(2) is None else _seq_number(match.group(2))
        ranges.append((low, high))
    return tuple(ranges)


def sequence_matcher(ranges: SequenceSet, star: int) -> Callable[[int], bool]:
    """A membership test for the set, ``*`` standing for *star* (O(log n) per number)."""
    spans = sorted((min(a, b), max(a, b)) for a, b in (
        (star if low is None else low, star if high is None else high) for low, high in ranges))
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    lows = [low for low, _ in merged]

    def contains(number: int) -> bool:
        index = bisect.bisect_right(lows, number) - 1
        return index >= 0 and number <= merged[index][1]

    return contains


def in_sequence_set(ranges: SequenceSet, number: int, star: int) -> bool:
    """Whether *number* is in the set, ``*`` standing for *star*."""
    return sequence_matcher(ranges, star)(number)


def sequence_set_max(ranges: SequenceSet, star: int) -> int:
    """The largest number the set names (``*`` standing for *star*)."""
    return max(star if n is None else n for pair in ranges for n in pair)


def format_uid_set(uids: Sequence[int]) -> str:
    """``1:3,7`` for [1, 2, 3, 7]: runs of consecutive numbers in the given order."""
    out: list[str] = []
    index = 0
    while index < len(uids):
        end = index
        while end + 1 < len(uids) and uids[end + 1] == uids[end] + 1:
            end += 1
        out.append(str(uids[index]) if end == index else f"{uids[index]}:{uids[end]}")
        index = end + 1
    return ",".join(out)


# -- flags and dates --------------------------------------------------------------------------

_KEYWORD = re.compile(r"[\x21\x23\x24\x26\x27\x2b-\x5a\x5e-\x7a\x7c\x7e]+\Z")


def parse_flags(tokens: Sequence[Token]) -> list[str]:
    """Flags for STORE and APPEND: system flags (canonical case) and keywords."""
    flags = []
    for token in tokens:
        if not isinstance(token, Atom):
            raise ProtocolError("Invalid arguments")
        text = str(token)
        if text.startswith("\\"):
            system = next((f for f in SYSTEM_FLAGS if f.upper() == text.upper()), None)
            if system is None:
                raise ProtocolError(f"Invalid system flag {text.upper()}")
            flags.append(system)
        elif _KEYWORD.match(text):
            flags.append(text)
        else:
            raise ProtocolError("Invalid characters in atom")
    return flags


_INTERNAL_DATE = re.compile(
    r" ?([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})"
    r"([0-9]{2})\Z"
)


def parse_internal_date(text: str) -> datetime:
    """Parse APPEND's ``"dd-Mon-yyyy hh:mm:ss +zzzz"`` into an aware datetime."""
    match = _INTERNAL_DATE.match(text)
    month = _MONTH_NUMBERS.get(match.group(2).upper(), 0) if match else 0
    if match is None or not month:
        raise ProtocolError("Invalid internal date")
    day, _, year, hour, minute, second, sign, zh, zm = match.groups()
    offset = timedelta(hours=int(zh), minutes=int(zm))
    try:
        return datetime(int(year), month, int(day), int(hour), int(minute), int(second),
                        tzinfo=timezone(-offset if sign == "-" else offset))
    except ValueError:
        raise ProtocolError("Invalid internal date") from None


def format_internal_date(when: datetime) -> bytes:
    """``"04-Mar-2024 09:00:00 +0000"`` (quoted), always in UTC as Dovecot on Maildir says it."""
    utc = when.astimezone(timezone.utc)
    return (f'"{utc.day:02d}-{MONTHS[utc.month - 1]}-{utc.year:04d} '
            f'{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} +0000"').encode("ascii")


_SEARCH_DATE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\Z")


def _parse_search_date(token: Token) -> date:
    text = astring(token).decode("ascii", "replace")
    match = _SEARCH_DATE.match(text)
    month = _MONTH_NUMBERS.get(match.group(2).upper(), 0) if match else 0
    if match is None or not month:
        raise ProtocolError("Invalid search date parameter")
    try:
        return date(int(match.group(3)), month, int(match.group(1)))
    except ValueError:
        raise ProtocolError("Invalid search date parameter") from None


# -- response strings -------------------------------------------------------------------------

_PLAIN_QUOTABLE = re.compile(rb"[\x20\x21\x23-\x5b\x5d-\x7e]*\Z")
_ATOM_OUT = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c\x7e]+\Z")


def quoted_or_literal(value: bytes) -> bytes:
    """A quoted string if *value* is printable ASCII without ``"`` or ``\\``, else a literal."""
    if _PLAIN_QUOTABLE.match(value):
        return b'"' + value + b'"'
    return b"{%d}\r\n" % len(value) + value


def nstring(value: bytes | None) -> bytes:
    """``NIL`` for None, else :func:`quoted_or_literal`."""
    return b"NIL" if value is None else quoted_or_literal(value)


def mailbox_out(name: bytes) -> bytes:
    """A mailbox name (modified UTF-7) as an atom where possible (``Work/Sub``), else quoted."""
    if _ATOM_OUT.match(name) and name.upper() != b"NIL":
        return name
    if _PLAIN_QUOTABLE.match(name):
        return b'"' + name + b'"'
    if b"\r" not in name and b"\n" not in name:
        return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(name) + name


# -- FETCH ------------------------------------------------------------------------------------

_SECTION_KINDS = frozenset({"", "HEADER", "TEXT", "MIME", "HEADER.FIELDS", "HEADER.FIELDS.NOT"})
_BODY_SECTION = re.compile(r"(BODY|BODY\.PEEK)\[([^\]]*)\](?:<([0-9]{1,10})\.([0-9]{1,10})>)?\Z",
                           re.IGNORECASE)
_PART_NUMBERS = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,10})*(?![0-9])")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")
#: Items Dovecot writes before the others, in the order asked for (its "buffered" handlers).
BUFFERED_ITEMS = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE"})
_SIMPLE_ITEMS = frozenset({"UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE",
                           "BODYSTRUCTURE", "BODY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"})
_MACROS = {
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}


@dataclass(frozen=True)
class Section:
    """The ``[...]`` of ``BODY[...]``: part numbers, a kind and header field names."""

    part: tuple[int, ...] = ()
    #: "", "HEADER", "TEXT", "MIME", "HEADER.FIELDS" or "HEADER.FIELDS.NOT".
    kind: str = ""
    #: Upper-cased field names for the HEADER.FIELDS kinds (quoted if they were).
    fields: tuple[str, ...] = ()

    def field_names(self) -> set[str]:
        """The HEADER.FIELDS names to match (lower case, unquoted)."""
        return {name.strip('"').lower() for name in self.fields}

    def text(self) -> str:
        spec = ".".join(str(n) for n in self.part)
        if self.kind:
            spec += ("." if spec else "") + self.kind
        if self.fields:
            spec += " (" + " ".join(self.fields) + ")"
        return spec


@dataclass(frozen=True)
class FetchItem:
    """One FETCH data item."""

    #: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, RFC822,
    #: RFC822.HEADER, RFC822.TEXT, or BODY[] for a body section (see :attr:`section`).
    name: str
    section: Section | None = None
    #: ``<start.length>``
    partial: tuple[int, int] | None = None
    peek: bool = False

    @property
    def buffered(self) -> bool:
        return self.name in BUFFERED_ITEMS

    @property
    def sets_seen(self) -> bool:
        """Whether fetching it sets ``\\Seen`` (on a read-write mailbox)."""
        return self.name in ("RFC822", "RFC822.TEXT") or (
            self.section is not None and not self.peek)

    def response_name(self) -> str:
        if self.section is None:
            return self.name
        origin = "" if self.partial is None else f"<{self.partial[0]}>"
        return f"BODY[{self.section.text()}]{origin}"


def _header_field_names(text: str) -> tuple[str, ...]:
    if not (text.startswith("(") and text.endswith(")")):
        raise ProtocolError("Invalid BODY[..] parameter: Missing '('")
    names = []
    for word in text[1:-1].split():
        raw = word.encode("ascii", "replace")
        quoted = raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2
        if not _FIELD_NAME.match(raw[1:-1] if quoted else raw):
            raise ProtocolError("Invalid BODY[..] parameter: Invalid header field name")
        names.append(raw.decode("ascii").upper())  # echoed as written, quotes too (Dovecot)
    if not names:
        raise ProtocolError("Invalid BODY[..] parameter: Missing header field names")
    return tuple(names)


def _parse_section(spec: str) -> Section:
    part: tuple[int, ...] = ()
    rest = spec
    numbers = _PART_NUMBERS.match(spec)
    if numbers is not None:
        part = tuple(int(n) for n in numbers.group().split("."))
        if 0 in part:
            raise ProtocolError("Invalid BODY[..] section")
        rest = spec[numbers.end():]
        if rest:
            if not rest.startswith("."):
                raise ProtocolError("Invalid BODY[..] section")
            rest = rest[1:]
    kind_text, space, field_text = rest.partition(" ")
    kind = kind_text.upper()
    if kind not in _SECTION_KINDS or (kind == "MIME" and not part) or (kind == "" and rest):
        raise ProtocolError("Invalid BODY[..] section")
    fields: tuple[str, ...] = ()
    if kind.startswith("HEADER.FIELDS"):
        if not space:
            raise ProtocolError("Invalid BODY[..] parameter: Missing '('")
        fields = _header_field_names(field_text)
    elif space:
        raise ProtocolError("Invalid BODY[..] section")
    return Section(part, kind, fields)


def _fetch_item(text: str) -> FetchItem:
    upper = text.upper()
    if upper in _SIMPLE_ITEMS:
        return FetchItem(upper)
    match = _BODY_SECTION.match(text)
    if match is None:
        if "[" in text:
            raise ProtocolError("Invalid BODY[..] parameter: Missing ']'")
        raise ProtocolError(f"Unknown parameter {text}")
    partial = None
    if match.group(3) is not None:
        start, length = int(match.group(3)), int(match.group(4))
        if length == 0 or start > _MAX_NUMBER or length > _MAX_NUMBER:
            raise ProtocolError("Invalid BODY[..] partial")
        partial = (start, length)
    return FetchItem("BODY[]", _parse_section(match.group(2)), partial,
                     match.group(1).upper() == "BODY.PEEK")


def parse_fetch_items(token: Token) -> list[FetchItem]:
    """The items of a FETCH: a macro (ALL, FAST, FULL), one item, or a list of items.

    Duplicates are dropped (the first one stays).
    """
    if isinstance(token, Atom) and token.upper() in _MACROS:
        return [FetchItem(name) for name in _MACROS[token.upper()]]
    if isinstance(token, Atom):
        texts = [str(token)]
    elif isinstance(token, list):
        if not token:
            raise ProtocolError("FETCH list is empty")
        texts = [atom(item) for item in token]
    else:
        raise ProtocolError("Invalid arguments")
    items: list[FetchItem] = []
    seen: set[str] = set()
    for text in texts:
        item = _fetch_item(text)
        key = item.response_name() + ("+" if item.peek else "")
        if key not in seen:
            seen.add(key)
            items.append(item)
    return items


# -- SEARCH -----------------------------------------------------------------------------------

#: A search key: ``(op, arguments...)``. ``("and", [keys])``, ``("or", k1, k2)``, ``("not", k)``,
#: ``("all",)``, ``("flag", flag, wanted)``, ``("keyword", word, wanted)``, ``("new",)``,
#: ``("old",)``, ``("recent",)``, ``("header", name, text)`` (name "" for TEXT and BODY: see
#: ``("text", text)`` and ``("body", text)``), ``("date", "internal"|"sent", "before"|"on"|
#: "since", date)``, ``("size", "larger"|"smaller", n)``, ``("uid", ranges)``, ``("seq", ranges)``.
SearchKey = Tuple[Any, ...]

_FLAG_KEYS = {
    "ANSWERED": ("\\Answered", True), "DELETED": ("\\Deleted", True),
    "DRAFT": ("\\Draft", True), "FLAGGED": ("\\Flagged", True), "SEEN": ("\\Seen", True),
    "UNANSWERED": ("\\Answered", False), "UNDELETED": ("\\Deleted", False),
    "UNDRAFT": ("\\Draft", False), "UNFLAGGED": ("\\Flagged", False),
    "UNSEEN": ("\\Seen", False),
}
_HEADER_KEYS = {"BCC": "bcc", "CC": "cc", "FROM": "from", "SUBJECT": "subject", "TO": "to"}
_DATE_KEYS = {
    "BEFORE": ("internal", "before"), "ON": ("internal", "on"), "SINCE": ("internal", "since"),
    "SENTBEFORE": ("sent", "before"), "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since"),
}


class BadCharsetError(ProtocolError):
    """SEARCH CHARSET names a charset the server does not know (a ``NO [BADCHARSET]``)."""


class _SearchParser:
    def __init__(self, args: Sequence[Token], charset: str = "utf-8") -> None:
        self.args = args
        self.pos = 0
        self.charset = charset

    def string(self) -> str:
        try:
            return astring(self.next()).decode(self.charset)
        except UnicodeDecodeError:
            raise ProtocolError("Invalid search key") from None

    def next(self) -> Token:
        if self.pos >= len(self.args):
            raise ProtocolError("Missing argument")
        token = self.args[self.pos]
        self.pos += 1
        return token

    def key(self, depth: int = 0) -> SearchKey:
        if depth > MAX_DEPTH:
            raise ProtocolError("Too deeply nested search keys")
        token = self.next()
        if isinstance(token, list):
            if not token:
                raise ProtocolError("No search parameters inside list")
            inner = _SearchParser(token, self.charset)
            keys = []
            while inner.pos < len(token):
                keys.append(inner.key(depth + 1))
            return ("and", keys)
        if not isinstance(token, Atom):
            raise ProtocolError("Invalid search key")
        name = token.upper()
        if name in _FLAG_KEYS:
            flag, wanted = _FLAG_KEYS[name]
            return ("flag", flag, wanted)
        if name in ("ALL", "NEW", "OLD", "RECENT"):
            return (name.lower(),)
        if name in _HEADER_KEYS:
            return ("header", _HEADER_KEYS[name], self.string())
        if name == "HEADER":
            field = astring(self.next()).decode("ascii", "replace").lower()
            return ("header", field, self.string())
        if name in ("BODY", "TEXT"):
            return (name.lower(), self.string())
        if name in ("KEYWORD", "UNKEYWORD"):
            return ("keyword", atom(self.next()), name == "KEYWORD")
        if name in _DATE_KEYS:
            which, relation = _DATE_KEYS[name]
            return ("date", which, relation, _parse_search_date(self.next()))
        if name in ("LARGER", "SMALLER"):
            size = astring(self.next())
            if not size.isdigit() or len(size) > 20:
                raise ProtocolError("Invalid search size parameter")
            return ("size", name.lower(), int(size))
        if name == "UID":
            try:
                return ("uid", parse_sequence_set(self.next()))
            except ProtocolError:
                raise ProtocolError("Invalid UID messageset") from None
        if name == "NOT":
            return ("not", self.key(depth + 1))
        if name == "OR":
            return ("or", self.key(depth + 1), self.key(depth + 1))
        if name[:1].isdigit() or name[:1] == "*":
            return ("seq", parse_sequence_set(token))
        raise ProtocolError(f"Unknown argument {name}")


def parse_search(args: Sequence[Token]) -> SearchKey:
    """The search key of SEARCH's arguments (several keys make an ``and``).

    Strings are UTF-8 unless ``CHARSET`` names another charset Python knows (as Dovecot
    accepts any its iconv knows); an unknown one raises :class:`BadCharsetError`.
    """
    parser = _SearchParser(args)
    if args and isinstance(args[0], Atom) and args[0].upper() == "CHARSET":
        parser.pos = 1
        charset = astring(parser.next()).decode("ascii", "replace")
        try:
            parser.charset = codecs.lookup(charset).name
        except LookupError:
            raise BadCharsetError("Unknown charset") from None
    if parser.pos >= len(args):
        raise ProtocolError("Missing search parameters")
    keys = []
    while parser.pos < len(args):
        keys.append(parser.key())
    return keys[0] if len(keys) == 1 else ("and", keys)


# -- messages: structure ----------------------------------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_UNFOLD = re.compile(rb"\r?\n(?=[ \t])")
_LINE_SPLIT = re.compile(rb"(?<=\n)")
_header_parser = email.parser.BytesParser(policy=compat32)


def _split_header(data: bytes, start: int, end: int) -> int:
    """Where the body starts in ``data[start:end]`` (the header keeps its blank line)."""
    if data.startswith(b"\r\n", start) and start + 2 <= end:
        return start + 2
    if data.startswith(b"\n", start) and start + 1 <= end:
        return start + 1
    match = _HEADER_END.search(data, start, end)
    return end if match is None else match.end()


def _fields(header: bytes) -> list[tuple[str | None, bytes]]:
    """The header's fields: ``(lower-case name or None, raw bytes with continuation lines)``."""
    fields: list[tuple[str | None, bytes]] = []
    for line in _LINE_SPLIT.split(header):
        if not line or line in (b"\r\n", b"\n"):
            continue
        if line[:1] in (b" ", b"\t") and fields:
            name, raw = fields[-1]
            fields[-1] = (name, raw + line)
            continue
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t").decode("ascii", "replace").lower() if colon > 0 \
            else None
        fields.append((name, line))
    return fields


def _field_value(raw: bytes) -> bytes:
    value = raw[raw.find(b":") + 1:]
    return _UNFOLD.sub(b"", value).strip(b" \t\r\n")


@dataclass
class Part:
    """One MIME part by byte offsets into the whole message (``data``)."""

    data: bytes
    header_start: int
    body_start: int
    end: int
    maintype: str
    subtype: str
    headers: Message
    children: list[Part]
    #: The encapsulated message of a message/rfc822 part.
    message: Part | None

    @property
    def header(self) -> bytes:
        return self.data[self.header_start:self.body_start]

    @property
    def body(self) -> bytes:
        return self.data[self.body_start:self.end]

    @property
    def multipart(self) -> bool:
        return self.maintype == "multipart" and bool(self.children)


def _make_part(data: bytes, start: int, end: int, default_type: str, depth: int) -> Part:
    body_start = _split_header(data, start, end)
    header = data[start:body_start]
    headers = _header_parser.parsebytes(header, headersonly=True)
    headers.set_default_type(default_type)
    content_type = headers.get_content_type() if headers.get("content-type") else default_type
    maintype, _, subtype = content_type.partition("/")
    part = Part(data, start, body_start, end, maintype, subtype, headers, [], None)
    if depth >= MAX_DEPTH:
        return part
    if maintype == "multipart":
        boundary = headers.get_param("boundary")
        if isinstance(boundary, tuple):
            boundary = email.utils.collapse_rfc2231_value(boundary)
        if isinstance(boundary, str) and boundary:
            child_type = "message/rfc822" if subtype == "digest" else "text/plain"
            for child_start, child_end in _split_multipart(
                    data, body_start, end, boundary.encode("ascii", "surrogateescape")):
                part.children.append(_make_part(data, child_start, child_end, child_type,
                                                depth + 1))
        if not part.children:
            part.maintype, part.subtype = "text", "plain"
    elif content_type == "message/rfc822":
        part.message = _make_part(data, body_start, end, "text/plain", depth + 1)
    return part


def _split_multipart(data: bytes, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    delimiter = b"--" + boundary
    spans: list[tuple[int, int]] = []
    part_start: int | None = None
    pos = start
    while True:
        found = data.find(delimiter, pos, end)
        if found < 0:
            break
        pos = found + len(delimiter)
        if found != start and data[found - 1:found] != b"\n":
            continue
        line_end = data.find(b"\n", pos, end)
        line_end = end if line_end < 0 else line_end + 1
        rest = data[pos:line_end].rstrip(b"\r\n")
        closing = rest.startswith(b"--")
        if not closing and rest.strip(b" \t"):
            continue  # "--boundaryX": a longer boundary, not ours
        if part_start is not None:
            part_end = found
            if data[found - 2:found] == b"\r\n" and found - 2 >= part_start:
                part_end = found - 2
            elif data[found - 1:found] == b"\n" and found - 1 >= part_start:
                part_end = found - 1
            spans.append((part_start, part_end))
        if closing:
            return spans
        part_start = line_end
        pos = line_end
    if part_start is not None and part_start < end:
        spans.append((part_start, end))
    return spans


#: Messages up to this size have their parse cached (a few FETCH items in a row need it).
_CACHED_SIZE = 1024 * 1024


@lru_cache(maxsize=64)
def _parse_cached(data: bytes) -> Part:
    return _make_part(data, 0, len(data), "text/plain", 0)


def parse_message(data: bytes) -> Part:
    """The MIME tree of a message (cached for messages up to 1 MiB)."""
    if len(data) <= _CACHED_SIZE:
        return _parse_cached(data)
    return _make_part(data, 0, len(data), "text/plain", 0)


def _find_part(root: Part, numbers: tuple[int, ...]) -> Part | None:
    node = root
    for position, number in enumerate(numbers):
        if node.multipart:
            if not 1 <= number <= len(node.children):
                return None
            node = node.children[number - 1]
        elif number != 1:
            return None
        if position < len(numbers) - 1 and node.message is not None:
            node = node.message
    return node


def section_bytes(data: bytes, section: Section) -> bytes:
    """What ``BODY[section]`` returns for the message *data* (empty for a missing part)."""
    root = parse_message(data)
    if section.part:
        found = _find_part(root, section.part)
        if found is None:
            return b""
        if section.kind == "":
            return found.body
        if section.kind == "MIME":
            return found.header
        if found.message is None:
            return b""
        target = found.message
    else:
        target = root
    if section.kind == "":
        return target.data[target.header_start:target.end]
    if section.kind == "TEXT":
        return target.body
    header = target.header
    if section.kind == "HEADER":
        return header
    wanted = section.field_names()
    keep = section.kind == "HEADER.FIELDS"
    out = bytearray()
    for name, raw in _fields(header):
        if name is not None and (name in wanted) == keep:
            out += raw if raw.endswith(b"\n") else raw + b"\r\n"
    return bytes(out + b"\r\n")


# -- ENVELOPE ---------------------------------------------------------------------------------

_ADDRESS_SPECIALS = "<>:;,@"


def _address_tokens(text: str) -> list[tuple[str, str]]:
    """("word", text), ("quoted", text), ("comment", text) and ("special", char) tokens."""
    tokens: list[tuple[str, str]] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in " \t\r\n":
            index += 1
        elif char == '"':
            out = []
            index += 1
            while index < length and text[index] != '"':
                if text[index] == "\\" and index + 1 < length:
                    index += 1
                out.append(text[index])
                index += 1
            index += 1
            tokens.append(("quoted", "".join(out)))
        elif char == "(":
            depth, out = 1, []
            index += 1
            while index < length and depth:
                if text[index] == "\\" and index + 1 < length:
                    index += 1
                elif text[index] == "(":
                    depth += 1
                elif text[index] == ")":
                    depth -= 1
                    if not depth:
                        break
                out.append(text[index])
                index += 1
            index += 1
            tokens.append(("comment", "".join(out).strip()))
        elif char in _ADDRESS_SPECIALS:
            tokens.append(("special", char))
            index += 1
        else:
            start = index
            while index < length and text[index] not in ' \t\r\n"(' + _ADDRESS_SPECIALS:
                index += 1
            tokens.append(("word", text[start:index]))
    return tokens


Address = Tuple[Optional[str], Optional[str], Optional[str], Optional[str]]


def _addr_spec(tokens: list[tuple[str, str]]) -> tuple[str | None, str | None]:
    text = "".join(value for kind, value in tokens if kind != "comment")
    if not text:
        return None, None
    local, at, domain = text.rpartition("@")
    if not at:
        return text, None
    return local or None, domain or None


def parse_addresses(value: str) -> list[Address]:
    """An address list as ENVELOPE wants it: ``(name, adl, mailbox, host)`` tuples.

    Groups become ``(None, None, group name, None)`` ... ``(None, None, None, None)``; a missing
    local part or domain becomes ``MISSING_MAILBOX`` or ``MISSING_DOMAIN``, as in Dovecot.
    """
    result: list[Address] = []
    pending: list[tuple[str, str]] = []
    in_group = False

    def mailbox(name: str | None, spec: list[tuple[str, str]]) -> None:
        local, domain = _addr_spec(spec)
        if local is None and domain is None:
            return
        comment = next((v for k, v in spec if k == "comment"), None)
        result.append((name if name else comment or None, None, local or "MISSING_MAILBOX",
                       domain or "MISSING_DOMAIN"))

    def phrase(tokens: list[tuple[str, str]]) -> str:
        return " ".join(value for kind, value in tokens if kind in ("word", "quoted"))

    tokens = _address_tokens(value)
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        index += 1
        if kind != "special" or text == "@":
            pending.append((kind, text))
            continue
        if text == "<":
            inner: list[tuple[str, str]] = []
            while index < len(tokens) and tokens[index] != ("special", ">"):
                inner.append(tokens[index])
                index += 1
            index += 1
            colon = max((i for i, t in enumerate(inner) if t == ("special", ":")), default=-1)
            mailbox(phrase(pending) or None, inner[colon + 1:])
            pending = []
        elif text == ":" and not in_group:
            result.append((None, None, phrase(pending), None))
            in_group = True
            pending = []
        elif text in ",;":
            mailbox(None, pending)
            pending = []
            if text == ";" and in_group:
                result.append((None, None, None, None))
                in_group = False
        # a stray ">" or ":" is dropped
    mailbox(None, pending)
    if in_group:
        result.append((None, None, None, None))
    return result


def _text_bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")


def _address_list(value: bytes | None) -> bytes:
    if value is None:
        return b"NIL"
    addresses = parse_addresses(value.decode("latin-1"))
    if not addresses:
        return b"NIL"
    return b"(" + b"".join(
        b"(" + b" ".join(nstring(_text_bytes(f)) for f in address) + b")"
        for address in addresses) + b")"


def envelope(header: bytes) -> bytes:
    """``ENVELOPE`` for a header block: date, subject, from, sender, reply-to, to, cc, bcc,
    in-reply-to and message-id, as raw (undecoded) header values."""
    first: dict[str, bytes] = {}
    for name, raw in _fields(header):
        if name is not None and name not in first:
            first[name] = _field_value(raw)
    sender = first.get("from")
    parts = [
        nstring(first.get("date")),
        nstring(first.get("subject")),
        _address_list(sender),
        _address_list(first.get("sender", sender)),
        _address_list(first.get("reply-to", sender)),
        _address_list(first.get("to")),
        _address_list(first.get("cc")),
        _address_list(first.get("bcc")),
        nstring(first.get("in-reply-to")),
        nstring(first.get("message-id")),
    ]
    return b"(" + b" ".join(parts) + b")"


# -- BODY and BODYSTRUCTURE -------------------------------------------------------------------

def _header_bytes(headers: Message, name: str) -> bytes | None:
    value = headers.get(name)
    if value is None:
        return None
    text = str(value)
    return _UNFOLD.sub(b"", text.encode("ascii", "surrogateescape")).strip(b" \t\r\n")


def _params(headers: Message, name: str) -> list[tuple[bytes, bytes]]:
    params = headers.get_params(header=name, failobj=[])
    out = []
    for key, value in params[1:]:
        if isinstance(value, tuple):
            value = email.utils.collapse_rfc2231_value(value)
        out.append((key.encode("ascii", "surrogateescape"),
                    str(value).encode("utf-8", "surrogateescape")))
    return out


def _param_list(params: list[tuple[bytes, bytes]]) -> bytes:
    if not params:
        return b"NIL"
    return b"(" + b" ".join(quoted_or_literal(k) + b" " + quoted_or_literal(v)
                            for k, v in params) + b")"


def _lines(body: bytes) -> int:
    return body.count(b"\n")  # a last line without a line ending is not counted (Dovecot)


def _extension(part: Part, with_md5: bool) -> list[bytes]:
    headers = part.headers
    out = [nstring(_header_bytes(headers, "content-md5"))] if with_md5 else []
    disposition = headers.get_params(header="content-disposition", failobj=[])
    if disposition:
        kind = disposition[0][0].encode("ascii", "surrogateescape")
        out.append(b"(" + quoted_or_literal(kind) + b" "
                   + _param_list(_params(headers, "content-disposition")) + b")")
    else:
        out.append(b"NIL")
    language = _header_bytes(headers, "content-language")
    if language is None:
        out.append(b"NIL")
    else:
        tags = [t.strip() for t in language.split(b",") if t.strip()]
        out.append(nstring(tags[0]) if len(tags) == 1 else
                   b"(" + b" ".join(nstring(t) for t in tags) + b")" if tags else b"NIL")
    out.append(nstring(_header_bytes(headers, "content-location")))
    return out


def _structure(part: Part, extensible: bool) -> bytes:
    if part.multipart:
        out = b"".join(_structure(child, extensible) for child in part.children)
        fields = [quoted_or_literal(part.subtype.encode("ascii", "surrogateescape"))]
        if extensible:
            fields.append(_param_list(_params(part.headers, "content-type")))
            fields += _extension(part, with_md5=False)
        return b"(" + out + b" " + b" ".join(fields) + b")"
    headers = part.headers
    params = _params(headers, "content-type") if headers.get("content-type") else []
    if part.maintype == "text" and not any(k.lower() == b"charset" for k, _ in params):
        params.insert(0, (b"charset", b"us-ascii"))
    body = part.body
    fields = [
        quoted_or_literal(part.maintype.encode("ascii", "surrogateescape")),
        quoted_or_literal(part.subtype.encode("ascii", "surrogateescape")),
        _param_list(params),
        nstring(_header_bytes(headers, "content-id")),
        nstring(_header_bytes(headers, "content-description")),
        quoted_or_literal(_header_bytes(headers, "content-transfer-encoding") or b"7bit"),
        str(len(body)).encode("ascii"),
    ]
    if part.message is not None:
        fields.append(envelope(part.message.header))
        fields.append(_structure(part.message, extensible))
        fields.append(str(_lines(body)).encode("ascii"))
    elif part.maintype == "text":
        fields.append(str(_lines(body)).encode("ascii"))
    if extensible:
        fields += _extension(part, with_md5=True)
    return b"(" + b" ".join(fields) + b")"


def body_structure(data: bytes, extensible: bool = True) -> bytes:
    """``BODYSTRUCTURE`` (extensible) or ``BODY`` (not) of a message, best effort."""
    return _structure(parse_message(data), extensible)


# -- text for SEARCH --------------------------------------------------------------------------

def _decode_header_value(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError, ValueError):
        return text


def header_values(data: bytes, name: str) -> list[str]:
    """The decoded values of every *name* field (lower-case) in the message's header."""
    root = parse_message(data)
    return [_decode_header_value(_field_value(raw)) for field, raw in _fields(root.header)
            if field == name]


def header_text(data: bytes) -> str:
    """The whole header, each field decoded (for SEARCH TEXT)."""
    root = parse_message(data)
    return "\n".join(_decode_header_value(raw.rstrip(b"\r\n")) for _, raw in _fields(root.header))


def _part_text(part: Part) -> list[str]:
    if part.multipart:
        return [text for child in part.children for text in _part_text(child)]
    if part.message is not None:
        message = part.message
        return [header_text(message.data[message.header_start:message.end]),
                *_part_text(message)]
    if part.maintype not in ("text", "message"):
        return []
    body = part.body
    encoding = (part.headers.get("content-transfer-encoding") or "").strip().lower()
    if encoding in ("base64", "quoted-printable"):
        carrier = Message()
        carrier["Content-Transfer-Encoding"] = encoding
        carrier.set_payload(body.decode("ascii", "replace"))
        decoded = carrier.get_payload(decode=True)
        body = decoded if isinstance(decoded, bytes) else body
    charset = part.headers.get_content_charset() or "utf-8"
    try:
        return [body.decode(charset, "replace")]
    except LookupError:
        return [body.decode("utf-8", "replace")]


@lru_cache(maxsize=64)
def _body_text_cached(data: bytes) -> str:
    return "\n".join(_part_text(parse_message(data)))


def body_text(data: bytes) -> str:
    """The message's text parts, transfer-decoded and converted from their charsets."""
    if len(data) <= _CACHED_SIZE:
        return _body_text_cached(data)
    return "\n".join(_part_text(parse_message(data)))
