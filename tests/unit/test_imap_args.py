"""mailwire._imap.args: quoting, mailbox names and structured arguments of IMAP commands.

The parametrized tables are the facts the newest stdlib's tests assert (sections 2.1, 3.3-3.5
and 4 of docs/notes/newest-imaplib-behaviour.md), one row each. The properties cover what the
tables cannot: idempotence, round trips through IMAP's quoted-string and modified UTF-7 rules,
the shape of sequence sets, agreement between ASCII and UTF-8 mode, and that junk input only
ever raises TypeError or ValueError.
"""

from __future__ import annotations

import ast
import contextlib
import re
from pathlib import Path
from typing import Any, Callable, Union

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mailwire._imap import args, utf7

A = "ascii"
U = "utf-8"
MODES = (A, U)
CRLF_NUL = "NUL, CR and LF not allowed in commands"

# Every C0 control and DEL, as the newest test suite's support.control_characters_c0() gives.
CONTROL_CHARACTERS = [chr(i) for i in range(32)] + ["\x7f"]

# ASTRING-CHAR, the test's own spelling: printable ASCII except ( ) { SP % * " \.
ATOM_CHARS = frozenset(range(0x21, 0x7F)) - frozenset(b'(){%*"\\')


def parse_quoted(data: bytes) -> bytes:
    """The value of one IMAP quoted string (RFC 3501), strictly: only \\" and \\\\ escapes."""
    assert len(data) >= 2 and data[:1] == b'"' and data[-1:] == b'"', data
    out = bytearray()
    i, end = 1, len(data) - 1
    while i < end:
        byte = data[i]
        if byte == 0x5C:
            assert i + 1 < end, f"a backslash escapes the closing quote: {data!r}"
            assert data[i + 1] in b'"\\', f"escape of {data[i + 1 : i + 2]!r} in {data!r}"
            out.append(data[i + 1])
            i += 2
        else:
            assert byte != 0x22, f"unescaped quote inside {data!r}"
            out.append(byte)
            i += 1
    return bytes(out)


def is_quoted_lenient(data: bytes) -> bool:
    """One quoted string in which a backslash may escape any byte (what astring passes)."""
    if len(data) < 2 or data[:1] != b'"' or data[-1:] != b'"':
        return False
    i, end = 1, len(data) - 1
    while i < end:
        if data[i] == 0x5C:
            if i + 1 >= end:
                return False
            i += 2
        elif data[i] == 0x22:
            return False
        else:
            i += 1
    return True


def is_atom(data: bytes, wildcards: bool = False) -> bool:
    allowed = ATOM_CHARS | frozenset(b"%*") if wildcards else ATOM_CHARS
    return bool(data) and all(b in allowed for b in data)


def is_valid_mutf7(name: str) -> bool:
    try:
        utf7.decode(name.encode("ascii"))
    except (UnicodeEncodeError, ValueError):
        return False
    return True


# --- 3.3: _quote -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("pass", b'"pass"'),
        ('"pass"', b'"\\"pass\\""'),
        ("p%ss", b'"p%ss"'),
        (r"a\b", b'"a\\\\b"'),
        ("", b'""'),
        (b"pass", b'"pass"'),
    ],
)
@pytest.mark.parametrize("encoding", MODES)
def test_quote(arg: Union[str, bytes], expected: bytes, encoding: str) -> None:
    assert args.quote(arg, encoding) == expected


def test_quote_encodes_with_the_session_encoding() -> None:
    with pytest.raises(UnicodeEncodeError):
        args.quote("pässword", A)
    assert args.quote("pässword", U) == '"pässword"'.encode()
    assert args.quote("pässword".encode(), A) == '"pässword"'.encode()


# --- 3.3: _astring -----------------------------------------------------------------------------

ASTRING_ROWS = [
    # atoms
    ("INBOX", b"INBOX"),
    (b"INBOX", b"INBOX"),
    ("[test]", b"[test]"),
    ("+lr", b"+lr"),
    ("#news", b"#news"),
    ("UTF-8", b"UTF-8"),
    ("owatagusiam/blurdybloop", b"owatagusiam/blurdybloop"),
    # quoted
    ("New folder", b'"New folder"'),
    ('a"b', b'"a\\"b"'),
    (r"a\b", b'"a\\\\b"'),
    ("", b'""'),
    ("*", b'"*"'),
    ("%", b'"%"'),
    ('"', b'"\\""'),
    ('"a" SELECT evil "', b'"\\"a\\" SELECT evil \\""'),
    ("(a)", b'"(a)"'),
    ("{5}", b'"{5}"'),
    ("a\tb", b'"a\tb"'),
    ("\x7f", b'"\x7f"'),
    ("NF_Z_62-010_(1973)", b'"NF_Z_62-010_(1973)"'),
    # one well-formed quoted string passes unchanged, lenient escapes included
    ('"New folder"', b'"New folder"'),
    ('""', b'""'),
    (r'"a\b"', b'"a\\b"'),
    (b'"Entw\xc3\xbcrfe"', b'"Entw\xc3\xbcrfe"'),
]


@pytest.mark.parametrize(("arg", "expected"), ASTRING_ROWS)
@pytest.mark.parametrize("encoding", MODES)
def test_astring(arg: Union[str, bytes], expected: bytes, encoding: str) -> None:
    assert args.astring(arg, encoding) == expected


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("Entwürfe", '"Entwürfe"'.encode()),
        (b"Entw\xc3\xbcrfe", b'"Entw\xc3\xbcrfe"'),
    ],
)
def test_astring_utf8_mode_quotes_non_ascii(arg: Union[str, bytes], expected: bytes) -> None:
    assert args.astring(arg, U) == expected


def test_astring_non_ascii_str_in_ascii_mode_is_an_encoding_error() -> None:
    with pytest.raises(UnicodeEncodeError):
        args.astring("Entwürfe", A)
    # 8-bit bytes are never an atom, in either mode
    assert args.astring(b"Entw\xc3\xbcrfe", A) == b'"Entw\xc3\xbcrfe"'


IDEMPOTENT_INPUTS: list[Union[str, bytes]] = [
    "INBOX",
    "New folder",
    'a"b',
    "a\\b",
    "",
    "*",
    "%",
    '"New folder"',
    '""',
    '"a\\b"',
    '"a" SELECT evil "',
    '"',
    "a\tb",
    "a\rb",
    "\x7f",
    "(a)",
    b"Entw\xc3\xbcrfe",
]


@pytest.mark.parametrize("arg", IDEMPOTENT_INPUTS)
def test_astring_and_list_mailbox_idempotent(arg: Union[str, bytes]) -> None:
    once = args.astring(arg, A)
    assert args.astring(once, A) == once
    twice = args.list_mailbox(arg, A)
    assert args.list_mailbox(twice, A) == twice


# --- 3.3 and 4: _list_mailbox ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "encoding", "expected"),
    [
        ("*", A, b"*"),
        ("%", A, b"%"),
        ("foo/%", A, b"foo/%"),
        ("New folder", A, b'"New folder"'),
        ('"New folder"', A, b'"New folder"'),
        ("Entwürfe/%", A, b"Entw&APw-rfe/%"),
        ("Entwürfe/%", U, '"Entwürfe/%"'.encode()),
        ("My Folder", A, b'"My Folder"'),
        ("*", U, b"*"),
        (b"Entw&APw-rfe/*", A, b"Entw&APw-rfe/*"),
    ],
)
def test_list_mailbox(arg: Union[str, bytes], encoding: str, expected: bytes) -> None:
    assert args.list_mailbox(arg, encoding) == expected


# --- 4: _mailbox -------------------------------------------------------------------------------

MAILBOX_ROWS = [
    ("INBOX", A, b"INBOX"),
    (b"Entw&APw-rfe", A, b"Entw&APw-rfe"),
    ("Entwürfe", A, b"Entw&APw-rfe"),
    ("Entw&APw-rfe", A, b"Entw&APw-rfe"),
    ('"Entw&APw-rfe"', A, b'"Entw&APw-rfe"'),
    ("A&B", A, b"A&-B"),
    ("New folder", A, b'"New folder"'),
    ("", A, b'""'),
    ("a\x01b", A, b"a&AAE-b"),
    ("Entwürfe", U, '"Entwürfe"'.encode()),
    ("Entw&APw-rfe", U, b"Entw&APw-rfe"),
    # section 3.4 rows that go through mailbox encoding
    ("owatagusiam/", A, b"owatagusiam/"),
    ("owatagusiam/blurdybloop", A, b"owatagusiam/blurdybloop"),
    ("MEETING", A, b"MEETING"),
    ('""', A, b'""'),
    ("~/Mail/", A, b"~/Mail/"),
    ("test", A, b"test"),
]


@pytest.mark.parametrize(("arg", "encoding", "expected"), MAILBOX_ROWS)
def test_mailbox(arg: Union[str, bytes], encoding: str, expected: bytes) -> None:
    assert args.mailbox(arg, encoding) == expected


@pytest.mark.parametrize("name", ["Entwürfe", "Entw&APw-rfe", b"Entw&APw-rfe"])
def test_mutf7_mailbox_name(name: Union[str, bytes]) -> None:
    assert args.mailbox(name, A) == b"Entw&APw-rfe"


@pytest.mark.parametrize(
    "char", CONTROL_CHARACTERS, ids=[f"{ord(c):#04x}" for c in CONTROL_CHARACTERS]
)
def test_control_characters_in_ascii_mode(char: str) -> None:
    name = f"a{char}b"
    wire = args.mailbox(name, A)
    args.check_no_crlf_nul(wire)
    assert char.encode("ascii") not in wire
    assert all(0x20 <= b < 0x7F for b in wire)
    assert utf7.decode(wire) == name


@pytest.mark.parametrize("char", ["\x00", "\r", "\n"])
def test_nul_cr_lf_in_utf8_mode_is_quoted_then_refused(char: str) -> None:
    wire = args.mailbox(f"a{char}b", U)
    assert wire == f'"a{char}b"'.encode()
    with pytest.raises(ValueError, match=f"^{re.escape(CRLF_NUL)}$"):
        args.check_no_crlf_nul(wire)


@pytest.mark.parametrize("char", [c for c in CONTROL_CHARACTERS if c not in "\x00\r\n"])
def test_other_controls_in_utf8_mode_are_quoted_and_allowed(char: str) -> None:
    wire = args.mailbox(f"a{char}b", U)
    assert wire == f'"a{char}b"'.encode()
    args.check_no_crlf_nul(wire)


def test_mailbox_lone_surrogate_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        args.mailbox("a\ud800b", A)


def test_mailbox_noncanonical_mutf7_str_is_encoded_not_trusted() -> None:
    # "&AGE-" is base64 for "a", which must be written directly: not valid modified UTF-7, so
    # the "&" is data and is escaped; the result decodes back to the str given.
    wire = args.mailbox("&AGE-", A)
    assert wire == b"&-AGE-"
    assert utf7.decode(wire) == "&AGE-"
    assert args.mailbox("&Jjo", A) == b"&-Jjo"


# --- 3.4: which argument gets which treatment (the rows that are pure functions) ---------------

Formatter = Callable[..., Any]

METHOD_ROWS: list[tuple[str, Formatter, tuple[Any, ...], Any]] = [
    ("login user", args.astring, ("user", A), b"user"),
    ("login user", args.astring, ("us*r", A), b'"us*r"'),
    ("login user", args.astring, ('"user"', A), b'"user"'),
    ("login password", args.quote, ("pass", A), b'"pass"'),
    ("login password", args.quote, ("p%ss", A), b'"p%ss"'),
    ("login password", args.quote, ('"pass"', A), b'"\\"pass\\""'),
    ("setacl who", args.astring, ("John Doe", A), b'"John Doe"'),
    ("setacl who", args.astring, ("Fred", A), b"Fred"),
    ("setacl what", args.astring, ("a b", A), b'"a b"'),
    ("setacl what", args.astring, ("+lr", A), b"+lr"),
    ("setacl what", args.astring, ("rwipslxetad", A), b"rwipslxetad"),
    ("proxyauth", args.astring, ("us er", A), b'"us er"'),
    ("proxyauth", args.astring, ("user", A), b"user"),
    ("getquota root", args.astring, ("", A), b'""'),
    ("getquota root", args.astring, ("#news", A), b"#news"),
    ("setquota limits", args.set_quote, ("STORAGE 512",), "(STORAGE 512)"),
    ("setquota limits", args.set_quote, ("(STORAGE 512)",), "(STORAGE 512)"),
    ("list directory", args.mailbox, ('""', A), b'""'),
    ("list directory", args.mailbox, ("~/Mail/", A), b"~/Mail/"),
    ("list directory", args.mailbox, ("New folder", A), b'"New folder"'),
    ("list pattern", args.list_mailbox, ("*", A), b"*"),
    ("list pattern", args.list_mailbox, ("%", A), b"%"),
    ("list pattern", args.list_mailbox, ("My Folder", A), b'"My Folder"'),
    ("status names", args.set_quote, ("UIDNEXT MESSAGES",), "(UIDNEXT MESSAGES)"),
    ("status names", args.set_quote, (["MESSAGES", "UNSEEN"],), "(MESSAGES UNSEEN)"),
    ("store flags", args.set_quote, (r"\Deleted",), r"(\Deleted)"),
    ("store flags", args.set_quote, (r"(\Deleted)",), r"(\Deleted)"),
    ("store flags", args.set_quote, ("[test]",), "([test])"),
    ("store flags", args.set_quote, ([r"\Deleted", r"\Seen"],), r"(\Deleted \Seen)"),
    ("append flags", args.set_quote, (r"\Seen",), r"(\Seen)"),
    ("append mailbox", args.mailbox, ("New folder", A), b'"New folder"'),
    ("sort criteria", args.set_quote, ("SUBJECT",), "(SUBJECT)"),
    ("sort criteria", args.set_quote, ("(SUBJECT REVERSE DATE)",), "(SUBJECT REVERSE DATE)"),
    ("sort criteria", args.set_quote, (["REVERSE", "DATE"],), "(REVERSE DATE)"),
    ("sort charset", args.astring, ("NF_Z_62-010_(1973)", A), b'"NF_Z_62-010_(1973)"'),
    ("sort charset", args.astring, ("UTF-8", A), b"UTF-8"),
    ("sort charset", args.astring, ("US-ASCII", A), b"US-ASCII"),
    ("copy set", args.sequence_set, ("2:4",), "2:4"),
    ("copy set", args.sequence_set, ([2, (3, 5)],), "2,3:5"),
    ("uid copy set", args.sequence_set, ([1, (3, 5)],), "1,3:5"),
    ("fetch set", args.sequence_set, ([2, (3, 4)],), "2,3:4"),
    ("fetch set", args.sequence_set, ("1,3:*",), "1,3:*"),
    ("store set", args.sequence_set, (b"1",), b"1"),
    ("copy mailbox", args.mailbox, ("New folder", A), b'"New folder"'),
    ("copy mailbox", args.mailbox, ("MEETING", A), b"MEETING"),
]


@pytest.mark.parametrize(
    ("method", "func", "call_args", "expected"),
    METHOD_ROWS,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(METHOD_ROWS)],
)
def test_method_argument_rows(
    method: str, func: Formatter, call_args: tuple[Any, ...], expected: Any
) -> None:
    assert func(*call_args) == expected


# --- 3.5: _sequence_set ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (5, "5"),
        ("1:3,7", "1:3,7"),
        (b"1", b"1"),
        ([1, 2, 5], "1,2,5"),
        ([1, (3, 5), (8, "*")], "1,3:5,8:*"),
        ([(5, None)], "5:*"),
        ([range(1, 4), 7], "1:3,7"),
        ([range(1, 10, 2)], "1,3,5,7,9"),
        ([range(3, 4)], "3"),
        ((1, 5), "1,5"),  # a top-level tuple is a sequence of elements, not a pair
        (range(1, 4), "1:3"),
        ([range(5, 0, -2)], "5,3,1"),
    ],
)
def test_sequence_set(arg: Any, expected: Union[str, bytes]) -> None:
    assert args.sequence_set(arg) == expected


@pytest.mark.parametrize(
    "arg",
    [["7"], [2.9], [(1, 2.9)], [(1, "a")], [True], True, 2.5, None, {1: 2}, [("*", 5)], [[3, 5]]],
)
def test_sequence_set_type_errors(arg: Any) -> None:
    with pytest.raises(TypeError):
        args.sequence_set(arg)


@pytest.mark.parametrize(
    "arg", [[(1,)], [(1, 2, 3)], [], [0], [-3], 0, [(0, 5)], [range(0, 3)], [range(4, 4)]]
)
def test_sequence_set_value_errors(arg: Any) -> None:
    with pytest.raises(ValueError):
        args.sequence_set(arg)


# --- 3.5: _set_quote and fetch parts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (r"\Seen", r"(\Seen)"),
        (r"(\Seen)", r"(\Seen)"),
        ([r"\Seen", r"\Answered"], r"(\Seen \Answered)"),
        (["MESSAGES", "UNSEEN"], "(MESSAGES UNSEEN)"),
        ((r"\Seen",), r"(\Seen)"),
        ([], "()"),
        (["STORAGE", 512], "(STORAGE 512)"),
        (b"\\Seen", b"(\\Seen)"),
        ([b"\\Seen", b"\\Draft"], b"(\\Seen \\Draft)"),
    ],
)
def test_set_quote(arg: Any, expected: Union[str, bytes]) -> None:
    assert args.set_quote(arg) == expected


@pytest.mark.parametrize("arg", [None, 5, {"a": 1}, [None], [["nested"]], ["a", b"b"], [True]])
def test_set_quote_type_errors(arg: Any) -> None:
    with pytest.raises(TypeError):
        args.set_quote(arg)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("(FLAGS)", "(FLAGS)"),
        ("FLAGS", "(FLAGS)"),
        ("ALL", "ALL"),
        ("FULL", "FULL"),
        ("FAST", "FAST"),
        ("fast", "fast"),
        ("Full", "Full"),
        (["UID", "FLAGS"], "(UID FLAGS)"),
        ("(BODY[HEADER.FIELDS (DATE FROM)])", "(BODY[HEADER.FIELDS (DATE FROM)])"),
        ("FLAGS BODY[HEADER.FIELDS (DATE FROM)]", "(FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
        ("BODY[HEADER.FIELDS (DATE FROM)]", "(BODY[HEADER.FIELDS (DATE FROM)])"),
        (b"FLAGS", b"(FLAGS)"),
        (b"all", b"all"),
    ],
)
def test_fetch_parts(arg: Any, expected: Union[str, bytes]) -> None:
    assert args.fetch_parts(arg) == expected


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        (
            "FLAGS BODY[HEADER.FIELDS ?]",
            [["DATE", "FROM"]],
            "(FLAGS BODY[HEADER.FIELDS (DATE FROM)])",
        ),
        ("BODY[HEADER.FIELDS ?]", [["DATE", "FROM"]], "(BODY[HEADER.FIELDS (DATE FROM)])"),
    ],
)
def test_fetch_parts_after_params(template: str, params: list[Any], expected: str) -> None:
    assert args.fetch_parts(args.substitute(template, params)) == expected


# --- 3.5: _substitute --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "params", "expected"),
    [
        ("FROM ?", ["me@host"], "FROM me@host"),
        ("SUBJECT ?", ["hello world"], 'SUBJECT "hello world"'),
        ("SUBJECT ?", ['a"b'], r'SUBJECT "a\"b"'),
        ("LARGER ?", [1000], "LARGER 1000"),
        ("HEADER.FIELDS ?", [["DATE", "FROM"]], "HEADER.FIELDS (DATE FROM)"),
        ("?f", [r"\Seen"], r"\Seen"),
        ("?f", [[r"\Seen", r"\Answered"]], r"(\Seen \Answered)"),
        ("?f", [r"(\Seen \Answered)"], r"(\Seen \Answered)"),
        ("?f", ["[test]"], "[test]"),
        ("?s", [[1, (3, 5), (8, "*")]], "1,3:5,8:*"),
        ("?s", [5], "5"),
        ("?s", ["1:3,7"], "1:3,7"),
        ("a?? b", [], "a? b"),
        ("FROM ? SUBJECT ?", ["me@host", "trip report"], 'FROM me@host SUBJECT "trip report"'),
        ("SUBJECT ?", ["trip report"], 'SUBJECT "trip report"'),
        ("SUBJECT ?", [""], 'SUBJECT ""'),
        ("SUBJECT ?", ["?"], "SUBJECT ?"),
        ("SUBJECT ?", ['"quoted"'], r'SUBJECT "\"quoted\""'),
        ("SUBJECT ?", ["Київ"], 'SUBJECT "Київ"'),
        ("X ?", [["a b", 1, ["c"]]], 'X ("a b" 1 (c))'),
        ("???", ["x"], "?x"),
    ],
)
def test_substitute(template: str, params: list[Any], expected: str) -> None:
    assert args.substitute(template, params) == expected


@pytest.mark.parametrize(
    ("template", "params", "error"),
    [
        ("? ?", ["x"], TypeError),
        ("?", ["x", "y"], TypeError),
        ("?f", ["a b"], ValueError),
        ("?", ["a\r\nb"], ValueError),
        ("?", [True], TypeError),
        ("?", [1.5], TypeError),
        ("?s", [["a"]], TypeError),
        ("?s", [[1.5]], TypeError),
        ("?s", [[(1, "a")]], TypeError),
        ("?s", [[(1,)]], ValueError),
        ("?s", [[(1, 2, 3)]], ValueError),
        # beyond the table
        ("?", ["a\x00b"], ValueError),
        ("?", [["ok", "a\nb"]], ValueError),
        ("?", [None], TypeError),
        ("?", [b"x"], TypeError),
        ("?f", ["(a (b))"], ValueError),
        ("?f", [[r"\Seen", 1]], TypeError),
        ("?f", [["a b"]], ValueError),
        ("?s", ["1 2"], ValueError),
        ("?s", [b"1"], TypeError),
        ("?", "x", TypeError),  # params must be a sequence of values, not a str
        ("?", None, TypeError),
    ],
)
def test_substitute_errors(template: str, params: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        args.substitute(template, params)


def test_substitute_all_consumes_params_across_arguments() -> None:
    criteria = ("FROM ?", b"?", "SUBJECT ?")
    assert args.substitute_all(criteria, ["me@host", "trip report"]) == (
        "FROM me@host",
        b"?",
        'SUBJECT "trip report"',
    )
    with pytest.raises(TypeError):
        args.substitute_all(criteria, ["me@host"])
    with pytest.raises(TypeError):
        args.substitute_all(criteria, ["a", "b", "c"])


# --- 3.5: _encode_criteria ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "criteria", "expected"),
    [
        (None, ("TEXT", "x"), ("TEXT", "x")),
        ("UTF-8", ("TEXT", "XXXXXX"), (b"TEXT", b"XXXXXX")),
        ("UTF-8", ('"café"',), ('"café"'.encode(),)),
        ("ISO-8859-1", ('"café"',), ('"café"'.encode("latin-1"),)),
        ("KOI8-U", ('"Київ"',), ('"Київ"'.encode("koi8-u"),)),
        ("SHIFT_JIS", ('"日本"',), ('"日本"'.encode("shift_jis"),)),
        ("SHIFT_JIS", (b'"already"',), (b'"already"',)),
        (b"UTF-8", ('"café"',), ('"café"'.encode(),)),
        ("no-such-charset", (b"TEXT",), (b"TEXT",)),
        ("NF_Z_62-010_(1973)", (b"TEXT", b"XXXXXX"), (b"TEXT", b"XXXXXX")),
        ("UTF-8", ["TEXT", b"x"], (b"TEXT", b"x")),
    ],
)
def test_encode_criteria(charset: Any, criteria: Any, expected: tuple[Any, ...]) -> None:
    assert args.encode_criteria(charset, criteria) == expected


@pytest.mark.parametrize("charset", ["no-such-charset", b"no-such-charset", "base64", b"\xff"])
def test_encode_criteria_unknown_charset(charset: Union[str, bytes]) -> None:
    with pytest.raises(LookupError):
        args.encode_criteria(charset, ("TEXT",))


def test_encode_criteria_unencodable_text() -> None:
    with pytest.raises(UnicodeEncodeError):
        args.encode_criteria("US-ASCII", ("Київ",))


# --- 3.2: NUL/CR/LF ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"a\x00b", b"a\rb", b"a\nb", b"\r\n", b"\x00"])
def test_check_no_crlf_nul_refuses(data: bytes) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(CRLF_NUL)}$"):
        args.check_no_crlf_nul(data)


@pytest.mark.parametrize("data", [b"", b"INBOX", b"a\tb", b"\x01\x1f\x7f", b'"a\x0bb"', b"\xff"])
def test_check_no_crlf_nul_allows(data: bytes) -> None:
    args.check_no_crlf_nul(data)  # no exception


# --- 2.1: ID ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "imaplib", "version": "3.16"}, '("name" "imaplib" "version" "3.16")'),
        (None, "NIL"),
        ({}, "NIL"),
        ({"name": 'my "client"', "os": None}, r'("name" "my \"client\"" "os" NIL)'),
        ({"path": "C:\\x"}, r'("path" "C:\\x")'),
    ],
)
def test_id_list(fields: Any, expected: str) -> None:
    assert args.id_list(fields) == expected


@pytest.mark.parametrize("fields", [[("name", "x")], "name", {1: "x"}, {"name": 3}, {"n": b"x"}])
def test_id_list_type_errors(fields: Any) -> None:
    with pytest.raises(TypeError):
        args.id_list(fields)


# --- Properties --------------------------------------------------------------------------------

no_surrogates = st.characters(codec="utf-8")  # every character but the surrogates
texts = st.text(alphabet=no_surrogates)
ascii_texts = st.text(alphabet=st.characters(max_codepoint=0x7F))
# Lean on the characters that matter to the quoting and the modified UTF-7 rules.
tricky_texts = st.lists(
    st.one_of(
        st.sampled_from(['"', "\\", " ", "(", ")", "{", "%", "*", "&", "-", "&-", "]", "\x7f"]),
        st.sampled_from(['"a"', '""', "&APw-", "&AGE-", "\\\\", '\\"']),
        st.characters(max_codepoint=0x7F),
        no_surrogates,
    ),
    max_size=12,
).map("".join)
any_text = st.one_of(texts, tricky_texts)
any_bytes = st.one_of(st.binary(), tricky_texts.map(lambda s: s.encode("utf-8")))


def encodable(arg: Union[str, bytes], encoding: str) -> bool:
    try:
        if isinstance(arg, str):
            arg.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@given(st.one_of(any_text, any_bytes), st.sampled_from(MODES))
@example('"a" SELECT evil "', A)
@example("\\", A)
@example(b'"\\', A)
def test_quote_parses_back_to_the_input(arg: Union[str, bytes], encoding: str) -> None:
    if not encodable(arg, encoding):
        with pytest.raises(UnicodeEncodeError):
            args.quote(arg, encoding)
        return
    raw = arg.encode(encoding) if isinstance(arg, str) else arg
    assert parse_quoted(args.quote(arg, encoding)) == raw


@given(st.one_of(any_text, any_bytes), st.sampled_from(MODES))
@example('"a\\"', A)
@example('"a\\\\"', A)
def test_astring_shape_and_idempotence(arg: Union[str, bytes], encoding: str) -> None:
    if not encodable(arg, encoding):
        return
    raw = arg.encode(encoding) if isinstance(arg, str) else arg
    out = args.astring(arg, encoding)
    # an atom, one (leniently) well-formed quoted string passed through, or the quoted input
    if out == raw:
        assert is_atom(out) or is_quoted_lenient(out)
    else:
        assert not is_atom(raw) and not is_quoted_lenient(raw)
        assert parse_quoted(out) == raw
    assert args.astring(out, encoding) == out
    try:
        text = out.decode(encoding)
    except UnicodeDecodeError:
        return
    assert args.astring(text, encoding) == out


@given(st.one_of(any_text, any_bytes), st.sampled_from(MODES))
def test_list_mailbox_idempotence(arg: Union[str, bytes], encoding: str) -> None:
    out = args.list_mailbox(arg, encoding)
    assert args.list_mailbox(out, encoding) == out
    if isinstance(arg, bytes):
        # bytes skip the modified UTF-7 step, so their output read back as a str need not be
        # valid modified UTF-7 (b"&" stays "&", while the str "&" is sent as "&-")
        return
    try:
        text = out.decode(encoding)
    except UnicodeDecodeError:
        return
    assert args.list_mailbox(text, encoding) == out


@given(any_text)
@example("a\x00b\r\nc")
@example('"ü"')
@example("Entw&APw-rfe")
@example("&")
def test_mailbox_ascii_mode_is_safe_and_round_trips(name: str) -> None:
    out = args.mailbox(name, A)
    assert all(0x20 <= b < 0x7F for b in out), out
    args.check_no_crlf_nul(out)
    already = is_valid_mutf7(name)
    step = name.encode("ascii") if already else utf7.encode(name)
    # the modified UTF-7 form, either as it is (an atom or a quoted string) or quoted
    body = step if out == step else parse_quoted(out)
    assert body == step
    assert utf7.decode(step) == (utf7.decode(name.encode("ascii")) if already else name)
    assert args.mailbox(out, A) == out


@given(any_text)
def test_list_mailbox_ascii_mode_agrees_with_mailbox(name: str) -> None:
    out = args.list_mailbox(name, A)
    assert all(0x20 <= b < 0x7F for b in out)
    mailbox_out = args.mailbox(name, A)
    if b"%" not in mailbox_out and b"*" not in mailbox_out:
        assert out == mailbox_out


@given(st.one_of(any_text, any_bytes))
def test_modes_agree_on_bytes_and_ascii(arg: Union[str, bytes]) -> None:
    if isinstance(arg, bytes):
        for func in (args.quote, args.astring, args.mailbox, args.list_mailbox):
            assert func(arg, A) == func(arg, U)
        assert args.mailbox(arg, A) == args.astring(arg, A)
        return
    # UTF-8 mode does no modified UTF-7: a mailbox is an astring
    assert args.mailbox(arg, U) == args.astring(arg, U)
    assert args.quote(arg, U) == args.quote(arg.encode("utf-8"), A)
    assert args.astring(arg, U) == args.astring(arg.encode("utf-8"), A)
    if encodable(arg, A):
        assert args.quote(arg, A) == args.quote(arg, U)
        assert args.astring(arg, A) == args.astring(arg, U)
        if all(0x20 <= ord(c) < 0x7F and c != "&" for c in arg):
            assert args.mailbox(arg, A) == args.mailbox(arg, U)
            assert args.list_mailbox(arg, A) == args.list_mailbox(arg, U)
    else:
        with pytest.raises(UnicodeEncodeError):
            args.astring(arg, A)
        # non-ASCII never travels as an atom
        assert not is_atom(args.mailbox(arg, U))


message_numbers = st.integers(min_value=1, max_value=60)
sequence_items = st.one_of(
    message_numbers,
    st.tuples(message_numbers, st.one_of(message_numbers, st.none(), st.just("*"))),
    st.builds(
        lambda start, length, step: range(start, start + length * step, step),
        message_numbers,
        st.integers(min_value=1, max_value=5),
        st.integers(min_value=1, max_value=3),
    ),
)
STAR = 1000  # stands for "*" when the set is expanded


def expand(seq_set: str) -> set[int]:
    numbers: set[int] = set()
    for part in seq_set.split(","):
        bounds = [STAR if p == "*" else int(p) for p in part.split(":")]
        low, high = min(bounds), max(bounds)
        numbers.update(range(low, high + 1))
    return numbers


def expected_numbers(item: Any) -> set[int]:
    if isinstance(item, int):
        return {item}
    if isinstance(item, range):
        return set(item)
    start, stop = item
    stop = STAR if stop in (None, "*") else stop
    return set(range(min(start, stop), max(start, stop) + 1))


@given(st.lists(sequence_items, min_size=1, max_size=8))
def test_sequence_set_shape_and_meaning(items: list[Any]) -> None:
    out = args.sequence_set(items)
    assert re.fullmatch(r"[0-9*:,]+", out)
    assert expand(out) == set().union(*(expected_numbers(i) for i in items))
    # a formatted set is a valid "?s" value and a scalar that passes through
    assert args.substitute("?s", [out]) == out
    assert args.sequence_set(out) == out


junk = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=True),
        texts,
        st.binary(max_size=8),
        st.sampled_from(["?", "?f", "?s", "??", "*", "(", ")", "\r\n", "\\"]),
        st.builds(range, st.integers(-3, 5), st.integers(-3, 8)),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children),
        st.tuples(children, children),
        st.tuples(children, children, children),
        st.dictionaries(texts, children, max_size=3),
    ),
    max_leaves=10,
)


@given(junk, st.sampled_from(MODES))
def test_junk_only_raises_type_or_value_errors(value: Any, encoding: str) -> None:
    calls: list[Callable[[], object]] = [
        lambda: args.quote(value, encoding),
        lambda: args.astring(value, encoding),
        lambda: args.list_mailbox(value, encoding),
        lambda: args.mailbox(value, encoding),
        lambda: args.sequence_set(value),
        lambda: args.set_quote(value),
        lambda: args.fetch_parts(value),
        lambda: args.substitute(value, [value]),
        lambda: args.substitute("? ?f ?s", value),
        lambda: args.substitute("?", [value]),
        lambda: args.substitute("?f", [value]),
        lambda: args.substitute("?s", [value]),
        lambda: args.substitute_all(value, [value]),
        lambda: args.check_no_crlf_nul(value),
        lambda: args.id_list(value),
        lambda: args.encode_criteria(None, value),
        lambda: args.encode_criteria("utf-8", value),
    ]
    for call in calls:
        try:
            result = call()
        except (TypeError, ValueError):
            continue
        # anything accepted is well-typed
        assert result is None or isinstance(result, (str, bytes, tuple))
    with contextlib.suppress(TypeError, ValueError, LookupError):
        args.encode_criteria(value, ("TEXT",))


@given(junk, st.sampled_from(MODES))
def test_junk_accepted_as_text_is_safe(value: Any, encoding: str) -> None:
    # whatever "?" accepts can go inline: no NUL, CR or LF, and it is one astring or list
    try:
        out = args.substitute("?", [value])
    except (TypeError, ValueError):
        return
    args.check_no_crlf_nul(out.encode("utf-8"))


# --- The module itself -------------------------------------------------------------------------

ARGS_SOURCE = Path(args.__file__).read_text(encoding="utf-8")


def test_module_is_sans_io() -> None:
    tree = ast.parse(ARGS_SOURCE)
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id != "print"
    assert not imported & {"socket", "ssl", "select", "selectors", "subprocess", "os", "io"}


def test_patterns_are_compiled_once() -> None:
    tree = ast.parse(ARGS_SOURCE)
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        for node in ast.walk(func):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert not (node.value.id == "re" and node.attr not in ("Match", "Pattern")), (
                    f"{func.name} calls re.{node.attr} per call"
                )
