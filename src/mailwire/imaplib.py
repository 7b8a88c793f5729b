"""An IMAP4 client: a drop-in replacement for the standard library's ``imaplib``.

Same names, signatures, ``(typ, data)`` shapes (bytes where the stdlib has bytes), exceptions
and messages as the newest stdlib, on every Python from 3.9. Differences exist only where they
fix a bug or close a hole; :mod:`mailwire.deviations` lists each with its reason.

When ``read``, ``readline`` and ``_get_line`` are not overridden, responses are read from
mailwire's buffered reader directly: one pattern per line instead of four, no per-line debug
formatting, literals read straight into their final buffer, and runs of plain FETCH lines
turned into results a block at a time. Subclasses that override those methods get exactly the
stdlib's line-by-line behaviour through them.
"""

from __future__ import annotations

import binascii
import operator
import random
import re
import sys
import time
import warnings
from collections import deque

from . import transport
from ._compat import MARKER, StdlibBase, inherit_from_stdlib
from ._errors import PlaintextInjection
from ._imap import args as _args
from ._imap import response as _resp
from ._imap.dates import (
    Flags,
    Int2AP,
    InternalDate,
    Internaldate2tuple,
    MapCRLF,
    Mon2num,
    Months,
    ParseFlags,
    Time2Internaldate,
)

# typing costs start-up time and memory that a mail script need not pay; annotations only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, Optional, Union

# The stdlib deprecates reading imaplib.__version__ (module __getattr__ below).
_VERSION = "2.58"

__all__ = [
    "IMAP4",
    "IMAP4_stream",
    "Int2AP",
    "Internaldate2tuple",
    "ParseFlags",
    "Time2Internaldate",
]

globals()[MARKER] = True


HAVE_SSL = transport.HAVE_SSL

CRLF = b"\r\n"
#: Debug level given to new connections (read when each connection is made).
Debug = 0
IMAP4_PORT = 143
IMAP4_SSL_PORT = 993
#: Protocol versions accepted, most recent first.
AllowedVersions = ("IMAP4REV1", "IMAP4")

#: Longest response line accepted, CRLF included (read at call time).
_MAXLINE = 1000000

#: Largest literal accepted from the server, in bytes (read at call time). Memory grows with
#: the bytes that arrive, never with the size announced; this bounds how far it can grow.
_MAXLITERAL = 1 << 31

#: Command name -> states in which it is valid. Callers add entries; read at call time.
Commands: dict[str, tuple[str, ...]] = {
    "APPEND": ("AUTH", "SELECTED"),
    "AUTHENTICATE": ("NONAUTH",),
    "CAPABILITY": ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"),
    "CHECK": ("SELECTED",),
    "CLOSE": ("SELECTED",),
    "COPY": ("SELECTED",),
    "CREATE": ("AUTH", "SELECTED"),
    "DELETE": ("AUTH", "SELECTED"),
    "DELETEACL": ("AUTH", "SELECTED"),
    "ENABLE": ("AUTH",),
    "EXAMINE": ("AUTH", "SELECTED"),
    "EXPUNGE": ("SELECTED",),
    "FETCH": ("SELECTED",),
    "GETACL": ("AUTH", "SELECTED"),
    "GETANNOTATION": ("AUTH", "SELECTED"),
    "GETQUOTA": ("AUTH", "SELECTED"),
    "GETQUOTAROOT": ("AUTH", "SELECTED"),
    "ID": ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"),
    "IDLE": ("AUTH", "SELECTED"),
    "MYRIGHTS": ("AUTH", "SELECTED"),
    "LIST": ("AUTH", "SELECTED"),
    "LOGIN": ("NONAUTH",),
    "LOGOUT": ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"),
    "LSUB": ("AUTH", "SELECTED"),
    "MOVE": ("SELECTED",),
    "NAMESPACE": ("AUTH", "SELECTED"),
    "NOOP": ("NONAUTH", "AUTH", "SELECTED", "LOGOUT"),
    "PARTIAL": ("SELECTED",),
    "PROXYAUTH": ("AUTH",),
    "RENAME": ("AUTH", "SELECTED"),
    "SEARCH": ("SELECTED",),
    "SELECT": ("AUTH", "SELECTED"),
    "SETACL": ("AUTH", "SELECTED"),
    "SETANNOTATION": ("AUTH", "SELECTED"),
    "SETQUOTA": ("AUTH", "SELECTED"),
    "SORT": ("SELECTED",),
    "STARTTLS": ("NONAUTH",),
    "STATUS": ("AUTH", "SELECTED"),
    "STORE": ("SELECTED",),
    "SUBSCRIBE": ("AUTH", "SELECTED"),
    "THREAD": ("SELECTED",),
    "UID": ("SELECTED",),
    "UNSELECT": ("SELECTED",),
    "UNSUBSCRIBE": ("AUTH", "SELECTED"),
}

# The newest stdlib's placeholder substitution, under its private module-level name.
_substitute = _args.substitute

# Patterns the stdlib module exposes; callers match against them directly.
Continuation = _resp.Continuation
Literal = _resp.Literal
Response_code = _resp.Response_code
Untagged_response = _resp.Untagged_response
Untagged_status = _resp.Untagged_status
_Literal = _resp.LITERAL_SOURCE
_Untagged_status = _resp.UNTAGGED_STATUS_SOURCE

# Re-exported for callers that reach them through this module.
_UTILITIES = (Flags, InternalDate, MapCRLF, Mon2num, Months)

_CMD_LOG_LEN = 10
_UNKNOWN = object()
_time = time.time
# Stray empty lines in a row (between responses, or after a literal inside parentheses)
# skipped before the response is declared malformed.
_MAX_BLANK_LINES = 16


def __getattr__(name: str) -> Any:
    if name == "__version__":
        warnings.warn(
            "'__version__' is deprecated and slated for removal in Python 3.20",
            DeprecationWarning,
            stacklevel=2,
        )
        return _VERSION
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _text(data: Any) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


class IMAP4:
    r"""An IMAP4rev1 client connection (RFC 3501, with many extensions).

    ``IMAP4(host='', port=143, timeout=None)`` connects, reads the greeting and the server's
    capabilities. Every command is a method of the same name in lower case returning
    ``(typ, [data, ...])``; ``typ`` is usually ``'OK'`` or ``'NO'``, each data item is bytes,
    or a ``(header, literal)`` tuple of bytes when the server sent a literal.

    Errors raise ``IMAP4.error``; connection problems ``IMAP4.abort`` (reconnect and retry);
    a mailbox turning read-only ``IMAP4.readonly``.
    """

    # Once the stdlib's imaplib is imported, each is also a subclass of its counterpart there.
    class error(StdlibBase):
        """A protocol or usage error."""

    class abort(error):
        """The connection is unusable: close it, reconnect and retry."""

    class readonly(abort):
        """The selected mailbox became read-only."""

    _broken: Optional[str] = None
    _idle_capture = False
    _idle_responses: Any = ()
    _waiting = False
    _continuation_line = b""
    _tls_established = False
    debug = 0
    sock: Any = None
    file: Any = None

    def __init__(self, host: str = "", port: int = IMAP4_PORT, timeout: Optional[float] = None):
        self.debug = Debug
        self.state = "LOGOUT"
        self.literal: Any = None
        self.tagged_commands: dict[bytes, Any] = {}
        self.untagged_responses: dict[str, list[Any]] = {}
        self.continuation_response: Any = ""
        self.is_readonly = False
        self.tagnum = 0
        self._tls_established = False
        self._mode_ascii()
        self.open(host, port, timeout)
        try:
            self._connect()
        except Exception:
            try:
                self.shutdown()
            except OSError:
                pass
            raise

    def _mode_ascii(self) -> None:
        self.utf8_enabled = False
        self._encoding = "ascii"
        self.Literal = re.compile(_Literal, re.ASCII)
        self.Untagged_status = re.compile(_Untagged_status, re.ASCII)

    def _mode_utf8(self) -> None:
        self.utf8_enabled = True
        self._encoding = "utf-8"
        self.Literal = re.compile(_Literal)
        self.Untagged_status = re.compile(_Untagged_status)

    def _connect(self) -> None:
        self.tagpre = Int2AP(random.randint(4096, 65535))
        self.tagre = _resp.tagged_pattern(self.tagpre)
        self._cmd_log_len = _CMD_LOG_LEN
        # The last interactions, oldest first: (text, time) from _log, (direction, line,
        # time) from _log_raw, which leaves the formatting to print_log.
        self._cmd_log: deque[tuple[Any, ...]] = deque(maxlen=_CMD_LOG_LEN)
        if self.debug >= 1:
            self._mesg("imaplib version %s" % _VERSION)
            self._mesg("new IMAP4 connection, tag=%r" % self.tagpre)

        self.welcome = self._get_response()
        if "PREAUTH" in self.untagged_responses:
            self.state = "AUTH"
        elif "OK" in self.untagged_responses:
            self.state = "NONAUTH"
        else:
            line = self.welcome if self.welcome is not None else self._continuation_line
            raise self.error("invalid greeting: %s" % line.decode(self._encoding, "replace"))

        # A greeting that lists the capabilities saves a round trip (RFC 3501 7.1).
        greeting_caps = self.untagged_responses.pop("CAPABILITY", None)
        if greeting_caps and greeting_caps[-1]:
            self._set_capabilities(greeting_caps[-1])
        else:
            self._get_capabilities()
        if self.debug >= 3:
            self._mesg("CAPABILITIES: %r" % (self.capabilities,))
        for version in AllowedVersions:
            if version in self.capabilities:
                self.PROTOCOL_VERSION = version
                return
        raise self.error("server not IMAP4 compliant")

    def __getattr__(self, attr: str) -> Any:
        # Upper-case aliases of the command methods (M.SELECT(...)).
        if attr in Commands:
            return getattr(self, attr.lower())
        raise AttributeError("Unknown IMAP4 command: '%s'" % attr)

    def __enter__(self) -> IMAP4:
        return self

    def __exit__(self, *args: Any) -> None:
        if self.state == "LOGOUT":
            return
        if self._broken is not None:
            # LOGOUT cannot be sent on a connection out of step (its abort would replace the
            # exception leaving the block, a timeout say): only close.
            self.state = "LOGOUT"
            try:
                self.shutdown()
            except OSError:
                pass
            return
        try:
            self.logout()
        except OSError:
            pass

    # -- the overridable I/O seam ---------------------------------------------------------

    def _create_socket(self, timeout: Optional[float]) -> Any:
        if timeout is not None and not timeout:
            raise ValueError("Non-blocking socket (timeout=0) is not supported")
        # getaddrinfo() wants None, not '', for "this host".
        host = None if not self.host else self.host
        sys.audit("imaplib.open", self, self.host, self.port)
        if timeout is not None:
            return transport.connect(host, self.port, timeout)  # type: ignore[arg-type]
        return transport.connect(host, self.port)  # type: ignore[arg-type]

    def open(self, host: str = "", port: int = IMAP4_PORT, timeout: Optional[float] = None) -> None:
        """Connect to ``host:port``; the connection serves read, readline, send, shutdown."""
        self.host = host
        self.port = port
        self.sock = self._create_socket(timeout)
        self.file = transport.make_reader(self.sock)

    def read(self, size: int) -> bytes:
        """Read ``size`` bytes from the server."""
        return self.file.read(size)  # type: ignore[no-any-return]

    def readline(self) -> bytes:
        """Read one line from the server."""
        maxline = _MAXLINE
        line: bytes = self.file.readline(maxline + 1)
        if len(line) > maxline:
            raise self.error("got more than %d bytes" % maxline)
        return line

    def send(self, data: bytes) -> None:
        """Send ``data`` to the server."""
        sys.audit("imaplib.send", self, data)
        self.sock.sendall(data)

    def shutdown(self) -> None:
        """Close the connection made by :meth:`open`."""
        file = self.file
        if file is not None:  # callers may have replaced or dropped it
            file.close()
        transport.shutdown_and_close(self.sock)

    def socket(self) -> Any:
        """The socket connected to the server."""
        return self.sock

    def _native_reader(self) -> Optional[transport.Reader]:
        file = self.file
        return file if type(file) is transport.Reader else None

    def _fast_reader(self) -> Optional[transport.Reader]:
        """mailwire's reader, when reading from it directly equals the stdlib's path: none of
        the methods that read a reply (``_READING_HOOKS``) is overridden, by the class or on
        the instance, and debugging does not print every line."""
        if self.debug >= 4:
            return None
        return _unhooked_reader(self, _hooks_of, _NATIVE_HOOKS, _READING_HOOKS)

    # -- utility methods -------------------------------------------------------------------

    def recent(self) -> tuple[str, list[Any]]:
        """The RECENT responses received, or prompt the server with NOOP for them."""
        name = "RECENT"
        typ, dat = self._untagged_response("OK", [None], name)
        if dat[-1]:
            return typ, dat
        typ, dat = self.noop()
        return self._untagged_response(typ, dat, name)

    def response(self, code: str) -> tuple[str, list[Any]]:
        """Data received for response ``code`` (cleared once returned), or ``[None]``."""
        return self._untagged_response(code, [None], code.upper())

    # -- IMAP4 commands --------------------------------------------------------------------
    # Arguments are formatted as the newest stdlib formats them: mailbox names in modified
    # UTF-7 (ASCII mode) and quoted when needed, flag and item lists parenthesized, message
    # sets built from ints, ranges and pairs, everything else sent as the caller wrote it.

    def append(
        self,
        mailbox: Any,
        flags: Any,
        date_time: Any,
        message: Any,
        *,
        translate_line_endings: bool = True,
    ) -> tuple[str, Any]:
        """Append ``message`` to ``mailbox``; all but ``message`` may be None.

        Line endings are made CRLF unless ``translate_line_endings`` is false.
        """
        if not mailbox:
            mailbox = "INBOX"
        flags = self._set_quote(flags) if flags else None
        date_time = Time2Internaldate(date_time) if date_time else None
        if not isinstance(message, (bytes, bytearray)) and hasattr(message, "as_bytes"):
            message = message.as_bytes()
        literal = MapCRLF.sub(CRLF, message) if translate_line_endings else bytes(message)
        if self.utf8_enabled:
            # RFC 6855: the message goes as a literal8 inside UTF8 ( ... ).
            self.literal = _Utf8Literal(literal)
        else:
            self.literal = literal
        return self._simple_command("APPEND", self._mailbox(mailbox), flags, date_time)

    def authenticate(self, mechanism: str, authobject: Callable[[bytes], Any]) -> tuple[str, Any]:
        """Authenticate with SASL ``mechanism``; ``authobject(challenge)`` answers each
        challenge with bytes (or str) to send, or None to cancel."""
        mech = mechanism.upper()
        self.literal = _Authenticator(authobject).process
        typ, dat = self._simple_command("AUTHENTICATE", mech)
        if typ != "OK":
            raise self.error(dat[-1].decode("utf-8", "replace"))
        self.state = "AUTH"
        self._refresh_capabilities()
        return typ, dat

    def capability(self) -> tuple[str, Any]:
        """Ask the server for its capabilities."""
        name = "CAPABILITY"
        typ, dat = self._simple_command(name)
        return self._untagged_response(typ, dat, name)

    def check(self) -> tuple[str, Any]:
        """Checkpoint the selected mailbox."""
        return self._simple_command("CHECK")

    def close(self) -> tuple[str, Any]:
        """Close the selected mailbox, removing messages marked deleted."""
        try:
            typ, dat = self._simple_command("CLOSE")
        finally:
            self.state = "AUTH"
        return typ, dat

    def copy(self, message_set: Any, new_mailbox: Any, *, uid: bool = False) -> tuple[str, Any]:
        """Copy ``message_set`` to the end of ``new_mailbox``."""
        return self._maybe_uid(
            uid, "COPY", self._sequence_set(message_set), self._mailbox(new_mailbox)
        )

    def create(self, mailbox: Any) -> tuple[str, Any]:
        return self._simple_command("CREATE", self._mailbox(mailbox))

    def delete(self, mailbox: Any) -> tuple[str, Any]:
        return self._simple_command("DELETE", self._mailbox(mailbox))

    def deleteacl(self, mailbox: Any, who: Any) -> tuple[str, Any]:
        """Remove every right granted to ``who`` on ``mailbox`` (RFC 4314)."""
        return self._simple_command("DELETEACL", self._mailbox(mailbox), self._astring(who))

    def enable(self, capability: str) -> tuple[str, Any]:
        """Enable ``capability`` (RFC 5161); ``UTF8=ACCEPT`` switches to UTF-8 mode."""
        if "ENABLE" not in self.capabilities:
            raise IMAP4.error("Server does not support ENABLE")
        typ, data = self._simple_command("ENABLE", capability)
        if typ == "OK" and "UTF8=ACCEPT" in capability.upper():
            self._mode_utf8()
        return typ, data

    def expunge(self, message_set: Any = None, *, uid: bool = False) -> tuple[str, Any]:
        """Remove deleted messages (only those in ``message_set`` with ``uid=True``, RFC 4315);
        data lists the expunged message numbers."""
        name = "EXPUNGE"
        if uid:
            if message_set is None:
                raise self.error("UID EXPUNGE requires a message set")
            typ, dat = self._uid_command(name, self._sequence_set(message_set))
        else:
            if message_set is not None:
                raise self.error("EXPUNGE takes a message set only with uid=True")
            typ, dat = self._simple_command(name)
        return self._untagged_response(typ, dat, name)

    def fetch(
        self, message_set: Any, message_parts: Any, *, params: Any = None, uid: bool = False
    ) -> tuple[str, Any]:
        """Fetch ``message_parts`` (e.g. ``'(UID BODY[TEXT])'``) of ``message_set``."""
        name = "FETCH"
        if params is not None:
            message_parts = _args.substitute(message_parts, params)
        parts: Union[str, bytes]
        if type(message_parts) is str and message_parts[:1] == "(" and message_parts[-1:] == ")":
            parts = message_parts  # what _fetch_parts gives for it, without the call
        else:
            parts = self._fetch_parts(message_parts)
        if type(message_set) is not str:  # a str passes unchanged: spare the call
            message_set = self._sequence_set(message_set)
        if uid:
            typ, dat = self._uid_command(name, message_set, parts)
        else:
            reader = _express_reader(self)
            if reader is not None:
                return _express(self, reader, name, (message_set, parts), name)
            typ, dat = self._simple_command(name, message_set, parts)
        return self._untagged_response(typ, dat, name)

    def getacl(self, mailbox: Any) -> tuple[str, Any]:
        typ, dat = self._simple_command("GETACL", self._mailbox(mailbox))
        return self._untagged_response(typ, dat, "ACL")

    def getannotation(self, mailbox: Any, entry: Any, attribute: Any) -> tuple[str, Any]:
        typ, dat = self._simple_command("GETANNOTATION", self._mailbox(mailbox), entry, attribute)
        return self._untagged_response(typ, dat, "ANNOTATION")

    def getquota(self, root: Any) -> tuple[str, Any]:
        """Usage and limits of quota ``root`` (RFC 2087)."""
        typ, dat = self._simple_command("GETQUOTA", self._astring(root))
        return self._untagged_response(typ, dat, "QUOTA")

    def getquotaroot(self, mailbox: Any) -> tuple[str, Any]:
        """``(typ, [[QUOTAROOT responses], [QUOTA responses]])`` for ``mailbox``."""
        typ, dat = self._simple_command("GETQUOTAROOT", self._mailbox(mailbox))
        typ, quota = self._untagged_response(typ, dat, "QUOTA")
        typ, quotaroot = self._untagged_response(typ, dat, "QUOTAROOT")
        return typ, [quotaroot, quota]

    def id(self, fields: Any = None) -> tuple[str, Any]:
        """Exchange identification with the server (RFC 2971): ``fields`` maps names to
        values (or None); the server's ``ID`` data is returned."""
        typ, dat = self._simple_command("ID", _args.id_list(fields))
        return self._untagged_response(typ, dat, "ID")

    def list(self, directory: Any = '""', pattern: Any = "*") -> tuple[str, Any]:
        """Mailbox names in ``directory`` matching ``pattern``."""
        name = "LIST"
        typ, dat = self._simple_command(
            name, self._mailbox(directory), self._list_mailbox(pattern)
        )
        return self._untagged_response(typ, dat, name)

    def login(self, user: Any, password: Any) -> tuple[str, Any]:
        """Log in with a plaintext password (always sent quoted)."""
        typ, dat = self._simple_command("LOGIN", self._astring(user), self._quote(password))
        if typ != "OK":
            raise self.error(_text(dat[-1]))
        self.state = "AUTH"
        self._refresh_capabilities()
        return typ, dat

    def login_cram_md5(self, user: str, password: Any) -> tuple[str, Any]:
        """Log in with AUTHENTICATE CRAM-MD5."""
        self.user, self.password = user, password
        return self.authenticate("CRAM-MD5", self._CRAM_MD5_AUTH)

    def _CRAM_MD5_AUTH(self, challenge: bytes) -> str:
        import hmac

        pwd = self.password.encode("utf-8") if isinstance(self.password, str) else self.password
        try:
            digest = hmac.HMAC(pwd, challenge, "md5").hexdigest()
        except ValueError:  # MD5 blocked (FIPS mode)
            raise self.error("CRAM-MD5 authentication is not supported") from None
        return self.user + " " + digest

    def login_plain(self, user: Any, password: Any) -> tuple[str, Any]:
        """Log in with AUTHENTICATE PLAIN (RFC 4616); str credentials are sent as UTF-8."""
        user_b = user.encode("utf-8") if isinstance(user, str) else bytes(user)
        password_b = password.encode("utf-8") if isinstance(password, str) else bytes(password)
        if 0 in user_b or 0 in password_b:
            raise ValueError("user and password must not contain NUL characters")
        payload = b"\0" + user_b + b"\0" + password_b
        return self.authenticate("PLAIN", lambda challenge: payload)

    def logout(self) -> tuple[str, Any]:
        """Log out and close the connection; returns the server's BYE."""
        self.state = "LOGOUT"
        typ, dat = self._simple_command("LOGOUT")
        self.shutdown()
        return typ, dat

    def lsub(self, directory: Any = '""', pattern: Any = "*") -> tuple[str, Any]:
        """Subscribed mailbox names in ``directory`` matching ``pattern``."""
        name = "LSUB"
        typ, dat = self._simple_command(
            name, self._mailbox(directory), self._list_mailbox(pattern)
        )
        return self._untagged_response(typ, dat, name)

    def move(self, message_set: Any, new_mailbox: Any, *, uid: bool = False) -> tuple[str, Any]:
        """Move ``message_set`` to ``new_mailbox`` (RFC 6851)."""
        return self._maybe_uid(
            uid, "MOVE", self._sequence_set(message_set), self._mailbox(new_mailbox)
        )

    def myrights(self, mailbox: Any) -> tuple[str, Any]:
        typ, dat = self._simple_command("MYRIGHTS", self._mailbox(mailbox))
        return self._untagged_response(typ, dat, "MYRIGHTS")

    def namespace(self) -> tuple[str, Any]:
        """The server's namespaces (RFC 2342)."""
        name = "NAMESPACE"
        typ, dat = self._simple_command(name)
        return self._untagged_response(typ, dat, name)

    def noop(self) -> tuple[str, Any]:
        """Do nothing; lets the server send pending updates."""
        if self.debug >= 3:
            self._dump_ur(self.untagged_responses)
        return self._simple_command("NOOP")

    def partial(
        self, message_num: Any, message_part: Any, start: Any, length: Any
    ) -> tuple[str, Any]:
        """Fetch part of a message (obsolete IMAP4 command)."""
        name = "PARTIAL"
        typ, dat = self._simple_command(name, message_num, message_part, start, length)
        return self._untagged_response(typ, dat, "FETCH")

    def proxyauth(self, user: Any) -> tuple[str, Any]:
        """Act as ``user`` (an administrator's command on some servers)."""
        return self._simple_command("PROXYAUTH", self._astring(user))

    def rename(self, oldmailbox: Any, newmailbox: Any) -> tuple[str, Any]:
        return self._simple_command(
            "RENAME", self._mailbox(oldmailbox), self._mailbox(newmailbox)
        )

    def search(
        self, charset: Any, *criteria: Any, params: Any = None, uid: bool = False
    ) -> tuple[str, Any]:
        """Message numbers matching ``criteria`` (sent as written; ``params`` fills ``?``
        placeholders); in UTF-8 mode ``charset`` must be None."""
        name = "SEARCH"
        args = self._criteria(charset, criteria, params)
        if uid:
            typ, dat = self._uid_command(name, *args)
        else:
            typ, dat = self._simple_command(name, *args)
        return self._untagged_response(typ, dat, name)

    def select(self, mailbox: Any = "INBOX", readonly: bool = False) -> tuple[str, Any]:
        """Select (or, read-only, examine) ``mailbox``; data is the EXISTS count."""
        self.untagged_responses = {}
        self.is_readonly = readonly
        name = "EXAMINE" if readonly else "SELECT"
        typ, dat = self._simple_command(name, self._mailbox(mailbox))
        if typ != "OK":
            self.state = "AUTH"
            return typ, dat
        self.state = "SELECTED"
        if "READ-ONLY" in self.untagged_responses and not readonly:
            if self.debug >= 1:
                self._dump_ur(self.untagged_responses)
            raise self.readonly("%r is not writable" % (mailbox,))
        return typ, self.untagged_responses.get("EXISTS", [None])

    def setacl(self, mailbox: Any, who: Any, what: Any) -> tuple[str, Any]:
        return self._simple_command(
            "SETACL", self._mailbox(mailbox), self._astring(who), self._astring(what)
        )

    def setannotation(self, *args: Any) -> tuple[str, Any]:
        if args:
            args = (self._mailbox(args[0]), *args[1:])
        typ, dat = self._simple_command("SETANNOTATION", *args)
        return self._untagged_response(typ, dat, "ANNOTATION")

    def setquota(self, root: Any, limits: Any) -> tuple[str, Any]:
        typ, dat = self._simple_command(
            "SETQUOTA", self._astring(root), self._set_quote(limits)
        )
        return self._untagged_response(typ, dat, "QUOTA")

    def sort(
        self,
        sort_criteria: Any,
        charset: Any,
        *search_criteria: Any,
        params: Any = None,
        uid: bool = False,
    ) -> tuple[str, Any]:
        """Message numbers matching the criteria, sorted (RFC 5256)."""
        name = "SORT"
        args = self._sort_args(sort_criteria, charset, search_criteria, params)
        if uid:
            typ, dat = self._uid_command(name, *args)
        else:
            typ, dat = self._simple_command(name, *args)
        return self._untagged_response(typ, dat, name)

    def starttls(self, ssl_context: Any = None) -> tuple[str, Any]:
        """Upgrade the connection to TLS (RFC 3501 section 6.2.1).

        Refuses to go on, and closes the connection, if the server sent anything after its
        OK and before the handshake: such bytes were not protected by TLS.
        """
        name = "STARTTLS"
        if not HAVE_SSL:
            raise self.error("SSL support missing")
        if self._tls_established:
            raise self.abort("TLS session already established")
        if name not in self.capabilities:
            raise self.abort("TLS not supported by server")
        if ssl_context is None:
            ssl_context = transport.default_context()
        typ, dat = self._simple_command(name)
        if typ == "OK":
            try:
                self.sock, self.file = transport.start_tls(
                    self.sock, self.file, ssl_context, self.host
                )
            except PlaintextInjection as exc:
                self._close_quietly()
                raise self.abort("STARTTLS: %s" % exc) from None
            self._tls_established = True
            self._get_capabilities()
        else:
            raise self.error("Couldn't establish TLS session")
        return self._untagged_response(typ, dat, name)

    def status(self, mailbox: Any, names: Any) -> tuple[str, Any]:
        """Status items ``names`` (e.g. ``'(MESSAGES UNSEEN)'``) of ``mailbox``."""
        name = "STATUS"
        typ, dat = self._simple_command(name, self._mailbox(mailbox), self._set_quote(names))
        return self._untagged_response(typ, dat, name)

    def store(
        self, message_set: Any, command: Any, flags: Any, *, uid: bool = False
    ) -> tuple[str, Any]:
        """Change flags: ``command`` is ``'+FLAGS'``, ``'-FLAGS'``, ``'FLAGS'`` (or .SILENT)."""
        args = (self._sequence_set(message_set), command, self._set_quote(flags))
        if uid:
            typ, dat = self._uid_command("STORE", *args)
        else:
            typ, dat = self._simple_command("STORE", *args)
        return self._untagged_response(typ, dat, "FETCH")

    def subscribe(self, mailbox: Any) -> tuple[str, Any]:
        return self._simple_command("SUBSCRIBE", self._mailbox(mailbox))

    def thread(
        self,
        threading_algorithm: Any,
        charset: Any,
        *search_criteria: Any,
        params: Any = None,
        uid: bool = False,
    ) -> tuple[str, Any]:
        """Threads of the messages matching the criteria (RFC 5256)."""
        name = "THREAD"
        args = self._thread_args(threading_algorithm, charset, search_criteria, params)
        if uid:
            typ, dat = self._uid_command(name, *args)
        else:
            typ, dat = self._simple_command(name, *args)
        return self._untagged_response(typ, dat, name)

    def uid(self, command: Any, *args: Any, params: Any = None) -> tuple[str, Any]:
        """Run ``command`` with UIDs instead of message numbers; its arguments are formatted
        as the command's own method formats them."""
        command = command.upper()
        name = command.decode("ascii", "replace") if isinstance(command, bytes) else command
        if name not in Commands:
            raise self.error("Unknown IMAP4 UID command: %r" % (command,))
        typ, dat = self._uid_command(name, *self._uid_args(name, args, params))
        kind = name if name in ("SEARCH", "SORT", "THREAD") else "FETCH"
        return self._untagged_response(typ, dat, kind)

    def unsubscribe(self, mailbox: Any) -> tuple[str, Any]:
        return self._simple_command("UNSUBSCRIBE", self._mailbox(mailbox))

    def unselect(self) -> tuple[str, Any]:
        """Leave the selected mailbox without expunging (RFC 3691)."""
        try:
            typ, data = self._simple_command("UNSELECT")
        finally:
            self.state = "AUTH"
        return typ, data

    def xatom(self, name: str, *args: Any) -> tuple[str, Any]:
        """Send an extension command the server announced; allowed in the current state."""
        name = name.upper()
        commands = Commands
        if name not in commands:
            commands[name] = (self.state,)
        return self._simple_command(name, *args)

    def idle(self, duration: Optional[float] = None) -> Idler:
        """Wait for the server's updates with IDLE (RFC 2177); see :class:`Idler`."""
        return Idler(self, duration)

    # -- argument formatting (the newest stdlib's private helpers, same names) ------------

    def _quote(self, arg: Any) -> bytes:
        return _args.quote(arg, self._encoding)

    def _astring(self, arg: Any) -> bytes:
        return _args.astring(arg, self._encoding)

    def _list_mailbox(self, arg: Any) -> bytes:
        return _args.list_mailbox(arg, self._encoding)

    def _mailbox(self, arg: Any) -> bytes:
        return _args.mailbox(arg, self._encoding)

    _sequence_set = staticmethod(_args.sequence_set)
    _set_quote = staticmethod(_args.set_quote)
    _fetch_parts = staticmethod(_args.fetch_parts)
    _encode_criteria = staticmethod(_args.encode_criteria)

    def _criteria(self, charset: Any, criteria: Any, params: Any) -> tuple[Any, ...]:
        if params is not None:
            criteria = _args.substitute_all(criteria, params)
        if charset is None:
            return tuple(criteria)
        if self.utf8_enabled:
            raise IMAP4.error("Non-None charset not valid in UTF8 mode")
        return ("CHARSET", self._astring(charset), *self._encode_criteria(charset, criteria))

    def _sort_args(
        self, sort_criteria: Any, charset: Any, criteria: Any, params: Any
    ) -> tuple[Any, ...]:
        if params is not None:
            criteria = _args.substitute_all(criteria, params)
        criteria = self._encode_criteria(charset, criteria) if charset is not None else criteria
        charset_arg = self._astring(charset) if charset is not None else None
        return (self._set_quote(sort_criteria), charset_arg, *criteria)

    def _thread_args(
        self, algorithm: Any, charset: Any, criteria: Any, params: Any
    ) -> tuple[Any, ...]:
        if params is not None:
            criteria = _args.substitute_all(criteria, params)
        criteria = self._encode_criteria(charset, criteria) if charset is not None else criteria
        charset_arg = self._astring(charset) if charset is not None else None
        return (algorithm, charset_arg, *criteria)

    def _uid_args(self, name: str, args: tuple[Any, ...], params: Any) -> tuple[Any, ...]:
        """Arguments of ``UID name`` formatted as the command's own method would."""
        if name in ("COPY", "MOVE") and len(args) == 2:
            return (self._sequence_set(args[0]), self._mailbox(args[1]))
        if name == "FETCH" and len(args) >= 2:
            parts: Any = _args.substitute(args[1], params) if params is not None else args[1]
            return (self._sequence_set(args[0]), self._fetch_parts(parts), *args[2:])
        if name == "STORE" and len(args) == 3:
            return (self._sequence_set(args[0]), args[1], self._set_quote(args[2]))
        if name == "SORT" and len(args) >= 2:
            return self._sort_args(args[0], args[1], args[2:], params)
        if name == "THREAD" and len(args) >= 2:
            return self._thread_args(args[0], args[1], args[2:], params)
        if params is not None:
            return tuple(_args.substitute_all(args, params))
        return args

    def _uid_command(self, name: str, *args: Any) -> tuple[str, Any]:
        commands = Commands
        if self.state not in commands[name]:
            raise self.error(
                "command %s illegal in state %s, only allowed in states %s"
                % (name, self.state, ", ".join(commands[name]))
            )
        return self._simple_command("UID", name, *args)

    def _maybe_uid(self, uid: bool, name: str, *args: Any) -> tuple[str, Any]:
        if uid:
            return self._uid_command(name, *args)
        return self._simple_command(name, *args)

    # -- private machinery -------------------------------------------------------------------

    def _append_untagged(self, typ: str, dat: Any) -> None:
        if dat is None:
            dat = b""
        if self._idle_capture:
            queue = self._idle_responses
            # The trailer after a literal belongs to the same response as the literal.
            if queue and isinstance(queue[-1][1][-1], tuple):
                queue[-1][1].append(dat)
            else:
                queue.append((typ, [dat]))
            return
        ur = self.untagged_responses
        if self.debug >= 5:
            self._mesg('untagged_responses[%s] %s += ["%r"]' % (typ, len(ur.get(typ, "")), dat))
        if typ in ur:
            ur[typ].append(dat)
        else:
            ur[typ] = [dat]

    def _check_bye(self) -> None:
        bye = self.untagged_responses.get("BYE")
        if bye:
            raise self.abort(bye[-1].decode(self._encoding, "replace"))

    def _command(self, name: str, *args: Any) -> bytes:
        return _send_command(self, name, args, False)

    def _cancel_exchange(self, tag: bytes) -> None:
        """End an AUTHENTICATE exchange whose answer could not be made (a malformed challenge,
        an authobject that raised): answer ``*`` (RFC 3501 6.2.2) and take the server's
        reply, so the next command is not read as the answer."""
        try:
            self.send(b"*" + CRLF)
            self._get_tagged_response(tag)
        except (self.error, OSError):
            pass  # the exception being handled is the one to report

    def _command_complete(self, name: str, tag: bytes) -> tuple[str, Any]:
        logout = name == "LOGOUT"
        if not logout and "BYE" in self.untagged_responses:
            self._check_bye()
        try:
            typ, data = self._get_tagged_response(tag, expect_bye=logout)
        except self.abort as val:
            raise self.abort("command: %s => %s" % (name, val)) from None
        except self.error as val:
            raise self.error("command: %s => %s" % (name, val)) from None
        if not logout and "BYE" in self.untagged_responses:
            self._check_bye()
        if typ == "BAD":
            raise self.error("%s command error: %s %s" % (name, typ, data))
        return typ, data

    def _get_capabilities(self) -> None:
        _, dat = self.capability()
        if dat == [None]:
            raise self.error("no CAPABILITY response from server")
        self._set_capabilities(dat[-1])

    def _set_capabilities(self, data: bytes) -> None:
        # A non-ASCII capability is not a usable one, but no reason to crash (the stdlib does).
        self.capabilities = tuple(str(data, self._encoding, "replace").upper().split())

    def _refresh_capabilities(self) -> None:
        """After logging in the server may offer more: use what it sent, else ask."""
        sent = self.untagged_responses.get("CAPABILITY")
        if sent and sent[-1]:
            self._set_capabilities(sent[-1])
        else:
            self._get_capabilities()

    def _get_response(self) -> Optional[bytes]:
        """Read one response and store it; None for a continuation request, otherwise the
        first line of the response."""
        return self._process_response(self._get_line())

    def _process_response(
        self, resp: bytes, reader: Optional[transport.Reader] = None
    ) -> Optional[bytes]:
        """Store the response whose first line is ``resp``; ``reader`` is mailwire's reader
        when the fast path applies (so the rest of the response need not ask again)."""
        if not resp:
            # Some servers send stray empty lines between responses.
            resp = self._skip_blank_lines(resp)
        first = resp[:1]
        if first == b"*":
            parts = _resp.untagged_parts(resp)
            if parts is None:
                raise self.abort("unexpected response: %r" % resp)
            typ, dat = parts
            dat = self._read_literals(typ, dat, reader)
        elif first == b"+":
            match = Continuation.match(resp)
            assert match is not None  # "+" alone matches
            self.continuation_response = match.group("data")
            self._continuation_line = resp
            return None
        else:
            match = self.tagre.match(resp)
            if match is None:
                raise self.abort("unexpected response: %r" % resp)
            tag = match.group("tag")
            if tag not in self.tagged_commands:
                raise self.abort("unexpected tagged response: %r" % resp)
            typ = match.group("type").decode(self._encoding)
            dat = match.group("data")
            self.tagged_commands[tag] = (typ, [dat])

        if typ in ("OK", "NO", "BAD"):
            code = Response_code.match(dat)
            if code is not None:
                self._append_untagged(code.group("type").decode(self._encoding), code.group("data"))
        if self.debug >= 1 and typ in ("NO", "BAD", "BYE"):
            self._mesg("%s response: %r" % (typ, dat))
        return resp

    def _skip_blank_lines(self, line: bytes) -> bytes:
        """The first non-empty line from ``line`` on. Up to ``_MAX_BLANK_LINES`` in a row are
        skipped; more abort, so an endless run of them cannot keep the client for ever (each
        arrives in time, so no timeout would)."""
        for _ in range(_MAX_BLANK_LINES):
            if line:
                return line
            line = self._get_line()
        if line:
            return line
        raise self.abort("unexpected response: %r" % line)

    def _read_literals(
        self, typ: str, dat: bytes, reader: Optional[transport.Reader] = None
    ) -> bytes:
        """Store an untagged response, reading any literals it announces; returns the last
        line of the response."""
        size = _resp.literal_size(dat)
        if size is None:
            self._append_untagged(typ, dat)
            return dat
        header: list[bytes] = []
        while size is not None:
            if self.debug >= 4:
                self._mesg("read literal size %s" % size)
            limit = _MAXLITERAL
            if size > limit or size >= _resp.HUGE_SIZE:
                shown = "%d" % size if size < _resp.HUGE_SIZE else "10**%d or more" % (
                    _resp.SIZE_DIGITS
                )
                self._broken = "literal of %s bytes exceeds the limit of %d" % (shown, limit)
                raise self.abort(self._broken)
            if reader is not None:
                if size <= reader.buffered():
                    data = reader.read(size)
                else:
                    try:
                        data = reader.read_bounded(size, limit)
                    except transport.Timeout:
                        self._broken = "connection out of sync: a literal read timed out"
                        raise
                    if len(data) < size:
                        raise self.abort("socket error: EOF")
            else:
                try:
                    data = self.read(size)
                except transport.SocketTimeout:
                    # Part of the literal may have been read: whatever comes next is not a
                    # response, whoever called (APPEND's wait for "+", an Idler, a subclass).
                    self._broken = "connection out of sync: a literal read timed out"
                    raise
            self._append_untagged(typ, (dat, data))
            header.append(dat)
            dat = self._read_line(reader) if reader is not None else self._get_line()
            if not dat and _resp.open_parens(header) > 0:
                # Stray blank lines inside a parenthesized response (gh-88574).
                dat = self._skip_blank_lines(dat)
            size = _resp.literal_size(dat)
        self._append_untagged(typ, dat)
        return dat

    def _get_tagged_response(self, tag: bytes, expect_bye: bool = False) -> tuple[str, Any]:
        tagged = self.tagged_commands
        reader: Any = _UNKNOWN
        while True:
            result = tagged[tag]
            if result is not None:
                del tagged[tag]
                return result  # type: ignore[no-any-return]
            if expect_bye:
                bye = self.untagged_responses.pop("BYE", None)
                if bye is not None:
                    return ("BYE", bye)
            if "BYE" in self.untagged_responses:
                self._check_bye()
            if reader is _UNKNOWN:
                # Decided once per command: nothing in the response loop can change it.
                reader = self._fast_reader()
            try:
                if reader is None:
                    self._get_response()
                elif not _take_buffered(self, reader, tag):
                    self._process_response(self._read_line(reader), reader)
            except self.abort:
                if self.debug >= 1:
                    self.print_log()
                raise

    def _receive_rest(self, reader: transport.Reader, wanted: int) -> bool:
        """Receive more when a FETCH response at the front is cut short but would fit in the
        reader's buffer, so the block paths can take it; False leaves it to the line path."""
        if not wanted or wanted > transport.BLOCK_SIZE or wanted > _MAXLINE + _MAXLITERAL:
            return False
        try:
            return reader.receive(wanted) > 0
        except transport.Timeout:
            self._broken = "connection out of sync: a response timed out"
            raise

    def _get_line_within(self, timeout: float) -> bytes:
        """Read one line, waiting at most ``timeout`` seconds for it (for IDLE).

        Running out of time here is not an error: mailwire's reader keeps any partial line
        for the next read, so the connection stays in step.
        """
        sock = self.sock
        saved = sock.gettimeout()
        sock.settimeout(timeout)
        self._waiting = True
        try:
            return self._get_line()
        finally:
            self._waiting = False
            if sock.fileno() >= 0:
                sock.settimeout(saved)

    def _get_line(self) -> bytes:
        reader = self._fast_reader()
        if reader is not None:
            return self._read_line(reader)
        return self._end_line(self.readline())

    def _read_line(self, reader: transport.Reader) -> bytes:
        """``_get_line`` reading from mailwire's reader directly."""
        maxline = _MAXLINE
        try:
            line = reader.readline(maxline + 1)
        except transport.Timeout:
            if not self._waiting:
                self._broken = "connection out of sync: a response timed out"
            raise
        if len(line) > maxline:
            self._broken = "connection out of sync: a response line was too long"
            raise self.error("got more than %d bytes" % maxline)
        return self._end_line(line)

    def _end_line(self, line: bytes) -> bytes:
        """A received line without its CRLF, logged; EOF and unterminated lines abort."""
        if line[-2:] != CRLF:
            if not line:
                raise self.abort("socket error: EOF")
            raise self.abort("socket error: unterminated line: %r" % line)
        line = line[:-2]
        if self.debug >= 4:
            self._mesg("< %r" % line)
        else:
            self._log_raw("< ", line)
        return line

    def _match(self, cre: re.Pattern[bytes], s: bytes) -> bool:
        self.mo = cre.match(s)
        if self.mo is not None and self.debug >= 5:
            self._mesg("\tmatched %r => %r" % (cre.pattern, self.mo.groups()))
        return self.mo is not None

    def _new_tag(self) -> bytes:
        tag = self.tagpre + b"%d" % self.tagnum
        self.tagnum = self.tagnum + 1
        self.tagged_commands[tag] = None
        return tag

    def _simple_command(self, name: str, *args: Any) -> tuple[str, Any]:
        if name != "LOGOUT":
            reader = _express_reader(self)
            if reader is not None:
                return _express(self, reader, name, args, None)
        tag = self._command(name, *args)
        tagged = self.tagged_commands
        if tagged[tag] is None and name != "LOGOUT" and "BYE" not in self.untagged_responses:
            # A command method is overridden, but not the reading ones: a reply that arrived
            # whole can still be taken without the general response loop.
            reader = self._fast_reader()
            if reader is not None:
                result = _buffered_result(self, reader, tag)
                if result is not None:
                    return result
        return self._command_complete(name, tag)

    def _untagged_response(self, typ: str, dat: Any, name: str) -> tuple[str, Any]:
        if typ == "NO":
            return typ, dat
        if name not in self.untagged_responses:
            return typ, [None]
        data = self.untagged_responses.pop(name)
        if self.debug >= 5:
            self._mesg("untagged_responses[%s] => %s" % (name, data))
        return typ, data

    def _close_quietly(self) -> None:
        try:
            self.shutdown()
        except OSError:
            pass
        self.state = "LOGOUT"

    # -- debugging -----------------------------------------------------------------------------

    def _mesg(self, s: str, secs: Optional[float] = None) -> None:
        if secs is None:
            secs = time.time()
        tm = time.strftime("%M:%S", time.localtime(secs))
        sys.stderr.write("  %s.%02d %s\n" % (tm, (secs * 100) % 100, s))
        sys.stderr.flush()

    def _dump_ur(self, untagged_resp_dict: dict[str, Any]) -> None:
        if not untagged_resp_dict:
            return
        items = ("%s: %r" % (key, value) for key, value in untagged_resp_dict.items())
        self._mesg("untagged responses dump:" + "\n\t\t".join(items))

    def _log(self, line: str) -> None:
        """Keep the last interactions for :meth:`print_log`."""
        self._cmd_log.append((line, time.time()))

    def _log_raw(self, direction: str, data: bytes) -> None:
        # Like _log, but formats only if the log is ever printed: the stdlib spends a repr()
        # on every line received just in case. (The hot paths append the same tuple inline.)
        self._cmd_log.append((direction, data, _time()))

    def print_log(self) -> None:
        log = self._cmd_log
        self._mesg("last %d IMAP4 interactions:" % len(log))
        for entry in log:
            if len(entry) == 3:  # from _log_raw
                self._mesg("%s%r" % (entry[0], entry[1]), entry[2])
            else:
                self._mesg(str(entry[0]), entry[1])


inherit_from_stdlib(
    "imaplib",
    [
        (IMAP4.error, "IMAP4.error"),
        (IMAP4.abort, "IMAP4.abort"),
        (IMAP4.readonly, "IMAP4.readonly"),
    ],
)


if HAVE_SSL:

    class IMAP4_SSL(IMAP4):
        """IMAP4 over implicit TLS.

        ``IMAP4_SSL(host='', port=993, *, ssl_context=None, timeout=None)``; the legacy
        ``keyfile``/``certfile`` (deprecated) may still be given instead of a context.
        """

        def __init__(
            self,
            host: str = "",
            port: int = IMAP4_SSL_PORT,
            keyfile: Optional[str] = None,
            certfile: Optional[str] = None,
            ssl_context: Any = None,
            timeout: Optional[float] = None,
        ) -> None:
            self.ssl_context = transport.legacy_context(
                ssl_context, keyfile, certfile, "ssl_context"
            )
            self.keyfile = keyfile
            self.certfile = certfile
            IMAP4.__init__(self, host, port, timeout)

        def _create_socket(self, timeout: Optional[float]) -> Any:
            sock = IMAP4._create_socket(self, timeout)
            return transport.wrap_tls(sock, self.ssl_context, self.host)

        def open(
            self, host: str = "", port: int = IMAP4_SSL_PORT, timeout: Optional[float] = None
        ) -> None:
            """Connect to ``host:port`` over TLS."""
            IMAP4.open(self, host, port, timeout)

    __all__.append("IMAP4_SSL")


class IMAP4_stream(IMAP4):
    """IMAP4 spoken over a command's stdin and stdout: ``IMAP4_stream(command)``.

    ``command`` is run through the shell, as with the stdlib (for example a preauthenticated
    server binary, or ``ssh host imapd``).
    """

    def __init__(self, command: str) -> None:
        self.command = command
        IMAP4.__init__(self)

    def open(self, host: Any = None, port: Any = None, timeout: Any = None) -> None:
        """Start the command; its pipes serve read, readline, send, shutdown."""
        self.host = None  # type: ignore[assignment]
        self.port = None  # type: ignore[assignment]
        self.sock = None
        self.file = None
        self._stream = transport.ProcessStream(self.command)
        self.process = self._stream.process
        self.writefile = self._stream.writefile
        self.readfile = self._stream.readfile

    def _native_reader(self) -> Optional[transport.Reader]:
        return self._stream.reader

    def read(self, size: int) -> bytes:
        """Read ``size`` bytes from the command's output."""
        return self._stream.reader.read(size)

    def readline(self) -> bytes:
        """Read one line from the command's output."""
        maxline = _MAXLINE
        line = self._stream.reader.readline(maxline + 1)
        if len(line) > maxline:
            raise self.error("got more than %d bytes" % maxline)
        return line

    def send(self, data: bytes) -> None:
        """Write ``data`` to the command's input."""
        self._stream.write(data)

    def shutdown(self) -> None:
        """Close the pipes and wait for the command to end."""
        self._stream.close()


class _Authenticator:
    """Base64 coding for one AUTHENTICATE exchange."""

    def __init__(self, mechinst: Callable[[bytes], Any]) -> None:
        self.mech = mechinst

    def process(self, data: Any) -> bytes:
        ret = self.mech(self.decode(data))
        if ret is None:
            return b"*"  # cancels the exchange
        return self.encode(ret)

    def encode(self, inp: Union[bytes, str]) -> bytes:
        if isinstance(inp, str):
            inp = inp.encode("utf-8")
        return binascii.b2a_base64(inp, newline=False)

    def decode(self, inp: Any) -> bytes:
        if not inp:
            return b""
        try:
            return binascii.a2b_base64(inp)
        except binascii.Error as exc:
            raise _BadChallenge("malformed AUTHENTICATE challenge: %s" % exc) from None


class _BadChallenge(IMAP4.error, binascii.Error):
    """A challenge that is not base64: an ``IMAP4.error``, and still the ``binascii.Error``
    the stdlib raises, for callers that catch that."""


class _Utf8Literal:
    """An APPEND message sent as ``UTF8 (~{n}`` data ``)`` in UTF-8 mode (RFC 6855)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class Idler:
    """An IMAP IDLE session (RFC 2177), made by :meth:`IMAP4.idle`.

    Use it as a context manager: entering sends ``IDLE`` and waits for the server's go-ahead,
    leaving sends ``DONE`` and waits for the command to complete. Iterating yields the server's
    updates as ``(type, [data, ...])`` until ``duration`` seconds have passed (for ever when
    None); :meth:`burst` yields a batch of updates that arrive close together.
    """

    def __init__(self, imap: IMAP4, duration: Optional[float] = None) -> None:
        if "IDLE" not in imap.capabilities:
            raise imap.error("Server does not support IMAP4 IDLE")
        if duration is not None and not imap.sock:
            raise imap.error("duration requires a socket connection")
        self._imap = imap
        self._duration = duration
        self._deadline: Optional[float] = None
        self._tag: Optional[bytes] = None
        self._saved_state: Optional[str] = None

    def __enter__(self) -> Idler:
        imap = self._imap
        if imap._idle_capture:
            raise imap.error("already idling")
        imap._idle_responses = []
        imap._idle_capture = True
        try:
            self._tag = tag = imap._command("IDLE")
            while True:
                resp = imap._get_response()
                if resp is None:
                    break  # the server's "+ idling"
                result = imap.tagged_commands.get(tag)
                if result is not None:
                    del imap.tagged_commands[tag]
                    if result[0] == "NO":
                        raise imap.error("idle denied: %s" % (result[1],))
                    raise imap.abort("unexpected status response: %r" % (resp,))
        except BaseException:
            imap._idle_capture = False
            raise
        if self._duration is not None:
            self._deadline = time.monotonic() + self._duration
        self._saved_state = imap.state
        imap.state = "IDLING"
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        imap = self._imap
        if self._saved_state is not None:
            imap.state = self._saved_state
        imap._idle_capture = False
        queued, imap._idle_responses = imap._idle_responses, []
        for typ, data in queued:
            for item in data:
                imap._append_untagged(typ, item)
        try:
            imap.send(b"DONE" + CRLF)
            assert self._tag is not None
            imap._command_complete("IDLE", self._tag)
        except OSError:
            if exc_type is None:
                raise

    def __iter__(self) -> Idler:
        return self

    def __next__(self) -> tuple[str, list[Any]]:
        imap = self._imap
        if imap.state != "IDLING":
            raise imap.error("_pop() only works during IDLE")
        while not imap._idle_responses:
            if self._deadline is None:
                imap._get_response()
                continue
            remaining = self._deadline - time.monotonic()
            if remaining <= 0 or not self._read_within(remaining):
                raise StopIteration
        return imap._idle_responses.pop(0)  # type: ignore[no-any-return]

    def burst(self, interval: float = 0.1) -> Iterator[tuple[str, list[Any]]]:
        """Yield the next update, then every further one that follows within ``interval``
        seconds of the previous."""
        imap = self._imap
        if not imap.sock:
            raise imap.error("burst() requires a socket connection")
        try:
            yield next(self)
        except StopIteration:
            return
        while True:
            if not imap._idle_responses and not self._read_within(interval):
                return
            while imap._idle_responses:
                yield imap._idle_responses.pop(0)

    def _read_within(self, timeout: float) -> bool:
        """Read one response if its first line starts arriving within ``timeout``."""
        imap = self._imap
        try:
            line = imap._get_line_within(timeout)
        except transport.Timeout:
            return False
        imap._process_response(line)
        return True


def _command_line(name: str, args: tuple[Any, ...], encoding: str) -> bytes:
    """A command line as the stdlib builds it, argument by argument: None is left out, text
    is encoded (a character the encoding lacks raises the stdlib's UnicodeEncodeError)."""
    parts = [bytes(name, encoding)]
    for arg in args:
        if isinstance(arg, str):
            parts.append(arg.encode(encoding))
        elif isinstance(arg, int) and not isinstance(arg, bool):
            parts.append(b"%d" % arg)  # the stdlib would fail on the concatenation
        elif arg is not None:
            parts.append(arg)
    return b" ".join(parts)


def _send_command(imap: IMAP4, name: str, args: tuple[Any, ...], express: bool) -> bytes:
    """The body of ``IMAP4._command``; ``express`` when ``_new_tag`` is known not overridden."""
    commands = Commands
    if imap.state not in commands[name]:
        imap.literal = None
        raise imap.error(
            "command %s illegal in state %s, only allowed in states %s"
            % (name, imap.state, ", ".join(commands[name]))
        )
    if imap._broken is not None:
        imap.literal = None
        raise imap.abort(imap._broken)

    untagged = imap.untagged_responses
    if untagged:
        if "OK" in untagged:
            del untagged["OK"]
        if "NO" in untagged:
            del untagged["NO"]
        if "BAD" in untagged:
            del untagged["BAD"]
        if "READ-ONLY" in untagged and not imap.is_readonly:
            raise imap.readonly("mailbox status changed to READ-ONLY")

    encoding = imap._encoding
    try:
        # Every argument a str, the usual case: one join, one encode.
        line = " ".join((name, *args)).encode(encoding)
    except (TypeError, UnicodeEncodeError):
        line = _command_line(name, args, encoding)
    literal = imap.literal
    literator = None
    closing = CRLF
    if literal is not None:
        imap.literal = None
        if isinstance(literal, _Utf8Literal):
            literal = literal.data
            line += b" UTF8 (~{%d}" % len(literal)
            closing = b")" + CRLF
        elif callable(literal):
            literator = literal
        else:
            line += b" {%d}" % len(literal)
    # Byte values, not b"\n": CPython tries a bytes needle as an int first, and builds
    # and drops a TypeError every time.
    if 10 in line or 13 in line or 0 in line:
        _args.check_no_crlf_nul(line)  # raises

    if express:
        tag = imap.tagpre + b"%d" % imap.tagnum
        imap.tagnum += 1
        imap.tagged_commands[tag] = None
    else:
        tag = imap._new_tag()
    data = tag + b" " + line
    if imap.debug >= 4:
        imap._mesg("> %r" % data)
    else:
        imap._cmd_log.append(("> ", data, _time()))

    try:
        imap.send(data + CRLF)
    except OSError as val:
        raise imap.abort("socket error: %s" % val) from None

    if literal is None:
        return tag

    while True:
        # Wait for the continuation request, unless the command already completed.
        while imap._get_response():
            if imap.tagged_commands[tag]:
                return tag
        if literator is not None:
            try:
                literal = literator(imap.continuation_response)
            except Exception:
                imap._cancel_exchange(tag)
                raise
        if imap.debug >= 4:
            imap._mesg("write literal size %s" % len(literal))
        try:
            imap.send(literal)
            imap.send(closing)
        except OSError as val:
            raise imap.abort("socket error: %s" % val) from None
        if literator is None:
            break
    return tag


def _express(
    imap: IMAP4, reader: transport.Reader, name: str, args: tuple[Any, ...], wanted: Optional[str]
) -> tuple[str, Any]:
    """``_simple_command(name, *args)``, followed by ``_untagged_response(typ, dat, wanted)``
    when ``wanted`` is given, in one function: see _express_reader for when it may stand in.

    Most of the time of a single-message fetch is spent away from the parsing, and the less
    code runs per command the less has to be brought back into the CPU's caches after each
    wait for the server (measured in docs/benchmarks.rst)."""
    tag = _send_command(imap, name, args, True)
    untagged = imap.untagged_responses
    if "BYE" not in untagged:
        if wanted == "FETCH" and "FETCH" not in untagged:
            # The usual reply to fetching one message: its values are what
            # _untagged_response would take back out of untagged_responses.
            buf, view, start, end = _pending(imap, reader)
            reply = _resp.single_literal_reply(
                buf, view, start, end, tag + b" OK ", _MAXLINE, _MAXLITERAL
            )
            if reply is not None:
                values, stop, line = reply
                reader.consume(stop - start)
                now = _time()
                log = imap._cmd_log
                log.append(("< ", values[-1], now))
                log.append(("< ", line, now))
                del imap.tagged_commands[tag]
                return "OK", values
        result = _buffered_result(imap, reader, tag)
        if result is not None:
            if wanted is None:
                return result
            return imap._untagged_response(result[0], result[1], wanted)
    typ, dat = imap._command_complete(name, tag)
    if wanted is None:
        return typ, dat
    return imap._untagged_response(typ, dat, wanted)


def _pending(imap: IMAP4, reader: transport.Reader) -> tuple[bytearray, memoryview, int, int]:
    """``reader.pending()``; a wait for the reply that times out leaves the connection out of
    step (unless the caller is waiting for responses that may not come, as IDLE does)."""
    try:
        return reader.pending()
    except transport.Timeout:
        if not imap._waiting:
            imap._broken = "connection out of sync: a response timed out"
        raise


def _buffered_result(
    imap: IMAP4, reader: transport.Reader, tag: bytes
) -> Optional[tuple[str, list[Any]]]:
    """The result of the command ``tag`` when the block paths could take its whole reply
    from what arrives (see _take_buffered), as _command_complete would return it; None
    leaves the rest of the reply to the general response loop."""
    if not _take_buffered(imap, reader, tag):
        return None
    tagged = imap.tagged_commands
    result: Optional[tuple[str, list[Any]]] = tagged[tag]
    if result is not None:
        del tagged[tag]
    return result


def _take_buffered(imap: IMAP4, reader: transport.Reader, tag: bytes) -> bool:
    """Store what the block paths can take from the front of the buffer: runs of FETCH
    responses that need no line-by-line care (receiving the rest of one cut short), then
    the plain ``OK`` completing ``tag``. False when nothing was taken: the next response
    is for the line-by-line path."""
    if imap._idle_capture:
        return False
    done = tag + b" OK "
    took = False
    while True:
        # When nothing is buffered the reply has to be received anyway: receive it here,
        # so that a reply arriving whole (the usual case) is taken in one go.
        buf, view, start, end = _pending(imap, reader)
        if start == end:
            return took  # EOF: the line path reports it
        values, stop, line = _resp.reply_run(
            buf, view, start, end, done, _MAXLINE, _MAXLITERAL
        )
        if stop == start:
            if buf.startswith(b"* ", start) and imap._receive_rest(
                reader, _resp.fetch_wanted(buf, start, end)
            ):
                continue
            return took
        reader.consume(stop - start)
        took = True
        log = imap._cmd_log
        now = _time()
        if values:
            stored = imap.untagged_responses.get("FETCH")
            if stored is None:
                imap.untagged_responses["FETCH"] = values
            else:
                stored.extend(values)
            last = values[-1]
            log.append(("< ", last if type(last) is bytes else b"...", now))
        if line is not None:
            # Exactly what the line path stores for "<tag> OK <text>".
            log.append(("< ", line, now))
            imap.tagged_commands[tag] = ("OK", [line[len(tag) + 4 :]])
            return True


#: The methods that make up reading a reply. The block paths stand in for all of them, so
#: they are used only while none is overridden, by the class or on the instance.
_READING_HOOKS = frozenset(
    (
        "readline",
        "read",
        "_get_line",
        "_get_response",
        "_append_untagged",
        "_get_tagged_response",
        "_command_complete",
    )
)
#: The methods _express stands in for: the reading methods and those that send a command
#: and hand its result back. It is used only while none of them is overridden.
_EXPRESS_HOOKS = _READING_HOOKS | {
    "_command",
    "_new_tag",
    "_simple_command",
    "_untagged_response",
}
_express_hooks_of = operator.attrgetter(*sorted(_EXPRESS_HOOKS))

#: A class's reading methods, fetched in one C call (about 0.1 µs: cheap enough per reply).
_hooks_of = operator.attrgetter(*sorted(_READING_HOOKS))
#: The reading methods of the classes whose replies the block paths may read.
_NATIVE_HOOKS = (_hooks_of(IMAP4), _hooks_of(IMAP4_stream))
_NATIVE_EXPRESS = (_express_hooks_of(IMAP4), _express_hooks_of(IMAP4_stream))


def _express_reader(imap: IMAP4) -> Optional[transport.Reader]:
    """mailwire's reader when _express may stand in for the command methods it replaces:
    besides what _fast_reader asks, none of ``_EXPRESS_HOOKS`` is overridden (by the class
    or on the instance), no literal waits to be sent and IDLE is not collecting."""
    if imap.debug >= 4 or imap.literal is not None or imap._idle_capture:
        return None
    return _unhooked_reader(imap, _express_hooks_of, _NATIVE_EXPRESS, _EXPRESS_HOOKS)


def _unhooked_reader(
    imap: IMAP4,
    hooks_of: Callable[[type], tuple[Any, ...]],
    natives: tuple[tuple[Any, ...], ...],
    names: frozenset[str],
) -> Optional[transport.Reader]:
    """mailwire's reader, unless one of the methods ``names`` is overridden, by the class or
    on the instance: ``hooks_of`` gives a class's methods, ``natives`` those of mailwire's
    classes."""
    # Looked up on every call, not cached per class: a patch of the class
    # (mock.patch.object(IMAP4, "_get_line", hook)) must take effect at once.
    if hooks_of(type(imap)) not in natives:
        return None
    if not imap.__dict__.keys().isdisjoint(names):
        return None
    file = imap.file
    if type(file) is transport.Reader:
        return file
    return imap._native_reader()  # IMAP4_stream's reader is not self.file
