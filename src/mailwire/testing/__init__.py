"""An embedded, in-process mail server for tests, demos and examples: POP3 and IMAP.

It runs on loopback in background threads, like GreenMail does for Java::

    from mailwire import imaplib, poplib
    from mailwire.testing import MailServer, test_ssl_context

    with MailServer(users={"alice": "secret"}, imap=True) as server:
        server.deliver("alice", b"Subject: hi\\n\\nHello\\n")
        client = poplib.POP3(server.host, server.pop3_port)
        client.stls(test_ssl_context())
        client.user("alice")
        client.pass_("secret")
        print(client.stat())
        client.quit()
        with imaplib.IMAP4_SSL(server.host, server.imaps_port,
                               ssl_context=test_ssl_context()) as imap:
            imap.login("alice", "secret")
            imap.select("INBOX")
            print(imap.fetch("1", "(FLAGS BODY.PEEK[HEADER])"))

Its TLS certificate is TEST-ONLY: the private key ships in this package. Clients trust it only
through :func:`test_ssl_context`.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Union

from mailwire.testing._server import ThreadedServer
from mailwire.testing.certs import CA_FILE, server_ssl_context, test_ssl_context
from mailwire.testing.imap import IMAPServer
from mailwire.testing.pop3 import POP3Server
from mailwire.testing.samples import sample_messages
from mailwire.testing.store import INBOX, MessageInput, Store, StoredMessage

__all__ = [
    "CA_FILE",
    "INBOX",
    "IMAPServer",
    "MailServer",
    "POP3Server",
    "Store",
    "StoredMessage",
    "sample_messages",
    "server_ssl_context",
    "test_ssl_context",
]


class MailServer:
    """A mail server for tests: a :class:`Store` plus the protocol servers asked for.

    *users* maps user names to passwords. With *pop3*, a POP3 server (offering STLS) and a POP3S
    server (implicit TLS) listen on *host*, a loopback address; with *imap*, an IMAP server
    (offering STARTTLS) and an IMAPS server (implicit TLS), all sharing one :class:`Store`.
    *tls_context* is the server-side TLS context; by default the shipped TEST-ONLY
    ``localhost`` certificate, which clients trust via :func:`test_ssl_context`. ``tls=False``
    serves plaintext only (no STLS/STARTTLS, no POP3S/IMAPS). *require_tls* refuses passwords
    on unencrypted connections. *maildir* backs the store with one Maildir per user in that
    directory. *ports* fixes ports by service name (``{"pop3": 1110, "pop3s": 1995, "imap":
    1143, "imaps": 1993}``); the default, 0, picks free ports.

    Start and stop it with ``with`` or :meth:`start`/:meth:`stop`.
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        pop3: bool = True,
        imap: bool = False,
        tls: bool = True,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        maildir: Union[str, os.PathLike[str]] | None = None,
        ports: Mapping[str, int] | None = None,
    ) -> None:
        ports = dict(ports or {})
        unknown = set(ports) - {"pop3", "pop3s", "imap", "imaps"}
        if unknown:
            raise ValueError(f"unknown services in ports: {sorted(unknown)}")
        self.store = Store(users, maildir=maildir)
        context = (tls_context or server_ssl_context()) if tls else None
        self.tls_context: ssl.SSLContext | None = context
        self.pop3: POP3Server | None = None
        self.pop3s: POP3Server | None = None
        if pop3:
            self.pop3 = POP3Server(self.store, host, ports.get("pop3", 0), tls_context=context,
                                   require_tls=require_tls)
            if context is not None:
                self.pop3s = POP3Server(self.store, host, ports.get("pop3s", 0),
                                        tls_context=context, implicit_tls=True)
        self.imap: IMAPServer | None = None
        self.imaps: IMAPServer | None = None
        if imap:
            self.imap = IMAPServer(self.store, host, ports.get("imap", 0), tls_context=context,
                                   require_tls=require_tls)
            if context is not None:
                self.imaps = IMAPServer(self.store, host, ports.get("imaps", 0),
                                        tls_context=context, implicit_tls=True)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------

    def _servers(self) -> list[ThreadedServer]:
        return [s for s in (self.pop3, self.pop3s, self.imap, self.imaps) if s is not None]

    def start(self) -> None:
        """Start every protocol server (stopping those already started if one fails).

        A server runs once: after :meth:`stop`, make a new one.
        """
        if self._started:
            raise RuntimeError("the server was started already")
        try:
            for server in self._servers():
                server.start()
        except BaseException:
            self.stop()
            raise
        self._started = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every protocol server: close listeners and connections, join threads."""
        for server in self._servers():
            server.stop(timeout)
        self._started = False

    def __enter__(self) -> MailServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where it listens --------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The IP address the servers listen on (``127.0.0.1`` or ``::1``)."""
        servers = self._servers()
        if not servers:
            raise RuntimeError("no protocol server is enabled")
        return servers[0].host

    @property
    def pop3_port(self) -> int:
        """The POP3 port (plaintext, STLS offered when TLS is on)."""
        if self.pop3 is None:
            raise RuntimeError("POP3 is not enabled")
        return self.pop3.port

    @property
    def pop3s_port(self) -> int:
        """The POP3S port (implicit TLS)."""
        if self.pop3s is None:
            raise RuntimeError("POP3S is not enabled (it needs pop3=True and tls=True)")
        return self.pop3s.port

    @property
    def imap_port(self) -> int:
        """The IMAP port (plaintext, STARTTLS offered when TLS is on)."""
        if self.imap is None:
            raise RuntimeError("IMAP is not enabled (it needs imap=True)")
        return self.imap.port

    @property
    def imaps_port(self) -> int:
        """The IMAPS port (implicit TLS)."""
        if self.imaps is None:
            raise RuntimeError("IMAPS is not enabled (it needs imap=True and tls=True)")
        return self.imaps.port

    # -- mailboxes ---------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a user (or change a password)."""
        self.store.add_user(name, password)

    def deliver(
        self,
        user: str,
        message: MessageInput,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """Put a message in a user's folder and return its UID (see :meth:`Store.deliver`)."""
        return self.store.deliver(user, message, folder, flags, internal_date)

    def messages(self, user: str, folder: str = INBOX) -> tuple[StoredMessage, ...]:
        """The messages in a user's folder now, in UID order."""
        return self.store.messages(user, folder)

    def __repr__(self) -> str:
        if not self._started:
            return "<MailServer (stopped)>"
        where = ", ".join(f"{s.protocol}={s.port}" for s in self._servers())
        return f"<MailServer {self.host} {where}>"
