"""``mailwire.imaplib`` against the private Dovecot, with the stdlib's ``imaplib`` as the oracle.

The centre is :func:`scripted_session`: one fixed IMAP session (login, LIST, CREATE, APPEND of
plain, LF-only, multipart, non-ASCII and 1 MiB messages with flags and dates, SELECT, SEARCH,
FETCH of many kinds, STORE, COPY, UID commands, SORT/THREAD, STATUS, quota and ACL queries,
EXPUNGE, EXAMINE, CLOSE, RENAME, DELETE, a refused command, LOGOUT) run through the stdlib,
through mailwire, and through mailwire forced onto its line-by-line path, over plaintext,
STARTTLS and implicit TLS. Each run starts from the same emptied store whose UIDVALIDITY
counter is seeded (see :func:`reset_store`), so the results compare exactly; the only thing
normalised is the timing Dovecot appends to tagged replies ("(0.001 + 0.000 secs)"). The
results are also checked against what the appended bytes predict.

The rest is mailwire on its own, for what the installed stdlib (3.9-3.13) lacks or does
differently by design (the newest stdlib is the spec, docs/notes/newest-imaplib-behaviour.md):
TLS verification, the preauth stream, SASL logins, quota, ACL, IDLE, MOVE, ID, the ``uid=``
keyword, modified UTF-7 mailbox names, SEARCH charsets, ENABLE, and a bulk fetch.

Dovecot facts these tests rely on (2.3.19, as configured by tests/support/dovecot.py):

- every tagged OK/NO/BAD text but LOGIN's ends in a timing, "Select completed (0.002 + 0.000 +
  0.001 secs)."; LOGIN answers "OK [CAPABILITY ...] Logged in" (no timing);
- UIDVALIDITY comes from a per-user counter file, ``dovecot-uidvalidity``: a new mailbox gets the
  stored value + 1, so seeding the file makes every UIDVALIDITY (and APPENDUID/COPYUID) fixed;
- MOVE answers ``* OK [COPYUID v src dst] Moved UIDs.``, ``* n EXPUNGE``, then the tagged OK;
- IDLE reports another session's APPEND as ``* n EXISTS`` + ``* n RECENT``, about 0.5 s later;
- ENABLE UTF8=ACCEPT is answered "OK Enabled." without an ``* ENABLED`` line (not supported);
- SETQUOTA is stored in the ``quota_set`` dict but GETQUOTA keeps reporting the configured limit.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import random
import re
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

import mailwire.imaplib as mimaplib
from support.dovecot import MAIL_USER, DovecotServer

pytestmark = pytest.mark.dovecot

TIMEOUT = 10
#: The value written to each user's ``dovecot-uidvalidity`` after ``clear``: INBOX then gets
#: UIDVALIDITY 1001 and each mailbox created after it the next number.
UIDVALIDITY_SEED = 1000
INBOX_UIDVALIDITY = UIDVALIDITY_SEED + 1

# Dovecot appends " (0.001 + 0.000 secs)" or " (0.002 + 0.000 + 0.001 secs)" to tagged replies.
_TIMING = re.compile(r" \((?:\d+\.\d+ \+ )*\d+\.\d+ secs\)")
_TIMING_BYTES = re.compile(_TIMING.pattern.encode("ascii"))


def untimed(value: Any) -> Any:
    """``value`` with Dovecot's timings removed from every str and bytes inside it."""
    if isinstance(value, bytes):
        return _TIMING_BYTES.sub(b"", value)
    if isinstance(value, str):
        return _TIMING.sub("", value)
    if isinstance(value, tuple):
        return tuple(untimed(item) for item in value)
    if isinstance(value, list):
        return [untimed(item) for item in value]
    return value


#: Dovecot puts its post-login capabilities in a ``[CAPABILITY ...]`` code of the tagged OK to
#: LOGIN/AUTHENTICATE, unless the client sent CAPABILITY before: then in an untagged
#: ``* CAPABILITY`` line. The 3.9-3.13 stdlib always sends CAPABILITY after the greeting; the
#: newest reads the greeting's code instead, so the two see different LOGIN replies.
_CAPABILITY_CODE = re.compile(rb"^\[CAPABILITY [^\]]*\] ")


def logged_in(result: Any) -> Any:
    """A LOGIN/AUTHENTICATE result without the ``[CAPABILITY ...]`` code."""
    typ, data = result
    return typ, [_CAPABILITY_CODE.sub(b"", item) for item in data]


def reset_store(server: DovecotServer, user: str) -> None:
    """Empty ``user``'s store and seed its UIDVALIDITY counter (INBOX gets 1001)."""
    server.clear(user)
    root = server.maildir(user)
    uid, gid = pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_USER).gr_gid
    # Dovecot keeps the last value in the file and a marker named after it.
    for name, text in (
        ("dovecot-uidvalidity", "%08x" % UIDVALIDITY_SEED),
        ("dovecot-uidvalidity.%08x" % UIDVALIDITY_SEED, ""),
    ):
        path = root / name
        path.write_text(text, encoding="ascii")
        os.chown(path, uid, gid)


@pytest.fixture
def fixed(fresh_dovecot: DovecotServer) -> DovecotServer:
    """The Dovecot with every user's store empty and its UIDVALIDITY counter seeded."""
    for user in fresh_dovecot.users:
        reset_store(fresh_dovecot, user)
    return fresh_dovecot


def verifying(server: DovecotServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


# -- clients ------------------------------------------------------------------------------------


class _LineByLine:
    """Overriding ``readline`` turns mailwire's buffered fast path off (the subclass seam)."""

    def readline(self) -> bytes:
        return super().readline()  # type: ignore[misc, no-any-return]


class LineIMAP4(_LineByLine, mimaplib.IMAP4):
    pass


class LineIMAP4_SSL(_LineByLine, mimaplib.IMAP4_SSL):
    pass


class Client(NamedTuple):
    name: str
    IMAP4: Any
    IMAP4_SSL: Any
    IMAP4_stream: Any
    error: type[Exception]


STDLIB = Client(
    "stdlib", imaplib.IMAP4, imaplib.IMAP4_SSL, imaplib.IMAP4_stream, imaplib.IMAP4.error
)
MAILWIRE = Client(
    "mailwire", mimaplib.IMAP4, mimaplib.IMAP4_SSL, mimaplib.IMAP4_stream, mimaplib.IMAP4.error
)
MAILWIRE_LINES = Client(
    "mailwire-line-by-line", LineIMAP4, LineIMAP4_SSL, mimaplib.IMAP4_stream, mimaplib.IMAP4.error
)
CLIENTS = (STDLIB, MAILWIRE, MAILWIRE_LINES)


def connect(kind: Client, transport: str, server: DovecotServer) -> Any:
    """A connection (not logged in) over ``plain``, ``starttls`` (not yet upgraded) or ``ssl``."""
    if transport == "ssl":
        return kind.IMAP4_SSL(
            "localhost", server.ports["imaps"], ssl_context=verifying(server), timeout=TIMEOUT
        )
    host = "localhost" if transport == "starttls" else server.host
    return kind.IMAP4(host, server.ports["imap"], timeout=TIMEOUT)


@contextlib.contextmanager
def session(server: DovecotServer, user: str = "alice", kind: Client = MAILWIRE) -> Iterator[Any]:
    """A logged-in connection, logged out afterwards."""
    client = kind.IMAP4(server.host, server.ports["imap"], timeout=TIMEOUT)
    try:
        client.login(user, server.users[user])
        yield client
    finally:
        if client.state != "LOGOUT":
            client.logout()


# -- the messages -------------------------------------------------------------------------------


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


PLAIN = _crlf(
    "From: Alice <alice@example.org>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: plain text\n"
    "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
    "Message-ID: <plain@example.org>\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "this is a plain text message.\n"
)
LF_ONLY = (
    b"From: Carol <carol@example.org>\n"
    b"Subject: Re: plain text\n"
    b"Date: Tue, 02 Jan 2024 11:30:00 +0100\n"
    b"Message-ID: <reply@example.org>\n"
    b"In-Reply-To: <plain@example.org>\n"
    b"References: <plain@example.org>\n"
    b"\n"
    b"stored with LF only: APPEND makes every line end in CRLF\n"
    b".a line starting with a dot\n"
)


def _multipart() -> bytes:
    import base64

    attachment = base64.encodebytes(bytes(range(256)) * 8).decode("ascii")
    return _crlf(
        "From: alice@example.org\n"
        "Subject: multipart with attachment\n"
        "Date: Wed, 03 Jan 2024 09:00:00 +0000\n"
        "Message-ID: <multipart@example.org>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="==b0undary=="\n'
        "\n"
        "This is a multi-part message in MIME format.\n"
        "--==b0undary==\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "See the attachment.\n"
        "--==b0undary==\n"
        "Content-Type: application/octet-stream\n"
        'Content-Disposition: attachment; filename="bytes.bin"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n" + attachment + "--==b0undary==--\n"
    )


NON_ASCII = _crlf(
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4g4pyT?=\n"  # "Grüße aus Köln ✓"
    "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\n"
    "Date: Thu, 04 Jan 2024 09:00:00 +0000\n"
    "Message-ID: <non-ascii@example.org>\n"
    "X-Raw-8bit: Grüße, 台北\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Grüße aus Köln — ünïcödé ✓\n"
    "台北的天氣\n"
)
EIGHT_BIT_SUBJECT = _crlf(
    "Subject: Entwürfe für 台北\n"  # raw UTF-8 in a header: ENVELOPE sends it as a literal
    "From: Dora <dora@example.org>\n"
    "Date: Fri, 05 Jan 2024 08:00:00 -0500\n"
    "Message-ID: <eight-bit@example.org>\n"
    "\n"
    "body\n"
)


def _large(size: int = 1024 * 1024) -> bytes:
    rng = random.Random(1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ .,"
    lines = [
        "Subject: about one MiB",
        "Date: Sat, 06 Jan 2024 00:00:00 +0000",
        "Message-ID: <large@example.org>",
        "",
    ]
    total = 0
    while total < size:
        line = "".join(rng.choices(alphabet, k=rng.choice((0, 1, 60, 76, 76, 200, 998))))
        lines.append(line)
        total += len(line) + 2
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


LARGE = _large()
ARCHIVED = _crlf("Subject: archived\nMessage-ID: <archived@example.org>\n\nin Archive\n")
_CET = timezone(timedelta(hours=1))


class Append(NamedTuple):
    mailbox: str
    flags: Any
    date_time: Any
    message: bytes
    #: the INTERNALDATE the server must report, as a POSIX time
    when: float


APPENDS = [
    Append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', PLAIN, 1704103200),
    Append(
        "INBOX", r"(\Seen \Flagged)", datetime(2024, 1, 2, 11, 30, tzinfo=_CET), LF_ONLY, 1704191400
    ),
    Append("INBOX", r"\Answered", 1704272400, _multipart(), 1704272400),
    Append("INBOX", None, 1704358800.0, NON_ASCII, 1704358800),
    Append("INBOX", "$Custom", '"05-Jan-2024 08:00:00 -0500"', EIGHT_BIT_SUBJECT, 1704459600),
    Append("INBOX", None, datetime(2024, 1, 6, tzinfo=timezone.utc), LARGE, 1704499200),
    Append("Archive", r"\Seen", '"07-Jan-2024 00:00:00 +0000"', ARCHIVED, 1704585600),
]
INBOX_APPENDS = [entry for entry in APPENDS if entry.mailbox == "INBOX"]


def crlf_normalised(message: bytes) -> bytes:
    """What APPEND stores: every line ending made CRLF (the clients translate by default)."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", message)


def test_messages_cover_the_awkward_shapes() -> None:
    assert len(LARGE) >= 1024 * 1024
    assert b"\r" not in LF_ONLY
    assert not NON_ASCII.isascii() and not EIGHT_BIT_SUBJECT.isascii()
    assert max(map(len, LARGE.split(b"\r\n"))) == 998
    assert len({entry.when for entry in APPENDS}) == len(APPENDS)


# -- the same session through the stdlib and mailwire -------------------------------------------


class Recorder:
    """Calls client methods, recording ``(label, result)``; errors become ``("raised", ...)``."""

    def __init__(self, kind: Client) -> None:
        self.kind = kind
        self.results: list[tuple[str, Any]] = []

    def __call__(self, label: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            value = func(*args, **kwargs)
        except imaplib.IMAP4.error as exc:  # mailwire's error subclasses the stdlib's
            assert isinstance(exc, self.kind.error), (label, type(exc))
            value = ("raised", type(exc).__name__, str(exc))
        self.results.append((label, untimed(value)))
        return value

    def note(self, label: str, value: Any) -> None:
        self.results.append((label, untimed(value)))


def scripted_session(kind: Client, transport: str, server: DovecotServer) -> list[tuple[str, Any]]:
    """One fixed session as ``alice`` on a freshly reset store; returns ``[(label, result)]``.

    Every argument is written so that the 3.9-3.13 stdlib (which quotes nothing) and the newest
    stdlib behaviour (which quotes where needed and leaves well-formed quoted strings and
    modified UTF-7 names alone) send the same command.
    """
    reset_store(server, "alice")
    step = Recorder(kind)
    client = connect(kind, transport, server)
    try:
        step.note("welcome", client.welcome)
        if transport == "starttls":
            step("starttls", client.starttls, ssl_context=verifying(server))
        step.note("tls", isinstance(client.sock, ssl.SSLSocket))
        step.note("state", client.state)
        step.note("capabilities before login", client.capabilities)
        step.note("login", logged_in(client.login("alice", server.users["alice"])))
        step.note("state after login", client.state)
        step("list (empty store)", client.list)
        for name in ("Archive", '"Two words"', "Entw&APw-rfe", "Parent/Child"):
            step(f"create {name}", client.create, name)
        step("list", client.list)
        step("list Parent/%", client.list, '""', "Parent/%")
        step("lsub (none)", client.lsub)
        step("subscribe", client.subscribe, "Archive")
        step("lsub", client.lsub)
        for n, entry in enumerate(APPENDS, 1):
            step(f"append {n}", client.append, *entry[:4])
        step("select", client.select, "INBOX")
        step.note("state after select", client.state)
        for code in ("FLAGS", "PERMANENTFLAGS", "UIDVALIDITY", "UIDNEXT", "READ-WRITE"):
            step(f"response({code})", client.response, code)
        step("recent", client.recent)
        for criteria in (
            ("ALL",),
            ("UNSEEN",),
            ("FLAGGED",),
            ("KEYWORD", "$Custom"),
            ("SUBJECT", '"multipart"'),
            ("LARGER", "500000"),
            ("HEADER", "Message-ID", '"<reply@example.org>"'),
            ("SINCE", "03-Jan-2024", "BEFORE", "06-Jan-2024"),
        ):
            step(f"search {criteria}", client.search, None, *criteria)
        for criteria in (
            ("SUBJECT", '"Grüße"'.encode()),
            ("BODY", '"台北"'.encode()),
            ("SUBJECT", '"Entwürfe"'.encode()),
        ):
            step(f"search UTF-8 {criteria}", client.search, "UTF-8", *criteria)
        step("fetch summary", client.fetch, "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)")
        step("fetch subjects", client.fetch, "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        step("fetch FAST", client.fetch, "1:*", "FAST")
        step("fetch bodystructure", client.fetch, "3", "(BODYSTRUCTURE)")
        step("fetch part 2", client.fetch, "3", "(BODY.PEEK[2])")
        step("fetch partial", client.fetch, "6", "(BODY.PEEK[TEXT]<100.50>)")
        for n in range(1, len(INBOX_APPENDS) + 1):
            step(f"fetch {n} RFC822", client.fetch, str(n), "(RFC822)")
        step("fetch flags", client.fetch, "1:*", "(FLAGS)")
        step("store +Deleted", client.store, "1", "+FLAGS", r"\Deleted")
        step("store -Seen", client.store, "2", "-FLAGS", r"(\Seen)")
        step("store silent", client.store, "3", "FLAGS.SILENT", r"(\Answered $Other)")
        step("copy", client.copy, "2:3", "Archive")
        step("copy to quoted", client.copy, "4", '"Two words"')
        step("copy to mutf7", client.copy, "5", "Entw&APw-rfe")
        step("uid search", client.uid, "SEARCH", "ALL")
        step("uid fetch", client.uid, "FETCH", "2:4", "(FLAGS RFC822.SIZE)")
        step("uid store", client.uid, "STORE", "4", "+FLAGS", r"(\Flagged)")
        step("uid copy", client.uid, "COPY", "4", "Archive")
        step("uid move", client.uid, "MOVE", "5", "Archive")
        step("response(COPYUID)", client.response, "COPYUID")
        step("sort date", client.sort, "DATE", "UTF-8", "ALL")
        step("sort reverse subject", client.sort, "REVERSE SUBJECT", "UTF-8", "ALL")
        step("uid sort", client.uid, "SORT", "(ARRIVAL)", "UTF-8", "ALL")
        step("thread references", client.thread, "REFERENCES", "UTF-8", "ALL")
        step("thread orderedsubject", client.thread, "ORDEREDSUBJECT", "UTF-8", "ALL")
        step("status", client.status, "Archive", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
        step("status quoted", client.status, '"Two words"', "(MESSAGES)")
        step("getquotaroot", client.getquotaroot, "INBOX")
        step("getacl", client.getacl, "INBOX")
        step("myrights", client.myrights, "Archive")
        step("namespace", client.namespace)
        step("check", client.check)
        step("noop", client.noop)
        step("expunge", client.expunge)
        step("fetch after expunge", client.fetch, "1:*", "(UID FLAGS)")
        step("refused fetch item", client.fetch, "1", "(NO-SUCH-ITEM)")
        step("examine", client.select, "Archive", readonly=True)
        step.note("is_readonly", client.is_readonly)
        step(
            "fetch in examine",
            client.fetch,
            "1:*",
            "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        )
        step("select missing", client.select, '"No such mailbox"')
        step.note("state after failed select", client.state)
        step("select again", client.select, "INBOX")
        step("close", client.close)
        step.note("state after close", client.state)
        step("fetch after close", client.fetch, "1", "(FLAGS)")
        step("rename", client.rename, "Archive", '"Old archive"')
        step("delete", client.delete, '"Two words"')
        step("delete missing", client.delete, "No-such-mailbox")
        step("list at the end", client.list)
        step("logout", client.logout)
        step.note("state at the end", client.state)
    finally:
        if client.state != "LOGOUT":
            with contextlib.suppress(Exception):
                client.logout()
    return step.results


def _check_against_the_appends(results: dict[str, Any], transport: str) -> None:
    """What the appended bytes and the protocol predict, independently of any client."""
    assert results["tls"] is (transport != "plain")
    assert results["state"] == "NONAUTH"
    assert "IMAP4REV1" in results["capabilities before login"]
    assert ("STARTTLS" in results["capabilities before login"]) is (transport == "plain")
    assert results["login"] == ("OK", [b"Logged in"])
    assert results["state after login"] == "AUTH"
    assert results["list (empty store)"] == ("OK", [b'(\\HasNoChildren) "/" INBOX'])
    names = {line.rpartition(b'"/" ')[2] for line in results["list"][1]}
    assert names == {
        b"INBOX",
        b"Archive",
        b'"Two words"',
        b"Entw&APw-rfe",
        b"Parent",
        b"Parent/Child",
    }
    assert results["list Parent/%"] == ("OK", [b'(\\HasNoChildren) "/" Parent/Child'])
    assert results["lsub (none)"] == ("OK", [None])
    assert results["lsub"] == ("OK", [b'() "/" Archive'])
    inbox_uids = iter(range(1, len(INBOX_APPENDS) + 1))
    for n, entry in enumerate(APPENDS, 1):
        if entry.mailbox == "INBOX":
            validity, uid = INBOX_UIDVALIDITY, next(inbox_uids)
        else:  # Archive, the second mailbox opened
            validity, uid = INBOX_UIDVALIDITY + 1, 1
        assert results[f"append {n}"] == (
            "OK",
            [b"[APPENDUID %d %d] Append completed." % (validity, uid)],
        )
    count = len(INBOX_APPENDS)
    assert results["select"] == ("OK", [b"%d" % count])
    assert results["response(UIDVALIDITY)"] == ("UIDVALIDITY", [b"%d" % INBOX_UIDVALIDITY])
    assert results["response(UIDNEXT)"] == ("UIDNEXT", [b"%d" % (count + 1)])
    assert results["search ('ALL',)"] == ("OK", [b"1 2 3 4 5 6"])
    assert results["search ('FLAGGED',)"] == ("OK", [b"2"])
    assert results["search ('KEYWORD', '$Custom')"] == ("OK", [b"5"])
    assert results["search ('SUBJECT', '\"multipart\"')"] == ("OK", [b"3"])
    assert results["search ('LARGER', '500000')"] == ("OK", [b"6"])
    for key, value, found in (
        ("SUBJECT", '"Grüße"', b"4"),  # RFC 2047 encoded
        ("BODY", '"台北"', b"4"),  # 8-bit body
        ("SUBJECT", '"Entwürfe"', b"5"),  # raw UTF-8 header
    ):
        label = f"search UTF-8 {(key, value.encode())}"
        assert results[label] == ("OK", [found]), label
    summary = results["fetch summary"]
    assert summary[0] == "OK"
    # a message whose ENVELOPE holds raw 8-bit text arrives as (header, literal) pieces
    heads = re.findall(
        rb'(?:^|\)|\x00)(\d+) \(UID (\d+) FLAGS \([^)]*\) RFC822.SIZE (\d+) INTERNALDATE "([^"]+)"',
        b"\x00".join(item if isinstance(item, bytes) else item[0] for item in summary[1]),
    )
    assert [(int(n), int(uid)) for n, uid, _, _ in heads] == [(n, n) for n in range(1, 7)]
    for (_, _, size, stamp), entry in zip(heads, INBOX_APPENDS):
        assert int(size) == len(crlf_normalised(entry.message))
        parsed = mimaplib.Internaldate2tuple(b'INTERNALDATE "%s"' % stamp)
        assert parsed is not None and time.mktime(parsed) == entry.when, stamp
    for n, entry in enumerate(INBOX_APPENDS, 1):
        stored = crlf_normalised(entry.message)
        fetched = results[f"fetch {n} RFC822"]
        assert fetched[0] == "OK"
        header, literal = fetched[1][0]
        assert literal == stored, n
        assert header.startswith(b"%d (" % n) and header.endswith(b"RFC822 {%d}" % len(stored))
    assert results["fetch subjects"][1][0] == (
        b"1 (BODY[HEADER.FIELDS (SUBJECT)] {23}",
        b"Subject: plain text\r\n\r\n",
    )
    assert results["thread references"] == ("OK", [b"(1 2)(3)(4)(5)"])
    # the EXPUNGE of the UID MOVE is still there: expunge() returns what accumulated
    assert results["expunge"] == ("OK", [b"5", b"1"])
    assert results["refused fetch item"] == (
        "raised",
        "error",
        "FETCH command error: BAD "
        "[b'Error in IMAP command FETCH: Unknown parameter: NO-SUCH-ITEM.']",
    )
    assert results["examine"] == ("OK", [b"5"])  # ARCHIVED, 2:3 copied, 4 UID-copied, 5 UID-moved
    assert results["is_readonly"] is True
    assert results["select missing"] == ("NO", [b"Mailbox doesn't exist: No such mailbox."])
    assert results["state after failed select"] == "AUTH"
    assert results["close"] == ("OK", [b"Close completed."])
    assert results["state after close"] == "AUTH"
    assert results["fetch after close"][0] == "raised"
    assert results["fetch after close"][2] == (
        "command FETCH illegal in state AUTH, only allowed in states SELECTED"
    )
    assert results["logout"] == ("BYE", [b"Logging out"])
    assert results["state at the end"] == "LOGOUT"


@pytest.mark.parametrize("transport", ["plain", "starttls", "ssl"])
def test_same_session_stdlib_and_mailwire(fixed: DovecotServer, transport: str) -> None:
    runs = {kind.name: scripted_session(kind, transport, fixed) for kind in CLIENTS}
    stdlib = runs["stdlib"]
    labels = [label for label, _ in stdlib]
    assert len(labels) == len(set(labels))
    for name in ("mailwire", "mailwire-line-by-line"):
        assert [label for label, _ in runs[name]] == labels, name
        for (label, got), (_, want) in zip(runs[name], stdlib):
            assert got == want, f"{name}: {label}"
    _check_against_the_appends(dict(stdlib), transport)


def test_bulk_fetch_identical(fixed: DovecotServer) -> None:
    """About 1,000 messages (some stored with LF endings) fetched whole and in summary."""
    rng = random.Random(1000)
    letters = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,"
    messages = []
    for n in range(1000):
        ending = "\n" if n % 7 == 0 else "\r\n"
        lines = [f"Subject: bulk {n}", f"Message-ID: <bulk{n}@example.org>", ""]
        lines += ["".join(rng.choices(letters, k=rng.choice((0, 40, 76, 300)))) for _ in range(12)]
        messages.append((ending.join(lines) + ending).encode("ascii"))
    start = 1704067200
    for n, message in enumerate(messages):
        fixed.deliver("bob", message, flags="S" if n % 3 else "", date=start + n * 60)
    # A first session takes the \Recent flags, so the compared sessions see the same flags.
    with session(fixed, "bob", STDLIB) as warm:
        assert warm.select("INBOX") == ("OK", [b"%d" % len(messages)])

    def fetch_all(kind: Client) -> tuple[Any, Any]:
        client = kind.IMAP4(fixed.host, fixed.ports["imap"], timeout=TIMEOUT)
        try:
            client.login("bob", fixed.users["bob"])
            client.select("INBOX", readonly=True)  # RFC822 then sets no \Seen
            return client.fetch("1:*", "(UID FLAGS RFC822.SIZE)"), client.fetch("1:*", "(RFC822)")
        finally:
            client.logout()

    stdlib = fetch_all(STDLIB)
    for kind in (MAILWIRE, MAILWIRE_LINES):
        summary, whole = fetch_all(kind)
        assert summary == stdlib[0], kind.name
        assert whole[0] == stdlib[1][0]
        assert len(whole[1]) == len(stdlib[1][1]) == 2 * len(messages)
        for n, (ours, theirs) in enumerate(zip(whole[1], stdlib[1][1])):
            assert ours == theirs, (kind.name, n)
    # and what the delivered files predict, message by message
    assert summary[0] == "OK" and len(summary[1]) == len(messages)
    assert whole[1][1::2] == [b")"] * len(messages)
    seen = set()
    for number, (line, (header, literal)) in enumerate(zip(summary[1], whole[1][0::2]), 1):
        match = re.fullmatch(rb"(\d+) \(UID (\d+) FLAGS \(([^)]*)\) RFC822.SIZE (\d+)\)", line)
        assert match is not None, line
        subject = re.match(rb"Subject: bulk (\d+)\r\n", literal)
        assert subject is not None, literal[:40]
        n = int(subject[1])
        stored = crlf_normalised(messages[n])
        assert literal == stored, n
        assert header == b"%d (RFC822 {%d}" % (number, len(stored))
        assert (int(match[1]), int(match[2]), int(match[4])) == (number, number, len(stored))
        assert match[3] == (b"\\Seen" if n % 3 else b""), (n, line)
        seen.add(n)
    assert seen == set(range(len(messages)))


@pytest.mark.parametrize("transport", ["plain", "ssl"])
def test_huge_literal_identical(fixed: DovecotServer, transport: str) -> None:
    """A 40 MiB message: mailwire receives it through several buffers, each up to 16 times
    what has arrived, with pages faulted in ahead (on Linux); the stdlib allocates it at once.
    Both must return the very bytes Dovecot stored, and mailwire the same result as the
    stdlib, over TLS as over plain TCP."""
    body = LARGE.split(b"\r\n\r\n", 1)[1]
    message = LARGE + body * 39  # about 40 MiB, made quickly
    fixed.deliver("bob", message, flags="S")

    def fetch(kind: Client) -> Any:
        client = connect(kind, transport, fixed)
        try:
            client.login("bob", fixed.users["bob"])
            client.select("INBOX", readonly=True)
            return client.fetch("1", "(RFC822)")
        finally:
            client.logout()

    ours = fetch(MAILWIRE)
    assert ours[0] == "OK"
    (header, literal), trailer = ours[1]
    assert type(literal) is bytes and literal == message
    assert header == b"1 (RFC822 {%d}" % len(message) and trailer == b")"
    assert fetch(STDLIB) == ours


# -- transports and TLS verification ------------------------------------------------------------


def test_plain_connection(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        assert client.welcome.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
        assert client.welcome.endswith(b"] Dovecot (Debian) ready.")
        assert client.state == "NONAUTH"
        assert client.PROTOCOL_VERSION == "IMAP4REV1"
        assert {"STARTTLS", "AUTH=PLAIN", "AUTH=CRAM-MD5", "ID", "IDLE"} <= set(client.capabilities)
        assert "MOVE" not in client.capabilities  # offered only after login
        assert client.sock.gettimeout() == TIMEOUT
        assert client.noop()[0] == "OK"
    finally:
        client.logout()
    assert client.state == "LOGOUT"


def test_capabilities_are_refreshed_after_login(dovecot: DovecotServer) -> None:
    """Newest stdlib behaviour (gh-63121): the LOGIN reply's [CAPABILITY] code is used."""
    with session(dovecot) as client:
        assert {"MOVE", "QUOTA", "ACL", "SORT", "UIDPLUS", "NAMESPACE"} <= set(client.capabilities)
        assert "STARTTLS" not in client.capabilities
        # gh-155775: the refresh leaves the server's CAPABILITY data for response()
        typ, data = client.response("CAPABILITY")
        assert typ == "CAPABILITY" and data[-1].startswith(b"IMAP4rev1 ")


def test_imap4_ssl_with_a_verifying_context(dovecot: DovecotServer) -> None:
    context = verifying(dovecot)
    client = mimaplib.IMAP4_SSL(
        "localhost", dovecot.ports["imaps"], ssl_context=context, timeout=TIMEOUT
    )
    try:
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.context is context
        assert client.sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        assert "STARTTLS" not in client.capabilities
        assert client.login("alice", dovecot.users["alice"])[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
    finally:
        client.logout()


def test_starttls_with_a_verifying_context(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4("localhost", dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        assert "STARTTLS" in client.capabilities
        assert client.starttls(ssl_context=verifying(dovecot)) == ("OK", [None])
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.gettimeout() == TIMEOUT
        assert "STARTTLS" not in client.capabilities  # re-read over TLS
        with pytest.raises(mimaplib.IMAP4.abort, match="TLS session already established"):
            client.starttls(ssl_context=verifying(dovecot))
        assert client.login("alice", dovecot.users["alice"])[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
    finally:
        client.logout()


def _unrelated_ca(directory: Path) -> str:
    """A CA certificate that did not sign the server's certificate."""
    key, cert = directory / "other-ca.key", directory / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=unrelated mailwire imap test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    return str(cert)


class _WrongName(ssl.SSLContext):
    """Verifies the server's certificate against another host name than the one connected to."""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["server_hostname"] = "imap.example.org"
        return super().wrap_socket(sock, *args, **kwargs)


def _wrong_name_context(cafile: str) -> ssl.SSLContext:
    context = _WrongName(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    return context


@pytest.fixture(scope="module")
def unrelated_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _unrelated_ca(tmp_path_factory.mktemp("other-imap-ca"))


@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_verification_failures(dovecot: DovecotServer, unrelated_ca: str, kind: Client) -> None:
    other = ssl.create_default_context(cafile=unrelated_ca)
    client = kind.IMAP4("localhost", dovecot.ports["imap"], timeout=5)
    try:
        with pytest.raises(ssl.SSLCertVerificationError) as upgrade:
            client.starttls(ssl_context=other)
        assert "unable to get local issuer" in upgrade.value.verify_message
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()
    with pytest.raises(ssl.SSLCertVerificationError):
        kind.IMAP4_SSL("localhost", dovecot.ports["imaps"], ssl_context=other, timeout=5)
    # the certificate names localhost and 127.0.0.1, not another host name
    mismatch = _wrong_name_context(dovecot.ca_file)
    with pytest.raises(ssl.SSLCertVerificationError) as wrong_name:
        kind.IMAP4_SSL("localhost", dovecot.ports["imaps"], ssl_context=mismatch, timeout=5)
    assert "mismatch" in wrong_name.value.verify_message.lower()
    client = kind.IMAP4("localhost", dovecot.ports["imap"], timeout=5)
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            client.starttls(ssl_context=mismatch)
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()


def test_preauth_stream(fixed: DovecotServer) -> None:
    """Dovecot's imap binary on stdin/stdout: greeting PREAUTH, state AUTH, same as stdlib."""
    outcomes = {}
    for kind in (STDLIB, MAILWIRE):
        reset_store(fixed, "alice")
        client = kind.IMAP4_stream(fixed.preauth_imap_command("alice"))
        steps = Recorder(kind)
        try:
            assert client.sock is None
            steps.note("welcome", client.welcome)
            steps.note("state", client.state)
            steps.note("capabilities", client.capabilities)
            steps("login refused", client.login, "alice", "x")
            steps(
                "append", client.append, "INBOX", r"(\Seen)", '"01-Jan-2024 10:00:00 +0000"', PLAIN
            )
            steps("select", client.select, "INBOX")
            steps("fetch", client.fetch, "1", "(FLAGS INTERNALDATE RFC822)")
            steps("namespace", client.namespace)
            steps("logout", client.logout)
        finally:
            if client.state != "LOGOUT":
                client.shutdown()
        outcomes[kind.name] = steps.results
    assert outcomes["mailwire"] == outcomes["stdlib"]
    result = dict(outcomes["mailwire"])
    assert result["welcome"].startswith(b"* PREAUTH [CAPABILITY IMAP4rev1 ")
    assert result["welcome"].endswith(b"] Logged in as alice")
    assert result["state"] == "AUTH"
    assert {"MOVE", "IDLE", "QUOTA"} <= set(result["capabilities"])
    assert result["login refused"] == (
        "raised",
        "error",
        "command LOGIN illegal in state AUTH, only allowed in states NONAUTH",
    )
    assert result["fetch"][1][0] == (
        b'1 (FLAGS (\\Seen \\Recent) INTERNALDATE "01-Jan-2024 10:00:00 +0000" RFC822 {%d}'
        % len(PLAIN),
        PLAIN,
    )
    assert result["logout"] == ("BYE", [b"Logging out"])


def test_stream_idle_needs_a_socket_for_a_duration(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4_stream(dovecot.preauth_imap_command("alice"))
    try:
        client.select("INBOX")
        with pytest.raises(mimaplib.IMAP4.error, match="duration requires a socket connection"):
            client.idle(duration=1)
        with client.idle() as idler, pytest.raises(mimaplib.IMAP4.error, match="burst"):
            next(idler.burst())
        assert client.state == "SELECTED"
    finally:
        client.logout()


# -- logins -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_login_with_the_awkward_ascii_password(dovecot: DovecotServer, kind: Client) -> None:
    with session(dovecot, "awk7", kind) as client:  # LOGIN quotes the password: \ " { } % *
        assert client.state == "AUTH"
        assert client.select("INBOX")[0] == "OK"


@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_login_cannot_send_a_non_ascii_password(dovecot: DovecotServer, kind: Client) -> None:
    client = kind.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        with pytest.raises(UnicodeEncodeError):
            client.login("awk", dovecot.users["awk"])
        assert client.state == "NONAUTH"
        assert client.noop()[0] == "OK"  # nothing half-sent
    finally:
        client.logout()


def test_failed_login(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        with pytest.raises(imaplib.IMAP4.error) as failed:
            client.login("alice", "wrong")
        # decoded text (the 3.9-3.13 stdlib passes the bytes)
        assert failed.value.args == ("[AUTHENTICATIONFAILED] Authentication failed.",)
        assert client.state == "NONAUTH"
        assert client.login("alice", dovecot.users["alice"])[0] == "OK"
    finally:
        client.logout()


def _plain(user: str, password: str) -> bytes:
    return b"\0" + user.encode() + b"\0" + password.encode("utf-8")


@pytest.mark.parametrize("user", ["alice", "awk", "awk7"])
@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_authenticate_plain(dovecot: DovecotServer, kind: Client, user: str) -> None:
    challenges: list[bytes] = []

    def answer(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return _plain(user, dovecot.users[user])

    client = kind.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        assert logged_in(client.authenticate("PLAIN", answer)) == ("OK", [b"Logged in"])
        assert challenges == [b""]
        assert client.state == "AUTH"
        assert client.select("INBOX")[0] == "OK"
    finally:
        client.logout()


@pytest.mark.parametrize("user", ["alice", "awk", "awk7"])
def test_login_plain(dovecot: DovecotServer, user: str) -> None:
    for password in (dovecot.users[user], dovecot.users[user].encode("utf-8")):
        client = mimaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
        try:
            assert logged_in(client.login_plain(user, password)) == ("OK", [b"Logged in"])
            assert client.state == "AUTH"
            assert "MOVE" in client.capabilities
            assert client.select("INBOX")[0] == "OK"
        finally:
            client.logout()


def test_failed_authentication(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        with pytest.raises(mimaplib.IMAP4.error) as plain:
            client.login_plain("alice", "wrong")
        assert str(plain.value) == "[AUTHENTICATIONFAILED] Authentication failed."
        with pytest.raises(mimaplib.IMAP4.error) as cancelled:
            client.authenticate("PLAIN", lambda challenge: None)  # sends "*"
        assert str(cancelled.value) == (
            "AUTHENTICATE command error: BAD [b'Authentication aborted by client.']"
        )
        with pytest.raises(ValueError):
            client.login_plain("alice\0", "x")
        assert client.state == "NONAUTH"
        assert client.login_cram_md5("alice", dovecot.users["alice"])[0] == "OK"
    finally:
        client.logout()


@pytest.mark.parametrize("user", ["alice", "awk", "awk7"])
@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_login_cram_md5(dovecot: DovecotServer, kind: Client, user: str) -> None:
    client = kind.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        result = client.login_cram_md5(user, dovecot.users[user])
        assert logged_in(result) == ("OK", [b"Logged in"])
        assert client.state == "AUTH"
    finally:
        client.logout()


# -- quota and ACL ------------------------------------------------------------------------------


def test_quota(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        assert client.getquotaroot("INBOX") == (
            "OK",
            [[b'INBOX "User quota"'], [b'"User quota" (STORAGE 0 102400)']],
        )
        client.append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', LARGE)
        used = b"%d" % ((len(LARGE) + 1023) // 1024)
        assert client.getquota("User quota") == (
            "OK",
            [b'"User quota" (STORAGE ' + used + b" 102400)"],
        )
        assert client.getquota('"User quota"') == client.getquota("User quota")  # idempotent
        assert client.create("With space")[0] == "OK"
        assert client.getquotaroot("With space")[1][0] == [b'"With space" "User quota"']
        typ, data = client.getquota("No such root")
        assert (typ, untimed(data)) == ("NO", [b"Quota root doesn't exist."])
        # alice is an admin: SETQUOTA is stored (in the quota_set dict), GETQUOTA does not show it
        assert client.setquota("User quota", "STORAGE 5000") == ("OK", [None])
        stored = (fixed.home("alice") / "dovecot-quota-set").read_text()
        assert "priv/quota/limit/storage\n5000\n" in stored
        assert client.setquota('"User quota"', "(STORAGE 6000 MESSAGE 10)") == ("OK", [None])
        stored = (fixed.home("alice") / "dovecot-quota-set").read_text()
        assert "priv/quota/limit/storage\n6000\n" in stored
        assert "priv/quota/limit/messages\n10\n" in stored
    with session(fixed, "bob") as client:
        typ, data = client.setquota("User quota", "STORAGE 1")
        assert (typ, untimed(data)) == ("NO", [b"Quota can be changed only by admin."])


def test_acl(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        assert client.getacl("INBOX") == ("OK", [b"INBOX alice lrwstipekxacd"])
        assert client.myrights("INBOX") == ("OK", [b"INBOX lrwstipekxacd"])
        typ, data = client.setacl("INBOX", "bob", "lr")
        assert (typ, untimed(data)) == ("OK", [b"Setacl complete."])
        assert client.getacl("INBOX") == ("OK", [b"INBOX bob lr alice lrwstipekxacd"])
        typ, data = client.setacl("INBOX", "bob", "+w")
        assert client.getacl("INBOX") == ("OK", [b"INBOX bob lrw alice lrwstipekxacd"])
        typ, data = client.xatom("LISTRIGHTS", "INBOX", "bob")
        assert (typ, untimed(data)) == ("OK", [b"Listrights completed."])
        assert client.response("LISTRIGHTS") == (
            "LISTRIGHTS",
            [b'INBOX bob "" l r w s t p i e k x a c d'],
        )
        typ, data = client.deleteacl("INBOX", "bob")
        assert (typ, untimed(data)) == ("OK", [b"Deleteacl complete."])
        assert client.getacl("INBOX") == ("OK", [b"INBOX alice lrwstipekxacd"])
        # mailbox names are quoted and encoded like everywhere else
        assert client.create("Geteilte Entwürfe")[0] == "OK"
        assert client.setacl("Geteilte Entwürfe", "bob", "lr")[0] == "OK"
        assert client.getacl("Geteilte Entwürfe") == (
            "OK",
            [b'"Geteilte Entw&APw-rfe" bob lr alice lrwstipekxacd'],
        )
        assert client.myrights("Geteilte Entwürfe") == (
            "OK",
            [b'"Geteilte Entw&APw-rfe" lrwstipekxacd'],
        )


# -- IDLE ---------------------------------------------------------------------------------------


def test_idle_sees_another_sessions_append(fixed: DovecotServer) -> None:
    with session(fixed) as client, session(fixed) as other:
        assert client.select("INBOX") == ("OK", [b"0"])
        client.response("EXISTS")  # SELECT leaves its EXISTS and RECENT there
        client.response("RECENT")
        with client.idle(duration=10) as idler:
            assert client.state == "IDLING"
            assert other.append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', PLAIN)[0] == "OK"
            seen = []
            for response in idler:
                seen.append(response)
                if response[0] == "RECENT":
                    break
            assert seen == [("EXISTS", [b"1"]), ("RECENT", [b"1"])]
            # burst(): the next responses, until none arrives within the interval
            assert other.append("INBOX", None, '"02-Jan-2024 10:00:00 +0000"', PLAIN)[0] == "OK"
            started = time.monotonic()
            assert list(idler.burst(interval=0.5)) == [("EXISTS", [b"2"]), ("RECENT", [b"2"])]
            assert time.monotonic() - started < 5
            with pytest.raises(mimaplib.IMAP4.error, match="illegal in state IDLING"):
                client.noop()
        assert client.state == "SELECTED"
        assert client.response("EXISTS") == ("EXISTS", [None])  # consumed by the iteration
        assert client.noop()[0] == "OK"
        assert client.fetch("1:*", "(UID)") == ("OK", [b"1 (UID 1)", b"2 (UID 2)"])


def test_idle_duration_expires_quietly(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        client.select("INBOX")
        started = time.monotonic()
        with client.idle(duration=0.3) as idler:
            assert list(idler) == []
            assert list(idler.burst()) == []
        assert 0.25 < time.monotonic() - started < 3
        assert client.state == "SELECTED"
        assert client.noop()[0] == "OK"
        # IDLE in AUTH state works too
        client.unselect()
        with client.idle(duration=0.1) as idler:
            assert list(idler) == []
        assert client.state == "AUTH"


def test_idle_responses_left_unread_go_to_untagged_responses(fixed: DovecotServer) -> None:
    with session(fixed) as client, session(fixed) as other:
        client.select("INBOX")
        client.response("RECENT")
        with client.idle(duration=5) as idler:
            other.append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', PLAIN)
            assert next(idler) == ("EXISTS", [b"1"])
        assert client.state == "SELECTED"
        assert client.response("RECENT") == ("RECENT", [b"1"])


# -- MOVE, ID, UID commands and the uid= keyword ----------------------------------------------


def _fill(client: Any, count: int, mailbox: str = "INBOX") -> None:
    for n in range(1, count + 1):
        message = b"Subject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n"
        date = '"%02d-Jan-2024 10:00:00 +0000"' % n
        assert client.append(mailbox, None, date, message % (n, n, n))[0] == "OK"


def test_move(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        assert client.create("Dest")[0] == "OK"  # UIDVALIDITY 1001, INBOX then gets 1002
        _fill(client, 5)
        client.select("INBOX")
        typ, data = client.move("1", "Dest")
        assert (typ, untimed(data)) == ("OK", [b"Move completed."])
        assert client.response("COPYUID") == ("COPYUID", [b"1001 1 1"])
        assert client.response("EXPUNGE") == ("EXPUNGE", [b"1"])
        typ, data = client.move("3", "Dest", uid=True)  # UID 3 is now message 2
        assert (typ, untimed(data)) == ("OK", [b"Move completed."])
        assert client.response("COPYUID") == ("COPYUID", [b"1001 3 2"])
        assert client.response("EXPUNGE") == ("EXPUNGE", [b"2"])
        typ, data = client.move("1", "No such mailbox")
        assert (typ, untimed(data)) == (
            "NO",
            [b"[TRYCREATE] Mailbox doesn't exist: No such mailbox."],
        )
        typ, data = client.move([1, (2, 3)], "Dest")  # a structured sequence set
        assert client.response("COPYUID") == ("COPYUID", [b"1001 2,4:5 3:5"])
        assert client.select("INBOX") == ("OK", [b"0"])
        assert client.status("Dest", "(MESSAGES)") == ("OK", [b"Dest (MESSAGES 5)"])


def test_id(dovecot: DovecotServer) -> None:
    client = mimaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=TIMEOUT)
    try:
        typ, data = client.id({"name": "mailwire"})  # ID is valid before login
        assert (typ, data) == ("OK", [b'("name" "Dovecot")'])
        client.login("alice", dovecot.users["alice"])
        assert client.id() == ("OK", [b'("name" "Dovecot")'])
        assert client.id({"name": 'my "client"', "version": "1.0", "os": None}) == (
            "OK",
            [b'("name" "Dovecot")'],
        )
        assert client.response("ID") == ("ID", [None])  # consumed
    finally:
        client.logout()


def test_uid_commands(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        client.create("Other")  # UIDVALIDITY 1001
        _fill(client, 6)
        client.select("INBOX")
        # through uid()
        assert client.uid("SEARCH", "ALL") == ("OK", [b"1 2 3 4 5 6"])
        assert client.uid("FETCH", "2:3", "(FLAGS)") == (
            "OK",
            [b"2 (UID 2 FLAGS (\\Recent))", b"3 (UID 3 FLAGS (\\Recent))"],
        )
        assert client.uid("STORE", "2", "+FLAGS", r"(\Seen)") == (
            "OK",
            [b"2 (UID 2 FLAGS (\\Seen \\Recent))"],
        )
        assert client.uid("COPY", "1", "Other") == ("OK", [None])
        assert client.response("COPYUID") == ("COPYUID", [b"1001 1 1"])
        assert client.uid("MOVE", "6", "Other") == ("OK", [None])
        assert client.response("EXPUNGE") == ("EXPUNGE", [b"6"])
        client.store("1", "+FLAGS", r"\Deleted")
        assert client.uid("EXPUNGE", "1") == ("OK", [None])
        assert client.response("EXPUNGE") == ("EXPUNGE", [b"1"])
        # now UIDs 2..5 are messages 1..4; the keyword forms
        assert client.search(None, "ALL", uid=True) == ("OK", [b"2 3 4 5"])
        assert client.search(None, "ALL") == ("OK", [b"1 2 3 4"])
        assert client.fetch("3", "(FLAGS)", uid=True) == ("OK", [b"2 (UID 3 FLAGS (\\Recent))"])
        assert client.fetch([3, (4, 5)], ["FLAGS"], uid=True)[1] == [
            b"2 (UID 3 FLAGS (\\Recent))",
            b"3 (UID 4 FLAGS (\\Recent))",
            b"4 (UID 5 FLAGS (\\Recent))",
        ]
        assert client.store("4", "+FLAGS", r"\Flagged", uid=True) == (
            "OK",
            [b"3 (UID 4 FLAGS (\\Flagged \\Recent))"],
        )
        typ, data = client.copy("4", "Other", uid=True)
        assert (typ, untimed(data)) == ("OK", [b"[COPYUID 1001 4 3] Copy completed."])
        assert client.sort("REVERSE ARRIVAL", "UTF-8", "ALL", uid=True) == ("OK", [b"5 4 3 2"])
        assert client.thread("ORDEREDSUBJECT", "UTF-8", "ALL", uid=True) == (
            "OK",
            [b"(2)(3)(4)(5)"],
        )
        client.store("2:3", "+FLAGS", r"\Deleted", uid=True)
        assert client.expunge("3", uid=True) == ("OK", [b"2"])  # only UID 3 (message 2)
        with pytest.raises(mimaplib.IMAP4.error):
            client.expunge("2")  # a message set needs uid=True
        with pytest.raises(mimaplib.IMAP4.error):
            client.expunge(uid=True)  # UID EXPUNGE needs a message set
        assert client.expunge() == ("OK", [b"1"])  # UID 2, still \Deleted
        assert client.search(None, "ALL", uid=True) == ("OK", [b"4 5"])
        with pytest.raises(mimaplib.IMAP4.error, match=r"Unknown IMAP4 UID command: 'BOGUS'"):
            client.uid("bogus", "1")


def test_structured_arguments_and_params(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        _fill(client, 5)
        client.select("INBOX")
        assert client.search(None, "SUBJECT ?", params=["message 3"]) == ("OK", [b"3"])
        assert client.search(None, "HEADER Message-ID ?", params=["<m4@example.org>"]) == (
            "OK",
            [b"4"],
        )
        assert client.fetch(range(2, 4), "(BODY.PEEK[HEADER.FIELDS ?])", params=[["SUBJECT"]]) == (
            "OK",
            [
                (b"2 (BODY[HEADER.FIELDS (SUBJECT)] {22}", b"Subject: message 2\r\n\r\n"),
                b")",
                (b"3 (BODY[HEADER.FIELDS (SUBJECT)] {22}", b"Subject: message 3\r\n\r\n"),
                b")",
            ],
        )
        assert client.store([1, 5], "+FLAGS", [r"\Seen", r"\Answered"])[1] == [
            b"1 (FLAGS (\\Answered \\Seen \\Recent))",
            b"5 (FLAGS (\\Answered \\Seen \\Recent))",
        ]
        assert client.status("INBOX", ["MESSAGES", "UNSEEN"]) == (
            "OK",
            [b"INBOX (MESSAGES 5 UNSEEN 3)"],
        )


# -- SORT, THREAD, APPEND dates, SEARCH charsets -----------------------------------------------


def test_sort_and_thread(fixed: DovecotServer) -> None:
    messages = [
        ("b topic", "Wed, 03 Jan 2024 10:00:00 +0000", "<t1@x>", ""),
        ("a topic", "Mon, 01 Jan 2024 10:00:00 +0000", "<t2@x>", ""),
        ("Re: b topic", "Tue, 02 Jan 2024 10:00:00 +0000", "<t3@x>", "<t1@x>"),
        ("Re: a topic", "Thu, 04 Jan 2024 10:00:00 +0000", "<t4@x>", "<t2@x>"),
    ]
    for kind in (STDLIB, MAILWIRE):
        reset_store(fixed, "alice")
        with session(fixed, "alice", kind) as client:
            for subject, date, mid, parent in messages:
                header = f"Subject: {subject}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n"
                if parent:
                    header += f"In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
                client.append(
                    "INBOX", None, '"01-Feb-2024 10:00:00 +0000"', (header + "\r\nx\r\n").encode()
                )
            client.select("INBOX")
            assert client.sort("DATE", "UTF-8", "ALL") == ("OK", [b"2 3 1 4"])
            assert client.sort("(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"4 1 3 2"])
            assert client.sort("SUBJECT DATE", "UTF-8", "ALL") == ("OK", [b"2 4 3 1"])
            assert client.sort("DATE", "UTF-8", "SUBJECT", '"a topic"') == ("OK", [b"2 4"])
            assert client.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(2 4)(1 3)"])
            assert client.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(2 4)(3 1)"])
            assert client.uid("THREAD", "REFERENCES", "UTF-8", "ALL") == ("OK", [b"(2 4)(1 3)"])


def test_append_flags_and_dates_round_trip(fixed: DovecotServer) -> None:
    naive_local = time.localtime(1704186000)
    cases = [
        (1704186000, r"\Seen"),
        (1704186000.5, r"(\Seen \Flagged)"),
        (naive_local, r"\Draft"),
        (tuple(naive_local), "$Keyword"),
        (datetime(2024, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=-7, minutes=-30))), None),
        ('"02-Jan-2024 09:00:00 +0000"', r"\Answered $Keyword"),
    ]
    expected_flags = [
        b"(\\Seen \\Recent)",
        b"(\\Flagged \\Seen \\Recent)",
        b"(\\Draft \\Recent)",
        b"(\\Recent $Keyword)",  # Dovecot lists keywords after \\Recent
        b"(\\Recent)",
        b"(\\Answered \\Recent $Keyword)",
    ]
    with session(fixed) as client:
        for date_time, flags in cases:
            # the stdlib's formatting of the date is the oracle for mailwire's
            assert mimaplib.Time2Internaldate(date_time) == imaplib.Time2Internaldate(date_time)
            assert client.append("INBOX", flags, date_time, PLAIN)[0] == "OK"
        client.select("INBOX")
        typ, data = client.fetch("1:*", "(FLAGS INTERNALDATE)")
        assert typ == "OK" and len(data) == len(cases)
        for line, (date_time, _), flags in zip(data, cases, expected_flags):
            assert b" (FLAGS " + flags + b" INTERNALDATE " in line
            parsed = mimaplib.Internaldate2tuple(line)
            assert parsed == imaplib.Internaldate2tuple(line)
            if isinstance(date_time, datetime):
                want = date_time.timestamp()
            elif isinstance(date_time, str):
                want = 1704186000
            elif isinstance(date_time, (int, float)):
                want = int(date_time)  # INTERNALDATE has whole seconds
            else:
                want = time.mktime(tuple(date_time))
            assert parsed is not None and time.mktime(parsed) == want, line
        # Maildir keeps the instant only (as the file's mtime): the offset given is not kept,
        # every INTERNALDATE comes back in the server's own zone
        offsets = {re.search(rb'INTERNALDATE "[^"]+ ([+-]\d{4})"', line)[1] for line in data}
        assert len(offsets) == 1


def test_search_charsets(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        for message in (PLAIN, NON_ASCII, EIGHT_BIT_SUBJECT):
            client.append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', message)
        client.select("INBOX")
        # str criteria are encoded with the charset named (newest stdlib)
        assert client.search("UTF-8", "SUBJECT", '"Grüße"') == ("OK", [b"2"])
        assert client.search("UTF-8", "SUBJECT", '"Entwürfe"') == ("OK", [b"3"])
        assert client.search("UTF-8", "BODY", '"台北"') == ("OK", [b"2"])
        assert client.search("UTF-8", "TEXT", '"Köln"') == ("OK", [b"2"])
        assert client.search("UTF-8", "HEADER", "X-Raw-8bit", '"台北"') == ("OK", [b"2"])
        assert client.search("ISO-8859-1", "SUBJECT", '"Grüße"') == ("OK", [b"2"])
        assert client.search("UTF-8", "SUBJECT ?", params=["Grüße aus"]) == ("OK", [b"2"])
        assert client.search("UTF-8", "SUBJECT", "nothing-matches") == ("OK", [b""])
        # bytes criteria are sent as they are
        assert client.search("UTF-8", "SUBJECT", '"Grüße"'.encode()) == ("OK", [b"2"])
        with pytest.raises(LookupError):  # str criteria need a codec for the charset
            client.search("X-NO-SUCH-CHARSET", "SUBJECT", "x")
        typ, data = client.search("X-NO-SUCH-CHARSET", b"SUBJECT", b"x")
        assert (typ, untimed(data)) == ("NO", [b"[BADCHARSET] Unknown charset."])
        typ, data = client.sort("SUBJECT", "UTF-8", "SUBJECT", '"ü"')
        assert typ == "OK"
        with pytest.raises(UnicodeEncodeError):
            client.search(None, "SUBJECT", '"Grüße"')  # no charset: ASCII only
        assert client.noop()[0] == "OK"


# -- mailbox names -----------------------------------------------------------------------------

AWKWARD_NAMES = [
    # name, as LIST shows it
    ("Entwürfe", b"Entw&APw-rfe"),
    ("台北", b"&U,BTFw-"),
    ("with space", b'"with space"'),
    ('q"uote', b'"q\\"uote"'),
    ("back\\slash", b'"back\\\\slash"'),
    ("amp&ersand", b"amp&-ersand"),
    ("Brüder & Söhne", b'"Br&APw-der &- S&APY-hne"'),
    ("[brackets]", b"[brackets]"),
    ("a~b", b"a~b"),
    ("%", b'"%"'),
    ("a*b", b'"a*b"'),
]


def _listed(client: Any) -> set[bytes]:
    typ, data = client.list()
    assert typ == "OK"
    return {line.partition(b'"/" ')[2] for line in data}


def test_awkward_mailbox_names(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        for name, listed in AWKWARD_NAMES:
            assert client.create(name)[0] == "OK", name
            assert listed in _listed(client), name
            if "\\" not in name:  # Maildir++ stores the modified UTF-7 name on disk
                assert fixed.maildir("alice", name).is_dir(), name
            assert client.select(name) == ("OK", [b"0"]), name
            assert client.append(name, None, '"01-Jan-2024 10:00:00 +0000"', PLAIN)[0] == "OK"
            assert client.status(name, "(MESSAGES)") == ("OK", [listed + b" (MESSAGES 1)"])
            # the raw LIST name (modified UTF-7, quoted) round-trips unchanged
            unquoted = listed.decode("ascii")
            assert client.select(unquoted)[0] == "OK", unquoted
            assert client.select(listed)[0] == "OK", listed
        assert client.list('""', "Entwü*") == ("OK", [b'(\\HasNoChildren) "/" Entw&APw-rfe'])
        assert client.list('""', "台*") == ("OK", [b'(\\HasNoChildren) "/" &U,BTFw-'])
        client.unselect()
        for name, _ in AWKWARD_NAMES:
            renamed = name + " alt"
            assert client.rename(name, renamed)[0] == "OK", name
            assert client.subscribe(renamed)[0] == "OK"
            assert client.unsubscribe(renamed)[0] == "OK"
            assert client.delete(renamed)[0] == "OK", renamed
        assert _listed(client) == {b"INBOX"}
        # a hierarchy below a non-ASCII name
        assert client.create("Entwürfe/Ünter ordner")[0] == "OK"
        assert _listed(client) == {b"INBOX", b"Entw&APw-rfe", b'"Entw&APw-rfe/&ANw-nter ordner"'}
        assert client.list("Entwürfe/", "%") == (
            "OK",
            [b'(\\HasNoChildren) "/" "Entw&APw-rfe/&ANw-nter ordner"'],
        )


def test_names_dovecot_refuses(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        for name, text in (
            ("~home", "[CANNOT] Invalid mailbox name: Begins with '~'."),
            ("a.b", "[CANNOT] Character not allowed in mailbox name: '.'."),  # Maildir++
        ):
            typ, data = client.create(name)
            assert (typ, untimed(data)) == ("NO", [text.encode()]), name
        assert _listed(client) == {b"INBOX"}


def test_modified_utf7_names_match_the_stdlib_sending_them_encoded(fixed: DovecotServer) -> None:
    """The stdlib sends whatever it is given: encoded and quoted by hand, the results agree."""
    runs = {}
    for kind, names in (
        (STDLIB, ["Entw&APw-rfe", "&U,BTFw-", '"with space"', '"q\\"uote"', "amp&-ersand"]),
        (MAILWIRE, ["Entwürfe", "台北", "with space", 'q"uote', "amp&ersand"]),
    ):
        reset_store(fixed, "alice")
        steps = Recorder(kind)
        with session(fixed, "alice", kind) as client:
            for name in names:
                steps(f"create {len(steps.results)}", client.create, name)
                steps(f"status {len(steps.results)}", client.status, name, "(MESSAGES UIDVALIDITY)")
            steps("list", client.list)
            steps("lsub", client.lsub)
            for name in names:
                steps(f"select {len(steps.results)}", client.select, name)
            # (deleting the selected mailbox makes Dovecot disconnect: BYE)
            steps("select INBOX", client.select, "INBOX")
            for name in names:
                steps(f"delete {len(steps.results)}", client.delete, name)
            steps("list at the end", client.list)
        runs[kind.name] = steps.results
    assert runs["mailwire"] == runs["stdlib"]


# -- STATUS, EXPUNGE, CLOSE/UNSELECT, NAMESPACE, ENABLE ----------------------------------------


def test_status_expunge_close_unselect(fixed: DovecotServer) -> None:
    with session(fixed) as client:
        _fill(client, 6)
        assert client.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)") == (
            "OK",
            [b"INBOX (MESSAGES 6 RECENT 6 UIDNEXT 7 UIDVALIDITY 1001 UNSEEN 6)"],
        )
        client.select("INBOX")
        client.store("1:2", "+FLAGS", r"\Deleted")
        assert client.expunge() == ("OK", [b"2", b"1"])  # Dovecot expunges from the end
        assert client.expunge() == ("OK", [None])
        client.store("1", "+FLAGS", r"\Deleted")
        typ, data = client.unselect()  # leaves \Deleted messages alone
        assert (typ, untimed(data)) == ("OK", [b"Unselect completed."])
        assert client.state == "AUTH"
        assert client.select("INBOX") == ("OK", [b"4"])
        typ, data = client.close()  # expunges them
        assert (typ, untimed(data)) == ("OK", [b"Close completed."])
        assert client.state == "AUTH"
        assert client.status("INBOX", "(MESSAGES UIDNEXT)") == (
            "OK",
            [b"INBOX (MESSAGES 3 UIDNEXT 7)"],
        )
        assert client.select("INBOX", readonly=True) == ("OK", [b"3"])
        # Dovecot answers STORE in an EXAMINEd mailbox with OK, changing nothing
        assert client.store("1", "+FLAGS", r"\Deleted") == ("OK", [None])
        assert client.fetch("1", "(FLAGS)") == ("OK", [b"1 (FLAGS ())"])
        assert client.unselect()[0] == "OK"
        with pytest.raises(mimaplib.IMAP4.error, match="illegal in state AUTH"):
            client.unselect()
        assert client.namespace() == ("OK", [b'(("" "/")) NIL NIL'])


def test_enable(fixed: DovecotServer) -> None:
    """Dovecot answers ENABLE UTF8=ACCEPT with OK but enables nothing (no ``* ENABLED``)."""
    with session(fixed) as client:
        typ, data = client.enable("CONDSTORE")
        assert (typ, untimed(data)) == ("OK", [b"Enabled."])
        assert client.response("ENABLED") == ("ENABLED", [b"CONDSTORE"])
        assert client.utf8_enabled is False
        typ, data = client.enable("UTF8=ACCEPT")
        assert (typ, untimed(data)) == ("OK", [b"Enabled."])
        assert client.response("ENABLED") == ("ENABLED", [None])  # not really enabled
        # like the stdlib, mailwire goes by the tagged OK alone
        assert client.utf8_enabled is True
        # a charset is then refused client-side; names are sent as quoted UTF-8, which
        # Dovecot (without UTF8=ACCEPT) refuses
        with pytest.raises(mimaplib.IMAP4.error, match=r"charset.*UTF8"):
            client.search("UTF-8", "ALL")
        typ, data = client.create("Entwürfe")
        assert (typ, untimed(data)) == ("NO", [b"Mailbox name is not valid mUTF-7."])
        assert client.select("INBOX")[0] == "OK"


def test_enable_utf8_then_append_stores_nothing_corrupt(fixed: DovecotServer) -> None:
    """After the OK to ENABLE UTF8=ACCEPT the newest stdlib's APPEND sends ``UTF8 (~{N}``.

    Dovecot, not supporting UTF8=ACCEPT, sends no continuation and waits, so the APPEND cannot
    complete: it must fail (here: at the socket timeout) rather than store a message. The
    3.9-3.13 stdlib instead wraps the literal's *content* in ``UTF8 (...)``, which Dovecot
    stores as a corrupt message starting with ``UTF8 (``.
    """
    client = mimaplib.IMAP4(fixed.host, fixed.ports["imap"], timeout=1)
    try:
        client.login("alice", fixed.users["alice"])
        client.enable("UTF8=ACCEPT")
        with pytest.raises((mimaplib.IMAP4.error, OSError)):
            client.append("INBOX", None, '"01-Jan-2024 10:00:00 +0000"', PLAIN)
        # the half-sent APPEND leaves the connection out of step: nothing more is sent on it
        with pytest.raises(mimaplib.IMAP4.abort, match="out of sync"):
            client.noop()
    finally:
        client.shutdown()
    with session(fixed) as check:
        assert check.status("INBOX", "(MESSAGES)") == ("OK", [b"INBOX (MESSAGES 0)"])
