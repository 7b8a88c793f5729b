"""The private Dovecot fixture itself, exercised with the standard library's clients only.

These prove that the server the integration tests rely on is set up as they expect: accounts,
TLS on every route, APOP, fast failures, preauth stream, quota/ACL/metadata plugins, and that
mail seeded with ``deliver`` and removed with ``clear`` is what the server reports.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import re
import secrets
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from support.dovecot import DovecotServer, missing_requirements

pytestmark = pytest.mark.dovecot

# Failed logins must not slow the suite down (Dovecot's default is a 2 s delay and more).
FAST_FAILURE = 0.4

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: %d\r\n\r\nbody %d\r\n"


def message(n: int) -> bytes:
    return MESSAGE % (n, n)


def line(item: object) -> bytes:
    """One response line from the stdlib's data list (not a literal, not None)."""
    assert isinstance(item, bytes), item
    return item


@contextmanager
def pop3(server: DovecotServer, user: str) -> Iterator[poplib.POP3]:
    client = poplib.POP3(server.host, server.ports["pop3"], timeout=10)
    try:
        client.user(user)
        client.pass_(server.users[user])
        yield client
    finally:
        client.quit()


@contextmanager
def imap(server: DovecotServer, user: str) -> Iterator[imaplib.IMAP4]:
    client = imaplib.IMAP4(server.host, server.ports["imap"], timeout=10)
    try:
        client.login(user, server.users[user])
        yield client
    finally:
        client.logout()


# -- POP3 -----------------------------------------------------------------------------------


def test_pop3_user_pass_and_stat_see_delivered_mail(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    with pop3(server, "alice") as client:
        assert client.stat() == (0, 0)
    server.deliver("alice", message(1))
    server.deliver("alice", message(2), flags="S")
    server.deliver("bob", message(3))
    with pop3(server, "alice") as client:
        assert client.stat() == (2, len(message(1)) + len(message(2))), server.logs()
        retrieved = {b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in (1, 2)}
        assert retrieved == {message(1), message(2)}
    with pop3(server, "bob") as client:
        assert client.stat() == (1, len(message(3)))


def test_pop3_notices_delivery_during_session_gap(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    for count in range(1, 4):
        server.deliver("bob", message(count))
        with pop3(server, "bob") as client:
            assert client.stat()[0] == count


def test_apop(dovecot: DovecotServer) -> None:
    client = poplib.POP3(dovecot.host, dovecot.ports["pop3"], timeout=10)
    try:
        assert re.search(rb"<[^<>@\s]+@[^<>\s]+>", client.getwelcome()), client.getwelcome()
        assert client.apop("bob", "bobpass").startswith(b"+OK")
        assert client.stat()[0] >= 0
    finally:
        client.quit()


def test_failed_logins_are_fast(dovecot: DovecotServer) -> None:
    for attempt in range(3):
        started = time.monotonic()
        client = poplib.POP3(dovecot.host, dovecot.ports["pop3"], timeout=10)
        with pytest.raises(poplib.error_proto, match="AUTH"):
            client.user("alice")
            client.pass_(f"wrong{attempt}")
        client.close()
        assert time.monotonic() - started < FAST_FAILURE
    for user in ("alice", "nosuchuser"):
        started = time.monotonic()
        client = poplib.POP3(dovecot.host, dovecot.ports["pop3"], timeout=10)
        with pytest.raises(poplib.error_proto):
            client.apop(user, "wrong")
        client.close()
        assert time.monotonic() - started < FAST_FAILURE
        started = time.monotonic()
        session = imaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=10)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            session.login(user, "wrong")
        session.logout()
        assert time.monotonic() - started < FAST_FAILURE


def test_pop3_stls_verifies_the_certificate(
    dovecot: DovecotServer, dovecot_tls: ssl.SSLContext
) -> None:
    client = poplib.POP3("localhost", dovecot.ports["pop3"], timeout=10)
    try:
        assert "STLS" in client.capa()
        client.stls(context=dovecot_tls)
        assert isinstance(client.sock, ssl.SSLSocket)
        client.user("alice")
        client.pass_("alicepass")
        client.stat()
    finally:
        client.quit()


def test_pop3_ssl_verifies_the_certificate(
    dovecot: DovecotServer, dovecot_tls: ssl.SSLContext
) -> None:
    for host in ("localhost", "127.0.0.1"):
        client = poplib.POP3_SSL(host, dovecot.ports["pop3s"], context=dovecot_tls, timeout=10)
        try:
            client.user("bob")
            client.pass_("bobpass")
            client.stat()
        finally:
            client.quit()


def test_tls_fails_without_the_test_ca(dovecot: DovecotServer) -> None:
    untrusting = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL("localhost", dovecot.ports["pop3s"], context=untrusting, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("localhost", dovecot.ports["imaps"], ssl_context=untrusting, timeout=10)


# -- IMAP -----------------------------------------------------------------------------------


def test_imap_login_and_select(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    server.deliver("alice", message(1))
    server.deliver("alice", message(2), flags="FS")
    with imap(server, "alice") as client:
        assert client.select("INBOX") == ("OK", [b"2"])
        typ, data = client.fetch("1:2", "(FLAGS RFC822.SIZE)")
        assert typ == "OK"
        first, second = (line(item) for item in data)
        assert b"\\Seen" not in first
        assert b"\\Flagged \\Seen" in second
        assert f"RFC822.SIZE {len(message(2))}".encode() in second


def test_imaps_verifies_the_certificate(
    dovecot: DovecotServer, dovecot_tls: ssl.SSLContext
) -> None:
    client = imaplib.IMAP4_SSL(
        "localhost", dovecot.ports["imaps"], ssl_context=dovecot_tls, timeout=10
    )
    try:
        client.login("bob", "bobpass")
        assert client.select()[0] == "OK"
    finally:
        client.logout()


def test_imap_starttls_verifies_the_certificate(
    dovecot: DovecotServer, dovecot_tls: ssl.SSLContext
) -> None:
    client = imaplib.IMAP4("localhost", dovecot.ports["imap"], timeout=10)
    try:
        assert "STARTTLS" in client.capabilities
        assert client.starttls(ssl_context=dovecot_tls)[0] == "OK"
        assert isinstance(client.sock, ssl.SSLSocket)
        client.login("alice", "alicepass")
    finally:
        client.logout()


def test_awkward_passwords(dovecot: DovecotServer) -> None:
    awkward = dovecot.users["awk"]
    assert all(char in awkward for char in ' "\\{}%*()') and not awkward.isascii()
    # The stdlib's LOGIN quotes " and \ but encodes as ASCII: awk7 has the same awkward
    # characters without the non-ASCII one.
    assert set(' "\\{}%*()') <= set(dovecot.users["awk7"]) and dovecot.users["awk7"].isascii()
    with imap(dovecot, "awk7") as client:
        assert client.state == "AUTH"
    client = imaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=10)
    try:
        typ, _ = client.authenticate("PLAIN", lambda _: b"\0awk\0" + awkward.encode("utf-8"))
        assert typ == "OK"
    finally:
        client.logout()
    with pop3(dovecot, "awk") as pop:  # PASS sends the rest of the line, UTF-8
        pop.stat()


def test_cram_md5(dovecot: DovecotServer) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=10)
    try:
        assert client.login_cram_md5("bob", "bobpass")[0] == "OK"
    finally:
        client.logout()


def scram(hash_name: str, user: str, password: str) -> Callable[[bytes], bytes]:
    """A minimal SCRAM client (RFC 5802, no channel binding) for ``IMAP4.authenticate``."""
    nonce = base64.b64encode(secrets.token_bytes(18)).decode()
    first_bare = f"n={user},r={nonce}"
    expected: list[bytes] = []

    def mac(key: bytes, text: str) -> bytes:
        return hmac.new(key, text.encode(), hash_name).digest()

    def respond(challenge: bytes) -> bytes:
        if not challenge and not expected:
            expected.append(b"")
            return f"n,,{first_bare}".encode()
        text = challenge.decode()
        if text.startswith("v="):
            assert hmac.compare_digest(base64.b64decode(text[2:]), expected[-1])
            return b""
        fields = dict(item.split("=", 1) for item in text.split(","))
        assert fields["r"].startswith(nonce)
        salted = hashlib.pbkdf2_hmac(
            hash_name, password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        client_key = mac(salted, "Client Key")
        final_bare = f"c={base64.b64encode(b'n,,').decode()},r={fields['r']}"
        auth_message = f"{first_bare},{text},{final_bare}"
        signature = mac(hashlib.new(hash_name, client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        expected.append(mac(mac(salted, "Server Key"), auth_message))
        return f"{final_bare},p={base64.b64encode(proof).decode()}".encode()

    return respond


@pytest.mark.parametrize(
    ("mechanism", "hash_name"), [("SCRAM-SHA-1", "sha1"), ("SCRAM-SHA-256", "sha256")]
)
def test_scram(dovecot: DovecotServer, mechanism: str, hash_name: str) -> None:
    client = imaplib.IMAP4(dovecot.host, dovecot.ports["imap"], timeout=10)
    try:
        assert f"AUTH={mechanism}" in client.capabilities
        typ, _ = client.authenticate(mechanism, scram(hash_name, "alice", "alicepass"))
        assert typ == "OK"
    finally:
        client.logout()


def test_imap4_stream_preauth(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    server.deliver("bob", message(1))
    client = imaplib.IMAP4_stream(server.preauth_imap_command("bob"))
    try:
        assert client.welcome.startswith(b"* PREAUTH"), server.logs()
        assert client.state == "AUTH"
        assert client.select("INBOX") == ("OK", [b"1"])
    finally:
        client.logout()


def test_capabilities_after_login(dovecot: DovecotServer) -> None:
    with imap(dovecot, "bob") as client:
        capabilities = set(client.capability()[1][0].upper().split())
    wanted = {b"IMAP4REV1", b"MOVE", b"IDLE", b"ID", b"QUOTA", b"ACL"}
    wanted |= {b"COMPRESS=DEFLATE", b"METADATA", b"NAMESPACE", b"UIDPLUS", b"SPECIAL-USE"}
    assert wanted <= capabilities, sorted(wanted - capabilities)


def test_quota(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    server.deliver("alice", message(1) * 200)
    with imap(server, "alice") as client:
        typ, data = client.getquotaroot("INBOX")
        assert typ == "OK"
        assert data[0] == [b'INBOX "User quota"']
        match = re.fullmatch(rb'"User quota" \(STORAGE (\d+) (\d+)\)', data[1][0])
        assert match, data
        assert int(match[1]) >= 1 and int(match[2]) > 0
        # the stdlib does not quote the root: the caller must
        assert client.setquota('"User quota"', "(STORAGE 512)")[0] == "OK", server.logs()
        assert client.getquota('"User quota"')[0] == "OK"  # the imap process is still alive
    with imap(server, "bob") as client:
        typ, data = client.setquota('"User quota"', "(STORAGE 512)")
        assert typ == "NO" and b"admin" in data[0]


def test_acl(fresh_dovecot: DovecotServer) -> None:
    with imap(fresh_dovecot, "alice") as client:
        typ, data = client.getacl("INBOX")
        assert typ == "OK" and data[0].startswith(b"INBOX alice lr"), data
        typ, data = client.myrights("INBOX")
        assert typ == "OK" and data[0].startswith(b"INBOX lr"), data
        assert client.setacl("INBOX", "bob", "lr")[0] == "OK"
        assert b"bob lr" in client.getacl("INBOX")[1][0]
        assert client.deleteacl("INBOX", "bob")[0] == "OK"
        assert b"bob" not in client.getacl("INBOX")[1][0]


def test_metadata(fresh_dovecot: DovecotServer) -> None:
    with imap(fresh_dovecot, "alice") as client:
        # the stdlib has no METADATA methods; xatom sends an arbitrary command
        typ, _ = client.xatom("GETMETADATA", "INBOX", "/private/comment")
        assert typ == "OK"
        assert client.response("METADATA")[1] == [b"INBOX (/private/comment NIL)"]
        assert client.xatom("SETMETADATA", "INBOX", '(/private/comment "hi")')[0] == "OK"
        assert client.xatom("GETMETADATA", "INBOX", "/private/comment")[0] == "OK"
        assert client.response("METADATA")[1][0] == (b"INBOX (/private/comment {2}", b"hi")
        assert client.xatom("SETMETADATA", '""', '(/private/comment "server")')[0] == "OK"


# -- mail seeding ---------------------------------------------------------------------------


def test_deliver_to_folders_with_flags_and_date(fresh_dovecot: DovecotServer) -> None:
    server = fresh_dovecot
    when = 1_000_000_000  # 2001-09-09T01:46:40Z
    path = server.deliver("bob", message(1), folder="Archive/2024", flags="\\Flagged \\Seen")
    assert path.parent.name == "cur" and path.name.endswith(":2,FS")
    assert server.deliver("bob", message(2), folder="Entw\u00fcrfe", date=when).parent.name == "new"
    with imap(server, "bob") as client:
        typ, listing = client.list()
        assert typ == "OK"
        names = {line.rsplit(b" ", 1)[1] for line in listing if isinstance(line, bytes)}
        assert {b"INBOX", b"Archive/2024", b"Entw&APw-rfe"} <= names
        assert client.select("Archive/2024") == ("OK", [b"1"])
        assert b"(\\Flagged \\Seen \\Recent)" in line(client.fetch("1", "FLAGS")[1][0])
        assert client.select('"Entw&APw-rfe"') == ("OK", [b"1"])
        internal = line(client.fetch("1", "INTERNALDATE")[1][0])
        assert imaplib.Internaldate2tuple(internal) == time.localtime(when)
        client.close()


def test_deliver_rejects_what_maildir_cannot_hold(dovecot: DovecotServer) -> None:
    with pytest.raises(ValueError):
        dovecot.deliver("bob", message(1), flags="\\Seen $Important")
    with pytest.raises(ValueError):
        dovecot.deliver("bob", message(1), folder="a.b")
    with pytest.raises(KeyError):
        dovecot.deliver("nobody", message(1))
    with pytest.raises(TypeError):
        dovecot.deliver("bob", "text")  # type: ignore[arg-type]


def test_clear_empties_every_folder(dovecot: DovecotServer) -> None:
    dovecot.deliver("alice", message(1))
    dovecot.deliver("alice", message(2), folder="Junk")
    with imap(dovecot, "alice") as client:
        client.select("Junk")
        client.close()
    dovecot.clear("alice")
    with pop3(dovecot, "alice") as client:
        assert client.stat() == (0, 0)
    with imap(dovecot, "alice") as client:
        assert client.list() == ("OK", [b'(\\HasNoChildren) "/" INBOX'])
        assert client.select() == ("OK", [b"0"])


# -- lifecycle ------------------------------------------------------------------------------


def test_private_instance_starts_fast_and_stops_completely() -> None:
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(reason)
    runtime = tempfile.mkdtemp(prefix="mailwire-dovecot-")
    os.chmod(runtime, 0o755)
    try:
        started = time.monotonic()
        with DovecotServer(runtime) as server:
            assert time.monotonic() - started < 2.0
            assert server.running and server.pid is not None
            pid = server.pid
            assert len(set(server.ports.values())) == 4
            with pop3(server, "alice") as client:
                client.stat()
            assert (server.base_dir / "master.pid").read_text().strip() == str(pid)
        assert not server.running and server.pid is None
        assert not os.path.exists(f"/proc/{pid}")
        leftovers = [
            entry
            for entry in os.listdir("/proc")
            if entry.isdigit()
            and (
                _cmdline_has(entry, str(server.config_path))
                or _cmdline_has(entry, server.instance_name)
            )
        ]
        assert leftovers == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def _cmdline_has(pid: str, needle: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return needle.encode() in handle.read()
    except OSError:
        return False
