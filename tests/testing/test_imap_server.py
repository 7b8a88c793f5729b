"""The embedded IMAP server, driven by the stdlib's imaplib and by mailwire's (parametrized), and
by a raw socket client for exact bytes and for what a well-behaved client never sends.

Commands the 3.9-3.13 stdlib has no method for (IDLE, ID) go through the clients' own ``send``
and ``readline``, which is how IDLE was done with imaplib before 3.14.
"""

from __future__ import annotations

import base64
import imaplib as stdlib_imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from email import message_from_bytes, policy
from types import ModuleType
from typing import Any, Union

import pytest

from mailwire.testing import IMAPServer, MailServer, Store, sample_messages, test_ssl_context
from mailwire.testing import imap_parse as parse
from mailwire.testing.imap_parse import ProtocolError

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

USERS = {"alice": "secret", "bob": "hunter2"}
TIMEOUT = 10.0

PLAIN = (
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
POST_LOGIN = (b"IMAP4rev1 SASL-IR ID ENABLE IDLE MULTIAPPEND UNSELECT CHILDREN NAMESPACE "
              b"UIDPLUS MOVE LITERAL+")
FLAG_NAMES = b"\\Answered \\Flagged \\Deleted \\Seen \\Draft"


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mailwire_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mailwire-")]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(mailwire_threads())
    yield
    deadline = time.monotonic() + TIMEOUT
    while [t for t in mailwire_threads() if t not in before] and time.monotonic() < deadline:
        time.sleep(0.01)  # a client thread may still be closing after its LOGOUT
    leftover = [t for t in mailwire_threads() if t not in before]
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer(USERS, pop3=False, imap=True) as running:
        yield running


@pytest.fixture(params=["stdlib", "mailwire"])
def imap(request: pytest.FixtureRequest) -> ModuleType:
    """The IMAP client module under test: the stdlib's imaplib, and mailwire's."""
    if request.param == "stdlib":
        return stdlib_imaplib
    module: ModuleType = pytest.importorskip("mailwire.imaplib")
    return module


def login(imap: ModuleType, server: MailServer, user: str = "alice") -> Any:
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    try:
        client.login(user, USERS[user])
    except BaseException:
        client.shutdown()
        raise
    return client


def logout(client: Any) -> None:
    typ, _ = client.logout()
    assert typ == "BYE"


def exchange(client: Any, command: bytes, tag: bytes = b"X1") -> list[bytes]:
    """Send one command through a client's own send/readline; return every line up to the
    tagged one (what a stdlib user without IDLE or ID methods does)."""
    client.send(tag + b" " + command + b"\r\n")
    lines = []
    while True:
        line = client.readline()
        assert line, "connection closed"
        lines.append(line.rstrip(b"\r\n"))
        if line.startswith(tag + b" "):
            return lines


class Raw:
    """A bare-socket IMAP client: exact bytes in and out."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None = None) -> None:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock: socket.socket = sock
        self.file = sock.makefile("rb")
        self.count = 0
        self.greeting = self.response()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> bytes:
        """One response line (literals inside it included), without the final CRLF."""
        line = self.file.readline()
        out = line
        while True:
            match = re.search(rb"\{(\d+)\}\r\n\Z", line)
            if match is None:
                return out[:-2] if out.endswith(b"\r\n") else out
            out += self.file.read(int(match.group(1)))
            line = self.file.readline()
            out += line

    def cmd(self, command: Union[str, bytes], tag: str | None = None) -> list[bytes]:
        """Send a command (synchronising literals wait for "+"); return the responses up to
        and including the tagged one."""
        if tag is None:
            self.count += 1
            tag = f"a{self.count}"
        data = (command.encode("utf-8") if isinstance(command, str) else command)
        pieces = re.split(rb"(\{\d+\+?\}\r\n)", tag.encode() + b" " + data + b"\r\n")
        out: list[bytes] = []
        for index in range(0, len(pieces), 2):
            announcement = pieces[index + 1] if index + 1 < len(pieces) else b""
            self.send(pieces[index] + announcement)
            if announcement and not announcement.endswith(b"+}\r\n"):
                reply = self.response()
                out.append(reply)
                if not reply.startswith(b"+"):
                    return out
        while True:
            reply = self.response()
            out.append(reply)
            if reply.startswith(tag.encode() + b" ") or not reply:
                return out

    def start_tls(self, context: ssl.SSLContext) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw(server: MailServer) -> Iterator[Raw]:
    client = Raw(server.host, server.imap_port)
    yield client
    client.close()


def raw_login(raw: Raw, user: str = "alice") -> None:
    assert raw.cmd(f"LOGIN {user} {USERS[user]}")[-1].startswith(b"a")
    assert raw.cmd("NOOP")[-1].endswith(b"OK NOOP completed.")


def selected(raw: Raw, mailbox: str = "INBOX") -> Raw:
    raw_login(raw)
    assert raw.cmd(f"SELECT {mailbox}")[-1].endswith(b"OK [READ-WRITE] Select completed.")
    return raw


# -- greeting, capabilities, authentication ------------------------------------------------------


def test_greeting_and_capabilities(server: MailServer, raw: Raw) -> None:
    pre = b"IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN"
    assert raw.greeting == b"* OK [CAPABILITY " + pre + b"] mailwire ready."
    assert raw.cmd("CAPABILITY") == [
        b"* CAPABILITY " + pre,
        b"a1 OK Pre-login capabilities listed, post-login capabilities have more.",
    ]
    # the client asked for capabilities before login: the new ones come untagged
    assert raw.cmd("LOGIN alice secret") == [b"* CAPABILITY " + POST_LOGIN, b"a2 OK Logged in"]
    assert raw.cmd("CAPABILITY") == [b"* CAPABILITY " + POST_LOGIN,
                                     b"a3 OK Capability completed."]


def test_login_reply_carries_capabilities_when_not_asked(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("LOGIN alice secret") == [b"a1 OK [CAPABILITY " + POST_LOGIN + b"] Logged in"]


def test_login(imap: ModuleType, server: MailServer) -> None:
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    typ, data = client.login("alice", "secret")
    # "[CAPABILITY ...] Logged in" unless the client asked CAPABILITY first (the 3.9-3.13
    # stdlib always does; the newest reads the greeting's capabilities instead)
    assert typ == "OK" and data[0].endswith(b"Logged in")
    assert client.state == "AUTH"
    logout(client)


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "secret"),
                                                ("alice", "")])
def test_login_failure(imap: ModuleType, server: MailServer, user: str, password: str) -> None:
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    with pytest.raises(imap.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(user, password)
    client.login("alice", "secret")  # still not authenticated: a second try works
    logout(client)


def test_login_with_awkward_password(imap: ModuleType) -> None:
    password = 'p a"s\\s{1}%*() 7'
    with MailServer({"awk": password}, pop3=False, imap=True) as server:
        client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        assert client.login("awk", password)[0] == "OK"
        logout(client)


def test_login_with_literals(server: MailServer, raw: Raw) -> None:
    assert raw.cmd(b"LOGIN {5}\r\nalice {6+}\r\nsecret") == [
        b"+ OK", b"a1 OK [CAPABILITY " + POST_LOGIN + b"] Logged in"]


def test_authenticate_plain(imap: ModuleType, server: MailServer) -> None:
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    typ, _ = client.authenticate("PLAIN", lambda _: b"\0alice\0secret")
    assert typ == "OK"
    assert client.state == "AUTH"
    logout(client)


def plain(authzid: str, user: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def test_authenticate_plain_on_the_wire(server: MailServer, raw: Raw) -> None:
    failed = b"NO [AUTHENTICATIONFAILED] Authentication failed."
    assert raw.cmd("AUTHENTICATE CRAM-MD5") == [
        b"a1 NO [ALERT] Unsupported authentication mechanism."]
    assert raw.cmd("AUTHENTICATE PLAIN " + plain("", "alice", "wrong")) == [b"a2 " + failed]
    assert raw.cmd("AUTHENTICATE PLAIN " + plain("bob", "alice", "secret")) == [b"a3 " + failed]
    assert raw.cmd("AUTHENTICATE PLAIN !!!") == [
        b"a4 BAD Invalid base64 data in initial response"]
    assert raw.cmd("AUTHENTICATE PLAIN =") == [b"a5 " + failed]
    raw.send(b"c1 AUTHENTICATE PLAIN\r\n")
    assert raw.response() == b"+ "
    raw.send(b"*\r\n")
    assert raw.response() == b"c1 BAD Authentication aborted by client."
    raw.send(b"c2 AUTHENTICATE PLAIN\r\n")
    assert raw.response() == b"+ "
    raw.send(b"!!!\r\n")
    assert raw.response() == b"c2 NO [ALERT] Invalid base64 in response"
    # SASL-IR: the initial response on the command line
    assert raw.cmd("AUTHENTICATE PLAIN " + plain("alice", "alice", "secret")) == [
        b"a6 OK [CAPABILITY " + POST_LOGIN + b"] Logged in"]


def test_commands_in_the_wrong_state(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("SELECT INBOX") == [b"a1 BAD Error in IMAP command received by server."]
    assert raw.cmd("FETCH 1 FLAGS") == [b"a2 BAD Error in IMAP command received by server."]
    assert raw.cmd("ENABLE CONDSTORE") == [
        b"* ENABLED", b"a3 OK ENABLE ignored in non-authenticated state."]
    raw_login(raw)
    assert raw.cmd("LOGIN alice secret") == [
        b"a6 BAD Error in IMAP command LOGIN: Unknown command."]
    assert raw.cmd("AUTHENTICATE PLAIN =") == [
        b"a7 BAD Error in IMAP command AUTHENTICATE: Unknown command."]
    assert raw.cmd("STARTTLS") == [b"a8 BAD Error in IMAP command STARTTLS: Unknown command."]
    for number, command in enumerate(["FETCH 1 FLAGS", "STORE 1 +FLAGS (\\Seen)", "SEARCH ALL",
                                      "EXPUNGE", "CLOSE", "UNSELECT", "CHECK", "COPY 1 INBOX",
                                      "MOVE 1 INBOX", "UID FETCH 1 FLAGS"], 9):
        assert raw.cmd(command) == [f"a{number} BAD No mailbox selected.".encode()]


def test_unknown_and_malformed_commands(server: MailServer, raw: Raw) -> None:
    raw.send(b"\r\n")
    assert raw.response() == b"* BAD Error in IMAP command received by server."
    raw.send(b"t+x NOOP\r\n")
    assert raw.response() == b"* BAD Error in IMAP command received by server."
    raw.send(b"onlytag\r\n")
    assert raw.response() == b"onlytag BAD Error in IMAP command received by server."
    assert raw.cmd("FOO") == [b"a1 BAD Error in IMAP command FOO: Unknown command."]
    assert raw.cmd("noop") == [b"a2 OK NOOP completed."]
    raw_login(raw)
    assert raw.cmd("UID FOO 1") == [b"a5 BAD No mailbox selected."]
    raw.cmd("SELECT INBOX")
    assert raw.cmd("UID FOO 1") == [b"a7 BAD Error in IMAP command UID FOO: Unknown command."]
    assert raw.cmd("UID") == [b"a8 BAD Error in IMAP command UID: Invalid arguments."]
    assert raw.cmd('SEARCH "unterminated') == [
        b"a9 BAD Error in IMAP command SEARCH: Missing '\"'."]
    assert raw.cmd("SEARCH (ALL") == [b"a10 BAD Error in IMAP command SEARCH: Missing ')'."]
    assert raw.cmd("SEARCH ALL)") == [b"a11 BAD Error in IMAP command SEARCH: Unexpected ')'."]
    assert raw.cmd(b"NOOP caf\xc3\xa9") == [
        b"a12 BAD Error in IMAP command NOOP: Invalid characters in atom."]
    assert raw.cmd("LOGOUT") == [b"* BYE Logging out", b"a13 OK Logout completed."]
    assert raw.response() == b""


def test_logout_in_every_state(imap: ModuleType, server: MailServer) -> None:
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    assert client.logout() == ("BYE", [b"Logging out"])
    client = login(imap, server)
    client.select()
    assert client.logout() == ("BYE", [b"Logging out"])


def test_noop_check_id_enable_namespace(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    assert client.noop() == ("OK", [b"NOOP completed."])
    assert client.namespace() == ("OK", [b'(("" "/")) NIL NIL'])
    assert client.enable("UTF8=ACCEPT") == ("OK", [b"Enabled."])  # accepted, nothing enabled
    assert exchange(client, b'ID ("name" "test" "version" "1")') == [
        b'* ID ("name" "mailwire")', b"X1 OK ID completed."]
    assert exchange(client, b"ID NIL", b"X2") == [b'* ID ("name" "mailwire")',
                                                  b"X2 OK ID completed."]
    client.select()
    assert client.check() == ("OK", [b"Check completed."])
    logout(client)


# -- SELECT, EXAMINE and the mailbox commands -------------------------------------------------


def test_select_and_examine(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN, flags=["\\Seen"])
    server.deliver("alice", PLAIN, flags=["$Label1"])
    server.deliver("alice", PLAIN)
    uidvalidity = server.store.snapshot("alice").uidvalidity
    raw_login(raw)
    assert raw.cmd("SELECT inbox") == [
        b"* FLAGS (" + FLAG_NAMES + b" $Label1)",
        b"* OK [PERMANENTFLAGS (" + FLAG_NAMES + b" $Label1 \\*)] Flags permitted.",
        b"* 3 EXISTS",
        b"* 3 RECENT",
        b"* OK [UNSEEN 2] First unseen.",
        b"* OK [UIDVALIDITY %d] UIDs valid" % uidvalidity,
        b"* OK [UIDNEXT 4] Predicted next UID",
        b"a3 OK [READ-WRITE] Select completed.",
    ]
    assert raw.cmd("EXAMINE INBOX") == [
        b"* OK [CLOSED] Previous mailbox closed.",
        b"* FLAGS (" + FLAG_NAMES + b" $Label1)",
        b"* OK [PERMANENTFLAGS ()] Read-only mailbox.",
        b"* 3 EXISTS",
        b"* 0 RECENT",  # the SELECT took them
        b"* OK [UNSEEN 2] First unseen.",
        b"* OK [UIDVALIDITY %d] UIDs valid" % uidvalidity,
        b"* OK [UIDNEXT 4] Predicted next UID",
        b"a4 OK [READ-ONLY] Examine completed.",
    ]
    assert raw.cmd("SELECT Nope") == [b"* OK [CLOSED] Previous mailbox closed.",
                                      b"a5 NO Mailbox doesn't exist: Nope."]
    assert raw.cmd("FETCH 1 FLAGS") == [b"a6 BAD No mailbox selected."]


def test_select_with_clients(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = login(imap, server)
    assert client.select("INBOX") == ("OK", [b"1"])
    assert client.response("UIDVALIDITY")[1][0] is not None
    assert client.select("Nope") == ("NO", [b"Mailbox doesn't exist: Nope."])
    assert client.state == "AUTH"
    assert client.select("INBOX", readonly=True) == ("OK", [b"1"])
    assert client.unselect() == ("OK", [b"Unselect completed."])
    logout(client)


def test_examine_does_not_take_recent(server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    first, second, third = (Raw(server.host, server.imap_port) for _ in range(3))
    try:
        raw_login(first)
        assert b"* 1 RECENT" in first.cmd("EXAMINE INBOX")
        assert first.cmd("FETCH 1 FLAGS")[0] == b"* 1 FETCH (FLAGS (\\Recent))"
        raw_login(second)
        assert b"* 1 RECENT" in second.cmd("SELECT INBOX")
        raw_login(third)
        assert b"* 0 RECENT" in third.cmd("SELECT INBOX")
        assert third.cmd("STATUS INBOX (RECENT)")[0] == b"* STATUS INBOX (RECENT 0)"
        server.deliver("alice", PLAIN)
        assert first.cmd("NOOP") == [b"* 2 EXISTS", b"* 2 RECENT", b"a5 OK NOOP completed."]
        # the read-only session saw the new message as recent without taking it
        assert second.cmd("NOOP") == [b"* 2 EXISTS", b"* 2 RECENT", b"a4 OK NOOP completed."]
        assert third.cmd("NOOP") == [b"* 2 EXISTS", b"a5 OK NOOP completed."]
    finally:
        for client in (first, second, third):
            client.close()


def test_create_list_delete(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    assert client.create("Work") == ("OK", [b"Create completed."])
    assert client.create("Work/Sub") == ("OK", [b"Create completed."])
    assert client.create("A/B/C") == ("OK", [b"Create completed."])
    typ, data = client.create("Work")
    assert (typ, data) == ("NO", [b"[ALREADYEXISTS] Mailbox already exists."])
    assert client.create("inbox")[0] == "NO"
    assert client.list() == ("OK", [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\Noselect \\HasChildren) "/" A',
        b'(\\Noselect \\HasChildren) "/" A/B',
        b'(\\HasNoChildren) "/" A/B/C',
        b'(\\HasChildren) "/" Work',
        b'(\\HasNoChildren) "/" Work/Sub',
    ])
    assert client.list('""', "%") == ("OK", [
        b'(\\HasNoChildren) "/" INBOX',
        b'(\\Noselect \\HasChildren) "/" A',
        b'(\\HasChildren) "/" Work',
    ])
    assert client.list('""', "Work/%") == ("OK", [b'(\\HasNoChildren) "/" Work/Sub'])
    assert client.list("Work/", "%") == ("OK", [b'(\\HasNoChildren) "/" Work/Sub'])
    assert client.list('""', "*/C") == ("OK", [b'(\\HasNoChildren) "/" A/B/C'])
    assert client.list('""', "in%") == ("OK", [b'(\\HasNoChildren) "/" INBOX'])
    assert client.list('""', "w*") == ("OK", [None])  # only INBOX ignores case
    assert client.list('""', '""') == ("OK", [b'(\\Noselect) "/" ""'])
    assert client.delete("Work") == ("OK", [b"Delete completed."])
    assert client.list('""', "Work*") == ("OK", [
        b'(\\Noselect \\HasChildren) "/" Work', b'(\\HasNoChildren) "/" Work/Sub'])
    assert client.delete("Work")[0] == "NO"
    assert client.delete("INBOX") == ("NO", [b"INBOX can't be deleted."])
    assert client.delete("Nope") == ("NO", [b"[NONEXISTENT] Mailbox doesn't exist: Nope."])
    logout(client)


def test_create_refusals(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    assert raw.cmd('CREATE ""') == [b"a3 NO [CANNOT] Invalid mailbox name: Name is empty."]
    assert raw.cmd("CREATE ~foo") == [
        b"a4 NO [CANNOT] Invalid mailbox name: Begins with '~'."]
    assert raw.cmd('CREATE "Caf&bad"') == [b"a5 NO Mailbox name is not valid mUTF-7."]
    assert raw.cmd(b'CREATE "Caf\xc3\xa9"') == [b"a6 NO Mailbox name is not valid mUTF-7."]
    assert raw.cmd("CREATE a//b") == [b"a7 NO [CANNOT] Invalid mailbox name."]
    assert raw.cmd("CREATE Trailing/") == [b"a8 OK Create completed."]
    assert server.store.folders("alice") == ["INBOX", "Trailing"]


def test_names_are_modified_utf7_and_quoted_when_needed(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    assert raw.cmd('CREATE "Caf&AOk-"') == [b"a3 OK Create completed."]
    assert raw.cmd('CREATE "a*b"') == [b"a4 OK Create completed."]
    assert raw.cmd('CREATE "with space"') == [b"a5 OK Create completed."]
    assert raw.cmd('CREATE "Tom &- Jerry"') == [b"a6 OK Create completed."]
    assert "Café" in server.store.folders("alice")
    assert "Tom & Jerry" in server.store.folders("alice")
    assert raw.cmd('LIST "" *') == [
        b'* LIST (\\HasNoChildren) "/" INBOX',
        b'* LIST (\\HasNoChildren) "/" Caf&AOk-',
        b'* LIST (\\HasNoChildren) "/" "Tom &- Jerry"',
        b'* LIST (\\HasNoChildren) "/" "a*b"',
        b'* LIST (\\HasNoChildren) "/" "with space"',
        b"a7 OK List completed.",
    ]
    assert raw.cmd('STATUS "Caf&AOk-" (MESSAGES)') == [
        b"* STATUS Caf&AOk- (MESSAGES 0)", b"a8 OK Status completed."]


def test_rename(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    client.create("Old")
    client.create("Old/Child")
    client.create("Taken")
    assert client.rename("Old", "New") == ("OK", [b"Rename completed."])
    assert server.store.folders("alice") == ["INBOX", "New", "New/Child", "Taken"]
    assert client.rename("New", "Taken") == (
        "NO", [b"[ALREADYEXISTS] Target mailbox already exists."])
    assert client.rename("New", "New") == (
        "NO", [b"[ALREADYEXISTS] Can't rename mailbox to itself."])
    assert client.rename("Nope", "Other") == (
        "NO", [b"[NONEXISTENT] Mailbox doesn't exist: Nope."])
    assert client.rename("New", "New/Deeper")[0] == "NO"
    logout(client)


def test_rename_a_noselect_parent_moves_its_children(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    raw.cmd("CREATE A/B/C")
    raw.cmd("CREATE A/D")
    assert raw.cmd("RENAME A X") == [b"a5 OK Rename completed."]
    assert server.store.folders("alice") == ["INBOX", "X/B/C", "X/D"]


def test_rename_inbox_moves_its_messages(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = login(imap, server)
    assert client.rename("INBOX", "Archive")[0] == "OK"
    assert len(server.messages("alice", "Archive")) == 1
    assert server.messages("alice") == ()
    logout(client)


def test_subscriptions(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    client.unsubscribe("INBOX")  # the store subscribes INBOX; IMAP CREATE does not subscribe
    client.create("P/Q/R")
    client.create("P/S")
    assert client.lsub() == ("OK", [None])
    assert client.subscribe("P/Q/R") == ("OK", [b"Subscribe completed."])
    assert client.lsub() == ("OK", [b'() "/" P/Q/R'])
    assert client.lsub('""', "%") == ("OK", [b'(\\Noselect) "/" P'])
    assert client.lsub('""', "P/%") == ("OK", [b'(\\Noselect) "/" P/Q'])
    assert client.subscribe("Nope") == ("NO", [b"Mailbox doesn't exist: Nope."])
    assert client.unsubscribe("P/Q/R") == ("OK", [b"Unsubscribe completed."])
    assert client.unsubscribe("Nope") == ("OK", [b"Unsubscribe completed."])
    assert client.lsub() == ("OK", [None])
    logout(client)


def test_status(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN, flags=["\\Seen"])
    server.deliver("alice", PLAIN)
    snapshot = server.store.snapshot("alice")
    client = login(imap, server)
    assert client.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)") == ("OK", [
        b"INBOX (MESSAGES 2 RECENT 2 UIDNEXT 3 UIDVALIDITY %d UNSEEN 1)" % snapshot.uidvalidity])
    assert client.status("INBOX", "(UNSEEN MESSAGES)") == ("OK", [b"INBOX (UNSEEN 1 MESSAGES 2)"])
    assert client.status("Nope", "(MESSAGES)") == ("NO", [b"Mailbox doesn't exist: Nope."])
    with pytest.raises(imap.IMAP4.error, match="Invalid status item FOO"):
        client.status("INBOX", "(FOO)")
    with pytest.raises(imap.IMAP4.error, match="Empty status list"):
        client.status("INBOX", "()")
    client.select()
    assert client.status("INBOX", "(MESSAGES RECENT)") == (
        "OK", [b"INBOX (MESSAGES 2 RECENT 2)"])  # the selected mailbox: this session's \Recent
    logout(client)


def test_status_on_the_selected_mailbox_says_clientbug(server: MailServer, raw: Raw) -> None:
    selected(raw)
    assert raw.cmd("STATUS INBOX (MESSAGES)") == [
        b"* STATUS INBOX (MESSAGES 0)",
        b"a4 OK [CLIENTBUG] Status on selected mailbox completed."]


# -- APPEND -----------------------------------------------------------------------------------


def test_append(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    uidvalidity = server.store.snapshot("alice").uidvalidity
    typ, data = client.append("INBOX", "(\\Seen $Work)", '"04-Mar-2024 10:00:00 +0100"', PLAIN)
    assert (typ, data) == ("OK", [b"[APPENDUID %d 1] Append completed." % uidvalidity])
    (message,) = server.messages("alice")
    assert message.data == crlf(PLAIN)
    assert message.flags == {"\\Seen", "$Work"}
    assert message.internal_date == datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
    assert client.append("INBOX", None, None, b"Subject: x\r\n\r\ny\r\n")[1] == [
        b"[APPENDUID %d 2] Append completed." % uidvalidity]
    assert client.append("Nope", None, None, PLAIN) == (
        "NO", [b"[TRYCREATE] Mailbox doesn't exist: Nope."])
    logout(client)


def test_append_on_the_wire(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    uidvalidity = server.store.snapshot("alice").uidvalidity
    body = b"Subject: literal\r\n\r\nbody\r\n"
    appended = b"OK [APPENDUID %d %%d] Append completed." % uidvalidity
    # synchronising literal: "+ OK" first
    assert raw.cmd(b"APPEND INBOX {%d}\r\n" % len(body) + body) == [
        b"+ OK", b"a3 " + appended % 1]
    # LITERAL+: no continuation
    assert raw.cmd(b"APPEND INBOX (\\Flagged) {%d+}\r\n" % len(body) + body) == [
        b"a4 " + appended % 2]
    # MULTIAPPEND
    assert raw.cmd(b'APPEND INBOX {3+}\r\nabc () " 5-Mar-2024 01:02:03 -0500" {3+}\r\ndef') == [
        b"a5 OK [APPENDUID %d 3:4] Append completed." % uidvalidity]
    messages = server.messages("alice")
    assert [m.data for m in messages] == [body, body, b"abc", b"def"]
    assert messages[1].flags == {"\\Flagged"}
    assert messages[3].internal_date == datetime(2024, 3, 5, 6, 2, 3, tzinfo=timezone.utc)
    assert raw.cmd(b"APPEND INBOX {0+}\r\n") == [b"a6 NO Can't save a zero byte message."]
    assert raw.cmd(b"APPEND INBOX (\\Recent) {1+}\r\nx") == [
        b"a7 BAD Error in IMAP command APPEND: Invalid system flag \\RECENT."]
    assert raw.cmd(b'APPEND INBOX "bad-date" {1+}\r\nx') == [
        b"a8 BAD Error in IMAP command APPEND: Invalid internal date."]
    assert raw.cmd(b"APPEND INBOX") == [
        b"a9 BAD Error in IMAP command APPEND: Missing message size."]
    assert raw.cmd(b"APPEND INBOX abc") == [
        b"a10 BAD Error in IMAP command APPEND: Invalid arguments."]
    assert len(server.messages("alice")) == 4


def test_append_to_the_selected_mailbox(server: MailServer, raw: Raw) -> None:
    selected(raw)
    body = b"Subject: x\r\n\r\ny\r\n"
    lines = raw.cmd(b"APPEND INBOX (\\Flagged foo) {%d+}\r\n" % len(body) + body)
    assert lines[:4] == [
        b"* FLAGS (" + FLAG_NAMES + b" foo)",
        b"* OK [PERMANENTFLAGS (" + FLAG_NAMES + b" foo \\*)] Flags permitted.",
        b"* 1 EXISTS",
        b"* 1 RECENT",
    ]
    assert lines[4].startswith(b"a4 OK [APPENDUID ")
    assert raw.cmd("FETCH 1 (FLAGS UID)") == [b"* 1 FETCH (FLAGS (\\Flagged \\Recent foo) UID 1)",
                                             b"a5 OK Fetch completed."]


# -- FETCH ------------------------------------------------------------------------------------


def test_fetch_items(server: MailServer, raw: Raw) -> None:
    when = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
    server.deliver("alice", PLAIN, flags=["\\Seen"], internal_date=when)
    size = len(crlf(PLAIN))
    selected(raw)
    envelope = (b'ENVELOPE ("Mon, 4 Mar 2024 09:30:00 +0000" "Hello there" '
                b'(("Alice" NIL "alice" "example.org")) (("Alice" NIL "alice" "example.org")) '
                b'(("Alice" NIL "alice" "example.org")) '
                b'((NIL NIL "bob" "example.org")("Carol C" NIL "carol" "example.org")) '
                b'((NIL NIL "dave" "example.org")) NIL NIL "<m1@example.org>")')
    date = b'INTERNALDATE "04-Mar-2024 09:00:00 +0000"'
    flags = b"FLAGS (\\Seen \\Recent)"
    assert raw.cmd("FETCH 1 (UID RFC822.SIZE FLAGS INTERNALDATE)") == [
        b"* 1 FETCH (UID 1 RFC822.SIZE %d %s %s)" % (size, flags, date),
        b"a4 OK Fetch completed."]
    assert raw.cmd("FETCH 1 FAST")[0] == b"* 1 FETCH (%s %s RFC822.SIZE %d)" % (flags, date, size)
    assert raw.cmd("FETCH 1 ALL")[0] == (
        b"* 1 FETCH (%s %s RFC822.SIZE %d %s)" % (flags, date, size, envelope))
    structure = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2'
    assert raw.cmd("FETCH 1 FULL")[0] == (
        b"* 1 FETCH (%s %s RFC822.SIZE %d %s BODY %s))" % (flags, date, size, envelope,
                                                          structure))
    assert raw.cmd("FETCH 1 BODYSTRUCTURE")[0] == (
        b"* 1 FETCH (BODYSTRUCTURE %s NIL NIL NIL NIL))" % structure)
    header, _, text = crlf(PLAIN).partition(b"\r\n\r\n")
    header += b"\r\n\r\n"
    assert raw.cmd("FETCH 1 (RFC822.HEADER RFC822.TEXT)")[0] == (
        b"* 1 FETCH (RFC822.HEADER {%d}\r\n%s RFC822.TEXT {%d}\r\n%s)" % (
            len(header), header, len(text), text))
    assert raw.cmd("FETCH 1 RFC822")[0] == b"* 1 FETCH (RFC822 {%d}\r\n%s)" % (
        size, crlf(PLAIN))
    assert raw.cmd("FETCH 1 (BODY[HEADER.FIELDS (Subject From)] BODY[TEXT]<0.5>)")[0] == (
        b"* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT FROM)] {57}\r\n"
        b"From: Alice <alice@example.org>\r\nSubject: Hello there\r\n\r\n"
        b" BODY[TEXT]<0> {5}\r\nline )")
    assert raw.cmd("FETCH 1 (BODY[HEADER.FIELDS.NOT (Subject From To Cc)])")[0] == (
        b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (SUBJECT FROM TO CC)] {70}\r\n"
        b"Date: Mon, 4 Mar 2024 09:30:00 +0000\r\nMessage-ID: <m1@example.org>\r\n\r\n)")
    assert raw.cmd("FETCH 1 (BODY[]<5.10> BODY.PEEK[]<500.10> BODY[HEADER]<0.4>)")[0] == (
        b"* 1 FETCH (BODY[]<5> {10}\r\n Alice <al BODY[]<500> {0}\r\n BODY[HEADER]<0> {4}\r\n"
        b"From)")
    assert raw.cmd("FETCH 1 (BODY[1] BODY[2] BODY[HEADER.FIELDS (X-NOPE)])")[0] == (
        b"* 1 FETCH (BODY[1] {%d}\r\n%s BODY[2] {0}\r\n BODY[HEADER.FIELDS (X-NOPE)] {2}\r\n"
        b"\r\n)" % (len(text), text))


def test_fetch_order_is_dovecots(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    selected(raw)
    # UID, FLAGS, INTERNALDATE and RFC822.SIZE first, in the order asked for; then the rest;
    # FLAGS joins the first group when a body fetch sets \Seen
    assert raw.cmd("FETCH 1 (BODY[TEXT] ENVELOPE RFC822.SIZE UID)")[0].startswith(
        b"* 1 FETCH (RFC822.SIZE 219 UID 1 FLAGS (\\Seen \\Recent) BODY[TEXT] {20}\r\n")
    raw.cmd("STORE 1 -FLAGS.SILENT (\\Seen)")
    assert raw.cmd("UID FETCH 1 (BODY.PEEK[TEXT] FLAGS UID)")[0].startswith(
        b"* 1 FETCH (UID 1 FLAGS (\\Recent) BODY[TEXT] {20}")
    assert raw.cmd("FETCH 1 (FLAGS FLAGS UID)")[0] == b"* 1 FETCH (FLAGS (\\Recent) UID 1)"


def test_fetch_sets_seen_except_peek_and_examine(imap: ModuleType, server: MailServer) -> None:
    for _ in range(4):
        server.deliver("alice", PLAIN)
    client = login(imap, server)
    client.select()
    client.fetch("1", "(BODY.PEEK[] RFC822.HEADER)")
    client.fetch("2", "(BODY[TEXT])")
    client.fetch("3", "(RFC822)")
    client.fetch("4", "(RFC822.TEXT)")
    assert [m.flags for m in server.messages("alice")] == [
        frozenset(), {"\\Seen"}, {"\\Seen"}, {"\\Seen"}]
    client.store("1:4", "-FLAGS", "(\\Seen)")
    client.select("INBOX", readonly=True)
    client.fetch("1:4", "(BODY[])")
    assert all(not m.flags for m in server.messages("alice"))
    logout(client)


def test_fetch_with_clients(imap: ModuleType, server: MailServer) -> None:
    for message in sample_messages():
        server.deliver("alice", message)
    client = login(imap, server)
    client.select()
    typ, data = client.fetch("1:2", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    assert data[0] == (b"1 (UID 1 BODY[HEADER.FIELDS (SUBJECT)] {32}",
                       b"Subject: Welcome to mailwire\r\n\r\n")
    assert data[1] == b")"
    typ, data = client.uid("FETCH", "2", "(RFC822)")
    parsed = message_from_bytes(data[0][1], policy=policy.default)
    assert parsed["subject"] == "Quarterly report (with attachment)"
    assert data[0][0] == b"2 (UID 2 FLAGS (\\Seen \\Recent) RFC822 {%d}" % len(data[0][1])
    logout(client)


def test_bodystructure_and_sections_of_multipart(server: MailServer, raw: Raw) -> None:
    for message in sample_messages():
        server.deliver("alice", message)
    selected(raw)
    structure = raw.cmd("FETCH 2 BODYSTRUCTURE")[0]
    assert structure == (
        b'* 2 FETCH (BODYSTRUCTURE ((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 34 3 '
        b'NIL NIL NIL NIL)("text" "html" ("charset" "utf-8") NIL NIL "7bit" 77 1 NIL NIL NIL '
        b'NIL) "alternative" ("boundary" "mailwire-sample-2.1") NIL NIL NIL)("text" "csv" '
        b'("charset" "us-ascii") NIL NIL "base64" 62 1 NIL ("attachment" ("filename" '
        b'"report.csv")) NIL NIL) "mixed" ("boundary" "mailwire-sample-2.0") NIL NIL NIL))')
    assert raw.cmd("FETCH 2 BODY")[0] == (
        b'* 2 FETCH (BODY ((("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 34 3)("text" '
        b'"html" ("charset" "utf-8") NIL NIL "7bit" 77 1) "alternative")("text" "csv" '
        b'("charset" "us-ascii") NIL NIL "base64" 62 1) "mixed"))')
    sections = raw.cmd("FETCH 2 (BODY.PEEK[1.1] BODY.PEEK[1.MIME] BODY.PEEK[2.HEADER] "
                       "BODY.PEEK[3] BODY.PEEK[1.TEXT])")[0]
    assert sections == (
        b"* 2 FETCH (BODY[1.1] {34}\r\nThe figures are attached.\r\n\r\nBob\r\n "
        b'BODY[1.MIME] {71}\r\nContent-Type: multipart/alternative; boundary="mailwire-sample-'
        b'2.1"\r\n\r\n BODY[2.HEADER] {0}\r\n BODY[3] {0}\r\n BODY[1.TEXT] {0}\r\n)')
    assert raw.cmd("FETCH 6 BODYSTRUCTURE")[0].endswith(
        b'("image" "png" NIL NIL NIL "base64" 104 NIL ("attachment" ("filename" "terrace.png"))'
        b' NIL NIL) "mixed" ("boundary" "mailwire-sample-6.0") NIL NIL NIL))')
    # non-ASCII header values are literals
    assert raw.cmd("FETCH 3 ENVELOPE")[0].startswith(
        b'* 3 FETCH (ENVELOPE ("Thu, 07 Mar 2024 18:30:00 +0000" "=?utf-8?b?')


def test_message_rfc822_parts(server: MailServer, raw: Raw) -> None:
    inner = b"From: in@example.org\r\nSubject: inner\r\n\r\ninner body\r\n"
    outer = (b"From: out@example.org\r\nSubject: outer\r\nMIME-Version: 1.0\r\n"
             b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
             b"--b\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
             b"--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"--b--\r\n")
    server.deliver("alice", outer)
    selected(raw)
    assert raw.cmd("FETCH 1 BODYSTRUCTURE")[0] == (
        b'* 1 FETCH (BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 0 '
        b'NIL NIL NIL NIL)("message" "rfc822" NIL NIL NIL "7bit" %d (NIL "inner" '
        b'((NIL NIL "in" "example.org")) ((NIL NIL "in" "example.org")) ((NIL NIL "in" '
        b'"example.org")) NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL '
        b'"7bit" 10 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL) "mixed" ("boundary" "b") NIL NIL '
        b"NIL))" % (len(inner) - 2))  # the CRLF before a boundary belongs to the boundary
    assert raw.cmd("FETCH 1 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.TEXT] "
                   "BODY.PEEK[2.1])")[0] == (
        b"* 1 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: inner\r\n\r\n "
        b"BODY[2.TEXT] {10}\r\ninner body BODY[2.1] {10}\r\ninner body)")


def test_envelope_addresses(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", (
        b'From: "Quote \\"me\\"" <q@x.org>, Group: a@b.c, d@e.f;, undisclosed-recipients:;\r\n'
        b'To: <bare@x.org>, "Na, me" <n@x.org>, legacy@x.org (Legacy Name), nodomain\r\n'
        b"Sender: s@x.org\r\nReply-To: r@x.org\r\n"
        b'Subject: has "quotes" and \\ backslash\r\nIn-Reply-To: <prev@x>\r\n'
        b"Bcc: hidden@x.org\r\n\r\nbody\r\n"))
    selected(raw)
    assert raw.cmd("FETCH 1 ENVELOPE")[0] == (
        b'* 1 FETCH (ENVELOPE (NIL {28}\r\nhas "quotes" and \\ backslash (({10}\r\nQuote "me" '
        b'NIL "q" "x.org")(NIL NIL "Group" NIL)(NIL NIL "a" "b.c")(NIL NIL "d" "e.f")'
        b'(NIL NIL NIL NIL)(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) '
        b'((NIL NIL "s" "x.org")) ((NIL NIL "r" "x.org")) ((NIL NIL "bare" "x.org")'
        b'("Na, me" NIL "n" "x.org")("Legacy Name" NIL "legacy" "x.org")'
        b'(NIL NIL "nodomain" "MISSING_DOMAIN")) NIL ((NIL NIL "hidden" "x.org")) '
        b'"<prev@x>" NIL))')


def test_fetch_errors(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    selected(raw)
    bad = b"BAD Error in IMAP command FETCH: "
    assert raw.cmd("FETCH 2 FLAGS") == [b"a4 " + bad + b"Invalid messageset."]
    assert raw.cmd("FETCH 1:2 FLAGS") == [b"a5 " + bad + b"Invalid messageset."]
    assert raw.cmd("FETCH 0 FLAGS") == [b"a6 " + bad + b"Invalid messageset."]
    assert raw.cmd("FETCH x FLAGS") == [b"a7 " + bad + b"Invalid messageset."]
    assert raw.cmd("FETCH 1 FOO") == [b"a8 " + bad + b"Unknown parameter FOO."]
    assert raw.cmd("FETCH 1 ()") == [b"a9 " + bad + b"FETCH list is empty."]
    assert raw.cmd("FETCH 1 (UID FLAGS") == [b"a10 " + bad + b"Missing ')'."]
    assert raw.cmd("FETCH 1") == [b"a11 " + bad + b"Invalid arguments."]
    assert raw.cmd("FETCH 1 BODY[MIME]") == [b"a12 " + bad + b"Invalid BODY[..] section."]
    assert raw.cmd("FETCH 1 BODY[HEADER.FIELDS X]") == [
        b"a13 " + bad + b"Invalid BODY[..] parameter: Missing '('."]
    assert raw.cmd("FETCH 1 BODY[TEXT") == [b"a14 " + bad + b"Missing ']'."]
    assert raw.cmd("FETCH 1 BODY[]<0.0>") == [b"a15 " + bad + b"Invalid BODY[..] partial."]
    # UID sets may name UIDs that do not exist
    assert raw.cmd("UID FETCH 99 FLAGS") == [b"a16 OK Fetch completed."]
    assert raw.cmd("UID FETCH 5:* UID") == [b"* 1 FETCH (UID 1)", b"a17 OK Fetch completed."]


def test_empty_mailbox_star(server: MailServer, raw: Raw) -> None:
    selected(raw)
    assert raw.cmd("FETCH 1:* FLAGS") == [
        b"a4 BAD Error in IMAP command FETCH: Invalid messageset."]
    assert raw.cmd("UID FETCH 1:* FLAGS") == [b"a5 OK Fetch completed."]
    assert raw.cmd("SEARCH ALL") == [b"* SEARCH", b"a6 OK Search completed."]
    assert raw.cmd("UID COPY 1:* INBOX") == [b"a7 OK No messages found."]


def test_rfc822_size_counts_crlf(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", b"Subject: lf\n\none\ntwo\n")
    client = login(imap, server)
    client.select()
    assert client.fetch("1", "(RFC822.SIZE)") == ("OK", [b"1 (RFC822.SIZE 25)"])
    _, data = client.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == b"Subject: lf\r\n\r\none\r\ntwo\r\n"
    logout(client)


# -- STORE, SEARCH, COPY, MOVE, EXPUNGE -------------------------------------------------------


def test_store(imap: ModuleType, server: MailServer) -> None:
    for _ in range(3):
        server.deliver("alice", PLAIN)
    client = login(imap, server)
    client.select()
    assert client.store("1", "+FLAGS", "(\\Seen)") == ("OK", [b"1 (FLAGS (\\Seen \\Recent))"])
    assert client.store("1", "+FLAGS", "(\\Seen)") == ("OK", [None])  # nothing changed
    assert client.store("2", "+FLAGS.SILENT", "(\\Flagged \\Seen)") == ("OK", [None])
    assert client.store("3", "FLAGS", "(\\Answered $Label)") == (
        "OK", [b"3 (FLAGS (\\Answered \\Recent $Label))"])
    assert client.store("3", "-FLAGS", "($Label)") == ("OK", [b"3 (FLAGS (\\Answered \\Recent))"])
    assert client.uid("STORE", "2:3", "+FLAGS", "(\\Draft)") == ("OK", [
        b"2 (UID 2 FLAGS (\\Flagged \\Seen \\Draft \\Recent))",
        b"3 (UID 3 FLAGS (\\Answered \\Draft \\Recent))"])
    assert [m.flags for m in server.messages("alice")] == [
        {"\\Seen"}, {"\\Flagged", "\\Seen", "\\Draft"}, {"\\Answered", "\\Draft"}]
    with pytest.raises(imap.IMAP4.error, match="Invalid system flag"):
        client.store("1", "+FLAGS", "(\\Recent)")
    with pytest.raises(imap.IMAP4.error, match="Invalid arguments"):
        client.store("1", "XFLAGS", "(\\Seen)")
    client.select("INBOX", readonly=True)
    assert client.store("1", "+FLAGS", "(\\Deleted)") == ("OK", [None])
    assert "\\Deleted" not in server.messages("alice")[0].flags
    logout(client)


def test_store_announces_new_keywords(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    selected(raw)
    assert raw.cmd("STORE 1 +FLAGS (kw1 \\Answered)") == [
        b"* FLAGS (" + FLAG_NAMES + b" kw1)",
        b"* OK [PERMANENTFLAGS (" + FLAG_NAMES + b" kw1 \\*)] Flags permitted.",
        b"* 1 FETCH (FLAGS (\\Answered \\Recent kw1))",
        b"a4 OK Store completed.",
    ]
    assert raw.cmd("STORE 1 FLAGS \\Seen \\Deleted") == [
        b"* 1 FETCH (FLAGS (\\Deleted \\Seen \\Recent))", b"a5 OK Store completed."]


SEARCHES = [
    ("ALL", b"1 2 3 4 5 6"),
    ("SEEN", b"2 3"),
    ("UNSEEN", b"1 4 5 6"),
    ("NOT SEEN", b"1 4 5 6"),
    ("FLAGGED", b"3"),
    ("UNFLAGGED", b"1 2 4 5 6"),
    ("ANSWERED", b"4"),
    ("UNANSWERED", b"1 2 3 5 6"),
    ("DELETED", b"5"),
    ("UNDELETED", b"1 2 3 4 6"),
    ("DRAFT", b"6"),
    ("UNDRAFT", b"1 2 3 4 5"),
    ("KEYWORD $Work", b"4"),
    ("UNKEYWORD $Work", b"1 2 3 5 6"),
    ("OR SEEN DRAFT", b"2 3 6"),
    ("(SEEN FLAGGED)", b"3"),
    ("SEEN FLAGGED", b"3"),
    ('SUBJECT "subject 3"', b"3"),
    ("FROM ALICE", b"1 3 4 5 6"),
    ("FROM carol", b"2"),
    ("TO bob", b"1 3 4 5 6"),
    ("CC dave", b"1"),
    ("BCC nobody", b""),
    ("BODY xxxxx", b"1 2 3 4 5 6"),
    ("TEXT " + "x" * 51, b"6"),
    ("TEXT message-id", b"1 2 3 4 5 6"),
    ("HEADER Message-ID m3", b"3"),
    ('HEADER X-Extra ""', b"2"),
    ("SINCE 3-Mar-2024", b"3 4 5 6"),
    ("BEFORE 3-Mar-2024", b"1 2"),
    ("ON 3-Mar-2024", b"3"),
    ("SENTSINCE 4-Mar-2024", b"4 5 6"),
    ("SENTBEFORE 2-Mar-2024", b"1"),
    ("SENTON 2-Mar-2024", b"2"),
    ("LARGER 178", b"2 5 6"),
    ("SMALLER 178", b"1 3"),
    ("UID 2:3", b"2 3"),
    ("UID 5:*", b"5 6"),
    ("2:4", b"2 3 4"),
    ("1,3 UNSEEN", b"1"),
    ("*", b"6"),
    ("99", b""),
    ("NEW", b"1 4 5 6"),
    ("OLD", b""),
    ("RECENT", b"1 2 3 4 5 6"),
    ("CHARSET UTF-8 SUBJECT subject", b"1 2 3 4 5 6"),
    ("CHARSET US-ASCII SUBJECT SUBJECT", b"1 2 3 4 5 6"),
    ("NOT OR SEEN DELETED", b"1 4 6"),
]


@pytest.fixture
def search_mailbox(server: MailServer) -> MailServer:
    flags: list[list[str]] = [[], ["\\Seen"], ["\\Seen", "\\Flagged"], ["\\Answered", "$Work"],
                              ["\\Deleted"], ["\\Draft"]]
    for index in range(1, 7):
        extra = "Cc: dave@example.org\n" if index == 1 else ""
        extra += "X-Extra: yes\n" if index == 2 else ""
        sender = "Carol <carol@example.org>" if index == 2 else "alice@example.org"
        to = "eve@example.org" if index == 2 else "bob@example.org"
        message = (f"From: {sender}\nTo: {to}\n{extra}Subject: Subject {index}\n"
                   f"Date: Mon, {index} Mar 2024 09:30:00 +0000\n"
                   f"Message-ID: <m{index}@example.org>\n\n{'x' * (index * 10)}\n")
        server.deliver("alice", message, flags=flags[index - 1],
                       internal_date=datetime(2024, 3, index, 10, tzinfo=timezone.utc))
    return server


@pytest.mark.parametrize(("criteria", "expected"), SEARCHES)
def test_search(search_mailbox: MailServer, criteria: str, expected: bytes) -> None:
    raw = Raw(search_mailbox.host, search_mailbox.imap_port)
    try:
        selected(raw)
        assert raw.cmd("SEARCH " + criteria) == [
            b"* SEARCH" + (b" " + expected if expected else b""), b"a4 OK Search completed."]
    finally:
        raw.close()


def test_search_with_clients(imap: ModuleType, search_mailbox: MailServer) -> None:
    client = login(imap, search_mailbox)
    client.select()
    assert client.search(None, "ALL") == ("OK", [b"1 2 3 4 5 6"])
    assert client.search(None, "SEEN", "FLAGGED") == ("OK", [b"3"])
    assert client.search("UTF-8", "SUBJECT", '"Subject 2"') == ("OK", [b"2"])
    assert client.uid("SEARCH", "UNSEEN") == ("OK", [b"1 4 5 6"])
    with pytest.raises(imap.IMAP4.error, match="Unknown argument BOGUS"):
        client.search(None, "BOGUS")
    logout(client)


def test_search_non_ascii(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", "From: \"Jürgen M\" <j@example.de>\nSubject: Grüße\n"
                   "Content-Type: text/plain; charset=utf-8\n"
                   "Content-Transfer-Encoding: 8bit\n\nKäse und Café\n".encode())
    server.deliver("alice", b"From: j@example.de\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\n"
                            b"Content-Type: text/plain; charset=utf-8\n"
                            b"Content-Transfer-Encoding: quoted-printable\n\nK=C3=A4se\n")
    selected(raw)
    assert raw.cmd(b"SEARCH CHARSET UTF-8 SUBJECT {4+}\r\nGR\xc3\x9c")[0] == b"* SEARCH 1 2"
    assert raw.cmd(b"SEARCH BODY \"k\xc3\xa4se\"")[0] == b"* SEARCH 1 2"
    assert raw.cmd(b'SEARCH TEXT "caf\xc3\xa9"')[0] == b"* SEARCH 1"
    assert raw.cmd(b"SEARCH FROM \"j\xfcrgen\"") == [
        b"a7 BAD Error in IMAP command SEARCH: Invalid search key."]


def test_search_errors(server: MailServer, raw: Raw) -> None:
    selected(raw)
    bad = b"BAD Error in IMAP command SEARCH: "
    assert raw.cmd("SEARCH CHARSET FOO ALL") == [b"a4 NO [BADCHARSET] Unknown charset."]
    assert raw.cmd("SEARCH BOGUS") == [b"a5 " + bad + b"Unknown argument BOGUS."]
    assert raw.cmd("SEARCH") == [b"a6 " + bad + b"Missing search parameters."]
    assert raw.cmd("SEARCH OR SEEN") == [b"a7 " + bad + b"Missing argument."]
    assert raw.cmd("SEARCH SINCE bogus") == [b"a8 " + bad + b"Invalid search date parameter."]
    assert raw.cmd("SEARCH LARGER x") == [b"a9 " + bad + b"Invalid search size parameter."]
    assert raw.cmd("SEARCH UID x") == [b"a10 " + bad + b"Invalid UID messageset."]
    assert raw.cmd("SEARCH ()") == [b"a11 " + bad + b"No search parameters inside list."]


def test_copy_and_move(imap: ModuleType, server: MailServer) -> None:
    for _ in range(4):
        server.deliver("alice", PLAIN)
    server.store.create_folder("alice", "Work")
    work = server.store.snapshot("alice", "Work").uidvalidity
    client = login(imap, server)
    client.select()
    assert client.copy("1:2", "Work") == ("OK", [b"[COPYUID %d 1:2 1:2] Copy completed." % work])
    client.response("COPYUID")
    assert client.uid("COPY", "4,9", "Work")[0] == "OK"
    assert client.response("COPYUID") == ("COPYUID", [b"%d 4 3" % work])
    assert client.copy("1", "Nope") == ("NO", [b"[TRYCREATE] Mailbox doesn't exist: Nope."])
    if hasattr(client, "move"):
        typ, _ = client.move("1", "Work")
    else:
        typ, _ = client.uid("MOVE", "1", "Work")
    assert typ == "OK"
    assert client.untagged_responses.get("EXPUNGE", [b"1"])[-1] == b"1"
    assert [m.uid for m in server.messages("alice")] == [2, 3, 4]
    assert [m.uid for m in server.messages("alice", "Work")] == [1, 2, 3, 4]
    assert client.uid("MOVE", "99", "Work") == ("OK", [None])
    logout(client)


def test_move_on_the_wire(server: MailServer, raw: Raw) -> None:
    for _ in range(3):
        server.deliver("alice", PLAIN)
    server.store.create_folder("alice", "Work")
    work = server.store.snapshot("alice", "Work").uidvalidity
    selected(raw)
    assert raw.cmd("MOVE 2:3 Work") == [
        b"* OK [COPYUID %d 2:3 1:2] Moved UIDs." % work,
        b"* 3 EXPUNGE",
        b"* 2 EXPUNGE",
        b"* 1 RECENT",
        b"a4 OK Move completed.",
    ]
    assert raw.cmd("UID MOVE 7 Work") == [b"a5 OK No messages found."]
    assert raw.cmd("UID MOVE 1 INBOX") == [
        b"* OK [COPYUID %d 1 4] Moved UIDs." % server.store.snapshot("alice").uidvalidity,
        b"* 1 EXPUNGE", b"* 1 EXISTS", b"a6 OK Move completed."]
    raw.cmd("EXAMINE INBOX")
    assert raw.cmd("MOVE 1 Work") == [
        b"a8 NO [CANNOT] Can't move messages out of a read-only mailbox."]
    assert raw.cmd("COPY 1 Work")[-1].startswith(b"a9 OK [COPYUID ")


def test_expunge(imap: ModuleType, server: MailServer) -> None:
    for _ in range(5):
        server.deliver("alice", PLAIN)
    client = login(imap, server)
    client.select()
    client.store("2,4,5", "+FLAGS", "(\\Deleted)")
    assert client.expunge() == ("OK", [b"5", b"4", b"2"])  # descending, as Dovecot sends
    assert [m.uid for m in server.messages("alice")] == [1, 3]
    client.store("1:2", "+FLAGS", "(\\Deleted)")
    client.response("EXPUNGE")
    assert client.uid("EXPUNGE", "3")[0] == "OK"
    assert client.response("EXPUNGE") == ("EXPUNGE", [b"2"])
    assert [m.uid for m in server.messages("alice")] == [1]
    assert client.close() == ("OK", [b"Close completed."])  # CLOSE expunges silently
    assert server.messages("alice") == ()
    logout(client)


def test_expunge_on_the_wire(server: MailServer, raw: Raw) -> None:
    for _ in range(3):
        server.deliver("alice", PLAIN, flags=["\\Deleted"])
    selected(raw)
    assert raw.cmd("EXPUNGE") == [b"* 3 EXPUNGE", b"* 2 EXPUNGE", b"* 1 EXPUNGE",
                                  b"* 0 RECENT", b"a4 OK Expunge completed."]


def test_unselect_and_readonly_keep_deleted(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN, flags=["\\Deleted"])
    client = login(imap, server)
    client.select("INBOX", readonly=True)
    assert client.expunge() == ("OK", [None])
    client.close()
    client.select()
    client.unselect()
    assert len(server.messages("alice")) == 1
    logout(client)


# -- other sessions' changes and IDLE ---------------------------------------------------------


def test_changes_from_other_sessions(server: MailServer) -> None:
    for _ in range(4):
        server.deliver("alice", PLAIN)
    a, b = Raw(server.host, server.imap_port), Raw(server.host, server.imap_port)
    try:
        selected(a)
        selected(b)
        a.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
        a.cmd("EXPUNGE")
        a.cmd("STORE 3 +FLAGS (\\Flagged)")
        server.deliver("alice", PLAIN)
        assert a.cmd("NOOP") == [b"* 4 EXISTS", b"* 4 RECENT", b"a7 OK NOOP completed."]
        # flag changes first (old numbering), then expunges, then new messages
        assert b.cmd("NOOP") == [b"* 4 FETCH (FLAGS (\\Flagged))", b"* 2 EXPUNGE",
                                 b"* 4 EXISTS", b"a4 OK NOOP completed."]
        a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        a.cmd("EXPUNGE")
        # no EXPUNGE after FETCH, STORE or SEARCH: sequence numbers must not move under them
        assert b.cmd("FETCH 1:* FLAGS") == [
            b"* 1 FETCH (FLAGS (\\Deleted))", b"* 2 FETCH (FLAGS ())",
            b"* 3 FETCH (FLAGS (\\Flagged))", b"* 4 FETCH (FLAGS ())",
            b"* 1 FETCH (FLAGS (\\Deleted))", b"a5 OK Fetch completed."]
        # until its expunge is reported, a message is still found (as it was), as in Dovecot
        assert b.cmd("SEARCH ALL") == [b"* SEARCH 1 2 3 4", b"a6 OK Search completed."]
        assert b.cmd("UID SEARCH ALL") == [b"* SEARCH 1 3 4 5", b"* 1 EXPUNGE",
                                           b"a7 OK Search completed."]
        a.cmd("STORE 1 +FLAGS (\\Answered)")
        # a FETCH that shows the new flags is followed by the update all the same (Dovecot)
        assert b.cmd("FETCH 1 FLAGS") == [b"* 1 FETCH (FLAGS (\\Answered))",
                                          b"* 1 FETCH (FLAGS (\\Answered))",
                                          b"a8 OK Fetch completed."]
    finally:
        a.close()
        b.close()


def test_deleted_selected_mailbox_ends_the_session(server: MailServer) -> None:
    server.store.create_folder("alice", "Gone")
    a, b = Raw(server.host, server.imap_port), Raw(server.host, server.imap_port)
    try:
        selected(a, "Gone")
        raw_login(b)
        assert b.cmd("DELETE Gone") == [b"a3 OK Delete completed."]
        assert a.cmd("NOOP") == [b"* BYE IMAP session state is inconsistent, please relogin.",
                                 b""]
        # renaming one's own selected mailbox: OK, then the next command ends the session
        server.store.create_folder("alice", "Mine")
        b.cmd("SELECT Mine")
        assert b.cmd("RENAME Mine Yours") == [b"a5 OK Rename completed."]
        assert b.cmd("NOOP")[0] == b"* BYE IMAP session state is inconsistent, please relogin."
    finally:
        a.close()
        b.close()


def test_idle_on_the_wire(server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    watcher, other = Raw(server.host, server.imap_port), Raw(server.host, server.imap_port)
    try:
        selected(watcher)
        selected(other)
        watcher.send(b"i1 IDLE\r\n")
        assert watcher.response() == b"+ idling"
        server.deliver("alice", PLAIN)
        assert watcher.response() == b"* 2 EXISTS"
        assert watcher.response() == b"* 2 RECENT"  # the watcher took the new message
        other.cmd("STORE 1 +FLAGS (\\Flagged)")
        assert watcher.response() == b"* 1 FETCH (FLAGS (\\Flagged \\Recent))"
        other.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert watcher.response() == b"* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))"
        other.cmd("EXPUNGE")
        assert watcher.response() == b"* 1 EXPUNGE"
        assert watcher.response() == b"* 1 RECENT"
        watcher.send(b"DONE\r\n")
        assert watcher.response() == b"i1 OK Idle completed."
        watcher.send(b"i2 IDLE\r\n")
        assert watcher.response() == b"+ idling"
        watcher.send(b"NOTDONE\r\n")
        assert watcher.response() == b"i2 BAD Expected DONE."
        assert watcher.cmd("NOOP") == [b"a4 OK NOOP completed."]
        # IDLE is allowed without a selected mailbox, too
        assert other.cmd("UNSELECT") == [b"a7 OK Unselect completed."]
        other.send(b"i3 IDLE\r\n")
        assert other.response() == b"+ idling"
        other.send(b"done\r\n")
        assert other.response() == b"i3 OK Idle completed."
    finally:
        watcher.close()
        other.close()


def test_idle_with_clients(imap: ModuleType, server: MailServer) -> None:
    client = login(imap, server)
    client.select()
    client.send(b"I1 IDLE\r\n")
    assert client.readline() == b"+ idling\r\n"
    writer = login(imap, server)
    writer.append("INBOX", None, None, PLAIN)
    assert client.readline() == b"* 1 EXISTS\r\n"
    assert client.readline() == b"* 1 RECENT\r\n"
    client.send(b"DONE\r\n")
    assert client.readline() == b"I1 OK Idle completed.\r\n"
    assert client.fetch("1", "(UID)") == ("OK", [b"1 (UID 1)"])
    logout(writer)
    logout(client)


def test_idle_with_mailwire_idler(server: MailServer) -> None:
    mimaplib = pytest.importorskip("mailwire.imaplib")
    client = login(mimaplib, server)
    client.select()
    started = time.monotonic()
    with client.idle(duration=TIMEOUT) as idler:
        server.deliver("alice", PLAIN)
        responses = []
        for response in idler:
            responses.append(response)
            if response[0] == "RECENT":
                break
    assert responses == [("EXISTS", [b"1"]), ("RECENT", [b"1"])]
    assert time.monotonic() - started < 2.0
    logout(client)


def test_concurrent_sessions(imap: ModuleType, server: MailServer) -> None:
    for user in USERS:
        for index in range(5):
            server.deliver(user, f"Subject: {user} {index}\n\nbody {index}\n")
    errors: list[BaseException] = []
    results: dict[int, list[bytes]] = {}

    def session(worker: int) -> None:
        try:
            user = "alice" if worker % 2 else "bob"
            if worker % 3 == 0:
                client = imap.IMAP4_SSL(server.host, server.imaps_port,
                                        ssl_context=test_ssl_context(), timeout=TIMEOUT)
            else:
                client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
            client.login(user, USERS[user])
            client.select("INBOX", readonly=True)
            _, data = client.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            client.append("INBOX", None, None, f"Subject: from {worker}\n\nx\n".encode())
            client.logout()
            results[worker] = [item[1].strip() for item in data if isinstance(item, tuple)]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not errors
    assert len(results) == 12
    for worker, subjects in results.items():
        user = "alice" if worker % 2 else "bob"
        assert subjects[:5] == [f"Subject: {user} {i}".encode() for i in range(5)]
    assert len(server.messages("alice")) == len(server.messages("bob")) == 11


def test_imapclient_and_imap_tools(server: MailServer) -> None:
    imapclient = pytest.importorskip("imapclient")
    imap_tools = pytest.importorskip("imap_tools")
    for message in sample_messages():
        server.deliver("alice", message)
    with imapclient.IMAPClient(server.host, port=server.imaps_port,
                               ssl_context=test_ssl_context(), timeout=TIMEOUT) as client:
        client.login("alice", "secret")
        assert client.has_capability("MOVE") and client.has_capability("UIDPLUS")
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 6 and info[b"UIDNEXT"] == 7
        fetched = client.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "FLAGS"])
        assert fetched[1][b"ENVELOPE"].subject == b"Welcome to mailwire"
        assert fetched[2][b"BODYSTRUCTURE"].is_multipart
        client.create_folder("Archive")
        client.move([1], "Archive")
        client.idle()
        server.deliver("alice", PLAIN)
        assert (6, b"EXISTS") in client.idle_check(timeout=TIMEOUT)
        client.idle_done()
        client.logout()
    mailbox = imap_tools.MailBox(server.host, port=server.imaps_port,
                                 ssl_context=test_ssl_context(), timeout=TIMEOUT)
    with mailbox.login("alice", "secret") as box:
        subjects = [message.subject for message in box.fetch(mark_seen=False)]
        assert subjects[1] == "Grüße aus Köln: Café & Kuchen ☕"
        assert len(subjects) == 6  # one moved away, one delivered


# -- literals and limits ----------------------------------------------------------------------


def test_literal_limits() -> None:
    store = Store(USERS)
    with IMAPServer(store, max_literal=100) as server:
        raw = Raw(server.host, server.port)
        try:
            raw_login(raw)
            assert raw.cmd(b"APPEND INBOX {101}\r\n") == [b"a3 NO [TOOBIG] Literal too large."]
            assert raw.cmd(b"APPEND INBOX {100}\r\n" + b"x" * 100)[-1].startswith(b"a4 OK")
            raw.send(b"a5 APPEND INBOX {101+}\r\n")
            assert raw.response() == b"* BYE [TOOBIG] Literal too large."
            assert raw.response() == b""
        finally:
            raw.close()


def test_line_length_limit() -> None:
    with IMAPServer(Store(USERS), max_line=100) as server:
        raw = Raw(server.host, server.port)
        try:
            assert raw.cmd('ID ("k" "' + "x" * 84 + '")') == [  # 100 octets with CRLF
                b'* ID ("name" "mailwire")', b"a1 OK ID completed."]
            raw.send(b'a2 ID ("k" "' + b"x" * 85 + b'")\r\n')
            assert raw.response() == b"* BYE Input line too long, aborting."
            assert raw.response() == b""
        finally:
            raw.close()


def test_idle_timeout() -> None:
    with IMAPServer(Store(USERS), idle_timeout=0.2) as server:
        raw = Raw(server.host, server.port)
        try:
            assert raw.response() == b"* BYE Disconnected for inactivity."
            assert raw.response() == b""
        finally:
            raw.close()
        raw = Raw(server.host, server.port)
        try:
            selected(raw)
            raw.send(b"i1 IDLE\r\n")
            assert raw.response() == b"+ idling"
            assert raw.response() == b"* BYE Disconnected for inactivity."
        finally:
            raw.close()


def test_deeply_nested_lists_are_refused(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    assert raw.cmd("ID " + "(" * 100) == [
        b"a3 BAD Error in IMAP command ID: Too deeply nested lists."]
    assert raw.cmd("NOOP")[-1] == b"a4 OK NOOP completed."


def test_pipelining(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    raw.send(b"p1 LOGIN alice secret\r\np2 SELECT INBOX\r\np3 FETCH 1 (UID)\r\np4 LOGOUT\r\n")
    lines = []
    while True:
        line = raw.response()
        if not line:
            break
        lines.append(line)
    assert [line.split(b" ")[0] for line in lines if not line.startswith(b"*")] == [
        b"p1", b"p2", b"p3", b"p4"]
    assert b"* 1 FETCH (UID 1)" in lines


# -- TLS --------------------------------------------------------------------------------------


def test_starttls(imap: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    assert client.starttls(ssl_context=test_ssl_context())[0] == "OK"
    assert isinstance(client.sock, ssl.SSLSocket)
    client.login("alice", "secret")
    assert client.select() == ("OK", [b"1"])
    logout(client)


def test_imaps(imap: ModuleType, server: MailServer) -> None:
    client = imap.IMAP4_SSL(server.host, server.imaps_port, ssl_context=test_ssl_context(),
                            timeout=TIMEOUT)
    assert b"STARTTLS" not in client.welcome
    client.login("alice", "secret")
    logout(client)


def test_starttls_on_the_wire(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("STARTTLS") == [b"a1 OK Begin TLS negotiation now."]
    raw.start_tls(test_ssl_context())
    assert raw.cmd("STARTTLS") == [b"a2 BAD TLS is already active."]
    assert raw.cmd("CAPABILITY")[0] == (
        b"* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN")


def test_starttls_discards_pipelined_plaintext(server: MailServer, raw: Raw) -> None:
    raw.send(b"a1 STARTTLS\r\ninjected LOGIN alice secret\r\n")
    assert raw.response() == b"a1 OK Begin TLS negotiation now."
    raw.start_tls(test_ssl_context())
    assert raw.cmd("NOOP") == [b"a1 OK NOOP completed."]
    assert raw.cmd("SELECT INBOX")[-1] == b"a2 BAD Error in IMAP command received by server."


def test_require_tls() -> None:
    with MailServer(USERS, pop3=False, imap=True, require_tls=True) as server:
        raw = Raw(server.host, server.imap_port)
        try:
            assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE "
                                           b"LITERAL+ STARTTLS LOGINDISABLED]")
            refused = (b"NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure "
                       b"(SSL/TLS) connections.")
            assert raw.cmd("LOGIN alice secret") == [b"a1 " + refused]
            assert raw.cmd("AUTHENTICATE PLAIN " + plain("", "alice", "secret")) == [
                b"a2 " + refused]
            raw.cmd("STARTTLS")
            raw.start_tls(test_ssl_context())
            raw_login(raw)
        finally:
            raw.close()


def test_tls_disabled() -> None:
    with MailServer(USERS, pop3=False, imap=True, tls=False) as server:
        assert server.imaps is None
        with pytest.raises(RuntimeError, match="IMAPS is not enabled"):
            _ = server.imaps_port
        raw = Raw(server.host, server.imap_port)
        try:
            assert b"STARTTLS" not in raw.greeting
            assert raw.cmd("STARTTLS") == [b"a1 BAD TLS support isn't enabled."]
        finally:
            raw.close()


def test_custom_server_context(imap: ModuleType) -> None:
    from mailwire.testing import server_ssl_context

    context = server_ssl_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with MailServer(USERS, pop3=False, imap=True, tls_context=context) as server:
        client = imap.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        client.starttls(ssl_context=test_ssl_context())
        assert client.sock.version() == "TLSv1.3"
        logout(client)


def test_client_context_is_refused_as_server_context() -> None:
    with pytest.raises(ValueError, match="server-side"):
        IMAPServer(Store(), tls_context=test_ssl_context())
    with pytest.raises(ValueError, match="implicit_tls needs"):
        IMAPServer(Store(), implicit_tls=True)


# -- addresses and lifecycle ------------------------------------------------------------------


def test_ipv6_loopback(imap: ModuleType) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = MailServer(USERS, host="::1", pop3=False, imap=True)
        server.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on ::1: {exc}")
    try:
        assert server.host == "::1"
        client = imap.IMAP4("::1", server.imap_port, timeout=TIMEOUT)
        client.starttls(ssl_context=test_ssl_context())
        client.login("alice", "secret")
        logout(client)
    finally:
        server.stop()


def wait_for_threads(count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while len(mailwire_threads()) < count:
        assert time.monotonic() < deadline, mailwire_threads()
        time.sleep(0.01)


def test_stop_with_clients_connected_is_prompt() -> None:
    server = MailServer(USERS, pop3=False, imap=True)
    server.start()
    idle = Raw(server.host, server.imap_port)
    logged_in = Raw(server.host, server.imap_port)
    raw_login(logged_in)
    idling = Raw(server.host, server.imaps_port, test_ssl_context())
    selected(idling)
    idling.send(b"i1 IDLE\r\n")
    assert idling.response() == b"+ idling"
    handshaking = socket.create_connection((server.host, server.imaps_port), timeout=TIMEOUT)
    try:
        # Two listeners, four clients and the watcher that IDLE starts: counting one short
        # let stop() close the listener before it accepted the last client, which the kernel
        # then reset instead of the server closing it.
        wait_for_threads(2 + 4 + 1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert mailwire_threads() == []
        for client in (idle, logged_in):
            assert client.response() == b""
        try:
            assert idling.response() == b""
        except (ssl.SSLError, ConnectionError):
            pass  # the TLS connection was cut without a close_notify
        assert handshaking.recv(100) == b""
    finally:
        server.stop()
        for client in (idle, logged_in, idling):
            client.close()
        handshaking.close()


def test_stop_while_sending_a_large_fetch_to_a_stalled_client() -> None:
    server = MailServer(USERS, pop3=False, imap=True)
    server.start()
    server.deliver("alice", b"Subject: big\n\n" + (b"x" * 998 + b"\n") * 2000)
    client = Raw(server.host, server.imap_port)
    try:
        selected(client)
        for _ in range(3):
            client.send(b"f FETCH 1 BODY.PEEK[]\r\n")  # never read: the server blocks in send
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert mailwire_threads() == []
    finally:
        server.stop()
        client.close()


def test_mail_server_services() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with MailServer(USERS, imap=True, ports={"imap": port}) as server:
        assert server.imap_port == port
        assert re.fullmatch(r"<MailServer 127\.0\.0\.1 pop3=\d+, pop3s=\d+, imap=\d+, "
                            r"imaps=\d+>", repr(server))
        assert server.imap is not None and server.imap.running
    assert not server.imap.running
    with pytest.raises(ValueError, match="unknown services"):
        MailServer(USERS, ports={"smtp": 25})
    with pytest.raises(RuntimeError, match="IMAP is not enabled"):
        _ = MailServer(USERS).imap_port


def test_pop3_and_imap_share_the_store(imap: ModuleType) -> None:
    import poplib

    with MailServer(USERS, imap=True) as server:
        client = login(imap, server)
        client.append("INBOX", None, None, PLAIN)
        pop = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
        pop.user("alice")
        pop.pass_("secret")
        assert pop.stat() == (1, len(crlf(PLAIN)))
        pop.dele(1)
        pop.quit()
        client.select()
        assert client.response("EXISTS") == ("EXISTS", [b"0"])
        logout(client)


def test_maildir_backed_server(imap: ModuleType, tmp_path: Any) -> None:
    with MailServer(USERS, pop3=False, imap=True, maildir=tmp_path) as server:
        client = login(imap, server)
        client.create("Archive")
        client.append("Archive", "(\\Seen)", None, PLAIN)
        logout(client)
    with MailServer(USERS, pop3=False, imap=True, maildir=tmp_path) as server:
        client = login(imap, server)
        assert client.select("Archive") == ("OK", [b"1"])
        assert client.fetch("1", "(FLAGS RFC822.SIZE)") == (
            "OK", [b"1 (FLAGS (\\Seen \\Recent) RFC822.SIZE %d)" % len(crlf(PLAIN))])
        logout(client)


# -- sans-IO helpers --------------------------------------------------------------------------


def test_parse_command_with_literals() -> None:
    tag, name, args = parse.parse_command([
        b'a1 append INBOX (\\Seen) "04-Mar-2024 10:00:00 +0100" {5}', b"hello", b" (x y)"])
    assert (tag, name) == ("a1", "APPEND")
    assert args == ["INBOX", ["\\Seen"], b"04-Mar-2024 10:00:00 +0100", b"hello", ["x", "y"]]
    assert isinstance(args[3], parse.Literal) and isinstance(args[0], parse.Atom)
    _, _, args = parse.parse_command([b'a FETCH 1 (BODY.PEEK[HEADER.FIELDS (A "B")]<0.9> UID)'])
    assert args[1] == ['BODY.PEEK[HEADER.FIELDS (A "B")]<0.9>', "UID"]
    items = parse.parse_fetch_items(args[1])
    assert [i.response_name() for i in items] == ['BODY[HEADER.FIELDS (A "B")]<0>', "UID"]
    _, _, args = parse.parse_command([b'a LOGIN "a\\"b\\\\c" x'])
    assert args[0] == b'a"b\\c'
    with pytest.raises(parse.BadTagError):
        parse.parse_command([b"(bad NOOP"])
    with pytest.raises(ProtocolError) as failure:
        parse.parse_command([b"t NOOP {3}"])
    assert (failure.value.tag, failure.value.command) == ("t", "NOOP")


def test_sequence_sets_and_dates() -> None:
    ranges = parse.parse_sequence_set(parse.Atom("1,3:5,7:*"))
    assert [n for n in range(1, 10) if parse.in_sequence_set(ranges, n, 8)] == [1, 3, 4, 5, 7, 8]
    assert parse.in_sequence_set(parse.parse_sequence_set(parse.Atom("9:*")), 8, 8)
    assert parse.format_uid_set([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8"
    for bad in ("0", "1:", "a", "1,,2", ""):
        with pytest.raises(ProtocolError):
            parse.parse_sequence_set(parse.Atom(bad))
    assert parse.parse_internal_date(" 5-Mar-2024 01:02:03 -0500") == datetime(
        2024, 3, 5, 6, 2, 3, tzinfo=timezone.utc)
    assert parse.format_internal_date(datetime(2024, 3, 5, 1, 2, 3, tzinfo=timezone.utc)) == (
        b'"05-Mar-2024 01:02:03 +0000"')
    with pytest.raises(ProtocolError):
        parse.parse_internal_date("31-Feb-2024 00:00:00 +0000")


def test_string_output() -> None:
    assert parse.quoted_or_literal(b"plain") == b'"plain"'
    assert parse.quoted_or_literal(b'a"b') == b'{3}\r\na"b'
    assert parse.quoted_or_literal("é".encode()) == b"{2}\r\n\xc3\xa9"
    assert parse.nstring(None) == b"NIL"
    assert parse.mailbox_out(b"Work/Sub") == b"Work/Sub"
    assert parse.mailbox_out(b"a b") == b'"a b"'
    assert parse.mailbox_out(b"NIL") == b'"NIL"'


# -- robustness -------------------------------------------------------------------------------

_WORDS = [b"1", b"2:*", b"*", b"1,3", b"0", b"UID", b"FLAGS", b"+FLAGS.SILENT", b"\\Seen",
          b"\\Bogus", b"(", b")", b"()", b"(FLAGS UID)", b"BODY[]", b"BODY.PEEK[1.MIME]",
          b"BODY[HEADER.FIELDS (A)]<0.5>", b"BODY[", b"NIL", b'"quoted"', b'"a\\"b"', b'"',
          b"{3+}\r\nabc", b"{0+}\r\n", b"INBOX", b"Work", b"%", b"CHARSET", b"UTF-8", b"OR",
          b"NOT", b"SINCE", b"1-Jan-2024", b"HEADER", b"ALL", b"\xc3\xa9", b"\x00", b"{5}",
          b"9" * 5000, b"BODY[" + b"1" * 5000 + b"]", b"BODY[]<" + b"2" * 5000 + b".1>"]
_NAMES = [b"FETCH", b"UID FETCH", b"STORE", b"UID STORE", b"SEARCH", b"UID SEARCH", b"COPY",
          b"MOVE", b"UID MOVE", b"UID EXPUNGE", b"APPEND", b"LIST", b"LSUB", b"STATUS",
          b"CREATE", b"RENAME", b"SELECT", b"EXAMINE", b"ID", b"ENABLE", b"NOOP", b"CHECK",
          b"SUBSCRIBE", b"DELETE", b"CAPABILITY", b"EXPUNGE", b"XYZZY", b"UID"]


def test_parsers_raise_only_protocol_errors() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    strategies = hypothesis.strategies

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
    @hypothesis.given(strategies.lists(strategies.sampled_from(_WORDS) | strategies.binary(
        max_size=12), max_size=8), strategies.sampled_from(_NAMES))
    def check(words: list[bytes], name: bytes) -> None:
        parts = re.split(rb"\{\d+\+?\}\r\n", b"t " + name + b" " + b" ".join(words))
        line_parts: list[bytes] = []
        for index, part in enumerate(parts):
            if index:
                line_parts += [part[:3], part[3:]]
            else:
                line_parts.append(part)
        try:
            _, _, args = parse.parse_command(line_parts)
            for parser in (parse.parse_search, lambda a: parse.parse_fetch_items(a[-1]),
                           parse.parse_flags, lambda a: parse.parse_sequence_set(a[0])):
                try:
                    parser(args)
                except (ProtocolError, IndexError):
                    pass
        except ProtocolError:
            pass

    check()


def test_garbage_commands_get_answers(server: MailServer) -> None:
    import random

    for message in sample_messages()[:3]:
        server.deliver("alice", message)
    server.store.create_folder("alice", "Work")
    generator = random.Random(1234)
    raw = Raw(server.host, server.imap_port)
    try:
        selected(raw)
        for number in range(400):
            words = [generator.choice(_WORDS) for _ in range(generator.randrange(4))]
            command = generator.choice(_NAMES) + b" " + b" ".join(words)
            command = command.replace(b"{5}", b"{5+}\r\nhello")
            tag = f"g{number}"
            replies = raw.cmd(command.replace(b"\x00", b""), tag=tag)
            last = replies[-1]
            if last.startswith(b"* BYE") or not last:
                raw.close()
                raw = Raw(server.host, server.imap_port)
                selected(raw)
                continue
            assert last.split(b" ")[0] in (tag.encode(), b"*"), replies
        assert raw.cmd("NOOP")[-1].endswith(b"OK NOOP completed.")
    finally:
        raw.close()
