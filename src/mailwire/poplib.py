"""A POP3 client: a drop-in replacement for the standard library's ``poplib``.

Same names, signatures, return values (bytes where the stdlib returns bytes), exceptions and
messages as the newest stdlib, on every Python from 3.9. Differences exist only where they fix
a bug or close a hole; :mod:`mailwire.deviations` lists each with its reason.

Multi-line responses (``retr``, ``top``, ``list``, ``uidl``, ``capa``) are read a block at a time
and split in C when ``_getline`` is not overridden; the results are identical to reading line by
line, which is still what happens when a subclass overrides ``_getline``.
"""

from __future__ import annotations

import sys

from . import transport
from ._compat import MARKER, StdlibBase, inherit_from_stdlib
from ._errors import ConnectionClosed, LimitExceeded, LineTooLong, PlaintextInjection
from ._pop import commands as _commands
from ._pop.body import DotBody, strip_line

# typing costs start-up time and memory that a mail script need not pay; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Optional, Union

__all__ = ["POP3", "error_proto"]

globals()[MARKER] = True


class error_proto(StdlibBase):
    """Raised on any POP3 error reply or protocol violation (socket errors pass through).

    Once the stdlib's ``poplib`` is imported (before or after this module), this is also a
    subclass of its ``error_proto``.
    """


inherit_from_stdlib("poplib", [(error_proto, "error_proto")])


HAVE_SSL = transport.HAVE_SSL

#: Standard port.
POP3_PORT = 110
#: Standard port for POP3 over implicit TLS.
POP3_SSL_PORT = 995

CR = b"\r"
LF = b"\n"
CRLF = CR + LF

#: Longest line accepted from the server, terminator included (read at call time).
_MAXLINE = 2048

#: Largest multi-line response accepted, in received bytes (read at call time). A hostile or
#: broken server could otherwise grow a response for ever.
_MAXRESPONSE = 1 << 30

_GLOBAL_DEFAULT_TIMEOUT = transport._GLOBAL_DEFAULT_TIMEOUT

#: ``(response, lines, octets)``, the shape of every multi-line reply.
Lines = list[bytes]
Capabilities = dict[str, list[str]]
LongResponse = tuple[bytes, Lines, int]

_DESYNC_MESSAGE = (
    "-ERR connection out of sync: an earlier response was cut short; close and reconnect"
)


class POP3:
    """A POP3 client connection (RFC 1939, 2449, 2595, 5034, 6856).

    ``POP3(host, port=110, timeout=...)`` connects and reads the greeting. Every command is a
    method of the same name in lower case; arguments may be str or int. The only exception of
    its own is :class:`error_proto`.
    """

    encoding = "UTF-8"

    #: Finds the APOP timestamp in the greeting.
    timestamp = _commands.TIMESTAMP

    _desync = False
    _tls_established = False
    _debugging = 0
    sock: Any = None
    file: Any = None

    def __init__(
        self, host: str, port: int = POP3_PORT, timeout: Any = _GLOBAL_DEFAULT_TIMEOUT
    ) -> None:
        self.host = host
        self.port = port
        self._tls_established = False
        sys.audit("poplib.connect", self, host, port)
        self.sock = self._create_socket(timeout)
        self.file = transport.make_reader(self.sock)
        self._debugging = 0
        try:
            self.welcome = self._getresp()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> POP3:
        return self

    def __exit__(self, exc_type: Any, *args: Any) -> None:
        # QUIT commits deletions; after an error in the block, only close, so the server
        # discards them (RFC 1939 section 6) and nothing the caller still needs is lost.
        try:
            if exc_type is None and self.sock is not None:
                self.quit()
        finally:
            self.close()

    # -- the overridable I/O seam ---------------------------------------------------------

    def _create_socket(self, timeout: Any) -> Any:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        return transport.connect(self.host, self.port, timeout)

    def _putline(self, line: bytes) -> None:
        if self._debugging > 1:
            print("*put*", repr(line))
        sys.audit("poplib.putline", self, line)
        _commands.check_command(line)
        self.sock.sendall(line + CRLF)

    def _putcmd(self, line: str) -> None:
        if self._debugging:
            print("*cmd*", repr(line))
        _commands.check_command(line)
        if self._desync:
            raise error_proto(_DESYNC_MESSAGE)
        self._putline(bytes(line, self.encoding))

    def _getline(self) -> tuple[bytes, int]:
        maxline = _MAXLINE  # a global read per call: callers patch it (mock.patch)
        try:
            line = self.file.readline(maxline + 1)
        except transport.Timeout:
            self._desync = True
            raise
        if len(line) > maxline:
            self._desync = True
            raise error_proto("line too long")
        if self._debugging > 1:
            print("*get*", repr(line))
        if line[-1:] != LF:
            # Empty: the server closed. Anything else: it closed in mid-line, and the stdlib's
            # stripping would silently cut a byte off the partial line.
            raise error_proto("-ERR EOF")
        return strip_line(line), len(line)

    def _getresp(self) -> bytes:
        resp, _ = self._getline()
        if self._debugging > 1:
            print("*resp*", repr(resp))
        if not resp.startswith(b"+"):
            raise error_proto(resp)
        return resp

    def _getlongresp(self) -> LongResponse:
        if self._bulk_reads():
            return self._read_body()
        resp = self._getresp()
        lines = []
        octets = 0
        limit = _MAXRESPONSE
        line, size = self._getline()
        # The block path's limit, counted the same way: lines as received, "." included.
        received = size
        while True:
            if received > limit:
                self._desync = True
                raise error_proto("response too long")
            if line == b".":
                break
            if line.startswith(b".."):
                size -= 1
                line = line[1:]
            octets += size
            lines.append(line)
            line, size = self._getline()
            received += size
        return resp, lines, octets

    def _bulk_reads(self) -> bool:
        """Whether a multi-line response can be read in blocks with results identical to
        line by line: nothing that reads it is overridden, and debugging prints nothing."""
        cls = type(self)
        overrides = self.__dict__
        return (
            self._debugging < 2
            and cls._getline is _NATIVE_GETLINE
            and cls._getresp is _NATIVE_GETRESP
            and "_getline" not in overrides
            and "_getresp" not in overrides
            and type(self.file) is transport.Reader
        )

    def _read_body(self) -> LongResponse:
        """The status line and the body of a multi-line response, read in blocks."""
        reader: transport.Reader = self.file
        maxline = _MAXLINE
        body = DotBody(maxline, _MAXRESPONSE)
        try:
            # Usually one receive brings the status line and the whole body: take both from
            # the same block. Each wait gets its own deadline: like readline on the line by
            # line path, the timeout bounds the wait for the next complete line, so a server
            # that streams a long listing slowly, line by line, is not cut off.
            block = reader.peek_lines(maxline, reader.deadline())
            status = block.find(b"\n") + 1
            if status > maxline:
                self._desync = True
                raise error_proto("line too long")
            resp = strip_line(block[:status])
            if not resp.startswith(b"+"):
                reader.consume(status)
                raise error_proto(resp)
            reader.consume(status + (body.feed(block, status) if status < len(block) else 0))
            while not body.done:
                reader.consume(body.feed(reader.peek_lines(maxline, reader.deadline())))
        except ConnectionClosed:
            raise error_proto("-ERR EOF") from None
        except LineTooLong:
            self._desync = True
            raise error_proto("line too long") from None
        except LimitExceeded:
            self._desync = True
            raise error_proto("response too long") from None
        except transport.Timeout:
            self._desync = True
            raise
        return resp, body.lines, body.octets

    def _shortcmd(self, line: str) -> bytes:
        self._putcmd(line)
        return self._getresp()

    def _longcmd(self, line: str) -> LongResponse:
        self._putcmd(line)
        return self._getlongresp()

    # -- informational ---------------------------------------------------------------------

    def getwelcome(self) -> bytes:
        return self.welcome

    def set_debuglevel(self, level: int) -> None:
        self._debugging = level

    # -- RFC 1939 commands -------------------------------------------------------------------

    def user(self, user: str) -> bytes:
        """Send the user name; the reply should ask for the password."""
        return self._shortcmd("USER %s" % user)

    def pass_(self, pswd: str) -> bytes:
        """Send the password; the mailbox stays locked until :meth:`quit`."""
        return self._shortcmd("PASS %s" % pswd)

    def stat(self) -> tuple[int, int]:
        """Mailbox status as ``(message count, mailbox size)``."""
        retval = self._shortcmd("STAT")
        rets = retval.split()
        if self._debugging:
            print("*stat*", repr(rets))
        try:
            return _commands.parse_stat(retval)
        except _commands.BadReply as exc:
            raise error_proto(str(exc)) from None

    def list(self, which: Union[int, str, None] = None) -> Any:
        """``(response, ['msg octets', ...], octets)``, or one scan line for ``which``."""
        if which is not None:
            return self._shortcmd("LIST %s" % which)
        return self._longcmd("LIST")

    def retr(self, which: Union[int, str]) -> LongResponse:
        """Retrieve message ``which`` as ``(response, [line, ...], octets)``."""
        return self._longcmd("RETR %s" % which)

    def dele(self, which: Union[int, str]) -> bytes:
        """Mark message ``which`` for deletion (applied at :meth:`quit`)."""
        return self._shortcmd("DELE %s" % which)

    def noop(self) -> bytes:
        return self._shortcmd("NOOP")

    def rset(self) -> bytes:
        """Unmark all messages marked for deletion."""
        return self._shortcmd("RSET")

    def quit(self) -> bytes:
        """Commit deletions, unlock the mailbox and close the connection."""
        resp = self._shortcmd("QUIT")
        self.close()
        return resp

    def close(self) -> None:
        """Close the connection without assuming anything about its state."""
        try:
            file = self.file
            self.file = None
            if file is not None:
                file.close()
        finally:
            sock = self.sock
            self.sock = None
            if sock is not None:
                transport.shutdown_and_close(sock)

    # -- optional commands -------------------------------------------------------------------

    def rpop(self, user: str) -> bytes:
        return self._shortcmd("RPOP %s" % user)

    def apop(self, user: str, password: str) -> bytes:
        """Log in with APOP; needs a ``<timestamp>`` in the server's greeting."""
        digest = _commands.apop_digest(
            self.welcome, bytes(password, self.encoding), self.timestamp
        )
        if digest is None:
            raise error_proto("-ERR APOP not supported by server")
        return self._shortcmd("APOP %s %s" % (user, digest))

    def top(self, which: Union[int, str], howmuch: Union[int, str]) -> LongResponse:
        """The header of message ``which`` and ``howmuch`` lines of its body."""
        return self._longcmd("TOP %s %s" % (which, howmuch))

    def uidl(self, which: Union[int, str, None] = None) -> Any:
        """Unique ids: ``(response, ['msg uid', ...], octets)``, or one line for ``which``."""
        if which is not None:
            return self._shortcmd("UIDL %s" % which)
        return self._longcmd("UIDL")

    def utf8(self) -> bytes:
        """Enter UTF-8 mode (RFC 6856)."""
        return self._shortcmd("UTF8")

    def capa(self) -> Capabilities:
        """Server capabilities (RFC 2449) as ``{name: [argument, ...]}``."""
        try:
            resp = self._longcmd("CAPA")
            return _commands.parse_capa(resp[1])
        except (error_proto, _commands.BadReply):
            raise error_proto("-ERR CAPA not supported by server") from None

    def auth(
        self,
        mechanism: str,
        authobject: Optional[Callable[[bytes], Union[bytes, str, None]]] = None,
        initial_response: Union[bytes, str, None] = None,
    ) -> bytes:
        """Authenticate with SASL ``mechanism`` (RFC 5034).

        ``authobject(challenge: bytes)`` answers each server challenge with bytes or str
        (``b'*'`` cancels); ``initial_response`` is sent with the command instead.
        """
        if authobject is not None and initial_response is not None:
            raise ValueError("authobject and initial_response are mutually exclusive")
        if initial_response is not None:
            if isinstance(initial_response, str):
                initial_response = initial_response.encode(self.encoding)
            encoded = _commands.encode_response(initial_response, initial=True)
            return self._shortcmd("AUTH %s %s" % (mechanism, encoded))
        if authobject is None:
            return self._shortcmd("AUTH %s" % mechanism)
        self._putcmd("AUTH %s" % mechanism)
        while True:
            resp = self._getresp()
            if resp[:3] == b"+OK":
                return resp
            try:
                challenge = _commands.decode_challenge(resp)
            except _commands.BadReply as exc:
                self._putcmd("*")
                self._getline()
                raise error_proto("-ERR " + str(exc)) from None
            answer = authobject(challenge)
            if answer is None:
                answer = b""
            if isinstance(answer, str):
                answer = answer.encode(self.encoding)
            if answer == b"*":
                self._putcmd("*")
                return self._getresp()
            self._putcmd(_commands.encode_response(answer))

    def stls(self, context: Any = None) -> bytes:
        """Upgrade the connection to TLS (RFC 2595).

        Refuses to go on, and closes the connection, if the server sent anything between its
        ``+OK`` and the handshake: such bytes were not protected by TLS.
        """
        if not HAVE_SSL:
            raise error_proto("-ERR TLS support missing")
        if self._tls_established:
            raise error_proto("-ERR TLS session already established")
        caps = self.capa()
        if "STLS" not in caps:
            raise error_proto("-ERR STLS not supported by server")
        if context is None:
            context = transport.default_context()
        resp = self._shortcmd("STLS")
        try:
            self.sock, self.file = transport.start_tls(self.sock, self.file, context, self.host)
        except PlaintextInjection as exc:
            self.close()
            raise error_proto("-ERR STLS: " + str(exc)) from None
        self._tls_established = True
        return resp


# What _bulk_reads compares against: the class attributes themselves would follow a patch
# (mock.patch.object(POP3, "_getline", hook)) and hide it.
_NATIVE_GETLINE = POP3._getline
_NATIVE_GETRESP = POP3._getresp


if HAVE_SSL:

    class POP3_SSL(POP3):
        """POP3 over implicit TLS: ``POP3_SSL(host, port=995, *, timeout=..., context=None)``.

        ``keyfile``/``certfile`` (legacy, deprecated) may still be given instead of a context.
        """

        def __init__(
            self,
            host: str,
            port: int = POP3_SSL_PORT,
            keyfile: Optional[str] = None,
            certfile: Optional[str] = None,
            timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
            context: Any = None,
        ) -> None:
            self.context = transport.legacy_context(context, keyfile, certfile, "context")
            self.keyfile = keyfile
            self.certfile = certfile
            POP3.__init__(self, host, port, timeout)

        def _create_socket(self, timeout: Any) -> Any:
            sock = POP3._create_socket(self, timeout)
            return transport.wrap_tls(sock, self.context, self.host)

        if sys.version_info < (3, 12):

            def stls(  # type: ignore[override]  # the stdlib's own signature here
                self, keyfile: Any = None, certfile: Any = None, context: Any = None
            ) -> bytes:
                """Always fails: the session is already encrypted.

                The parameters are those of this Python's stdlib (3.12 dropped keyfile and
                certfile), so every call that reaches the stdlib's error reaches this one.
                """
                raise error_proto("-ERR TLS session already established")

        else:

            def stls(self, context: Any = None) -> bytes:
                """Always fails: the session is already encrypted."""
                raise error_proto("-ERR TLS session already established")

    __all__.append("POP3_SSL")


if __name__ == "__main__":
    _client = POP3(sys.argv[1])  # the stdlib's module also runs as a tiny script
    print(_client.getwelcome())
    _client.user(sys.argv[2])
    _client.pass_(sys.argv[3])
    _count, _size = _client.stat()
    for _number in range(1, _count + 1):
        _header, _lines, _octets = _client.retr(_number)
        print("Message %d:" % _number)
        for _line in _lines:
            print("   " + _line.decode("utf-8", "replace"))
        print("-----------------------")
    _client.quit()
