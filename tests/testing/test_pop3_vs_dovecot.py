"""The embedded POP3 server against a real Dovecot: the same session, the same answers.

One scripted session (capabilities, login, STAT, LIST, UIDL, TOP, RETR, errors, DELE/RSET,
QUIT and what a second session then sees) runs through ``mailwire.poplib`` against
``MailServer`` and against the private Dovecot (``tests/support/dovecot.py``). Results must
match exactly, except what differs by design: the greeting, the UIDL values (each server has
its own), SASL mechanisms and the IMPLEMENTATION line in CAPA.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from mailwire import poplib
from mailwire.testing import MailServer, sample_messages

pytestmark = pytest.mark.dovecot

USER = "alice"
MESSAGES = [m.as_bytes() for m in sample_messages(f"{USER}@mailwire.test")] + [
    b"Subject: dots\n\n.\n..\n.leading\nend\n",
    b"Subject: empty body\n\n",
]
CAPABILITIES = ("TOP", "UIDL", "USER", "STLS", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE")


def attempt(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except poplib.error_proto as exc:
        return ("error", exc.args)


def session(host: str, port: int, password: str) -> list[Any]:
    out: list[Any] = []
    client = poplib.POP3(host, port, timeout=10)
    try:
        capa = client.capa()
        out.append(sorted(name for name in capa if name in CAPABILITIES))
        out.append(client.user(USER))
        out.append(client.pass_(password))
        count, size = client.stat()
        out.append((count, size))
        out.append(client.list())
        out.append(client.list(2))
        out.append(attempt(lambda: client.list(99)))
        response, uids, _ = client.uidl()
        out.append(
            (response, [re.sub(rb" \S+$", b" <uid>", line) for line in uids], len(uids))
        )
        for number in range(1, count + 1):
            out.append(client.top(number, 0))
            out.append(client.top(number, 2))
            out.append(client.retr(number))
        out.append(attempt(lambda: client.retr("x")))
        out.append(client.dele(1))
        out.append(attempt(lambda: client.retr(1)))
        out.append(client.stat())
        out.append(client.rset())
        out.append(client.stat())
        out.append(client.dele(2))
        out.append(client.noop())
        out.append(client.quit())
    finally:
        client.close()
    after = poplib.POP3(host, port, timeout=10)
    try:
        after.user(USER)
        after.pass_(password)
        out.append(after.stat())
        out.append(after.quit())
    finally:
        after.close()
    return out


def test_same_session_same_answers(fresh_dovecot: Any) -> None:
    for message in MESSAGES:
        fresh_dovecot.deliver(USER, message)
    expected = session(fresh_dovecot.host, fresh_dovecot.ports["pop3"], fresh_dovecot.users[USER])
    with MailServer(users={USER: "secret"}) as server:
        for message in MESSAGES:
            server.deliver(USER, message)
        got = session(server.host, server.pop3_port, "secret")
    assert len(got) == len(expected)
    for index, (mine, theirs) in enumerate(zip(got, expected)):
        assert mine == theirs, f"step {index}: mailwire {mine!r} != Dovecot {theirs!r}"
