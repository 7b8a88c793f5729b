"""The pytest plugin's fixtures, run in a separate pytest session (pytester)."""

from __future__ import annotations

import importlib.metadata

import pytest

pytest_plugins = ["pytester"]


def test_the_plugin_is_registered_as_an_entry_point() -> None:
    points = importlib.metadata.entry_points()
    group = (
        points.select(group="pytest11")
        if hasattr(points, "select")
        else points.get("pytest11", [])  # type: ignore[attr-defined]  # Python 3.9
    )
    assert {p.name: p.value for p in group}.get("mailwire") == "mailwire.testing.pytest_plugin"


def test_fixtures_give_a_seeded_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Load exactly this plugin (the installed entry point would load it a second time).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        """
        from mailwire import imaplib, poplib

        def test_imap(mailwire_account):
            with imaplib.IMAP4(mailwire_account.host, mailwire_account.imap_port) as imap:
                imap.starttls(mailwire_account.ssl_context)
                imap.login(mailwire_account.user, mailwire_account.password)
                typ, data = imap.select("INBOX")
                assert typ == "OK"
                assert int(data[0]) == len(mailwire_account.messages) > 0

        def test_pop3s(mailwire_account):
            with poplib.POP3_SSL(mailwire_account.host, mailwire_account.pop3s_port,
                                 context=mailwire_account.ssl_context) as pop:
                pop.user(mailwire_account.user)
                pop.pass_(mailwire_account.password)
                assert pop.stat()[0] == len(mailwire_account.messages)

        def test_each_test_gets_its_own_mailbox(mailwire_server):
            mailwire_server.deliver("user", b"Subject: extra\\n\\nx\\n")
            assert len(mailwire_server.messages("user")) == 7
        """
    )
    result = pytester.runpytest_subprocess("-p", "mailwire.testing.pytest_plugin", "-q")
    result.assert_outcomes(passed=3)
