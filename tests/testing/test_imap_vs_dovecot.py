"""The embedded IMAP server against a real Dovecot: the same scripted sessions, the same answers.

Each script is a list of raw IMAP commands, some of them for a second session, run once against
``MailServer(imap=True)`` and once against a private Dovecot 2.3 (``tests/support/dovecot.py``,
started here once for the module). The transcripts are compared after normalising what may
differ by design:

- the human text after the status and response code of ``OK``/``NO``/``BAD``/``BYE``;
- UIDVALIDITY values (in UIDVALIDITY, APPENDUID, COPYUID and STATUS): each distinct value
  becomes ``V1``, ``V2``... in order of appearance, so a COPYUID must still name the right one;
- capability lists and ID's contents (mailwire offers a subset of Dovecot's extensions);
- Dovecot's extras: ``* OK [HIGHESTMODSEQ n]`` (CONDSTORE), ``* OK Still here`` (IDLE
  keep-alive), the ``\\Marked``/``\\UnMarked`` LIST attributes, and LIST/LSUB order (Dovecot
  lists in directory order, mailwire sorts).

Everything else must match byte for byte: tags, statuses, response codes, untagged responses and
their order, FETCH items and their order, literals, BODYSTRUCTURE and ENVELOPE.

Both servers start each test empty. mailwire's store subscribes INBOX where Dovecot does not, so
INBOX is unsubscribed on the mailwire side before the script. Every APPEND gives a date, so
INTERNALDATE is the same on both sides.
"""

from __future__ import annotations

import difflib
import re
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from mailwire.testing import MailServer, sample_messages, test_ssl_context
from support.dovecot import DovecotServer

from .test_imap_server import Raw

pytestmark = pytest.mark.dovecot

DATE = b'"04-Mar-2024 10:00:00 +0100"'


# -- messages ---------------------------------------------------------------------------------

def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


PLAIN = crlf(
    b"From: Alice <alice@example.org>\n"
    b'To: bob@example.org, "Carol C" <carol@example.org>\n'
    b"Cc: dave@example.org\n"
    b"Subject: Hello there\n"
    b"Date: Mon, 4 Mar 2024 09:30:00 +0000\n"
    b"Message-ID: <m1@example.org>\n"
    b"\n"
    b"line one\n"
    b"line two\n"
)
ADDRESSES = crlf(
    b'From: "Quote \\"me\\"" <q@x.org>, Group: a@b.c, d@e.f;, undisclosed-recipients:;\n'
    b'To: <bare@x.org>, "Na, me" <n@x.org>\n'
    b"Sender: s@x.org\nReply-To: r@x.org\n"
    b'Subject: has "quotes" and \\ backslash\nIn-Reply-To: <prev@x>\n'
    b"Bcc: hidden@x.org\n\nbody\n"
)
INNER = b"From: in@example.org\r\nSubject: inner\r\n\r\ninner body\r\n"
NESTED = (
    b"From: out@example.org\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + INNER + b"--b--\r\n"
)
NO_FINAL_NEWLINE = b"Subject: cut\r\n\r\nno newline at the end"


def as_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=SMTP)


SAMPLES = [as_bytes(m) for m in sample_messages()]


def append(message: bytes, mailbox: bytes = b"INBOX", flags: bytes = b"",
           date: bytes = DATE) -> bytes:
    flag_part = b"(" + flags + b") " if flags else b""
    return b"APPEND %s %s%s {%d+}\r\n" % (mailbox, flag_part, date + b" ", len(message)) + message


def search_message(index: int) -> bytes:
    extra = b"Cc: dave@example.org\n" if index == 1 else b""
    sender = b"Carol <carol@example.org>" if index == 2 else b"alice@example.org"
    return crlf(b"From: %s\nTo: bob@example.org\n%sSubject: Subject %d\n"
                b"Date: Mon, %d Mar 2024 09:30:00 +0000\nMessage-ID: <m%d@example.org>\n\n%s\n"
                % (sender, extra, index, index, index, b"x" * (index * 10)))


# -- running and normalising ------------------------------------------------------------------

_STATUS = re.compile(rb"(\S+) (OK|NO|BAD|BYE|PREAUTH)(?: (\[[^\]]*\]))?(?: .*)?\Z", re.DOTALL)
_VALIDITY = re.compile(rb"((?:UIDVALIDITY|APPENDUID|COPYUID) )([0-9]+)")
_LIST = re.compile(rb"\* (LIST|LSUB) \(([^)]*)\)")


class Normaliser:
    def __init__(self) -> None:
        self.validities: dict[bytes, bytes] = {}

    def _validity(self, match: re.Match[bytes]) -> bytes:
        value = self.validities.setdefault(match.group(2),
                                           b"V%d" % (len(self.validities) + 1))
        return match.group(1) + value

    def line(self, line: bytes) -> bytes | None:
        if line.startswith((b"* OK [HIGHESTMODSEQ ", b"* OK Still here")):
            return None
        if line.startswith(b"* CAPABILITY "):
            return b"* CAPABILITY ..."
        if line.startswith(b"* ID "):
            return b"* ID ..."
        status = _STATUS.match(line)
        if status is not None:
            code = status.group(3) or b""
            if code.startswith(b"[CAPABILITY "):
                code = b"[CAPABILITY ...]"
            line = b" ".join(p for p in (status.group(1), status.group(2), code) if p)
        list_line = _LIST.match(line)
        if list_line is not None:
            flags = b" ".join(f for f in list_line.group(2).split()
                              if f not in (b"\\Marked", b"\\UnMarked"))
            line = b"* %s (%s)" % (list_line.group(1), flags) + line[list_line.end():]
        return _VALIDITY.sub(self._validity, line)

    def transcript(self, lines: Sequence[bytes]) -> list[bytes]:
        out = [n for n in (self.line(line) for line in lines) if n is not None]
        # LIST/LSUB runs in a stable order
        result: list[bytes] = []
        run: list[bytes] = []
        for line in out:
            if line.startswith((b"* LIST ", b"* LSUB ")):
                run.append(line)
                continue
            result += sorted(run)
            run = []
            result.append(line)
        return result + sorted(run)


class Sessions:
    """Named raw sessions on one server; every response line is recorded per session."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None,
                 starttls_context: ssl.SSLContext) -> None:
        self.host, self.port = host, port
        self.context, self.starttls_context = context, starttls_context
        self.clients: dict[str, Raw] = {}
        self.record: dict[str, list[bytes]] = {}
        self.idling: dict[str, bytes] = {}

    def client(self, name: str) -> Raw:
        if name not in self.clients:
            self.clients[name] = Raw(self.host, self.port, self.context)
            self.record[name] = []
        return self.clients[name]

    def step(self, name: str, command: bytes) -> None:
        client = self.client(name)
        log = self.record[name]
        if command == b"IDLE":
            client.count += 1
            tag = b"a%d" % client.count
            self.idling[name] = tag
            client.send(tag + b" IDLE\r\n")
            log.append(client.response())
        elif command.startswith(b"WAIT "):
            wanted = command[5:]
            while True:
                line = client.response()
                log.append(line)
                if wanted in line or not line:
                    break
        elif command == b"DONE":
            tag = self.idling.pop(name)
            client.send(b"DONE\r\n")
            while True:
                line = client.response()
                log.append(line)
                if line.startswith(tag + b" ") or not line:
                    break
        elif command == b"STARTTLS":
            replies = client.cmd(command)
            log += replies
            if b" OK " in replies[-1]:
                client.start_tls(self.starttls_context)
        else:
            log += client.cmd(command)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def run(host: str, port: int, script: Sequence[tuple[str, bytes]],
        context: ssl.SSLContext | None, starttls_context: ssl.SSLContext
        ) -> dict[str, list[bytes]]:
    """Run *script*; return each session's normalised transcript (greeting included)."""
    sessions = Sessions(host, port, context, starttls_context)
    try:
        for name, command in script:
            sessions.step(name, command)
    finally:
        sessions.close()
    normaliser = Normaliser()
    return {name: normaliser.transcript([sessions.client(name).greeting, *lines])
            for name, lines in sessions.record.items()}


def compare(dovecot: DovecotServer, script: Sequence[tuple[str, bytes]],
            service: str = "imap") -> dict[str, list[bytes]]:
    """Run *script* on both servers and assert the normalised transcripts are equal."""
    users = {"alice": dovecot.users["alice"], "bob": dovecot.users["bob"]}
    dovecot_tls = ssl.create_default_context(cafile=dovecot.ca_file)
    with MailServer(users, pop3=False, imap=True) as ours:
        for user in users:
            ours.store.subscribe(user, "INBOX", False)
        port = ours.imaps_port if service == "imaps" else ours.imap_port
        mine = run(ours.host, port, script,
                   test_ssl_context() if service == "imaps" else None, test_ssl_context())
    theirs = run(dovecot.host, dovecot.ports[service], script,
                 dovecot_tls if service == "imaps" else None, dovecot_tls)
    for name in theirs:
        if mine[name] != theirs[name]:
            diff = difflib.unified_diff([repr(x) for x in theirs[name]],
                                        [repr(x) for x in mine[name]],
                                        "dovecot", "mailwire", lineterm="", n=1)
            pytest.fail(f"session {name} differs:\n" + "\n".join(diff), pytrace=False)
    return mine


def script(*commands: bytes | str, session: str = "A") -> list[tuple[str, bytes]]:
    return [(session, c.encode() if isinstance(c, str) else c) for c in commands]


LOGIN = "LOGIN alice alicepass"

# -- the scripts ------------------------------------------------------------------------------


def test_not_authenticated_and_basic_commands(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        "CAPABILITY", "NOOP", "SELECT INBOX", "LOGIN alice wrong", "LOGIN nobody x",
        LOGIN, "CAPABILITY", "LOGIN alice alicepass", "NAMESPACE", "ID NIL",
        'ID ("name" "test")', "ENABLE FOO", "FOO", "CHECK", "CLOSE", "UNSELECT", "FETCH 1 FLAGS",
        "UID FETCH 1 FLAGS", "SELECT INBOX", "STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY "
        "UNSEEN)", "CHECK", "EXAMINE INBOX", "SELECT Nope", "FETCH 1 FLAGS", "LOGOUT"))


def test_authenticate_plain(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        "AUTHENTICATE PLAIN AGFsaWNlAHdyb25n", "AUTHENTICATE PLAIN =",
        "AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlcGFzcw==", "NOOP", "LOGOUT"))


def test_mailbox_commands(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        LOGIN, "CREATE Work", "CREATE Work/Sub", "CREATE Work", "CREATE INBOX", "CREATE inbox",
        "CREATE A/B/C", 'CREATE "Caf&AOk-"', 'CREATE "a*b"', 'CREATE "with space"',
        'CREATE ""', "CREATE ~foo", 'CREATE "Caf&bad"', "CREATE Trailing/",
        'LIST "" *', 'LIST "" %', 'LIST "" Work/%', "LIST Work/ %", 'LIST "" */C', 'LIST "" %/%',
        'LIST "" in*', 'LIST "" w*', 'LIST "" ""', 'LIST "" nope*',
        'STATUS "Caf&AOk-" (MESSAGES UIDNEXT)', "STATUS Nope (MESSAGES)",
        "STATUS INBOX (FOO)", "STATUS INBOX ()",
        "RENAME Work Job", 'LIST "" *', "RENAME Job INBOX", "RENAME Job Job",
        "RENAME Nope Other", "CREATE Y", "RENAME A X", 'LIST "" *', "RENAME X/B/C Y/C",
        'LIST "" *', "DELETE Job/Sub", "DELETE Job", "DELETE Nope", "DELETE INBOX",
        "DELETE X/B", 'LIST "" *',
        "SUBSCRIBE Y/C", "SUBSCRIBE Nope", 'LSUB "" *', 'LSUB "" %', 'LSUB "" Y/%',
        "UNSUBSCRIBE Y/C", "UNSUBSCRIBE Nope", 'LSUB "" *', "LOGOUT"))


def test_append_and_fetch(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        LOGIN,
        append(PLAIN, flags=b"\\Seen"),
        b"APPEND INBOX %s {%d}\r\n" % (DATE, len(PLAIN)) + PLAIN,
        append(PLAIN, mailbox=b"Nope"),
        append(b""),
        b"APPEND INBOX " + DATE + b" {3+}\r\nabc " + DATE + b" {3+}\r\ndef",
        "SELECT INBOX",
        append(PLAIN, flags=b"\\Flagged foo"),
        append(PLAIN, date=b'" 5-Mar-2024 01:02:03 -0500"'),
        "FETCH 1:* (FLAGS UID)", "FETCH 1 (UID RFC822.SIZE FLAGS INTERNALDATE)",
        "FETCH 1 ALL", "FETCH 1 FAST", "FETCH 1 FULL", "FETCH 1 ENVELOPE", "FETCH 1 BODY",
        "FETCH 1 BODYSTRUCTURE", "FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject From)] "
        "BODY[TEXT]<0.5>)", "FETCH 2 FLAGS", "FETCH 1 (RFC822.HEADER RFC822.TEXT)",
        "FETCH 1 (BODY[HEADER.FIELDS.NOT (Subject From To Cc)])", "FETCH 1 (BODY[]<5.10>)",
        "FETCH 1 (BODY.PEEK[]<500.10>)", "FETCH 5 (RFC822)", "FETCH 3:4 (RFC822.SIZE BODY[])",
        "FETCH 6 (INTERNALDATE)", "FETCH 1 (BODY[HEADER.FIELDS (X-NOPE)] BODY[1] BODY[2])",
        "FETCH 1 (BODY[TEXT] ENVELOPE RFC822.SIZE BODY[HEADER] UID BODYSTRUCTURE)",
        "STORE 1:* -FLAGS.SILENT (\\Seen)", "FETCH 1 (BODY[] FLAGS)",
        "FETCH 2 (BODY[TEXT] UID)", "FETCH 2 (BODY.PEEK[TEXT] FLAGS UID)",
        "UID FETCH 1:* FLAGS", "UID FETCH 5 (FLAGS UID)", "UID FETCH 99 FLAGS",
        "UID FETCH 5:* UID", "FETCH 9 FLAGS", "FETCH 2:99 FLAGS", "FETCH 0 UID",
        "FETCH x FLAGS", "FETCH 1 FOO", "FETCH 1 ()", "FETCH 1 (UID FLAGS", "FETCH 1",
        "FETCH 1 BODY[MIME]", "FETCH * UID", "LOGOUT"))


def test_structures(fresh_dovecot: DovecotServer) -> None:
    messages = [*SAMPLES, ADDRESSES, NESTED, NO_FINAL_NEWLINE]
    compare(fresh_dovecot, script(
        LOGIN, *(append(m) for m in messages), "EXAMINE INBOX",
        "FETCH 1:* (RFC822.SIZE BODYSTRUCTURE)", "FETCH 1:* BODY", "FETCH 1:* ENVELOPE",
        "FETCH 2 (BODY[1] BODY[1.MIME] BODY[2.HEADER] BODY[3]<0.20> BODY[1.1] BODY[1.TEXT])",
        "FETCH 6 (BODY[2] BODY[2.MIME] BODY[1]<10.20>)",
        "FETCH 8 (BODY[2] BODY[2.HEADER] BODY[2.TEXT] BODY[2.1] BODY[2.MIME] "
        "BODY[2.HEADER.FIELDS (SUBJECT)])",
        "FETCH 9 (BODY[TEXT] BODY[1] BODY[HEADER])", "LOGOUT"))


def test_store_and_search(fresh_dovecot: DovecotServer) -> None:
    searches = [
        "ALL", "SEEN", "UNSEEN", "FLAGGED", "UNFLAGGED", "ANSWERED", "UNANSWERED", "DELETED",
        "UNDELETED", "DRAFT", "UNDRAFT", "KEYWORD kw1", "UNKEYWORD kw1", "NOT SEEN",
        "OR SEEN DRAFT", "(SEEN FLAGGED)", "SEEN FLAGGED", 'SUBJECT "subject 3"', "FROM ALICE",
        "FROM carol", "TO bob", "CC dave", "BCC nobody", "BODY xxxxx", "TEXT " + "x" * 51,
        "HEADER Message-ID m3", 'HEADER Cc ""', "HEADER X-Nope x", "SINCE 3-Mar-2024",
        "BEFORE 3-Mar-2024", "ON 3-Mar-2024", "SENTSINCE 4-Mar-2024", "SENTBEFORE 2-Mar-2024",
        "SENTON 2-Mar-2024", "LARGER 176", "SMALLER 176", "UID 8:9", "UID 5:*", "2:4",
        "1,3 UNSEEN", "*", "99", "UID 99", "NEW", "OLD", "RECENT", "CHARSET UTF-8 SUBJECT subject",
        "CHARSET US-ASCII ALL", "CHARSET KOI8-R ALL", "NOT OR SEEN DELETED", "BOGUS", "OR SEEN",
        "NOT", "SINCE bogus", "LARGER x", "UID x", "()",
    ]
    compare(fresh_dovecot, script(
        LOGIN,
        *(append(search_message(i), date=b'"0%d-Mar-2024 10:00:00 +0000"' % i)
          for i in range(1, 7)),
        "SELECT INBOX",
        "STORE 2 +FLAGS (\\Seen)", "STORE 2 +FLAGS (\\Seen)", "STORE 3 +FLAGS.SILENT (\\Seen "
        "\\Flagged)", "STORE 4 FLAGS (\\Answered kw1)", "STORE 4 -FLAGS (kw1)",
        "STORE 4 +FLAGS (kw1)", "STORE 5 +FLAGS (\\Deleted)", "STORE 5 FLAGS (\\Deleted)",
        "UID STORE 6:10 +FLAGS (\\Draft)", "STORE 1 +FLAGS ()", "STORE 1 FLAGS \\Seen \\Deleted",
        "STORE 1 FLAGS ()", "STORE 1 +FLAGS (\\Recent)", "STORE 1 +FLAGS (\\Bogus)",
        "STORE 1 XFLAGS (\\Seen)", "FETCH 1:* (UID FLAGS)",
        *(f"SEARCH {criteria}" for criteria in searches), "UID SEARCH SEEN",
        b"SEARCH CHARSET UTF-8 SUBJECT {4+}\r\nSUBJ", "EXAMINE INBOX", "STORE 1 +FLAGS (\\Seen)",
        "FETCH 1 (BODY[TEXT] FLAGS)", "LOGOUT"))


def test_copy_move_expunge(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        LOGIN, *(append(search_message(i)) for i in range(1, 7)), "SELECT INBOX",
        "COPY 1:2 Work", "CREATE Work", "COPY 1:2 Work", "UID COPY 3,5 Work", "UID COPY 99 Work",
        "MOVE 1 Work", "UID MOVE 11 Work", "UID MOVE 4:5 Work", "FETCH 1:* (UID FLAGS)",
        "STORE 1,3 +FLAGS (\\Deleted)", "EXPUNGE", "STORE 1 +FLAGS.SILENT (\\Deleted)",
        "UID EXPUNGE 1:5", "UID EXPUNGE 6", "STATUS Work (MESSAGES RECENT UIDNEXT UIDVALIDITY "
        "UNSEEN)", "MOVE 1 INBOX", "CLOSE", "SELECT Work", "STORE 1:2 +FLAGS (\\Deleted)",
        "UNSELECT", "SELECT Work", "CLOSE", "STATUS Work (MESSAGES)", "EXAMINE Work",
        "COPY 1 INBOX", "EXPUNGE", "SELECT INBOX", "LOGOUT"))


def test_two_sessions(fresh_dovecot: DovecotServer) -> None:
    steps = script(LOGIN) + script(LOGIN, session="B")
    steps += script(*(append(search_message(i)) for i in range(1, 5)), "SELECT INBOX")
    steps += script("SELECT INBOX", session="B")
    steps += script("STORE 2 +FLAGS.SILENT (\\Deleted)", "EXPUNGE", "STORE 3 +FLAGS (\\Flagged)",
                    append(search_message(5)))
    steps += script("NOOP", session="B")
    steps += script("STORE 1 +FLAGS.SILENT (\\Deleted)", "EXPUNGE", "STORE 2 +FLAGS (\\Seen)")
    steps += script("FETCH 1:* FLAGS", "SEARCH ALL", "STORE 2 +FLAGS (\\Answered)",
                    "UID SEARCH ALL", "FETCH 1 FLAGS", session="B")
    steps += script("STORE 1 +FLAGS (\\Draft)", "STORE 2 +FLAGS (kw)")
    steps += script("UID FETCH 1:* FLAGS", "NOOP", session="B")
    # IDLE: pushed changes
    steps += script("IDLE", session="B")
    steps += script(append(search_message(6)))
    steps += script("WAIT EXISTS", "DONE", session="B")
    steps += script("LOGOUT") + script("LOGOUT", session="B")
    compare(fresh_dovecot, steps)


EIGHT_BIT = crlf(
    "From: \"Jürgen M\" <j@example.de>\nTo: bob@example.org\nSubject: Grüße\n"
    "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
    "Käse und Café\n".encode())
ENCODED = crlf(
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
    b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n"
    b"\nK=C3=A4se\n")


def test_text_search_and_arguments(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script(
        b"LOGIN {5}\r\nalice {9+}\r\nalicepass", append(EIGHT_BIT), append(ENCODED),
        append(PLAIN, flags=b"$Label1 \\Answered"), 'SELECT "INBOX"', "FETCH 1:* ENVELOPE",
        "FETCH 1:* BODYSTRUCTURE", 'FETCH 3 (BODY.PEEK[HEADER.FIELDS ("Subject" to)])',
        "FETCH 3 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[TEXT]<2.3>)",
        b"SEARCH CHARSET UTF-8 SUBJECT {4+}\r\nGR\xc3\x9c", b'SEARCH BODY "k\xc3\xa4se"',
        b'SEARCH TEXT "caf\xc3\xa9"', b'SEARCH FROM "j\xc3\xbcrgen"', b'SEARCH FROM "j\xfcrgen"',
        "SEARCH SUBJECT gr", "SEARCH KEYWORD $Label1", "SEARCH HEADER Content-Type utf-8",
        "SEARCH TO BOB", "SEARCH CC BOB", "FETCH 1:* (FLAGS)", "LOGOUT"))


def test_selected_mailbox_deleted_or_renamed(fresh_dovecot: DovecotServer) -> None:
    # (RENAME INBOX is left out: this Dovecot refuses it, mailwire does what RFC 3501 says.)
    steps = script(LOGIN, append(PLAIN), "CREATE INBOX/sub", 'LIST "" *', "CREATE Gone",
                   "SELECT Gone")
    steps += script(LOGIN, "DELETE Gone", session="B")
    steps += script("NOOP")
    steps += script("CREATE Mine", "SELECT Mine", "RENAME Mine Yours", "NOOP", session="B")
    compare(fresh_dovecot, steps)


def test_idle_with_flags_and_expunges(fresh_dovecot: DovecotServer) -> None:
    steps = script(LOGIN, *(append(search_message(i)) for i in range(1, 4)), "SELECT INBOX",
                   "STORE 1 +FLAGS.SILENT (\\Deleted)")
    steps += script(LOGIN, "SELECT INBOX", "IDLE", session="B")
    steps += script("STORE 2 +FLAGS (\\Flagged)")
    steps += script("WAIT FETCH", session="B")
    steps += script("EXPUNGE")
    steps += script("WAIT EXPUNGE", "DONE", "FETCH 1:* (UID FLAGS)", "LOGOUT", session="B")
    steps += script("LOGOUT")
    compare(fresh_dovecot, steps)


def test_recent(fresh_dovecot: DovecotServer) -> None:
    steps = script(LOGIN, "CREATE R", append(PLAIN, mailbox=b"R"), "STATUS R (RECENT)")
    steps += script(LOGIN, "EXAMINE R", "FETCH 1 FLAGS", "SEARCH RECENT", session="B")
    steps += script(append(PLAIN, mailbox=b"R"))
    steps += script("NOOP", session="B")
    steps += script("STATUS R (RECENT)", "SELECT R", "STATUS R (RECENT)",
                    append(PLAIN, mailbox=b"R"))
    steps += script("NOOP", "FETCH 1:* FLAGS", "SEARCH NEW", "SEARCH OLD", session="B")
    steps += script(LOGIN, "SELECT R", "FETCH 1:* FLAGS", "LOGOUT", session="C")
    steps += script("LOGOUT") + script("LOGOUT", session="B")
    compare(fresh_dovecot, steps)


def test_starttls(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script("STARTTLS", "CAPABILITY", "STARTTLS", LOGIN, "SELECT INBOX",
                                  "LOGOUT"))
    compare(fresh_dovecot, script("CAPABILITY", "STARTTLS", LOGIN, "LOGOUT"))


def test_imaps(fresh_dovecot: DovecotServer) -> None:
    compare(fresh_dovecot, script("CAPABILITY", "STARTTLS", LOGIN, "SELECT INBOX", "LOGOUT"),
            service="imaps")


def test_normaliser() -> None:
    normaliser = Normaliser()
    assert normaliser.transcript([
        b"a1 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).",
        b"* OK [UIDVALIDITY 1795403443] UIDs valid",
        b"* OK [HIGHESTMODSEQ 3] Highest",
        b'* LIST (\\HasNoChildren \\UnMarked) "/" b',
        b'* LIST (\\HasNoChildren) "/" a',
        b"a2 OK [COPYUID 17 1 1] Copy completed.",
        b"a3 OK [APPENDUID 1795403443 1:2] Append completed.",
    ]) == [
        b"a1 OK [READ-WRITE]",
        b"* OK [UIDVALIDITY V1]",
        b'* LIST (\\HasNoChildren) "/" a',
        b'* LIST (\\HasNoChildren) "/" b',
        b"a2 OK [COPYUID V2 1 1]",
        b"a3 OK [APPENDUID V1 1:2]",
    ]
