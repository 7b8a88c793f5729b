"""mailwire.poplib against scripted fake servers, side by side with the stdlib's poplib.

Tests that take the ``mod`` fixture run once through ``mailwire.poplib`` and once through the
stdlib: where behaviour is meant to be identical, that proves it on the same bytes. Each
deliberate difference (``mailwire.deviations``) is tested both ways: what mailwire does and what
the stdlib does on the same input.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
import json
import os
import poplib as std_poplib
import re
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Callable
from unittest import mock

import pytest

import mailwire.poplib as mw_poplib
from mailwire.deviations import DEVIATIONS

from .fakeserver import (
    Close,
    Pause,
    ScriptedPOP3Server,
    StartServer,
    StartTLS,
    Step,
    TLSFiles,
    Trickle,
)

pytestmark = [
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning"),
]

TIMESTAMP = b"<1896.697170952@dbc.mtview.ca.us>"
GREETING = b"+OK fake POP3 server ready " + TIMESTAMP + b"\r\n"
TIMEOUT = 5.0
DESYNC = mw_poplib._DESYNC_MESSAGE

MODULES = [pytest.param(mw_poplib, id="mailwire"), pytest.param(std_poplib, id="stdlib")]


@pytest.fixture(params=MODULES)
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    """Every client a test opens is closed at the end, whatever happened."""
    opened: list[Any] = []
    yield opened
    for client in opened:
        client.close()


Connect = Callable[..., Any]


@pytest.fixture
def connect(clients: list[Any]) -> Connect:
    def connect(
        cls: Any, server: ScriptedPOP3Server, timeout: float = TIMEOUT, **options: Any
    ) -> Any:
        client = cls(*server.address, timeout=timeout, **options)
        clients.append(client)
        return client

    return connect


def session(*steps: Step, greeting: bytes = GREETING) -> list[Step]:
    return [(None, greeting), *steps]


def exact(command: bytes) -> bytes:
    return re.escape(command)


def finish(client: Any, server: ScriptedPOP3Server) -> list[bytes]:
    """Close the client, wait for the server to see it, return the lines the server received."""
    client.close()
    server.join()
    return server.lines


def test_stdlib_is_the_real_one() -> None:
    assert not getattr(std_poplib, "__mailwire__", False)
    assert getattr(mw_poplib, "__mailwire__", False)


# -- every command's wire form and result --------------------------------------------------------

MESSAGE = (
    b"+OK 120 octets\r\n"
    b"From: a@example.org\r\n"
    b"Subject: dots\r\n"
    b"\r\n"
    b"..leading dot\r\n"
    b"...two\r\n"
    b"..\r\n"
    b"last\r\n"
    b".\r\n"
)
MESSAGE_LINES = [
    b"From: a@example.org",
    b"Subject: dots",
    b"",
    b".leading dot",
    b"..two",
    b".",
    b"last",
]
MESSAGE_OCTETS = 21 + 15 + 2 + 14 + 7 + 3 + 6

COMMANDS = [
    ("user", ("bob",), b"USER bob", b"+OK send PASS\r\n", b"+OK send PASS"),
    ("pass_", ("s3 cret",), b"PASS s3 cret", b"+OK 2 messages\r\n", b"+OK 2 messages"),
    ("apop", ("bob", "tanstaaf"), b"APOP bob c4c9334bac560ecc979e58001b3e22fb",
     b"+OK maildrop locked\r\n", b"+OK maildrop locked"),
    ("rpop", ("bob",), b"RPOP bob", b"+OK\r\n", b"+OK"),
    ("stat", (), b"STAT", b"+OK 2 320\r\n", (2, 320)),
    ("stat", (), b"STAT", b"+OK 2 320 and more\r\n", (2, 320)),
    ("list", (), b"LIST", b"+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n",
     (b"+OK 2 messages", [b"1 120", b"2 200"], 14)),
    ("list", (1,), b"LIST 1", b"+OK 1 120\r\n", b"+OK 1 120"),
    ("list", ("2",), b"LIST 2", b"+OK 2 200\r\n", b"+OK 2 200"),
    ("retr", (1,), b"RETR 1", MESSAGE, (b"+OK 120 octets", MESSAGE_LINES, MESSAGE_OCTETS)),
    ("retr", ("1",), b"RETR 1", b"+OK\r\n.\r\n", (b"+OK", [], 0)),
    ("dele", (1,), b"DELE 1", b"+OK message 1 deleted\r\n", b"+OK message 1 deleted"),
    ("rset", (), b"RSET", b"+OK\r\n", b"+OK"),
    ("noop", (), b"NOOP", b"+OK\r\n", b"+OK"),
    ("top", (1, 0), b"TOP 1 0", b"+OK\r\nSubject: x\r\n\r\n.\r\n",
     (b"+OK", [b"Subject: x", b""], 14)),
    ("uidl", (), b"UIDL", b"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n.\r\n",
     (b"+OK", [b"1 whqtswO00WBw418f9t5JxYwZ", b"2 QhdPYR:00WBw1Ph7x7"], 50)),
    ("uidl", (2,), b"UIDL 2", b"+OK 2 QhdPYR:00WBw1Ph7x7\r\n", b"+OK 2 QhdPYR:00WBw1Ph7x7"),
    ("capa", (), b"CAPA",
     b"+OK Capability list follows\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nUIDL\r\n"
     b"IMPLEMENTATION Shlemazle Plus\r\n.\r\n",
     {"TOP": [], "USER": [], "SASL": ["PLAIN", "LOGIN"], "UIDL": [],
      "IMPLEMENTATION": ["Shlemazle", "Plus"]}),
    ("utf8", (), b"UTF8", b"+OK I can handle UTF-8\r\n", b"+OK I can handle UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "args", "wire", "reply", "result"),
    COMMANDS,
    ids=[f"{c[0]}{c[1]!r}" for c in COMMANDS],
)
def test_command(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect,
    method: str, args: tuple[Any, ...], wire: bytes, reply: bytes, result: Any,
) -> None:  # fmt: skip
    server = fake_pop3(session((exact(wire), reply)))
    pop = connect(mod.POP3, server)
    assert pop.getwelcome() == GREETING[:-2]
    assert getattr(pop, method)(*args) == result
    assert finish(pop, server) == [wire]
    assert server.wire == wire + b"\r\n"


def test_quit(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session((b"QUIT", b"+OK bye\r\n")))
    pop = connect(mod.POP3, server)
    assert pop.quit() == b"+OK bye"
    assert pop.sock is None and pop.file is None
    server.join()
    assert server.lines == [b"QUIT"]
    pop.close()  # closing again is harmless


def test_non_ascii_argument_is_sent_in_the_encoding(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    server = fake_pop3(
        session(
            (exact("USER bjørn".encode()), b"+OK\r\n"),
            (exact("USER bjørn".encode("latin-1")), b"+OK\r\n"),
        )
    )
    pop = connect(mod.POP3, server)
    pop.user("bjørn")
    pop.encoding = "latin-1"
    pop.user("bjørn")
    assert finish(pop, server) == ["USER bjørn".encode(), "USER bjørn".encode("latin-1")]


def test_mixed_line_endings_in_replies(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    reply = b"+OK\nline lf\n\rline cr-lf\nline crlf\r\nline cr\r\r\n..x\n.\n"
    server = fake_pop3(session((b"RETR 1", reply), (b"NOOP", b"\r+OK cr first\n")))
    pop = connect(mod.POP3, server)
    assert pop.retr(1) == (
        b"+OK",
        [b"line lf", b"line cr-lf", b"line crlf", b"line cr\r", b".x"],
        44,
    )
    assert pop.noop() == b"+OK cr first"
    finish(pop, server)


# -- SASL AUTH (RFC 5034) -------------------------------------------------------------------------


def auth_modules() -> list[Any]:
    params = [pytest.param(mw_poplib, id="mailwire")]
    if hasattr(std_poplib.POP3, "auth"):
        params.append(pytest.param(std_poplib, id="stdlib"))
    return params


@pytest.fixture(params=auth_modules())
def auth_mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("initial", "wire"),
    [
        ("\0bob\0pw", b"AUTH PLAIN AGJvYgBwdw=="),
        (b"\0bob\0pw", b"AUTH PLAIN AGJvYgBwdw=="),
        (b"", b"AUTH PLAIN ="),
    ],
)
def test_auth_initial_response(
    auth_mod: ModuleType, fake_pop3: StartServer, connect: Connect, initial: Any, wire: bytes
) -> None:
    server = fake_pop3(session((exact(wire), b"+OK welcome\r\n")))
    pop = connect(auth_mod.POP3, server)
    assert pop.auth("PLAIN", initial_response=initial) == b"+OK welcome"
    assert finish(pop, server) == [wire]


def test_auth_challenges(auth_mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session(
        (b"AUTH LOGIN", b"+ VXNlcm5hbWU6\r\n"),
        (b"Ym9i", b"+ UGFzc3dvcmQ6\r\n"),
        (b"cHc=", b"+ \r\n"),
        (b"", b"+OK logged in\r\n"),
    ))  # fmt: skip
    pop = connect(auth_mod.POP3, server)
    answers = iter([b"bob", "pw", None])
    challenges = []

    def authobject(challenge: bytes) -> Any:
        challenges.append(challenge)
        return next(answers)

    assert pop.auth("LOGIN", authobject) == b"+OK logged in"
    assert challenges == [b"Username:", b"Password:", b""]
    assert finish(pop, server) == [b"AUTH LOGIN", b"Ym9i", b"cHc=", b""]


@pytest.mark.parametrize("cancel", [b"*", "*"])
def test_auth_cancelled(
    auth_mod: ModuleType, fake_pop3: StartServer, connect: Connect, cancel: Any
) -> None:
    server = fake_pop3(session(
        (b"AUTH CRAM-MD5", b"+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UuZXhhbXBsZS5uZXQ+\r\n"),
        (exact(b"*"), b"-ERR AUTH cancelled\r\n"),
        (b"NOOP", b"+OK\r\n"),
    ))  # fmt: skip
    pop = connect(auth_mod.POP3, server)
    seen = []

    def authobject(challenge: bytes) -> Any:
        seen.append(challenge)
        return cancel

    with pytest.raises(auth_mod.error_proto) as info:
        pop.auth("CRAM-MD5", authobject)
    assert info.value.args == (b"-ERR AUTH cancelled",)
    assert seen == [b"<1896.697170952@postoffice.example.net>"]
    assert pop.noop() == b"+OK"  # still in step with the server
    assert finish(pop, server) == [b"AUTH CRAM-MD5", b"*", b"NOOP"]


def test_auth_without_response(
    auth_mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    server = fake_pop3(session((b"AUTH EXTERNAL", b"+OK\r\n"), (b"AUTH X", b"-ERR no X\r\n")))
    pop = connect(auth_mod.POP3, server)
    assert pop.auth("EXTERNAL") == b"+OK"
    with pytest.raises(auth_mod.error_proto) as info:
        pop.auth("X")
    assert info.value.args == (b"-ERR no X",)
    finish(pop, server)


def test_auth_argument_errors(
    auth_mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    server = fake_pop3(session())
    pop = connect(auth_mod.POP3, server)
    with pytest.raises(ValueError, match="mutually exclusive"):
        pop.auth("PLAIN", authobject=lambda c: b"", initial_response=b"x")
    with pytest.raises(ValueError):
        pop.auth("PLAIN\r\nDELE 1", initial_response=b"x")
    assert finish(pop, server) == []


def test_auth_bad_challenge_is_cancelled(fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session(
        (b"AUTH PLAIN", b"+ Zm9vY\r\n"),
        (exact(b"*"), b"-ERR cancelled\r\n"),
        (b"NOOP", b"+OK\r\n"),
    ))  # fmt: skip
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(mw_poplib.error_proto) as info:
        pop.auth("PLAIN", lambda challenge: pytest.fail("not called"))
    assert info.value.args == ("-ERR AUTH challenge is not valid base64",)
    assert pop.noop() == b"+OK"
    assert finish(pop, server) == [b"AUTH PLAIN", b"*", b"NOOP"]


# -- error replies -------------------------------------------------------------------------------

ERR_COMMANDS = [
    ("user", ("bob",), b"USER bob"),
    ("pass_", ("pw",), b"PASS pw"),
    ("apop", ("bob", "pw"), b"APOP bob [0-9a-f]{32}"),
    ("rpop", ("bob",), b"RPOP bob"),
    ("stat", (), b"STAT"),
    ("list", (), b"LIST"),
    ("list", (9,), b"LIST 9"),
    ("retr", (9,), b"RETR 9"),
    ("dele", (9,), b"DELE 9"),
    ("rset", (), b"RSET"),
    ("noop", (), b"NOOP"),
    ("top", (9, 1), b"TOP 9 1"),
    ("uidl", (), b"UIDL"),
    ("uidl", (9,), b"UIDL 9"),
    ("utf8", (), b"UTF8"),
    ("quit", (), b"QUIT"),
]


@pytest.mark.parametrize(
    ("method", "args", "pattern"), ERR_COMMANDS, ids=[f"{c[0]}{c[1]!r}" for c in ERR_COMMANDS]
)
def test_err_reply(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect,
    method: str, args: tuple[Any, ...], pattern: bytes,
) -> None:  # fmt: skip
    server = fake_pop3(session((pattern, b"-ERR no such message\r\n"), (b"NOOP", b"+OK\r\n")))
    pop = connect(mod.POP3, server)
    with pytest.raises(mod.error_proto) as info:
        getattr(pop, method)(*args)
    assert info.value.args == (b"-ERR no such message",)
    assert pop.noop() == b"+OK"
    assert len(finish(pop, server)) == 2


def test_capa_err(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session((b"CAPA", b"-ERR unknown command\r\n")))
    pop = connect(mod.POP3, server)
    with pytest.raises(mod.error_proto) as info:
        pop.capa()
    assert info.value.args == ("-ERR CAPA not supported by server",)
    finish(pop, server)


def test_capa_robust(fake_pop3: StartServer, connect: Connect) -> None:
    """Deviation pop-capa-robust: blank CAPA lines are skipped and a non-ASCII one is an
    error_proto (the stdlib raises IndexError and UnicodeDecodeError)."""
    server = fake_pop3(
        session(
            (b"CAPA", b"+OK\r\nTOP\r\n\r\nSASL PLAIN\r\n.\r\n"),
            (b"CAPA", b"+OK\r\nTOP\r\nIMPLEMENTATION caf\xc3\xa9\r\n.\r\n"),
        )
    )
    pop = connect(mw_poplib.POP3, server)
    assert pop.capa() == {"TOP": [], "SASL": ["PLAIN"]}
    with pytest.raises(mw_poplib.error_proto) as info:
        pop.capa()
    assert info.value.args == ("-ERR CAPA not supported by server",)
    finish(pop, server)


def test_apop_without_timestamp(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session(greeting=b"+OK no timestamp here\r\n"))
    pop = connect(mod.POP3, server)
    with pytest.raises(mod.error_proto) as info:
        pop.apop("bob", "pw")
    assert info.value.args == ("-ERR APOP not supported by server",)
    assert finish(pop, server) == []


def test_apop_uses_the_instances_timestamp_pattern(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    """A subclass may change ``timestamp`` for a server that marks its timestamp oddly."""

    class Bracketed(mod.POP3):  # type: ignore[misc, name-defined]
        timestamp = re.compile(rb"\+OK.[^\[]*(\[.*\])")

    stamp = b"[1896.697170952@dbc.mtview.ca.us]"
    digest = hashlib.md5(stamp + b"tanstaaf").hexdigest().encode()
    greeting = b"+OK ready " + stamp + b"\r\n"
    command = b"APOP bob " + digest
    server = fake_pop3(session((exact(command), b"+OK locked\r\n"), greeting=greeting))
    pop = connect(Bracketed, server)
    assert pop.apop("bob", "tanstaaf") == b"+OK locked"
    assert finish(pop, server) == [command]


class StandInSocket:
    """What an overridden ``_create_socket`` may return instead of a socket: an object with
    only the methods poplib calls (no ``fileno``)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sendall = sock.sendall
        self.makefile = sock.makefile
        self.shutdown = sock.shutdown
        self.close = sock.close


class StandIn:
    """A POP3 whose ``_create_socket`` returns a :class:`StandInSocket`."""

    @staticmethod
    def of(base: Any) -> Any:
        class StandInPOP3(base):  # type: ignore[misc, valid-type]
            def _create_socket(self, timeout: Any) -> Any:
                return StandInSocket(socket.create_connection((self.host, self.port), timeout))

        return StandInPOP3


def test_stand_in_socket_is_closed_like_the_stdlib(
    mod: ModuleType, fake_pop3: StartServer, clients: list[Any]
) -> None:
    server = fake_pop3(session((b"QUIT", b"+OK bye\r\n")))
    pop = StandIn.of(mod.POP3)(*server.address, timeout=TIMEOUT)
    clients.append(pop)
    assert pop.quit() == b"+OK bye"
    assert pop.sock is None
    server.join()


def test_stand_in_socket_refused_greeting(fake_pop3: StartServer) -> None:
    """The greeting's error_proto reaches the caller, and the stand-in is closed (the stdlib
    leaves it open)."""
    server = fake_pop3(session(greeting=b"-ERR go away\r\n"))
    with pytest.raises(mw_poplib.error_proto) as info:
        StandIn.of(mw_poplib.POP3)(*server.address, timeout=TIMEOUT)
    assert info.value.args == (b"-ERR go away",)
    server.join()


def test_patching_getline_on_the_class_is_honoured(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    """``mock.patch.object(POP3, "_getline", ...)`` sees every line, as with the stdlib: the
    block path must notice a patched class, not compare the class with itself."""
    server = fake_pop3(session((b"RETR 1", MESSAGE)))
    pop = connect(mod.POP3, server)
    original = mod.POP3._getline
    seen: list[bytes] = []

    def upper(self: Any) -> tuple[bytes, int]:
        line, size = original(self)
        seen.append(line)
        return line.upper(), size

    with mock.patch.object(mod.POP3, "_getline", upper):
        if mod is mw_poplib:
            assert not pop._bulk_reads()
        resp, lines, octets = pop.retr(1)
    assert resp == b"+OK 120 OCTETS"
    assert lines == [line.upper() for line in MESSAGE_LINES]
    assert octets == MESSAGE_OCTETS
    assert seen == MESSAGE.split(b"\r\n")[:-1]
    if mod is mw_poplib:
        assert pop._bulk_reads()
    finish(pop, server)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"+OK\r\n", "Invalid STAT response format"),
        (b"+OK two 320\r\n", "Invalid STAT response data: non-numeric values"),
    ],
)
def test_stat_malformed(
    fake_pop3: StartServer, connect: Connect, reply: bytes, message: str
) -> None:
    """The newest stdlib's messages; older stdlib versions let IndexError/ValueError out."""
    server = fake_pop3(session((b"STAT", reply)))
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(mw_poplib.error_proto) as info:
        pop.stat()
    assert info.value.args == (message,)
    finish(pop, server)


def test_err_greeting_closes_the_socket(fake_pop3: StartServer) -> None:
    server = fake_pop3(session(greeting=b"-ERR too busy\r\n"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        with pytest.raises(mw_poplib.error_proto) as info:
            mw_poplib.POP3(*server.address, timeout=TIMEOUT)
    assert info.value.args == (b"-ERR too busy",)
    server.join()


def test_timeout_zero_is_refused(mod: ModuleType) -> None:
    with pytest.raises(ValueError, match="Non-blocking socket"):
        mod.POP3("127.0.0.1", 1, timeout=0)


# -- line limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["noop", "retr"])
def test_patched_maxline(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, command: str
) -> None:
    fits = b"+OK 4567\r\n"  # 10 bytes
    too_long = b"+OK 45678\r\n"  # 11 bytes
    if command == "retr":
        steps = [(b"RETR 1", b"+OK\r\n" + fits + b".\r\n"), (b"RETR 2", b"+OK\r\n" + too_long)]
    else:
        steps = [(b"NOOP", fits), (b"NOOP", too_long)]
    server = fake_pop3(session(*steps, greeting=b"+OK hi\r\n"))
    with mock.patch.object(mod, "_MAXLINE", 10):
        pop = connect(mod.POP3, server)
        if command == "retr":
            assert pop.retr(1) == (b"+OK", [b"+OK 4567"], 10)
        else:
            assert pop.noop() == b"+OK 4567"
        with pytest.raises(mod.error_proto) as info:
            getattr(pop, command)(2) if command == "retr" else pop.noop()
    assert info.value.args == ("line too long",)
    finish(pop, server)


@pytest.mark.parametrize("size", [2047, 2048, 2049])
@pytest.mark.parametrize("where", ["reply", "body"])
def test_default_maxline(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, size: int, where: str
) -> None:
    assert mod._MAXLINE == 2048
    if where == "reply":
        line = b"+OK " + b"x" * (size - 6) + b"\r\n"
        step = (b"RETR 1", line + b".\r\n")
    else:
        line = b"..y" + b"x" * (size - 5) + b"\r\n"
        step = (b"RETR 1", b"+OK\r\n" + line + b"b\r\n.\r\n")
    assert len(line) == size
    server = fake_pop3(session(step))
    pop = connect(mod.POP3, server)
    if size > 2048:
        with pytest.raises(mod.error_proto, match="line too long"):
            pop.retr(1)
    else:
        resp, lines, octets = pop.retr(1)
        if where == "reply":
            assert (resp, lines, octets) == (line[:-2], [], 0)
        else:
            assert lines == [line[1:-2], b"b"]
            assert octets == size - 1 + 3
    finish(pop, server)


def test_huge_body_many_blocks(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    lines = [b"..dot %d" % i if i % 5 == 0 else b"line number %d" % i for i in range(30000)]
    body = b"\r\n".join(lines) + b"\r\n.\r\n"
    server = fake_pop3(session((b"RETR 1", b"+OK\r\n" + body), (b"NOOP", b"+OK\r\n")))
    pop = connect(mod.POP3, server)
    _, got, octets = pop.retr(1)
    assert got == [line[1:] if line.startswith(b"..") else line for line in lines]
    assert octets == len(body) - 3 - 6000
    assert pop.noop() == b"+OK"
    finish(pop, server)


# -- connections that end early ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        [Close()],
        [b"+OK\r\n", Close()],
        [b"+OK\r\nline 1\r\n", Close()],
        [b"+OK\r\nline 1\r\nline 2\r\n", Pause(0.05), Close()],  # missing terminator
    ],
    ids=["before-reply", "after-ok", "mid-body", "no-terminator"],
)
def test_server_closes_mid_response(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, reply: list[Any]
) -> None:
    server = fake_pop3(session((b"RETR 1", reply)))
    pop = connect(mod.POP3, server)
    with pytest.raises(mod.error_proto) as info:
        pop.retr(1)
    assert info.value.args == ("-ERR EOF",)
    finish(pop, server)


def test_truncated_reply_line_deviation(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    """pop-eof-mid-line: a reply cut off by EOF. The stdlib cuts one more byte off (assuming it
    was the LF) and returns a wrong answer; mailwire raises."""
    server = fake_pop3(session((b"NOOP", [b"+OK fine", Close()])))
    pop = connect(mod.POP3, server)
    if mod is mw_poplib:
        with pytest.raises(mod.error_proto) as info:
            pop.noop()
        assert info.value.args == ("-ERR EOF",)
    else:
        assert pop.noop() == b"+OK fin"
    finish(pop, server)


@pytest.mark.parametrize("tail", [b".x", b".\r", b"\r.x"])
def test_truncated_terminator_deviation(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, tail: bytes
) -> None:
    """pop-eof-mid-line in a body: the stdlib takes a final ``.x`` cut off by EOF for the
    terminator and returns the message as if complete."""
    server = fake_pop3(session((b"RETR 1", [b"+OK\r\nline\r\n" + tail, Close()])))
    pop = connect(mod.POP3, server)
    if mod is mw_poplib:
        with pytest.raises(mod.error_proto) as info:
            pop.retr(1)
        assert info.value.args == ("-ERR EOF",)
    else:
        assert pop.retr(1) == (b"+OK", [b"line"], 6)
    finish(pop, server)


# -- command injection (pop-control-chars) ---------------------------------------------------

INJECTIONS = [
    ("user", lambda bad: (f"bob{bad}DELE 1",)),
    ("pass_", lambda bad: (f"pw{bad}DELE 1",)),
    ("apop", lambda bad: (f"bob{bad}DELE 1", "pw")),
    ("rpop", lambda bad: (f"bob{bad}",)),
    ("list", lambda bad: (f"1{bad}",)),
    ("retr", lambda bad: (f"1{bad}DELE 2",)),
    ("dele", lambda bad: (f"{bad}1",)),
    ("top", lambda bad: (1, f"0{bad}DELE 1")),
    ("uidl", lambda bad: (f"1{bad}",)),
    ("auth", lambda bad: (f"PLAIN{bad}",)),
]


@pytest.mark.parametrize("bad", ["\r\n", "\r", "\n", "\x00"], ids=["CRLF", "CR", "LF", "NUL"])
@pytest.mark.parametrize(("method", "make_args"), INJECTIONS, ids=[i[0] for i in INJECTIONS])
def test_control_characters_are_refused_before_sending(
    fake_pop3: StartServer, connect: Connect, method: str, make_args: Any, bad: str
) -> None:
    server = fake_pop3(session((b"NOOP", b"+OK\r\n")))
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        getattr(pop, method)(*make_args(bad))
    assert pop.noop() == b"+OK"  # nothing was sent: still in step
    assert finish(pop, server) == [b"NOOP"]


def test_control_characters_in_the_stdlib(fake_pop3: StartServer, connect: Connect) -> None:
    """The same input through the stdlib: older versions send the injected command."""
    server = fake_pop3(session((b"USER bob", b"+OK\r\n"), (b"DELE 1", b"+OK deleted\r\n")))
    pop = connect(std_poplib.POP3, server)
    try:
        reply = pop.user("bob\r\nDELE 1")
    except ValueError:  # a stdlib with gh-143923 fixed behaves like mailwire
        assert finish(pop, server) == []
        return
    assert reply == b"+OK"
    assert finish(pop, server) == [b"USER bob", b"DELE 1"]


def test_putline_refuses_control_characters(fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session())
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(ValueError):
        pop._putline(b"NOOP\r\nDELE 1")
    assert finish(pop, server) == []


# -- STLS ------------------------------------------------------------------------------------------

CAPA_STLS = b"+OK\r\nSTLS\r\nUSER\r\n.\r\n"


def test_stls(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, tls_files: TLSFiles
) -> None:
    server = fake_pop3(session(
        (b"CAPA", CAPA_STLS),
        (b"STLS", [b"+OK Begin TLS negotiation\r\n", StartTLS(tls_files.server_context())]),
        (b"NOOP", b"+OK secure\r\n"),
        (b"QUIT", b"+OK bye\r\n"),
    ))  # fmt: skip
    pop = connect(mod.POP3, server)
    assert pop.stls(tls_files.client_context()) == b"+OK Begin TLS negotiation"
    assert isinstance(pop.sock, ssl.SSLSocket)
    with pytest.raises(mod.error_proto) as info:
        pop.stls()
    assert info.value.args == ("-ERR TLS session already established",)
    assert pop.noop() == b"+OK secure"
    assert pop.quit() == b"+OK bye"
    server.join()
    assert server.received == [(b"CAPA", False), (b"STLS", False), (b"NOOP", True),
                               (b"QUIT", True)]  # fmt: skip


def test_fake_server_closes_its_tls_socket_when_the_client_leaves(
    fake_pop3: StartServer, tls_files: TLSFiles
) -> None:
    """The client leaves in mid-reply after STLS: the fake server closes the TLS socket.

    It used to close only the plaintext socket it had accepted (detached by the handshake): the
    TLS one was left to the garbage collector and its ResourceWarning failed the test.
    """
    server = fake_pop3(session(
        (b"CAPA", CAPA_STLS),
        (b"STLS", [b"+OK\r\n", StartTLS(tls_files.server_context())]),
        (b"NOOP", Trickle(b"+OK " + b"x" * 200 + b"\r\n", 0.005)),
    ))  # fmt: skip
    pop = std_poplib.POP3(*server.address, timeout=TIMEOUT)
    try:
        pop.stls(tls_files.client_context())
        pop._putcmd("NOOP")
    finally:
        pop.close()
    server.join()
    assert server.client_gone
    assert server.lines == [b"CAPA", b"STLS", b"NOOP"]


def test_stls_not_offered(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session((b"CAPA", b"+OK\r\nUSER\r\n.\r\n")))
    pop = connect(mod.POP3, server)
    with pytest.raises(mod.error_proto) as info:
        pop.stls()
    assert info.value.args == ("-ERR STLS not supported by server",)
    assert finish(pop, server) == [b"CAPA"]


def test_stls_verifies_the_certificate(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, tls_files: TLSFiles
) -> None:
    server = fake_pop3(session(
        (b"CAPA", CAPA_STLS),
        (b"STLS", [b"+OK\r\n", StartTLS(tls_files.server_context(), may_fail=True)]),
    ))  # fmt: skip
    pop = connect(mod.POP3, server)
    with pytest.raises(ssl.SSLCertVerificationError):
        pop.stls(ssl.create_default_context())  # the system CAs do not know the test CA
    if mod is std_poplib:
        # The failed handshake closed the socket the stdlib still holds: its close() then
        # fails in shutdown() with EBADF. mailwire's close() tolerates that.
        with pytest.raises(OSError) as info:
            pop.close()
        assert info.value.errno == errno.EBADF
    finish(pop, server)


def test_stls_buffered_plaintext_deviation(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, tls_files: TLSFiles
) -> None:
    """pop-stls-buffered-plaintext: bytes after the +OK of STLS, in the same packet.

    mailwire aborts and closes the connection, never reading them. The stdlib reads them into
    the buffer of the plaintext file object it then drops: they are silently lost, and the
    session goes on over TLS.
    """
    server = fake_pop3(session(
        (b"CAPA", CAPA_STLS),
        (b"STLS", [b"+OK Begin TLS\r\n+OK INJECTED\r\n",
                   StartTLS(tls_files.server_context(), may_fail=True)]),
        (b"NOOP", b"+OK secure\r\n"),
    ))  # fmt: skip
    pop = connect(mod.POP3, server)
    if mod is mw_poplib:
        with pytest.raises(mod.error_proto) as info:
            pop.stls(tls_files.client_context())
        (message,) = info.value.args
        assert message.startswith("-ERR STLS: 14 byte(s) of plaintext")
        assert pop.sock is None and pop.file is None
        server.join()
        assert server.lines == [b"CAPA", b"STLS"]
        assert server.tls_failed
    else:
        assert pop.stls(tls_files.client_context()) == b"+OK Begin TLS"
        assert pop.noop() == b"+OK secure"
        assert finish(pop, server) == [b"CAPA", b"STLS", b"NOOP"]


# -- timeouts: whole-line deadline and desync ------------------------------------------------


def test_line_deadline_deviation(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    """line-deadline: a reply trickled a byte every 50 ms with a 0.3 s timeout. Each recv
    succeeds, so the stdlib waits for the whole line; mailwire gives up after ~0.3 s."""
    server = fake_pop3(session((b"NOOP", Trickle(b"+OK slowly\r\n", 0.05))))
    pop = connect(mod.POP3, server, timeout=0.3)
    started = time.monotonic()
    if mod is mw_poplib:
        with pytest.raises(socket.timeout):
            pop.noop()
        assert time.monotonic() - started < 1.5
        assert pop.sock.gettimeout() == 0.3
    else:
        assert pop.noop() == b"+OK slowly"
        assert time.monotonic() - started > 0.3
    finish(pop, server)


def test_steady_slow_listing_is_not_cut_off(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect
) -> None:
    """A server that streams a listing slowly, a complete line at a time, takes longer than
    the timeout in all, but every line comes within it: the block path waits for each line,
    as readline does, and does not ask for a minimum throughput."""
    reply: list[Any] = [b"+OK listing\r\n"]
    for number in range(1, 9):
        reply += [Pause(0.1), b"%d %d\r\n" % (number, 100 * number)]
    reply.append(b".\r\n")
    server = fake_pop3(session((b"LIST", reply)))
    pop = connect(mod.POP3, server, timeout=0.5)
    if mod is mw_poplib:
        assert pop._bulk_reads()
    started = time.monotonic()
    resp, lines, _ = pop.list()
    assert time.monotonic() - started > 0.5
    assert resp == b"+OK listing"
    assert lines == [b"%d %d" % (n, 100 * n) for n in range(1, 9)]
    finish(pop, server)


@pytest.mark.parametrize("where", ["reply", "body"])
def test_trickling_server_then_desync(fake_pop3: StartServer, connect: Connect, where: str) -> None:
    """After the timeout the connection is out of step: mailwire refuses further commands and
    sends nothing (pop-desync-after-timeout)."""
    if where == "reply":
        reply: list[Any] = [Trickle(b"+OK " + b"x" * 60 + b"\r\n", 0.05)]
    else:
        reply = [b"+OK\r\nfirst\r\n", Trickle(b"x" * 60 + b"\r\n.\r\n", 0.05)]
    server = fake_pop3(session((b"RETR 1", reply)))
    pop = connect(mw_poplib.POP3, server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        pop.retr(1)
    assert time.monotonic() - started < 1.5
    assert pop.sock.gettimeout() == 0.3
    for method in (pop.noop, pop.stat, pop.quit):
        with pytest.raises(mw_poplib.error_proto) as info:
            method()
        assert info.value.args == (DESYNC,)
    assert finish(pop, server) == [b"RETR 1"]


def test_desync_deviation(mod: ModuleType, fake_pop3: StartServer, connect: Connect) -> None:
    """pop-desync-after-timeout: a response cut short by a timeout, then the next command.

    mailwire refuses it with error_proto and sends nothing. The stdlib does send the command,
    but does not read the old response's tail as its answer: the ``SocketIO`` under its
    ``makefile('rb')`` remembers the timeout and every later read raises
    ``OSError('cannot read from timed out object')``.
    """
    server = fake_pop3(session(
        (b"RETR 1", [b"+OK\r\nline 1\r\n", Pause(0.5), b"+OK 99 99\r\n.\r\n"]),
        (b"NOOP", b"+OK the real NOOP reply\r\n"),
    ))  # fmt: skip
    pop = connect(mod.POP3, server, timeout=0.2)
    with pytest.raises(socket.timeout):
        pop.retr(1)
    if mod is mw_poplib:
        with pytest.raises(mod.error_proto, match="out of sync"):
            pop.noop()
        assert finish(pop, server) == [b"RETR 1"]
    else:
        pop.sock.settimeout(TIMEOUT)
        with pytest.raises(OSError, match="cannot read from timed out object"):
            pop.noop()
        assert finish(pop, server) == [b"RETR 1", b"NOOP"]


def test_line_too_long_desyncs(fake_pop3: StartServer, connect: Connect) -> None:
    server = fake_pop3(session((b"RETR 1", b"+OK\r\n" + b"x" * 3000 + b"\r\n.\r\n")))
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(mw_poplib.error_proto, match="line too long"):
        pop.retr(1)
    with pytest.raises(mw_poplib.error_proto, match="out of sync"):
        pop.noop()
    assert finish(pop, server) == [b"RETR 1"]


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_maxresponse(fake_pop3: StartServer, connect: Connect, path: str) -> None:
    """The same limit on both paths: memory stays bounded for a subclass that reads line by
    line, or a debug level of 2, too."""
    body = b"".join(b"line %d\r\n" % i for i in range(100)) + b".\r\n"
    server = fake_pop3(session((b"RETR 1", b"+OK\r\n" + body), (b"RETR 2", b"+OK\r\n" + body)))
    cls = slow_subclass(mw_poplib.POP3) if path == "slow" else mw_poplib.POP3
    pop = connect(cls, server)
    assert pop._bulk_reads() is (path == "fast")
    with mock.patch.object(mw_poplib, "_MAXRESPONSE", len(body)):
        assert len(pop.retr(1)[1]) == 100
    with (
        mock.patch.object(mw_poplib, "_MAXRESPONSE", len(body) - 1),
        pytest.raises(mw_poplib.error_proto, match="response too long"),
    ):
        pop.retr(2)
    with pytest.raises(mw_poplib.error_proto) as info:
        pop.noop()
    assert info.value.args == (DESYNC,)
    finish(pop, server)


# -- the slow path (overridden _getline) equals the fast path ------------------------------------

RICH_MESSAGE = (
    b"+OK\r\n"
    b"Subject: mixed\r\n"
    b"\r\n"
    b"..stuffed\r\n"
    b"lf only\n"
    b"\rcr first\n"
    b"stray \r inside\r\n"
    b"double cr\r\r\n"
    b"\r.\r\n"
    b"...\r\n" + b"".join(b"bulk line %d\r\n" % i for i in range(3000)) + b".\r\n"
)


def rich_session() -> list[Step]:
    return session(
        (b"CAPA", b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\n.\r\n"),
        (b"USER bob", b"+OK\r\n"),
        (b"PASS pw", b"+OK 2 messages\r\n"),
        (b"STAT", b"+OK 2 5000\r\n"),
        (b"LIST", b"+OK\r\n1 4000\r\n2 1000\r\n.\r\n"),
        (b"UIDL", b"+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n"),
        (b"UIDL 2", b"+OK 2 bbb\r\n"),
        (b"RETR 1", RICH_MESSAGE),
        (b"TOP 2 1", b"+OK\r\nSubject: two\r\n\r\nfirst body line\r\n.\r\n"),
        (b"RETR 2", b"+OK\r\n.\r\n"),
        (b"DELE 1", b"+OK\r\n"),
        (b"RSET", b"+OK\r\n"),
        (b"NOOP", b"+OK\r\n"),
        (b"QUIT", b"+OK bye\r\n"),
    )


def run_rich(pop: Any) -> list[Any]:
    return [
        pop.getwelcome(),
        pop.capa(),
        pop.user("bob"),
        pop.pass_("pw"),
        pop.stat(),
        pop.list(),
        pop.uidl(),
        pop.uidl(2),
        pop.retr(1),
        pop.top(2, 1),
        pop.retr(2),
        pop.dele(1),
        pop.rset(),
        pop.noop(),
        pop.quit(),
    ]


def slow_subclass(base: type) -> type:
    class SlowPath(base):  # type: ignore[misc, valid-type]
        def _getline(self) -> Any:
            return super()._getline()

    return SlowPath


@pytest.fixture(scope="module")
def rich_expected() -> list[Any]:
    """The stdlib's results for the rich session, from a private server."""
    server = ScriptedPOP3Server(rich_session()).start()
    try:
        pop = std_poplib.POP3(*server.address, timeout=TIMEOUT)
        try:
            return run_rich(pop)
        finally:
            pop.close()
    finally:
        server.stop()
        assert not server.errors, server.errors


@pytest.mark.parametrize("path", ["fast", "subclass", "instance", "instance-getresp"])
def test_slow_path_equals_fast_path(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, path: str,
    rich_expected: list[Any],
) -> None:  # fmt: skip
    server = fake_pop3(rich_session())
    cls = slow_subclass(mod.POP3) if path == "subclass" else mod.POP3
    pop = connect(cls, server)
    calls = []
    if path.startswith("instance"):
        name = "_getresp" if path == "instance-getresp" else "_getline"
        original = getattr(pop, name)

        def counting() -> Any:
            calls.append(1)
            return original()

        setattr(pop, name, counting)
    if mod is mw_poplib:
        assert pop._bulk_reads() is (path == "fast")
    results = run_rich(pop)
    assert results == rich_expected
    assert results[8][1][:9] == [b"Subject: mixed", b"", b".stuffed", b"lf only", b"cr first",
                                 b"stray \r inside", b"double cr\r", b"\r.", b".."]  # fmt: skip
    if path == "instance":
        assert len(calls) > 3000
    if path == "instance-getresp":
        assert len(calls) > 10  # every reply's status line, multi-line ones included
    server.join()
    assert server.complete


def test_unterminated_maxline_line_then_eof_fast_equals_slow(
    fake_pop3: StartServer, connect: Connect
) -> None:
    outcomes = []
    for cls in (std_poplib.POP3, slow_subclass(mw_poplib.POP3), mw_poplib.POP3):
        server = fake_pop3(session((b"RETR 1", [b"+OK\r\nfirst\r\n" + b"x" * 2048, Close()])))
        pop = connect(cls, server)
        with pytest.raises(std_poplib.error_proto) as info:
            pop.retr(1)
        outcomes.append(info.value.args)
        finish(pop, server)
    assert outcomes == [("-ERR EOF",)] * 3


# -- debug output ----------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 2])
def test_debug_output_matches_stdlib(
    fake_pop3: StartServer, connect: Connect, capsys: pytest.CaptureFixture[str], level: int
) -> None:
    outputs = []
    for module in (std_poplib, mw_poplib):
        server = fake_pop3(rich_session())
        pop = connect(module.POP3, server)
        capsys.readouterr()
        pop.set_debuglevel(level)
        run_rich(pop)
        outputs.append(capsys.readouterr())
    (std_out, std_err), (mw_out, mw_err) = outputs
    assert mw_out == std_out
    assert mw_err == std_err == ""
    if level:
        assert "*cmd* 'STAT'" in mw_out and "*stat* [b'+OK', b'2', b'5000']" in mw_out
    if level > 1:
        assert "*get* b'bulk line 2999\\r\\n'" in mw_out
    else:
        assert "*get*" not in mw_out


# -- context manager (a mailwire extra) -------------------------------------------------------


def test_context_manager_quits(fake_pop3: StartServer) -> None:
    server = fake_pop3(session((b"NOOP", b"+OK\r\n"), (b"QUIT", b"+OK bye\r\n")))
    with mw_poplib.POP3(*server.address, timeout=TIMEOUT) as pop:
        assert pop.noop() == b"+OK"
    assert pop.sock is None
    server.join()
    assert server.lines == [b"NOOP", b"QUIT"]


def test_context_manager_no_quit_after_an_exception(fake_pop3: StartServer) -> None:
    """No QUIT (which would commit deletions) after an error in the block: only close."""
    server = fake_pop3(session((b"DELE 1", b"+OK\r\n"), (b"QUIT", b"+OK bye\r\n")))
    with pytest.raises(KeyError), mw_poplib.POP3(*server.address, timeout=TIMEOUT) as pop:
        pop.dele(1)
        raise KeyError("boom")
    assert pop.sock is None and pop.file is None
    server.join()
    assert server.lines == [b"DELE 1"]


def test_context_manager_after_quit(fake_pop3: StartServer) -> None:
    server = fake_pop3(session((b"QUIT", b"+OK bye\r\n")))
    with mw_poplib.POP3(*server.address, timeout=TIMEOUT) as pop:
        pop.quit()
    server.join()
    assert server.lines == [b"QUIT"]


# -- POP3_SSL -----------------------------------------------------------------------------------


def test_pop3_ssl(
    mod: ModuleType, fake_pop3: StartServer, connect: Connect, tls_files: TLSFiles
) -> None:
    server = fake_pop3(
        session((b"NOOP", b"+OK\r\n"), (b"QUIT", b"+OK bye\r\n")),
        tls_context=tls_files.server_context(),
    )
    pop = connect(mod.POP3_SSL, server, context=tls_files.client_context())
    assert pop.getwelcome() == GREETING[:-2]
    assert isinstance(pop.sock, ssl.SSLSocket)
    with pytest.raises(mod.error_proto) as info:
        pop.stls()
    assert info.value.args == ("-ERR TLS session already established",)
    assert pop.noop() == b"+OK"
    assert pop.quit() == b"+OK bye"
    server.join()
    assert server.received == [(b"NOOP", True), (b"QUIT", True)]


def ssl_modules_with_keyfile() -> list[Any]:
    params = [pytest.param(mw_poplib, id="mailwire")]
    if "keyfile" in inspect.signature(std_poplib.POP3_SSL).parameters:
        params.append(pytest.param(std_poplib, id="stdlib"))
    return params


@pytest.mark.parametrize("module", ssl_modules_with_keyfile())
def test_pop3_ssl_keyfile_certfile(
    module: ModuleType, fake_pop3: StartServer, clients: list[Any], tls_files: TLSFiles
) -> None:
    server = fake_pop3(session(), tls_context=tls_files.server_context())
    with pytest.warns(DeprecationWarning, match="keyfile and certfile are deprecated") as record:
        pop = module.POP3_SSL(*server.address, keyfile=str(tls_files.key),
                              certfile=str(tls_files.cert), timeout=TIMEOUT)  # fmt: skip
    clients.append(pop)
    assert record[0].filename == __file__  # stacklevel 2: the caller's line
    assert (pop.keyfile, pop.certfile) == (str(tls_files.key), str(tls_files.cert))
    finish(pop, server)


@pytest.mark.parametrize("module", ssl_modules_with_keyfile())
@pytest.mark.parametrize("name", ["keyfile", "certfile"])
def test_pop3_ssl_context_exclusive(module: ModuleType, name: str) -> None:
    with pytest.raises(ValueError, match=f"^context and {name} arguments are mutually exclusive$"):
        module.POP3_SSL("127.0.0.1", 1, context=ssl.create_default_context(), **{name: "x"})


# -- exceptions and the module surface ---------------------------------------------------------


def test_error_proto_is_the_stdlibs(fake_pop3: StartServer, connect: Connect) -> None:
    assert issubclass(mw_poplib.error_proto, std_poplib.error_proto)
    server = fake_pop3(session((b"NOOP", b"-ERR nope\r\n")))
    pop = connect(mw_poplib.POP3, server)
    with pytest.raises(std_poplib.error_proto):
        pop.noop()
    finish(pop, server)


SUBSTITUTION_SCRIPT = r"""
import json, socket, sys
import poplib as stdlib_poplib
import mailwire.poplib
sys.modules["poplib"] = mailwire.poplib
import poplib
from poplib import POP3, error_proto

assert poplib is mailwire.poplib and POP3 is mailwire.poplib.POP3

events = []
sys.addaudithook(lambda name, args: name.startswith("poplib.") and events.append(
    [name, [a for a in args if isinstance(a, (str, int, bytes))]]))

def session(module):
    a, b = socket.socketpair()
    b.sendall(b"+OK ready\r\n")
    class Client(module.POP3):
        def _create_socket(self, timeout):
            return a
    client = Client("mail.example", 110)
    b.sendall(b"-ERR nope\r\n")
    try:
        client.noop()
    except stdlib_poplib.error_proto as exc:   # the stdlib's class catches both
        caught = [type(exc).__module__, repr(exc.args[0])]
    try:
        b.sendall(b"-ERR again\r\n")
        client.noop()
    except poplib.error_proto:                 # the substituted name catches mailwire's
        caught.append("substituted name catches")
    except Exception:
        caught.append("substituted name misses")
    client.close(); b.close()
    return caught

results = [session(stdlib_poplib), session(poplib)]
print(json.dumps({"results": results,
                  "events": [[n, [x.decode() if isinstance(x, bytes) else x for x in a]]
                             for n, a in events]}))
"""


def test_substituting_sys_modules_in_a_fresh_interpreter() -> None:
    src = str(Path(mw_poplib.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", SUBSTITUTION_SCRIPT],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    std_result, mw_result = out["results"]
    assert std_result == ["poplib", "b'-ERR nope'", "substituted name misses"]
    assert mw_result == ["mailwire.poplib", "b'-ERR nope'", "substituted name catches"]
    # The audit events are the same for both modules.
    events = out["events"]
    half = len(events) // 2
    assert events[:half] == events[half:]
    assert events[:half] == [
        ["poplib.connect", ["mail.example", 110]],
        ["poplib.putline", ["NOOP"]],
        ["poplib.putline", ["NOOP"]],
    ]


def test_module_surface() -> None:
    assert sorted(mw_poplib.__all__) == sorted(std_poplib.__all__)
    for name in ("POP3_PORT", "POP3_SSL_PORT", "CR", "LF", "CRLF", "HAVE_SSL", "_MAXLINE"):
        assert getattr(mw_poplib, name) == getattr(std_poplib, name), name
    assert mw_poplib.POP3.timestamp.pattern == std_poplib.POP3.timestamp.pattern
    assert mw_poplib.POP3.encoding == std_poplib.POP3.encoding == "UTF-8"
    assert issubclass(mw_poplib.POP3_SSL, mw_poplib.POP3)
    for name in std_poplib.__all__:
        assert hasattr(mw_poplib, name)


def _accepts_every_stdlib_call(std: inspect.Signature, mine: inspect.Signature) -> list[str]:
    """Problems that make a call valid for ``std`` invalid, or different, for ``mine``."""
    problems = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    mine_params = list(mine.parameters.values())
    mine_positional = [p for p in mine_params if p.kind in positional]
    has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in mine_params)
    std_positional = [p for p in std.parameters.values() if p.kind in positional]
    for index, param in enumerate(std_positional):
        if index >= len(mine_positional) or mine_positional[index].name != param.name:
            problems.append(f"positional parameter {index} should be {param.name!r}")
        elif mine_positional[index].default != param.default:
            problems.append(f"default of {param.name!r} differs")
    for param in std.parameters.values():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            other = mine.parameters.get(param.name)
            if other is None and not has_var_kw:
                problems.append(f"keyword {param.name!r} missing")
            elif other is not None and other.default != param.default:
                problems.append(f"default of {param.name!r} differs")
    for param in mine_params:
        if (
            param.name not in std.parameters
            and param.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
            and param.default is inspect.Parameter.empty
        ):
            problems.append(f"extra required parameter {param.name!r}")
    return problems


def _public_methods(cls: type) -> list[str]:
    return sorted(
        name for name, value in vars(cls).items()
        if callable(value) and (not name.startswith("__") or name == "__init__")
    )  # fmt: skip


@pytest.mark.parametrize("cls_name", ["POP3", "POP3_SSL"])
def test_method_signatures(cls_name: str) -> None:
    std_cls = getattr(std_poplib, cls_name)
    mine_cls = getattr(mw_poplib, cls_name)
    names = _public_methods(std_cls)
    assert names
    problems = {}
    for name in names:
        if cls_name == "POP3_SSL" and name == "stls":
            continue  # see test_pop3_ssl_stls_signature
        found = _accepts_every_stdlib_call(
            inspect.signature(getattr(std_cls, name)), inspect.signature(getattr(mine_cls, name))
        )
        if found:
            problems[name] = found
    assert not problems
    # mailwire extras are allowed; the ones it has are documented here.
    extras = set(_public_methods(mine_cls)) - set(names) - set(_public_methods(std_poplib.POP3))
    assert extras <= {"auth", "_bulk_reads", "_read_body"}, extras


def test_pop3_ssl_stls_signature() -> None:
    """Every call the running stdlib's POP3_SSL.stls accepts, mailwire's accepts too (3.9-3.11
    take keyfile and certfile there)."""
    std = inspect.signature(std_poplib.POP3_SSL.stls)
    mine = inspect.signature(mw_poplib.POP3_SSL.stls)
    assert _accepts_every_stdlib_call(std, mine) == []


BROKEN_SSL = """
import importlib.abc, importlib.machinery, json, socket, sys

class Unloadable(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError("libssl missing")
    def exec_module(self, module):
        pass

class BrokenSSL(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "_ssl":  # findable, but it cannot be loaded
            return importlib.machinery.ModuleSpec(name, Unloadable())
        return None

sys.meta_path.insert(0, BrokenSSL())
import poplib as std
from mailwire import poplib as mw
out = {"std": [std.HAVE_SSL, hasattr(std, "POP3_SSL")],
       "mw": [mw.HAVE_SSL, hasattr(mw, "POP3_SSL")]}
try:
    mw.POP3_SSL("127.0.0.1", 1)
except ImportError as exc:
    out["use"] = "ImportError"
except OSError:
    out["use"] = "OSError"
print(json.dumps(out))
"""


def test_have_ssl_without_importing_it_deviation() -> None:
    """With an _ssl that can be found but not loaded, the stdlib says False and has no
    POP3_SSL; mailwire (which does not import ssl to find out) says True, and its POP3_SSL
    raises ImportError when used."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", BROKEN_SSL], capture_output=True, text=True, timeout=60, check=True
    )
    out = json.loads(done.stdout)
    assert out == {"std": [False, False], "mw": [True, True], "use": "ImportError"}


def test_deviation_registry_covers_these_tests() -> None:
    """Each poplib deviation is exercised in this file, both ways."""
    ids = {d.id for d in DEVIATIONS if d.module in ("poplib", "both")}
    tested = {
        "pop-control-chars": test_control_characters_in_the_stdlib,
        "pop-eof-mid-line": test_truncated_reply_line_deviation,
        "line-deadline": test_line_deadline_deviation,
        "pop-desync-after-timeout": test_desync_deviation,
        "pop-stls-buffered-plaintext": test_stls_buffered_plaintext_deviation,
        "pop-capa-robust": test_capa_robust,
        "pop-stat-errors": test_stat_malformed,
        "pop-close-always": test_err_greeting_closes_the_socket,
        "have-ssl-unimported": test_have_ssl_without_importing_it_deviation,
    }
    assert ids <= set(tested), ids - set(tested)
