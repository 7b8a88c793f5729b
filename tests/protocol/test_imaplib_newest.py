"""mailwire.imaplib against a fake IMAP server: the newest stdlib behaviour.

The spec is docs/notes/newest-imaplib-behaviour.md (section numbers below refer to it).

Tests taking ``mod`` run once through ``mailwire.imaplib`` and once through the installed
stdlib ``imaplib`` (3.9 to 3.13), against the same fake server script: that is how behaviour
the newest stdlib kept from those versions is proven identical. Behaviour that only the newest
stdlib has is tested on mailwire alone. The Hypothesis tests at the end use the stdlib as the
oracle for random response streams.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import errno
import hmac
import imaplib as std_imaplib
import shlex
import socket
import ssl
import sys
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Callable, Optional
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import mailwire.imaplib as mw
from mailwire.deviations import DEVIATIONS
from mailwire.testing import server_ssl_context, test_ssl_context

from .imap_fakeserver import (
    Close,
    Command,
    FakeIMAPServer,
    Packets,
    Pause,
    Session,
    parse_values,
    split_tokens,
)

pytestmark = [
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

TIMEOUT = 5.0
PREAUTH = b"* PREAUTH fake IMAP4rev1 server ready\r\n"
MODULES = [pytest.param(mw, id="mailwire"), pytest.param(std_imaplib, id="stdlib")]

StartServer = Callable[..., FakeIMAPServer]
Connect = Callable[..., Any]


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    yield
    left = [t for t in threading.enumerate() if t.name == "fake-imap" and t.is_alive()]
    assert not left, f"fake server threads still running: {left}"


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def imap_server() -> Iterator[StartServer]:
    """``imap_server(handlers, **options)`` starts a fake server; all are stopped afterwards and
    the test fails if one recorded an unexpected event (unless ``check_errors`` is cleared)."""
    servers: list[FakeIMAPServer] = []

    def start(handlers: Optional[dict[str, Any]] = None, **options: Any) -> FakeIMAPServer:
        server = FakeIMAPServer(handlers, **options).start()
        server.check_errors = True  # type: ignore[attr-defined]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    checked = [s for s in servers if s.check_errors]  # type: ignore[attr-defined]
    problems = [f"{s.address}: {e}" for s in checked for e in s.errors]
    assert not problems, problems


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    """Every client a test opens is shut down at the end, whatever happened."""
    opened: list[Any] = []
    yield opened
    for client in opened:
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client.shutdown()


@pytest.fixture
def connect(clients: list[Any]) -> Connect:
    def connect(cls: Any, server: FakeIMAPServer, timeout: Any = TIMEOUT, **options: Any) -> Any:
        client = cls(*server.address, timeout=timeout, **options)
        clients.append(client)
        return client

    return connect


def ok(*untagged: bytes, text: Optional[str] = None, status: str = "OK") -> Callable[..., None]:
    """A handler sending ``untagged`` and the tagged completion in one packet."""

    def handler(session: Session, command: Command) -> None:
        done = text if text is not None else command.uid_name + " completed"
        tagged = b"%s %s %s\r\n" % (command.tag, status.encode(), done.encode())
        session.send(b"".join(untagged) + tagged)

    return handler


def open_client(
    imap_server: StartServer,
    connect: Connect,
    cls: Any = mw.IMAP4,
    state: str = "SELECTED",
    handlers: Optional[dict[str, Any]] = None,
    **options: Any,
) -> tuple[Any, FakeIMAPServer]:
    """A client in ``state`` (NONAUTH, AUTH via PREAUTH, or SELECTED after SELECT INBOX)."""
    if state != "NONAUTH":
        options.setdefault("greeting", PREAUTH)
    server = imap_server(handlers, **options)
    client = connect(cls, server)
    if state == "SELECTED":
        client.select()
    assert client.state == state
    return client, server


def names_after(server: FakeIMAPServer, count: int) -> list[str]:
    return server.names[count:]


# == the fake server itself ====================================================================


def test_fake_server_parsing() -> None:
    raw = b'APPEND "New folder" (\\Seen) {4}\r\nda\r\n'
    assert split_tokens(raw) == ["APPEND", '"New folder"', "(\\Seen)", "{4}", b"da\r\n"]
    assert parse_values(raw) == ["APPEND", "New folder", ["\\Seen"], b"da\r\n"]
    raw = b'FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.10>) "a \\"b\\"" NIL'
    assert split_tokens(raw) == [
        "FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.10>)", '"a \\"b\\""', "NIL",
    ]  # fmt: skip
    assert parse_values(raw) == [
        "FETCH", "1:*", ["UID", "BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.10>"], 'a "b"', "NIL",
    ]  # fmt: skip
    raw = b"APPEND INBOX UTF8 (~{3}\r\n\x00\r\n)"
    assert split_tokens(raw) == ["APPEND", "INBOX", "UTF8", "(~{3}", b"\x00\r\n", ")"]
    assert parse_values(raw) == ["APPEND", "INBOX", "UTF8", [b"\x00\r\n"]]


def test_fake_server_sees_a_client_that_does_not_wait() -> None:
    """A client that sends a literal before the "+", or anything before the greeting."""
    with FakeIMAPServer(greeting_delay=0.2) as server:
        with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
            sock.sendall(b"A1 APPEND INBOX {4}\r\ndata\r\n")
            reply = b""
            while b"A1 " not in reply:
                reply += sock.recv(4096)
            sock.sendall(b"A2 LOGOUT\r\n")
            while sock.recv(4096):
                pass
        server.join()
    assert server.errors[0] == "client sent data before the greeting"
    assert "before the continuation" in server.errors[1]
    assert server.names == ["APPEND", "LOGOUT"]
    assert server.commands[0].literals == [b"data"]
    assert reply.startswith(b"* OK fake IMAP4rev1 server ready\r\n+ Ready for literal data\r\n")


def test_fake_server_literal_plus() -> None:
    """A non-synchronising literal ({N+}, LITERAL+) is read without a continuation."""
    with FakeIMAPServer() as server:
        with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
            sock.sendall(b"A1 APPEND INBOX {4+}\r\ndata\r\nA2 LOGOUT\r\n")
            reply = b""
            while True:
                data = sock.recv(4096)
                if not data:
                    break
                reply += data
        server.join()
    assert not server.errors
    assert b"+ " not in reply
    assert server.commands[0].literals == [b"data"]
    assert server.commands[0].raw == b"APPEND INBOX {4+}\r\ndata"


def test_fake_server_closes_when_a_send_finds_the_client_gone() -> None:
    """A send that fails (the client closed, its kernel answered with a reset) closes the socket.

    It used to only mark the session closed: the socket was left to the garbage collector (the
    server and its session refer to each other), whose ResourceWarning then failed a later test.
    """
    gone = threading.Event()

    def noop(session: Session, command: Command) -> None:
        gone.wait(TIMEOUT)
        for _ in range(200):  # the first send after the close draws the reset, a later one fails
            session.send(b"* OK still here\r\n")
            session.pause(0.005)

    with FakeIMAPServer({"NOOP": noop}, greeting=PREAUTH) as server:
        with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
            sock.recv(4096)
            sock.sendall(b"A1 NOOP\r\n")
        gone.set()
        server.join()
        assert server.session is not None
        assert server.session.closed
        assert server.session.conn.fileno() == -1
    assert not server.errors


# == module surface ============================================================================


def test_stdlib_is_the_real_one() -> None:
    assert not getattr(std_imaplib, "__mailwire__", False)
    assert getattr(mw, "__mailwire__", False)


def test_exceptions_are_the_stdlibs() -> None:
    assert issubclass(mw.IMAP4.error, std_imaplib.IMAP4.error)
    assert issubclass(mw.IMAP4.abort, std_imaplib.IMAP4.abort)
    assert issubclass(mw.IMAP4.readonly, std_imaplib.IMAP4.readonly)
    assert issubclass(mw.IMAP4.abort, mw.IMAP4.error)
    assert issubclass(mw.IMAP4.readonly, mw.IMAP4.abort)
    for cls in (mw.IMAP4_SSL, mw.IMAP4_stream):
        assert cls.error is mw.IMAP4.error and cls.abort is mw.IMAP4.abort
    with pytest.raises(std_imaplib.IMAP4.abort):
        raise mw.IMAP4.readonly("x")


def test_version_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning) as record:
        version = mw.__version__
    assert isinstance(version, str)
    (warning,) = record
    assert str(warning.message) == (
        "'__version__' is deprecated and slated for removal in Python 3.20"
    )
    assert warning.filename == __file__


def test_idle_names() -> None:
    assert mw.Commands["IDLE"] == ("AUTH", "SELECTED")
    assert mw.Commands["MOVE"] == ("SELECTED",)
    assert isinstance(mw.Idler, type)
    assert "Idler" not in mw.__all__
    assert mw._MAXLINE == 1000000


def test_uppercase_aliases(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    client = connect(mod.IMAP4, imap_server())
    assert client.capability == client.CAPABILITY
    assert client.select == client.SELECT
    assert client.NOOP() == ("OK", [b"NOOP completed"])
    with pytest.raises(AttributeError, match=r"^Unknown IMAP4 command: 'BOGUS'$"):
        client.BOGUS  # noqa: B018


def test_commands_is_read_at_call_time(
    mod: ModuleType, imap_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = imap_server()
    client = connect(mod.IMAP4, server)
    patched = dict(mod.Commands, NOOP=("AUTH",))
    monkeypatch.setattr(mod, "Commands", patched)
    with pytest.raises(mod.IMAP4.error) as info:
        client.noop()
    assert str(info.value) == "command NOOP illegal in state NONAUTH, only allowed in states AUTH"
    monkeypatch.setitem(patched, "NOOP", ("NONAUTH", "AUTH"))
    assert client.noop() == ("OK", [b"NOOP completed"])
    # The upper-case aliases consult Commands at call time too.
    assert client.check == client.CHECK
    monkeypatch.delitem(patched, "CHECK")
    with pytest.raises(AttributeError):
        client.CHECK  # noqa: B018
    assert server.names == ["CAPABILITY", "NOOP"]


def test_xatom_registers_in_commands(
    mod: ModuleType, imap_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mod, "Commands", dict(mod.Commands))
    server = imap_server()
    client = connect(mod.IMAP4, server)
    assert "MYCOMMAND" not in mod.Commands
    assert client.xatom("mycommand", "a", "b c", '"d"') == ("OK", [b"MYCOMMAND completed"])
    assert mod.Commands["MYCOMMAND"] == ("NONAUTH",)
    assert server.last("MYCOMMAND").raw == b'MYCOMMAND a b c "d"'


class _Text(str):
    """A str subclass, as some callers pass (enum values, markup strings)."""


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ((_Text("a"), "b"), b"MYCOMMAND a b"),
        (("a", None, b"b", bytearray(b"c")), b"MYCOMMAND a b c"),
    ],
)
def test_command_arguments_as_the_stdlib_sends_them(
    mod: ModuleType,
    imap_server: StartServer,
    connect: Connect,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[Any, ...],
    line: bytes,
) -> None:
    """Text (str subclasses too) is encoded, None is left out, bytes-likes go as they are."""
    monkeypatch.setattr(mod, "Commands", dict(mod.Commands))
    server = imap_server()
    client = connect(mod.IMAP4, server)
    assert client.xatom("mycommand", *args)[0] == "OK"
    assert server.last("MYCOMMAND").raw == line


def test_command_argument_the_encoding_lacks(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    client = connect(mod.IMAP4, imap_server())
    with pytest.raises(UnicodeEncodeError) as info:
        client._simple_command("NOOP", "ok", "caf\xe9")
    assert (info.value.start, info.value.object) == (3, "caf\xe9")


# == greetings and connection (5.1) ==========================================================

INVALID_GREETINGS = [
    (b"+OK POP3 server ready\r\n", "invalid greeting: +OK POP3 server ready"),
    (b"* BYE Server unavailable\r\n", "invalid greeting: * BYE Server unavailable"),
    (b"+\r\n", "invalid greeting: +"),
]


@pytest.mark.parametrize(("greeting", "message"), INVALID_GREETINGS)
def test_invalid_greeting_message(imap_server: StartServer, greeting: bytes, message: str) -> None:
    server = imap_server(greeting=greeting)
    with pytest.raises(mw.IMAP4.error) as info:
        mw.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == message


@pytest.mark.parametrize("greeting", [g for g, _ in INVALID_GREETINGS])
def test_invalid_greeting_closes_the_socket(
    mod: ModuleType, imap_server: StartServer, greeting: bytes
) -> None:
    server = imap_server(greeting=greeting)
    with pytest.raises(mod.IMAP4.error):
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    server.join()
    assert server.commands == []
    assert server.client_gone


@pytest.mark.parametrize(
    ("greeting", "message"),
    [
        ([b"* OK", Close()], "socket error: unterminated line: b'* OK'"),
        (b"* OK bare LF\n", "socket error: unterminated line: b'* OK bare LF\\n'"),
        ([Close()], "socket error: EOF"),
    ],
    ids=["eof-mid-line", "bare-lf", "eof"],
)
def test_broken_greeting_aborts(
    mod: ModuleType, imap_server: StartServer, greeting: Any, message: str
) -> None:
    server = imap_server(greeting=greeting)
    with pytest.raises(mod.IMAP4.abort) as info:
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == message


def test_eof_after_greeting(mod: ModuleType, imap_server: StartServer) -> None:
    server = imap_server({"CAPABILITY": [Close()]})
    with pytest.raises(mod.IMAP4.abort) as info:
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == "command: CAPABILITY => socket error: EOF"


def test_preauth_greeting(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    client = connect(mod.IMAP4, imap_server(greeting=PREAUTH))
    assert client.state == "AUTH"
    assert client.welcome == PREAUTH[:-2]
    assert client.PROTOCOL_VERSION == "IMAP4REV1"


@pytest.mark.parametrize(
    ("capability", "message"),
    [
        (ok(b"* CAPABILITY FOO BAR\r\n"), "server not IMAP4 compliant"),
        (ok(), "no CAPABILITY response from server"),
    ],
    ids=["not-imap4", "no-capability"],
)
def test_bad_capabilities(
    mod: ModuleType, imap_server: StartServer, capability: Any, message: str
) -> None:
    server = imap_server({"CAPABILITY": capability})
    with pytest.raises(mod.IMAP4.error) as info:
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == message


def test_greeting_capabilities(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(greeting=b"* OK [CAPABILITY IMAP4rev1 ENABLE] Server ready\r\n")
    client = connect(mw.IMAP4, server)
    assert client.capabilities == ("IMAP4REV1", "ENABLE")
    assert client.PROTOCOL_VERSION == "IMAP4REV1"
    assert "CAPABILITY" not in client.untagged_responses  # the greeting's is consumed
    assert client.noop()[0] == "OK"
    assert server.names == ["NOOP"]


def test_login_refreshes_capabilities(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(
        {"LOGIN": ok(b"* CAPABILITY IMAP4rev1 ENABLE UTF8=ACCEPT\r\n")},
        capabilities="IMAP4rev1 AUTH=PLAIN",
    )
    client = connect(mw.IMAP4, server)
    assert "ENABLE" not in client.capabilities
    assert client.login("user", "pass") == ("OK", [b"LOGIN completed"])
    assert client.capabilities == ("IMAP4REV1", "ENABLE", "UTF8=ACCEPT")
    assert server.names == ["CAPABILITY", "LOGIN"]  # no second CAPABILITY command
    assert client.enable("UTF8=ACCEPT")[0] == "OK"
    assert client.utf8_enabled


def test_login_leaves_the_capability_response(imap_server: StartServer, connect: Connect) -> None:
    """gh-155775: the refresh reads an untagged CAPABILITY without consuming it."""
    server = imap_server({"LOGIN": ok(b"* CAPABILITY IMAP4rev1 IDLE\r\n")})
    client = connect(mw.IMAP4, server)
    client.login("user", "pass")
    assert client.response("CAPABILITY") == ("CAPABILITY", [b"IMAP4rev1 IDLE"])


def test_authenticate_refreshes_capabilities(imap_server: StartServer, connect: Connect) -> None:
    def authenticate(session: Session, command: Command) -> None:
        session.continuation()
        session.state["answer"] = session.readline()
        session.tagged(command, "OK", "[CAPABILITY IMAP4rev1 ENABLE] AUTHENTICATE completed")

    server = imap_server({"AUTHENTICATE": authenticate}, capabilities="IMAP4rev1")
    client = connect(mw.IMAP4, server)
    typ, _ = client.authenticate("MYAUTH", lambda challenge: b"fake")
    assert typ == "OK" and client.state == "AUTH"
    assert client.capabilities == ("IMAP4REV1", "ENABLE")
    assert server.names == ["CAPABILITY", "AUTHENTICATE"]
    assert server.session is not None and server.session.state["answer"] == b"ZmFrZQ=="


def test_login_requeries_capabilities(imap_server: StartServer, connect: Connect) -> None:
    answers = iter([b"IMAP4rev1", b"IMAP4rev1 IDLE MOVE"])

    def capability(session: Session, command: Command) -> None:
        ok(b"* CAPABILITY " + next(answers) + b"\r\n")(session, command)

    server = imap_server({"CAPABILITY": capability})
    client = connect(mw.IMAP4, server)
    assert client.capabilities == ("IMAP4REV1",)
    client.login("user", "pass")
    assert client.capabilities == ("IMAP4REV1", "IDLE", "MOVE")
    assert server.names == ["CAPABILITY", "LOGIN", "CAPABILITY"]


# == timeouts (5.1, 1.6) =====================================================================


def test_timeout_zero_is_refused(mod: ModuleType, imap_server: StartServer) -> None:
    server = imap_server()
    with pytest.raises(ValueError, match=r"^Non-blocking socket \(timeout=0\) is not supported$"):
        mod.IMAP4(*server.address, timeout=0)


@pytest.mark.parametrize("timeout", [None, 2.5])
def test_socket_timeout_value(
    mod: ModuleType, imap_server: StartServer, connect: Connect, timeout: Optional[float]
) -> None:
    client = connect(mod.IMAP4, imap_server(), timeout=timeout)
    assert client.sock.gettimeout() == timeout


def test_slow_greeting_times_out(mod: ModuleType, imap_server: StartServer) -> None:
    server = imap_server(greeting_delay=3.0)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        mod.IMAP4(*server.address, timeout=0.1)
    assert time.monotonic() - started < 3 * 0.1 + 1


def test_slow_greeting_raises_timeout_error(imap_server: StartServer) -> None:
    """On 3.9 ``socket.timeout`` is not a ``TimeoutError``: mailwire's must be both."""
    server = imap_server(greeting_delay=3.0)
    started = time.monotonic()
    try:
        mw.IMAP4(*server.address, timeout=0.05)
    except TimeoutError as exc:
        caught: BaseException = exc
    else:  # pragma: no cover
        pytest.fail("no timeout")
    assert isinstance(caught, socket.timeout)
    assert time.monotonic() - started < 3 * 0.05 + 1
    server2 = imap_server(greeting_delay=3.0)
    try:
        mw.IMAP4(*server2.address, timeout=0.05)
    except socket.timeout as exc:
        assert isinstance(exc, TimeoutError)
    else:  # pragma: no cover
        pytest.fail("no timeout")


def test_line_deadline_deviation(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    """line-deadline (module "both"): a line trickled a byte every 30 ms with a 0.2 s
    timeout. Each recv succeeds, so the stdlib waits for the whole line; mailwire does not."""

    def noop(session: Session, command: Command) -> None:
        session.packets([bytes([b]) for b in b"* OK slowly\r\n"], 0.03)
        session.tagged(command)

    client = connect(mod.IMAP4, imap_server({"NOOP": noop}), timeout=0.2)
    started = time.monotonic()
    if mod is mw:
        with pytest.raises(socket.timeout):
            client.noop()
        assert time.monotonic() - started < 3 * 0.2 + 1
    else:
        assert client.noop() == ("OK", [b"NOOP completed"])
        assert time.monotonic() - started > 0.2


@pytest.mark.parametrize("where", ["line", "fetch-line", "literal"])
def test_trickling_server_times_out_then_aborts(
    imap_server: StartServer, connect: Connect, where: str
) -> None:
    heads = {
        "line": b"* OK ",
        # A whole response, then the start of a FETCH line long enough for the block path,
        # which receives the rest itself.
        "fetch-line": b"* 1 EXISTS\r\n* 1 FETCH (UID 1 FLAGS (\\Seen) BODY[HEADER.FIELDS (TO)] ",
        "literal": b"* 1 FETCH (BODY[] {300}\r\n",
    }
    head = heads[where]
    trickle = [head, Packets([b"x"] * 200, 0.05)]
    server = imap_server({"NOOP": trickle})
    client = connect(mw.IMAP4, server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        client.noop()
    assert time.monotonic() - started < 3 * 0.3 + 1
    sent: list[bytes] = []
    client.send = sent.append  # later commands must not get as far as sending
    for call in (client.noop, lambda: client.login("user", "pass"), client.capability):
        with pytest.raises(mw.IMAP4.abort):
            call()
    assert sent == []


def test_single_fetch_timing_out_before_its_reply_breaks_the_connection(
    imap_server: StartServer, connect: Connect
) -> None:
    """A single-message fetch whose reply comes too late (the express path's first receive)
    leaves the connection out of step, as a late reply to any other command does."""
    late = [Pause(0.6), b"* 1 FETCH (BODY[] {3}\r\nabc)\r\n{tag} OK FETCH completed\r\n"]
    client = connect(mw.IMAP4, imap_server({"FETCH": late}), timeout=0.2)
    client.login("user", "pass")
    client.select()
    with pytest.raises(socket.timeout):
        client.fetch("1", "(BODY[])")
    sent: list[bytes] = []
    client.send = sent.append
    with pytest.raises(mw.IMAP4.abort, match="out of sync"):
        client.fetch("1", "(BODY[])")
    assert sent == []


def test_timeout_desync_deviation(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    """After a timeout in the middle of a response, the stdlib keeps reading from where it
    stopped (the newest one reads the stale tail as the next answer; 3.9-3.13's SocketIO
    refuses with OSError after sending). mailwire refuses with abort and sends nothing."""
    server = imap_server(
        {"NOOP": [b"* 1 EXISTS\r\n", Pause(0.6), b"* 2 EXISTS\r\n{tag} OK NOOP completed\r\n"]}
    )
    client = connect(mod.IMAP4, server, timeout=0.2)
    with pytest.raises(socket.timeout):
        client.noop()
    if mod is mw:
        with pytest.raises(mw.IMAP4.abort):
            client.noop()
        client.shutdown()
        server.join()
        assert server.names == ["CAPABILITY", "NOOP"]
    else:
        client.sock.settimeout(TIMEOUT)
        with pytest.raises(OSError):
            client.noop()


def test_literal_timeout_outside_the_block_path_breaks_the_connection(
    imap_server: StartServer, connect: Connect
) -> None:
    """A literal cut short by a timeout while the line-by-line path reads (here: IDLE waiting
    for its "+") leaves the rest in flight, looking like responses: every later command must
    abort, not read it as its answer."""
    stall = [
        b"* 1 FETCH (BODY[] {40}\r\nabcde",
        Pause(0.6),
        b"\r\n* 77 EXISTS\r\n0123456789012345678901234)\r\n",
    ]
    client, _ = open_client(imap_server, connect, state=AUTH, handlers={"IDLE": stall})
    client.sock.settimeout(0.2)
    with pytest.raises(socket.timeout), client.idle():
        pass
    sent: list[bytes] = []
    client.send = sent.append
    with pytest.raises(mw.IMAP4.abort):
        client.noop()
    assert sent == []
    assert client.response("EXISTS") == ("EXISTS", [None])


def test_timeout_leaves_a_with_block_unchanged(
    mod: ModuleType, imap_server: StartServer
) -> None:
    """The timeout that ends a ``with`` block is what the caller sees; LOGOUT, which cannot
    be sent on a connection out of step, does not replace it with an abort."""
    server = imap_server({"NOOP": [b"* 1 EXISTS\r\n", Pause(0.6), b"{tag} OK done\r\n"]})
    with pytest.raises(socket.timeout), mod.IMAP4(*server.address, timeout=0.2) as client:
        client.noop()
    if mod is mw:
        assert client.state == "LOGOUT"
        server.join()  # the connection was closed
    else:
        client.shutdown()


IMAP_DEVIATIONS_TESTED = {
    # id: the tests here that show the difference
    "imap-broken-after-timeout": "test_timeout_desync_deviation, "
    "test_trickling_server_times_out_then_aborts",
    "imap-file-assignable": "test_file_attribute_without_warnings, test_fetch_scenario",
    "imap-literal-limit": "test_huge_literal_then_close",
    "imap-starttls-buffered-plaintext": "test_starttls_plaintext_injection",
    "imap-control-chars": "test_refused_before_sending",
    "imap-utf8-append": "test_utf8_mode",
    "line-deadline": "test_line_deadline_deviation",
    "imap-blank-line-limit": "test_blank_line_limit_deviation",
    "imap-auth-cancel": "test_malformed_challenge_cancels_the_exchange",
    "imap-shutdown-always": "test_shutdown_after_failed_starttls_deviation",
}


def test_deviations_are_registered() -> None:
    """Each deliberate difference tested here is in the registry, and covers imaplib."""
    by_id = {d.id: d for d in DEVIATIONS}
    missing = sorted(set(IMAP_DEVIATIONS_TESTED) - set(by_id))
    assert not missing, f"not registered in mailwire.deviations: {missing}"
    for deviation_id in IMAP_DEVIATIONS_TESTED:
        assert by_id[deviation_id].module in ("imaplib", "both"), deviation_id
    for name in ", ".join(IMAP_DEVIATIONS_TESTED.values()).split(", "):
        assert callable(globals()[name]), name


# == line limits, literals, EOF (1.6, 5.2) ===================================================


def test_maxline_in_the_greeting(
    mod: ModuleType, imap_server: StartServer, monkeypatch: Any
) -> None:
    server = imap_server(greeting=b"* OK " + b"x" * 11 + b"\r\n")
    monkeypatch.setattr(mod, "_MAXLINE", 10)
    with pytest.raises(mod.IMAP4.error) as info:
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == "got more than 10 bytes"


def test_maxline_in_a_response(
    mod: ModuleType, imap_server: StartServer, connect: Connect, monkeypatch: Any
) -> None:
    lines = b"".join(b"* %d FETCH (FLAGS ())\r\n" % i for i in range(1, 5))
    server = imap_server({"NOOP": ok(lines + b"* OK " + b"y" * 40 + b"\r\n")})
    client = connect(mod.IMAP4, server)
    monkeypatch.setattr(mod, "_MAXLINE", 30)
    with pytest.raises(mod.IMAP4.error) as info:
        client.noop()
    assert str(info.value) == "command: NOOP => got more than 30 bytes"


def test_default_maxline(mod: ModuleType, imap_server: StartServer) -> None:
    server = imap_server(greeting=b"* OK " + b"x" * 1000000 + b"\r\n")
    with pytest.raises(mod.IMAP4.error) as info:
        mod.IMAP4(*server.address, timeout=TIMEOUT)
    assert str(info.value) == "got more than 1000000 bytes"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ([Close()], "command: NOOP => socket error: EOF"),
        ([b"* 1 EXI", Close()], "command: NOOP => socket error: unterminated line: b'* 1 EXI'"),
        ([b"* 1 FETCH (BODY[] {10}\r\nabc", Close()], "command: NOOP => socket error: EOF"),
    ],
    ids=["eof", "mid-line", "mid-literal"],
)
def test_server_closes_mid_response(
    mod: ModuleType, imap_server: StartServer, connect: Connect, reply: Any, message: str
) -> None:
    client = connect(mod.IMAP4, imap_server({"NOOP": reply}))
    with pytest.raises(mod.IMAP4.abort) as info:
        client.noop()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "size", [2**15, 2**31, 2**40, 2**63, 99999999999], ids=lambda n: f"{n}"
)
@pytest.mark.parametrize("where", ["greeting", "fetch"])
def test_huge_literal_then_close(
    imap_server: StartServer, connect: Connect, size: int, where: str
) -> None:
    """gh-119511: a literal announced as huge and then a close costs neither time nor memory."""
    announce = b"* OK {%d}\r\n" % size if where == "greeting" else (
        b"* 1 FETCH (BODY[] {%d}\r\n" % size
    )
    script = [announce, b"x" * 5000, Close()]
    if where == "greeting":
        server = imap_server(greeting=script)
    else:
        client = connect(mw.IMAP4, imap_server({"NOOP": script}))
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(mw.IMAP4.abort):
            if where == "greeting":
                mw.IMAP4(*server.address, timeout=TIMEOUT)
            else:
                client.noop()
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 16 * 1024 * 1024


# == state, data shapes and untagged responses: identical to the stdlib =========================


def test_state_transitions(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    server = imap_server()
    client = connect(mod.IMAP4, server)
    assert client.state == "NONAUTH"
    with pytest.raises(mod.IMAP4.error) as info:
        client.fetch("1", "(FLAGS)")
    assert str(info.value) == (
        "command FETCH illegal in state NONAUTH, only allowed in states SELECTED"
    )
    with pytest.raises(mod.IMAP4.error) as info:
        client.uid("FETCH", "1", "(FLAGS)")
    assert str(info.value) == (
        "command FETCH illegal in state NONAUTH, only allowed in states SELECTED"
    )
    assert client.login("user", "pass") == ("OK", [b"LOGIN completed"])
    assert client.state == "AUTH"
    with pytest.raises(mod.IMAP4.error) as info:
        client.login("user", "pass")
    assert str(info.value) == (
        "command LOGIN illegal in state AUTH, only allowed in states NONAUTH"
    )
    assert client.select() == ("OK", [b"2"])
    assert client.state == "SELECTED" and not client.is_readonly
    assert client.close() == ("OK", [b"CLOSE completed"])
    assert client.state == "AUTH"
    assert client.select("INBOX", readonly=True) == ("OK", [b"2"])
    assert client.state == "SELECTED" and client.is_readonly
    assert client.unselect() == ("OK", [b"UNSELECT completed"])
    assert client.state == "AUTH"
    assert client.logout() == ("BYE", [b"IMAP4ref1 Server logging out"])
    assert client.state == "LOGOUT"
    server.join()
    names = server.names
    assert names[names.index("LOGIN") :] == [
        *(["LOGIN", "CAPABILITY"] if mod is mw else ["LOGIN"]),
        "SELECT", "CLOSE", "EXAMINE", "UNSELECT", "LOGOUT",
    ]  # fmt: skip
    assert server.last("EXAMINE").raw == b"EXAMINE INBOX"


def test_untagged_responses_accumulate(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    replies = iter(
        [
            b"* 3 EXISTS\r\n* 1 RECENT\r\n* OK [ALERT] first\r\n",
            b"* 4 EXISTS\r\n* 2 RECENT\r\n* NO [ALERT] second\r\n",
            b"* 7 RECENT\r\n",
            b"",
        ]
    )

    def noop(session: Session, command: Command) -> None:
        ok(next(replies))(session, command)

    client = connect(mod.IMAP4, imap_server({"NOOP": noop}))
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.untagged_responses == {
        "EXISTS": [b"3", b"4"],
        "RECENT": [b"1", b"2"],
        "ALERT": [b"", b""],
        "NO": [b"[ALERT] second"],
    }
    assert client.response("EXISTS") == ("EXISTS", [b"3", b"4"])
    assert client.response("exists") == ("exists", [None])
    assert client.recent() == ("OK", [b"1", b"2"])  # no NOOP needed
    assert client.recent() == ("OK", [b"7"])  # prompted with a NOOP
    assert client.recent() == ("OK", [None])
    assert client.response("ALERT") == ("ALERT", [b"", b""])
    assert client.untagged_responses == {}


DATA_SHAPES = [
    ("AUTH", "capability", (), {}, b"CAPABILITY", ("OK", [b"IMAP4rev1 IDLE ENABLE"])),
    ("AUTH", "namespace", (), {"NAMESPACE": ok(b'* NAMESPACE (("" "/")) NIL NIL\r\n')},
     b"NAMESPACE", ("OK", [b'(("" "/")) NIL NIL'])),
    ("AUTH", "getquotaroot", ("INBOX",),
     {"GETQUOTAROOT": ok(b'* QUOTAROOT INBOX ""\r\n* QUOTA "" (STORAGE 10 512)\r\n')},
     b"GETQUOTAROOT INBOX", ("OK", [[b'INBOX ""'], [b'"" (STORAGE 10 512)']])),
    ("AUTH", "getquota", ("#news",), {"GETQUOTA": ok(b'* QUOTA "" (STORAGE 10 512)\r\n')},
     b"GETQUOTA #news", ("OK", [b'"" (STORAGE 10 512)'])),
    ("AUTH", "getacl", ("INBOX",), {"GETACL": ok(b"* ACL INBOX Fred rwipslxetad\r\n")},
     b"GETACL INBOX", ("OK", [b"INBOX Fred rwipslxetad"])),
    ("AUTH", "myrights", ("INBOX",), {"MYRIGHTS": ok(b"* MYRIGHTS INBOX rwiptsldaex\r\n")},
     b"MYRIGHTS INBOX", ("OK", [b"INBOX rwiptsldaex"])),
    ("AUTH", "list", (),
     {"LIST": ok(b'* LIST (\\Noselect) "/" ""\r\n* LIST (\\Unmarked) "/" "~/Mail/foo"\r\n')},
     b'LIST "" *', ("OK", [b'(\\Noselect) "/" ""', b'(\\Unmarked) "/" "~/Mail/foo"'])),
    ("AUTH", "lsub", (), {"LSUB": ok(b'* LSUB () "." #news.comp.mail.mime\r\n'
                                      b'* LSUB () "." #news.comp.mail.misc\r\n')},
     b'LSUB "" *', ("OK", [b'() "." #news.comp.mail.mime', b'() "." #news.comp.mail.misc'])),
    ("AUTH", "status", ("blurdybloop", "(UIDNEXT MESSAGES)"),
     {"STATUS": ok(b"* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r\n")},
     b"STATUS blurdybloop (UIDNEXT MESSAGES)",
     ("OK", [b"blurdybloop (MESSAGES 231 UIDNEXT 44292)"])),
    ("AUTH", "create", ("owatagusiam/blurdybloop",), {}, b"CREATE owatagusiam/blurdybloop",
     ("OK", [b"CREATE completed"])),
    ("AUTH", "delete", ("blurdybloop",), {}, b"DELETE blurdybloop", ("OK", [b"DELETE completed"])),
    ("AUTH", "rename", ("blurdybloop", "sarasoop"), {}, b"RENAME blurdybloop sarasoop",
     ("OK", [b"RENAME completed"])),
    ("AUTH", "subscribe", ("#news.comp.mail.mime",), {}, b"SUBSCRIBE #news.comp.mail.mime",
     ("OK", [b"SUBSCRIBE completed"])),
    ("AUTH", "unsubscribe", ("#news",), {}, b"UNSUBSCRIBE #news",
     ("OK", [b"UNSUBSCRIBE completed"])),
    ("AUTH", "setacl", ("INBOX", "Fred", "rwipslxetad"), {}, b"SETACL INBOX Fred rwipslxetad",
     ("OK", [b"SETACL completed"])),
    ("AUTH", "deleteacl", ("INBOX", "Fred"), {}, b"DELETEACL INBOX Fred",
     ("OK", [b"DELETEACL completed"])),
    ("AUTH", "setquota", ('""', "(STORAGE 512)"),
     {"SETQUOTA": ok(b'* QUOTA "" (STORAGE 10 512)\r\n')},
     b'SETQUOTA "" (STORAGE 512)', ("OK", [b'"" (STORAGE 10 512)'])),
    ("AUTH", "proxyauth", ("user",), {}, b"PROXYAUTH user", ("OK", [b"PROXYAUTH completed"])),
    ("AUTH", "enable", ("CONDSTORE",), {"ENABLE": ok(b"* ENABLED CONDSTORE\r\n")},
     b"ENABLE CONDSTORE", ("OK", [b"ENABLE completed"])),
    ("AUTH", "getannotation", ("INBOX", "/comment", "value.shared"),
     {"GETANNOTATION": ok(b'* ANNOTATION INBOX "/comment" ("value.shared" "x")\r\n')},
     b"GETANNOTATION INBOX /comment value.shared",
     ("OK", [b'INBOX "/comment" ("value.shared" "x")'])),
    ("SELECTED", "check", (), {}, b"CHECK", ("OK", [b"CHECK completed"])),
    ("SELECTED", "noop", (), {"NOOP": ok(b"* 4 EXISTS\r\n")}, b"NOOP", ("OK", [b"NOOP completed"])),
    ("SELECTED", "expunge", (),
     {"EXPUNGE": ok(b"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 5 EXPUNGE\r\n* 8 EXPUNGE\r\n")},
     b"EXPUNGE", ("OK", [b"3", b"3", b"5", b"8"])),
    ("SELECTED", "copy", ("2:4", "MEETING"), {}, b"COPY 2:4 MEETING", ("OK", [b"COPY completed"])),
    ("SELECTED", "store", ("2:4", "+FLAGS", "(\\Deleted)"),
     {"STORE": ok(b"* 2 FETCH (FLAGS (\\Deleted \\Seen))\r\n* 3 FETCH (FLAGS (\\Deleted))\r\n")},
     b"STORE 2:4 +FLAGS (\\Deleted)",
     ("OK", [b"2 (FLAGS (\\Deleted \\Seen))", b"3 (FLAGS (\\Deleted))"])),
    ("SELECTED", "fetch", ("2:4", "(FLAGS)"), {"FETCH": ok(b"* 2 FETCH (FLAGS (\\Seen))\r\n")},
     b"FETCH 2:4 (FLAGS)", ("OK", [b"2 (FLAGS (\\Seen))"])),
    ("SELECTED", "fetch", ("2:4", "(FLAGS)"), {}, b"FETCH 2:4 (FLAGS)", ("OK", [None])),
    ("SELECTED", "fetch", ("2:4", "(FLAGS)"), {"FETCH": ok(status="NO", text="no such message")},
     b"FETCH 2:4 (FLAGS)", ("NO", [b"no such message"])),
    ("SELECTED", "partial", ("1", "RFC822.TEXT", "0", "10"),
     {"PARTIAL": ok(b'* 1 FETCH (RFC822.TEXT<0.10> "0123456789")\r\n')},
     b"PARTIAL 1 RFC822.TEXT 0 10", ("OK", [b'1 (RFC822.TEXT<0.10> "0123456789")'])),
    ("SELECTED", "search", (None, "FLAGGED", "SINCE", "1-Feb-1994", "NOT", "FROM", '"Smith"'),
     {"SEARCH": ok(b"* SEARCH 2 84 882\r\n")},
     b'SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"', ("OK", [b"2 84 882"])),
    ("SELECTED", "search", (None, "TEXT", '"string not in mailbox"'),
     {"SEARCH": ok(b"* SEARCH\r\n")}, b'SEARCH TEXT "string not in mailbox"', ("OK", [b""])),
    ("SELECTED", "search", ("UTF-8", "TEXT", "XXXXXX"), {"SEARCH": ok(b"* SEARCH 43\r\n")},
     b"SEARCH CHARSET UTF-8 TEXT XXXXXX", ("OK", [b"43"])),
    ("SELECTED", "sort", ("(SUBJECT)", "UTF-8", "SINCE", "1-Feb-1994"),
     {"SORT": ok(b"* SORT 2 84 882\r\n")},
     b"SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994", ("OK", [b"2 84 882"])),
    ("SELECTED", "thread", ("ORDEREDSUBJECT", "UTF-8", "SINCE", "5-MAR-2000"),
     {"THREAD": ok(b"* THREAD (166)(167)(168 (169))\r\n")},
     b"THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000", ("OK", [b"(166)(167)(168 (169))"])),
    ("SELECTED", "uid", ("FETCH", "4827313:4828442", "(FLAGS)"),
     {"UID": ok(b"* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n")},
     b"UID FETCH 4827313:4828442 (FLAGS)", ("OK", [b"23 (FLAGS (\\Seen) UID 4827313)"])),
    ("SELECTED", "uid", ("SEARCH", "ALL"), {"UID": ok(b"* SEARCH 2 84\r\n")},
     b"UID SEARCH ALL", ("OK", [b"2 84"])),
    ("SELECTED", "uid", ("COPY", "1:2", "MEETING"), {}, b"UID COPY 1:2 MEETING", ("OK", [None])),
    ("SELECTED", "uid", ("SORT", "(SUBJECT)", "UTF-8", "ALL"), {"UID": ok(b"* SORT 5 3\r\n")},
     b"UID SORT (SUBJECT) UTF-8 ALL", ("OK", [b"5 3"])),
    ("SELECTED", "close", (), {}, b"CLOSE", ("OK", [b"CLOSE completed"])),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "method", "args", "handlers", "raw", "result"),
    DATA_SHAPES,
    ids=[f"{c[1]}{i}" for i, c in enumerate(DATA_SHAPES)],
)
def test_data_shapes(
    mod: ModuleType, imap_server: StartServer, connect: Connect,
    state: str, method: str, args: tuple[Any, ...], handlers: dict[str, Any], raw: bytes,
    result: Any,
) -> None:  # fmt: skip
    """Commands whose wire form did not change: same bytes out, same result back."""
    client, server = open_client(
        imap_server, connect, mod.IMAP4, state, handlers, capabilities="IMAP4rev1 IDLE ENABLE"
    )
    count = len(server.commands)
    assert getattr(client, method)(*args) == result
    assert server.commands[count].raw == raw
    assert len(server.commands) == count + 1


def test_bad_response(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    client, _ = open_client(
        imap_server, connect, mod.IMAP4, handlers={"FETCH": ok(status="BAD", text="bad set")}
    )
    with pytest.raises(mod.IMAP4.error) as info:
        client.fetch("1", "(FLAGS)")
    assert str(info.value) == "FETCH command error: BAD [b'bad set']"


def test_bye_aborts(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    client, _ = open_client(
        imap_server, connect, mod.IMAP4, handlers={"NOOP": ok(b"* BYE shutting down\r\n")}
    )
    with pytest.raises(mod.IMAP4.abort) as info:
        client.noop()
    assert str(info.value) == "command: NOOP => shutting down"


def test_with_statement(mod: ModuleType, imap_server: StartServer) -> None:
    server = imap_server()
    with mod.IMAP4(*server.address, timeout=TIMEOUT) as client:
        client.login("user", "pass")
    assert client.state == "LOGOUT"
    server.join()
    assert server.names[-1] == "LOGOUT"
    assert server.last("LOGIN").args == ["user", '"pass"']

    server = imap_server()
    with mod.IMAP4(*server.address, timeout=TIMEOUT) as client:
        client.login("user", "pass")
        client.logout()  # explicitly: fine, and no second LOGOUT
    server.join()
    assert server.names.count("LOGOUT") == 1


def test_login_failure(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    server = imap_server({"LOGIN": ok(status="NO", text="[LOGIN] failed")})
    client = connect(mod.IMAP4, server)
    with pytest.raises(mod.IMAP4.error, match=r"\[LOGIN\] failed") as info:
        client.login("user", "wrongpass")
    assert client.state == "NONAUTH"
    if mod is mw:
        assert str(info.value) == "[LOGIN] failed"  # 5.3: decoded, not the bytes' repr


@pytest.mark.parametrize("answer", [b"fake", "fake"], ids=["bytes", "str"])
def test_authenticate(
    mod: ModuleType, imap_server: StartServer, connect: Connect, answer: Any
) -> None:
    def authenticate(session: Session, command: Command) -> None:
        session.continuation(b"Y2hhbGxlbmdl")
        session.state["answer"] = session.readline()
        session.tagged(command, "OK", "FAKEAUTH successful")

    server = imap_server({"AUTHENTICATE": authenticate})
    client = connect(mod.IMAP4, server)
    challenges = []

    def authobject(challenge: bytes) -> Any:
        challenges.append(challenge)
        return answer

    assert client.authenticate("myauth", authobject) == ("OK", [b"FAKEAUTH successful"])
    assert challenges == [b"challenge"]
    assert client.state == "AUTH"
    assert server.last("AUTHENTICATE").raw == b"AUTHENTICATE MYAUTH"
    assert server.session is not None and server.session.state["answer"] == b"ZmFrZQ=="


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("+", "[AUTHENTICATIONFAILED] aborted"),
        ("NO", "unrecognized authentication type METHOD"),
    ],
    ids=["aborted", "refused"],
)
def test_authenticate_failures(
    mod: ModuleType, imap_server: StartServer, connect: Connect, reply: str, message: str
) -> None:
    def authenticate(session: Session, command: Command) -> None:
        if reply == "NO":
            session.tagged(command, "NO", message)
            return
        session.continuation()
        answer = session.readline()
        session.tagged(command, "NO" if answer == b"*" else "OK", message)

    client = connect(mod.IMAP4, imap_server({"AUTHENTICATE": authenticate}))
    with pytest.raises(mod.IMAP4.error) as info:
        client.authenticate("METHOD", lambda challenge: None)
    assert str(info.value) == message
    assert client.state == "NONAUTH"


@pytest.mark.parametrize("fault", ["challenge", "authobject"])
def test_malformed_challenge_cancels_the_exchange(
    imap_server: StartServer, connect: Connect, fault: str
) -> None:
    """imap-auth-cancel: when no answer can be made to a challenge (it is not base64, or the
    authobject raised), mailwire answers "*" and reads the server's reply before the error
    propagates; the stdlib leaves the server waiting, so the next command goes to it as the
    answer. A malformed challenge raises IMAP4.error, which is also the binascii.Error the
    stdlib raises."""

    def authenticate(session: Session, command: Command) -> None:
        session.continuation(b"!!!not base64" if fault == "challenge" else b"")
        answer = session.readline()
        session.state["answer"] = answer
        session.tagged(command, "BAD" if answer == b"*" else "OK", "done")

    client, server = open_client(
        imap_server, connect, state="NONAUTH", handlers={"AUTHENTICATE": authenticate}
    )

    def authobject(challenge: bytes) -> bytes:
        raise KeyError("no credentials")

    expected: type[Exception] = mw.IMAP4.error if fault == "challenge" else KeyError
    with pytest.raises(expected) as info:
        client.authenticate("XTEST", authobject if fault == "authobject" else lambda c: b"x")
    if fault == "challenge":
        assert isinstance(info.value, binascii.Error)
        assert "malformed AUTHENTICATE challenge" in str(info.value)
    assert server.session is not None and server.session.state["answer"] == b"*"
    assert client.state == "NONAUTH"
    assert client.tagged_commands == {}
    assert client.noop() == ("OK", [b"NOOP completed"])


CRAM_CHALLENGE = b"<1896.697170952@postoffice.example.net>"


def cram_md5_handler(password: bytes) -> Callable[[Session, Command], None]:
    def authenticate(session: Session, command: Command) -> None:
        session.continuation(base64.b64encode(CRAM_CHALLENGE))
        line = session.readline(timeout=None)
        if line == b"*":
            session.tagged(command, "NO", "CRAM-MD5 aborted")
            return
        answer = base64.b64decode(line)
        user, _, digest = answer.partition(b" ")
        expected = hmac.new(password, CRAM_CHALLENGE, "md5").hexdigest().encode()
        good = user == b"tim" and digest == expected
        session.tagged(command, "OK" if good else "NO", "CRAM-MD5 " + ("ok" if good else "bad"))

    return authenticate


@pytest.mark.parametrize(
    "password", ["tanstaaftanstaaf", b"tanstaaftanstaaf", "p\u00e4ssw\u00f6rd"],
    ids=["str", "bytes", "utf-8"],
)
def test_login_cram_md5(
    mod: ModuleType, imap_server: StartServer, connect: Connect, password: Any
) -> None:
    secret = password.encode() if isinstance(password, str) else password
    server = imap_server({"AUTHENTICATE": cram_md5_handler(secret)})
    client = connect(mod.IMAP4, server)
    assert "AUTH=CRAM-MD5" in client.capabilities
    assert client.login_cram_md5("tim", password) == ("OK", [b"CRAM-MD5 ok"])
    assert client.state == "AUTH"
    assert server.last("AUTHENTICATE").raw == b"AUTHENTICATE CRAM-MD5"


def test_login_cram_md5_without_md5(
    imap_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A FIPS build: HMAC-MD5 raises ValueError (5.3)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("[digital envelope routines] unsupported")

    server = imap_server({"AUTHENTICATE": cram_md5_handler(b"x")})
    client = connect(mw.IMAP4, server)
    for name in ("new", "HMAC", "digest"):
        monkeypatch.setattr(hmac, name, refuse)
    with pytest.raises(mw.IMAP4.error, match=r"CRAM-MD5 authentication is not supported"):
        client.login_cram_md5("tim", b"tanstaaftanstaaf")


def test_readonly(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    client, _ = open_client(
        imap_server, connect, mod.IMAP4, "AUTH",
        {"SELECT": ok(b"* 2 EXISTS\r\n", text="[READ-ONLY] SELECT completed")},
    )  # fmt: skip
    with pytest.raises(mod.IMAP4.readonly) as info:
        client.select("INBOX")
    if mod is mw:
        assert str(info.value) == "'INBOX' is not writable"
        with pytest.raises(mw.IMAP4.readonly) as info:
            client.select(b"INBOX")
        assert str(info.value) == "b'INBOX' is not writable"


def test_uid_unknown_command(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server()
    client = connect(mw.IMAP4, server)  # NONAUTH: the name is checked before the state
    with pytest.raises(mw.IMAP4.error) as info:
        client.uid("bogus", "1")
    assert str(info.value) == "Unknown IMAP4 UID command: 'BOGUS'"
    with pytest.raises(mw.IMAP4.error) as info:
        client.uid(b"bogus", "1")
    assert str(info.value) == "Unknown IMAP4 UID command: b'BOGUS'"
    assert server.names == ["CAPABILITY"]


# == fetch: literals, runs, and the same results on every reading path ============================

BIG = bytes(range(256)) * 1200

FETCH_1_3 = (
    b"* 1 FETCH (UID 11 BODY[] {12}\r\nhello\r\nworld)\r\n"
    b"* 2 FETCH (FLAGS (\\Seen))\r\n"
    b"* 2 FETCH (BODY[HEADER] {5}\r\nhead1 BODY[TEXT] {0}\r\n)\r\n"
    b"* 3 FETCH (BODY[] {3}\r\n{1} UID 13)\r\n"
    b"* 4 EXISTS\r\n"
)
FETCH_1_3_DATA = [
    (b"1 (UID 11 BODY[] {12}", b"hello\r\nworld"), b")",
    b"2 (FLAGS (\\Seen))",
    (b"2 (BODY[HEADER] {5}", b"head1"), (b" BODY[TEXT] {0}", b""), b")",
    (b"3 (BODY[] {3}", b"{1}"), b" UID 13)",
]  # fmt: skip
FETCH_RUN = b"".join(
    b"* 100 FETCH (UID 1100 BODY[] {4}\r\nabcd)\r\n"
    if i == 100
    else b"* %d FETCH (UID %d FLAGS (\\Seen))\r\n" % (i, 1000 + i)
    for i in range(1, 201)
)
FETCH_RUN_DATA: list[Any] = []
for _i in range(1, 201):
    if _i == 100:
        FETCH_RUN_DATA += [(b"100 (UID 1100 BODY[] {4}", b"abcd"), b")"]
    else:
        FETCH_RUN_DATA.append(b"%d (UID %d FLAGS (\\Seen))" % (_i, 1000 + _i))


def scenario_handlers() -> dict[str, Any]:
    def fetch(session: Session, command: Command) -> None:
        which = command.args[0]
        replies = {
            "1:3": FETCH_1_3,
            "4": b"* 4 FETCH (BODY[] {%d}\r\n" % len(BIG) + BIG + b")\r\n",
            "1:200": FETCH_RUN,
            "99": b"",
            "5": b"* 5 FETCH (UID 5 BODY[] {3}\r\nabc FLAGS (\\Seen))\r\n",
        }
        if which == "98":
            session.tagged(command, "NO", "no such message")
        elif which == "97":
            session.tagged(command, "BAD", "bad sequence")
        else:
            session.send(replies[which] + command.tag + b" OK FETCH completed\r\n")

    return {
        "FETCH": fetch,
        "NOOP": ok(b"* 5 RECENT\r\n* 6 EXISTS\r\n* OK [ALERT] hello\r\n"),
        "CHECK": ok(b"* 2 FETCH (FLAGS (\\Deleted))\r\n"),
        "SEARCH": ok(b"* SEARCH 1 2 3\r\n"),
    }


def run_scenario(client: Any) -> list[Any]:
    """The same conversation for every client class; returns what was observed."""
    seen: list[Any] = []

    def note(value: Any) -> None:
        seen.append(copy.deepcopy(value))  # select() hands out a live list, for one

    note(client.login("user", "pass"))
    note(client.select())
    note(client.response("FLAGS"))
    note(client.recent())
    note(client.fetch("1:3", "(UID BODY[])"))
    note(client.response("EXISTS"))
    note(client.fetch("4", "(BODY[])"))
    note(client.fetch("5", "(UID BODY[] FLAGS)"))
    note(client.check())  # an unsolicited FETCH, which the next fetch returns first
    note(client.fetch("5", "(UID BODY[] FLAGS)"))
    note(client.fetch("1:200", "(UID FLAGS)"))
    note(client.fetch("99", "(FLAGS)"))
    note(client.fetch("98", "(FLAGS)"))
    try:
        client.fetch("97", "(FLAGS)")
    except client.error as exc:
        note(("error", str(exc)))
    note(client.noop())
    note(client.recent())
    note(client.untagged_responses)
    note(client.search(None, "ALL"))
    note(client.logout())
    note(client.state)
    return seen


EXPECTED_SCENARIO = [
    ("OK", [b"LOGIN completed"]),
    ("OK", [b"2"]),
    ("FLAGS", [b"(\\Answered \\Flagged \\Deleted \\Seen)"]),
    ("OK", [b"0"]),
    ("OK", FETCH_1_3_DATA),
    ("EXISTS", [b"2", b"4"]),
    ("OK", [(b"4 (BODY[] {%d}" % len(BIG), BIG), b")"]),
    ("OK", [(b"5 (UID 5 BODY[] {3}", b"abc"), b" FLAGS (\\Seen))"]),
    ("OK", [b"CHECK completed"]),
    ("OK", [b"2 (FLAGS (\\Deleted))", (b"5 (UID 5 BODY[] {3}", b"abc"), b" FLAGS (\\Seen))"]),
    ("OK", FETCH_RUN_DATA),
    ("OK", [None]),
    ("NO", [b"no such message"]),
    ("error", "FETCH command error: BAD [b'bad sequence']"),
    ("OK", [b"NOOP completed"]),
    ("OK", [b"5"]),
    {"READ-WRITE": [b""], "EXISTS": [b"6"], "OK": [b"[ALERT] hello"], "ALERT": [b""]},
    ("OK", [b"1 2 3"]),
    ("BYE", [b"IMAP4ref1 Server logging out"]),
    "LOGOUT",
]


class ReadlineOverride(mw.IMAP4):
    def readline(self) -> bytes:
        return super().readline()


class ReadOverride(mw.IMAP4):
    def read(self, size: int) -> bytes:
        return super().read(size)


class GetLineOverride(mw.IMAP4):
    def _get_line(self) -> bytes:
        return super()._get_line()  # type: ignore[no-any-return]


class ImapclientStyle(mw.IMAP4):
    """How imapclient's IMAP4_TLS subclasses the stdlib: its own file, read, readline."""

    def open(self, host: str = "", port: int = 143, timeout: Optional[float] = None) -> None:
        self.host = host
        self.port = port
        self.sock = self._create_socket(timeout)
        self.file = self.sock.makefile("rb")

    def read(self, size: int) -> bytes:
        return self.file.read(size)  # type: ignore[no-any-return]

    def readline(self) -> bytes:
        return self.file.readline()  # type: ignore[no-any-return]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown(self) -> None:
        self.file.close()
        self.sock.close()


VARIANTS = {
    "stdlib": std_imaplib.IMAP4,
    "mailwire": mw.IMAP4,
    "readline-override": ReadlineOverride,
    "read-override": ReadOverride,
    "_get_line-override": GetLineOverride,
    "file-replaced": mw.IMAP4,
    "imapclient-style": ImapclientStyle,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fetch_scenario(
    imap_server: StartServer, connect: Connect, variant: str
) -> None:
    server = imap_server(scenario_handlers())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client = connect(VARIANTS[variant], server)
        if variant == "file-replaced":
            client.file = client.sock.makefile("rb")
        seen = run_scenario(client)
    for index, (got, expected) in enumerate(zip(seen, EXPECTED_SCENARIO)):
        assert got == expected, f"step {index}"
    assert len(seen) == len(EXPECTED_SCENARIO)


@pytest.mark.parametrize("where", ["class", "instance", "patched"])
@pytest.mark.parametrize(
    "hook",
    [
        "_get_response",
        "_command_complete",
        "_append_untagged",
        "_command",
        "_new_tag",
        "_simple_command",
        "_untagged_response",
    ],
)
def test_overridden_reading_hooks_see_every_response(
    imap_server: StartServer, connect: Connect, where: str, hook: str
) -> None:
    """Overriding a method that reads replies, or one that sends a command and hands its
    result back, turns the block paths off: the override is called as often as when a
    readline override forces the line-by-line path (the stdlib's way), and the results do
    not change."""

    def run(cls: Any) -> tuple[list[Any], int]:
        calls: list[int] = []
        if where == "patched":  # mock.patch.object(IMAP4, hook, ...), on a live class
            unpatched = getattr(cls, hook)

            def spy(self: Any, *args: Any) -> Any:
                calls.append(1)
                return unpatched(self, *args)

            with mock.patch.object(cls, hook, spy), warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                seen = run_scenario(connect(cls, imap_server(scenario_handlers())))
            return seen, len(calls)
        if where == "class":

            def counting(self: Any, *args: Any) -> Any:
                calls.append(1)
                return getattr(cls, hook)(self, *args)

            counting_cls = type("Counting", (cls,), {hook: counting})
            client = connect(counting_cls, imap_server(scenario_handlers()))
        else:
            client = connect(cls, imap_server(scenario_handlers()))
            original = getattr(client, hook)

            def counting_bound(*args: Any) -> Any:
                calls.append(1)
                return original(*args)

            setattr(client, hook, counting_bound)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            seen = run_scenario(client)
        return seen, len(calls)

    seen, calls = run(mw.IMAP4)
    expected_seen, expected_calls = run(ReadlineOverride)
    assert seen == expected_seen == EXPECTED_SCENARIO
    assert calls == expected_calls > 0


@pytest.mark.parametrize("mod", [std_imaplib, mw], ids=["stdlib", "mailwire"])
def test_one_byte_trailers_are_shared_objects(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    """The ")" after a literal is CPython's shared one-byte object, as the stdlib's slice gives,
    not a new object per message (tens of bytes each on a large fetch)."""
    reply = b"".join(b"* %d FETCH (BODY[] {3}\r\nabc)\r\n" % i for i in range(1, 40))
    server = imap_server({"FETCH": ok(reply)})
    client = connect(mod.IMAP4, server)
    client.login("user", "pass")
    client.select()
    typ, data = client.fetch("1:*", "(BODY[])")
    assert typ == "OK" and len(data) == 78
    shared = b")\r\n"[:1]
    assert all(item is shared for item in data[1::2])


def test_file_attribute_without_warnings(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(scenario_handlers())
    client = connect(mw.IMAP4, server)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        original = client.file
        assert original is not None and hasattr(original, "readline")
        replacement = client.sock.makefile("rb")
        client.file = replacement
        assert client.file is replacement
        assert not getattr(original, "closed", False)  # setting does not close the old one
        assert run_scenario(client) == EXPECTED_SCENARIO


def test_shutdown_of_a_stand_in_socket(
    mod: ModuleType, imap_server: StartServer, clients: list[Any]
) -> None:
    """An overridden ``open`` may put an object with only the methods imaplib calls in
    ``sock`` (no ``fileno``); ``logout`` shuts it down as the stdlib does."""

    class StandInSocket:
        def __init__(self, sock: socket.socket) -> None:
            self.sendall = sock.sendall
            self.makefile = sock.makefile
            self.shutdown = sock.shutdown
            self.close = sock.close

    class StandIn(mod.IMAP4):  # type: ignore[misc, name-defined]
        def _create_socket(self, timeout: Any = None) -> Any:
            return StandInSocket(socket.create_connection((self.host, self.port), timeout))

    server = imap_server()
    client = StandIn(*server.address, timeout=TIMEOUT)
    clients.append(client)
    assert client.logout()[0] == "BYE"
    server.join()


def test_shutdown_with_file_none(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server()
    client = connect(mw.IMAP4, server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.file = None
    client.shutdown()
    server.join()


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_debug_levels(
    imap_server: StartServer, capsys: pytest.CaptureFixture[str], monkeypatch: Any, level: int
) -> None:
    server = imap_server(scenario_handlers())
    monkeypatch.setattr(mw, "Debug", level)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client = mw.IMAP4(*server.address, timeout=TIMEOUT)
        try:
            assert client.debug == level
            assert run_scenario(client) == EXPECTED_SCENARIO
        finally:
            with contextlib.suppress(OSError):
                client.shutdown()
    err = capsys.readouterr().err
    assert err
    if level >= 4:
        assert "FETCH" in err


# == blank lines (5.2, gh-88574) ============================================================


def test_blank_line_after_literal(imap_server: StartServer, connect: Connect) -> None:
    reply = b"* 1 FETCH (BODY[HEADER] {13}\r\nSubject: test\r\n)\r\n"
    client, _ = open_client(imap_server, connect, handlers={"FETCH": ok(reply)})
    assert client.fetch("1", "(BODY[HEADER])") == (
        "OK", [(b"1 (BODY[HEADER] {13}", b"Subject: test"), b")"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("digits", "result"),
    [("0" * 5000 + "3", "abc"), ("9" * 5000, None), ("1" + "0" * 18, None)],
    ids=["leading-zeros", "huge", "ten-to-the-18"],
)
def test_literal_size_of_many_digits(
    imap_server: StartServer, connect: Connect, digits: str, result: Optional[str]
) -> None:
    """A size is a number however many digits it has (int() alone refuses more than 4300),
    and one that is far too large aborts and breaks the connection like any over the limit."""
    reply = b"* 1 FETCH (BODY[] {%s}\r\nabc)\r\n" % digits.encode()
    client, _ = open_client(imap_server, connect, handlers={"FETCH": ok(reply)})
    if result is not None:
        assert client.fetch("1", "(BODY[])") == (
            "OK", [(b"1 (BODY[] {%s}" % digits.encode(), result.encode()), b")"],
        )  # fmt: skip
        assert client.noop()[0] == "OK"
        return
    with pytest.raises(mw.IMAP4.abort) as info:
        client.fetch("1", "(BODY[])")
    assert "literal of 10**18 or more bytes exceeds the limit" in str(info.value)
    with pytest.raises(mw.IMAP4.abort):
        client.noop()


def test_blank_lines_after_literal(imap_server: StartServer, connect: Connect) -> None:
    """Inside an open parenthesis every stray blank line after a literal is skipped."""
    reply = b"* 1 FETCH (BODY[HEADER] {13}\r\nSubject: test\r\n\r\n\r\n)\r\n"
    client, _ = open_client(imap_server, connect, handlers={"FETCH": ok(reply)})
    assert client.fetch("1", "(BODY[HEADER])") == (
        "OK", [(b"1 (BODY[HEADER] {13}", b"Subject: test"), b")"],
    )  # fmt: skip


@pytest.mark.parametrize("where", ["between", "after-literal"])
def test_blank_line_limit_deviation(
    imap_server: StartServer, connect: Connect, where: str
) -> None:
    """imap-blank-line-limit: 16 stray blank lines in a row are skipped, the 17th aborts."""
    head = b"* 1 FETCH (BODY[] {3}\r\nabc" if where == "after-literal" else b""
    tail = b")\r\n" if where == "after-literal" else b""
    replies = {
        count: head + b"\r\n" * count + tail + b"* 2 EXISTS\r\n"
        for count in (mw._MAX_BLANK_LINES, mw._MAX_BLANK_LINES + 1)
    }
    answers = iter((ok(replies[16]), ok(replies[17])))

    def noop(session: Session, command: Command) -> None:
        next(answers)(session, command)

    client, _ = open_client(imap_server, connect, state=AUTH, handlers={"NOOP": noop})
    assert client.noop()[0] == "OK"
    assert client.response("EXISTS") == ("EXISTS", [b"2"])
    with pytest.raises(mw.IMAP4.abort):
        client.noop()


LIST_LITERALS = (
    b'* LIST (\\HasNoChildren) "/" {9}\r\nMy (box)"\r\n'
    b'* LIST (\\HasNoChildren) "/" {3}\r\n((\\\r\n'
)
LIST_LITERALS_DATA = [
    (b'(\\HasNoChildren) "/" {9}', b'My (box)"'), b"",
    (b'(\\HasNoChildren) "/" {3}', b"((\\"), b"",
]  # fmt: skip


def test_literal_terminating_response(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    """A literal at depth 0 keeps its empty trailer: unchanged from the stdlib."""
    client, _ = open_client(imap_server, connect, mod.IMAP4, "AUTH", {"LIST": ok(LIST_LITERALS)})
    assert client.list() == ("OK", LIST_LITERALS_DATA)


def test_blank_lines_between_responses(imap_server: StartServer, connect: Connect) -> None:
    def spaced(reply: bytes) -> bytes:
        return reply.replace(b"\r\n* ", b"\r\n\r\n* ") + b"\r\n\r\n"

    handlers = {
        "LIST": ok(spaced(LIST_LITERALS)),
        "FETCH": ok(spaced(b"* 1 FETCH (BODY[HEADER] {13}\r\nSubject: test\r\n)\r\n"
                           b"* 2 FETCH (FLAGS (\\Seen))\r\n")),
        "NOOP": ok(b"\r\n\r\n\r\n* 3 EXISTS\r\n\r\n"),
    }  # fmt: skip
    client, _ = open_client(imap_server, connect, handlers=handlers, greeting=b"\r\n" + PREAUTH)
    assert client.list() == ("OK", LIST_LITERALS_DATA)
    assert client.fetch("1:2", "(BODY[HEADER])") == (
        "OK", [(b"1 (BODY[HEADER] {13}", b"Subject: test"), b")", b"2 (FLAGS (\\Seen))"],
    )  # fmt: skip
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.response("EXISTS") == ("EXISTS", [b"2", b"3"])


# == argument formatting per method (3.4, 3.5, 2.x) ===========================================

NONAUTH, AUTH, SELECTED = "NONAUTH", "AUTH", "SELECTED"

WIRE_FORMS: list[tuple[str, str, Callable[[Any], Any], bytes]] = [
    ("login-plain", NONAUTH, lambda c: c.login("user", "pass"), b'LOGIN user "pass"'),
    ("login-quoted", NONAUTH, lambda c: c.login("us*r", "p%ss"), b'LOGIN "us*r" "p%ss"'),
    ("login-quoted2", NONAUTH, lambda c: c.login('"user"', '"pass"'),
     b'LOGIN "user" "\\"pass\\""'),
    ("id-none", NONAUTH, lambda c: c.id(), b"ID NIL"),
    ("id-empty", NONAUTH, lambda c: c.id({}), b"ID NIL"),
    ("id-fields", NONAUTH, lambda c: c.id({"name": "imaplib", "version": "3.16"}),
     b'ID ("name" "imaplib" "version" "3.16")'),
    ("id-escapes", NONAUTH, lambda c: c.id({"name": 'my "client"', "os": None}),
     b'ID ("name" "my \\"client\\"" "os" NIL)'),
    ("select-atom", AUTH, lambda c: c.select("Archive"), b"SELECT Archive"),
    ("select-space", AUTH, lambda c: c.select("New folder"), b'SELECT "New folder"'),
    ("select-quoted", AUTH, lambda c: c.select('"New folder"'), b'SELECT "New folder"'),
    ("select-empty", AUTH, lambda c: c.select(""), b'SELECT ""'),
    ("select-injection", AUTH, lambda c: c.select('"a" SELECT evil "'),
     b'SELECT "\\"a\\" SELECT evil \\""'),
    ("select-backslash", AUTH, lambda c: c.select("a\\b"), b'SELECT "a\\\\b"'),
    ("select-mutf7", AUTH, lambda c: c.select("Entw\u00fcrfe"), b"SELECT Entw&APw-rfe"),
    ("select-mutf7-str", AUTH, lambda c: c.select("Entw&APw-rfe"), b"SELECT Entw&APw-rfe"),
    ("select-mutf7-bytes", AUTH, lambda c: c.select(b"Entw&APw-rfe"), b"SELECT Entw&APw-rfe"),
    ("select-ampersand", AUTH, lambda c: c.select("A&B"), b"SELECT A&-B"),
    ("select-control", AUTH, lambda c: c.select("a\x01b"), b"SELECT a&AAE-b"),
    ("examine", AUTH, lambda c: c.select("New folder", readonly=True), b'EXAMINE "New folder"'),
    ("create", AUTH, lambda c: c.create("owatagusiam/"), b"CREATE owatagusiam/"),
    ("create-space", AUTH, lambda c: c.create("New folder"), b'CREATE "New folder"'),
    ("delete", AUTH, lambda c: c.delete("New folder"), b'DELETE "New folder"'),
    ("rename", AUTH, lambda c: c.rename("Old folder", "New folder"),
     b'RENAME "Old folder" "New folder"'),
    ("subscribe", AUTH, lambda c: c.subscribe("New folder"), b'SUBSCRIBE "New folder"'),
    ("unsubscribe", AUTH, lambda c: c.unsubscribe("New folder"), b'UNSUBSCRIBE "New folder"'),
    ("getacl", AUTH, lambda c: c.getacl("New folder"), b'GETACL "New folder"'),
    ("myrights", AUTH, lambda c: c.myrights("New folder"), b'MYRIGHTS "New folder"'),
    ("getquotaroot", AUTH, lambda c: c.getquotaroot("New folder"), b'GETQUOTAROOT "New folder"'),
    ("setacl", AUTH, lambda c: c.setacl("New folder", "Fred", "+lr"),
     b'SETACL "New folder" Fred +lr'),
    ("setacl-quoted", AUTH, lambda c: c.setacl("INBOX", "John Doe", "a b"),
     b'SETACL INBOX "John Doe" "a b"'),
    ("deleteacl", AUTH, lambda c: c.deleteacl("New folder", "John Doe"),
     b'DELETEACL "New folder" "John Doe"'),
    ("proxyauth", AUTH, lambda c: c.proxyauth("us er"), b'PROXYAUTH "us er"'),
    ("getquota", AUTH, lambda c: c.getquota(""), b'GETQUOTA ""'),
    ("getquota-atom", AUTH, lambda c: c.getquota("#news"), b"GETQUOTA #news"),
    ("setquota", AUTH, lambda c: c.setquota("", "STORAGE 512"), b'SETQUOTA "" (STORAGE 512)'),
    ("list-default", AUTH, lambda c: c.list(), b'LIST "" *'),
    ("list-wildcard", AUTH, lambda c: c.list("~/Mail/", "%"), b"LIST ~/Mail/ %"),
    ("list-space-dir", AUTH, lambda c: c.list("New folder", "*"), b'LIST "New folder" *'),
    ("list-space-pattern", AUTH, lambda c: c.list("~/Mail/", "My Folder"),
     b'LIST ~/Mail/ "My Folder"'),
    ("list-mutf7", AUTH, lambda c: c.list("", "Entw\u00fcrfe/%"), b'LIST "" Entw&APw-rfe/%'),
    ("lsub-default", AUTH, lambda c: c.lsub(), b'LSUB "" *'),
    ("lsub-space", AUTH, lambda c: c.lsub("New folder", "%"), b'LSUB "New folder" %'),
    ("status-str", AUTH, lambda c: c.status("New folder", "UIDNEXT MESSAGES"),
     b'STATUS "New folder" (UIDNEXT MESSAGES)'),
    ("status-list", AUTH, lambda c: c.status("blurdybloop", ["UIDNEXT", "MESSAGES"]),
     b"STATUS blurdybloop (UIDNEXT MESSAGES)"),
    ("enable-raw", AUTH, lambda c: c.enable("CONDSTORE X-GOOD-IDEA"),
     b"ENABLE CONDSTORE X-GOOD-IDEA"),
    ("getannotation", AUTH, lambda c: c.getannotation("New folder", "/comment", "value.shared"),
     b'GETANNOTATION "New folder" /comment value.shared'),
    ("setannotation", AUTH,
     lambda c: c.setannotation("New folder", "/comment", '("value.shared" "My comment")'),
     b'SETANNOTATION "New folder" /comment ("value.shared" "My comment")'),
    ("xatom-raw", AUTH, lambda c: c.xatom("XYZZY", "a b", '"c"'), b'XYZZY a b "c"'),
    ("authenticate-upper", NONAUTH, lambda c: c.authenticate("x-mech", lambda ch: b""),
     b"AUTHENTICATE X-MECH"),
    ("copy", SELECTED, lambda c: c.copy("2:4", "MEETING"), b"COPY 2:4 MEETING"),
    ("copy-space", SELECTED, lambda c: c.copy("2:4", "New folder"), b'COPY 2:4 "New folder"'),
    ("copy-structured", SELECTED, lambda c: c.copy([2, (3, 5)], "MEETING"),
     b"COPY 2,3:5 MEETING"),
    ("move", SELECTED, lambda c: c.move("2:4", "MEETING"), b"MOVE 2:4 MEETING"),
    ("move-space", SELECTED, lambda c: c.move("2:4", "New folder"), b'MOVE 2:4 "New folder"'),
    ("move-structured", SELECTED, lambda c: c.move([2, (3, 5)], "MEETING"),
     b"MOVE 2,3:5 MEETING"),
    ("store-flag", SELECTED, lambda c: c.store("2:4", "+FLAGS", "\\Deleted"),
     b"STORE 2:4 +FLAGS (\\Deleted)"),
    ("store-brackets", SELECTED, lambda c: c.store(b"1", "+FLAGS", "[test]"),
     b"STORE 1 +FLAGS ([test])"),
    ("store-list", SELECTED, lambda c: c.store([2, (3, 4)], "+FLAGS", ["\\Deleted", "\\Seen"]),
     b"STORE 2,3:4 +FLAGS (\\Deleted \\Seen)"),
    ("fetch-paren", SELECTED, lambda c: c.fetch("2:4", "FLAGS"), b"FETCH 2:4 (FLAGS)"),
    ("fetch-macro", SELECTED, lambda c: c.fetch("2:4", "ALL"), b"FETCH 2:4 ALL"),
    ("fetch-macro-lower", SELECTED, lambda c: c.fetch("2:4", "fast"), b"FETCH 2:4 fast"),
    ("fetch-nested", SELECTED, lambda c: c.fetch("1", "(BODY[HEADER.FIELDS (DATE FROM)])"),
     b"FETCH 1 (BODY[HEADER.FIELDS (DATE FROM)])"),
    ("fetch-list", SELECTED, lambda c: c.fetch("1", ["UID", "FLAGS"]), b"FETCH 1 (UID FLAGS)"),
    ("fetch-int", SELECTED, lambda c: c.fetch(5, "(FLAGS)"), b"FETCH 5 (FLAGS)"),
    ("fetch-set", SELECTED, lambda c: c.fetch([1, (3, 5), (8, "*")], "(FLAGS)"),
     b"FETCH 1,3:5,8:* (FLAGS)"),
    ("fetch-open", SELECTED, lambda c: c.fetch([(5, None)], "(FLAGS)"), b"FETCH 5:* (FLAGS)"),
    ("fetch-range", SELECTED, lambda c: c.fetch([range(1, 4), 7], "(FLAGS)"),
     b"FETCH 1:3,7 (FLAGS)"),
    ("fetch-step", SELECTED, lambda c: c.fetch([range(1, 10, 2)], "(FLAGS)"),
     b"FETCH 1,3,5,7,9 (FLAGS)"),
    ("fetch-params", SELECTED,
     lambda c: c.fetch("1", "FLAGS BODY[HEADER.FIELDS ?]", params=[["DATE", "FROM"]]),
     b"FETCH 1 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
    ("search-raw", SELECTED, lambda c: c.search(None, "TEXT", '"string not in mailbox"'),
     b'SEARCH TEXT "string not in mailbox"'),
    ("search-charset", SELECTED, lambda c: c.search("UTF-8", "TEXT", "XXXXXX"),
     b"SEARCH CHARSET UTF-8 TEXT XXXXXX"),
    ("search-koi8", SELECTED, lambda c: c.search("KOI8-U", "SUBJECT", '"\u041a\u0438\u0457\u0432"'),
     b"SEARCH CHARSET KOI8-U SUBJECT " + '"\u041a\u0438\u0457\u0432"'.encode("koi8-u")),
    ("search-odd-charset", SELECTED, lambda c: c.search("NF_Z_62-010_(1973)", b"TEXT", b"XXXXXX"),
     b'SEARCH CHARSET "NF_Z_62-010_(1973)" TEXT XXXXXX'),
    ("search-params", SELECTED,
     lambda c: c.search(None, "FROM ? SUBJECT ?", params=["me@host", "trip report"]),
     b'SEARCH FROM me@host SUBJECT "trip report"'),
    ("search-params-set", SELECTED,
     lambda c: c.search(None, "?s KEYWORD ?f LARGER ?", params=[[1, (3, 5)], "$Junk", 1000]),
     b"SEARCH 1,3:5 KEYWORD $Junk LARGER 1000"),
    ("search-question-mark", SELECTED, lambda c: c.search(None, "SUBJECT", '"what?"'),
     b'SEARCH SUBJECT "what?"'),
    ("search-literal-question-mark", SELECTED,
     lambda c: c.search(None, 'SUBJECT "why??" FROM ?', params=["me"]),
     b'SEARCH SUBJECT "why?" FROM me'),
    ("sort", SELECTED, lambda c: c.sort("SUBJECT", "NF_Z_62-010_(1973)", b"TEXT", b'"x"'),
     b'SORT (SUBJECT) "NF_Z_62-010_(1973)" TEXT "x"'),
    ("sort-koi8", SELECTED,
     lambda c: c.sort("(SUBJECT)", "KOI8-U", "TEXT", '"\u041a\u0438\u0457\u0432"'),
     b"SORT (SUBJECT) KOI8-U TEXT " + '"\u041a\u0438\u0457\u0432"'.encode("koi8-u")),
    ("sort-params", SELECTED,
     lambda c: c.sort(["REVERSE", "DATE"], "UTF-8", "SUBJECT ?", params=["trip report"]),
     b'SORT (REVERSE DATE) UTF-8 SUBJECT "trip report"'),
    ("thread", SELECTED,
     lambda c: c.thread("ORDEREDSUBJECT", "NF_Z_62-010_(1973)", b"TEXT", b'"g"'),
     b'THREAD ORDEREDSUBJECT "NF_Z_62-010_(1973)" TEXT "g"'),
    ("thread-params", SELECTED,
     lambda c: c.thread("REFERENCES", "UTF-8", "SUBJECT ?", params=["trip report"]),
     b'THREAD REFERENCES UTF-8 SUBJECT "trip report"'),
    ("partial", SELECTED, lambda c: c.partial("1", "RFC822.TEXT", "0", "10"),
     b"PARTIAL 1 RFC822.TEXT 0 10"),
    ("append", AUTH, lambda c: c.append("New folder", "\\Seen", None, b"data"),
     b'APPEND "New folder" (\\Seen) {4}\r\ndata'),
    ("append-date", AUTH,
     lambda c: c.append("INBOX", "(\\Seen \\Draft)", '"18-May-2033 05:33:20 +0200"', b"x"),
     b'APPEND INBOX (\\Seen \\Draft) "18-May-2033 05:33:20 +0200" {1}\r\nx'),
    # uid() applies the same formatting to its arguments (2.4)
    ("uid-copy", SELECTED, lambda c: c.uid("copy", "4827313:4828442", "New folder"),
     b'UID COPY 4827313:4828442 "New folder"'),
    ("uid-copy-set", SELECTED, lambda c: c.uid("copy", [1, (3, 5)], "MEETING"),
     b"UID COPY 1,3:5 MEETING"),
    ("uid-move-set", SELECTED, lambda c: c.uid("move", [1, (3, 5)], "MEETING"),
     b"UID MOVE 1,3:5 MEETING"),
    ("uid-store", SELECTED, lambda c: c.uid("store", "1:2", "+FLAGS", "\\Deleted"),
     b"UID STORE 1:2 +FLAGS (\\Deleted)"),
    ("uid-store-list", SELECTED, lambda c: c.uid("store", "1:2", "+FLAGS", ["\\Deleted", "\\Seen"]),
     b"UID STORE 1:2 +FLAGS (\\Deleted \\Seen)"),
    ("uid-fetch", SELECTED, lambda c: c.uid("fetch", "1:2", "FLAGS"), b"UID FETCH 1:2 (FLAGS)"),
    ("uid-fetch-macro", SELECTED, lambda c: c.uid("fetch", "1:2", "ALL"), b"UID FETCH 1:2 ALL"),
    ("uid-fetch-params", SELECTED,
     lambda c: c.uid("fetch", "1:2", "BODY[HEADER.FIELDS ?]", params=[["DATE", "FROM"]]),
     b"UID FETCH 1:2 (BODY[HEADER.FIELDS (DATE FROM)])"),
    ("uid-sort", SELECTED,
     lambda c: c.uid("sort", "SUBJECT", "NF_Z_62-010_(1973)", b"TEXT", b'"not in mailbox"'),
     b'UID SORT (SUBJECT) "NF_Z_62-010_(1973)" TEXT "not in mailbox"'),
    ("uid-search-charset", SELECTED,
     lambda c: c.uid("SEARCH", "CHARSET", "UTF-8", "TEXT", "XXXXXX"),
     b"UID SEARCH CHARSET UTF-8 TEXT XXXXXX"),
    ("uid-search-params", SELECTED,
     lambda c: c.uid("SEARCH", "FROM ? SUBJECT ?", params=["me@host", "trip report"]),
     b'UID SEARCH FROM me@host SUBJECT "trip report"'),
    ("uid-thread-params", SELECTED,
     lambda c: c.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT ?", params=["trip report"]),
     b'UID THREAD REFERENCES UTF-8 SUBJECT "trip report"'),
    # the uid= keyword (2.4)
    ("copy-uid", SELECTED, lambda c: c.copy("1:2", "New folder", uid=True),
     b'UID COPY 1:2 "New folder"'),
    ("move-uid", SELECTED, lambda c: c.move("1:2", "MEETING", uid=True), b"UID MOVE 1:2 MEETING"),
    ("fetch-uid", SELECTED, lambda c: c.fetch([1, (3, 5)], ["UID", "FLAGS"], uid=True),
     b"UID FETCH 1,3:5 (UID FLAGS)"),
    ("store-uid", SELECTED, lambda c: c.store("1:2", "-FLAGS", "\\Seen", uid=True),
     b"UID STORE 1:2 -FLAGS (\\Seen)"),
    ("search-uid", SELECTED, lambda c: c.search("UTF-8", "TEXT", "XXXXXX", uid=True),
     b"UID SEARCH CHARSET UTF-8 TEXT XXXXXX"),
    ("sort-uid", SELECTED, lambda c: c.sort("SUBJECT", "UTF-8", "ALL", uid=True),
     b"UID SORT (SUBJECT) UTF-8 ALL"),
    ("thread-uid", SELECTED, lambda c: c.thread("REFERENCES", "UTF-8", "ALL", uid=True),
     b"UID THREAD REFERENCES UTF-8 ALL"),
    ("expunge", SELECTED, lambda c: c.expunge(), b"EXPUNGE"),
    ("expunge-uid", SELECTED, lambda c: c.expunge("3:8", uid=True), b"UID EXPUNGE 3:8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "call", "raw"), [w[1:] for w in WIRE_FORMS], ids=[w[0] for w in WIRE_FORMS]
)
def test_wire_form(
    imap_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch,
    state: str, call: Callable[[Any], Any], raw: bytes,
) -> None:  # fmt: skip
    monkeypatch.setattr(mw, "Commands", dict(mw.Commands))  # xatom registers names
    client, server = open_client(imap_server, connect, state=state)
    count = len(server.commands)
    typ, _ = call(client)
    assert typ == "OK"
    sent = server.commands[count]
    assert sent.raw == raw


UID_RESULTS: list[tuple[str, Callable[[Any], Any], Any]] = [
    ("copy", lambda c: c.copy("1:2", "MEETING", uid=True), ("OK", [b"UID COPY completed"])),
    ("uid-copy", lambda c: c.uid("copy", "1:2", "MEETING"), ("OK", [None])),
    ("move", lambda c: c.move("1:2", "MEETING", uid=True), ("OK", [b"UID MOVE completed"])),
    ("uid-move", lambda c: c.uid("move", "1:2", "MEETING"), ("OK", [None])),
    ("plain-copy", lambda c: c.copy("1:2", "MEETING"), ("OK", [b"COPY completed"])),
    ("plain-move", lambda c: c.move("1:2", "MEETING"), ("OK", [b"MOVE completed"])),
    ("fetch", lambda c: c.fetch("1:2", "(FLAGS)", uid=True),
     ("OK", [b"23 (FLAGS (\\Seen) UID 4827313)", b"24 (FLAGS (\\Seen) UID 4827943)"])),
    ("store", lambda c: c.store("1:2", "+FLAGS", "(\\Seen)", uid=True),
     ("OK", [b"23 (FLAGS (\\Seen) UID 4827313)", b"24 (FLAGS (\\Seen) UID 4827943)"])),
    ("search", lambda c: c.search(None, "ALL", uid=True), ("OK", [b"2 84 882"])),
    ("sort", lambda c: c.sort("(SUBJECT)", "UTF-8", "ALL", uid=True), ("OK", [b"5 3 4 1 2"])),
    ("thread", lambda c: c.thread("REFERENCES", "UTF-8", "ALL", uid=True),
     ("OK", [b"(166)(167)(168)"])),
    ("expunge", lambda c: c.expunge("3:8", uid=True), ("OK", [b"3", b"3", b"5", b"8"])),
    ("plain-expunge", lambda c: c.expunge(), ("OK", [b"3", b"3", b"5", b"8"])),
]  # fmt: skip

UNTAGGED_FOR = {
    "FETCH": (
        b"* 23 FETCH (FLAGS (\\Seen) UID 4827313)\r\n* 24 FETCH (FLAGS (\\Seen) UID 4827943)\r\n"
    ),
    "SEARCH": b"* SEARCH 2 84 882\r\n",
    "SORT": b"* SORT 5 3 4 1 2\r\n",
    "THREAD": b"* THREAD (166)(167)(168)\r\n",
    "EXPUNGE": b"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 5 EXPUNGE\r\n* 8 EXPUNGE\r\n",
}


def uid_aware(session: Session, command: Command) -> None:
    which = command.uid_name.replace("UID ", "")
    untagged = UNTAGGED_FOR.get("FETCH" if which == "STORE" else which, b"")
    ok(untagged)(session, command)


@pytest.mark.parametrize(
    ("call", "result"), [u[1:] for u in UID_RESULTS], ids=[u[0] for u in UID_RESULTS]
)
def test_uid_results(
    imap_server: StartServer, connect: Connect, call: Callable[[Any], Any], result: Any
) -> None:
    handlers = dict.fromkeys(["UID", "COPY", "MOVE", "FETCH", "STORE", "EXPUNGE"], uid_aware)
    client, _ = open_client(imap_server, connect, handlers=handlers)
    assert call(client) == result


def test_expunge_argument_errors(imap_server: StartServer, connect: Connect) -> None:
    client, server = open_client(imap_server, connect)
    count = len(server.commands)
    with pytest.raises(mw.IMAP4.error):
        client.expunge("3:8")
    with pytest.raises(mw.IMAP4.error):
        client.expunge(uid=True)
    assert client.noop()[0] == "OK"
    assert names_after(server, count) == ["NOOP"]


def test_id_result(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server({"ID": ok(b'* ID ("name" "Cyrus" "version" "1.5")\r\n')})
    client = connect(mw.IMAP4, server)
    assert client.id({"name": "imaplib", "version": "3.16"}) == (
        "OK", [b'("name" "Cyrus" "version" "1.5")'],
    )  # fmt: skip
    assert "ID" not in client.untagged_responses
    assert server.last("ID").values() == [["name", "imaplib", "version", "3.16"]]
    server2 = imap_server()
    assert connect(mw.IMAP4, server2).id() == ("OK", [None])


@pytest.mark.parametrize(
    ("user", "password", "answer"),
    [
        ("prem", "pass", b"AHByZW0AcGFzcw=="),
        ("pr\u0119m", "\u017c\u00f3\u0142\u0107", b"AHByxJltAMW8w7PFgsSH"),
        (b"pr\xc4\x99m", b"\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87", b"AHByxJltAMW8w7PFgsSH"),
    ],
    ids=["ascii", "utf-8", "bytes"],
)
def test_login_plain(
    imap_server: StartServer, connect: Connect, user: Any, password: Any, answer: bytes
) -> None:
    def authenticate(session: Session, command: Command) -> None:
        session.continuation()
        session.state["answer"] = session.readline()
        session.tagged(command, "OK", "[CAPABILITY IMAP4rev1 IDLE MOVE] PLAIN completed")

    server = imap_server(
        {"AUTHENTICATE": authenticate}, capabilities="IMAP4rev1 AUTH=PLAIN SASL-IR"
    )
    client = connect(mw.IMAP4, server)
    assert client.login_plain(user, password) == (
        "OK", [b"[CAPABILITY IMAP4rev1 IDLE MOVE] PLAIN completed"],
    )  # fmt: skip
    assert client.state == "AUTH"
    assert client.capabilities == ("IMAP4REV1", "IDLE", "MOVE")
    assert server.last("AUTHENTICATE").raw == b"AUTHENTICATE PLAIN"  # no initial response
    assert server.session is not None and server.session.state["answer"] == answer
    assert base64.b64decode(answer).split(b"\0") == [
        b"", *(x if isinstance(x, bytes) else x.encode() for x in (user, password))
    ]


def test_login_plain_refused(imap_server: StartServer, connect: Connect) -> None:
    def authenticate(session: Session, command: Command) -> None:
        session.continuation()
        session.readline()
        session.tagged(command, "NO", "[AUTHENTICATIONFAILED] Invalid credentials")

    client = connect(mw.IMAP4, imap_server({"AUTHENTICATE": authenticate}))
    with pytest.raises(mw.IMAP4.error, match=r"\[AUTHENTICATIONFAILED\] Invalid credentials"):
        client.login_plain("user", "bad")
    assert client.state == "NONAUTH"


@pytest.mark.parametrize(("user", "password"), [("user\0", "pass"), ("user", b"pa\0ss")])
def test_login_plain_nul(
    imap_server: StartServer, connect: Connect, user: Any, password: Any
) -> None:
    server = imap_server()
    client = connect(mw.IMAP4, server)
    with pytest.raises(ValueError):
        client.login_plain(user, password)
    assert client.noop()[0] == "OK"
    assert server.names == ["CAPABILITY", "NOOP"]


# == NUL, CR and LF (3.2), mailbox controls (4) ================================================

REFUSED: list[tuple[str, str, Callable[[Any], Any], type[BaseException]]] = [
    ("search-crlf", SELECTED, lambda c: c.search(None, "SUBJECT", "a\r\nA1 LOGOUT"), ValueError),
    ("search-nul", SELECTED, lambda c: c.search(None, "X\x00"), ValueError),
    ("search-lf-criteria-bytes", SELECTED, lambda c: c.search(None, b"TEXT\nx"), ValueError),
    ("uid-search-nul", SELECTED, lambda c: c.uid("SEARCH", "a\x00"), ValueError),
    ("xatom", AUTH, lambda c: c.xatom("XCMD", "a\nb"), ValueError),
    ("enable", AUTH, lambda c: c.enable("A\rB"), ValueError),
    ("login-user", NONAUTH, lambda c: c.login("user\r\nA1 LOGOUT", "pass"), ValueError),
    ("login-password", NONAUTH, lambda c: c.login("user", "pa\nss"), ValueError),
    ("fetch-parts", SELECTED, lambda c: c.fetch("1", "BODY[]\r\nX"), ValueError),
    ("store-command", SELECTED, lambda c: c.store("1", "+FLAGS\r\n", "\\Seen"), ValueError),
    ("setacl-who", AUTH, lambda c: c.setacl("INBOX", "a\rb", "lr"), ValueError),
    ("params-crlf", SELECTED, lambda c: c.search(None, "SUBJECT ?", params=["a\r\nb"]), ValueError),
    ("params-too-few", SELECTED, lambda c: c.search(None, "? ?", params=["x"]), TypeError),
    ("params-too-many", SELECTED, lambda c: c.search(None, "?", params=["x", "y"]), TypeError),
    ("set-str-item", SELECTED, lambda c: c.fetch(["7"], "(FLAGS)"), TypeError),
    ("set-float-item", SELECTED, lambda c: c.fetch([(1, 2.9)], "(FLAGS)"), TypeError),
    ("set-triple", SELECTED, lambda c: c.search(None, "?s", params=[[(1, 2, 3)]]), ValueError),
    ("non-ascii-criteria", SELECTED, lambda c: c.search(None, "SUBJECT", "Entw\u00fcrfe"),
     UnicodeEncodeError),
    ("unknown-charset", SELECTED, lambda c: c.search("no-such-charset", "TEXT", "x"), LookupError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "call", "exc"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_refused_before_sending(
    imap_server: StartServer, connect: Connect, monkeypatch: pytest.MonkeyPatch,
    state: str, call: Callable[[Any], Any], exc: type[BaseException],
) -> None:  # fmt: skip
    monkeypatch.setattr(mw, "Commands", dict(mw.Commands))
    client, server = open_client(imap_server, connect, state=state)
    count = len(server.commands)
    with pytest.raises(exc):
        call(client)
    assert client.noop() == ("OK", [b"NOOP completed"])  # the connection is still in step
    client.shutdown()
    server.join()
    assert names_after(server, count) == ["NOOP"]
    assert b"LOGOUT" not in server.wire


def test_refused_append_clears_the_pending_literal(
    imap_server: StartServer, connect: Connect
) -> None:
    client, server = open_client(imap_server, connect, state=AUTH)
    with pytest.raises(ValueError):
        client.append("INBOX", "\\Seen\r\nX", None, b"data")
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert server.last("NOOP").raw == b"NOOP"
    assert server.names == ["CAPABILITY", "NOOP"]


@pytest.mark.parametrize("message", [b"a\x00b\r\nc\rd\ne", b"\r\n\r\n", b"\x00"], ids=repr)
def test_literal_may_carry_nul_cr_lf(
    mod: ModuleType, imap_server: StartServer, connect: Connect, message: bytes
) -> None:
    client, server = open_client(imap_server, connect, mod.IMAP4, AUTH)
    assert client.append("INBOX", None, None, message) == ("OK", [b"APPEND completed"])
    expected = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    assert server.last("APPEND").literals == [expected]


def test_append_translate_line_endings(imap_server: StartServer, connect: Connect) -> None:
    client, server = open_client(imap_server, connect, state=AUTH)
    message = b"a\rb\nc\r\nd"
    client.append("INBOX", None, None, message)
    assert server.last("APPEND").literals == [b"a\r\nb\r\nc\r\nd"]
    client.append("INBOX", None, None, message, translate_line_endings=False)
    assert server.last("APPEND").literals == [message]
    assert server.last("APPEND").raw == b"APPEND INBOX {8}\r\n" + message
    client.append("New folder", "\\Seen", None, b"data")
    assert server.last("APPEND").args == ['"New folder"', "(\\Seen)", "{4}", b"data"]


def test_append_refused_literal(
    mod: ModuleType, imap_server: StartServer, connect: Connect
) -> None:
    """A server may answer the literal announcement with NO: nothing more is sent."""
    client, server = open_client(
        imap_server, connect, mod.IMAP4, AUTH,
        literal_reply=b"{tag} NO [TRYCREATE] no such mailbox\r\n",
    )  # fmt: skip
    assert client.append("Nope", None, None, b"data") == (
        "NO", [b"[TRYCREATE] no such mailbox"],
    )  # fmt: skip
    assert client.noop() == ("OK", [b"NOOP completed"])
    client.shutdown()
    server.join()
    assert server.names == ["CAPABILITY", "APPEND", "NOOP"]
    assert server.last("APPEND").refused and b"data" not in server.wire


def test_control_characters_in_mailbox_names(imap_server: StartServer, connect: Connect) -> None:
    """ASCII mode: every C0 control and DEL is sent modified-UTF-7 encoded, never raw."""
    client, server = open_client(imap_server, connect, state=AUTH)
    for c in [*map(chr, range(32)), "\x7f"]:
        assert client.select(f"a{c}b")[0] == "OK"
        (name,) = server.last("SELECT").args
        assert isinstance(name, str)
        assert all(0x20 <= ord(ch) < 0x7F for ch in name), repr(name)
        assert decode_mutf7(name.strip('"')) == f"a{c}b"


def decode_mutf7(name: str) -> str:
    """Our own reading of RFC 3501 section 5.1.3, for the test above."""
    out, i = [], 0
    while i < len(name):
        if name[i] != "&":
            out.append(name[i])
            i += 1
            continue
        end = name.index("-", i)
        chunk = name[i + 1 : end].replace(",", "/")
        if chunk:
            raw = base64.b64decode(chunk + "=" * (-len(chunk) % 4))
            out.append(raw.decode("utf-16-be"))
        else:
            out.append("&")
        i = end + 1
    return "".join(out)


# == UTF-8 mode (3.6, 4) =================================================================


def test_utf8_mode(imap_server: StartServer, connect: Connect) -> None:
    client, server = open_client(imap_server, connect, state=AUTH)
    assert client.select("Entw\u00fcrfe")[0] == "OK"
    assert server.last("SELECT").raw == b"SELECT Entw&APw-rfe"
    assert client._encoding == "ascii" and not client.utf8_enabled
    client.unselect()  # ENABLE is valid in AUTH only
    assert client.enable("UTF8=ACCEPT") == ("OK", [b"ENABLE completed"])
    assert server.last("ENABLE").args == ["UTF8=ACCEPT"]
    assert client.utf8_enabled and client._encoding == "utf-8"

    assert client.select("Entw\u00fcrfe")[0] == "OK"
    assert server.last("SELECT").raw == 'SELECT "Entw\u00fcrfe"'.encode()
    assert server.last("SELECT").args == ['"Entw\u00fcrfe"']

    message = "Subject: \u00fc\u00f1\u00ed\u00a9\u00f6\u00f0\u00e9\n".encode()
    assert client.append(None, None, None, message)[0] == "OK"
    body = "Subject: \u00fc\u00f1\u00ed\u00a9\u00f6\u00f0\u00e9\r\n".encode()
    assert len(body) == 25
    append = server.last("APPEND")
    assert append.raw == b"APPEND INBOX UTF8 (~{25}\r\n" + body + b")"
    assert append.args == ["INBOX", "UTF8", "(~{25}", body, ")"]
    assert append.literals == [body]

    with pytest.raises(mw.IMAP4.error, match=r"charset.*UTF8"):
        client.search("UTF-8", "ALL")
    with pytest.raises(ValueError):
        client.select("a\rb")  # quoted, not encoded, in UTF-8 mode


def test_enable_errors(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server()
    client = connect(mw.IMAP4, server)
    with pytest.raises(mw.IMAP4.error, match=r"ENABLE.*NONAUTH"):
        client.enable("UTF8=ACCEPT")
    assert not client.utf8_enabled
    server2 = imap_server(greeting=PREAUTH, capabilities="IMAP4rev1")
    client2 = connect(mw.IMAP4, server2)
    with pytest.raises(mw.IMAP4.error, match="does not support ENABLE"):
        client2.enable("UTF8=ACCEPT")


# == STARTTLS and TLS ====================================================================


def test_imap4_ssl(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(tls_context=server_ssl_context())
    client = connect(mod.IMAP4_SSL, server, ssl_context=test_ssl_context())
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.logout()[0] == "BYE"
    assert all(c.tls for c in server.commands)


def test_starttls(mod: ModuleType, imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(
        capabilities="IMAP4rev1 STARTTLS", starttls_context=server_ssl_context()
    )
    client = connect(mod.IMAP4, server)
    assert client.starttls(test_ssl_context()) == ("OK", [None])
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert [(c.name, c.tls) for c in server.commands] == [
        ("CAPABILITY", False), ("STARTTLS", False), ("CAPABILITY", True), ("NOOP", True),
    ]  # fmt: skip


def test_shutdown_after_failed_starttls_deviation(
    mod: ModuleType, imap_server: StartServer, clients: list[Any]
) -> None:
    """imap-shutdown-always: after a handshake that failed (the ssl module closed the socket),
    mailwire's shutdown() completes; the stdlib's raises OSError(EBADF), which in a cleanup
    handler replaces the certificate error the caller needed to see."""
    server = imap_server(
        capabilities="IMAP4rev1 STARTTLS", starttls_context=server_ssl_context()
    )
    server.check_errors = False  # type: ignore[attr-defined]  # the handshake fails there too
    client = mod.IMAP4(*server.address, timeout=TIMEOUT)
    clients.append(client)
    untrusting = ssl.create_default_context()  # does not know the test CA
    with pytest.raises(ssl.SSLCertVerificationError):
        client.starttls(untrusting)
    if mod is mw:
        client.shutdown()
    else:
        with pytest.raises(OSError) as info:
            client.shutdown()
        assert info.value.errno == errno.EBADF


def test_starttls_plaintext_injection(imap_server: StartServer, connect: Connect) -> None:
    """Bytes after the STARTTLS OK came in plaintext: abort, close, never parse them."""

    def starttls(session: Session, command: Command) -> None:
        session.send(command.tag + b" OK Begin TLS now\r\n* OK [ALERT] injected\r\n* 9 EXISTS\r\n")
        session.start_tls(server_ssl_context(), may_fail=True)

    server = imap_server({"STARTTLS": starttls}, capabilities="IMAP4rev1 STARTTLS")
    client = connect(mw.IMAP4, server)
    with pytest.raises(mw.IMAP4.abort):
        client.starttls(test_ssl_context())
    assert "ALERT" not in client.untagged_responses
    assert "EXISTS" not in client.untagged_responses
    assert client.sock is None or client.sock.fileno() == -1
    server.join()
    assert server.names == ["CAPABILITY", "STARTTLS"]


# == IDLE (1) ==============================================================================


def idle_handler(pause: float = 0.5) -> Callable[[Session, Command], None]:
    def idle(session: Session, command: Command) -> None:
        session.send(b"* 0 EXISTS\r\n")  # before the continuation: still yielded
        session.continuation(b"idling")
        session.send(b"* 2 EXISTS\r\n")
        session.packets(
            [b"* 1 FETCH (BODY[HEADER.FIELDS (DATE)] {41}\r\n",
             b"Date: Fri, 06 Dec 2024 06:00:00 +0000\r\n",
             b"\r\n)\r\n"],
            0.02,
        )  # fmt: skip
        session.send(b"* 3 EXISTS\r\n")
        session.pause(pause)
        session.send(b"* 1 RECENT\r\n")
        line = session.readline(timeout=None)
        session.state["done"] = line
        session.send(b"* 9 RECENT\r\n")
        session.tagged(command, "OK", "Idle completed")

    return idle


IDLE_ITEMS = [
    ("EXISTS", [b"0"]),
    ("EXISTS", [b"2"]),
    ("FETCH", [(b"1 (BODY[HEADER.FIELDS (DATE)] {41}",
                b"Date: Fri, 06 Dec 2024 06:00:00 +0000\r\n\r\n"), b")"]),
    ("EXISTS", [b"3"]),
]  # fmt: skip


def test_idle_iteration(imap_server: StartServer, connect: Connect) -> None:
    handlers = {"IDLE": idle_handler()}
    client, server = open_client(imap_server, connect, state=AUTH, handlers=handlers)
    with client.idle() as idler:
        assert iter(idler) is idler
        assert client.state == "IDLING"
        with pytest.raises(mw.IMAP4.error) as info:
            client.noop()
        assert str(info.value) == (
            "command NOOP illegal in state IDLING, "
            "only allowed in states NONAUTH, AUTH, SELECTED, LOGOUT"
        )
        assert [next(idler) for _ in range(4)] == IDLE_ITEMS
    assert client.state == "AUTH"
    assert client.response("EXISTS") == ("EXISTS", [None])
    assert client.response("RECENT") == ("RECENT", [b"1", b"9"])
    assert server.session is not None and server.session.state["done"] == b"DONE"
    assert server.last("IDLE").raw == b"IDLE"
    assert client.noop()[0] == "OK"
    with pytest.raises(mw.IMAP4.error):
        next(idler)  # outside the with block


def test_idle_burst(imap_server: StartServer, connect: Connect) -> None:
    client, _ = open_client(imap_server, connect, state=AUTH, handlers={"IDLE": idle_handler()})
    started = time.monotonic()
    with client.idle() as idler:
        batch = list(idler.burst())
        assert time.monotonic() - started < 0.5 + 1
    assert batch == IDLE_ITEMS
    assert client.response("RECENT") == ("RECENT", [b"1", b"9"])


def test_idle_duration(imap_server: StartServer, connect: Connect) -> None:
    def idle(session: Session, command: Command) -> None:
        session.continuation(b"idling")
        session.send(b"* 2 EXISTS\r\n")
        session.readline(timeout=None)
        session.tagged(command, "OK", "Idle completed")

    client, _ = open_client(imap_server, connect, state=SELECTED, handlers={"IDLE": idle})
    started = time.monotonic()
    with client.idle(duration=0.6) as idler:
        items = list(idler)
        elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 0.6 * 3 + 1
    assert items == [("EXISTS", [b"2"])]
    assert client.state == "SELECTED"


def test_idle_delayed_packet(imap_server: StartServer, connect: Connect) -> None:
    """A line split over delayed packets survives an iteration timeout (1.6)."""

    def slow_idle(session: Session, command: Command) -> None:
        session.continuation(b"idling")
        session.send(b"* 1 EX")
        session.pause(0.2)
        session.send(b"IS")
        session.pause(1.0)
        session.send(b"TS\r\n")
        session.state["done"] = session.readline(timeout=None)
        session.tagged(command, "OK", "Idle completed")

    client, server = open_client(imap_server, connect, state=AUTH, handlers={"IDLE": slow_idle})
    started = time.monotonic()
    with client.idle(0.5) as idler:
        with pytest.raises(StopIteration):
            next(idler)
        assert time.monotonic() - started < 0.5 * 3 + 1
    assert client.response("EXISTS") == ("EXISTS", [b"1"])
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert server.session is not None and server.session.state["done"] == b"DONE"


def test_idle_denied(imap_server: StartServer, connect: Connect) -> None:
    client, server = open_client(
        imap_server, connect, state=AUTH,
        handlers={"IDLE": ok(status="NO", text="IDLE is not allowed at this time")},
    )  # fmt: skip
    with pytest.raises(mw.IMAP4.error) as info, client.idle():
        pytest.fail("entered")
    assert "IDLE is not allowed at this time" in str(info.value)
    assert client.state == "AUTH"
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert "DONE" not in server.wire.decode("latin-1")


def test_idle_capability(imap_server: StartServer, connect: Connect) -> None:
    server = imap_server(capabilities="IMAP4rev1")
    client = connect(mw.IMAP4, server)
    with pytest.raises(mw.IMAP4.error, match="does not support IMAP4 IDLE"):
        client.idle()
    server2 = imap_server()
    client2 = connect(mw.IMAP4, server2)  # NONAUTH
    with pytest.raises(mw.IMAP4.error) as info, client2.idle():
        pytest.fail("entered")
    assert str(info.value) == (
        "command IDLE illegal in state NONAUTH, only allowed in states AUTH, SELECTED"
    )


STREAM_SERVER = r"""
import sys
out = sys.stdout.buffer
out.write(b"* PREAUTH stream server ready\r\n")
out.flush()
for line in sys.stdin.buffer:
    tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
    name = rest.split(b" ")[0].upper()
    if name == b"CAPABILITY":
        out.write(b"* CAPABILITY IMAP4rev1 IDLE\r\n")
    elif name == b"IDLE":
        out.write(b"+ idling\r\n* 3 EXISTS\r\n")
        out.flush()
        sys.stdin.buffer.readline()
    elif name == b"LOGOUT":
        out.write(b"* BYE bye\r\n" + tag + b" OK LOGOUT completed\r\n")
        out.flush()
        break
    out.write(tag + b" OK " + name + b" completed\r\n")
    out.flush()
"""


def stream_command() -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(STREAM_SERVER)}"


def test_imap4_stream(mod: ModuleType, clients: list[Any]) -> None:
    client = mod.IMAP4_stream(stream_command())
    clients.append(client)
    assert client.state == "AUTH"
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.logout() == ("BYE", [b"bye"])


def test_idle_on_a_stream(clients: list[Any]) -> None:
    client = mw.IMAP4_stream(stream_command())
    clients.append(client)
    with pytest.raises(mw.IMAP4.error, match="duration requires a socket connection"):
        client.idle(duration=1)
    with client.idle() as idler:
        burst = idler.burst()
        with pytest.raises(mw.IMAP4.error, match=r"burst\(\) requires a socket connection"):
            next(burst)
        assert next(idler) == ("EXISTS", [b"3"])
    assert client.noop() == ("OK", [b"NOOP completed"])
    assert client.logout()[0] == "BYE"


# == Hypothesis: random response streams, the stdlib as the oracle ===========================

_printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24
).map(lambda s: s.encode().rstrip(b"}"))
_word = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ-", min_size=1, max_size=10).filter(
    lambda s: s not in ("BYE",)
)


@st.composite
def literal(draw: st.DrawFn, max_literal: int) -> bytes:
    size = draw(
        st.one_of(st.just(0), st.integers(1, 40), st.integers(41, max(41, max_literal)))
    )
    seed = draw(st.binary(min_size=1, max_size=16))
    return (seed * (size // len(seed) + 1))[:size]


@st.composite
def untagged(draw: st.DrawFn, max_literal: int) -> bytes:
    kind = draw(st.integers(0, 9))
    number = draw(st.integers(0, 99999))
    if kind == 0:
        return b"* %d %s\r\n" % (number, draw(st.sampled_from([b"EXISTS", b"RECENT", b"EXPUNGE"])))
    if kind == 1:
        status = draw(st.sampled_from([b"OK", b"NO", b"BAD"]))
        code = draw(st.sampled_from([b"", b"[ALERT] ", b"[UIDVALIDITY 3857529045] ",
                                     b"[PERMANENTFLAGS (\\Seen \\*)] ", b"[READ-WRITE] "]))
        return b"* " + status + b" " + code + draw(_printable) + b"\r\n"
    if kind == 2:  # plain FETCH lines: mailwire reads whole runs at once
        count = draw(st.integers(1, 30))
        return b"".join(
            b"* %d FETCH (UID %d FLAGS (\\Seen%s))\r\n" % (number + i, i, draw(_printable))
            for i in range(count)
        )
    if kind == 3:  # FETCH with one or more literals
        parts = draw(st.lists(literal(max_literal), min_size=1, max_size=3))
        body = b"".join(b" BODY[%d] {%d}\r\n%s" % (i, len(p), p) for i, p in enumerate(parts))
        return b"* %d FETCH (UID 1%s)\r\n" % (number, body)
    if kind == 4:  # a literal ending the response (depth 0): its empty trailer is kept
        name = draw(literal(max_literal))
        return b'* LIST (\\HasNoChildren) "/" {%d}\r\n%s\r\n' % (len(name), name)
    if kind == 5:
        numbers = draw(st.lists(st.integers(1, 999)))
        return b"* SEARCH" + b"".join(b" %d" % n for n in numbers) + b"\r\n"
    if kind == 6:
        return b"* " + draw(_word).encode() + b" " + draw(_printable) + b"\r\n"
    if kind == 7:
        return b"* " + draw(_word).encode() + b"\r\n"
    if kind == 8:
        return b"* %d FETCH %s\r\n" % (number, draw(_printable))
    return b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"


@st.composite
def valid_stream(draw: st.DrawFn, max_literal: int) -> tuple[bytes, bytes]:
    body = b"".join(draw(st.lists(untagged(max_literal), max_size=12)))
    tail = draw(st.sampled_from([b"OK NOOP completed", b"OK [HIGHESTMODSEQ 7] done", b"NO nope"]))
    return body, tail


def split_points(length: int, fractions: list[float]) -> list[int]:
    return sorted({int(f * length) for f in fractions} - {0, length})


def serve(stream: bytes, mode: str, points: list[int]) -> Callable[[Session, Command], None]:
    def noop(session: Session, command: Command) -> None:
        data = stream + command.tag + b" "
        if mode == "whole":
            session.send(data)
        elif mode == "bytes":
            session.packets([data[i : i + 1] for i in range(len(data))])
        else:
            bounds = [0, *points, len(data)]
            session.packets([data[a:b] for a, b in zip(bounds, bounds[1:])], 0.001)
        session.send(session.state["tail"])
        session.state["served"] = True

    return noop


def observe(cls: Any, body: bytes, tail: bytes, mode: str, fractions: list[float]) -> Any:
    points = split_points(len(body), fractions)
    with FakeIMAPServer({"NOOP": serve(body, mode, points)}) as server:
        client = cls(*server.address, timeout=TIMEOUT)
        try:
            assert server.session is not None
            server.session.state["tail"] = tail + b"\r\n"
            try:
                result: Any = client.noop()
            except (client.error, client.abort) as exc:
                result = ("raised", type(exc).__name__, str(exc))
            return result, copy.deepcopy(client.untagged_responses)
        finally:
            client.shutdown()
            server.join()
            assert not server.errors, server.errors


HYPOTHESIS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("mode", ["whole", "bytes", "splits"])
def test_random_streams_match_the_stdlib(mode: str) -> None:
    max_literal = 2000 if mode == "bytes" else 300000

    @HYPOTHESIS
    @given(
        stream=valid_stream(max_literal),
        fractions=st.lists(st.floats(0, 1), max_size=20),
    )
    def check(stream: tuple[bytes, bytes], fractions: list[float]) -> None:
        body, tail = stream
        expected = observe(std_imaplib.IMAP4, body, tail, "whole", [])
        assert observe(mw.IMAP4, body, tail, mode, fractions) == expected
        assert observe(ReadlineOverride, body, tail, mode, fractions) == expected

    check()


_garbage_line = st.one_of(
    st.binary(max_size=40),
    _printable,
    st.sampled_from([
        b"", b"*", b"* ", b"+", b"+ go on", b"* BYE", b"* BYE gone", b"* OK [", b"* OK [CAPABILITY",
        b"* OK [CAPABILITY \xff\xfe]", b"* 1 FETCH {", b"* 1 FETCH {99999999999}", b"* 1 FETCH {5}",
        b"* LIST {2}", b"A001 OK x", b"* 1 FETCH (BODY[] {3}", b"\xff\xfe\xfd", b"* PREAUTH",
        b"* OK {-1}", b"* CAPABILITY IMAP4rev1", b"* 1 EXISTS", b"* ID (\"a\" \"b\")",
    ]),
)  # fmt: skip


@st.composite
def garbage_stream(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_garbage_line, max_size=10))
    ends = draw(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b""]), min_size=len(lines),
                         max_size=len(lines)))  # fmt: skip
    return b"".join(line + end for line, end in zip(lines, ends))


@HYPOTHESIS
@given(
    stream=garbage_stream(),
    where=st.sampled_from(["greeting", "noop"]),
    mode=st.sampled_from(["whole", "bytes"]),
    tagged=st.booleans(),
)
@example(stream=b"* OK [CAPABILITY \x80]\r\n", where="greeting", mode="whole", tagged=False)
@example(stream=b"* OK [CAPABILITY IMAP4rev1]\r\n", where="greeting", mode="whole", tagged=False)
def test_garbage_raises_only_imap_errors(
    stream: bytes, where: str, mode: str, tagged: bool
) -> None:
    def noop(session: Session, command: Command) -> None:
        data = stream + (command.tag + b" OK done\r\n" if tagged else b"")
        if mode == "whole":
            session.send(data)
        else:
            session.packets([data[i : i + 1] for i in range(len(data))])
        session.close()

    if where == "greeting":
        server = FakeIMAPServer(greeting=[stream, Close()])
    else:
        server = FakeIMAPServer({"NOOP": noop}, greeting=PREAUTH)
    with server:
        started = time.monotonic()
        client = None
        try:
            client = mw.IMAP4(*server.address, timeout=TIMEOUT)
            client.noop()
            client.noop()
        except (mw.IMAP4.error, mw.IMAP4.abort):
            pass
        finally:
            if client is not None:
                with contextlib.suppress(OSError):
                    client.shutdown()
        assert time.monotonic() - started < TIMEOUT - 1, "the client hung"
