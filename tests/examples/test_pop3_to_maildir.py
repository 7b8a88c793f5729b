"""The POP3-to-Maildir example: everything arrives, and a failure half-way loses nothing."""

from __future__ import annotations

import importlib.util
import mailbox
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mailwire import poplib
from mailwire.testing import MailServer, sample_messages, test_ssl_context

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pop3_to_maildir.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pop3_to_maildir", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def crlf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_runs_against_the_embedded_server(tmp_path: Path) -> None:
    target = tmp_path / "inbox"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), str(target)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "saved 6 message(s)" in result.stdout
    stored = sorted(bytes(m) for m in mailbox.Maildir(target, create=False))
    expected = sorted(
        crlf(m.as_bytes()) for m in sample_messages("alice@mailwire.test")
    )
    assert [crlf(s) for s in stored] == expected


def test_a_failure_half_way_keeps_every_message_on_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example()
    with MailServer(users={"alice": "pw"}) as server:
        for message in sample_messages("alice@mailwire.test"):
            server.deliver("alice", message)
        folder = mailbox.Maildir(tmp_path / "inbox", create=True)
        calls = 0
        original = folder.add

        def add_then_fail(message: bytes) -> str:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise OSError("disk full")
            return original(message)

        monkeypatch.setattr(folder, "add", add_then_fail)
        session = poplib.POP3(server.host, server.pop3_port, timeout=10)
        with pytest.raises(OSError, match="disk full"), session as client:
            client.stls(test_ssl_context())
            client.user("alice")
            client.pass_("pw")
            example.download(client, folder, tmp_path / "inbox", keep=False)
        assert len(folder) == 2
        # Two DELEs were sent, but without QUIT the server applies none of them.
        assert len(server.messages("alice")) == 6
