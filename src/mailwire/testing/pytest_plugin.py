"""pytest fixtures giving a test a running embedded mail server with a seeded mailbox.

Installed with mailwire, registered through the ``pytest11`` entry point ``mailwire``, so the
fixtures are available in any project that has mailwire installed::

    def test_fetch_greeting(mailwire_account):
        with imaplib.IMAP4(mailwire_account.host, mailwire_account.imap_port) as imap:
            imap.login(mailwire_account.user, mailwire_account.password)
            typ, data = imap.select("INBOX")
            assert int(data[0]) == len(mailwire_account.messages)

Only pytest imports this module; mailwire itself needs nothing from it.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage

import pytest

from mailwire.testing import MailServer, sample_messages, test_ssl_context

__all__ = ["MailAccount", "mailwire_account", "mailwire_server"]

#: The seeded account's credentials.
USER = "user"
PASSWORD = "password"


@dataclass(frozen=True)
class MailAccount:
    """Where and how to reach the seeded mailbox of :func:`mailwire_server`."""

    server: MailServer
    host: str
    pop3_port: int
    pop3s_port: int
    imap_port: int
    imaps_port: int
    user: str
    password: str
    #: A client context that verifies the server's TEST-ONLY certificate.
    ssl_context: ssl.SSLContext
    #: The messages delivered to the INBOX, in order.
    messages: tuple[EmailMessage, ...]


@pytest.fixture
def mailwire_server() -> Iterator[MailServer]:
    """A running embedded server (POP3, POP3S, IMAP, IMAPS on loopback, ephemeral ports) whose
    user ``user`` (password ``password``) has the sample messages in the INBOX. Stopped when
    the test ends."""
    with MailServer(users={USER: PASSWORD}, imap=True) as server:
        for message in sample_messages(f"{USER}@mailwire.test"):
            server.deliver(USER, message)
        yield server


@pytest.fixture
def mailwire_account(mailwire_server: MailServer) -> MailAccount:
    """The address, ports, credentials and seeded messages of :func:`mailwire_server`."""
    return MailAccount(
        server=mailwire_server,
        host=mailwire_server.host,
        pop3_port=mailwire_server.pop3_port,
        pop3s_port=mailwire_server.pop3s_port,
        imap_port=mailwire_server.imap_port,
        imaps_port=mailwire_server.imaps_port,
        user=USER,
        password=PASSWORD,
        ssl_context=test_ssl_context(),
        messages=tuple(sample_messages(f"{USER}@mailwire.test")),
    )
