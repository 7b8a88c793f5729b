"""mailwire against a second real server, GNU Mailutils 3.15, with the stdlib as the oracle.

Dovecot is not the only server mailwire must get along with. Mailutils words and shapes its
replies differently, sometimes against the RFCs (see below), so one fixed IMAP session and one
fixed POP3 session are run against its imap4d and pop3d through the stdlib, through mailwire and
through mailwire forced onto its line-by-line path. Each run starts from the same freshly
written mbox store (tests/support/mailutils.py), so the results must be identical, types
included; the stdlib's results are then checked against the seeded messages.

What Mailutils does (3.15, mbox store, as the support module configures it):

- imap4d serves the ``X-IMAPbase``/``X-UID`` headers the store holds as part of each message;
  seeding them fixes UIDVALIDITY (otherwise the current time);
- raw UTF-8 in a header goes into ENVELOPE as a quoted string, not a literal;
- APPEND keeps the flags and the date but not its zone (stored in the ``From_`` line as UTC
  wall-clock time); an APPEND without a date gets INTERNALDATE 01-Jan-1970;
- a FETCH that sets \\Seen reports FLAGS twice, ``(FLAGS (\\Recent) ... FLAGS (\\Seen) ...)``;
  an unsolicited flag change comes as ``* 4 FETCH FLAGS (...)``, without parentheses;
- EXPUNGE is announced as ``* 5 EXPUNGED``, so ``expunge()`` returns ``[None]``;
- STORE works in a mailbox opened with EXAMINE;
- pop3d adds an ``X-UIDL`` header to every message it serves and then counts it in STAT; its
  UIDL values are ``MD5.TIME.N``, TIME being when the session opened the mailbox: the one
  thing normalised here (each digit becomes a T), with the APOP timestamp of the greeting;
- RETR and TOP answer a bare "+OK"; TOP with a line count sends one blank line too many
  between the header and the body;
- pop3d rewrites the mbox after QUIT, adding ``X-UIDL`` and ``Status`` headers, even with
  nothing deleted.
"""

from __future__ import annotations

import contextlib
import copy
import imaplib
import poplib
import random
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

import mailwire.imaplib as mimaplib
import mailwire.poplib as mpoplib
from support.mailutils import MailutilsServer, Message, missing_requirements
from support.processes import pid_alive

pytestmark = pytest.mark.mailutils

TIMEOUT = 10
INBOX_UIDVALIDITY = 1000
ARCHIVE_UIDVALIDITY = 2000

# -- the messages (LF line endings, as the mbox stores them) -------------------------------------

PLAIN = Message(
    "alice@example.org",
    "Tue Jan  2 03:04:05 2024",
    b"From: Alice <alice@example.org>\n"
    b"To: Bob <bob@example.org>\n"
    b"Subject: plain text\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
    b"Message-ID: <plain@example.org>\n"
    b"\n"
    b"Hello Bob,\n"
    b"\n"
    b"this is a plain text message.\n",
)
DOTS = Message(
    "carol@example.org",
    "Wed Jan  3 11:30:00 2024",
    b"From: Carol <carol@example.org>\n"
    b"Subject: lines starting with dots\n"
    b"Message-ID: <dots@example.org>\n"
    b"\n"
    b".\n"
    b"..\n"
    b"...\n"
    b".x\n"
    b"..x\n"
    b" .\n"
    b".\t\n"
    b"end of dots\n"
    b".\n",
)
NON_ASCII = Message(
    "andre@example.org",
    "Thu Jan  4 09:00:00 2024",
    (
        "Subject: Entwürfe für 台北\n"  # raw UTF-8: imap4d puts it in ENVELOPE as a quoted string
        "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\n"
        "X-Encoded: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4g4pyT?=\n"
        "Message-ID: <non-ascii@example.org>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße aus Köln — ünïcödé ✓\n"
        "台北的天氣\n"
        ".Ünïcode after a dot\n"
    ).encode(),
)


def _large(size: int = 3 * 1024 * 1024) -> bytes:
    """About ``size`` bytes of text, lines of 0 to 998 characters, some starting with dots."""
    rng = random.Random(3)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ .,"
    # random bytes mapped onto the alphabet: ten times faster than choosing character by character
    table = bytes(alphabet[i % len(alphabet)] for i in range(256))
    lines = [
        b"From: Dora <dora@example.org>",
        b"Subject: about three MiB",
        b"Message-ID: <large@example.org>",
        b"",
    ]
    total = 0
    while total < size:
        line = rng.randbytes(rng.choice((0, 1, 60, 76, 76, 200, 998))).translate(table)
        if rng.random() < 0.03:
            line = b"." + line[1:]
        lines.append(line)
        total += len(line) + 1
    return b"\n".join(lines) + b"\n"


LARGE = Message("dora@example.org", "Fri Jan  5 08:00:00 2024", _large())
MULTIPART = Message(
    "eve@example.org",
    "Sat Jan  6 00:00:00 2024",
    b"From: eve@example.org\n"
    b"Subject: multipart with attachment\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="==b0undary=="\n'
    b"\n"
    b"This is a multi-part message in MIME format.\n"
    b"--==b0undary==\n"
    b"Content-Type: text/plain; charset=us-ascii\n"
    b"\n"
    b"See the attachment.\n"
    b"--==b0undary==\n"
    b"Content-Type: application/octet-stream\n"
    b'Content-Disposition: attachment; filename="bytes.bin"\n'
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    b"--==b0undary==--\n",
)
ARCHIVED = Message(
    "alice@example.org",
    "Sun Jan  7 12:00:00 2024",
    b"From: alice@example.org\nSubject: archived\nMessage-ID: <archived@example.org>\n\nold\n",
)
INBOX = [PLAIN, DOTS, NON_ASCII, LARGE, MULTIPART]
LARGE_NUMBER = INBOX.index(LARGE) + 1
#: (flags, date_time, message) for APPEND; the date's zone is lost (see the module docstring)
APPENDED = (
    r"(\Seen \Flagged)",
    datetime(2024, 2, 1, 12, 30, tzinfo=timezone(timedelta(hours=-5))),
    b"From: frank@example.org\r\nSubject: appended\r\n\r\nappended body\r\n.dot line\r\n",
)


def test_messages_cover_the_awkward_shapes() -> None:
    assert len(LARGE.text) > 3 * 1024 * 1024
    assert max(map(len, LARGE.text.split(b"\n"))) == 998
    assert re.search(rb"^\.", LARGE.text, re.MULTILINE)
    assert re.search(rb"^\.$", DOTS.text, re.MULTILINE)
    assert not NON_ASCII.text.split(b"\n\n")[0].isascii()


def crlf(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n")


def imap_served(n: int, message: Message, count: int, uid_validity: int) -> bytes:
    """Message ``n`` of ``count`` as imap4d serves it from the seeded mbox: the header with the
    seeded ``X-IMAPbase`` (first message) and ``X-UID`` lines, CRLF line endings."""
    head, _, body = message.text.partition(b"\n\n")
    extra = b"X-IMAPbase: %d %d\n" % (uid_validity, count + 1) if n == 1 else b""
    extra += b"X-UID: %d\n" % n
    return crlf(head + b"\n" + extra + b"\n" + body)


# -- the server ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mailutils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailutilsServer]:
    """Private imap4d and pop3d over one store, for the whole module (the configuration, the
    store and the servers' logs stay in pytest's temporary directory)."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"no private Mailutils server: {reason}")
    with MailutilsServer(tmp_path_factory.mktemp("mailutils")) as server:
        yield server


# -- recording ----------------------------------------------------------------------------------


def typed(value: Any) -> Any:
    """``value`` with the type of everything inside it spelled out: equality alone lets a bool
    pass for an int, a bytearray for bytes, and any subclass for its base."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [typed(item) for item in value])
    if isinstance(value, dict):
        return (type(value).__name__, sorted((key, typed(item)) for key, item in value.items()))
    return (type(value).__name__, value)


class Recorder:
    """Calls client methods and records ``(label, result)``; an error becomes
    ``("raised", class name, message)`` after checking it is the client's own class."""

    def __init__(
        self, error: type[Exception], oracle: type[Exception], normalise: Callable[[Any], Any]
    ) -> None:
        self.error = error
        self.oracle = oracle
        self.normalise = normalise
        self.results: list[tuple[str, Any]] = []

    def __call__(self, label: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            value = func(*args, **kwargs)
        except self.oracle as exc:  # mailwire's errors subclass the stdlib's
            assert isinstance(exc, self.error), (label, type(exc))
            value = ("raised", type(exc).__name__, str(exc))
        self.note(label, value)
        return value

    def note(self, label: str, value: Any) -> None:
        # a copy: untagged_responses keeps changing after it is noted
        self.results.append((label, self.normalise(copy.deepcopy(value))))


def assert_same_sessions(runs: dict[str, list[tuple[str, Any]]]) -> None:
    """Every run equals the stdlib's, step by step (so a failure names the first step that
    differs), in value and in type."""
    oracle = runs["stdlib"]
    for name, results in runs.items():
        assert [label for label, _ in results] == [label for label, _ in oracle], name
        for (label, got), (_, want) in zip(results, oracle):
            assert got == want, f"{name} differs from the stdlib at {label!r}"
            assert typed(got) == typed(want), f"{name}: types differ from the stdlib at {label!r}"


# -- IMAP ---------------------------------------------------------------------------------------


class LineIMAP4_stream(mimaplib.IMAP4_stream):
    """Overriding ``readline`` turns mailwire's buffered fast path off (the subclass seam)."""

    def readline(self) -> bytes:
        return super().readline()


class ImapClient(NamedTuple):
    name: str
    IMAP4_stream: Any
    error: type[Exception]


IMAP_CLIENTS = (
    ImapClient("stdlib", imaplib.IMAP4_stream, imaplib.IMAP4.error),
    ImapClient("mailwire", mimaplib.IMAP4_stream, mimaplib.IMAP4.error),
    ImapClient("mailwire-line-by-line", LineIMAP4_stream, mimaplib.IMAP4.error),
)


def _no_change(value: Any) -> Any:
    return value


@contextlib.contextmanager
def imap_stream(kind: ImapClient, server: MailutilsServer) -> Iterator[Any]:
    """An ``IMAP4_stream`` on a fresh imap4d; the process is reaped however the test ends."""
    client = kind.IMAP4_stream(server.imap_command())
    try:
        yield client
    finally:
        process = client.process
        if client.state != "LOGOUT":
            with contextlib.suppress(Exception):
                client.logout()
        if process.poll() is None:
            process.kill()
        process.wait(TIMEOUT)


def seed_imap(server: MailutilsServer) -> None:
    server.seed(
        {"INBOX": INBOX, "Archive": [ARCHIVED]},
        {"INBOX": INBOX_UIDVALIDITY, "Archive": ARCHIVE_UIDVALIDITY},
    )


def imap_session(kind: ImapClient, server: MailutilsServer) -> list[tuple[str, Any]]:
    """One fixed IMAP session on a freshly seeded store; returns ``[(label, result)]``.

    Arguments need no quoting (or come quoted), so the 3.9-3.13 stdlib and mailwire, which
    follows the newest stdlib, send the same bytes.
    """
    seed_imap(server)
    step = Recorder(kind.error, imaplib.IMAP4.error, _no_change)
    with imap_stream(kind, server) as client:
        step.note("welcome", client.welcome)
        step.note("state", client.state)
        step.note("capabilities", client.capabilities)
        step("login", client.login, server.login, server.password)
        step.note("state after login", client.state)
        step("capability", client.capability)
        step("namespace", client.namespace)
        step("list", client.list)
        step("list pattern", client.list, '""', "A*")
        step("lsub (none)", client.lsub)
        step("subscribe", client.subscribe, "Archive")
        step("lsub", client.lsub)
        step("create", client.create, "Projects")
        step("list after create", client.list)
        step("select", client.select, "INBOX")
        step.note("state after select", client.state)
        step.note("untagged after select", client.untagged_responses)
        step("fetch summary", client.fetch, "1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
        step("fetch headers", client.fetch, "1:*", "(BODY.PEEK[HEADER])")
        step("fetch envelope", client.fetch, "1:*", "(ENVELOPE BODYSTRUCTURE)")
        step("fetch partial", client.fetch, str(LARGE_NUMBER), "(BODY.PEEK[TEXT]<100.50>)")
        step("fetch one RFC822", client.fetch, "1", "(RFC822)")
        step.note("untagged after first RFC822", client.untagged_responses)
        step("fetch large", client.fetch, str(LARGE_NUMBER), "(RFC822)")
        step("fetch RFC822 1:*", client.fetch, "1:*", "(RFC822)")
        step("fetch flags", client.fetch, "1:*", "(FLAGS)")
        for criteria in (
            ("ALL",),
            ("SEEN",),
            ("SUBJECT", '"plain text"'),
            ("FROM", "carol"),
            ("LARGER", "1000000"),
            ("SINCE", "03-Jan-2024", "BEFORE", "06-Jan-2024"),
            ("HEADER", "Message-ID", '"<dots@example.org>"'),
        ):
            step(f"search {criteria}", client.search, None, *criteria)
        step("uid search", client.uid, "SEARCH", "ALL")
        step("uid search subject", client.uid, "SEARCH", "SUBJECT", "multipart")
        step("uid fetch", client.uid, "FETCH", "2:4", "(FLAGS RFC822.SIZE)")
        step("uid fetch header", client.uid, "FETCH", "3", "(BODY.PEEK[HEADER])")
        step("store +Flagged", client.store, "1", "+FLAGS", r"(\Flagged)")
        step("store -Seen", client.store, "2", "-FLAGS", r"\Seen")
        step("store silent", client.store, "3", "FLAGS.SILENT", r"(\Answered \Seen)")
        step("uid store", client.uid, "STORE", "5", "+FLAGS", r"(\Deleted)")
        step("search unseen", client.search, None, "UNSEEN")
        step("search deleted", client.search, None, "DELETED")
        step("status Archive", client.status, "Archive", "(MESSAGES RECENT UIDNEXT UIDVALIDITY)")
        step("status INBOX", client.status, "INBOX", "(MESSAGES UNSEEN)")
        step("append", client.append, "INBOX", *APPENDED)
        step("append without date", client.append, "Archive", None, None, APPENDED[2])
        step("noop", client.noop)
        step.note("untagged after append and noop", client.untagged_responses)
        step("fetch appended", client.fetch, "6", "(FLAGS INTERNALDATE RFC822)")
        step("copy", client.copy, "1:2", "Archive")
        step("uid copy", client.uid, "COPY", "3", "Archive")
        step("status after copy", client.status, "Archive", "(MESSAGES UIDNEXT)")
        step("check", client.check)
        step("expunge", client.expunge)
        step.note("untagged after expunge", client.untagged_responses)
        step("fetch after expunge", client.fetch, "1:*", "(UID FLAGS)")
        step("fetch bad syntax", client.fetch, "1", "(NO-SUCH-ITEM)")
        step("select missing", client.select, "Missing")
        step.note("state after failed select", client.state)
        step("examine", client.select, "Archive", readonly=True)
        step.note("untagged after examine", client.untagged_responses)
        step("fetch archive", client.fetch, "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
        step("store read-only", client.store, "1", "+FLAGS", r"(\Deleted)")
        step("close", client.close)
        step.note("state after close", client.state)
        step("logout", client.logout)
        step.note("state after logout", client.state)
    return step.results


@pytest.fixture(scope="module")
def imap_runs(mailutils: MailutilsServer) -> dict[str, list[tuple[str, Any]]]:
    return {kind.name: imap_session(kind, mailutils) for kind in IMAP_CLIENTS}


def test_imap_session_equals_the_stdlib(imap_runs: dict[str, list[tuple[str, Any]]]) -> None:
    assert_same_sessions(imap_runs)


def literals(data: list[Any]) -> list[tuple[bytes, bytes]]:
    """The ``(response line, literal)`` pairs of a FETCH result."""
    return [item for item in data if isinstance(item, tuple)]


def test_imap_session_matches_the_store(imap_runs: dict[str, list[tuple[str, Any]]]) -> None:
    """The stdlib's view of the session (which mailwire's equals) shows what was seeded."""
    got = dict(imap_runs["stdlib"])
    count = len(INBOX)
    served = [imap_served(n, m, count, INBOX_UIDVALIDITY) for n, m in enumerate(INBOX, 1)]
    large = served[LARGE_NUMBER - 1]
    assert got["welcome"] == b"* OK IMAP4rev1"
    assert got["state"] == "NONAUTH"
    assert {"IMAP4REV1", "NAMESPACE", "UNSELECT"} <= set(got["capabilities"])
    assert got["login"] == ("OK", [b"LOGIN Completed"])
    assert got["state after login"] == "AUTH"
    assert got["namespace"] == ("OK", [b'(("" "/")) NIL NIL'])
    # an mbox file cannot hold mailboxes
    assert got["list"] == ("OK", [b"(\\NoInferiors) NIL INBOX", b'(\\NoInferiors) "/" Archive'])
    assert got["list pattern"] == ("OK", [b'(\\NoInferiors) "/" Archive'])
    assert got["lsub (none)"] == ("OK", [None])
    assert got["lsub"] == ("OK", [b'() "/" "Archive"'])
    assert b'(\\NoInferiors) "/" Projects' in got["list after create"][1]

    assert got["select"] == ("OK", [b"%d" % count])
    assert got["state after select"] == "SELECTED"
    untagged = got["untagged after select"]
    assert untagged["EXISTS"] == [b"%d" % count]
    assert untagged["UIDVALIDITY"] == [b"%d" % INBOX_UIDVALIDITY]
    assert untagged["UIDNEXT"] == [b"%d" % (count + 1)]
    assert untagged["READ-WRITE"] == [b""]

    typ, summary = got["fetch summary"]
    assert typ == "OK" and len(summary) == count
    for n, (line, data) in enumerate(zip(summary, served), 1):
        assert line.startswith(b"%d (UID %d FLAGS (\\Recent) RFC822.SIZE %d " % (n, n, len(data)))
    for line, message in zip(summary, INBOX):
        when = datetime.strptime(message.date, "%a %b %d %H:%M:%S %Y")
        assert when.strftime('INTERNALDATE "%d-%b-%Y %H:%M:%S +0000"').encode() in line

    typ, headers = got["fetch headers"]
    assert typ == "OK"
    assert [body for _, body in literals(headers)] == [
        data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" for data in served
    ]
    envelope = got["fetch envelope"][1]
    # raw UTF-8 inside a quoted string, not a literal
    assert b' "Entw\xc3\xbcrfe f\xc3\xbcr \xe5\x8f\xb0\xe5\x8c\x97" ' in envelope[2]
    assert b'"<dots@example.org>"' in envelope[1]
    assert b'"mixed" ("boundary" "==b0undary==")' in envelope[4].lower()
    assert literals(got["fetch partial"][1])[0][1] == large.partition(b"\r\n\r\n")[2][100:150]

    ((line, first),) = literals(got["fetch one RFC822"][1])
    assert (line, first) == (b"1 (FLAGS (\\Seen) RFC822 {%d}" % len(served[0]), served[0])
    ((line, big),) = literals(got["fetch large"][1])
    assert line == b"%d (FLAGS (\\Seen) RFC822 {%d}" % (LARGE_NUMBER, len(large))
    assert big == large and len(big) > 3 * 1024 * 1024
    assert [data for _, data in literals(got["fetch RFC822 1:*"][1])] == served
    assert got["fetch flags"] == (
        "OK", [b"%d (FLAGS (\\Seen \\Recent))" % n for n in range(1, count + 1)]
    )  # fmt: skip

    everything = b"1 2 3 4 5"
    assert got["search ('ALL',)"] == ("OK", [everything])
    assert got["search ('SEEN',)"] == ("OK", [everything])
    assert got["search ('SUBJECT', '\"plain text\"')"] == ("OK", [b"1"])
    assert got["search ('FROM', 'carol')"] == ("OK", [b"2"])
    assert got["search ('LARGER', '1000000')"] == ("OK", [b"%d" % LARGE_NUMBER])
    assert got["search ('SINCE', '03-Jan-2024', 'BEFORE', '06-Jan-2024')"] == ("OK", [b"2 3 4"])
    assert got["search ('HEADER', 'Message-ID', '\"<dots@example.org>\"')"] == ("OK", [b"2"])
    assert got["uid search"] == ("OK", [everything])
    assert got["uid search subject"] == ("OK", [b"5"])
    assert got["uid fetch"][1][1] == b"3 (UID 3 FLAGS (\\Seen \\Recent) RFC822.SIZE %d)" % len(
        served[2]
    )
    assert literals(got["uid fetch header"][1])[0][1] == literals(headers)[2][1]

    assert got["store +Flagged"] == ("OK", [b"1 (FLAGS (\\Flagged \\Seen \\Recent))"])
    assert got["store -Seen"] == ("OK", [b"2 (FLAGS (\\Recent))"])
    assert got["store silent"] == ("OK", [None])
    assert got["uid store"] == ("OK", [b"5 (UID 5 FLAGS (\\Deleted \\Seen \\Recent))"])
    assert got["search unseen"] == ("OK", [b"2"])
    assert got["search deleted"] == ("OK", [b"5"])
    assert got["status Archive"] == (
        "OK", [b"Archive (MESSAGES 1 RECENT 1 UIDNEXT 2 UIDVALIDITY %d)" % ARCHIVE_UIDVALIDITY]
    )  # fmt: skip
    assert got["status INBOX"] == ("OK", [b"INBOX (MESSAGES 5 UNSEEN 1)"])

    assert got["append"] == ("OK", [b"APPEND Completed"])
    assert got["untagged after append and noop"]["EXISTS"] == [b"5", b"6"]
    ((line, appended),) = literals(got["fetch appended"][1])
    assert appended == APPENDED[2].replace(b"\r\n\r\n", b"\r\nX-UID: 6\r\n\r\n")
    # the flags were kept, the zone was not: 12:30 at -0500 comes back as 12:30 UTC
    assert b'INTERNALDATE "01-Feb-2024 12:30:00 +0000" FLAGS (\\Seen) RFC822' in line
    # NOOP's unsolicited FETCH (not parenthesised) stays queued and comes out with the next FETCH
    assert got["fetch appended"][1][0] == b"4 FLAGS (\\Seen \\Recent)"
    assert got["copy"] == ("OK", [b"COPY Completed"])
    assert got["status after copy"] == ("OK", [b"Archive (MESSAGES 5 UIDNEXT 6)"])
    assert got["check"] == ("OK", [b"CHECK Completed"])
    # imap4d answers "* 5 EXPUNGED" (sic), so expunge() finds no EXPUNGE response
    assert got["expunge"] == ("OK", [None])
    after_expunge = got["untagged after expunge"]
    assert after_expunge["EXPUNGED"] == [b"5"]
    assert after_expunge["EXISTS"] == [b"5", b"6", b"5"]
    assert [line.split(b" FLAGS")[0] for line in got["fetch after expunge"][1]] == [
        b"1 (UID 1", b"2 (UID 2", b"3 (UID 3", b"4 (UID 4", b"5 (UID 6"
    ]  # fmt: skip
    bad = got["fetch bad syntax"]
    assert bad[:2] == ("raised", "error") and "FETCH command error: BAD" in bad[2]
    assert got["select missing"][0] == "NO" and b"Missing" in got["select missing"][1][0]
    assert got["state after failed select"] == "AUTH"

    assert got["examine"] == ("OK", [b"5"])
    assert got["untagged after examine"]["READ-ONLY"] == [b""]
    assert got["untagged after examine"]["UIDVALIDITY"] == [b"%d" % ARCHIVE_UIDVALIDITY]
    archive = got["fetch archive"][1]
    assert b'INTERNALDATE "01-Jan-1970 00:00:00 +0000"' in archive[1]  # appended without a date
    assert [line.split(b" FLAGS")[0] for line in archive] == [
        b"%d (UID %d" % (n, n) for n in range(1, 6)
    ]
    # imap4d lets STORE change flags in a mailbox opened with EXAMINE
    assert got["store read-only"] == ("OK", [b"1 (FLAGS (\\Deleted \\Recent))"])
    assert got["close"] == ("OK", [b"CLOSE Completed"])
    assert got["state after close"] == "AUTH"
    assert got["logout"] == ("BYE", [b"Session terminating."])
    assert got["state after logout"] == "LOGOUT"


# -- POP3 ---------------------------------------------------------------------------------------


class LinePOP3(mpoplib.POP3):
    """Overriding ``_getline`` turns mailwire's block-wise reads off (the subclass seam)."""

    def _getline(self) -> tuple[bytes, int]:
        return super()._getline()


class PopClient(NamedTuple):
    name: str
    POP3: Any
    error: type[Exception]


POP_CLIENTS = (
    PopClient("stdlib", poplib.POP3, poplib.error_proto),
    PopClient("mailwire", mpoplib.POP3, mpoplib.error_proto),
    PopClient("mailwire-line-by-line", LinePOP3, mpoplib.error_proto),
)

#: pop3d's greeting: an APOP timestamp <PID.TIME@HOST> that differs per connection
GREETING = re.compile(rb"\+OK POP3 Ready (<\d+\.\d+@[^<>\s]+>)")
#: UIDL value: MD5 of the message, the time the mailbox was opened, the message number
UIDL = re.compile(rb"\b([0-9a-f]{32})\.(\d+)\.(\d+)\b")


def pop_normalised(value: Any) -> Any:
    """``value`` with the times inside UIDLs (and X-UIDL headers) and the greeting's APOP
    timestamp replaced."""
    if isinstance(value, bytes):
        # T for each digit, so that lengths (and the stdlib's octet counts) stay right
        value = UIDL.sub(lambda m: b"%s.%s.%s" % (m[1], b"T" * len(m[2]), m[3]), value)
        match = GREETING.fullmatch(value)
        return value.replace(match[1], b"<TIMESTAMP>") if match else value
    if isinstance(value, tuple):
        return tuple(pop_normalised(item) for item in value)
    if isinstance(value, list):
        return [pop_normalised(item) for item in value]
    if isinstance(value, dict):
        return {key: pop_normalised(item) for key, item in value.items()}
    return value


def pop_session(kind: PopClient, server: MailutilsServer) -> list[tuple[str, Any]]:
    """One fixed POP3 session on a freshly seeded INBOX; returns ``[(label, result)]``."""
    server.wait_idle()
    server.seed({"INBOX": INBOX})
    step = Recorder(kind.error, poplib.error_proto, pop_normalised)
    assert server.port is not None
    client = kind.POP3(server.host, server.port, timeout=TIMEOUT)
    try:
        step.note("welcome", client.getwelcome())
        step("capa before login", client.capa)
        step("user", client.user, server.login)
        step("pass_", client.pass_, server.password)
        step("stat", client.stat)
        step("list()", client.list)
        for n in range(1, len(INBOX) + 1):
            step(f"list({n})", client.list, n)
        step("uidl()", client.uidl)
        step("uidl(2)", client.uidl, 2)
        for n in range(1, len(INBOX) + 1):
            step(f"retr({n})", client.retr, n)
        step("retr(str)", client.retr, "2")
        step("top(1, 0)", client.top, 1, 0)
        step("top(2, 3)", client.top, 2, 3)
        step("top(large, 5)", client.top, LARGE_NUMBER, 5)
        step("noop", client.noop)
        step("capa", client.capa)
        step("retr(missing)", client.retr, len(INBOX) + 1)
        step("utf8", client.utf8)
        step("dele(1)", client.dele, 1)
        step("retr(1) after dele", client.retr, 1)
        step("stat after dele", client.stat)
        step("rset", client.rset)
        step("stat after rset", client.stat)
        step("dele(2)", client.dele, 2)
        step("quit", client.quit)
        step.note("closed", (client.sock, client.file))
    finally:
        client.close()
    server.wait_idle()
    # what QUIT left in the store: message 2 gone, the others there
    left = server.mailbox_bytes()
    step.note("message-ids left", re.findall(rb"^Message-ID: (\S+)$", left, re.MULTILINE))
    return step.results


@pytest.fixture(scope="module")
def pop_runs(mailutils: MailutilsServer) -> dict[str, list[tuple[str, Any]]]:
    runs = {kind.name: pop_session(kind, mailutils) for kind in POP_CLIENTS}
    mailutils.check()
    return runs


def test_pop3_session_equals_the_stdlib(pop_runs: dict[str, list[tuple[str, Any]]]) -> None:
    assert_same_sessions(pop_runs)


def pop_served(message: Message, uidl: bytes) -> list[bytes]:
    """RETR's lines (dot-unstuffed): pop3d adds an ``X-UIDL`` header with the UIDL value."""
    head, _, body = message.text.partition(b"\n\n")
    uidl = b"X-UIDL: " + uidl
    return [*head.split(b"\n"), uidl, b"", *body.split(b"\n")[:-1]]


def pop_top(lines: list[bytes], count: int) -> list[bytes]:
    """TOP's lines: pop3d sends the header's blank line and then one more before the body
    (none when no body line is asked for)."""
    blank = lines.index(b"")
    body = lines[blank + 1 : blank + 1 + count]
    return lines[: blank + 1] + ([b"", *body] if count else [])


def test_pop3_session_matches_the_store(pop_runs: dict[str, list[tuple[str, Any]]]) -> None:
    """The stdlib's view of the session (which mailwire's equals) shows what was seeded."""
    got = dict(pop_runs["stdlib"])
    count = len(INBOX)
    sizes = [len(crlf(m.text)) for m in INBOX]
    assert got["welcome"] == b"+OK POP3 Ready <TIMESTAMP>"
    assert got["capa before login"] == {
        name: [] for name in
        ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE", "EXPIRENEVER", "USER")
    }  # fmt: skip
    assert got["user"] == b"+OK"
    assert got["pass_"] == b"+OK opened mailbox for alice"
    assert got["stat"] == (count, sum(sizes))
    scan = [b"%d %d" % (n, size) for n, size in enumerate(sizes, 1)]
    assert got["list()"] == (b"+OK", scan, sum(len(line) + 2 for line in scan))
    for n, line in enumerate(scan, 1):
        assert got[f"list({n})"] == b"+OK " + line

    resp, uids, _ = got["uidl()"]
    assert resp == b"+OK" and len(uids) == count
    values = []
    for n, uid in enumerate(uids, 1):
        assert re.fullmatch(rb"%d [0-9a-f]{32}\.T{10}\.%d" % (n, n), uid)
        values.append(uid.partition(b" ")[2])
    assert len(set(values)) == count
    assert got["uidl(2)"] == b"+OK " + uids[1]

    served = [pop_served(message, value) for message, value in zip(INBOX, values)]
    for n, lines in enumerate(served, 1):
        # a bare "+OK": the stdlib counts the octets itself
        assert got[f"retr({n})"] == (b"+OK", lines, sum(len(line) + 2 for line in lines)), n
    assert got["retr(str)"] == got["retr(2)"]
    dots = served[1]
    assert dots[dots.index(b"") + 1 :] == [
        b".", b"..", b"...", b".x", b"..x", b" .", b".\t", b"end of dots", b"."
    ]  # fmt: skip
    assert served[2][0] == "Subject: Entwürfe für 台北".encode()
    assert got[f"retr({LARGE_NUMBER})"][2] > 3 * 1024 * 1024
    for label, n, lines in (("top(1, 0)", 1, 0), ("top(2, 3)", 2, 3), ("top(large, 5)", 4, 5)):
        want = pop_top(served[n - 1], lines)
        assert got[label] == (b"+OK", want, sum(len(line) + 2 for line in want)), label

    assert got["noop"] == b"+OK"
    assert got["capa"]["IMPLEMENTATION"] == ["GNU", "Mailutils", "3.15"]
    assert got["retr(missing)"] == ("raised", "error_proto", "b'-ERR No such message'")
    assert got["utf8"] == ("raised", "error_proto", "b'-ERR Invalid command'")
    assert got["dele(1)"] == b"+OK Message 1 marked"
    assert got["retr(1) after dele"] == (
        "raised", "error_proto", "b'-ERR Message has been deleted'"
    )  # fmt: skip
    # once served, a message counts with its X-UIDL header, so STAT's octets grow
    assert got["stat after dele"][0] == count - 1
    assert got["stat after dele"][1] > sum(sizes) - sizes[0]
    assert got["stat after rset"][0] == count
    assert got["rset"] == b"+OK"
    assert got["dele(2)"] == b"+OK Message 2 marked"
    assert got["quit"] == b"+OK"
    assert got["closed"] == (None, None)
    ids = [re.search(rb"^Message-ID: (\S+)$", m.text, re.MULTILINE) for m in INBOX]
    assert got["message-ids left"] == [m[1] for n, m in enumerate(ids, 1) if m and n != 2]


def test_no_pop3d_left_running(
    mailutils: MailutilsServer, pop_runs: dict[str, list[tuple[str, Any]]]
) -> None:
    mailutils.wait_idle()
    assert mailutils.session_pids() == []


def test_stop_ends_a_pop3d_whose_client_stays(tmp_path: Path) -> None:
    """A server of its own: stop() ends (by PID) and reaps a pop3d still serving a client."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"no private Mailutils server: {reason}")
    server = MailutilsServer(tmp_path / "mailutils")
    server.start()
    try:
        assert server.port is not None
        with contextlib.closing(poplib.POP3(server.host, server.port, timeout=TIMEOUT)) as client:
            assert GREETING.fullmatch(client.getwelcome())
            # the accept loop records the process right after starting it, a moment after
            # the greeting may have arrived
            deadline = time.monotonic() + TIMEOUT
            while not server.session_pids() and time.monotonic() < deadline:
                time.sleep(0.01)
            pids = server.session_pids()
            assert len(pids) == 1
            server.stop()
            assert server.port is None and server.session_pids() == []
            assert not pid_alive(pids[0])
    finally:
        server.stop()
