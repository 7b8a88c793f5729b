"""Sans-IO formatting of IMAP command arguments: quoting, mailbox names, structured values.

Every function here is pure. The ones whose output depends on the session take its
``encoding``: ``'ascii'`` (the default) or ``'utf-8'`` (after ``ENABLE UTF8=ACCEPT``, RFC 6855).
In ASCII mode a ``str`` mailbox name is sent as IMAP modified UTF-7 (RFC 3501 section 5.1.3);
in UTF-8 mode it is sent as UTF-8, inside a quoted string when it is not plain ASCII.

The functions that produce wire bytes (``quote``, ``astring``, ``list_mailbox``, ``mailbox``)
take ``str`` (encoded with the session's encoding) or ``bytes`` (taken as they are) and return
``bytes``. The structured helpers (``sequence_set``, ``set_quote``, ``fetch_parts``,
``substitute``, ``id_list``) return ``str`` for the command layer to encode; ``sequence_set``,
``set_quote`` and ``fetch_parts`` give ``bytes`` back for a ``bytes`` argument.

None of them rejects NUL, CR or LF except ``substitute``: the command layer calls
``check_no_crlf_nul`` on every argument once it is encoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# typing costs about 1 MiB at start-up; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple, Union, overload

    # One element of a structured sequence set: a message number, an inclusive (start, stop)
    # pair whose stop may be None or "*" (the largest number in use), or a range.
    SequenceSetItem = Union[int, Tuple[int, Union[int, str, None]], range]
    SequenceSetArg = Union[int, str, bytes, range, Iterable[SequenceSetItem]]

__all__ = [
    "CRLF_NUL_MESSAGE",
    "astring",
    "check_no_crlf_nul",
    "encode_criteria",
    "fetch_parts",
    "id_list",
    "list_mailbox",
    "mailbox",
    "quote",
    "sequence_set",
    "set_quote",
    "substitute",
    "substitute_all",
]

CRLF_NUL_MESSAGE = "NUL, CR and LF not allowed in commands"

# --- Character classes -------------------------------------------------------------------------
# ASTRING-CHAR (RFC 3501): printable US-ASCII except the atom-specials "(" ")" "{" SP, the
# list-wildcards "%" "*" and the quoted-specials '"' "\". "]" is allowed (resp-specials), and
# so is "[". Controls, DEL and 8-bit bytes are not.
_ASTRING_CLASS = r"\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e"
# A LIST/LSUB pattern may also carry the wildcards unquoted.
_LIST_CLASS = _ASTRING_CLASS + r"\x25\x2a"

_ASTRING_BYTES = re.compile(("[" + _ASTRING_CLASS + "]+").encode("ascii"))
_LIST_BYTES = re.compile(("[" + _LIST_CLASS + "]+").encode("ascii"))
_ASTRING_TEXT = re.compile("[" + _ASTRING_CLASS + "]+")
# One quoted string: '"', then any byte but '"' and "\" or a backslash followed by any byte
# (lenient: the RFC only allows escaping '"' and "\"), then '"'. The two branches cannot both
# match at one position, so matching is linear.
#: A complete IMAP quoted string (the response parser uses it too).
QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Printable ASCII other than "&": modified UTF-7 that stands for itself.
_PLAIN_MUTF7_TEXT = re.compile(r"[\x20-\x25\x27-\x7e]*")

# A flag for "?f": an optional backslash, then an atom ("]" allowed, as stdlib always has).
_FLAG = "\\\\?[" + _ASTRING_CLASS + "]+"
_FLAG_ARG = re.compile(_FLAG + "|\\((?:" + _FLAG + "(?: " + _FLAG + ")*)?\\)")
# A preformatted sequence set for "?s": numbers or "*", ranges with ":", joined with ",";
# or "$" (RFC 5182, the saved search result).
_SEQ_NUMBER = r"(?:[0-9]+|\*)"
_SEQ_RANGE = _SEQ_NUMBER + "(?::" + _SEQ_NUMBER + ")?"
_SEQUENCE_SET_TEXT = re.compile(_SEQ_RANGE + "(?:," + _SEQ_RANGE + ")*|\\$")
# Placeholders: "??" (a literal "?"), "?f", "?s" and a bare "?".
_PLACEHOLDER = re.compile(r"\?\?|\?[fs]?")

_FETCH_MACROS = frozenset(("ALL", "FULL", "FAST"))
_UTF8_NAMES = frozenset(("utf-8", "utf8", "utf_8", "utf-8-strict"))


# --- Helpers -----------------------------------------------------------------------------------


def _utf8_mode(encoding: str) -> bool:
    return encoding == "utf-8" or encoding.lower() in _UTF8_NAMES


def _type_name(value: object) -> str:
    return type(value).__name__


def _to_bytes(arg: Union[str, bytes], encoding: str) -> bytes:
    if isinstance(arg, str):
        return arg.encode(encoding)
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    raise TypeError(f"IMAP argument must be str or bytes, not {_type_name(arg)}")


def _quote_bytes(data: bytes) -> bytes:
    return b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _quote_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _astring_bytes(data: bytes, atom: re.Pattern[bytes]) -> bytes:
    if atom.fullmatch(data) or QUOTED.fullmatch(data):
        return data
    return _quote_bytes(data)


def _is_mutf7(name: str) -> bool:
    """Whether ``name`` is already valid modified UTF-7, under the strict decoder."""
    if _PLAIN_MUTF7_TEXT.fullmatch(name):
        return True
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        return False
    from . import utf7  # only for names beyond plain ASCII: most sessions never load it

    try:
        utf7.decode(raw)
    except ValueError:
        return False
    return True


def _mutf7_step(arg: Union[str, bytes], encoding: str) -> bytes:
    """The mailbox pre-step: modified UTF-7 for a ``str`` in ASCII mode, else plain encoding."""
    if isinstance(arg, str) and not _utf8_mode(encoding):
        if _is_mutf7(arg):
            return arg.encode("ascii")
        from . import utf7

        return utf7.encode(arg)
    return _to_bytes(arg, encoding)


def _has_crlf_nul_text(text: str) -> bool:
    return "\r" in text or "\n" in text or "\x00" in text


def _parenthesize(value: Union[str, bytes]) -> Union[str, bytes]:
    if isinstance(value, str):
        if value[:1] == "(" and value[-1:] == ")":
            return value
        return "(" + value + ")"
    if value[:1] == b"(" and value[-1:] == b")":
        return value
    return b"(" + value + b")"


def _join_atoms(items: Iterable[object], what: str) -> Union[str, bytes]:
    texts: list[str] = []
    blobs: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, (bytes, bytearray)):
            blobs.append(bytes(item))
        elif isinstance(item, int) and not isinstance(item, bool):
            texts.append(str(item))
        else:
            raise TypeError(f"{what} items must be str, bytes or int, not {_type_name(item)}")
    if texts and blobs:
        raise TypeError(f"{what} items must be all str or all bytes, not a mixture")
    if blobs:
        return b"(" + b" ".join(blobs) + b")"
    return "(" + " ".join(texts) + ")"


# --- Quoting -----------------------------------------------------------------------------------


def quote(arg: Union[str, bytes], encoding: str) -> bytes:
    """``arg`` as an IMAP quoted string, always: ``\\`` becomes ``\\\\``, ``"`` becomes ``\\"``.

    A ``str`` is encoded with ``encoding`` first (``UnicodeEncodeError`` for a non-ASCII str
    in ASCII mode); ``bytes`` are used as they are.
    """
    return _quote_bytes(_to_bytes(arg, encoding))


def astring(arg: Union[str, bytes], encoding: str) -> bytes:
    """``arg`` as an IMAP astring: left alone when it is already one well-formed quoted string
    or a non-empty atom (ASTRING-CHARs only, so never 8-bit, hence UTF-8 text is quoted in
    UTF-8 mode), else quoted. ``astring(astring(x)) == astring(x)``."""
    return _astring_bytes(_to_bytes(arg, encoding), _ASTRING_BYTES)


def list_mailbox(arg: Union[str, bytes], encoding: str) -> bytes:
    """A LIST/LSUB pattern: the mailbox pre-step (modified UTF-7 for a ``str`` in ASCII mode),
    then astring rules with the wildcards ``%`` and ``*`` allowed unquoted."""
    return _astring_bytes(_mutf7_step(arg, encoding), _LIST_BYTES)


def mailbox(arg: Union[str, bytes], encoding: str) -> bytes:
    """A mailbox name on the wire.

    ASCII mode: ``bytes`` are never converted; a ``str`` that already is valid modified UTF-7
    (as a name from a raw LIST response is) passes unchanged, any other ``str`` is encoded as
    modified UTF-7, so controls, NUL, CR and LF included, become Base64. UTF-8 mode: no
    conversion. Then astring rules apply in both modes.
    """
    return _astring_bytes(_mutf7_step(arg, encoding), _ASTRING_BYTES)


# --- Structured arguments ----------------------------------------------------------------------


def _message_number(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {_type_name(value)}")
    if value < 1:
        raise ValueError(f"{what} must be a positive int, not {value}")
    return str(value)


def _range_item(item: range) -> str:
    if not item:
        raise ValueError(f"an empty {item!r} in a sequence set")
    first, last = item[0], item[-1]
    if min(first, last) < 1:
        raise ValueError(f"message numbers must be positive, {item!r} is not")
    if item.step == 1:
        return str(first) if first == last else f"{first}:{last}"
    return ",".join(map(str, item))


def _sequence_item(item: object) -> str:
    if isinstance(item, range):
        return _range_item(item)
    if isinstance(item, tuple):
        if len(item) != 2:
            raise ValueError(
                f"a sequence set range must be a (start, stop) pair, not a {len(item)}-tuple"
            )
        start, stop = item
        first = _message_number(start, "a range start")
        if stop is None or stop == "*":
            return first + ":*"
        return first + ":" + _message_number(stop, "a range stop")
    return _message_number(item, "a sequence set item")


if TYPE_CHECKING:

    @overload
    def sequence_set(x: bytes) -> bytes: ...  # type: ignore[overload-overlap]
    @overload
    def sequence_set(x: Union[int, str, range, Iterable[SequenceSetItem]]) -> str: ...


def sequence_set(x: SequenceSetArg) -> Union[str, bytes]:
    """A message sequence set: ``5`` → ``'5'``; a ``str`` or ``bytes`` passes unchanged; a range
    gives ``'first:last'`` (explicit numbers when its step is not 1); any other iterable is a
    comma-joined list of ints, ranges and ``(start, stop)`` pairs, whose stop may be ``None`` or
    ``'*'``: ``[1, (3, 5), (8, None)]`` → ``'1,3:5,8:*'``.

    ``TypeError`` for an element that is not an int (a str, float or bool), a range, or a pair
    of ints; ``ValueError`` for a tuple that is not a pair, a number below 1 or an empty set.
    """
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    if isinstance(x, int) and not isinstance(x, bool):
        return _message_number(x, "a message number")
    if isinstance(x, range):
        return _range_item(x)
    if isinstance(x, Mapping) or not isinstance(x, Iterable):
        raise TypeError(
            "a sequence set must be an int, str, bytes or a sequence of ints, ranges and "
            f"(start, stop) pairs, not {_type_name(x)}"
        )
    parts = [_sequence_item(item) for item in x]
    if not parts:
        raise ValueError("an empty sequence set")
    return ",".join(parts)


if TYPE_CHECKING:

    @overload
    def set_quote(x: bytes) -> bytes: ...  # type: ignore[overload-overlap]
    @overload
    def set_quote(x: Union[str, Iterable[Union[str, int]]]) -> str: ...


def set_quote(x: Union[str, bytes, Iterable[Union[str, bytes, int]]]) -> Union[str, bytes]:
    """A parenthesized list (flags, STATUS names, quota limits, sort criteria): a ``str`` (or
    ``bytes``) is wrapped in parentheses unless it already starts with ``(`` and ends with
    ``)``; any other iterable is space-joined and wrapped. The items are not quoted."""
    if isinstance(x, (str, bytes)):
        return _parenthesize(x)
    if isinstance(x, bytearray):
        return _parenthesize(bytes(x))
    if isinstance(x, Mapping) or not isinstance(x, Iterable):
        raise TypeError(f"expected str, bytes or a sequence of atoms, not {_type_name(x)}")
    return _join_atoms(x, "list")


if TYPE_CHECKING:

    @overload
    def fetch_parts(x: bytes) -> bytes: ...
    @overload
    def fetch_parts(x: Union[str, Iterable[str]]) -> str: ...


def fetch_parts(x: Union[str, bytes, Iterable[Union[str, bytes]]]) -> Union[str, bytes]:
    """FETCH's message data items: a macro (``ALL``, ``FULL``, ``FAST``, any case) as it is,
    text that already starts with ``(`` and ends with ``)`` as it is (nested parentheses
    included), any other text parenthesized; a sequence of items space-joined and
    parenthesized."""
    if isinstance(x, bytearray):
        x = bytes(x)
    if isinstance(x, str):
        if x[:1] == "(" and x[-1:] == ")":
            return x
        if x.upper() in _FETCH_MACROS:
            return x
        return _parenthesize(x)
    if isinstance(x, bytes):
        if x.upper() in (b"ALL", b"FULL", b"FAST"):
            return x
        return _parenthesize(x)
    if isinstance(x, Mapping) or not isinstance(x, Iterable):
        raise TypeError(f"expected str, bytes or a sequence of items, not {_type_name(x)}")
    return _join_atoms(x, "fetch item")


# --- Placeholders ------------------------------------------------------------------------------


def _param_value(value: object) -> str:
    """A ``?`` value: an atom as is, other text quoted, an int as a number, a list or tuple as a
    parenthesized list of such values."""
    if isinstance(value, str):
        if _has_crlf_nul_text(value):
            raise ValueError(
                "a '?' parameter cannot carry NUL, CR or LF inline (send it as a literal)"
            )
        if _ASTRING_TEXT.fullmatch(value):
            return value
        return _quote_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "(" + " ".join(_param_value(item) for item in value) + ")"
    raise TypeError(f"a '?' parameter must be str, int, list or tuple, not {_type_name(value)}")


def _flag_value(value: object) -> str:
    """A ``?f`` value: one flag, or a parenthesized list of flags, sent verbatim."""
    if isinstance(value, str):
        if not _FLAG_ARG.fullmatch(value):
            raise ValueError(f"not a flag or a parenthesized list of flags: {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            if not isinstance(item, str):
                raise TypeError(f"flags must be str, not {_type_name(item)}")
            if not _FLAG_ARG.fullmatch(item) or item[:1] == "(":
                raise ValueError(f"not a flag: {item!r}")
        return "(" + " ".join(value) + ")"
    raise TypeError(f"a '?f' parameter must be str, list or tuple, not {_type_name(value)}")


def _sequence_value(value: object) -> str:
    """A ``?s`` value: a structured sequence set, an int, or a well-formed preformatted one."""
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("a '?s' parameter must not be bytes in a str template")
    if isinstance(value, str):
        if not _SEQUENCE_SET_TEXT.fullmatch(value):
            raise ValueError(f"not a sequence set: {value!r}")
        return value
    result = sequence_set(value)  # type: ignore[call-overload]
    assert isinstance(result, str)
    return result


_FORMATTERS = {"?": _param_value, "?f": _flag_value, "?s": _sequence_value}


class _Substitution:
    """Hands out the parameters, left to right, to the placeholders of one or more templates."""

    __slots__ = ("_params", "used")

    def __init__(self, params: object) -> None:
        if isinstance(params, (str, bytes, bytearray, Mapping)) or not isinstance(params, Iterable):
            raise TypeError(f"params must be a list or tuple, not {_type_name(params)}")
        self._params = list(params)
        self.used = 0

    def __call__(self, match: re.Match[str]) -> str:
        token = match.group()
        if token == "??":
            return "?"
        if self.used >= len(self._params):
            raise TypeError(
                f"not enough parameters: {len(self._params)} given, the template needs more"
            )
        value = self._params[self.used]
        self.used += 1
        return _FORMATTERS[token](value)

    def apply(self, template: str) -> str:
        if not isinstance(template, str):
            raise TypeError(f"the template must be str, not {_type_name(template)}")
        return _PLACEHOLDER.sub(self, template)

    def finish(self) -> None:
        if self.used != len(self._params):
            raise TypeError(
                f"too many parameters: {len(self._params)} given, the template uses {self.used}"
            )


def substitute(template: str, params: Iterable[object]) -> str:
    """Fill the placeholders of ``template`` with ``params``, left to right.

    ``?`` takes an astring value (an atom as is, any other str quoted, an int as a number, a
    list as a parenthesized list), ``?f`` a flag or a list of flags verbatim, ``?s`` a sequence
    set (see ``sequence_set``); ``??`` is a literal ``?``.

    ``TypeError`` when the number of parameters does not match, or for a value of the wrong
    type (a bool, a float, bytes); ``ValueError`` for a value that cannot go inline (NUL, CR,
    LF), a malformed flag, or a sequence-set range that is not a pair.
    """
    state = _Substitution(params)
    result = state.apply(template)
    state.finish()
    return result


def substitute_all(
    args: Iterable[Union[str, bytes]], params: Iterable[object]
) -> Tuple[Union[str, bytes], ...]:
    """``substitute`` over several arguments (search criteria, say), consuming the parameters
    left to right across them. ``bytes`` arguments are already encoded and are left alone."""
    state = _Substitution(params)
    out = tuple(arg if isinstance(arg, (bytes, bytearray)) else state.apply(arg) for arg in args)
    state.finish()
    return out


# --- Charsets, ID, injection check -------------------------------------------------------------


def encode_criteria(
    charset: Union[str, bytes, None], criteria: Iterable[object]
) -> Tuple[object, ...]:
    """Search criteria encoded for ``CHARSET charset``.

    With ``charset`` None they come back unchanged (as a tuple). Otherwise every ``str``
    criterion is encoded with the Python codec of that name (``charset`` may be bytes):
    ``LookupError`` when there is no such codec, ``UnicodeEncodeError`` when a character has no
    encoding. Anything else, ``bytes`` in particular, passes through unchanged, so a charset
    only the server knows works with bytes criteria.
    """
    if charset is None:
        return tuple(criteria)
    if isinstance(charset, (bytes, bytearray)):
        codec = bytes(charset).decode("latin-1")
    elif isinstance(charset, str):
        codec = charset
    else:
        raise TypeError(f"charset must be str, bytes or None, not {_type_name(charset)}")
    return tuple(item.encode(codec) if isinstance(item, str) else item for item in criteria)


def check_no_crlf_nul(data: bytes) -> None:
    """Refuse a command argument (already encoded) that carries NUL, CR or LF.

    Such a byte would end the command line early and let the rest run as a command of its
    own. Literal data travels separately and is not checked.
    """
    if 10 in data or 13 in data or 0 in data:  # LF, CR, NUL (int needles are cheaper)
        raise ValueError(CRLF_NUL_MESSAGE)


def id_list(fields: Optional[Mapping[str, Optional[str]]]) -> str:
    """The argument of ``ID`` (RFC 2971): ``NIL`` for None or an empty mapping, else a
    parenthesized list of field names and values, every one a quoted string (even an atom),
    with a None value sent as ``NIL``."""
    if fields is None:
        return "NIL"
    if not isinstance(fields, Mapping):
        raise TypeError(f"ID fields must be a mapping or None, not {_type_name(fields)}")
    if not fields:
        return "NIL"
    parts: list[str] = []
    for name, value in fields.items():
        if not isinstance(name, str):
            raise TypeError(f"ID field names must be str, not {_type_name(name)}")
        parts.append(_quote_text(name))
        if value is None:
            parts.append("NIL")
        elif isinstance(value, str):
            parts.append(_quote_text(value))
        else:
            raise TypeError(f"ID field values must be str or None, not {_type_name(value)}")
    return "(" + " ".join(parts) + ")"
