"""The embedded POP3 server: RFC 1939, RFC 2449 (CAPA), RFC 2595 (STLS), RFC 5034 (AUTH PLAIN).

It serves the INBOX of a :class:`~mailwire.testing.store.Store` and answers as Dovecot 2.3 does
(``+OK Logged in.``, ``-ERR [AUTH] Authentication failed.``, ``+OK Begin TLS negotiation now.``,
``-ERR There's no message 9.``, ``-ERR Unknown command.`` for a mail command before login...),
checked side by side with a real Dovecot, so a client tested against it meets the replies it
will meet in the field. Deliberate differences: the greeting says ``mailwire ready.``; the only
SASL mechanism is PLAIN; arguments after STAT, NOOP, RSET, QUIT or CAPA, and USER without a
name, are refused where Dovecot ignores them; and there is no "too many bad commands" cut-off.

Behaviour worth knowing:

- The greeting carries an APOP timestamp (``<pid.count.time@host>``), unique per connection.
- A session sees the INBOX as it was at login. DELE only marks; QUIT (the UPDATE state) removes
  the marked messages from the store and flags the retrieved ones ``\\Seen``. A connection that
  ends without QUIT changes nothing.
- Sizes are octet counts with CRLF line endings (the store keeps messages that way), RETR sends
  exactly that many octets before dot-stuffing, and a message not ending in CRLF gets one before
  the terminating ``.``.
- Unique ids follow Dovecot's default ``%08Xu%08Xv``: the UID, then the UIDVALIDITY, as eight
  lowercase hex digits each (which is what Dovecot 2.3 sends).
- Plaintext received after STLS and before the TLS handshake is discarded, never executed.
- An input line longer than ``max_line`` octets gets ``-ERR`` and the connection is closed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import os
import socket
import ssl
import time
from typing import Callable

from mailwire.testing._server import (
    Connection,
    LineTooLongError,
    ThreadedServer,
    check_server_tls,
)
from mailwire.testing.store import INBOX, Store, StoredMessage

__all__ = ["POP3Server", "dot_stuff"]

_counter = itertools.count(1)


def dot_stuff(data: bytes) -> bytes:
    """Return *data* (CRLF line endings) ready for a POP3 multi-line response body.

    Every line starting with ``.`` gets another ``.``, and a missing final CRLF is added; the
    terminating ``.`` line is not included.
    """
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if stuffed and not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed


def _top(data: bytes, lines: int) -> bytes:
    """The header section, the blank line, and the first *lines* lines of the body."""
    if data.startswith(b"\r\n"):
        split = 2
    else:
        split = data.find(b"\r\n\r\n")
        if split < 0:
            return data
        split += 4
    head, body = data[:split], data[split:]
    if lines == 0:
        return head
    parts = body.split(b"\r\n", lines)
    if len(parts) <= lines:
        return data
    return head + b"\r\n".join(parts[:lines]) + b"\r\n"


class _Reply(Exception):
    """Raised by a command handler to answer ``-ERR <text>``."""


class _Session:
    def __init__(self, server: POP3Server, connection: Connection) -> None:
        self.server = server
        self.connection = connection
        host = server.hostname
        self.timestamp = f"<{os.getpid()}.{next(_counter)}.{int(time.time())}@{host}>"
        self.pending_user: str | None = None
        self.user: str | None = None
        self.messages: tuple[StoredMessage, ...] = ()
        self.uidvalidity = 0
        self.deleted: set[int] = set()
        self.retrieved: set[int] = set()
        self.done = False

    # -- replies -----------------------------------------------------------------------------

    def ok(self, text: str = "") -> None:
        self.connection.write(b"+OK" + (b" " + text.encode("utf-8") if text else b"") + b"\r\n")

    def multiline(self, first: str, body: bytes) -> None:
        """Send ``+OK first``, the dot-stuffed body and the terminator in one write."""
        head = b"+OK" + (b" " + first.encode("ascii") if first else b"") + b"\r\n"
        self.connection.write(head + dot_stuff(body) + b".\r\n")

    # -- helpers -----------------------------------------------------------------------------

    def plaintext_refused(self) -> bool:
        return self.server.require_tls and not self.connection.tls

    def message(self, args: list[str], last: bool = True) -> tuple[int, StoredMessage]:
        """The message named by ``args[0]``; with *last*, nothing may follow it."""
        token = args[0] if args else ""
        if not token.isdigit() or not token.isascii():
            raise _Reply(f"Invalid message number: {token}")
        if len(token) > 10:
            raise _Reply(f"Message number too large: {token}")
        if last and len(args) > 1:
            raise _Reply("Noise after message number: " + _rest(args[1:]))
        number = int(token)
        if not 1 <= number <= len(self.messages):
            raise _Reply(f"There's no message {number}.")
        if number in self.deleted:
            raise _Reply("Message is deleted.")
        return number, self.messages[number - 1]

    def login(self, user: str) -> None:
        snapshot = self.server.store.snapshot(user, INBOX)
        self.user = user
        self.messages = snapshot.messages
        self.uidvalidity = snapshot.uidvalidity
        self.pending_user = None
        self.ok("Logged in.")

    def uidl_of(self, message: StoredMessage) -> str:
        return f"{message.uid:08x}{self.uidvalidity:08x}"

    def live(self) -> list[tuple[int, StoredMessage]]:
        return [(n, m) for n, m in enumerate(self.messages, 1) if n not in self.deleted]

    # -- AUTHORIZATION state -----------------------------------------------------------------

    def cmd_capa(self, args: list[str]) -> None:
        _no_args(args)
        caps = ["CAPA", "TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE"]
        if self.user is None:
            if self.server.stls_context is not None and not self.connection.tls:
                caps.append("STLS")
            if not self.plaintext_refused():
                caps += ["USER", "SASL PLAIN"]
        self.multiline("", "".join(c + "\r\n" for c in caps).encode("ascii"))

    def cmd_stls(self, args: list[str]) -> None:
        _no_args(args)
        context = self.server.stls_context
        if self.connection.tls:
            raise _Reply("TLS is already active.")
        if context is None:
            raise _Reply("TLS support isn't enabled.")
        self.ok("Begin TLS negotiation now.")
        self.connection.start_tls(context)
        self.pending_user = None  # nothing said before TLS carries over (RFC 2595)

    def cmd_user(self, args: list[str]) -> None:
        if not args:
            raise _Reply("No username given.")
        if len(args) > 1:
            raise _Reply("Too many arguments.")
        if self.plaintext_refused():
            raise _Reply(_PLAINTEXT_REFUSED)
        self.pending_user = args[0]
        self.ok()

    def cmd_pass(self, password: str) -> None:
        user = self.pending_user
        self.pending_user = None
        if user is None:
            raise _Reply("No username given.")
        if self.plaintext_refused():
            raise _Reply(_PLAINTEXT_REFUSED)
        if not self.server.store.check_password(user, password):
            raise _Reply(_AUTH_FAILED)
        self.login(user)

    def cmd_apop(self, args: list[str]) -> None:
        if len(args) != 2:
            raise _Reply("Invalid parameters.")
        user, digest = args
        store = self.server.store
        if user not in store.users():
            raise _Reply(_AUTH_FAILED)
        secret = (self.timestamp + store.password(user)).encode("utf-8")
        expected = hashlib.md5(secret).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), digest.lower().encode("ascii",
                                                                                  "replace")):
            raise _Reply(_AUTH_FAILED)
        self.login(user)

    def cmd_auth(self, args: list[str]) -> None:
        if not args:
            self.multiline("", b"PLAIN\r\n")
            return
        if len(args) > 2:
            raise _Reply("Too many arguments.")
        if args[0].upper() != "PLAIN":
            raise _Reply("Unsupported authentication mechanism.")
        if self.plaintext_refused():
            raise _Reply(_PLAINTEXT_REFUSED)
        invalid = "[AUTH] Invalid base64 data in initial response"
        if len(args) == 2:
            response = args[1]
        else:
            invalid = "[AUTH] Invalid base64 in response"
            self.connection.write(b"+ \r\n")
            line = self.connection.readline()
            if line is None:
                self.done = True
                return
            response = line.decode("ascii", "replace")
        if response == "*":
            raise _Reply("Authentication aborted by client.")
        try:
            decoded = b"" if response == "=" else base64.b64decode(response, validate=True)
        except binascii.Error:
            raise _Reply(invalid) from None
        fields = decoded.decode("utf-8", "surrogateescape").split("\0")
        if len(fields) != 3:
            raise _Reply(_AUTH_FAILED)
        authzid, authcid, password = fields
        if authzid not in ("", authcid) or not self.server.store.check_password(authcid,
                                                                                 password):
            raise _Reply(_AUTH_FAILED)
        self.login(authcid)

    # -- TRANSACTION state -------------------------------------------------------------------

    def cmd_stat(self, args: list[str]) -> None:
        _no_args(args)
        live = self.live()
        self.ok(f"{len(live)} {sum(m.size for _, m in live)}")

    def cmd_list(self, args: list[str]) -> None:
        if args:
            number, message = self.message(args)
            self.ok(f"{number} {message.size}")
            return
        live = self.live()
        body = "".join(f"{n} {m.size}\r\n" for n, m in live)
        self.multiline(f"{len(live)} messages:", body.encode("ascii"))

    def cmd_uidl(self, args: list[str]) -> None:
        if args:
            number, message = self.message(args)
            self.ok(f"{number} {self.uidl_of(message)}")
            return
        body = "".join(f"{n} {self.uidl_of(m)}\r\n" for n, m in self.live())
        self.multiline("", body.encode("ascii"))

    def cmd_retr(self, args: list[str]) -> None:
        _, message = self.message(args)
        self.multiline(f"{message.size} octets", message.data)
        self.retrieved.add(message.uid)

    def cmd_top(self, args: list[str]) -> None:
        _, message = self.message(args, last=False)
        count = args[1] if len(args) > 1 else ""
        if not count.isdigit() or not count.isascii():
            raise _Reply(f"Invalid size: {count}")
        if len(args) > 2:
            raise _Reply("Noise after size: " + _rest(args[2:]))
        self.multiline("", _top(message.data, int(count)))

    def cmd_dele(self, args: list[str]) -> None:
        number, _ = self.message(args)
        self.deleted.add(number)
        self.ok("Marked to be deleted.")

    def cmd_rset(self, args: list[str]) -> None:
        _no_args(args)
        self.deleted.clear()
        self.ok()

    def cmd_noop(self, args: list[str]) -> None:
        _no_args(args)
        self.ok()

    def cmd_quit(self, args: list[str]) -> None:
        _no_args(args)
        self.done = True
        if self.user is None:
            self.ok("Logging out")
            return
        store = self.server.store
        deleted_uids = [self.messages[n - 1].uid for n in self.deleted]
        seen = self.retrieved.difference(deleted_uids)
        if seen:
            store.set_flags(self.user, INBOX, seen, ["\\Seen"], mode="add")
        if deleted_uids:
            store.remove(self.user, INBOX, deleted_uids)
            self.ok("Logging out, messages deleted.")
        else:
            self.ok("Logging out.")

    # -- dispatch ----------------------------------------------------------------------------

    def handle_line(self, line: bytes) -> None:
        text = line.decode("utf-8", "surrogateescape")
        name, _, rest = text.partition(" ")
        command = name.upper()
        authorized = self.user is not None
        handler: Callable[[list[str]], None] | None
        handler = getattr(self, "cmd_" + command.lower(), None) if command.isalpha() else None
        if handler is not None and command.isascii() and (
            command in _ANY_STATE or (command in _TRANSACTION) == authorized
        ):
            if command == "PASS":
                self.cmd_pass(rest)  # the password is the rest of the line, spaces and all
            else:
                handler(rest.split())
            return
        # Dovecot's words: its login process knows no mail commands, its mail process no login
        # commands, and neither says "wrong state".
        raise _Reply(f"Unknown command: {command}" if authorized else "Unknown command.")

    def run(self) -> None:
        connection = self.connection
        greeting = f"+OK {self.server.greeting} {self.timestamp}\r\n"
        connection.write(greeting.encode("utf-8"))
        try:
            while not self.done:
                line = connection.readline()
                if line is None:
                    return
                try:
                    self.handle_line(line)
                except _Reply as reply:
                    connection.write(b"-ERR " + str(reply).encode("utf-8", "replace") + b"\r\n")
        # AUTH reads a line too, so these can come from inside handle_line().
        except LineTooLongError:
            connection.write(b"-ERR Input line too long, aborting.\r\n")
        except socket.timeout:
            connection.write(b"-ERR Disconnected for inactivity.\r\n")


_AUTH_FAILED = "[AUTH] Authentication failed."
_PLAINTEXT_REFUSED = (
    "[AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
)
_ANY_STATE = frozenset({"CAPA", "QUIT"})
_TRANSACTION = frozenset({"STAT", "LIST", "RETR", "DELE", "RSET", "TOP", "UIDL", "NOOP"})


def _rest(args: list[str]) -> str:
    """The rest of a command line as Dovecot quotes it in errors (leading space included)."""
    return " " + " ".join(args)


def _no_args(args: list[str]) -> None:
    if args:
        raise _Reply("Too many arguments.")


class POP3Server(ThreadedServer):
    """A POP3 server for the INBOXes of *store*, listening on loopback.

    *tls_context* is a server-side :class:`ssl.SSLContext`. With ``implicit_tls=False`` (POP3)
    it enables STLS (without it, STLS is refused and not advertised); with
    ``implicit_tls=True`` (POP3S) every connection starts with a TLS handshake. With
    *require_tls*, USER, PASS and AUTH PLAIN are refused until the connection is encrypted
    (APOP sends no password, so it stays allowed).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`; ``host``, ``port`` and
    ``address`` tell where it listens. Most users want :class:`~mailwire.testing.MailServer`,
    which creates these for them.
    """

    protocol = "pop3"

    def __init__(
        self,
        store: Store,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        require_tls: bool = False,
        greeting: str = "mailwire ready.",
        hostname: str = "localhost",
        max_line: int = 8192,
        idle_timeout: float = 600.0,
    ) -> None:
        check_server_tls(tls_context, implicit_tls)
        super().__init__(
            host,
            port,
            tls_context=tls_context if implicit_tls else None,
            max_line=max_line,
            idle_timeout=idle_timeout,
        )
        if implicit_tls:
            self.protocol = "pop3s"
        self.store = store
        #: The context STLS uses; None when STLS is not offered (and under implicit TLS).
        self.stls_context = None if implicit_tls else tls_context
        self.require_tls = require_tls
        self.greeting = greeting
        self.hostname = hostname

    def handle(self, connection: Connection) -> None:
        _Session(self, connection).run()
