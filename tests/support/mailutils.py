"""A private GNU Mailutils (imap4d and pop3d, 3.15) for the integration tests.

Neither server runs as a daemon. ``imap4d --inetd`` speaks IMAP on its stdin and stdout, which is
what ``IMAP4_stream`` wants: :meth:`MailutilsServer.imap_command` is that command. poplib has no
stream class, so :meth:`MailutilsServer.start` listens on 127.0.0.1 (a free port) and hands every
accepted connection to a fresh ``pop3d --inetd`` as its stdin and stdout, like inetd would.

Everything lives under ``runtime_dir`` and nothing under /etc is read: each program gets its own
configuration file (``--config-file`` implies ``--no-config``), users come from a private
virtual-domain password file (log in as ``alice@example.org``) whose uid and gid are the test
process's own, so no user is created and root is not needed. Mail is mbox, the format Mailutils
handles best: ``spool/INBOX`` is the INBOX of both servers, other mailboxes are files in
``folders/``.

Layout of ``runtime_dir``::

    imap4d.conf  pop3d.conf  vdomain/example.org (passwd(5) format, SHA-512 crypt)
    spool/INBOX  folders/NAME  log/imap4d.log  log/pop3d.log
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import NamedTuple, Union

from .processes import log_tails, pid_alive, sbin_binary

__all__ = [
    "DOMAIN",
    "LOGIN",
    "PASSWORD",
    "MailutilsError",
    "MailutilsServer",
    "Message",
    "missing_requirements",
]

DOMAIN = "example.org"
USER = "alice"
#: Virtual-domain users log in with the domain part; the server strips it to find the passwd file.
LOGIN = f"{USER}@{DOMAIN}"
PASSWORD = "mailwire secret 7"
# `openssl passwd -6 -salt mailwire.test 'mailwire secret 7'`, fixed here so that making the
# password file needs neither openssl nor the crypt module (gone in Python 3.13).
_PASSWORD_HASH = (
    "$6$mailwire.test$3It8BYjH5kEzsCyVQwTIEML8TcGeu1AlRMUCm1.i4db0xC2KWbtAtHcFpd/qIv29iCGKKJXaa"
    "AtnnIdiSJf4j1"
)

# Characters that need no quoting in a Mailutils configuration string or a shell word.
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._+-]+")

PathLike = Union[str, "os.PathLike[str]"]


class MailutilsError(RuntimeError):
    """The private Mailutils servers could not be set up, started or stopped."""


def missing_requirements() -> str | None:
    """Why a :class:`MailutilsServer` cannot run here, or ``None`` if it can."""
    for name, package in (("imap4d", "mailutils-imap4d"), ("pop3d", "mailutils-pop3d")):
        if not os.access(sbin_binary(name), os.X_OK):
            return f"GNU Mailutils' {name} is not installed (Debian package {package})"
    return None


class Message(NamedTuple):
    """A message as the mbox holds it: ``sender`` and ``date`` make its ``From_`` line (the
    INTERNALDATE, always UTC there), ``text`` is the message itself with LF line endings."""

    sender: str
    date: str  # asctime form, "Tue Jan  2 03:04:05 2024"
    text: bytes


def mbox_bytes(messages: Iterable[Message], uid_validity: int | None = None) -> bytes:
    """An mbox holding ``messages``.

    With ``uid_validity`` the first message carries an ``X-IMAPbase`` header and each one an
    ``X-UID`` header, as imap4d writes them; without them imap4d takes the current time as the
    UIDVALIDITY, which would make two runs differ.
    """
    items = list(messages)
    out = []
    for uid, message in enumerate(items, 1):
        text = message.text
        if b"\r" in text:
            # imap4d keeps a CR as part of its line ("\r\r\n") and misses the header's end
            raise ValueError("mbox messages are stored with LF line endings only")
        if not text.endswith(b"\n"):
            raise ValueError("an mbox message must end with a newline")
        if re.search(rb"^>*From ", text, re.MULTILINE):
            raise ValueError("a line starting with 'From ' would need mbox quoting")
        head, sep, body = text.partition(b"\n\n")
        if not sep:
            raise ValueError("the message needs a blank line after its header")
        extra = b""
        if uid_validity is not None:
            if uid == 1:
                extra += b"X-IMAPbase: %d %d\n" % (uid_validity, len(items) + 1)
            extra += b"X-UID: %d\n" % uid
        out.append(b"From %s %s\n" % (message.sender.encode(), message.date.encode()))
        out.append(head + b"\n" + extra + b"\n" + body + b"\n")
    return b"".join(out)


class MailutilsServer:
    """GNU imap4d (through :meth:`imap_command`) and pop3d (on ``host``:``port`` once started)
    over one private mbox store. :meth:`seed` replaces the store's contents.

    ``runtime_dir`` is created if missing; its path may use only ``[A-Za-z0-9/._+-]``.
    """

    host = "127.0.0.1"

    def __init__(self, runtime_dir: PathLike, *, stop_timeout: float = 5.0) -> None:
        self.runtime_dir = Path(runtime_dir).absolute()
        if not _SAFE_PATH.fullmatch(str(self.runtime_dir)):
            raise ValueError(
                f"runtime_dir {str(self.runtime_dir)!r} must use only [A-Za-z0-9/._+-] characters"
            )
        self.stop_timeout = stop_timeout
        self.login = LOGIN
        self.password = PASSWORD
        self.spool_dir = self.runtime_dir / "spool"
        self.inbox_path = self.spool_dir / "INBOX"
        self.folders_dir = self.runtime_dir / "folders"
        self.vdomain_dir = self.runtime_dir / "vdomain"
        self.log_dir = self.runtime_dir / "log"
        self.imap_config = self.runtime_dir / "imap4d.conf"
        self.pop3_config = self.runtime_dir / "pop3d.conf"
        self.imap_log = self.log_dir / "imap4d.log"
        self.pop3_log = self.log_dir / "pop3d.log"
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sessions: list[subprocess.Popen[bytes]] = []
        self._accept_error: BaseException | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> MailutilsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the configuration and start accepting POP3 connections on a free port."""
        if self._thread is not None:
            raise MailutilsError("this Mailutils server is already started")
        problem = missing_requirements()
        if problem is not None:
            raise MailutilsError(problem)
        for directory in (self.spool_dir, self.folders_dir, self.vdomain_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_passwd()
        self.imap_config.write_text(self._config_text("imap4d"), encoding="utf-8")
        self.pop3_config.write_text(self._config_text("pop3d"), encoding="utf-8")
        for program, config in (("imap4d", self.imap_config), ("pop3d", self.pop3_config)):
            lint = subprocess.run(
                [sbin_binary(program), f"--config-file={config}", "--config-lint"],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            if lint.returncode != 0:
                raise MailutilsError(f"{program} rejects {config}: {lint.stderr.strip()}")
        self.seed({})
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(16)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._accept_loop, name="mailutils-pop3d-inetd", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then end every pop3d still running (by PID) and reap it."""
        thread, self._thread = self._thread, None
        if thread is not None and self._wake_w is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            thread.join(self.stop_timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._listener = self._wake_r = self._wake_w = None
        self.port = None
        left = self._end_sessions()
        if thread is not None and thread.is_alive():
            raise MailutilsError("the POP3 accept loop did not stop")
        if left:
            raise MailutilsError(f"pop3d processes {left} survived SIGKILL")

    def _end_sessions(self) -> list[int]:
        """SIGTERM every pop3d still running (a client still connected would keep it waiting
        for a command), wait ``stop_timeout``, SIGKILL what is left; return PIDs that survive."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        running = [process for process in sessions if process.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        left = []
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(2.0)
            if process.poll() is None or pid_alive(process.pid):
                left.append(process.pid)
        return left

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every pop3d session has ended: pop3d rewrites the mbox after QUIT, so a
        new :meth:`seed` must not overlap it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            sessions = list(self._sessions)
        for process in sessions:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise MailutilsError(f"pop3d (PID {process.pid}) is still running") from None
        with self._lock:
            self._sessions = [p for p in self._sessions if p.poll() is None]

    def session_pids(self) -> list[int]:
        """PIDs of the pop3d processes started for connections and not yet reaped."""
        with self._lock:
            return [p.pid for p in self._sessions if p.poll() is None]

    def check(self) -> None:
        """Raise what went wrong in the accept loop, if anything."""
        if self._accept_error is not None:
            raise MailutilsError(f"POP3 accept loop failed: {self._accept_error!r}")

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake_r
        assert listener is not None and wake is not None
        argv = [sbin_binary("pop3d"), f"--config-file={self.pop3_config}", "--inetd"]
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if wake in ready:
                    return
                try:
                    conn, _ = listener.accept()
                except OSError as exc:
                    self._accept_error = exc
                    return
                # pop3d writes a reply in several small pieces; with Nagle's algorithm each piece
                # after the first waits for the client's delayed ACK (40 ms per command)
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    with conn, open(self.pop3_log, "ab") as log:
                        process = subprocess.Popen(
                            argv,
                            stdin=conn.fileno(),
                            stdout=conn.fileno(),
                            stderr=log,
                            start_new_session=True,  # no terminal signals (Ctrl-C) straight to it
                        )
                except OSError as exc:
                    self._accept_error = exc
                    return
                with self._lock:
                    self._sessions.append(process)

    # -- the store --------------------------------------------------------------------------

    def seed(
        self,
        mailboxes: Mapping[str, Sequence[Message]],
        uid_validity: Mapping[str, int] | None = None,
    ) -> None:
        """Make the store hold exactly ``mailboxes`` (name -> messages; "INBOX" is the spool
        file, any other name a file in ``folders/``). ``uid_validity`` gives mailboxes a fixed
        UIDVALIDITY (see :func:`mbox_bytes`). INBOX always exists, empty if not given."""
        validity = dict(uid_validity or {})
        if self.folders_dir.exists():
            shutil.rmtree(self.folders_dir)
        self.folders_dir.mkdir(parents=True)
        for path in self.spool_dir.iterdir():
            path.unlink()
        contents = {"INBOX": (), **mailboxes}
        for name, messages in contents.items():
            if name != "INBOX" and not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"mailbox name {name!r} is not a plain word")
            path = self.inbox_path if name == "INBOX" else self.folders_dir / name
            path.write_bytes(mbox_bytes(messages, validity.get(name)))

    def mailbox_bytes(self, name: str = "INBOX") -> bytes:
        """The mbox file of mailbox ``name`` as it is now on disk."""
        path = self.inbox_path if name == "INBOX" else self.folders_dir / name
        return path.read_bytes()

    # -- IMAP -------------------------------------------------------------------------------

    def imap_argv(self) -> list[str]:
        return [sbin_binary("imap4d"), f"--config-file={self.imap_config}", "--inetd"]

    def imap_command(self) -> str:
        """A shell command for ``IMAP4_stream``: imap4d on stdin/stdout, stderr to its log.
        ``exec`` makes the client's ``process`` imap4d itself, so its PID is the server's."""
        argv = " ".join(shlex.quote(arg) for arg in self.imap_argv())
        return f"exec {argv} 2>>{shlex.quote(str(self.imap_log))}"

    # -- set-up -----------------------------------------------------------------------------

    def _write_passwd(self) -> None:
        # name:hash:uid:gid:gecos:home:shell; the maildrop is HOME/INBOX
        entry = f"{USER}:{_PASSWORD_HASH}:{os.getuid()}:{os.getgid()}:mailwire:{self.spool_dir}:"
        path = self.vdomain_dir / DOMAIN
        path.write_text(entry + "/bin/false\n", encoding="utf-8")
        path.chmod(0o600)

    def _config_text(self, program: str) -> str:
        common = f"""\
# Generated by tests/support/mailutils.py for {program}: a private test instance.
logging {{ syslog false; }};
auth {{ authorization virtdomain; authentication generic; }};
virtdomain {{ passwd-dir "{self.vdomain_dir}"; }};
mailbox {{ mailbox-type mbox; }};
# the default lock directory is /var/lock/subsys/mail
mandatory-locking {{ enable false; }};
# otherwise /etc/hosts.allow and /etc/hosts.deny decide who may connect
tcp-wrappers {{ enable false; }};
"""
        if program == "pop3d":
            return common
        return common + f"""\
namespace personal {{ prefix "" {{ directory "{self.folders_dir}"; delimiter "/"; }}; }};
"""

    # -- diagnostics ------------------------------------------------------------------------

    def logs(self, lines: int = 40) -> str:
        return log_tails((self.imap_log, self.pop3_log), lines, "(no Mailutils logs yet)")

    def __repr__(self) -> str:
        state = f"pop3 port {self.port}" if self.port else "stopped"
        return f"<MailutilsServer {self.runtime_dir} {state}>"
