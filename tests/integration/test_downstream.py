"""imapclient and imap_tools run unchanged on mailwire, and give what they give on the stdlib.

Each library runs in a subprocess of its own, so that ``sys.modules['imaplib']`` can be pointed
at ``mailwire.imaplib`` *before* the library imports ``imaplib`` (both bind the module at import
time and reach deep into its internals: ``_command``, ``_get_response``, ``_get_line``,
``_simple_command``, ``tagged_commands``, ``sock``...). The subprocess runs a representative
session against the private Dovecot and prints its results as JSON; the same script runs once
with the substitution and once without (the stdlib), each on a freshly reset store, and the two
JSON documents must be identical.

Normalised, because they legitimately differ: Dovecot's timings in tagged replies, and the
``[CAPABILITY ...]`` code of the LOGIN reply, which Dovecot sends only to a client that did not
ask for CAPABILITY before logging in (mailwire, like the newest stdlib, uses the greeting's).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.dovecot import MAIL_USER, DovecotServer

pytestmark = pytest.mark.dovecot

#: Pinned in pyproject.toml's ``test`` extra.
VERSIONS = {"imapclient": "4.1.0", "imap_tools": "1.16.0"}
UIDVALIDITY_SEED = 1000
RUN_TIMEOUT = 60


def reset_store(server: DovecotServer, user: str) -> None:
    """Empty ``user``'s store and seed its UIDVALIDITY counter, so every run sees the same."""
    server.clear(user)
    root = server.maildir(user)
    uid, gid = pwd.getpwnam(MAIL_USER).pw_uid, grp.getgrnam(MAIL_USER).gr_gid
    for name, text in (
        ("dovecot-uidvalidity", "%08x" % UIDVALIDITY_SEED),
        ("dovecot-uidvalidity.%08x" % UIDVALIDITY_SEED, ""),
    ):
        path = root / name
        path.write_text(text, encoding="ascii")
        os.chown(path, uid, gid)


# -- the script run in the subprocesses ---------------------------------------------------------

SCRIPT = r'''
import dataclasses
import datetime
import hashlib
import json
import re
import ssl
import sys
import threading
import time

MODE, LIBRARY, CONFIG = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if MODE == "mailwire":
    import mailwire.imaplib

    sys.modules["imaplib"] = mailwire.imaplib
import imaplib  # noqa: E402

if MODE == "mailwire":
    assert imaplib is mailwire.imaplib
else:
    assert not getattr(imaplib, "__mailwire__", False)

HOST, USER, PASSWORD = CONFIG["host"], CONFIG["user"], CONFIG["password"]
PORTS = CONFIG["ports"]
CONTEXT = ssl.create_default_context(cafile=CONFIG["ca_file"])
TIMING = re.compile(r" \((?:\d+\.\d+ \+ )*\d+\.\d+ secs\)")
CAPABILITY_CODE = re.compile(r"\[CAPABILITY [^\]]*\] (?=Logged in)")
UTC = datetime.timezone.utc

RESULTS = []


def plain(value):
    """A JSON form of a result that keeps types apart (bytes vs str, tuple vs list)."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "backslashreplace")
        return "b:" + CAPABILITY_CODE.sub("", TIMING.sub("", text))
    if isinstance(value, str):
        return CAPABILITY_CODE.sub("", TIMING.sub("", value))
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, datetime.datetime):
        return "datetime:" + value.isoformat()
    if dataclasses.is_dataclass(value):
        return {type(value).__name__: {f.name: plain(getattr(value, f.name))
                                       for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {"dict": [[plain(key), plain(item)] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return [type(value).__name__] + [plain(item) for item in value]
    return "repr:" + re.sub(r" at 0x[0-9a-f]+", "", repr(value))


def record(label, value):
    RESULTS.append([label, plain(value)])
    return value


def message(n, subject, body="body", extra=""):
    return (
        f"From: Sender {n} <sender{n}@example.org>\r\n"
        f"To: alice@example.org\r\n"
        f"Subject: {subject}\r\n"
        f"Date: Mon, 0{n} Jan 2024 10:00:00 +0000\r\n"
        f"Message-ID: <m{n}@example.org>\r\n{extra}"
        f"\r\n{body}\r\n"
    ).encode("utf-8")


MULTIPART = (
    b"From: Carol <carol@example.org>\r\n"
    b"Subject: =?UTF-8?B?R3LDvMOfZSBtaXQgQW5oYW5n?=\r\n"  # Grüße mit Anhang
    b"Date: Wed, 03 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <m3@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
    b"--b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n"
    b"--b--\r\n"
)
MESSAGES = [
    (message(1, "first", "Hello,\r\nthis is the first message."), datetime.datetime(2024, 1, 1)),
    (message(2, "second", extra="X-Priority: 1\r\n"), datetime.datetime(2024, 1, 2)),
    (MULTIPART, datetime.datetime(2024, 1, 3)),
]
MESSAGES = [(data, when.replace(hour=10, tzinfo=UTC)) for data, when in MESSAGES]
IDLE_MESSAGE = message(4, "during idle")
IDLE_DATE = datetime.datetime(2024, 1, 4, 10, tzinfo=UTC)


def run_imapclient():
    import imapclient
    import imapclient.imapclient
    import imapclient.imap4
    import imapclient.tls

    for module in (imapclient.imapclient, imapclient.imap4, imapclient.tls):
        assert module.imaplib is imaplib, module
    assert imapclient.__version__ == CONFIG["version"], imapclient.__version__
    from imapclient import IMAPClient

    client = IMAPClient(HOST, port=PORTS["imap"], ssl=False, timeout=10)
    record("welcome", client.welcome)
    record("capabilities before login", sorted(client.capabilities()))
    record("login", client.login(USER, PASSWORD))
    record("capabilities", client.capabilities())
    record("has MOVE", client.has_capability("MOVE"))
    record("id_", client.id_({"name": "downstream-test"}))
    record("namespace", client.namespace())
    record("list_folders (empty)", client.list_folders())
    record("create_folder", client.create_folder("Archive"))
    record("create_folder non-ASCII", client.create_folder("Entwürfe"))
    record("create_folder with space", client.create_folder("Two words"))
    record("list_folders", client.list_folders())
    record("folder_exists", client.folder_exists("Entwürfe"))
    record("subscribe_folder", client.subscribe_folder("Archive"))
    record("list_sub_folders", client.list_sub_folders())
    record("select_folder", client.select_folder("INBOX"))
    for n, (data, when) in enumerate(MESSAGES, 1):
        flags = [b"\\Flagged"] if n == 2 else []
        record(f"append {n}", client.append("INBOX", data, flags=flags, msg_time=when))
    record("noop", client.noop())
    record("search ALL", client.search("ALL"))
    record("search criteria", client.search(["FROM", "sender2@example.org"]))
    record("search non-ASCII", client.search(["TEXT", "Köln"], charset="UTF-8"))
    record("sort", client.sort(["REVERSE", "DATE"]))
    record("thread", client.thread())
    uids = client.search("ALL")
    record("fetch", client.fetch(uids, ["RFC822", "FLAGS", "ENVELOPE", "BODY.PEEK[HEADER]"]))
    record("fetch INTERNALDATE", client.fetch(uids, ["INTERNALDATE", "RFC822.SIZE"]))
    record("set_flags", client.set_flags([uids[0]], [b"\\Answered"]))
    record("add_flags", client.add_flags(uids[1:], [b"\\Seen", b"$Custom"]))
    record("remove_flags", client.remove_flags([uids[1]], [b"\\Flagged"]))
    record("get_flags", client.get_flags(uids))
    record("copy", client.copy(uids[:2], "Archive"))
    record("move", client.move([uids[2]], "Entwürfe"))
    record("delete_messages", client.delete_messages([uids[0]]))
    record("expunge", client.expunge())
    record("search after expunge", client.search())
    record("folder_status", client.folder_status("Archive"))
    record("folder_status non-ASCII", client.folder_status("Entwürfe", ["MESSAGES", "UIDNEXT"]))
    record("get_quota_root", client.get_quota_root("INBOX"))
    record("getacl", client.getacl("INBOX"))

    other = IMAPClient(HOST, port=PORTS["imap"], ssl=False, timeout=10)
    other.login(USER, PASSWORD)
    record("idle", client.idle())
    other.append("INBOX", IDLE_MESSAGE, msg_time=IDLE_DATE)
    responses = client.idle_check(timeout=10)
    text, more = client.idle_done()
    # Dovecot sends "* 2 EXISTS" and "* 2 RECENT" in one write: idle_check returns both, or
    # at least the EXISTS; whatever it did not read, idle_done returns
    record("idle_check EXISTS", [item for item in responses if item[1:] == (b"EXISTS",)])
    record("idle responses", responses + more)
    record("idle_done", text)
    record("search after idle", client.search())
    record("close_folder", client.close_folder())
    record("rename_folder", client.rename_folder("Two words", "Zwei Wörter"))
    record("delete_folder", client.delete_folder("Zwei Wörter"))
    record("logout", client.logout())
    other.logout()

    client = IMAPClient("localhost", port=PORTS["imap"], ssl=False, timeout=10)
    record("starttls", client.starttls(CONTEXT))
    record("tls after starttls", isinstance(client.socket(), ssl.SSLSocket))
    record("capabilities after starttls", sorted(client.capabilities()))
    record("starttls login", client.login(USER, PASSWORD))
    record("starttls list_folders", client.list_folders())
    record("starttls logout", client.logout())

    client = IMAPClient("localhost", port=PORTS["imaps"], ssl=True, ssl_context=CONTEXT, timeout=10)
    record("ssl is tls", isinstance(client.socket(), ssl.SSLSocket))
    record("ssl login", client.login(USER, PASSWORD))
    record("ssl select_folder", client.select_folder("Archive", readonly=True))
    record("ssl fetch", client.fetch([1, 2], ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]))
    record("ssl logout", client.logout())


def describe(msg):
    return {
        "uid": msg.uid,
        "subject": msg.subject,
        "from": msg.from_,
        "to": msg.to,
        "date": msg.date,
        "date_str": msg.date_str,
        "text": msg.text,
        "html": msg.html,
        "flags": msg.flags,
        "size": msg.size,
        "size_rfc822": msg.size_rfc822,
        "attachments": [
            (att.filename, att.content_type, att.size, hashlib.sha256(att.payload).hexdigest())
            for att in msg.attachments
        ],
    }


def run_imap_tools():
    import imap_tools
    import imap_tools.idle
    import imap_tools.mailbox
    import imap_tools.message

    for module in (imap_tools.mailbox, imap_tools.idle, imap_tools.message):
        assert module.imaplib is imaplib, module
    assert imap_tools.__version__ == CONFIG["version"], imap_tools.__version__
    from imap_tools import AND, MailBox, MailBoxStartTls, MailBoxUnencrypted, MailMessageFlags

    mailbox = MailBoxUnencrypted(HOST, PORTS["imap"], timeout=10).login(USER, PASSWORD)
    record("login_result", mailbox.login_result)
    record("folder.get", mailbox.folder.get())
    record("folder.create", mailbox.folder.create("Archive"))
    record("folder.create non-ASCII", mailbox.folder.create("Entwürfe"))
    record("folder.list", [(f.name, f.delim, f.flags) for f in mailbox.folder.list()])
    record("folder.exists", mailbox.folder.exists("Entwürfe"))
    for n, (data, when) in enumerate(MESSAGES, 1):
        flags = [MailMessageFlags.FLAGGED] if n == 2 else None
        record(f"append {n}", mailbox.append(data, "INBOX", dt=when, flag_set=flags))
    record("folder.set", mailbox.folder.set("INBOX"))
    record("folder.status", mailbox.folder.status("INBOX"))
    record("fetch", [describe(msg) for msg in mailbox.fetch(AND(all=True), mark_seen=False)])
    record("fetch bulk headers", [
        (msg.uid, msg.subject, msg.headers.get("message-id"))
        for msg in mailbox.fetch(headers_only=True, bulk=True, mark_seen=False, reverse=True)
    ])
    record("uids", mailbox.uids())
    record("uids non-ASCII", mailbox.uids(AND(text="Köln"), charset="UTF-8"))
    record("uids sorted", mailbox.uids(sort="REVERSE DATE"))
    record("numbers", mailbox.numbers(AND(flagged=True)))
    uids = mailbox.uids()
    record("flag", mailbox.flag(uids[:2], MailMessageFlags.SEEN, True))
    record("flags", [(msg.uid, msg.flags) for msg in mailbox.fetch(mark_seen=False)])
    record("copy", mailbox.copy(uids[0], "Archive"))
    record("move", mailbox.move(uids[1], "Entwürfe"))
    record("delete", mailbox.delete(uids[2]))
    record("uids after", mailbox.uids())
    record("folder.status Archive", mailbox.folder.status("Archive"))
    record("folder.status non-ASCII", mailbox.folder.status("Entwürfe"))


    # a non-ASCII password through AUTHENTICATE PLAIN
    with MailBoxUnencrypted(HOST, PORTS["imap"], timeout=10).login_utf8(
        CONFIG["utf8_user"], CONFIG["utf8_password"], initial_folder=None
    ) as other:
        record("login_utf8", other.login_result)

    with MailBox("localhost", PORTS["imaps"], timeout=10, ssl_context=CONTEXT).login(
        USER, PASSWORD, initial_folder="Archive"
    ) as secure:
        record("MailBox is tls", isinstance(secure.client.sock, ssl.SSLSocket))
        record("MailBox fetch", [(m.uid, m.subject) for m in secure.fetch(mark_seen=False)])
    with MailBoxStartTls("localhost", PORTS["imap"], timeout=10, ssl_context=CONTEXT).login(
        USER, PASSWORD
    ) as upgraded:
        record("MailBoxStartTls is tls", isinstance(upgraded.client.sock, ssl.SSLSocket))
        record("MailBoxStartTls folders", [f.name for f in upgraded.folder.list()])

    def append_later():
        with MailBoxUnencrypted(HOST, PORTS["imap"], timeout=10).login(USER, PASSWORD) as other:
            other.append(IDLE_MESSAGE, "INBOX", dt=IDLE_DATE)

    timer = threading.Timer(0.2, append_later)
    timer.start()
    lines = mailbox.idle.wait(timeout=10)
    timer.join()
    record("idle.wait EXISTS", [line for line in lines if line.endswith(b" EXISTS")])
    record("uids after idle", mailbox.uids())
    record("logout", mailbox.logout())


try:
    {"imapclient": run_imapclient, "imap_tools": run_imap_tools}[LIBRARY]()
except Exception as exc:  # recorded, so that the comparison shows where the runs part
    import traceback

    traceback.print_exc()
    record("raised", f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
print(json.dumps(RESULTS, ensure_ascii=True, indent=1))
'''


def run_script(
    server: DovecotServer, tmp_path: Path, library: str, mode: str
) -> list[tuple[str, Any]]:
    reset_store(server, "alice")
    script = tmp_path / "downstream_session.py"
    script.write_text(SCRIPT, encoding="utf-8")
    config = {
        "host": server.host,
        "ports": server.ports,
        "ca_file": server.ca_file,
        "user": "alice",
        "password": server.users["alice"],
        "utf8_user": "awk",
        "utf8_password": server.users["awk"],
        "version": VERSIONS[library],
    }
    result = subprocess.run(
        [sys.executable, str(script), mode, library, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, (
        f"{library} on {mode} exited with {result.returncode}:\n{result.stderr}"
    )
    steps = [(label, value) for label, value in json.loads(result.stdout)]
    if mode == "stdlib":  # the oracle must run through
        assert steps[-1][0] != "raised", result.stderr
    return steps


def _compare(library: str, fresh_dovecot: DovecotServer, tmp_path: Path) -> dict[str, Any]:
    stdlib = run_script(fresh_dovecot, tmp_path, library, "stdlib")
    mailwire = run_script(fresh_dovecot, tmp_path, library, "mailwire")
    for ours, theirs in zip(mailwire, stdlib):
        assert ours == theirs, f"{library}: {theirs[0]}"
    assert [label for label, _ in mailwire] == [label for label, _ in stdlib]
    return dict(stdlib)


def test_imapclient(fresh_dovecot: DovecotServer, tmp_path: Path) -> None:
    results = _compare("imapclient", fresh_dovecot, tmp_path)
    # and the session did what it says
    assert results["login"] == "b:Logged in"
    assert results["has MOVE"] is True
    assert results["search ALL"] == ["SearchIds", 1, 2, 3]
    assert results["search non-ASCII"] == ["SearchIds", 3]
    assert results["search after expunge"] == ["SearchIds", 2]  # 1 deleted, 3 moved
    fetched = results["fetch"]["dict"]
    assert [uid for uid, _ in fetched] == [1, 2, 3]
    assert results["idle_check EXISTS"] == ["list", ["tuple", 2, "b:EXISTS"]]
    assert results["idle responses"] == [
        "list",
        ["tuple", 2, "b:EXISTS"],
        ["tuple", 2, "b:RECENT"],
    ]
    assert results["search after idle"] == ["SearchIds", 2, 4]
    assert results["tls after starttls"] is True and results["ssl is tls"] is True
    assert results["logout"] == "b:Logging out"


def test_imap_tools(fresh_dovecot: DovecotServer, tmp_path: Path) -> None:
    results = _compare("imap_tools", fresh_dovecot, tmp_path)
    assert results["login_result"] == ["tuple", "OK", ["list", "b:Logged in"]]
    fetched = results["fetch"]
    assert [item["dict"][1][1] for item in fetched[1:]] == ["first", "second", "Grüße mit Anhang"]
    assert results["uids non-ASCII"] == ["list", "3"]
    assert results["uids after"] == ["list", "1"]  # 1 copied, 2 moved, 3 deleted
    assert results["idle.wait EXISTS"] == ["list", "b:* 2 EXISTS"]
    assert results["uids after idle"] == ["list", "1", "4"]
    assert results["MailBox is tls"] is True and results["MailBoxStartTls is tls"] is True
