"""The embedded mail server's mailbox store: users, folders, messages, UIDs and flags.

One :class:`Store` serves every protocol of one :class:`~mailwire.testing.MailServer` (POP3 now,
IMAP later), so it models what IMAP needs: per-user folders with a UIDVALIDITY and a UIDNEXT,
messages with a UID, flags (system flags such as ``\\Seen`` and keywords) and an internal date.

Messages are kept as bytes with CRLF line endings, which is what both protocols send and what
their size counts mean: a message delivered with bare LF line endings is converted on delivery,
so ``StoredMessage.size`` is the RFC 1939 octet count and the IMAP ``RFC822.SIZE``. A lone CR is
left alone, and so is a missing line ending at the very end.

Every method is thread-safe (one re-entrant lock per store) and hands out immutable snapshots, so
a protocol session can keep what it read without holding the lock. Every change bumps
:attr:`Store.version` and wakes :meth:`Store.wait_for_change` (what IMAP IDLE will want).

A store can be backed by a directory of Maildirs, one per user (``ROOT/USER/``, in the Maildir++
layout: INBOX is the user's directory itself, folder ``A/B`` is ``ROOT/USER/.A.B/``). Existing
messages are read when a user is added, and every change is written through: delivery writes a
file, a flag change renames it (``:2,FS`` information suffix; keywords, UIDs and UIDVALIDITY are
kept in a ``mailwire-uidlist`` JSON file per folder), expunge unlinks it. The store assumes it is
the only writer while it runs.
"""

from __future__ import annotations

import contextlib
import email.message
import hmac
import itertools
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Union

__all__ = [
    "INBOX",
    "SEPARATOR",
    "SYSTEM_FLAGS",
    "FolderExistsError",
    "FolderSnapshot",
    "MessageInput",
    "NoSuchFolderError",
    "NoSuchUserError",
    "Store",
    "StoredMessage",
    "to_crlf",
]

#: The name of every user's first folder. Matched case-insensitively, as IMAP requires.
INBOX = "INBOX"
#: The hierarchy separator in folder names (``"Archive/2024"``).
SEPARATOR = "/"
#: IMAP system flags a message can carry (``\\Recent`` is per session, so it is not stored).
SYSTEM_FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")

#: What :meth:`Store.deliver` accepts as a message.
MessageInput = Union[bytes, bytearray, memoryview, str, email.message.Message]

FlagMode = Literal["replace", "add", "remove"]


class NoSuchUserError(KeyError):
    """The store has no user of that name."""


class NoSuchFolderError(KeyError):
    """The user has no folder of that name."""


class FolderExistsError(ValueError):
    """A folder of that name exists already."""


def to_crlf(data: bytes) -> bytes:
    """Return *data* with every line ending as CRLF (bare LF becomes CRLF; lone CR is kept)."""
    if b"\n" not in data:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _message_bytes(message: MessageInput) -> bytes:
    if isinstance(message, email.message.Message):
        return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    if isinstance(message, str):
        return message.encode("utf-8", "surrogateescape")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"a message must be bytes, str or email.message.Message, not {message!r}")


def _check_flags(flags: Iterable[str]) -> frozenset[str]:
    result = set()
    for flag in flags:
        if not isinstance(flag, str) or not flag or any(c in flag for c in " ()\r\n\0{%*\"]"):
            raise ValueError(f"invalid flag: {flag!r}")
        if flag.startswith("\\"):
            system = next((f for f in SYSTEM_FLAGS if f.lower() == flag.lower()), None)
            if system is None:
                raise ValueError(f"unknown system flag: {flag!r}")
            flag = system
        result.add(flag)
    return frozenset(result)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass(frozen=True)
class StoredMessage:
    """One message as the store holds it: an immutable snapshot."""

    #: The message's UID in its folder, unique and ascending within one UIDVALIDITY.
    uid: int
    #: The whole message, with CRLF line endings.
    data: bytes
    #: System flags (``\\Seen``...) and keywords.
    flags: frozenset[str]
    #: When the message arrived (timezone-aware); IMAP's INTERNALDATE.
    internal_date: datetime

    @property
    def size(self) -> int:
        """The size in octets with CRLF line endings (POP3 LIST, IMAP RFC822.SIZE)."""
        return len(self.data)


@dataclass(frozen=True)
class FolderSnapshot:
    """A consistent view of one folder at one moment."""

    name: str
    uidvalidity: int
    uidnext: int
    subscribed: bool
    #: The messages in ascending UID order (sequence number ``n`` is ``messages[n - 1]``).
    messages: tuple[StoredMessage, ...]


class _Folder:
    def __init__(self, name: str, uidvalidity: int, path: Path | None) -> None:
        self.name = name
        self.uidvalidity = uidvalidity
        self.uidnext = 1
        self.subscribed = True
        #: UID -> message, in ascending UID order (UIDs are only ever appended).
        self.messages: dict[int, StoredMessage] = {}
        #: Maildir mode: the folder's directory, and each message's file.
        self.path = path
        self.files: dict[int, Path] = {}


class _User:
    def __init__(self, name: str, password: str) -> None:
        self.name = name
        self.password = password
        self.folders: dict[str, _Folder] = {}
        self.path: Path | None = None


class Store:
    """Thread-safe in-memory mailboxes, optionally written through to Maildirs.

    *users* maps user names to passwords. *maildir*, when given, is a directory holding one
    Maildir per user; it is created if missing, and messages already there are loaded.
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        maildir: Union[str, os.PathLike[str]] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._users: dict[str, _User] = {}
        self._version = 0
        self._last_uidvalidity = 0
        self.maildir: Path | None = None if maildir is None else Path(maildir)
        if self.maildir is not None:
            self.maildir.mkdir(parents=True, exist_ok=True)
        for name, password in (users or {}).items():
            self.add_user(name, password)

    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Add a user with an empty INBOX (or what their Maildir holds), or change a password."""
        if not name or any(c in name for c in " \t\r\n\0") or name.startswith("."):
            raise ValueError(f"invalid user name: {name!r}")
        if any(c in password for c in "\r\n\0"):
            raise ValueError("a password cannot contain CR, LF or NUL")
        with self._lock:
            user = self._users.get(name)
            if user is not None:
                user.password = password
                return
            user = _User(name, password)
            if self.maildir is not None:
                user.path = self.maildir / _fs_name(name)
                self._load_maildirs(user)
            if INBOX not in user.folders:
                self._new_folder(user, INBOX)
            self._users[name] = user
            self._bump()

    def users(self) -> list[str]:
        """The user names, sorted."""
        with self._lock:
            return sorted(self._users)

    def password(self, user: str) -> str:
        """The user's password in clear (what APOP and CRAM-MD5 need)."""
        with self._lock:
            return self._user(user).password

    def check_password(self, user: str, password: str) -> bool:
        """Whether *password* is the user's; False for an unknown user."""
        with self._lock:
            found = self._users.get(user)
            expected = found.password if found is not None else ""
        ok = hmac.compare_digest(expected.encode("utf-8", "surrogateescape"),
                                 password.encode("utf-8", "surrogateescape"))
        return ok and found is not None

    # -- folders -----------------------------------------------------------------------------

    def folders(self, user: str) -> list[str]:
        """The user's folder names, INBOX first, the rest sorted."""
        with self._lock:
            names = self._user(user).folders
            return [INBOX, *sorted(n for n in names if n != INBOX)]

    def create_folder(self, user: str, name: str) -> None:
        """Create a folder; raise :class:`FolderExistsError` if it exists."""
        name = _check_folder_name(name)
        with self._lock:
            owner = self._user(user)
            if name in owner.folders:
                raise FolderExistsError(f"folder exists: {name!r}")
            self._new_folder(owner, name)
            self._bump()

    def delete_folder(self, user: str, name: str) -> None:
        """Delete a folder and its messages (not INBOX; subfolders are kept)."""
        name = _check_folder_name(name)
        if name == INBOX:
            raise ValueError("INBOX cannot be deleted")
        with self._lock:
            folder = self._folder(user, name)
            del self._user(user).folders[name]
            if folder.path is not None:
                shutil.rmtree(folder.path, ignore_errors=True)
            self._bump()

    def rename_folder(self, user: str, old: str, new: str) -> None:
        """Rename a folder and its subfolders.

        Renaming INBOX moves its messages to a new folder and leaves INBOX empty, as IMAP says.
        """
        old, new = _check_folder_name(old), _check_folder_name(new)
        with self._lock:
            owner = self._user(user)
            self._folder(user, old)
            if new in owner.folders or new == INBOX:
                raise FolderExistsError(f"folder exists: {new!r}")
            if old == INBOX:
                self._new_folder(owner, new)
                self._move_all(owner, INBOX, new)
                self._bump()
                return
            prefix = old + SEPARATOR
            renames = [(n, new + n[len(old):]) for n in owner.folders if n == old or
                       n.startswith(prefix)]
            for _, after in renames:
                if after in owner.folders:
                    raise FolderExistsError(f"folder exists: {after!r}")
            for before, after in renames:
                folder = owner.folders.pop(before)
                folder.name = after
                owner.folders[after] = folder
                if folder.path is not None and owner.path is not None:
                    target = owner.path / _folder_dirname(after)
                    os.replace(folder.path, target)
                    folder.files = {u: target / p.relative_to(folder.path)
                                    for u, p in folder.files.items()}
                    folder.path = target
            self._bump()

    def subscribe(self, user: str, name: str, subscribed: bool = True) -> None:
        """Mark a folder as subscribed (or not, with ``subscribed=False``)."""
        with self._lock:
            folder = self._folder(user, _check_folder_name(name))
            folder.subscribed = subscribed
            self._save_uidlist(folder)
            self._bump()

    def snapshot(self, user: str, folder: str = INBOX) -> FolderSnapshot:
        """A consistent view of a folder: UIDVALIDITY, UIDNEXT and its messages."""
        with self._lock:
            f = self._folder(user, _check_folder_name(folder))
            return FolderSnapshot(f.name, f.uidvalidity, f.uidnext, f.subscribed,
                                  tuple(f.messages.values()))

    def messages(self, user: str, folder: str = INBOX) -> tuple[StoredMessage, ...]:
        """The folder's messages in ascending UID order."""
        return self.snapshot(user, folder).messages

    # -- messages ----------------------------------------------------------------------------

    def deliver(
        self,
        user: str,
        message: MessageInput,
        folder: str = INBOX,
        flags: Iterable[str] = (),
        internal_date: datetime | None = None,
    ) -> int:
        """Add a message to a folder (delivery or IMAP APPEND) and return its UID.

        *message* may be bytes, a str (encoded as UTF-8) or an :class:`email.message.Message`
        (serialized with its own policy and CRLF line endings). Line endings become CRLF.
        *internal_date* defaults to now; a naive datetime is taken as UTC.
        """
        data = to_crlf(_message_bytes(message))
        flag_set = _check_flags(flags)
        when = _utcnow() if internal_date is None else internal_date
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        with self._lock:
            target = self._folder(user, _check_folder_name(folder))
            uid = self._add(target, data, flag_set, when)
            self._bump()
            return uid

    def set_flags(
        self,
        user: str,
        folder: str,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode = "replace",
    ) -> dict[int, frozenset[str]]:
        """Replace, add or remove flags on messages; return each found UID's new flags.

        UIDs that are not in the folder (any more) are skipped.
        """
        if mode not in ("replace", "add", "remove"):
            raise ValueError(f"invalid mode: {mode!r}")
        change = _check_flags(flags)
        result: dict[int, frozenset[str]] = {}
        with self._lock:
            target = self._folder(user, _check_folder_name(folder))
            for uid in uids:
                current = target.messages.get(uid)
                if current is None:
                    continue
                if mode == "replace":
                    new = change
                elif mode == "add":
                    new = current.flags | change
                else:
                    new = current.flags - change
                if new != current.flags:
                    target.messages[uid] = replace(current, flags=new)
                    self._write_flags(target, uid, new)
                result[uid] = new
            if result:
                self._save_uidlist(target)
                self._bump()
        return result

    def expunge(
        self, user: str, folder: str = INBOX, uids: Iterable[int] | None = None
    ) -> list[int]:
        """Remove the messages flagged ``\\Deleted`` (only among *uids* if given).

        Return the removed UIDs in ascending order.
        """
        with self._lock:
            target = self._folder(user, _check_folder_name(folder))
            wanted = target.messages.keys() if uids is None else set(uids)
            doomed = [u for u, m in target.messages.items()
                      if u in wanted and "\\Deleted" in m.flags]
            return self._remove(target, doomed)

    def remove(self, user: str, folder: str, uids: Iterable[int]) -> list[int]:
        """Remove messages whatever their flags (POP3 DELE then QUIT); return the removed UIDs.

        UIDs no longer in the folder are skipped, so two sessions may remove the same message.
        """
        with self._lock:
            target = self._folder(user, _check_folder_name(folder))
            wanted = set(uids)
            return self._remove(target, [u for u in target.messages if u in wanted])

    def copy(self, user: str, source: str, uids: Iterable[int], destination: str) -> dict[int, int]:
        """Copy messages (with flags and internal date); return source UID -> new UID."""
        with self._lock:
            src = self._folder(user, _check_folder_name(source))
            dst = self._folder(user, _check_folder_name(destination))
            wanted = set(uids)
            mapping = {}
            for uid, message in list(src.messages.items()):
                if uid in wanted:
                    mapping[uid] = self._add(dst, message.data, message.flags,
                                             message.internal_date)
            if mapping:
                self._bump()
            return mapping

    def move(self, user: str, source: str, uids: Iterable[int], destination: str) -> dict[int, int]:
        """Move messages to another folder; return source UID -> new UID."""
        with self._lock:
            mapping = self.copy(user, source, uids, destination)
            self._remove(self._folder(user, _check_folder_name(source)), list(mapping))
            return mapping

    # -- change notification -----------------------------------------------------------------

    @property
    def version(self) -> int:
        """A counter bumped by every change to the store."""
        with self._lock:
            return self._version

    def wait_for_change(self, since: int, timeout: float | None = None) -> int:
        """Block until :attr:`version` differs from *since* or *timeout* passes; return it."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != since, timeout)
            return self._version

    # -- internals (call with the lock held) -------------------------------------------------

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()

    def _user(self, name: str) -> _User:
        user = self._users.get(name)
        if user is None:
            raise NoSuchUserError(f"no such user: {name!r}")
        return user

    def _folder(self, user: str, name: str) -> _Folder:
        folder = self._user(user).folders.get(name)
        if folder is None:
            raise NoSuchFolderError(f"no such folder for {user!r}: {name!r}")
        return folder

    def _next_uidvalidity(self) -> int:
        self._last_uidvalidity = max(int(time.time()), self._last_uidvalidity + 1)
        return self._last_uidvalidity

    def _new_folder(self, user: _User, name: str) -> _Folder:
        path = None
        if user.path is not None:
            path = user.path if name == INBOX else user.path / _folder_dirname(name)
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            if name != INBOX:
                (path / "maildirfolder").touch()
        folder = _Folder(name, self._next_uidvalidity(), path)
        user.folders[name] = folder
        self._save_uidlist(folder)
        return folder

    def _add(self, folder: _Folder, data: bytes, flags: frozenset[str], when: datetime) -> int:
        uid = folder.uidnext
        folder.uidnext += 1
        folder.messages[uid] = StoredMessage(uid, data, flags, when)
        if folder.path is not None:
            folder.files[uid] = _write_message_file(folder.path, data, flags, when)
            self._save_uidlist(folder)
        return uid

    def _remove(self, folder: _Folder, uids: list[int]) -> list[int]:
        for uid in uids:
            del folder.messages[uid]
            path = folder.files.pop(uid, None)
            if path is not None:
                path.unlink(missing_ok=True)
        if uids:
            self._save_uidlist(folder)
            self._bump()
        return sorted(uids)

    def _move_all(self, user: _User, source: str, destination: str) -> None:
        src = user.folders[source]
        dst = user.folders[destination]
        for message in src.messages.values():
            self._add(dst, message.data, message.flags, message.internal_date)
        self._remove(src, list(src.messages))

    def _write_flags(self, folder: _Folder, uid: int, flags: frozenset[str]) -> None:
        old = folder.files.get(uid)
        if old is None or folder.path is None:
            return
        new = folder.path / "cur" / (_base_name(old.name) + _info(flags))
        if new != old:
            os.replace(old, new)
            folder.files[uid] = new

    def _save_uidlist(self, folder: _Folder) -> None:
        if folder.path is None:
            return
        state = {
            "uidvalidity": folder.uidvalidity,
            "uidnext": folder.uidnext,
            "subscribed": folder.subscribed,
            "messages": {
                _base_name(folder.files[uid].name): [uid, sorted(_keywords(m.flags))]
                for uid, m in folder.messages.items() if uid in folder.files
            },
        }
        target = folder.path / _UIDLIST
        scratch = folder.path / (_UIDLIST + ".tmp")
        scratch.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(scratch, target)

    def _load_maildirs(self, user: _User) -> None:
        assert user.path is not None
        user.path.mkdir(parents=True, exist_ok=True)
        found: list[tuple[str, Path]] = [(INBOX, user.path)]
        for entry in sorted(user.path.iterdir()):
            if entry.name.startswith(".") and (entry / "cur").is_dir():
                name = _folder_name_from_dir(entry.name)
                if name is not None:
                    found.append((name, entry))
        for name, path in found:
            self._load_folder(user, name, path)

    def _load_folder(self, user: _User, name: str, path: Path) -> None:
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        state: dict[str, object] = {}
        with contextlib.suppress(OSError, ValueError):
            state = json.loads((path / _UIDLIST).read_text(encoding="utf-8"))
        known = state.get("messages")
        known = known if isinstance(known, dict) else {}
        uidvalidity = state.get("uidvalidity")
        folder = _Folder(name, uidvalidity if isinstance(uidvalidity, int) and uidvalidity > 0
                         else self._next_uidvalidity(), path)
        self._last_uidvalidity = max(self._last_uidvalidity, folder.uidvalidity)
        uidnext = state.get("uidnext")
        folder.uidnext = uidnext if isinstance(uidnext, int) and uidnext > 0 else 1
        folder.subscribed = state.get("subscribed", True) is not False
        entries: list[tuple[int, float, str, Path]] = []
        for sub in ("new", "cur"):
            for file in (path / sub).iterdir():
                if file.name.startswith(".") or not file.is_file():
                    continue
                record = known.get(_base_name(file.name))
                uid = record[0] if isinstance(record, list) and record and isinstance(
                    record[0], int) else 0
                entries.append((uid, file.stat().st_mtime, file.name, file))
        # Known messages keep their UIDs; new files get fresh ones, oldest first.
        entries.sort(key=lambda e: (e[0] == 0, e[0], e[1], e[2]))
        for uid, mtime, _, file in entries:
            if uid <= 0 or uid in folder.messages:
                uid = folder.uidnext
            folder.uidnext = max(folder.uidnext, uid + 1)
            record = known.get(_base_name(file.name))
            keywords = record[1] if isinstance(record, list) and len(record) > 1 else []
            flags = _flags_from_info(file.name) | {k for k in keywords if isinstance(k, str)}
            folder.messages[uid] = StoredMessage(
                uid, to_crlf(file.read_bytes()), _check_flags(flags),
                datetime.fromtimestamp(int(mtime), timezone.utc))
            folder.files[uid] = file
        folder.messages = dict(sorted(folder.messages.items()))
        user.folders[name] = folder
        self._save_uidlist(folder)


# -- Maildir helpers ------------------------------------------------------------------------

_UIDLIST = "mailwire-uidlist"
# Maildir's information separator is ':'; Windows file names cannot hold one.
_COLON = "!" if os.name == "nt" else ":"
_FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                 "\\Deleted": "T"}
_LETTER_FLAGS = {v: k for k, v in _FLAG_LETTERS.items()}
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=@,")
_sequence = itertools.count()
_hostname = "".join(c if c in _SAFE else "_" for c in socket.gethostname()) or "localhost"


def _fs_name(text: str) -> str:
    """Percent-encode everything but a few safe ASCII characters (so never '.' or '/')."""
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                   for c in text)


def _fs_unname(text: str) -> str | None:
    raw = bytearray()
    i = 0
    try:
        while i < len(text):
            if text[i] == "%":
                raw.append(int(text[i + 1:i + 3], 16))
                i += 3
            else:
                raw += text[i].encode("ascii")
                i += 1
        return raw.decode("utf-8")
    except (ValueError, UnicodeError):
        return None


def _folder_dirname(name: str) -> str:
    return "." + ".".join(_fs_name(part) for part in name.split(SEPARATOR))


def _folder_name_from_dir(dirname: str) -> str | None:
    parts = [_fs_unname(p) for p in dirname[1:].split(".")]
    if not parts or any(not p for p in parts):
        return None
    name = SEPARATOR.join(p for p in parts if p)
    return None if name.upper() == INBOX else name


def _check_folder_name(name: str) -> str:
    if name.upper() == INBOX:
        return INBOX
    parts = name.split(SEPARATOR)
    if not name or any(not p for p in parts) or any(c in name for c in "\r\n\0"):
        raise ValueError(f"invalid folder name: {name!r}")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return SEPARATOR.join(parts)


def _keywords(flags: Iterable[str]) -> set[str]:
    return {f for f in flags if not f.startswith("\\")}


def _info(flags: Iterable[str]) -> str:
    return _COLON + "2," + "".join(sorted(_FLAG_LETTERS[f] for f in flags if f in _FLAG_LETTERS))


def _base_name(filename: str) -> str:
    return filename.split(_COLON, 1)[0]


def _flags_from_info(filename: str) -> set[str]:
    _, sep, info = filename.partition(_COLON + "2,")
    return {_LETTER_FLAGS[c] for c in info if c in _LETTER_FLAGS} if sep else set()


def _write_message_file(folder: Path, data: bytes, flags: frozenset[str], when: datetime) -> Path:
    now = time.time()
    lf_data = data.replace(b"\r\n", b"\n")
    base = (f"{int(now)}.M{int(now * 1e6) % 1000000}P{os.getpid()}Q{next(_sequence)}."
            f"{_hostname},S={len(lf_data)},W={len(data)}")
    scratch = folder / "tmp" / base
    scratch.write_bytes(lf_data)
    stamp = when.timestamp()
    os.utime(scratch, (stamp, stamp))
    system = [f for f in flags if f in _FLAG_LETTERS]
    target = folder / "cur" / (base + _info(flags)) if system else folder / "new" / base
    os.replace(scratch, target)
    return target
