"""The embedded IMAP server: IMAP4rev1 (RFC 3501) with the extensions clients commonly use.

It serves the folders of a :class:`~mailwire.testing.store.Store` and answers as Dovecot 2.3
does, checked side by side with a real Dovecot (``tests/testing/test_imap_vs_dovecot.py``): the
same response codes (``[APPENDUID v u]``, ``[COPYUID v src dst]``, ``[TRYCREATE]``,
``[ALREADYEXISTS]``, ``[NONEXISTENT]``, ``[AUTHENTICATIONFAILED]``, ``[CLOSED]``,
``[READ-WRITE]``...), the same untagged data in the same order, and the same data formats. The
human texts after the codes are close to Dovecot's but not always the same.

Capabilities: IMAP4rev1, SASL-IR, ID, ENABLE, IDLE (RFC 2177), LITERAL+ (RFC 7888), STARTTLS
and AUTH=PLAIN before login; MULTIAPPEND, UNSELECT, CHILDREN, NAMESPACE, UIDPLUS (RFC 4315) and
MOVE (RFC 6851) after it.

Behaviour worth knowing:

- Each session keeps its own view of the selected mailbox. Changes made by other sessions (or
  by :meth:`Store.deliver`) reach it as untagged ``FETCH (FLAGS ...)``, ``EXPUNGE``, ``EXISTS``
  and ``RECENT`` responses at the end of every command, in that order, and at once during IDLE.
  After FETCH, STORE and SEARCH (not their UID forms) expunges wait for a later command, as RFC
  3501 requires. ``EXPUNGE`` responses go out in descending order, as Dovecot sends them.
- ``\\Recent`` goes to the first session that selects a mailbox read-write after a message
  arrived (EXAMINE shows it without taking it).
- INTERNALDATE is always given in UTC (``+0000``), as Dovecot on Maildir does.
- FETCH answers UID first in UID FETCH, then FLAGS, UID, INTERNALDATE and RFC822.SIZE in the
  order asked for, then the rest in the order asked for; a body fetch that sets ``\\Seen`` adds
  FLAGS among the first group when it was not asked for (Dovecot's order).
- Mailbox names are modified UTF-7 on the wire and Unicode in the store; ``/`` separates levels,
  and a name whose parent does not exist shows the parent as ``\\Noselect \\HasChildren``.
- Limits: input lines of at most ``max_line`` octets (the connection is closed with ``* BYE``
  beyond), literals adding up to at most ``max_literal`` octets per command (a synchronising one
  is refused with ``NO [TOOBIG]``, a LITERAL+ one ends the connection), 256 literals per command,
  and ``idle_timeout`` seconds of silence (IDLE included).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import re
import selectors
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Optional

from mailwire._imap import utf7
from mailwire.testing._server import (
    Connection,
    LineTooLongError,
    ThreadedServer,
    check_server_tls,
)
from mailwire.testing.imap_parse import (
    SYSTEM_FLAGS,
    Atom,
    BadTagError,
    FetchItem,
    Literal,
    ProtocolError,
    SearchKey,
    SequenceSet,
    Token,
    astring,
    atom,
    body_structure,
    body_text,
    envelope,
    format_internal_date,
    format_uid_set,
    header_text,
    header_values,
    literal_at_end,
    mailbox_out,
    parse_command,
    parse_fetch_items,
    parse_flags,
    parse_internal_date,
    parse_message,
    parse_search,
    parse_sequence_set,
    section_bytes,
    sequence_matcher,
    sequence_set_max,
    tag_of,
)
from mailwire.testing.imap_parse import BadCharsetError as _BadCharset
from mailwire.testing.store import (
    INBOX,
    SEPARATOR,
    FlagMode,
    FolderExistsError,
    FolderSnapshot,
    NoSuchFolderError,
    NoSuchUserError,
    Store,
    StoredMessage,
)

__all__ = ["IMAPServer"]

PRE_LOGIN_CAPABILITIES = ("IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+")
POST_LOGIN_CAPABILITIES = ("IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "MULTIAPPEND",
                           "UNSELECT", "CHILDREN", "NAMESPACE", "UIDPLUS", "MOVE", "LITERAL+")
#: At most this many literals in one command.
MAX_LITERALS = 256
#: Output is sent once this much is pending (a FETCH of many messages goes out in pieces).
_FLUSH_AT = 256 * 1024
#: How often the change watcher looks whether anyone still idles (seconds).
_WATCH_INTERVAL = 0.1
#: How many expunged messages' last flags are kept per folder (_Shared.record_expunged).
_EXPUNGED_KEPT = 4096


# -- state shared by every session on one store ------------------------------------------------

class _FolderState:
    def __init__(self) -> None:
        #: The highest UID some session took as \Recent; newer messages are still \Recent.
        self.recent_floor = 0
        #: Keywords known in the folder, in the order they appeared (Dovecot keeps them so).
        self.keywords: list[str] = []
        #: UID -> flags when an IMAP session expunged it (what other sessions still show).
        self.expunged: dict[int, frozenset[str]] = {}


class _Shared:
    """What IMAP needs beyond the store, per folder (keyed by user and UIDVALIDITY)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folders: dict[tuple[str, int], _FolderState] = {}

    def _folder(self, user: str, uidvalidity: int) -> _FolderState:
        state = self._folders.get((user, uidvalidity))
        if state is None:
            state = self._folders[user, uidvalidity] = _FolderState()
        return state

    def recent(self, user: str, uidvalidity: int, uids: Sequence[int], take: bool) -> set[int]:
        """Which of *uids* are \\Recent for a session seeing them now (taking them if *take*)."""
        with self._lock:
            state = self._folder(user, uidvalidity)
            recent = {uid for uid in uids if uid > state.recent_floor}
            if take and uids:
                state.recent_floor = max(state.recent_floor, max(uids))
            return recent

    def record_expunged(self, user: str, uidvalidity: int,
                        flags: dict[int, frozenset[str]]) -> None:
        """Remember the last flags of messages an IMAP session expunged or moved away."""
        with self._lock:
            record = self._folder(user, uidvalidity).expunged
            record.update(flags)
            for uid in list(record)[:max(0, len(record) - _EXPUNGED_KEPT)]:
                del record[uid]

    def expunged_flags(self, user: str, uidvalidity: int, uid: int) -> frozenset[str] | None:
        """The flags a message had when an IMAP session expunged it, if known."""
        with self._lock:
            return self._folder(user, uidvalidity).expunged.get(uid)

    def keywords(self, user: str, uidvalidity: int, flags: Iterable[frozenset[str]],
                 extra: Iterable[str] = ()) -> tuple[str, ...]:
        """The folder's keywords after adding those found in *flags* and *extra*."""
        found = {f for group in flags for f in group if not f.startswith("\\")}
        found.update(extra)
        with self._lock:
            state = self._folder(user, uidvalidity)
            known = set(state.keywords)
            state.keywords.extend(sorted(found - known))
            return tuple(state.keywords)


_SHARED: weakref.WeakKeyDictionary[Store, _Shared] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared_for(store: Store) -> _Shared:
    with _SHARED_LOCK:
        shared = _SHARED.get(store)
        if shared is None:
            shared = _SHARED[store] = _Shared()
        return shared


# -- helpers ----------------------------------------------------------------------------------

class _Reply(Exception):
    """Ends a command with ``<tag> <status> <text>`` (text used as is)."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class _Disconnect(Exception):
    """Ends the session (a BYE was sent already)."""


def _no(text: str) -> _Reply:
    return _Reply("NO", text)


def _canonical(name: str) -> str:
    """The store's spelling: INBOX in any case is INBOX, also as the first level."""
    first, sep, rest = name.partition(SEPARATOR)
    if first.upper() == INBOX:
        return INBOX + sep + rest
    return name


def _parents(name: str) -> list[str]:
    parts = name.split(SEPARATOR)
    return [SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile(regex + r"\Z", re.DOTALL)


def _pattern_matcher(pattern: str) -> Callable[[str], bool]:
    """Match LIST patterns (``*`` anything, ``%`` anything but ``/``) against encoded names.

    INBOX is case-insensitive in patterns too: ``inbox/%`` lists INBOX's children.
    """
    exact = _wildcard_regex(pattern)
    head = ""
    for char in pattern[:len(INBOX)]:
        if char in "*%":
            break
        head += char
    inbox = exact
    if head and INBOX.startswith(head.upper()):
        inbox = _wildcard_regex(head.upper() + pattern[len(head):])

    def matches(name: str) -> bool:
        if exact.match(name):
            return True
        return (name == INBOX or name.startswith(INBOX + SEPARATOR)) and bool(inbox.match(name))

    return matches


def _decode_mailbox(token: Token) -> str:
    raw = astring(token)
    try:
        name = utf7.decode(raw)
    except ValueError:
        raise _no("Mailbox name is not valid mUTF-7.") from None
    return _canonical(name)


def _encode_mailbox(name: str) -> bytes:
    return mailbox_out(utf7.encode(name))


# -- the selected mailbox ---------------------------------------------------------------------

class _Selected:
    def __init__(self, name: str, readonly: bool, snapshot: FolderSnapshot,
                 recent: set[int], keywords: tuple[str, ...], version: int) -> None:
        self.name = name
        self.readonly = readonly
        self.uidvalidity = snapshot.uidvalidity
        #: The session's view: sequence number n is uids[n - 1].
        self.uids = [m.uid for m in snapshot.messages]
        #: The last known state of each message in the view (kept after an unreported expunge).
        self.known: dict[int, StoredMessage] = {m.uid: m for m in snapshot.messages}
        #: The flags the client was last told (own changes included).
        self.reported: dict[int, frozenset[str]] = {m.uid: m.flags for m in snapshot.messages}
        self.recent = recent
        self.reported_recent = len(recent)
        self.keywords = keywords
        #: Messages above this UID are new to the session.
        self.max_uid = snapshot.uidnext - 1
        #: The store version the view was last synchronised with.
        self.version = version
        self.expunges_pending = False


_CommandHandler = Callable[["_Session", str, list[Token], bool], Optional[str]]
_ANY, _NOT_AUTH, _AUTH, _SELECTED = "any", "notauth", "auth", "selected"


class _Session:
    def __init__(self, server: IMAPServer, connection: Connection) -> None:
        self.server = server
        self.connection = connection
        self.store = server.store
        self.shared = _shared_for(server.store)
        self.user: str | None = None
        self.selected: _Selected | None = None
        self.capability_asked = False
        self.did_starttls = False
        self.done = False
        self._out: list[bytes] = []
        self._out_size = 0

    # -- output ------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= _FLUSH_AT:
            self.flush()

    def untagged(self, data: bytes) -> None:
        self.send(b"* " + data + b"\r\n")

    def flush(self) -> None:
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._out_size = 0
            self.connection.write(data)

    def bye(self, text: str) -> _Disconnect:
        """Send ``* BYE`` and return the exception that ends the session."""
        self.untagged(b"BYE " + text.encode("utf-8"))
        self.flush()
        self.done = True
        return _Disconnect()

    def capabilities(self) -> str:
        if self.user is not None:
            return " ".join(POST_LOGIN_CAPABILITIES)
        caps = list(PRE_LOGIN_CAPABILITIES)
        if self.server.starttls_context is not None and not self.connection.tls:
            caps.append("STARTTLS")
        caps.append("LOGINDISABLED" if self.plaintext_refused() else "AUTH=PLAIN")
        return " ".join(caps)

    def plaintext_refused(self) -> bool:
        return self.server.require_tls and not self.connection.tls

    # -- reading -----------------------------------------------------------------------------

    def read_command(self) -> list[bytes] | None:
        """The next command as parts (see ``parse_command``); None at the end of input, []
        when a literal was refused (and answered already)."""
        connection = self.connection
        line = connection.readline()
        if line is None:
            return None
        parts = [line]
        literal_total = 0
        while True:
            announced = literal_at_end(line)
            if announced is None:
                return parts
            size, synchronising = announced
            literal_total += size
            if literal_total > self.server.max_literal or len(parts) > 2 * MAX_LITERALS:
                tag = tag_of(parts[0])
                if synchronising and tag is not None:
                    self.send(f"{tag} NO [TOOBIG] Literal too large.\r\n".encode("ascii"))
                    self.flush()
                    return []
                raise self.bye("[TOOBIG] Literal too large.")
            if synchronising:
                connection.write(b"+ OK\r\n")
            data = connection.read_exact(size)
            line = None if data is None else connection.readline()
            if data is None or line is None:
                return None
            parts += [data, line]

    def run(self) -> None:
        greeting = f"* OK [CAPABILITY {self.capabilities()}] {self.server.greeting}\r\n"
        self.connection.write(greeting.encode("utf-8"))
        try:
            while not self.done:
                parts = self.read_command()
                if parts is None:
                    return
                if parts:
                    self.execute(parts)
                    self.flush()
        except _Disconnect:
            pass
        except LineTooLongError:
            self.flush()
            self.connection.write(b"* BYE Input line too long, aborting.\r\n")
        except socket.timeout:
            self.flush()
            self.connection.write(b"* BYE Disconnected for inactivity.\r\n")

    # -- dispatch ----------------------------------------------------------------------------

    def execute(self, parts: list[bytes]) -> None:
        try:
            tag, name, args = parse_command(parts)
        except BadTagError as exc:
            self.untagged(b"BAD " + str(exc).encode("ascii"))
            return
        except ProtocolError as exc:
            assert exc.tag is not None
            where = f" {exc.command}" if exc.command else ""
            text = f"Error in IMAP command{where}: {exc}." if exc.command else str(exc)
            self.send(f"{exc.tag} BAD {text}\r\n".encode())
            return
        self.dispatch(tag, name, args)

    def dispatch(self, tag: str, name: str, args: list[Token]) -> None:
        uid = False
        command = name
        if name == "UID" and self.selected is not None:
            if not args or not isinstance(args[0], Atom):
                self.tagged(tag, "BAD", "Error in IMAP command UID: Invalid arguments.")
                return
            command = args[0].upper()
            args = args[1:]
            uid = True
            if command not in _UID_COMMANDS:
                self.tagged(tag, "BAD", f"Error in IMAP command UID {command}: Unknown command.")
                return
        entry = _COMMANDS.get(command)
        if entry is None:
            self.tagged(tag, "BAD", f"Error in IMAP command {name}: Unknown command.")
            return
        handler, state = entry
        refusal = self.refusal(name, state)
        if refusal is not None:
            self.tagged(tag, "BAD", refusal)
            return
        selected = self.selected
        if (selected is not None and command not in _NO_SYNC
                and self.store.version != selected.version):
            # Dovecot announces new keywords before a command's own responses.
            self.announce_keywords(self.snapshot().messages)
        status, text = "OK", ""
        try:
            result = handler(self, tag, args, uid)
            if result is None:
                return  # the handler answered
            text = result
        except ProtocolError as exc:
            where = f"{name} {command}" if uid else name
            self.tagged(tag, "BAD", f"Error in IMAP command {where}: {exc}.")
            return
        except _Reply as reply:
            status, text = reply.status, reply.text
        if self.selected is not None and command not in _NO_SYNC:
            self.sync(allow_expunge=uid or command not in _NO_EXPUNGE)
        self.tagged(tag, status, text)

    def refusal(self, name: str, state: str) -> str | None:
        if state == _ANY:
            return None
        if self.user is None:
            if state == _NOT_AUTH:
                return None
            return "Error in IMAP command received by server."
        if state == _NOT_AUTH:
            return f"Error in IMAP command {name}: Unknown command."
        if state == _SELECTED and self.selected is None:
            return "No mailbox selected."
        return None

    def tagged(self, tag: str, status: str, text: str) -> None:
        self.send(f"{tag} {status} {text}\r\n".encode("utf-8", "surrogateescape"))

    # -- mailbox view ------------------------------------------------------------------------

    def require_selected(self) -> _Selected:
        assert self.selected is not None
        return self.selected

    def snapshot(self) -> FolderSnapshot:
        """The selected folder now; ends the session if it was deleted, renamed or remade."""
        selected = self.require_selected()
        assert self.user is not None
        try:
            snapshot = self.store.snapshot(self.user, selected.name)
        except (NoSuchFolderError, NoSuchUserError):
            snapshot = None
        if snapshot is None or snapshot.uidvalidity != selected.uidvalidity:
            raise self.bye("IMAP session state is inconsistent, please relogin.")
        return snapshot

    def current(self) -> dict[int, StoredMessage]:
        return {m.uid: m for m in self.snapshot().messages}

    def message(self, uid: int, current: dict[int, StoredMessage]) -> StoredMessage:
        """A message of the view: as it is now, or as last seen if it was expunged since."""
        message = current.get(uid)
        if message is not None:
            return message
        selected = self.require_selected()
        message = selected.known[uid]
        final = self.shared.expunged_flags(self.username, selected.uidvalidity, uid)
        return message if final is None else dataclasses.replace(message, flags=final)

    def expunge(self, uids: Iterable[int] | None) -> None:
        """Expunge (the \\Deleted messages among *uids*), remembering their last flags."""
        selected = self.require_selected()
        before = self.current()
        removed = self.store.expunge(self.username, selected.name, uids)
        self.shared.record_expunged(self.username, selected.uidvalidity,
                                    {u: before[u].flags for u in removed if u in before})

    def flags_bytes(self, flags: frozenset[str], recent: bool) -> bytes:
        selected = self.selected
        order = {k: i for i, k in enumerate(selected.keywords)} if selected else {}
        names = [f for f in SYSTEM_FLAGS if f in flags]
        if recent:
            names.append("\\Recent")
        names += sorted((f for f in flags if not f.startswith("\\")),
                        key=lambda k: (order.get(k, len(order)), k))
        return ("(" + " ".join(names) + ")").encode("ascii", "replace")

    def flag_lines(self, keywords: tuple[str, ...], readonly: bool) -> None:
        names = " ".join((*SYSTEM_FLAGS, *keywords))
        self.untagged(f"FLAGS ({names})".encode("ascii", "replace"))
        if readonly:
            self.untagged(b"OK [PERMANENTFLAGS ()] Read-only mailbox.")
        else:
            self.untagged(f"OK [PERMANENTFLAGS ({names} \\*)] Flags permitted.".encode(
                "ascii", "replace"))

    def announce_keywords(self, messages: Iterable[StoredMessage],
                          extra: Iterable[str] = ()) -> None:
        selected = self.require_selected()
        assert self.user is not None
        keywords = self.shared.keywords(self.user, selected.uidvalidity,
                                        (m.flags for m in messages), extra)
        if keywords != selected.keywords:
            selected.keywords = keywords
            self.flag_lines(keywords, selected.readonly)

    def sync(self, allow_expunge: bool) -> None:
        """Tell the client what changed in the selected mailbox since it last heard."""
        selected = self.require_selected()
        version = self.store.version
        if version == selected.version and not (allow_expunge and selected.expunges_pending):
            return
        snapshot = self.snapshot()
        selected.version = version
        current = {m.uid: m for m in snapshot.messages}
        self.announce_keywords(snapshot.messages)
        gone = [index for index, uid in enumerate(selected.uids) if uid not in current]
        selected.expunges_pending = bool(gone) and not allow_expunge
        for seq, uid in enumerate(selected.uids, 1):
            message = current.get(uid)
            if message is None:
                if allow_expunge:
                    continue  # its EXPUNGE follows
                # Until its expunge can be reported, the client hears of the flags it had
                # last, as Dovecot does.
                message = self.message(uid, current)
            else:
                selected.known[uid] = message
            if message.flags != selected.reported[uid]:
                selected.reported[uid] = message.flags
                self.untagged(b"%d FETCH (FLAGS %s)" % (
                    seq, self.flags_bytes(message.flags, uid in selected.recent)))
        if gone and allow_expunge:
            for index in reversed(gone):
                self.untagged(b"%d EXPUNGE" % (index + 1))
                uid = selected.uids[index]
                del selected.known[uid], selected.reported[uid]
                selected.recent.discard(uid)
            selected.uids = [uid for uid in selected.uids if uid in current]
        new = [m for m in snapshot.messages if m.uid > selected.max_uid]
        if new:
            assert self.user is not None
            uids = [m.uid for m in new]
            selected.recent |= self.shared.recent(self.user, selected.uidvalidity, uids,
                                                  take=not selected.readonly)
            for message in new:
                selected.uids.append(message.uid)
                selected.known[message.uid] = message
                selected.reported[message.uid] = message.flags
            selected.max_uid = uids[-1]
            self.untagged(b"%d EXISTS" % len(selected.uids))
        if len(selected.recent) != selected.reported_recent:
            selected.reported_recent = len(selected.recent)
            self.untagged(b"%d RECENT" % len(selected.recent))

    def targets(self, token: Token, uid: bool) -> list[tuple[int, int]]:
        """``(sequence number, UID)`` of the messages a set names, in mailbox order."""
        selected = self.require_selected()
        ranges = parse_sequence_set(token)
        uids = selected.uids
        if uid:
            wanted = sequence_matcher(ranges, uids[-1] if uids else 0)
            return [(n, u) for n, u in enumerate(uids, 1) if wanted(u)]
        count = len(uids)
        if not count or sequence_set_max(ranges, count) > count:
            raise ProtocolError("Invalid messageset")
        wanted = sequence_matcher(ranges, count)
        return [(n, u) for n, u in enumerate(uids, 1) if wanted(n)]

    # -- any state ---------------------------------------------------------------------------

    def cmd_capability(self, tag: str, args: list[Token], uid: bool) -> str:
        self.untagged(b"CAPABILITY " + self.capabilities().encode("ascii"))
        if self.user is None:
            # Dovecot sends the post-login capabilities untagged to a client that asked for
            # them before login, unless it asked only because STARTTLS requires it.
            self.capability_asked |= not self.did_starttls
            return "Pre-login capabilities listed, post-login capabilities have more."
        return "Capability completed."

    def cmd_noop(self, tag: str, args: list[Token], uid: bool) -> str:
        return "NOOP completed."

    def cmd_logout(self, tag: str, args: list[Token], uid: bool) -> str:
        self.untagged(b"BYE Logging out")
        self.done = True
        return "Logout completed."

    def cmd_id(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        fields = args[0]
        if isinstance(fields, list):
            if len(fields) % 2 or any(isinstance(f, list) for f in fields):
                raise ProtocolError("Invalid arguments")
        elif not (isinstance(fields, Atom) and fields.upper() == "NIL"):
            raise ProtocolError("Invalid arguments")
        self.untagged(b'ID ("name" "mailwire")')
        return "ID completed."

    def cmd_enable(self, tag: str, args: list[Token], uid: bool) -> str:
        for arg in args:
            atom(arg)
        if self.user is None:
            self.untagged(b"ENABLED")
            return "ENABLE ignored in non-authenticated state."
        return "Enabled."  # nothing to enable: UTF8=ACCEPT, CONDSTORE... are not offered

    # -- not authenticated -------------------------------------------------------------------

    def cmd_starttls(self, tag: str, args: list[Token], uid: bool) -> str | None:
        context = self.server.starttls_context
        if self.connection.tls:
            raise _Reply("BAD", "TLS is already active.")
        if context is None:
            raise _Reply("BAD", "TLS support isn't enabled.")
        self.tagged(tag, "OK", "Begin TLS negotiation now.")
        self.flush()
        self.connection.start_tls(context)
        self.did_starttls = True
        return None

    def login(self, user: str) -> str:
        self.user = user
        if self.capability_asked:
            self.untagged(b"CAPABILITY " + self.capabilities().encode("ascii"))
            return "Logged in"
        return f"[CAPABILITY {self.capabilities()}] Logged in"

    def cmd_login(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 2:
            raise _Reply("BAD", "Error in IMAP command received by server.")
        if self.plaintext_refused():
            raise _no(_PRIVACY_REQUIRED)
        user, password = (astring(a).decode("utf-8", "surrogateescape") for a in args)
        if not self.store.check_password(user, password):
            raise _no(_AUTH_FAILED)
        return self.login(user)

    def cmd_authenticate(self, tag: str, args: list[Token], uid: bool) -> str | None:
        if not 1 <= len(args) <= 2:
            raise _Reply("BAD", "Error in IMAP command received by server.")
        if atom(args[0]).upper() != "PLAIN":
            raise _no("[ALERT] Unsupported authentication mechanism.")
        if self.plaintext_refused():
            raise _no(_PRIVACY_REQUIRED)
        if len(args) == 2:
            response = astring(args[1])
            invalid = _Reply("BAD", "Invalid base64 data in initial response")
        else:
            self.send(b"+ \r\n")
            self.flush()
            line = self.connection.readline()
            if line is None:
                raise _Disconnect
            response = line
            invalid = _no("[ALERT] Invalid base64 in response")
        if response == b"*":
            raise _Reply("BAD", "Authentication aborted by client.")
        try:
            decoded = b"" if response == b"=" else base64.b64decode(response, validate=True)
        except binascii.Error:
            raise invalid from None
        fields = decoded.decode("utf-8", "surrogateescape").split("\0")
        if len(fields) != 3:
            raise _no(_AUTH_FAILED)
        authzid, authcid, password = fields
        if authzid not in ("", authcid) or not self.store.check_password(authcid, password):
            raise _no(_AUTH_FAILED)
        return self.login(authcid)

    # -- authenticated -----------------------------------------------------------------------

    @property
    def username(self) -> str:
        assert self.user is not None
        return self.user

    def cmd_select(self, tag: str, args: list[Token], uid: bool, readonly: bool = False) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        if self.selected is not None:
            self.selected = None
            self.untagged(b"OK [CLOSED] Previous mailbox closed.")
        name = _decode_mailbox(args[0])
        version = self.store.version
        try:
            snapshot = self.store.snapshot(self.username, name)
        except (NoSuchFolderError, ValueError):
            raise _no(f"Mailbox doesn't exist: {name}.") from None
        uids = [m.uid for m in snapshot.messages]
        recent = self.shared.recent(self.username, snapshot.uidvalidity, uids,
                                    take=not readonly)
        keywords = self.shared.keywords(self.username, snapshot.uidvalidity,
                                        (m.flags for m in snapshot.messages))
        self.flag_lines(keywords, readonly)
        self.untagged(b"%d EXISTS" % len(uids))
        self.untagged(b"%d RECENT" % len(recent))
        unseen = next((n for n, m in enumerate(snapshot.messages, 1)
                       if "\\Seen" not in m.flags), None)
        if unseen is not None:
            self.untagged(b"OK [UNSEEN %d] First unseen." % unseen)
        self.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % snapshot.uidvalidity)
        self.untagged(b"OK [UIDNEXT %d] Predicted next UID" % snapshot.uidnext)
        self.selected = _Selected(name, readonly, snapshot, recent, keywords, version)
        if readonly:
            return "[READ-ONLY] Examine completed."
        return "[READ-WRITE] Select completed."

    def cmd_examine(self, tag: str, args: list[Token], uid: bool) -> str:
        return self.cmd_select(tag, args, uid, readonly=True)

    def cmd_create(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        name = _decode_mailbox(args[0])
        if name.endswith(SEPARATOR):
            name = name[:-1]
        if not name:
            raise _no("[CANNOT] Invalid mailbox name: Name is empty.")
        if name == INBOX:
            raise _no("[ALREADYEXISTS] Mailbox already exists.")
        if name.startswith("~"):
            raise _no("[CANNOT] Invalid mailbox name: Begins with '~'.")
        try:
            self.store.create_folder(self.username, name)
        except FolderExistsError:
            raise _no("[ALREADYEXISTS] Mailbox already exists.") from None
        except ValueError:
            raise _no("[CANNOT] Invalid mailbox name.") from None
        with contextlib.suppress(NoSuchFolderError):
            self.store.subscribe(self.username, name, False)  # CREATE does not subscribe
        return "Create completed."

    def cmd_delete(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        name = _decode_mailbox(args[0])
        if name == INBOX:
            raise _no("INBOX can't be deleted.")
        try:
            self.store.delete_folder(self.username, name)
        except (NoSuchFolderError, ValueError):
            raise _no(f"[NONEXISTENT] Mailbox doesn't exist: {name}.") from None
        return "Delete completed."

    def cmd_rename(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 2:
            raise ProtocolError("Invalid arguments")
        old, new = _decode_mailbox(args[0]), _decode_mailbox(args[1])
        if new.endswith(SEPARATOR):
            new = new[:-1]
        folders = set(self.store.folders(self.username))
        if old == new:
            raise _no("[ALREADYEXISTS] Can't rename mailbox to itself.")
        if new.startswith(old + SEPARATOR):
            raise _no("[CANNOT] Can't rename mailbox under its own child.")
        if old in folders:
            if new in folders:
                raise _no("[ALREADYEXISTS] Target mailbox already exists.")
            moves = [old]
        else:
            # A \Noselect parent: move the real mailboxes under it (into *new*'s hierarchy,
            # even if *new* exists, as Dovecot does).
            below = [f for f in folders if f.startswith(old + SEPARATOR)]
            moves = [f for f in below if not any(p in folders for p in _parents(f)
                                                 if p.startswith(old + SEPARATOR))]
            if not moves:
                raise _no(f"[NONEXISTENT] Mailbox doesn't exist: {old}.")
        try:
            for source in sorted(moves):
                self.store.rename_folder(self.username, source, new + source[len(old):])
        except FolderExistsError:
            raise _no("[ALREADYEXISTS] Target mailbox already exists.") from None
        except (NoSuchFolderError, ValueError):
            raise _no(f"[NONEXISTENT] Mailbox doesn't exist: {old}.") from None
        return "Rename completed."

    def cmd_subscribe(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        name = _decode_mailbox(args[0])
        try:
            self.store.subscribe(self.username, name, True)
        except (NoSuchFolderError, ValueError):
            raise _no(f"Mailbox doesn't exist: {name}.") from None
        return "Subscribe completed."

    def cmd_unsubscribe(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) != 1:
            raise ProtocolError("Invalid arguments")
        name = _decode_mailbox(args[0])
        with contextlib.suppress(NoSuchFolderError, ValueError):
            self.store.subscribe(self.username, name, False)
        return "Unsubscribe completed."

    def mailbox_list(self) -> list[tuple[str, bool, bool]]:
        """``(name, selectable, has children)`` for every mailbox and implied parent."""
        folders = self.store.folders(self.username)
        real = set(folders)
        names = set(real)
        for folder in folders:
            names.update(_parents(folder))
        parents = {p for name in names for p in _parents(name)}
        ordered = sorted(names - {INBOX})
        if INBOX in names:
            ordered.insert(0, INBOX)
        return [(name, name in real, name in parents) for name in ordered]

    def cmd_list(self, tag: str, args: list[Token], uid: bool, lsub: bool = False) -> str:
        if len(args) != 2:
            raise ProtocolError("Invalid arguments")
        reference, pattern = (astring(a).decode("latin-1") for a in args)
        kind = b"LSUB" if lsub else b"LIST"
        done = "Lsub completed." if lsub else "List completed."
        if not pattern:
            self.untagged(kind + b' (\\Noselect) "/" ""')
            return done
        matches = _pattern_matcher(reference + pattern)
        encoded = {name: utf7.encode(name).decode("ascii") for name, _, _ in
                   self.mailbox_list()}
        if lsub:
            subscribed = set()
            for name in self.store.folders(self.username):
                with contextlib.suppress(NoSuchFolderError):
                    if self.store.snapshot(self.username, name).subscribed:
                        subscribed.add(name)
            listed: dict[str, bytes] = {}
            for name in sorted(subscribed):
                if matches(encoded.get(name, name)):
                    listed[name] = b"()"
                elif "*" not in pattern:
                    for parent in _parents(name):
                        if parent not in subscribed and matches(encoded.get(parent, parent)):
                            listed.setdefault(parent, b"(\\Noselect)")
            for name in sorted(listed, key=lambda n: (n != INBOX, n)):
                self.untagged(kind + b" " + listed[name] + b' "/" ' + _encode_mailbox(name))
            return done
        for name, selectable, children in self.mailbox_list():
            if not matches(encoded[name]):
                continue
            flags = [] if selectable else ["\\Noselect"]
            flags.append("\\HasChildren" if children else "\\HasNoChildren")
            self.untagged(kind + b" (" + " ".join(flags).encode("ascii") + b') "/" '
                          + _encode_mailbox(name))
        return done

    def cmd_lsub(self, tag: str, args: list[Token], uid: bool) -> str:
        return self.cmd_list(tag, args, uid, lsub=True)

    def cmd_namespace(self, tag: str, args: list[Token], uid: bool) -> str:
        self.untagged(b'NAMESPACE (("" "/")) NIL NIL')
        return "Namespace completed."

    def cmd_status(self, tag: str, args: list[Token], uid: bool) -> str:
        if len(args) < 2:
            raise ProtocolError("Missing arguments")
        items = args[1]
        if len(args) != 2 or not isinstance(items, list):
            raise ProtocolError("Invalid arguments")
        if not items:
            raise ProtocolError("Empty status list")
        names = [atom(item).upper() for item in items]
        for item_name in names:
            if item_name not in _STATUS_ITEMS:
                raise ProtocolError(f"Invalid status item {item_name}")
        name = _decode_mailbox(args[0])
        try:
            snapshot = self.store.snapshot(self.username, name)
        except (NoSuchFolderError, ValueError):
            raise _no(f"Mailbox doesn't exist: {name}.") from None
        selected = self.selected
        here = selected is not None and selected.name == name
        values = []
        for item_name in names:
            if item_name == "MESSAGES":
                value = len(snapshot.messages)
            elif item_name == "RECENT":
                if here:
                    assert selected is not None
                    value = len(selected.recent)
                else:
                    value = len(self.shared.recent(self.username, snapshot.uidvalidity,
                                                   [m.uid for m in snapshot.messages], False))
            elif item_name == "UIDNEXT":
                value = snapshot.uidnext
            elif item_name == "UIDVALIDITY":
                value = snapshot.uidvalidity
            else:
                value = sum(1 for m in snapshot.messages if "\\Seen" not in m.flags)
            values.append(f"{item_name} {value}")
        self.untagged(b"STATUS " + _encode_mailbox(name) + b" ("
                      + " ".join(values).encode("ascii") + b")")
        if here:
            return "[CLIENTBUG] Status on selected mailbox completed."
        return "Status completed."

    def cmd_append(self, tag: str, args: list[Token], uid: bool) -> str:
        if not args:
            raise ProtocolError("Invalid arguments")
        messages: list[tuple[list[str], datetime | None, bytes]] = []
        index = 1
        while index < len(args) or not messages:
            flags: list[str] = []
            token = args[index] if index < len(args) else None
            if isinstance(token, list):
                flags = parse_flags(token)
                index += 1
            when = None
            token = args[index] if index < len(args) else None
            if isinstance(token, bytes) and not isinstance(token, Literal):
                when = parse_internal_date(token.decode("ascii", "replace"))
                index += 1
            token = args[index] if index < len(args) else None
            if token is None:
                raise ProtocolError("Missing message size")
            if not isinstance(token, Literal):
                raise ProtocolError("Invalid arguments")
            messages.append((flags, when, bytes(token)))
            index += 1
        name = _decode_mailbox(args[0])
        try:
            uidvalidity = self.store.snapshot(self.username, name).uidvalidity
        except (NoSuchFolderError, ValueError):
            raise _no(f"[TRYCREATE] Mailbox doesn't exist: {name}.") from None
        if any(not data for _, _, data in messages):
            raise _no("Can't save a zero byte message.")
        uids = []
        try:
            for flags, when, data in messages:
                uids.append(self.store.deliver(self.username, data, name, flags, when))
        except NoSuchFolderError:
            raise _no(f"[TRYCREATE] Mailbox doesn't exist: {name}.") from None
        return f"[APPENDUID {uidvalidity} {format_uid_set(uids)}] Append completed."

    def cmd_idle(self, tag: str, args: list[Token], uid: bool) -> None:
        if args:
            raise ProtocolError("Invalid arguments")
        connection = self.connection
        wake, wake_sender = self.server.watcher.subscribe()
        try:
            self.send(b"+ idling\r\n")
            if self.selected is not None:
                self.sync(allow_expunge=True)
            self.flush()
            deadline = time.monotonic() + self.server.idle_timeout
            with selectors.DefaultSelector() as selector:
                selector.register(connection.sock, selectors.EVENT_READ, "client")
                selector.register(wake, selectors.EVENT_READ, "store")
                while True:
                    sock = connection.sock
                    if connection.buffered or (isinstance(sock, ssl.SSLSocket)
                                               and sock.pending()):
                        break  # the client's next line is here already
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self.bye("Disconnected for inactivity.")
                    events = {key.data for key, _ in selector.select(remaining)}
                    if "store" in events:
                        with contextlib.suppress(BlockingIOError, InterruptedError):
                            wake.recv(4096)
                        if self.selected is not None:
                            self.sync(allow_expunge=True)
                            self.flush()
                    if "client" in events:
                        break
        finally:
            self.server.watcher.unsubscribe(wake_sender)
            wake.close()
            wake_sender.close()
        line = connection.readline()
        if line is None:
            raise _Disconnect
        if line.strip().upper() == b"DONE":
            self.tagged(tag, "OK", "Idle completed.")
        else:
            self.tagged(tag, "BAD", "Expected DONE.")

    # -- selected ----------------------------------------------------------------------------

    def cmd_check(self, tag: str, args: list[Token], uid: bool) -> str:
        return "Check completed."

    def cmd_close(self, tag: str, args: list[Token], uid: bool) -> str:
        selected = self.require_selected()
        if not selected.readonly:
            self.expunge(None)
        self.selected = None
        return "Close completed."

    def cmd_unselect(self, tag: str, args: list[Token], uid: bool) -> str:
        self.selected = None
        return "Unselect completed."

    def cmd_expunge(self, tag: str, args: list[Token], uid: bool) -> str:
        selected = self.require_selected()
        uids = None
        if uid:
            if len(args) != 1:
                raise ProtocolError("Invalid arguments")
            uids = [u for _, u in self.targets(args[0], uid=True)]
        elif args:
            raise ProtocolError("Invalid arguments")
        if not selected.readonly:
            self.expunge(uids)
        return "Expunge completed."

    def cmd_search(self, tag: str, args: list[Token], uid: bool) -> str:
        selected = self.require_selected()
        try:
            key = parse_search(args)
        except _BadCharset:
            raise _no("[BADCHARSET] Unknown charset.") from None
        current = self.current()
        uids = selected.uids
        context = _SearchContext(len(uids), uids[-1] if uids else 0, selected.recent)
        found = []
        for seq, message_uid in enumerate(uids, 1):
            # A message expunged since the client was last told still matches (on what it
            # was), as in Dovecot.
            if context.matches(key, seq, self.message(message_uid, current)):
                found.append(message_uid if uid else seq)
        self.untagged(b"SEARCH" + b"".join(b" %d" % n for n in found))
        return "Search completed."

    def cmd_fetch(self, tag: str, args: list[Token], uid: bool) -> str:
        selected = self.require_selected()
        if len(args) != 2:
            raise ProtocolError("Invalid arguments")
        targets = self.targets(args[0], uid)
        items = parse_fetch_items(args[1])
        current = self.current()
        seen_now: set[int] = set()
        if not selected.readonly and any(item.sets_seen for item in items):
            unseen = [u for _, u in targets if u in current and
                      "\\Seen" not in current[u].flags]
            if unseen:
                changed = self.store.set_flags(self.username, selected.name, unseen,
                                               ["\\Seen"], mode="add")
                for message_uid, flags in changed.items():
                    current[message_uid] = dataclasses.replace(current[message_uid],
                                                               flags=flags)
                    seen_now.add(message_uid)
        first = [i for i in items if i.buffered and not (uid and i.name == "UID")]
        rest = [i for i in items if not i.buffered]
        wants_flags = any(i.name == "FLAGS" for i in items)
        for seq, message_uid in targets:
            message = self.message(message_uid, current)
            pieces = [b"UID %d" % message_uid] if uid else []
            pieces += [self.fetch_value(item, message) for item in first]
            if message_uid in seen_now:
                if not wants_flags:
                    pieces.append(self.fetch_value(_FLAGS_ITEM, message))
                selected.reported[message_uid] = message.flags
            pieces += [self.fetch_value(item, message) for item in rest]
            self.send(b"* %d FETCH (" % seq + b" ".join(pieces) + b")\r\n")
        return "Fetch completed."

    def fetch_value(self, item: FetchItem, message: StoredMessage) -> bytes:
        name = item.name
        if name == "UID":
            return b"UID %d" % message.uid
        if name == "FLAGS":
            selected = self.require_selected()
            return b"FLAGS " + self.flags_bytes(message.flags, message.uid in selected.recent)
        if name == "INTERNALDATE":
            return b"INTERNALDATE " + format_internal_date(message.internal_date)
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % message.size
        if name == "ENVELOPE":
            return b"ENVELOPE " + envelope(parse_message(message.data).header)
        if name in ("BODY", "BODYSTRUCTURE"):
            return name.encode("ascii") + b" " + body_structure(message.data,
                                                                 name == "BODYSTRUCTURE")
        if name == "RFC822":
            data = message.data
        elif name == "RFC822.HEADER":
            data = parse_message(message.data).header
        elif name == "RFC822.TEXT":
            data = parse_message(message.data).body
        else:
            assert item.section is not None
            data = section_bytes(message.data, item.section)
            if item.partial is not None:
                start, length = item.partial
                data = data[start:start + length]
        return item.response_name().encode("ascii") + b" {%d}\r\n" % len(data) + data

    def cmd_store(self, tag: str, args: list[Token], uid: bool) -> str:
        selected = self.require_selected()
        if len(args) < 3:
            raise ProtocolError("Invalid arguments")
        targets = self.targets(args[0], uid)
        operation = atom(args[1]).upper()
        silent = operation.endswith(".SILENT")
        base = operation[:-len(".SILENT")] if silent else operation
        if base not in _STORE_MODES:
            raise ProtocolError("Invalid arguments")
        flag_tokens = args[2] if len(args) == 3 and isinstance(args[2], list) else args[2:]
        if any(isinstance(t, list) for t in flag_tokens):
            raise ProtocolError("Invalid arguments")
        flags = parse_flags(flag_tokens)
        if selected.readonly:
            return "Store ignored with read-only mailbox."
        mode = _STORE_MODES[base]
        current = self.current()
        wanted = [u for _, u in targets if u in current]
        if not wanted or (mode != "replace" and not flags):
            return "Store completed."
        changed = self.store.set_flags(self.username, selected.name, wanted, flags, mode)
        self.announce_keywords((), (f for f in flags if not f.startswith("\\")))
        for seq, message_uid in targets:
            new = changed.get(message_uid)
            if new is None:
                continue
            before = selected.reported[message_uid]
            if silent:
                selected.reported[message_uid] = (
                    frozenset(flags) if mode == "replace" else
                    before | frozenset(flags) if mode == "add" else before - frozenset(flags))
                continue
            if new == current[message_uid].flags:
                continue
            selected.reported[message_uid] = new
            pieces = b"UID %d FLAGS " % message_uid if uid else b"FLAGS "
            self.untagged(b"%d FETCH (" % seq + pieces
                          + self.flags_bytes(new, message_uid in selected.recent) + b")")
        return "Store completed."

    def copy_targets(self, args: list[Token], uid: bool
                     ) -> tuple[list[int], str, dict[int, StoredMessage]]:
        if len(args) != 2:
            raise ProtocolError("Invalid arguments")
        targets = self.targets(args[0], uid)
        destination = _decode_mailbox(args[1])
        current = self.current()
        return [u for _, u in targets if u in current], destination, current

    def copy_or_move(self, args: list[Token], uid: bool, move: bool
                     ) -> tuple[int, dict[int, int]]:
        """Copy or move; return the destination's UIDVALIDITY and source UID -> new UID."""
        selected = self.require_selected()
        uids, destination, current = self.copy_targets(args, uid)
        try:
            uidvalidity = self.store.snapshot(self.username, destination).uidvalidity
        except (NoSuchFolderError, ValueError):
            raise _no(f"[TRYCREATE] Mailbox doesn't exist: {destination}.") from None
        if not uids:
            if uid:
                raise _Reply("OK", "No messages found.")
            raise _no("[EXPUNGEISSUED] Some of the requested messages no longer exist.")
        operation = self.store.move if move else self.store.copy
        try:
            mapping = operation(self.username, selected.name, uids, destination)
        except NoSuchFolderError:
            raise _no(f"[TRYCREATE] Mailbox doesn't exist: {destination}.") from None
        if move:
            self.shared.record_expunged(self.username, selected.uidvalidity,
                                        {u: current[u].flags for u in mapping if u in current})
        return uidvalidity, mapping

    @staticmethod
    def copyuid(uidvalidity: int, mapping: dict[int, int]) -> str:
        sources = sorted(mapping)
        return (f"[COPYUID {uidvalidity} {format_uid_set(sources)} "
                f"{format_uid_set([mapping[u] for u in sources])}]")

    def cmd_copy(self, tag: str, args: list[Token], uid: bool) -> str:
        uidvalidity, mapping = self.copy_or_move(args, uid, move=False)
        return f"{self.copyuid(uidvalidity, mapping)} Copy completed."

    def cmd_move(self, tag: str, args: list[Token], uid: bool) -> str:
        if self.require_selected().readonly:
            self.copy_targets(args, uid)  # BAD for a malformed command first
            raise _no("[CANNOT] Can't move messages out of a read-only mailbox.")
        uidvalidity, mapping = self.copy_or_move(args, uid, move=True)
        self.untagged(f"OK {self.copyuid(uidvalidity, mapping)} Moved UIDs.".encode("ascii"))
        return "Move completed."


_STORE_MODES: dict[str, FlagMode] = {"FLAGS": "replace", "+FLAGS": "add", "-FLAGS": "remove"}
_FLAGS_ITEM = FetchItem("FLAGS")
_AUTH_FAILED = "[AUTHENTICATIONFAILED] Authentication failed."
_PRIVACY_REQUIRED = (
    "[PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
)
_STATUS_ITEMS = frozenset({"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN"})
_UID_COMMANDS = frozenset({"FETCH", "SEARCH", "STORE", "COPY", "MOVE", "EXPUNGE"})
#: Commands after which expunges are not reported (the client may be using sequence numbers).
_NO_EXPUNGE = frozenset({"FETCH", "STORE", "SEARCH"})
#: Commands that leave no mailbox view to synchronise (or just made a fresh one), and RENAME
#: and DELETE, which answer OK even when they remove the selected mailbox (the session ends
#: with the next command, as in Dovecot).
_NO_SYNC = frozenset({"SELECT", "EXAMINE", "CLOSE", "UNSELECT", "LOGOUT", "IDLE", "RENAME",
                      "DELETE"})

_COMMANDS: dict[str, tuple[_CommandHandler, str]] = {
    "CAPABILITY": (_Session.cmd_capability, _ANY),
    "NOOP": (_Session.cmd_noop, _ANY),
    "LOGOUT": (_Session.cmd_logout, _ANY),
    "ID": (_Session.cmd_id, _ANY),
    "ENABLE": (_Session.cmd_enable, _ANY),
    "STARTTLS": (_Session.cmd_starttls, _NOT_AUTH),
    "LOGIN": (_Session.cmd_login, _NOT_AUTH),
    "AUTHENTICATE": (_Session.cmd_authenticate, _NOT_AUTH),
    "SELECT": (_Session.cmd_select, _AUTH),
    "EXAMINE": (_Session.cmd_examine, _AUTH),
    "CREATE": (_Session.cmd_create, _AUTH),
    "DELETE": (_Session.cmd_delete, _AUTH),
    "RENAME": (_Session.cmd_rename, _AUTH),
    "SUBSCRIBE": (_Session.cmd_subscribe, _AUTH),
    "UNSUBSCRIBE": (_Session.cmd_unsubscribe, _AUTH),
    "LIST": (_Session.cmd_list, _AUTH),
    "LSUB": (_Session.cmd_lsub, _AUTH),
    "NAMESPACE": (_Session.cmd_namespace, _AUTH),
    "STATUS": (_Session.cmd_status, _AUTH),
    "APPEND": (_Session.cmd_append, _AUTH),
    "IDLE": (_Session.cmd_idle, _AUTH),
    "CHECK": (_Session.cmd_check, _SELECTED),
    "CLOSE": (_Session.cmd_close, _SELECTED),
    "UNSELECT": (_Session.cmd_unselect, _SELECTED),
    "EXPUNGE": (_Session.cmd_expunge, _SELECTED),
    "SEARCH": (_Session.cmd_search, _SELECTED),
    "FETCH": (_Session.cmd_fetch, _SELECTED),
    "STORE": (_Session.cmd_store, _SELECTED),
    "COPY": (_Session.cmd_copy, _SELECTED),
    "MOVE": (_Session.cmd_move, _SELECTED),
    "UID": (_Session.cmd_noop, _SELECTED),  # dispatch() turns "UID X" into X
}


# -- SEARCH evaluation ------------------------------------------------------------------------

class _SearchContext:
    def __init__(self, last_seq: int, last_uid: int, recent: set[int]) -> None:
        self.last_seq = last_seq
        self.last_uid = last_uid
        self.recent = recent
        self._sets: dict[tuple[str, SequenceSet], Callable[[int], bool]] = {}

    def in_set(self, kind: str, ranges: SequenceSet, number: int) -> bool:
        matcher = self._sets.get((kind, ranges))
        if matcher is None:
            star = self.last_uid if kind == "uid" else self.last_seq
            matcher = self._sets[kind, ranges] = sequence_matcher(ranges, star)
        return matcher(number)

    def matches(self, key: SearchKey, seq: int, message: StoredMessage) -> bool:
        op = key[0]
        if op == "and":
            return all(self.matches(k, seq, message) for k in key[1])
        if op == "or":
            return self.matches(key[1], seq, message) or self.matches(key[2], seq, message)
        if op == "not":
            return not self.matches(key[1], seq, message)
        if op == "all":
            return True
        if op in ("flag", "keyword"):
            return (key[1] in message.flags) is key[2]
        recent = message.uid in self.recent
        if op == "recent":
            return recent
        if op == "new":
            return recent and "\\Seen" not in message.flags
        if op == "old":
            return not recent
        if op == "uid":
            return self.in_set(op, key[1], message.uid)
        if op == "seq":
            return self.in_set(op, key[1], seq)
        if op == "size":
            limit: int = key[2]
            return message.size > limit if key[1] == "larger" else message.size < limit
        if op == "date":
            return _compare_date(_message_date(message, key[1]), key[2], key[3])
        needle = key[-1].casefold()
        if op == "header":
            values = header_values(message.data, key[1])
            return bool(values) and (not needle or any(needle in v.casefold() for v in values))
        if op == "body":
            return needle in body_text(message.data).casefold()
        if op == "text":
            return (needle in header_text(message.data).casefold()
                    or needle in body_text(message.data).casefold())
        raise AssertionError(f"unknown search key {op!r}")


def _message_date(message: StoredMessage, which: str) -> date:
    if which == "sent":
        values = header_values(message.data, "date")
        if values:
            try:
                return parsedate_to_datetime(values[0]).date()
            except (TypeError, ValueError, IndexError):
                pass
    return message.internal_date.astimezone(timezone.utc).date()


def _compare_date(value: date, relation: str, limit: date) -> bool:
    if relation == "before":
        return value < limit
    if relation == "on":
        return value == limit
    return value >= limit


# -- the server -------------------------------------------------------------------------------

class _ChangeWatcher:
    """Wakes idling sessions when the store changes.

    While some session idles, one thread per server waits in :meth:`Store.wait_for_change`;
    each idling session selects on its own socket pair, which the thread makes readable after
    every change. The thread ends soon after the last session leaves IDLE.
    """

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self._lock = threading.Lock()
        self._senders: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def subscribe(self) -> tuple[socket.socket, socket.socket]:
        """A ``(receiver, sender)`` pair; the receiver becomes readable after each change
        made from now on."""
        receiver, sender = socket.socketpair()
        receiver.setblocking(False)
        sender.setblocking(False)
        with self._lock:
            self._senders.add(sender)
            if self._thread is None and not self._stopping.is_set():
                # The version is read now, before the session's own last look at the store.
                self._thread = threading.Thread(target=self._run, args=(self.store.version,),
                                                name=self.name, daemon=True)
                self._thread.start()
        return receiver, sender

    def unsubscribe(self, sender: socket.socket) -> None:
        with self._lock:
            self._senders.discard(sender)

    def _run(self, version: int) -> None:
        while True:
            changed = self.store.wait_for_change(version, _WATCH_INTERVAL)
            with self._lock:
                if not self._senders or self._stopping.is_set():
                    self._thread = None
                    return
                senders = list(self._senders) if changed != version else []
            version = changed
            for sender in senders:
                with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed
                    sender.send(b"!")


class IMAPServer(ThreadedServer):
    """An IMAP server for the mailboxes of *store*, listening on loopback.

    *tls_context* is a server-side :class:`ssl.SSLContext`. With ``implicit_tls=False`` (IMAP)
    it enables STARTTLS (without it, STARTTLS is refused and not advertised); with
    ``implicit_tls=True`` (IMAPS) every connection starts with a TLS handshake. With
    *require_tls*, LOGIN and AUTHENTICATE are refused until the connection is encrypted (and
    LOGINDISABLED is advertised). *max_line* bounds an input line, *max_literal* the literals
    of one command, *idle_timeout* the seconds a client may stay silent (IDLE included).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`; ``host``, ``port`` and
    ``address`` tell where it listens. Most users want :class:`~mailwire.testing.MailServer`,
    which creates these for them.
    """

    protocol = "imap"

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
        max_line: int = 65536,
        max_literal: int = 64 * 1024 * 1024,
        idle_timeout: float = 1800.0,
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
            self.protocol = "imaps"
        self.store = store
        #: The context STARTTLS uses; None when STARTTLS is not offered (and under IMAPS).
        self.starttls_context = None if implicit_tls else tls_context
        self.require_tls = require_tls
        self.greeting = greeting
        self.max_literal = max_literal
        #: Wakes the sessions in IDLE when the store changes.
        self.watcher = _ChangeWatcher(store, f"mailwire-{self.protocol}-watch")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, disconnect every client and join all threads (within *timeout*)."""
        super().stop(timeout)
        self.watcher.stop(timeout)

    def handle(self, connection: Connection) -> None:
        _Session(self, connection).run()

