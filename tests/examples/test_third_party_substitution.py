"""The sys.modules substitution example: the third-party code really runs on mailwire."""

from __future__ import annotations

import imaplib as std_imaplib
import importlib.util
import poplib as std_poplib
import sys
from types import ModuleType

import pytest

import mailwire.imaplib
import mailwire.poplib
from mailwire.testing import MailServer, sample_messages, test_ssl_context

SUBJECTS = [str(m["subject"]) for m in sample_messages()]


def test_runs_against_the_embedded_server(run_example) -> None:
    result = run_example("third_party_substitution")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sys.modules['imaplib'] is mailwire.imaplib: True" in out
    if importlib.util.find_spec("imapclient") is not None:
        assert "imapclient.imapclient.imaplib is mailwire.imaplib: True" in out
        assert "a subclass of mailwire.imaplib.IMAP4: True" in out
        assert "INBOX through imapclient on mailwire: 6 message(s)" in out
    for subject in SUBJECTS:
        assert f"  {subject}\n" in out
    assert "third_party_pop3_count()'s poplib is mailwire.poplib: True" in out
    assert "6 message(s) waiting" in out


def test_runs_with_the_builtin_stand_in(run_example) -> None:
    result = run_example("third_party_substitution", "--library", "builtin")
    assert result.returncode == 0, result.stderr
    assert "third_party_imap_subjects()'s imaplib is mailwire.imaplib: True" in result.stdout
    for subject in SUBJECTS:
        assert f"  {subject}\n" in result.stdout


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo whatever the test does to sys.modules; start with the stdlib modules in place."""
    monkeypatch.setitem(sys.modules, "imaplib", std_imaplib)
    monkeypatch.setitem(sys.modules, "poplib", std_poplib)
    for name in ("imapclient", "imap_tools"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.usefixtures("modules")
def test_the_same_code_switches_to_mailwire(load_example) -> None:
    example = load_example("third_party_substitution")
    with MailServer(users={"alice": "pw"}, imap=True) as server:
        for message in sample_messages():
            server.deliver("alice", message)
        imap_args = (server.host, server.imap_port, "alice", "pw", test_ssl_context())
        pop_args = (server.host, server.pop3_port, "alice", "pw", test_ssl_context())

        module, raw = example.third_party_imap_subjects(*imap_args)
        assert module is std_imaplib  # before the substitution: the stdlib
        assert example.third_party_pop3_count(*pop_args) == (std_poplib, 6)

        example.substitute()
        assert sys.modules["imaplib"] is mailwire.imaplib
        module, raw = example.third_party_imap_subjects(*imap_args)
        assert module is mailwire.imaplib
        assert example.third_party_pop3_count(*pop_args) == (mailwire.poplib, 6)
    assert [example.decode(subject) for subject in raw] == SUBJECTS


@pytest.mark.usefixtures("modules")
def test_substituting_too_late_is_refused(load_example, monkeypatch) -> None:
    example = load_example("third_party_substitution")
    monkeypatch.setitem(sys.modules, "imapclient", ModuleType("imapclient"))
    with pytest.raises(RuntimeError, match="imapclient was imported before"):
        example.substitute()
    assert sys.modules["imaplib"] is std_imaplib
