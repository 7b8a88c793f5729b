"""``mailwire.poplib`` against the private Dovecot, with the stdlib's ``poplib`` as the oracle.

The centre is :func:`scripted_session`: one fixed POP3 session (every command of the stdlib's
surface, a few refused ones included) run through the stdlib, through mailwire, and through
mailwire forced onto its line-by-line path, over plaintext, STLS and implicit TLS. The results
must be identical, and must also match what the delivered bytes predict independently:

- Dovecot reports every size (STAT, LIST, ``+OK N octets``) for the message with its line endings
  normalised to CRLF, whatever is stored (LF, CRLF or a mix; a bare CR stays a bare CR);
- a message that does not end in a newline is sent with a CRLF appended that its size does not
  count, so ``retr``'s octets are then the LIST size + 2 (an empty message arrives as one empty
  line);
- ``retr`` lines joined with CRLF (plus a final CRLF) are that wire form, dot-unstuffed.

The rest covers what the stdlib session cannot: APOP, SASL ``auth`` (PLAIN, LOGIN, CRAM-MD5,
SCRAM-SHA-256, cancellation), TLS verification, deletion semantics, the context manager (a
mailwire addition), UTF8 refusal, timeouts and a bulk fetch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import poplib
import random
import re
import secrets
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

import mailwire.poplib as mpoplib
from mailwire import transport
from support.dovecot import DovecotServer

pytestmark = pytest.mark.dovecot

TIMEOUT = 10

# -- Dovecot's POP3 replies (2.3.19), as it sends them ------------------------------------------

GREETING = re.compile(rb"\+OK Dovecot( \([^()]*\))? ready\. (<[^<>@\s]+@[^<>\s]+>)")
LOGGED_IN = b"+OK Logged in."
AUTH_FAILED = b"-ERR [AUTH] Authentication failed."
AUTH_ABORTED = b"-ERR Authentication aborted by client."
UNSUPPORTED_MECHANISM = b"-ERR [AUTH] Unsupported authentication mechanism."
MARKED = b"+OK Marked to be deleted."
LOGOUT = b"+OK Logging out."
LOGOUT_DELETED = b"+OK Logging out, messages deleted."
STLS_OK = b"+OK Begin TLS negotiation now."
SASL = ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"]
BASE_CAPA = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
#: CAPA before login on a plaintext connection (after TLS: the same without STLS).
CAPA_LOGIN = {**{name: [] for name in [*BASE_CAPA, "STLS", "USER"]}, "SASL": SASL}
CAPA_TLS_LOGIN = {name: args for name, args in CAPA_LOGIN.items() if name != "STLS"}
#: CAPA once logged in: no USER, SASL or STLS, and no UTF8 (RFC 6856) anywhere.
CAPA_TRANSACTION: dict[str, list[str]] = {name: [] for name in BASE_CAPA}
UIDL_VALUE = rb"[0-9a-f]{16}"  # pop3_uidl_format %08Xu%08Xv: UID and UIDVALIDITY in hex

# -- the seeded mailbox ---------------------------------------------------------------------------


def _crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def _lf(text: str) -> bytes:
    return text.encode("utf-8")


_PLAIN = """\
From: Alice <alice@example.org>
To: Bob <bob@example.org>
Subject: plain text
Date: Mon, 01 Jan 2024 10:00:00 +0000
Message-ID: <plain@example.org>

Hello Bob,

this is a plain text message.
"""
_PLAIN += "-- \nAlice\n"  # the signature separator keeps its trailing space

_DOTS = """\
Subject: lines starting with dots

.
..
...
.x
..x
 .
.\t
end of dots
.
"""


def _multipart() -> bytes:
    attachment = base64.encodebytes(bytes(range(256)) * 24).decode("ascii")
    return _crlf(
        "From: alice@example.org\n"
        "Subject: multipart with attachment\n"
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


def _non_ascii() -> bytes:
    subject = base64.b64encode("Grüße aus Köln ✓".encode()).decode()
    return _lf(
        f"Subject: =?UTF-8?B?{subject}?=\n"
        "From: =?ISO-8859-1?Q?Andr=E9?= <andre@example.org>\n"
        "X-Raw-8bit: Grüße, 日本語\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Grüße aus Köln — ünïcödé ✓\n"
        "日本語のテキスト\n"
        ".Ünïcode after a dot\n"
    )


def _long_lines() -> bytes:
    return (
        b"Subject: lines of exactly 998 characters\r\n\r\n"
        + b"a" * 998
        + b"\r\n"
        + b"." * 2
        + b"b" * 996  # 998 characters starting with dots: 999 on the wire after stuffing
        + b"\r\n"
        + b"." * 998
        + b"\r\nshort\r\n"
    )


def _big(size: int = 2 * 1024 * 1024) -> bytes:
    rng = random.Random(2)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    lines = ["Subject: about two MiB", "Content-Type: text/plain", ""]
    total = 0
    while total < size:
        width = rng.choice((0, 1, 40, 76, 76, 76, 200, 997))
        line = "".join(rng.choices(alphabet, k=width))
        if rng.random() < 0.02:
            line = "." + line[1:] if line else "."
        lines.append(line)
        total += len(line) + 2
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


#: (name, bytes as stored in the Maildir), delivered in this order (message numbers 1..N).
MAILBOX: list[tuple[str, bytes]] = [
    ("plain-crlf", _crlf(_PLAIN)),
    ("plain-lf", _lf(_PLAIN)),
    ("multipart-attachment", _multipart()),
    ("rfc2047-and-8bit-utf8", _non_ascii()),
    ("dots-lf", _lf(_DOTS)),
    ("dots-crlf", _crlf(_DOTS)),
    ("998-char-lines", _long_lines()),
    ("empty-body", _crlf("Subject: empty body\nFrom: alice@example.org\n\n")),
    ("headers-only", _crlf("Subject: no blank line\nFrom: alice@example.org\n")),
    ("no-final-newline", b"Subject: unterminated\r\n\r\nthe last line has no newline"),
    (
        "mixed-endings",
        b"Subject: mixed\r\nX-Ending: lf\n\ncrlf\r\nlf\nbare\rcr in a line\r\n\r\n.\n..\r\nend\n",
    ),
    (
        "folded-headers",
        _lf(
            "Subject: a header\n folded over\n\tthree lines\nTo: a@example.org,\n"
            "    b@example.org\n\nbody\n"
        ),
    ),
    ("empty-message", b""),
    ("about-2-MiB", _big()),
]


def normalised(message: bytes) -> bytes:
    """The message with every line ending made CRLF: what Dovecot counts (LIST, STAT)."""
    return re.sub(rb"\r?\n", b"\r\n", message)


def wire(message: bytes) -> bytes:
    """What RETR delivers after dot-unstuffing: normalised, and always ending in CRLF."""
    data = normalised(message)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def wire_lines(message: bytes) -> list[bytes]:
    return wire(message).split(b"\r\n")[:-1]


def top_lines(message: bytes, count: int) -> list[bytes]:
    """The header, the blank line and ``count`` body lines (all lines without a blank one)."""
    lines = wire_lines(message)
    if b"" not in lines:
        return lines
    blank = lines.index(b"")
    return lines[: blank + 1 + count]


def octets(lines: list[bytes]) -> int:
    """The stdlib's octet count for lines that arrived CRLF-terminated."""
    return sum(len(line) + 2 for line in lines)


class Matches:
    """Equal to any bytes that fully match ``pattern`` (for values only the server knows)."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern = re.compile(pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, bytes) and self.pattern.fullmatch(other) is not None

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


# -- clients ------------------------------------------------------------------------------------


class _LineByLine:
    """Overriding ``_getline`` turns mailwire's block-wise reads off (the subclass seam)."""

    def _getline(self) -> tuple[bytes, int]:
        return super()._getline()  # type: ignore[misc, no-any-return]


class LinePOP3(_LineByLine, mpoplib.POP3):
    pass


class LinePOP3_SSL(_LineByLine, mpoplib.POP3_SSL):
    pass


class Client(NamedTuple):
    name: str
    POP3: Any
    POP3_SSL: Any
    error_proto: type[Exception]


STDLIB = Client("stdlib", poplib.POP3, poplib.POP3_SSL, poplib.error_proto)
MAILWIRE = Client("mailwire", mpoplib.POP3, mpoplib.POP3_SSL, mpoplib.error_proto)
MAILWIRE_LINES = Client("mailwire-line-by-line", LinePOP3, LinePOP3_SSL, mpoplib.error_proto)
CLIENTS = (STDLIB, MAILWIRE, MAILWIRE_LINES)


def deliver_mailbox(server: DovecotServer, user: str) -> None:
    for _, message in MAILBOX:
        server.deliver(user, message)


def login(client: Any, server: DovecotServer, user: str) -> None:
    assert client.user(user) == b"+OK"
    assert client.pass_(server.users[user]) == LOGGED_IN


def mw_session(server: DovecotServer, user: str = "alice") -> mpoplib.POP3:
    client = mpoplib.POP3(server.host, server.ports["pop3"], timeout=TIMEOUT)
    login(client, server, user)
    return client


def scripted_session(
    client_kind: Client, transport_name: str, server: DovecotServer, user: str, count: int
) -> list[tuple[str, Any]]:
    """Run one fixed session and return ``[(step, result), ...]``.

    An error reply is recorded as ``("error_proto", args)``; the exception must be the client's
    own ``error_proto`` (mailwire's is also a subclass of the stdlib's).
    """
    verifying = ssl.create_default_context(cafile=server.ca_file)
    results: list[tuple[str, Any]] = []

    def step(label: str, func: Callable[..., Any], *args: Any) -> Any:
        try:
            value = func(*args)
        except poplib.error_proto as exc:
            assert isinstance(exc, client_kind.error_proto), (label, type(exc))
            value = ("error_proto", exc.args)
        results.append((label, value))
        return value

    if transport_name == "pop3s":
        client = client_kind.POP3_SSL(
            "localhost", server.ports["pop3s"], timeout=TIMEOUT, context=verifying
        )
    else:
        client = client_kind.POP3("localhost", server.ports["pop3"], timeout=TIMEOUT)
    try:
        welcome = client.getwelcome()
        assert welcome is client.welcome
        match = GREETING.fullmatch(welcome)
        assert match, welcome
        # the APOP timestamp differs per connection: compare the greeting's shape
        results.append(("welcome", welcome.replace(match[2], b"<timestamp>")))
        if transport_name == "stls":
            step("stls", client.stls, verifying)
        results.append(("tls", isinstance(client.sock, ssl.SSLSocket)))
        step("capa before login", client.capa)
        step("user", client.user, user)
        step("pass_", client.pass_, server.users[user])
        step("stat", client.stat)
        step("list()", client.list)
        for n in range(1, count + 1):
            step(f"list({n})", client.list, n)
        step("uidl()", client.uidl)
        for n in range(1, count + 1):
            step(f"uidl({n})", client.uidl, n)
        for n in range(1, count + 1):
            for lines in range(4):
                step(f"top({n}, {lines})", client.top, n, lines)
        for n in range(1, count + 1):
            step(f"retr({n})", client.retr, n)
        step("retr(str)", client.retr, "1")
        step("noop", client.noop)
        step("capa", client.capa)
        step("retr(missing)", client.retr, count + 1)
        step("top(1, -1)", client.top, 1, -1)
        step("utf8", client.utf8)
        step("dele(1)", client.dele, 1)
        step("list(1) after dele", client.list, 1)
        step("retr(1) after dele", client.retr, 1)
        step("stat after dele", client.stat)
        step("rset", client.rset)
        step("stat after rset", client.stat)
        step("quit", client.quit)
        results.append(("closed", (client.sock, client.file)))
    finally:
        client.close()
    return results


def expected_session(transport_name: str, count: int) -> list[tuple[str, Any]]:
    """The session's results as predicted from MAILBOX and Dovecot's documented replies."""
    messages = [message for _, message in MAILBOX][:count]
    sizes = [len(normalised(message)) for message in messages]
    numbers = range(1, count + 1)
    tls = transport_name != "plain"
    welcome = Matches(rb"\+OK Dovecot( \([^()]*\))? ready\. <timestamp>")
    expected: list[tuple[str, Any]] = [("welcome", welcome)]
    if transport_name == "stls":
        expected.append(("stls", STLS_OK))
    expected += [
        ("tls", tls),
        ("capa before login", CAPA_TLS_LOGIN if tls else CAPA_LOGIN),
        ("user", b"+OK"),
        ("pass_", LOGGED_IN),
        ("stat", (count, sum(sizes))),
    ]
    scan = [b"%d %d" % (n, size) for n, size in zip(numbers, sizes)]
    expected.append(("list()", (b"+OK %d messages:" % count, scan, octets(scan))))
    expected += [(f"list({n})", b"+OK " + line) for n, line in zip(numbers, scan)]
    uids = [Matches(b"%d " % n + UIDL_VALUE) for n in numbers]
    uidl_octets = sum(len(b"%d " % n) + 16 + 2 for n in numbers)
    expected.append(("uidl()", (b"+OK", uids, uidl_octets)))
    expected += [(f"uidl({n})", Matches(rb"\+OK %d " % n + UIDL_VALUE)) for n in numbers]
    for n, message in zip(numbers, messages):
        for lines in range(4):
            head = top_lines(message, lines)
            expected.append((f"top({n}, {lines})", (b"+OK", head, octets(head))))
    for n, message, size in zip(numbers, messages, sizes):
        expected.append(
            (f"retr({n})", (b"+OK %d octets" % size, wire_lines(message), len(wire(message))))
        )
    first = messages[0]
    expected += [
        ("retr(str)", (b"+OK %d octets" % sizes[0], wire_lines(first), len(wire(first)))),
        ("noop", b"+OK"),
        ("capa", CAPA_TRANSACTION),
        ("retr(missing)", ("error_proto", (b"-ERR There's no message %d." % (count + 1),))),
        ("top(1, -1)", ("error_proto", (b"-ERR Invalid size: -1",))),
        ("utf8", ("error_proto", (b"-ERR Unknown command: UTF8",))),
        ("dele(1)", MARKED),
        ("list(1) after dele", ("error_proto", (b"-ERR Message is deleted.",))),
        ("retr(1) after dele", ("error_proto", (b"-ERR Message is deleted.",))),
        ("stat after dele", (count - 1, sum(sizes) - sizes[0])),
        ("rset", b"+OK"),
        ("stat after rset", (count, sum(sizes))),
        ("quit", LOGOUT),
        ("closed", (None, None)),
    ]
    return expected


@pytest.fixture
def seeded(fresh_dovecot: DovecotServer) -> DovecotServer:
    """``alice`` holds exactly MAILBOX."""
    deliver_mailbox(fresh_dovecot, "alice")
    return fresh_dovecot


# -- the same session through the stdlib and mailwire -------------------------------------------


def test_mailbox_covers_the_awkward_shapes() -> None:
    stored = dict(MAILBOX)
    assert len(MAILBOX) >= 12
    assert b"\r\n" not in stored["plain-lf"] and b"\r\n" in stored["plain-crlf"]
    assert any(len(line) == 998 for line in stored["998-char-lines"].split(b"\r\n"))
    assert len(stored["about-2-MiB"]) >= 2 * 1024 * 1024
    assert b"\n.\n" in stored["dots-lf"] and b"\n..\r\n" in stored["dots-crlf"]
    assert stored["empty-body"].endswith(b"\r\n\r\n")
    assert stored["rfc2047-and-8bit-utf8"].count(b"=?") == 2
    assert not stored["rfc2047-and-8bit-utf8"].isascii()


@pytest.mark.parametrize("transport_name", ["plain", "stls", "pop3s"])
def test_same_session_stdlib_and_mailwire(seeded: DovecotServer, transport_name: str) -> None:
    count = len(MAILBOX)
    runs = {
        kind.name: scripted_session(kind, transport_name, seeded, "alice", count)
        for kind in CLIENTS
    }
    expected = expected_session(transport_name, count)
    for name, results in runs.items():
        assert [label for label, _ in results] == [label for label, _ in expected], name
        for (label, got), (_, want) in zip(results, expected):
            assert got == want, f"{name}: {label}"
    assert runs["mailwire"] == runs["stdlib"]
    assert runs["mailwire-line-by-line"] == runs["stdlib"]
    # the UIDs are one per message and stable across sessions
    uid_lines = dict(runs["stdlib"])["uidl()"][1]
    assert len(set(uid_lines)) == count
    for n, line in enumerate(uid_lines, 1):
        assert dict(runs["stdlib"])[f"uidl({n})"] == b"+OK " + line


def test_mailwire_reads_blocks_from_dovecot(dovecot: DovecotServer) -> None:
    """The comparison above exercised the fast path (and the subclass the slow one)."""
    for cls, bulk in ((mpoplib.POP3, True), (LinePOP3, False)):
        client = cls(dovecot.host, dovecot.ports["pop3"], timeout=TIMEOUT)
        try:
            assert client._bulk_reads() is bulk
        finally:
            client.quit()


# -- logins -------------------------------------------------------------------------------------


class RecordingPOP3(mpoplib.POP3):
    """Keeps every line sent (``_putline`` is part of the subclass seam)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[bytes] = []
        super().__init__(*args, **kwargs)

    def _putline(self, line: bytes) -> None:
        self.sent.append(line)
        super()._putline(line)


@pytest.mark.parametrize("user", ["alice", "awk"])
def test_apop(dovecot: DovecotServer, user: str) -> None:
    client = RecordingPOP3(dovecot.host, dovecot.ports["pop3"], timeout=TIMEOUT)
    try:
        match = GREETING.fullmatch(client.getwelcome())
        assert match
        password = dovecot.users[user].encode("utf-8")
        digest = hashlib.md5(match[2] + password).hexdigest()
        assert client.apop(user, dovecot.users[user]) == LOGGED_IN
        assert client.sent == [f"APOP {user} {digest}".encode()]
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def test_wrong_passwords(dovecot: DovecotServer) -> None:
    client = mpoplib.POP3(dovecot.host, dovecot.ports["pop3"], timeout=TIMEOUT)
    try:
        with pytest.raises(mpoplib.error_proto) as apop:
            client.apop("alice", "wrong")
        assert apop.value.args == (AUTH_FAILED,)
        assert client.user("alice") == b"+OK"
        # an `except poplib.error_proto` written for the stdlib catches mailwire's
        with pytest.raises(poplib.error_proto) as pass_:
            client.pass_("wrong")
        assert pass_.value.args == (AUTH_FAILED,)
        # a failed PASS forgets the user name
        with pytest.raises(mpoplib.error_proto) as again:
            client.pass_("alicepass")
        assert again.value.args == (b"-ERR No username given.",)
        login(client, dovecot, "alice")  # the connection is still usable
    finally:
        client.quit()


@pytest.mark.parametrize("user", ["awk", "awk7"])
@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_awkward_password_user_pass(dovecot: DovecotServer, user: str, kind: Client) -> None:
    client = kind.POP3(dovecot.host, dovecot.ports["pop3"], timeout=TIMEOUT)
    try:
        login(client, dovecot, user)  # PASS sends the rest of the line as UTF-8
        assert client.stat()[0] >= 0
    finally:
        assert client.quit() == LOGOUT


def _plain(user: str, password: str) -> bytes:
    return b"\0" + user.encode() + b"\0" + password.encode("utf-8")


def _auth_client(server: DovecotServer) -> RecordingPOP3:
    return RecordingPOP3(server.host, server.ports["pop3"], timeout=TIMEOUT)


@pytest.mark.parametrize("user", ["alice", "awk"])
def test_auth_plain_initial_response(dovecot: DovecotServer, user: str) -> None:
    client = _auth_client(dovecot)
    try:
        response = _plain(user, dovecot.users[user])
        assert client.auth("PLAIN", initial_response=response) == LOGGED_IN
        assert client.sent == [b"AUTH PLAIN " + base64.b64encode(response)]
        assert client.stat()[0] >= 0
    finally:
        client.quit()
    client = _auth_client(dovecot)
    try:  # a str initial response is sent as UTF-8
        text = "\0" + user + "\0" + dovecot.users[user]
        assert client.auth("PLAIN", initial_response=text) == LOGGED_IN
    finally:
        client.quit()


@pytest.mark.parametrize("user", ["alice", "awk"])
def test_auth_plain_authobject(dovecot: DovecotServer, user: str) -> None:
    challenges: list[bytes] = []

    def answer(challenge: bytes) -> bytes:
        challenges.append(challenge)
        return _plain(user, dovecot.users[user])

    client = _auth_client(dovecot)
    try:
        assert client.auth("PLAIN", authobject=answer) == LOGGED_IN
        assert challenges == [b""]  # Dovecot sends "+ " and waits
        assert client.sent == [b"AUTH PLAIN", base64.b64encode(_plain(user, dovecot.users[user]))]
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def test_auth_login_answers_both_challenges(dovecot: DovecotServer) -> None:
    challenges: list[bytes] = []

    def answer(challenge: bytes) -> str:  # str answers are sent as UTF-8
        challenges.append(challenge)
        return {b"Username:": "awk", b"Password:": dovecot.users["awk"]}[challenge]

    client = _auth_client(dovecot)
    try:
        assert client.auth("LOGIN", authobject=answer) == LOGGED_IN
        assert challenges == [b"Username:", b"Password:"]
        assert client.sent[0] == b"AUTH LOGIN"
        assert base64.b64decode(client.sent[2]) == dovecot.users["awk"].encode("utf-8")
    finally:
        client.quit()


def test_auth_cram_md5(dovecot: DovecotServer) -> None:
    challenges: list[bytes] = []

    def answer(challenge: bytes) -> bytes:
        challenges.append(challenge)
        digest = hmac.new(b"bobpass", challenge, "md5").hexdigest()
        return b"bob " + digest.encode()

    client = _auth_client(dovecot)
    try:
        assert client.auth("CRAM-MD5", authobject=answer) == LOGGED_IN
        assert len(challenges) == 1
        assert re.fullmatch(rb"<[^<>@\s]+@[^<>\s]+>", challenges[0]), challenges
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def _scram_sha256(user: str, password: str) -> tuple[Callable[[bytes], bytes], list[bytes]]:
    """A SCRAM-SHA-256 client (RFC 7677, no channel binding) and the challenges it saw."""
    nonce = secrets.token_urlsafe(18)
    first_bare = f"n={user},r={nonce}"
    seen: list[bytes] = []
    server_signature: list[bytes] = []

    def hmac256(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), "sha256").digest()

    def answer(challenge: bytes) -> bytes:
        seen.append(challenge)
        text = challenge.decode()
        if not text:
            return b"n,," + first_bare.encode()
        if text.startswith("v="):
            assert base64.b64decode(text[2:]) == server_signature[0]
            return b""
        fields = dict(part.split("=", 1) for part in text.split(","))
        assert fields["r"].startswith(nonce)
        salted = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        without_proof = f"c=biws,r={fields['r']}"
        auth_message = f"{first_bare},{text},{without_proof}"
        client_key = hmac256(salted, "Client Key")
        signature = hmac256(hashlib.sha256(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_signature.append(hmac256(hmac256(salted, "Server Key"), auth_message))
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    return answer, seen


def test_auth_scram_sha256_multiple_rounds(dovecot: DovecotServer) -> None:
    answer, seen = _scram_sha256("alice", "alicepass")
    client = _auth_client(dovecot)
    try:
        assert client.auth("SCRAM-SHA-256", authobject=answer) == LOGGED_IN
        assert len(seen) == 3 and seen[0] == b"" and seen[2].startswith(b"v=")
        assert client.sent[-1] == b""  # the empty answer to the server's final message
    finally:
        client.quit()


def test_auth_failures_and_cancellation(dovecot: DovecotServer) -> None:
    client = _auth_client(dovecot)
    try:
        with pytest.raises(mpoplib.error_proto) as cancelled:
            client.auth("PLAIN", authobject=lambda challenge: b"*")
        assert cancelled.value.args == (AUTH_ABORTED,)
        assert client.sent[-1] == b"*"
        with pytest.raises(mpoplib.error_proto) as cancelled:
            client.auth("LOGIN", authobject=lambda c: "*" if c == b"Password:" else "alice")
        assert cancelled.value.args == (AUTH_ABORTED,)
        with pytest.raises(mpoplib.error_proto) as failed:
            client.auth("PLAIN", initial_response=_plain("alice", "wrong"))
        assert failed.value.args == (AUTH_FAILED,)
        with pytest.raises(mpoplib.error_proto) as unknown:
            client.auth("X-NOSUCH", initial_response=b"x")
        assert unknown.value.args == (UNSUPPORTED_MECHANISM,)
        # an empty initial response goes out as "=" (RFC 5034) and is a failed PLAIN login
        with pytest.raises(mpoplib.error_proto) as empty:
            client.auth("PLAIN", initial_response=b"")
        assert empty.value.args == (AUTH_FAILED,)
        assert client.sent[-1] == b"AUTH PLAIN ="
        login(client, dovecot, "alice")  # still in sync after all of that
        assert client.stat()[0] >= 0
    finally:
        client.quit()


# -- TLS ----------------------------------------------------------------------------------------


def _unrelated_ca(directory: Path) -> str:
    """A CA certificate that did not sign the server's certificate."""
    key, cert = directory / "other-ca.key", directory / "other-ca.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=unrelated mailwire test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    return str(cert)


class _RenamingContext(ssl.SSLContext):
    """Verifies the server against another name than the one connected to."""

    expected_name = "mail.example.invalid"

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["server_hostname"] = self.expected_name
        return super().wrap_socket(*args, **kwargs)


def _renaming_context(cafile: str) -> ssl.SSLContext:
    context = _RenamingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    return context


def test_stls_with_a_verifying_context(dovecot: DovecotServer) -> None:
    verifying = ssl.create_default_context(cafile=dovecot.ca_file)
    client = mpoplib.POP3("localhost", dovecot.ports["pop3"], timeout=TIMEOUT)
    try:
        assert client.capa() == CAPA_LOGIN
        assert client.stls(context=verifying) == STLS_OK
        assert isinstance(client.sock, ssl.SSLSocket)
        assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert client.sock.getpeercert()["subject"] == ((("commonName", "localhost"),),)
        assert "STLS" not in client.capa()
        with pytest.raises(mpoplib.error_proto) as again:
            client.stls(context=verifying)
        assert again.value.args == ("-ERR TLS session already established",)
        # Dovecot's own answer to a second STLS
        with pytest.raises(mpoplib.error_proto) as raw:
            client._shortcmd("STLS")
        assert raw.value.args == (b"-ERR TLS is already active.",)
        login(client, dovecot, "bob")
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def test_stls_twice_matches_the_stdlib(dovecot: DovecotServer) -> None:
    verifying = ssl.create_default_context(cafile=dovecot.ca_file)
    errors = []
    for kind in (STDLIB, MAILWIRE):
        client = kind.POP3("localhost", dovecot.ports["pop3"], timeout=TIMEOUT)
        try:
            client.stls(context=verifying)
            with pytest.raises(kind.error_proto) as again:
                client.stls(context=verifying)
            errors.append((type(again.value).__name__, again.value.args))
        finally:
            client.quit()
    assert errors[0] == errors[1] == ("error_proto", ("-ERR TLS session already established",))


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_pop3_ssl_with_a_verifying_context(dovecot: DovecotServer, host: str) -> None:
    verifying = ssl.create_default_context(cafile=dovecot.ca_file)
    client = mpoplib.POP3_SSL(host, dovecot.ports["pop3s"], context=verifying, timeout=TIMEOUT)
    try:
        assert client.context is verifying
        assert GREETING.fullmatch(client.getwelcome())
        assert client.capa() == CAPA_TLS_LOGIN
        with pytest.raises(mpoplib.error_proto) as stls:
            client.stls()
        assert stls.value.args == ("-ERR TLS session already established",)
        login(client, dovecot, "bob")
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def test_default_contexts_do_not_verify(
    dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like the stdlib, the default context accepts the test CA's certificate unverified."""
    monkeypatch.delenv("MAILWIRE_VERIFY_TLS", raising=False)
    monkeypatch.setattr(transport, "VERIFY_BY_DEFAULT", None)
    client = mpoplib.POP3_SSL("localhost", dovecot.ports["pop3s"], timeout=TIMEOUT)
    try:
        assert client.context.verify_mode == ssl.CERT_NONE
        login(client, dovecot, "alice")
        assert client.stat()[0] >= 0
    finally:
        client.quit()
    client = mpoplib.POP3("localhost", dovecot.ports["pop3"], timeout=TIMEOUT)
    try:
        assert client.stls() == STLS_OK
        assert isinstance(client.sock, ssl.SSLSocket)
        login(client, dovecot, "alice")
    finally:
        client.quit()


@pytest.fixture(scope="module")
def unrelated_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _unrelated_ca(tmp_path_factory.mktemp("other-ca"))


def test_verification_failures(dovecot: DovecotServer, unrelated_ca: str) -> None:
    other = ssl.create_default_context(cafile=unrelated_ca)
    renaming = _renaming_context(dovecot.ca_file)
    for context, reason in ((other, "unable to get local issuer"), (renaming, "mismatch")):
        with pytest.raises(ssl.SSLCertVerificationError) as implicit:
            mpoplib.POP3_SSL("localhost", dovecot.ports["pop3s"], context=context, timeout=5)
        assert reason in implicit.value.verify_message.lower(), implicit.value.verify_message
        client = mpoplib.POP3("localhost", dovecot.ports["pop3"], timeout=5)
        try:
            with pytest.raises(ssl.SSLCertVerificationError) as upgrade:
                client.stls(context=context)
            assert reason in upgrade.value.verify_message.lower()
            assert client.sock.fileno() == -1  # the ssl module closed it
        finally:
            client.close()
    # the stdlib fails the same way with the same contexts
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("localhost", dovecot.ports["pop3s"], context=other, timeout=5)
    # and the renaming trick is the only reason the second context failed
    assert renaming.check_hostname and renaming.verify_mode == ssl.CERT_REQUIRED


# -- deletion and the context manager -----------------------------------------------------------


def _seed_three(server: DovecotServer) -> list[bytes]:
    messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n) for n in (1, 2, 3)]
    for message in messages:
        server.deliver("bob", message)
    return messages


def _remaining(server: DovecotServer, user: str = "bob") -> list[bytes]:
    client = mw_session(server, user)
    try:
        count, _ = client.stat()
        return [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]
    finally:
        client.quit()


def test_dele_then_quit_deletes(fresh_dovecot: DovecotServer) -> None:
    messages = _seed_three(fresh_dovecot)
    client = mw_session(fresh_dovecot, "bob")
    assert client.dele(2) == MARKED
    with pytest.raises(mpoplib.error_proto) as twice:
        client.dele(2)
    assert twice.value.args == (b"-ERR Message is deleted.",)
    assert client.stat() == (2, len(messages[0]) + len(messages[2]))
    assert client.quit() == LOGOUT_DELETED
    assert client.sock is None and client.file is None
    assert _remaining(fresh_dovecot) == [messages[0], messages[2]]


def test_dele_rset_quit_keeps(fresh_dovecot: DovecotServer) -> None:
    messages = _seed_three(fresh_dovecot)
    client = mw_session(fresh_dovecot, "bob")
    assert client.dele(1) == MARKED and client.dele(3) == MARKED
    assert client.rset() == b"+OK"
    assert client.quit() == LOGOUT
    assert _remaining(fresh_dovecot) == messages


def test_context_manager_quits_on_success(fresh_dovecot: DovecotServer) -> None:
    messages = _seed_three(fresh_dovecot)
    with mpoplib.POP3(fresh_dovecot.host, fresh_dovecot.ports["pop3"], timeout=TIMEOUT) as client:
        assert isinstance(client, mpoplib.POP3)
        login(client, fresh_dovecot, "bob")
        assert client.dele(1) == MARKED
    assert client.sock is None and client.file is None
    assert _remaining(fresh_dovecot) == messages[1:]  # QUIT was sent: the deletion happened


def test_context_manager_does_not_commit_after_an_error(fresh_dovecot: DovecotServer) -> None:
    """A mailwire addition: the stdlib's POP3 is no context manager."""
    assert not hasattr(poplib.POP3, "__enter__")
    messages = _seed_three(fresh_dovecot)
    port = fresh_dovecot.ports["pop3"]
    with (
        pytest.raises(RuntimeError, match="boom"),
        mpoplib.POP3(fresh_dovecot.host, port, timeout=TIMEOUT) as client,
    ):
        login(client, fresh_dovecot, "bob")
        assert client.dele(1) == MARKED
        assert client.dele(2) == MARKED
        raise RuntimeError("boom")
    assert client.sock is None and client.file is None
    assert _remaining(fresh_dovecot) == messages  # closed without QUIT: nothing deleted


def test_context_manager_over_tls(fresh_dovecot: DovecotServer) -> None:
    _seed_three(fresh_dovecot)
    verifying = ssl.create_default_context(cafile=fresh_dovecot.ca_file)
    port = fresh_dovecot.ports["pop3s"]
    with mpoplib.POP3_SSL("localhost", port, context=verifying, timeout=TIMEOUT) as client:
        login(client, fresh_dovecot, "bob")
        client.dele(3)
    assert client.sock is None
    assert len(_remaining(fresh_dovecot)) == 2


# -- refused commands, timeouts ------------------------------------------------------------------


def test_utf8_is_refused_like_the_stdlib_sees_it(dovecot: DovecotServer) -> None:
    outcomes: dict[str, list[tuple[str, Any]]] = {}
    for kind in (STDLIB, MAILWIRE):
        client = kind.POP3(dovecot.host, dovecot.ports["pop3"], timeout=TIMEOUT)
        seen = outcomes[kind.name] = []
        try:
            assert "UTF8" not in client.capa()
            for when in ("before login", "after login"):
                if when == "after login":
                    login(client, dovecot, "alice")
                with pytest.raises(kind.error_proto) as refused:
                    client.utf8()
                seen.append((when, refused.value.args))
            with pytest.raises(kind.error_proto) as rpop:
                client.rpop("alice")
            seen.append(("rpop", rpop.value.args))
        finally:
            client.quit()
    assert (
        outcomes["mailwire"]
        == outcomes["stdlib"]
        == [
            ("before login", (b"-ERR Unknown command.",)),
            ("after login", (b"-ERR Unknown command: UTF8",)),
            ("rpop", (b"-ERR Unknown command: RPOP",)),
        ]
    )


@pytest.mark.parametrize("kind", [STDLIB, MAILWIRE], ids=lambda kind: kind.name)
def test_timeouts_reach_the_socket(dovecot: DovecotServer, kind: Client) -> None:
    client = kind.POP3(dovecot.host, dovecot.ports["pop3"], timeout=5)
    try:
        assert client.sock.gettimeout() == 5
    finally:
        client.quit()
    verifying = ssl.create_default_context(cafile=dovecot.ca_file)
    port = dovecot.ports["pop3s"]
    client = kind.POP3_SSL("localhost", port, timeout=2.5, context=verifying)
    try:
        assert client.sock.gettimeout() == 2.5
    finally:
        client.quit()
    client = kind.POP3("localhost", dovecot.ports["pop3"], timeout=5)
    try:
        client.stls(context=verifying)
        assert client.sock.gettimeout() == 5  # kept across the upgrade
    finally:
        client.quit()
    client = kind.POP3(dovecot.host, dovecot.ports["pop3"])
    try:
        assert client.sock.gettimeout() == socket.getdefaulttimeout()
    finally:
        client.quit()
    with pytest.raises(ValueError, match="Non-blocking socket"):
        kind.POP3(dovecot.host, dovecot.ports["pop3"], timeout=0)


# -- bulk -----------------------------------------------------------------------------------------


def _bulk_messages(count: int = 500, size: int = 10 * 1024) -> Iterator[bytes]:
    rng = random.Random(500)
    letters = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,"
    for n in range(count):
        ending = "\n" if n % 5 == 0 else "\r\n"  # some stored with LF, most with CRLF
        lines = [f"Subject: bulk {n}", f"Message-ID: <bulk{n}@example.org>", ""]
        total = 0
        while total < size:
            line = "".join(rng.choices(letters, k=rng.choice((0, 3, 60, 72, 72, 78, 300))))
            if rng.random() < 0.03:
                line = "." + line
            lines.append(line)
            total += len(line) + 2
        yield (ending.join(lines) + ending).encode("ascii")


def _fetch_all(kind: Client, server: DovecotServer) -> dict[str, Any]:
    client = kind.POP3(server.host, server.ports["pop3"], timeout=TIMEOUT)
    try:
        login(client, server, "bob")
        count, size = client.stat()
        return {
            "stat": (count, size),
            "list": client.list(),
            "uidl": client.uidl(),
            "retr": [client.retr(n) for n in range(1, count + 1)],
        }
    finally:
        client.quit()


def test_bulk_fetch_identical(fresh_dovecot: DovecotServer) -> None:
    messages = list(_bulk_messages())
    for message in messages:
        fresh_dovecot.deliver("bob", message)
    stdlib = _fetch_all(STDLIB, fresh_dovecot)
    mailwire = _fetch_all(MAILWIRE, fresh_dovecot)
    assert mailwire["stat"] == stdlib["stat"]
    assert mailwire["list"] == stdlib["list"]
    assert mailwire["uidl"] == stdlib["uidl"]
    for n, (ours, theirs) in enumerate(zip(mailwire["retr"], stdlib["retr"]), 1):
        assert ours == theirs, f"retr({n})"
    sizes = [len(normalised(message)) for message in messages]
    assert mailwire["stat"] == (len(messages), sum(sizes))
    for (resp, lines, got_octets), message, size in zip(mailwire["retr"], messages, sizes):
        assert resp == b"+OK %d octets" % size
        assert b"\r\n".join(lines) + b"\r\n" == wire(message)
        assert got_octets == size


# -- closing after a failed TLS handshake (the stdlib raises EBADF here) --------------


def test_close_after_a_failed_stls_handshake(dovecot: DovecotServer, unrelated_ca: str) -> None:
    client = mpoplib.POP3("localhost", dovecot.ports["pop3"], timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        client.stls(context=ssl.create_default_context(cafile=unrelated_ca))
    client.close()
    assert client.sock is None and client.file is None


def test_context_manager_keeps_a_failed_stls_error(
    dovecot: DovecotServer, unrelated_ca: str
) -> None:
    other = ssl.create_default_context(cafile=unrelated_ca)
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        mpoplib.POP3("localhost", dovecot.ports["pop3"], timeout=5) as client,
    ):
        client.stls(context=other)
