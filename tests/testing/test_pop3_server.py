"""The embedded POP3 server, driven by the stdlib's poplib (and mailwire's, once it imports) and
by raw sockets for what a well-behaved client never sends."""

from __future__ import annotations

import base64
import hashlib
import poplib as stdlib_poplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from types import ModuleType
from typing import Any

import pytest

from mailwire.testing import MailServer, POP3Server, Store, test_ssl_context
from mailwire.testing.pop3 import dot_stuff

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

USERS = {"alice": "secret", "bob": "hunter2"}
TIMEOUT = 10.0

PLAIN = b"From: a@example.org\nSubject: plain\n\nline one\nline two\nline three\n"
DOTS = (
    b"Subject: dots\n\n"
    b".leading dot\n"
    b"..two dots\n"
    b".\n"
    b"middle\n"
    b". space after dot\n"
    b"last line\n"
)
CRLF_ALREADY = b"Subject: crlf\r\n\r\nalready CRLF\r\n"


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def mailwire_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mailwire-")]


@pytest.fixture(autouse=True)
def no_thread_left_behind() -> Iterator[None]:
    before = set(mailwire_threads())
    yield
    leftover = [t for t in mailwire_threads() if t not in before]
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def server() -> Iterator[MailServer]:
    with MailServer(USERS) as running:
        yield running


@pytest.fixture(params=["stdlib", "mailwire"])
def pop(request: pytest.FixtureRequest) -> ModuleType:
    """The POP3 client module under test: the stdlib's poplib, and mailwire's when it exists."""
    if request.param == "stdlib":
        return stdlib_poplib
    module: ModuleType = pytest.importorskip("mailwire.poplib")
    return module


def login(pop: ModuleType, server: MailServer, user: str = "alice") -> Any:
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        client.user(user)
        client.pass_(USERS[user])
    except BaseException:
        client.close()
        raise
    return client


class Raw:
    """A bare-socket POP3 client, for exact bytes and misbehaviour."""

    def __init__(self, host: str, port: int) -> None:
        self.sock: socket.socket = socket.create_connection((host, port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.file.readline()

    def cmd(self, command: str) -> bytes:
        self.send(command.encode() + b"\r\n")
        return self.line().rstrip(b"\r\n")

    def multiline(self) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            line = self.line()
            assert line.endswith(b"\r\n"), line
            if line == b".\r\n":
                return lines
            lines.append(line[:-2])

    def start_tls(self, context: ssl.SSLContext, hostname: str) -> None:
        self.file.close()
        self.sock = context.wrap_socket(self.sock, server_hostname=hostname)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def raw(server: MailServer) -> Iterator[Raw]:
    client = Raw(server.host, server.pop3_port)
    yield client
    client.close()


def raw_login(raw: Raw, user: str = "alice") -> None:
    assert raw.cmd(f"USER {user}") == b"+OK"
    assert raw.cmd(f"PASS {USERS[user]}") == b"+OK Logged in."


# -- greeting, CAPA, authentication ---------------------------------------------------------


def test_greeting_carries_a_unique_apop_timestamp(server: MailServer) -> None:
    greetings = []
    for _ in range(2):
        client = Raw(server.host, server.pop3_port)
        greetings.append(client.greeting)
        client.close()
    for greeting in greetings:
        assert re.fullmatch(rb"\+OK mailwire ready\. <\d+\.\d+\.\d+@[^<>@\s]+>\r\n", greeting)
    assert greetings[0] != greetings[1]


def test_capa_like_dovecot(pop: ModuleType, server: MailServer) -> None:
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        assert client.capa() == {
            "CAPA": [], "TOP": [], "UIDL": [], "RESP-CODES": [], "PIPELINING": [],
            "AUTH-RESP-CODE": [], "STLS": [], "USER": [], "SASL": ["PLAIN"],
        }
        client.stls(test_ssl_context())
        assert "STLS" not in client.capa()
        assert "USER" in client.capa()
        client.user("alice")
        client.pass_("secret")
        assert client.capa() == {
            "CAPA": [], "TOP": [], "UIDL": [], "RESP-CODES": [], "PIPELINING": [],
            "AUTH-RESP-CODE": [],
        }
        client.quit()
    finally:
        client.close()


def test_user_pass(pop: ModuleType, server: MailServer) -> None:
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    assert client.user("alice") == b"+OK"
    assert client.pass_("secret") == b"+OK Logged in."
    assert client.quit() == b"+OK Logging out."


@pytest.mark.parametrize(("user", "password"), [("alice", "wrong"), ("nobody", "secret"),
                                                ("alice", "")])
def test_wrong_password(pop: ModuleType, server: MailServer, user: str, password: str) -> None:
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        client.user(user)
        with pytest.raises(pop.error_proto) as failure:
            client.pass_(password)
        assert failure.value.args[0] == b"-ERR [AUTH] Authentication failed."
        # still in AUTHORIZATION state: a second try works
        client.user("alice")
        client.pass_("secret")
        client.quit()
    finally:
        client.close()


def test_password_with_spaces(pop: ModuleType) -> None:
    with MailServer({"carol": "correct horse  battery"}) as server:
        client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
        client.user("carol")
        assert client.pass_("correct horse  battery") == b"+OK Logged in."
        client.quit()


def test_apop(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        assert client.apop("alice", "secret") == b"+OK Logged in."
        assert client.stat() == (1, len(crlf(PLAIN)))
        client.quit()
    finally:
        client.close()


def test_apop_wrong_secret_or_user(server: MailServer, raw: Raw) -> None:
    timestamp = re.search(rb"<[^>]+>", raw.greeting)
    assert timestamp is not None
    good = hashlib.md5(timestamp.group() + b"secret").hexdigest()
    bad = hashlib.md5(timestamp.group() + b"wrong").hexdigest()
    assert raw.cmd(f"APOP alice {bad}") == b"-ERR [AUTH] Authentication failed."
    assert raw.cmd(f"APOP nobody {good}") == b"-ERR [AUTH] Authentication failed."
    assert raw.cmd("APOP alice") == b"-ERR Invalid parameters."
    assert raw.cmd(f"APOP alice {good.upper()}") == b"+OK Logged in."


def test_apop_digest_is_bound_to_the_connection(server: MailServer) -> None:
    first = Raw(server.host, server.pop3_port)
    second = Raw(server.host, server.pop3_port)
    try:
        timestamp = re.search(rb"<[^>]+>", first.greeting)
        assert timestamp is not None
        digest = hashlib.md5(timestamp.group() + b"secret").hexdigest()
        assert second.cmd(f"APOP alice {digest}") == b"-ERR [AUTH] Authentication failed."
        assert first.cmd(f"APOP alice {digest}") == b"+OK Logged in."
    finally:
        first.close()
        second.close()


def plain_response(authzid: str, user: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def test_auth_plain(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("AUTH") == b"+OK"
    assert raw.multiline() == [b"PLAIN"]
    assert raw.cmd("AUTH CRAM-MD5") == b"-ERR Unsupported authentication mechanism."
    assert raw.cmd("AUTH PLAIN " + plain_response("", "alice", "wrong")) == (
        b"-ERR [AUTH] Authentication failed."
    )
    assert raw.cmd("AUTH PLAIN " + plain_response("bob", "alice", "secret")) == (
        b"-ERR [AUTH] Authentication failed."
    )
    assert raw.cmd("AUTH PLAIN !!!") == b"-ERR [AUTH] Invalid base64 data in initial response"
    assert raw.cmd("AUTH PLAIN =") == b"-ERR [AUTH] Authentication failed."
    assert raw.cmd("AUTH PLAIN") == b"+ "
    assert raw.cmd("!!!") == b"-ERR [AUTH] Invalid base64 in response"
    assert raw.cmd("AUTH PLAIN") == b"+ "
    assert raw.cmd("*") == b"-ERR Authentication aborted by client."
    assert raw.cmd("AUTH PLAIN") == b"+ "
    assert raw.cmd(plain_response("alice", "alice", "secret")) == b"+OK Logged in."
    assert raw.cmd("STAT") == b"+OK 0 0"


def test_auth_plain_initial_response(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("auth plain " + plain_response("", "bob", "hunter2")) == b"+OK Logged in."


def test_pass_without_user(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("PASS secret") == b"-ERR No username given."
    assert raw.cmd("USER") == b"-ERR No username given."
    # a failed PASS forgets the user name
    assert raw.cmd("USER alice") == b"+OK"
    assert raw.cmd("PASS nope") == b"-ERR [AUTH] Authentication failed."
    assert raw.cmd("PASS secret") == b"-ERR No username given."


# -- the TRANSACTION state ------------------------------------------------------------------


def test_empty_mailbox(pop: ModuleType, server: MailServer) -> None:
    client = login(pop, server)
    assert client.stat() == (0, 0)
    assert client.list() == (b"+OK 0 messages:", [], 0)
    assert client.uidl() == (b"+OK", [], 0)
    client.quit()


def test_octet_counts_are_crlf_sizes(pop: ModuleType, server: MailServer) -> None:
    messages = [PLAIN, DOTS, CRLF_ALREADY]
    for message in messages:
        server.deliver("alice", message)
    sizes = [len(crlf(m)) for m in messages]
    client = login(pop, server)
    assert client.stat() == (3, sum(sizes))
    response, listing, _ = client.list()
    assert response == b"+OK 3 messages:"
    assert listing == [f"{n} {size}".encode() for n, size in enumerate(sizes, 1)]
    for number, size in enumerate(sizes, 1):
        assert client.list(number) == f"+OK {number} {size}".encode()
        response, _, octets = client.retr(number)
        assert response == f"+OK {size} octets".encode()
        # poplib counts each line with its CRLF, after undoing the dot-stuffing
        assert octets == size
    client.quit()


def test_retr_dot_stuffing_round_trip(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", DOTS)
    client = login(pop, server)
    _, lines, _ = client.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf(DOTS)
    client.quit()


def test_dot_stuffing_on_the_wire(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", b".first line\n.\n..\nlast")
    raw_login(raw)
    assert raw.cmd("RETR 1") == b"+OK 24 octets"
    assert raw.multiline() == [b"..first line", b"..", b"...", b"last"]


def test_dot_stuff_function() -> None:
    assert dot_stuff(b"") == b""
    assert dot_stuff(b".") == b"..\r\n"
    assert dot_stuff(b"a\r\n.b\r\n") == b"a\r\n..b\r\n"
    assert dot_stuff(b"a\r\n.") == b"a\r\n..\r\n"


def test_message_without_final_newline(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", b"Subject: cut\n\nno newline at the end")
    client = login(pop, server)
    assert client.list(1) == b"+OK 1 37"
    _, lines, _ = client.retr(1)
    assert lines == [b"Subject: cut", b"", b"no newline at the end"]
    client.quit()


def test_email_message_delivery(pop: ModuleType, server: MailServer) -> None:
    message = EmailMessage()
    message["Subject"] = "Grüße ☕"
    message["From"] = "Jürgen <j@example.de>"
    message.set_content("Käse\n.\n")
    server.deliver("alice", message)
    client = login(pop, server)
    _, lines, _ = client.retr(1)
    parsed = message_from_bytes(b"\r\n".join(lines) + b"\r\n", policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["subject"] == "Grüße ☕"
    assert parsed.get_content().replace("\r\n", "\n") == "Käse\n.\n"
    client.quit()


def test_top(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    server.deliver("alice", b"Subject: headers only\n")
    server.deliver("alice", b"\nno headers\nsecond\n")
    client = login(pop, server)
    head = [b"From: a@example.org", b"Subject: plain", b""]
    assert client.top(1, 0) == (b"+OK", head, sum(len(x) + 2 for x in head))
    assert client.top(1, 2)[1] == [*head, b"line one", b"line two"]
    assert client.top(1, 3)[1] == [*head, b"line one", b"line two", b"line three"]
    assert client.top(1, 1000)[1] == [*head, b"line one", b"line two", b"line three"]
    assert client.top(2, 5)[1] == [b"Subject: headers only"]
    assert client.top(3, 0)[1] == [b""]
    assert client.top(3, 1)[1] == [b"", b"no headers"]
    client.quit()


def test_top_dot_stuffs(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", DOTS)
    raw_login(raw)
    assert raw.cmd("TOP 1 3") == b"+OK"
    assert raw.multiline() == [b"Subject: dots", b"", b"..leading dot", b"...two dots", b".."]


def test_uidl_is_stable_across_sessions(pop: ModuleType, server: MailServer) -> None:
    for message in (PLAIN, DOTS, CRLF_ALREADY):
        server.deliver("alice", message)
    client = login(pop, server)
    _, first, _ = client.uidl()
    assert len(first) == 3
    uids = dict(line.split() for line in first)
    assert len(set(uids.values())) == 3
    # Dovecot's default pop3_uidl_format %08Xu%08Xv: UID and UIDVALIDITY, lowercase hex
    assert all(re.fullmatch(rb"[0-9a-f]{16}", uid) for uid in uids.values())
    assert client.uidl(2) == b"+OK 2 " + uids[b"2"]
    client.dele(1)
    assert client.uidl()[1] == first[1:]
    client.quit()
    client = login(pop, server)
    # message 1 is gone; the others keep their ids under new numbers
    assert client.uidl()[1] == [b"1 " + uids[b"2"], b"2 " + uids[b"3"]]
    client.quit()


def test_dele_then_quit_deletes(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    server.deliver("alice", DOTS)
    client = login(pop, server)
    assert client.dele(1) == b"+OK Marked to be deleted."
    assert client.stat() == (1, len(crlf(DOTS)))
    assert len(server.messages("alice")) == 2  # nothing changes before QUIT
    assert client.quit() == b"+OK Logging out, messages deleted."
    assert [m.data for m in server.messages("alice")] == [crlf(DOTS)]
    client = login(pop, server)
    assert client.stat() == (1, len(crlf(DOTS)))
    client.quit()


def test_dele_then_rset_keeps(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = login(pop, server)
    client.dele(1)
    assert client.stat() == (0, 0)
    assert client.rset() == b"+OK"
    assert client.stat() == (1, len(crlf(PLAIN)))
    assert client.quit() == b"+OK Logging out."
    assert len(server.messages("alice")) == 1


def test_dele_without_quit_keeps(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    raw_login(raw)
    assert raw.cmd("DELE 1") == b"+OK Marked to be deleted."
    raw.close()
    check = Raw(server.host, server.pop3_port)
    raw_login(check)
    assert check.cmd("STAT") == f"+OK 1 {len(crlf(PLAIN))}".encode()
    check.close()


def test_deleted_message_cannot_be_used(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    server.deliver("alice", DOTS)
    raw_login(raw)
    assert raw.cmd("DELE 1") == b"+OK Marked to be deleted."
    for command in ("RETR 1", "LIST 1", "TOP 1 0", "UIDL 1", "DELE 1"):
        assert raw.cmd(command) == b"-ERR Message is deleted."
    assert raw.cmd("LIST") == b"+OK 1 messages:"
    assert raw.multiline() == [f"2 {len(crlf(DOTS))}".encode()]


def test_retr_marks_seen_on_quit_top_does_not(pop: ModuleType, server: MailServer) -> None:
    for message in (PLAIN, DOTS, CRLF_ALREADY):
        server.deliver("alice", message)
    client = login(pop, server)
    client.retr(1)
    client.top(2, 0)
    client.retr(3)
    client.dele(3)
    assert all(not m.flags for m in server.messages("alice"))
    client.quit()
    assert [m.flags for m in server.messages("alice")] == [frozenset({"\\Seen"}), frozenset()]


def test_session_sees_the_mailbox_as_at_login(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = login(pop, server)
    server.deliver("alice", DOTS)
    assert client.stat() == (1, len(crlf(PLAIN)))
    client.quit()
    client = login(pop, server)
    assert client.stat()[0] == 2
    client.quit()


def test_noop_rset_quit_replies(server: MailServer, raw: Raw) -> None:
    raw_login(raw)
    assert raw.cmd("NOOP") == b"+OK"
    assert raw.cmd("RSET") == b"+OK"
    assert raw.cmd("QUIT") == b"+OK Logging out."
    assert raw.line() == b""  # the server closed the connection


def test_quit_before_login(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("QUIT") == b"+OK Logging out"
    assert raw.line() == b""


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("XYZZY", b"-ERR Unknown command."),
        ("", b"-ERR Unknown command."),
        ("RPOP alice", b"-ERR Unknown command."),
        # Dovecot's login process does not know the mail commands
        ("STAT", b"-ERR Unknown command."),
        ("LIST", b"-ERR Unknown command."),
        ("RETR 1", b"-ERR Unknown command."),
        ("DELE 1", b"-ERR Unknown command."),
        ("TOP 1 1", b"-ERR Unknown command."),
        ("UIDL", b"-ERR Unknown command."),
        ("RSET", b"-ERR Unknown command."),
        ("NOOP", b"-ERR Unknown command."),
    ],
)
def test_errors_before_login(server: MailServer, raw: Raw, command: str, reply: bytes) -> None:
    assert raw.cmd(command) == reply
    assert raw.cmd("CAPA") == b"+OK"  # the connection goes on
    raw.multiline()


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        # Dovecot's mail process does not know the login commands
        ("USER alice", b"-ERR Unknown command: USER"),
        ("PASS secret", b"-ERR Unknown command: PASS"),
        ("APOP alice 0123", b"-ERR Unknown command: APOP"),
        ("AUTH PLAIN", b"-ERR Unknown command: AUTH"),
        ("STLS", b"-ERR Unknown command: STLS"),
        ("HELO", b"-ERR Unknown command: HELO"),
        # Dovecot ignores these extra arguments; mailwire's test server is stricter
        ("STAT 1", b"-ERR Too many arguments."),
        ("NOOP x", b"-ERR Too many arguments."),
        # Dovecot's words for bad message numbers and sizes
        ("LIST 1 2", b"-ERR Noise after message number:  2"),
        ("LIST 0", b"-ERR There's no message 0."),
        ("LIST 3", b"-ERR There's no message 3."),
        ("LIST x", b"-ERR Invalid message number: x"),
        ("LIST -1", b"-ERR Invalid message number: -1"),
        ("LIST +1", b"-ERR Invalid message number: +1"),
        ("LIST 99999999999999999999", b"-ERR Message number too large: 99999999999999999999"),
        ("RETR", b"-ERR Invalid message number: "),
        ("RETR 1 2", b"-ERR Noise after message number:  2"),
        ("RETR 9", b"-ERR There's no message 9."),
        ("DELE", b"-ERR Invalid message number: "),
        ("TOP", b"-ERR Invalid message number: "),
        ("TOP 1", b"-ERR Invalid size: "),
        ("TOP 1 -1", b"-ERR Invalid size: -1"),
        ("TOP 1 x", b"-ERR Invalid size: x"),
        ("TOP 1 2 3", b"-ERR Noise after size:  3"),
        ("UIDL 5", b"-ERR There's no message 5."),
        ("UIDL 1 2", b"-ERR Noise after message number:  2"),
    ],
)
def test_errors_after_login(server: MailServer, raw: Raw, command: str, reply: bytes) -> None:
    server.deliver("alice", PLAIN)
    server.deliver("alice", DOTS)
    raw_login(raw)
    assert raw.cmd(command) == reply
    assert raw.cmd("STAT") == f"+OK 2 {len(crlf(PLAIN)) + len(crlf(DOTS))}".encode()


def test_error_proto_from_the_client(pop: ModuleType, server: MailServer) -> None:
    client = login(pop, server)
    with pytest.raises(pop.error_proto, match="There's no message 1"):
        client.retr(1)
    client.quit()


def test_commands_are_case_insensitive_and_lf_is_accepted(server: MailServer,
                                                          raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    raw.send(b"user alice\npAsS secret\nstat\n")
    assert raw.line() == b"+OK\r\n"
    assert raw.line() == b"+OK Logged in.\r\n"
    assert raw.line() == f"+OK 1 {len(crlf(PLAIN))}\r\n".encode()


def test_pipelining(server: MailServer, raw: Raw) -> None:
    server.deliver("alice", PLAIN)
    raw.send(b"USER alice\r\nPASS secret\r\nLIST\r\nRETR 1\r\nNOOP\r\nQUIT\r\n")
    assert raw.line() == b"+OK\r\n"
    assert raw.line() == b"+OK Logged in.\r\n"
    assert raw.line() == b"+OK 1 messages:\r\n"
    assert raw.multiline() == [f"1 {len(crlf(PLAIN))}".encode()]
    assert raw.line().startswith(b"+OK ")
    assert raw.multiline() == crlf(PLAIN).split(b"\r\n")[:-1]
    assert raw.line() == b"+OK\r\n"
    assert raw.line() == b"+OK Logging out.\r\n"
    assert raw.line() == b""


def test_line_length_limit() -> None:
    store = Store(USERS)
    with POP3Server(store, max_line=100) as server:
        client = Raw(server.host, server.port)
        try:
            assert client.cmd("USER " + "a" * 93) == b"+OK"  # 100 octets with CRLF
            client.send(b"USER " + b"a" * 94 + b"\r\n")
            assert client.line() == b"-ERR Input line too long, aborting.\r\n"
            assert client.line() == b""
        finally:
            client.close()


def test_line_length_limit_without_newline() -> None:
    with POP3Server(Store(USERS), max_line=100) as server:
        client = Raw(server.host, server.port)
        try:
            client.send(b"x" * 150)
            assert client.line() == b"-ERR Input line too long, aborting.\r\n"
            assert client.line() == b""
        finally:
            client.close()


def test_line_length_limit_in_auth_continuation() -> None:
    with POP3Server(Store(USERS), max_line=100) as server:
        client = Raw(server.host, server.port)
        try:
            assert client.cmd("AUTH PLAIN") == b"+ "
            client.send(b"A" * 200 + b"\r\n")
            assert client.line() == b"-ERR Input line too long, aborting.\r\n"
            assert client.line() == b""
        finally:
            client.close()


def test_idle_timeout() -> None:
    with POP3Server(Store(USERS), idle_timeout=0.2) as server:
        client = Raw(server.host, server.port)
        try:
            assert client.line() == b"-ERR Disconnected for inactivity.\r\n"
            assert client.line() == b""
        finally:
            client.close()


def test_undecodable_bytes(server: MailServer, raw: Raw) -> None:
    raw.send(b"USER \xff\xfe\r\n")
    assert raw.line() == b"+OK\r\n"
    raw.send(b"PASS \xff\r\n")
    assert raw.line() == b"-ERR [AUTH] Authentication failed.\r\n"
    raw.send(b"\xc3\xa9T\xff\r\n")
    assert raw.line() == b"-ERR Unknown command.\r\n"


# -- TLS ------------------------------------------------------------------------------------


def test_stls_with_verifying_context(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", DOTS)
    client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    try:
        context = test_ssl_context()
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert client.stls(context) == b"+OK Begin TLS negotiation now."
        assert isinstance(client.sock, ssl.SSLSocket)
        certificate = client.sock.getpeercert()
        assert certificate is not None
        assert certificate["subject"] == (
            (("organizationName", "mailwire TEST-ONLY"),), (("commonName", "localhost"),)
        )
        client.user("alice")
        client.pass_("secret")
        _, lines, _ = client.retr(1)
        assert b"\r\n".join(lines) + b"\r\n" == crlf(DOTS)
        client.quit()
    finally:
        client.close()


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_certificate_names(server: MailServer, hostname: str) -> None:
    raw = Raw(server.host, server.pop3_port)
    try:
        assert raw.cmd("STLS") == b"+OK Begin TLS negotiation now."
        raw.start_tls(test_ssl_context(), hostname)
        assert raw.cmd("STLS") == b"-ERR TLS is already active."
        assert raw.cmd("CAPA") == b"+OK"
        assert b"STLS" not in raw.multiline()
    finally:
        raw.close()


def test_certificate_refused_by_default_trust(server: MailServer) -> None:
    raw = Raw(server.host, server.pop3_port)
    try:
        raw.cmd("STLS")
        with pytest.raises(ssl.SSLCertVerificationError):
            raw.start_tls(ssl.create_default_context(), "localhost")
    finally:
        raw.close()


def test_certificate_refused_for_another_name(server: MailServer) -> None:
    raw = Raw(server.host, server.pop3_port)
    try:
        raw.cmd("STLS")
        with pytest.raises(ssl.SSLCertVerificationError):
            raw.start_tls(test_ssl_context(), "mail.example.org")
    finally:
        raw.close()


def test_stls_discards_pipelined_plaintext(server: MailServer) -> None:
    raw = Raw(server.host, server.pop3_port)
    try:
        # A man in the middle appends a command to STLS; it must not run inside the TLS session.
        raw.send(b"STLS\r\nUSER alice\r\n")
        assert raw.line() == b"+OK Begin TLS negotiation now.\r\n"
        raw.start_tls(test_ssl_context(), "localhost")
        assert raw.cmd("PASS secret") == b"-ERR No username given."
    finally:
        raw.close()


def test_stls_forgets_the_user_name(server: MailServer, raw: Raw) -> None:
    assert raw.cmd("USER alice") == b"+OK"
    assert raw.cmd("STLS") == b"+OK Begin TLS negotiation now."
    raw.start_tls(test_ssl_context(), "localhost")
    assert raw.cmd("PASS secret") == b"-ERR No username given."


def test_pop3s(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    client = pop.POP3_SSL(server.host, server.pop3s_port, context=test_ssl_context(),
                          timeout=TIMEOUT)
    try:
        assert client.getwelcome().startswith(b"+OK mailwire ready. <")
        assert "STLS" not in client.capa()
        client.user("alice")
        client.pass_("secret")
        assert client.stat() == (1, len(crlf(PLAIN)))
        client.quit()
    finally:
        client.close()


def test_require_tls() -> None:
    with MailServer(USERS, require_tls=True) as server:
        raw = Raw(server.host, server.pop3_port)
        try:
            assert raw.cmd("CAPA") == b"+OK"
            capabilities = raw.multiline()
            assert b"STLS" in capabilities
            assert b"USER" not in capabilities and b"SASL PLAIN" not in capabilities
            refused = (b"-ERR [AUTH] Plaintext authentication disallowed on non-secure "
                       b"(SSL/TLS) connections.")
            assert raw.cmd("USER alice") == refused
            assert raw.cmd("AUTH PLAIN " + plain_response("", "alice", "secret")) == refused
            raw.cmd("STLS")
            raw.start_tls(test_ssl_context(), "localhost")
            raw_login(raw)
        finally:
            raw.close()
        client = stdlib_poplib.POP3_SSL(server.host, server.pop3s_port,
                                        context=test_ssl_context(), timeout=TIMEOUT)
        client.user("alice")
        client.pass_("secret")
        client.quit()


def test_tls_disabled() -> None:
    with MailServer(USERS, tls=False) as server:
        assert server.pop3s is None
        with pytest.raises(RuntimeError):
            _ = server.pop3s_port
        raw = Raw(server.host, server.pop3_port)
        try:
            assert raw.cmd("CAPA") == b"+OK"
            assert b"STLS" not in raw.multiline()
            assert raw.cmd("STLS") == b"-ERR TLS support isn't enabled."
            raw_login(raw)
        finally:
            raw.close()


def test_custom_server_context(pop: ModuleType) -> None:
    from mailwire.testing import server_ssl_context

    context = server_ssl_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with MailServer(USERS, tls_context=context) as server:
        client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
        client.stls(test_ssl_context())
        assert client.sock.version() == "TLSv1.3"
        client.quit()


def test_client_context_is_refused_as_server_context() -> None:
    with pytest.raises(ValueError, match="server-side"):
        MailServer(USERS, tls_context=test_ssl_context())


def test_tls_handshake_failure_leaves_server_working(server: MailServer) -> None:
    sock = socket.create_connection((server.host, server.pop3s_port), timeout=TIMEOUT)
    sock.sendall(b"this is not a TLS ClientHello\r\n" * 10)
    sock.settimeout(TIMEOUT)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    sock.close()
    client = stdlib_poplib.POP3_SSL(server.host, server.pop3s_port, context=test_ssl_context(),
                                    timeout=TIMEOUT)
    client.quit()


# -- addresses, concurrency, lifecycle ------------------------------------------------------


def test_ipv6_loopback(pop: ModuleType) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = MailServer(USERS, host="::1")
        server.start()
    except OSError as exc:
        pytest.skip(f"cannot listen on ::1: {exc}")
    try:
        assert server.host == "::1"
        client = pop.POP3("::1", server.pop3_port, timeout=TIMEOUT)
        client.stls(test_ssl_context())
        client.user("alice")
        client.pass_("secret")
        client.quit()
    finally:
        server.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_only_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        MailServer(USERS, host=host)


def test_concurrent_clients(pop: ModuleType, server: MailServer) -> None:
    for user in USERS:
        for index in range(5):
            server.deliver(user, f"Subject: {user} {index}\n\nbody {index}\n")
    errors: list[BaseException] = []
    results: dict[int, list[bytes]] = {}

    def session(worker: int) -> None:
        try:
            user = "alice" if worker % 2 else "bob"
            client = pop.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
            if worker % 3 == 0:
                client.stls(test_ssl_context())
            client.user(user)
            client.pass_(USERS[user])
            subjects = []
            for number in range(1, client.stat()[0] + 1):
                subjects.append(client.retr(number)[1][0])
            client.quit()
            results[worker] = subjects
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
        assert subjects == [f"Subject: {user} {i}".encode() for i in range(5)]


def test_two_sessions_deleting_the_same_message(pop: ModuleType, server: MailServer) -> None:
    server.deliver("alice", PLAIN)
    server.deliver("alice", DOTS)
    first, second = login(pop, server), login(pop, server)
    first.dele(1)
    second.dele(1)
    assert first.quit() == b"+OK Logging out, messages deleted."
    assert second.quit() == b"+OK Logging out, messages deleted."
    assert [m.data for m in server.messages("alice")] == [crlf(DOTS)]


def wait_for_threads(count: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while len(mailwire_threads()) < count:
        assert time.monotonic() < deadline, mailwire_threads()
        time.sleep(0.01)


def test_stop_with_clients_connected_is_prompt() -> None:
    server = MailServer(USERS)
    server.start()
    idle = Raw(server.host, server.pop3_port)
    logged_in = Raw(server.host, server.pop3_port)
    raw_login(logged_in)
    tls = Raw(server.host, server.pop3_port)
    tls.cmd("STLS")
    tls.start_tls(test_ssl_context(), "localhost")
    handshaking = socket.create_connection((server.host, server.pop3s_port), timeout=TIMEOUT)
    try:
        wait_for_threads(2 + 4)  # two listeners, four clients
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert mailwire_threads() == []
        for client in (idle, logged_in, tls):
            assert client.line() == b""
        assert handshaking.recv(100) == b""
    finally:
        server.stop()
        for client in (idle, logged_in, tls):
            client.close()
        handshaking.close()


def test_stop_while_sending_a_large_message_to_a_stalled_client() -> None:
    server = MailServer(USERS)
    server.start()
    server.deliver("alice", b"Subject: big\n\n" + b"x" * 998 + b"\n" * 20000)
    client = Raw(server.host, server.pop3_port)
    try:
        raw_login(client)
        for _ in range(3):
            client.send(b"RETR 1\r\n")  # never read: the server blocks in sendall
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert mailwire_threads() == []
    finally:
        server.stop()
        client.close()


def test_stop_closes_everything_and_is_idempotent() -> None:
    server = MailServer(USERS)
    assert repr(server) == "<MailServer (stopped)>"
    server.stop()  # never started: nothing to do
    server.start()
    assert re.fullmatch(r"<MailServer 127\.0\.0\.1 pop3=\d+, pop3s=\d+>", repr(server))
    port = server.pop3_port
    assert server.pop3 is not None and server.pop3.running
    with pytest.raises(RuntimeError):
        server.pop3.start()
    with pytest.raises(RuntimeError, match="started already"):
        server.start()
    assert server.pop3.running  # a second start() leaves the first one alone
    server.stop()
    server.stop()
    assert not server.pop3.running
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_fixed_ports() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with MailServer(USERS, ports={"pop3": port}) as server:
        assert server.pop3_port == port
    with pytest.raises(ValueError, match="unknown services"):
        MailServer(USERS, ports={"smtp": 25})




def test_pop3_server_alone() -> None:
    store = Store({"dave": "pw"})
    store.deliver("dave", PLAIN)
    with POP3Server(store) as server:
        assert server.address == (server.host, server.port)
        client = stdlib_poplib.POP3(server.host, server.port, timeout=TIMEOUT)
        assert "STLS" not in client.capa()
        client.user("dave")
        client.pass_("pw")
        assert client.stat() == (1, len(crlf(PLAIN)))
        client.quit()
    with pytest.raises(RuntimeError, match="not started"):
        _ = POP3Server(store).address


def test_maildir_backed_server(pop: ModuleType, tmp_path: Any) -> None:
    with MailServer(USERS, maildir=tmp_path) as server:
        server.deliver("alice", PLAIN)
        server.deliver("alice", DOTS)
        client = login(pop, server)
        first_uidl = client.uidl()[1]
        client.retr(2)
        client.dele(1)
        client.quit()
    files = list((tmp_path / "alice" / "new").iterdir()) + list(
        (tmp_path / "alice" / "cur").iterdir())
    assert len(files) == 1
    assert files[0].name.endswith(":2,S") and files[0].parent.name == "cur"
    assert files[0].read_bytes() == DOTS  # Maildir files keep LF line endings
    with MailServer(USERS, maildir=tmp_path) as server:
        client = login(pop, server)
        assert client.uidl()[1] == [b"1 " + first_uidl[1].split()[1]]
        assert client.stat() == (1, len(crlf(DOTS)))
        client.quit()
        assert server.messages("alice")[0].flags == {"\\Seen"}
