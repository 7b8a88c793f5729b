"""A private, self-contained Dovecot instance for the integration tests.

``DovecotServer(runtime_dir)`` writes everything it needs under ``runtime_dir`` (config, TLS
material, passwd-file, mail stores, logs, sockets) and never reads ``/etc/dovecot``. It listens on
127.0.0.1 only, on free ports picked at start-up, and is stopped by the PID of its master process.

Running it needs root (Dovecot switches to the ``vmail`` user for mail processes, and the preauth
``imap`` binary needs root to do the same), Dovecot's ``imap`` and ``pop3`` services, and the
``openssl`` command. :func:`missing_requirements` says what is missing, if anything.

Layout of ``runtime_dir``::

    dovecot.conf   passwd      tls/{ca,server}.{pem,key}
    run/           (base_dir: master.pid, sockets)     state/ (state_dir)
    log/dovecot.log   log/master.out   log/imap-preauth.log
    home/USER/Maildir (Maildir++ store; folder "A/B" lives in ".A.B")
"""

from __future__ import annotations

import base64
import contextlib
import grp
import itertools
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Union

from .processes import log_tails, pid_alive, sbin_binary

__all__ = [
    "IMAP_BINARY",
    "MAIL_USER",
    "USERS",
    "DovecotError",
    "DovecotServer",
    "missing_requirements",
]

#: Test accounts: name -> password. ``awk``'s password is built to trip up quoting and
#: encoding (spaces, ``"``, ``\\``, braces, ``%``, ``*``, parentheses and a non-ASCII letter);
#: ``awk7`` has the same awkward characters minus the non-ASCII one, because the stdlib's
#: ``IMAP4.login`` encodes its arguments as ASCII and so cannot send ``awk``'s password.
USERS: dict[str, str] = {
    "alice": "alicepass",
    "bob": "bobpass",
    "awk": 'p a"s\\s{1}%*()\u00e9',
    "awk7": 'p a"s\\s{1}%*() 7',
}
#: Users whose userdb entry carries ``admin=yes`` (allowed to SETQUOTA).
ADMINS = frozenset({"alice"})

MAIL_USER = "vmail"
IMAP_BINARY = "/usr/lib/dovecot/imap"
POP3_BINARY = "/usr/lib/dovecot/pop3"
SERVICES = ("imap", "imaps", "pop3", "pop3s")

# Dovecot's own unprivileged users; the Debian packages create them.
_INTERNAL_USER = "dovecot"
_LOGIN_USER = "dovenull"

# Unix socket paths are limited to 108 bytes; the longest socket Dovecot puts in base_dir is
# about 30 characters below it, so keep base_dir well short of the limit.
_MAX_BASE_DIR = 70
# Characters that are safe unquoted in a Dovecot config value, a passwd-file path and a shell word,
# and that Dovecot's %-expansion leaves alone.
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._+-]+")
_MAILDIR_FLAGS = {
    "\\draft": "D",
    "\\flagged": "F",
    "\\answered": "R",
    "\\seen": "S",
    "\\deleted": "T",
}
_delivery_counter = itertools.count(1)

PathLike = Union[str, "os.PathLike[str]"]


class DovecotError(RuntimeError):
    """The private Dovecot could not be set up, started or stopped."""


def missing_requirements() -> str | None:
    """Why a :class:`DovecotServer` cannot run here, or ``None`` if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the private Dovecot server needs root (to switch to the vmail user)"
    if not os.access(sbin_binary("dovecot"), os.X_OK):
        return "Dovecot is not installed (no 'dovecot' binary); see .ci/install-system-deps.sh"
    for binary in (IMAP_BINARY, POP3_BINARY):
        if not os.access(binary, os.X_OK):
            return f"Dovecot's {binary} is missing; install dovecot-imapd and dovecot-pop3d"
    if shutil.which("openssl") is None:
        return "the openssl command is not installed (needed for the test certificates)"
    for name in (_INTERNAL_USER, _LOGIN_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            return f"Dovecot's system user {name!r} is missing; reinstall dovecot-core"
    return None


def _free_ports(count: int, host: str) -> list[int]:
    """``count`` distinct ports that were free on ``host`` a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _cmdline(pid: int) -> str:
    """``pid``'s command line, arguments joined by spaces ("" if it cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of ``pid`` (read from /proc; empty where /proc is missing)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rpartition(")")[2].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` seconds for ``pids`` to exit; return those still alive."""
    remaining = list(pids)
    deadline = time.monotonic() + timeout
    while True:
        remaining = [pid for pid in remaining if pid_alive(pid)]
        if not remaining or time.monotonic() >= deadline:
            return remaining
        time.sleep(0.02)


def _encode_mutf7(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 section 5.1.3), as Dovecot stores folder names on disk."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ","))
            out.append("-")
            pending.clear()

    for char in name:
        if " " <= char <= "~":
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _maildir_flags(flags: str) -> str:
    """Maildir info letters for ``flags``: letters (``"FS"``) or IMAP system flag names."""
    letters: set[str] = set()
    if "\\" in flags:
        for word in flags.split():
            letter = _MAILDIR_FLAGS.get(word.lower())
            if letter is None:
                raise ValueError(f"flag {word!r} has no Maildir letter (keywords are unsupported)")
            letters.add(letter)
    else:
        for letter in flags.replace(" ", ""):
            if letter not in "DFPRST":
                raise ValueError(f"Maildir flag letter {letter!r} is not one of D F P R S T")
            letters.add(letter)
    return "".join(sorted(letters))


class DovecotServer:
    """A private Dovecot serving IMAP, IMAPS, POP3 and POP3S on 127.0.0.1.

    ``runtime_dir`` must be a directory (created if missing) whose path every user can traverse
    (Dovecot's unprivileged processes read files under it) and which contains only characters from
    ``[A-Za-z0-9/._+-]``. Nothing is written until :meth:`start`.

    After :meth:`start`: ``host`` (127.0.0.1), ``ports`` (service name -> port for ``imap``,
    ``imaps``, ``pop3``, ``pop3s``; the plaintext ones offer STARTTLS/STLS and accept plaintext
    logins), ``pid`` (the master's), ``ca_file`` (the test CA; the certificate is for
    ``localhost``, ``127.0.0.1`` and ``::1``) and ``users`` (name -> password).

    Mail is Maildir++ under ``home/USER/Maildir`` with ``/`` as the hierarchy separator; the
    mailboxes Drafts, Junk, Sent and Trash carry SPECIAL-USE flags but are not created.
    ``alice`` may SETQUOTA; Dovecot stores the limit in a per-user dict but the ``count`` quota
    backend keeps enforcing and reporting its configured limit (100 MiB), so GETQUOTA does not
    reflect a SETQUOTA.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        runtime_dir: PathLike,
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.runtime_dir = Path(runtime_dir).absolute()
        if not _SAFE_PATH.fullmatch(str(self.runtime_dir)):
            raise ValueError(
                f"runtime_dir {str(self.runtime_dir)!r} must use only [A-Za-z0-9/._+-] characters"
            )
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.users: dict[str, str] = dict(USERS)
        #: process titles read "dovecot-NAME/imap [alice 127.0.0.1]"
        self.instance_name = f"mailwire-test-{secrets.token_hex(4)}"
        self.ports: dict[str, int] = {}
        self.pid: int | None = None
        self.config_path = self.runtime_dir / "dovecot.conf"
        self.passwd_path = self.runtime_dir / "passwd"
        self.base_dir = self.runtime_dir / "run"
        self.state_dir = self.runtime_dir / "state"
        self.log_dir = self.runtime_dir / "log"
        self.log_path = self.log_dir / "dovecot.log"
        self.master_output_path = self.log_dir / "master.out"
        self.preauth_log_path = self.log_dir / "imap-preauth.log"
        self.tls_dir = self.runtime_dir / "tls"
        self.ca_file = str(self.tls_dir / "ca.pem")
        self.cert_file = str(self.tls_dir / "server.pem")
        self.key_file = str(self.tls_dir / "server.key")
        self.home_root = self.runtime_dir / "home"
        if len(str(self.base_dir)) > _MAX_BASE_DIR:
            raise ValueError(
                f"runtime_dir {str(self.runtime_dir)!r} is too long for Dovecot's unix sockets "
                f"(keep it under {_MAX_BASE_DIR - 4} characters)"
            )
        self._uid = -1
        self._gid = -1
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the master process started by :meth:`start` is still alive."""
        return self.pid is not None and pid_alive(self.pid)

    def start(self) -> None:
        """Write the configuration, start Dovecot and wait until every service answers."""
        if self.running:
            raise DovecotError(f"this Dovecot is already running (master PID {self.pid})")
        problem = missing_requirements()
        if problem is not None:
            raise DovecotError(problem)
        self._prepare()
        pid_file = self.base_dir / "master.pid"
        with contextlib.suppress(FileNotFoundError):
            stale = int(pid_file.read_text().strip() or "0")
            if stale and pid_alive(stale):
                raise DovecotError(
                    f"a Dovecot (PID {stale}) already runs from {self.base_dir}; stop it first"
                )
            pid_file.unlink()
        for attempt in range(3):
            if attempt:
                # a free port was taken between picking it and Dovecot binding it: pick again
                self.ports = dict(zip(SERVICES, _free_ports(len(SERVICES), self.host)))
                self.config_path.write_text(self._config_text(), encoding="utf-8")
            try:
                self._launch(pid_file)
                return
            except DovecotError as exc:
                with contextlib.suppress(DovecotError):
                    self.stop()
                if "Address already in use" not in str(exc) or attempt == 2:
                    raise
            except BaseException:
                with contextlib.suppress(DovecotError):
                    self.stop()
                raise

    def _launch(self, pid_file: Path) -> None:
        deadline = time.monotonic() + self.start_timeout
        # -F keeps the master in the foreground as our child, so stop() can reap it at once (a
        # daemonized master is left to PID 1, which may take its time to reap the zombie). The
        # master keeps the descriptors it was started with for life: give it files, not pipes.
        with open(self.master_output_path, "ab") as output:
            self._process = subprocess.Popen(
                [sbin_binary("dovecot"), "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,  # no terminal signals (Ctrl-C) straight to the master
            )
        self.pid = self._read_pid(pid_file, deadline)
        self._wait_ready(deadline)

    def stop(self) -> None:
        """SIGTERM the master (and wait for it and its children), SIGKILL as a last resort."""
        pid = self.pid
        process, self._process = self._process, None
        if pid is None and process is not None:
            pid = process.pid
        if pid is None:
            return
        family = [pid, *_descendants(pid)]
        loggers = [child for child in family[1:] if _cmdline(child).endswith("/log")]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        # A few milliseconds into its shutdown the master finds its log process still running,
        # sends it SIGQUIT and then sleeps a whole second. Ending the log process right away
        # (before the master gets there) makes the shutdown take about 0.1 s.
        for logger in loggers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(logger, signal.SIGTERM)
        left = _wait_gone(family, self.stop_timeout)
        for straggler in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(straggler, signal.SIGKILL)
        left = _wait_gone(left, 2.0)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
        self.pid = None
        if left:
            raise DovecotError(f"Dovecot processes {left} survived SIGKILL")

    def _read_pid(self, pid_file: Path, deadline: float) -> int:
        while True:
            self._check_master()
            try:
                text = pid_file.read_text().strip()
                if text:
                    return int(text)
            except FileNotFoundError:
                pass
            if time.monotonic() >= deadline:
                raise DovecotError(f"Dovecot wrote no {pid_file}\n{self.logs()}")
            time.sleep(0.01)

    def _wait_ready(self, deadline: float) -> None:
        """Wait until every port accepts and the plaintext services have sent their greeting.

        Reading the POP3 greeting up to its APOP timestamp also proves that the auth process is
        up (pop3-login only offers the timestamp once it knows the mechanisms).
        """
        pending = dict(self.ports)
        problems: dict[str, str] = {}
        while pending:
            for service, port in list(pending.items()):
                try:
                    self._probe(service, port, deadline)
                except OSError as exc:
                    problems[service] = f"{type(exc).__name__}: {exc}"
                else:
                    del pending[service]
            if not pending:
                return
            self._check_master()
            if time.monotonic() >= deadline:
                detail = "; ".join(f"{s} port {pending[s]}: {problems.get(s)}" for s in pending)
                raise DovecotError(
                    f"Dovecot did not become ready within {self.start_timeout} s ({detail})\n"
                    + self.logs()
                )
            time.sleep(0.02)

    def _check_master(self) -> None:
        process = self._process
        if process is not None and process.poll() is not None:
            raise DovecotError(
                f"dovecot -F -c {self.config_path} exited with status {process.returncode} "
                f"during start\n{self.logs()}"
            )

    def _probe(self, service: str, port: int, deadline: float) -> None:
        """Read the greeting (through TLS on the TLS ports), so each login process has finished
        its start-up work before start() returns (a stop() racing a half-started login process
        makes the master wait seconds for it)."""
        timeout = max(0.05, min(1.0, deadline - time.monotonic()))
        with contextlib.ExitStack() as stack:
            sock = stack.enter_context(socket.create_connection((self.host, port), timeout=timeout))
            if service.endswith("s"):
                context = ssl.create_default_context(cafile=self.ca_file)
                sock = stack.enter_context(context.wrap_socket(sock, server_hostname="localhost"))
            greeting = b""
            while b"\n" not in greeting:
                chunk = sock.recv(512)
                if not chunk:
                    raise ConnectionError(f"connection closed after {greeting!r}")
                greeting += chunk
            wanted = b"* OK" if service.startswith("imap") else b"+OK"
            if not greeting.startswith(wanted):
                raise ConnectionError(f"unexpected greeting {greeting!r}")
            if service == "pop3" and b"<" not in greeting:
                raise ConnectionError(f"POP3 greeting has no APOP timestamp yet: {greeting!r}")

    # -- set-up -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        self._uid, self._gid = _ensure_mail_user()
        for directory in (self.runtime_dir, self.state_dir, self.log_dir, self.tls_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.runtime_dir.chmod(0o755)
        self._check_traversable()
        self.home_root.mkdir(exist_ok=True)
        self.home_root.chmod(0o755)
        for user in self.users:
            self._make_home(user)
        if not (Path(self.cert_file).exists() and Path(self.ca_file).exists()):
            self._make_certificates()
        self.preauth_log_path.touch()
        self._write_passwd()
        self.ports = dict(zip(SERVICES, _free_ports(len(SERVICES), self.host)))
        self.config_path.write_text(self._config_text(), encoding="utf-8")

    def _check_traversable(self) -> None:
        for directory in (self.runtime_dir, *self.runtime_dir.parents):
            if not directory.stat().st_mode & 0o001:
                raise DovecotError(
                    f"{directory} is not traversable by other users, so Dovecot's unprivileged "
                    f"processes cannot reach {self.runtime_dir}; use a runtime_dir under a "
                    "world-traversable directory (e.g. tempfile.mkdtemp() then chmod 0o755)"
                )

    def _make_certificates(self) -> None:
        """A test CA and a localhost leaf signed by it (a lone self-signed leaf fails
        Python 3.13's VERIFY_X509_STRICT)."""
        tls = self.tls_dir
        ca_key, ca_pem = tls / "ca.key", tls / "ca.pem"
        csr, ext = tls / "server.csr", tls / "server.ext"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        ca_ext = tls / "ca.ext"
        ca_ext.write_text(
            "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\n[dn]\n"
            "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
            encoding="ascii",
        )
        ext.write_text(
            "basicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n",
            encoding="ascii",
        )
        _run(
            "openssl", "req", "-x509", *ec, "-config", str(ca_ext), "-days", "3650",
            "-subj", "/O=mailwire tests/CN=mailwire test CA",
            "-keyout", str(ca_key), "-out", str(ca_pem),
        )  # fmt: skip
        _run(
            "openssl", "req", "-new", *ec, "-config", str(ca_ext), "-subj", "/CN=localhost",
            "-keyout", self.key_file, "-out", str(csr),
        )  # fmt: skip
        _run(
            "openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
            "-set_serial", str(secrets.randbits(63)), "-days", "825", "-extfile", str(ext),
            "-out", self.cert_file,
        )  # fmt: skip
        for private in (ca_key, Path(self.key_file)):
            private.chmod(0o600)

    def _write_passwd(self) -> None:
        lines = []
        for user, password in self.users.items():
            if ":" in password or "\n" in password or ":" in user:
                raise DovecotError(f"passwd-file cannot hold user {user!r}'s password")
            extra = "userdb_admin=yes" if user in ADMINS else ""
            home = self.home(user)
            lines.append(f"{user}:{{PLAIN}}{password}:{self._uid}:{self._gid}::{home}::{extra}\n")
        self.passwd_path.write_text("".join(lines), encoding="utf-8")
        # read by the auth process, which runs as Dovecot's internal user
        os.chown(self.passwd_path, 0, grp.getgrnam(_INTERNAL_USER).gr_gid)
        self.passwd_path.chmod(0o640)

    def _config_text(self) -> str:
        uid, gid = self._uid, self._gid
        p = self.ports
        # fmt: off
        return f"""\
# Generated by tests/support/dovecot.py: a private test instance, self-contained.
instance_name = {self.instance_name}
base_dir = {self.base_dir}
state_dir = {self.state_dir}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = imap pop3
listen = {self.host}
shutdown_clients = yes
# process titles name the user ("imap [alice 127.0.0.1]"): clear() waits for those sessions
verbose_proctitle = yes
default_internal_user = {_INTERNAL_USER}
default_login_user = {_LOGIN_USER}

ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
ssl_min_protocol = TLSv1.2

disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 digest-md5 scram-sha-1 scram-sha-256 apop
auth_failure_delay = 0
auth_cache_size = 0
auth_verbose = yes

# Failed logins answer at once. auth_failure_delay = 0 still leaves the reply queued for up to
# 0.5 s unless the request carries "nodelay", and a plaintext password mismatch drops the fields
# of the failing passdb. So a first passdb accepts anyone *only* to attach nodelay, and its
# continue-fail result means that success alone can never authenticate: the passwd-file passdb
# below must still accept the password.
passdb {{
  driver = static
  args = nopassword=yes nodelay=yes
  result_success = continue-fail
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_path}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_path}
}}

mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:~/Maildir
mail_fsync = never
mail_plugins = quota acl zlib
mail_attribute_dict = file:%h/Maildir/dovecot-attributes
imap_metadata = yes
mail_max_userip_connections = 500

namespace inbox {{
  inbox = yes
  prefix =
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}

plugin {{
  quota = count:User quota:ns=
  quota_vsizes = yes
  quota_rule = *:storage=100M
  quota_set = dict:file:%h/dovecot-quota-set
  acl = vfile
}}

protocol imap {{
  mail_plugins = $mail_plugins imap_quota imap_acl imap_zlib
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {p["imap"]}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {p["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {self.host}
    port = {p["pop3"]}
  }}
  inet_listener pop3s {{
    address = {self.host}
    port = {p["pop3s"]}
    ssl = yes
  }}
}}
# No growing penalty for failed logins from one IP (tests fail logins on purpose).
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        # fmt: on

    # -- users and mail ---------------------------------------------------------------------

    def _check_user(self, user: str) -> None:
        if user not in self.users:
            raise KeyError(f"unknown test user {user!r}; known: {sorted(self.users)}")

    def home(self, user: str) -> Path:
        """The user's home directory (holds ``Maildir`` and per-user dicts)."""
        self._check_user(user)
        return self.home_root / user

    def maildir(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir directory of ``folder`` (``/`` separates levels) for ``user``."""
        root = self.home(user) / "Maildir"
        if folder.upper() == "INBOX":
            return root
        if not folder or any(part in ("", ".", "..") for part in folder.split("/")):
            raise ValueError(f"bad folder name {folder!r}")
        if "." in folder or "\x00" in folder:
            raise ValueError(f"folder {folder!r}: '.' is the on-disk level separator (Maildir++)")
        return root / ("." + _encode_mutf7(folder).replace("/", "."))

    def _make_home(self, user: str) -> None:
        home = self.home(user)
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, self._uid, self._gid)
        home.chmod(0o700)
        self._make_maildir(self.maildir(user))

    def _make_maildir(self, path: Path) -> None:
        fresh = [path] if not path.exists() else []
        path.mkdir(exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            if not (path / sub).exists():
                (path / sub).mkdir()
                fresh.append(path / sub)
        if path.name.startswith("."):
            marker = path / "maildirfolder"
            if not marker.exists():
                marker.touch()
                fresh.append(marker)
        for item in fresh:
            os.chown(item, self._uid, self._gid)
            item.chmod(0o700 if item.is_dir() else 0o600)

    def _ids(self) -> None:
        if self._uid < 0:
            self._uid, self._gid = _ensure_mail_user()

    def deliver(
        self,
        user: str,
        message: bytes,
        folder: str = "INBOX",
        flags: str = "",
        *,
        date: float | None = None,
    ) -> Path:
        """Put ``message`` into ``user``'s ``folder`` as a Maildir file; return its path.

        Without ``flags`` the file goes to ``new/`` (a \\Recent, unseen message); with flags, to
        ``cur/`` with the ``:2,FLAGS`` info suffix. ``flags`` is Maildir letters (``"FS"``; D F R
        S T are \\Draft \\Flagged \\Answered \\Seen \\Deleted, and Dovecot shows no IMAP flag
        for P) or IMAP system flag names (``"\\Seen \\Flagged"``); keywords are not supported.
        ``date`` (a POSIX time) becomes the file's mtime, which Dovecot reports as the
        INTERNALDATE. The folder is created if missing. Dovecot picks the file up on its next
        sync (the next session, or the next command that syncs in an open one).
        """
        if not isinstance(message, (bytes, bytearray, memoryview)):
            raise TypeError(f"message must be bytes, not {type(message).__name__}")
        self._ids()
        data = bytes(message)
        letters = _maildir_flags(flags)
        target = self.maildir(user, folder)
        self._make_home(user)
        self._make_maildir(target)
        now = time.time()
        host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"
        unique = (
            f"{int(now)}.M{int(now % 1 * 1_000_000)}P{os.getpid()}Q{next(_delivery_counter)}"
            f"R{secrets.token_hex(4)}.{host},S={len(data)}"
        )
        temporary = target / "tmp" / unique
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chown(temporary, self._uid, self._gid)
            if date is not None:
                os.utime(temporary, (date, date))
            final = target / "cur" / f"{unique}:2,{letters}" if letters else target / "new" / unique
            os.rename(temporary, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            raise
        return final

    def clear(self, user: str) -> None:
        """Empty ``user``'s mail store: every folder, index, subscription, ACL, metadata and
        quota limit set with SETQUOTA. Leaves an empty INBOX."""
        self._ids()
        home = self.home(user)
        # A session that just logged out may still be writing its index files; let it finish
        # so it cannot leave stale indexes in the new, empty store.
        self._wait_sessions_closed(user, timeout=2.0)
        if home.exists():
            shutil.rmtree(home)
        self._make_home(user)

    def sessions(self, user: str) -> list[int]:
        """PIDs of the imap/pop3 processes now serving ``user`` through the listeners."""
        self._check_user(user)
        if self.pid is None:
            return []
        title = re.compile(r"/(?:imap|pop3) \[" + re.escape(user) + r" ")
        return [pid for pid in _descendants(self.pid) if title.search(_cmdline(pid))]

    def _wait_sessions_closed(self, user: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.sessions(user) and time.monotonic() < deadline:
            time.sleep(0.01)

    def clear_all(self) -> None:
        """:meth:`clear` every test user."""
        for user in self.users:
            self.clear(user)

    # -- preauth stream ---------------------------------------------------------------------

    def preauth_imap_argv(self, user: str) -> list[str]:
        """argv of Dovecot's imap binary speaking preauthenticated IMAP on stdin/stdout."""
        self._check_user(user)
        return [IMAP_BINARY, "-c", str(self.config_path), "-u", user]

    def preauth_imap_command(self, user: str) -> str:
        """A shell command for ``IMAP4_stream``: the preauth imap binary, stderr to a log."""
        argv = " ".join(shlex.quote(arg) for arg in self.preauth_imap_argv(user))
        return f"exec {argv} 2>>{shlex.quote(str(self.preauth_log_path))}"

    # -- diagnostics ------------------------------------------------------------------------

    def logs(self, lines: int = 60) -> str:
        """The last ``lines`` lines of Dovecot's log, master output and preauth log."""
        paths = (self.log_path, self.master_output_path, self.preauth_log_path)
        return log_tails(paths, lines, "(no Dovecot logs yet)")

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.pid else "stopped"
        return f"<DovecotServer {self.runtime_dir} {state} ports={self.ports}>"


def _run(*argv: str) -> None:
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise DovecotError(
            f"{shlex.join(argv)} exited with {result.returncode}: {result.stderr.strip()}"
        )


def _ensure_mail_user() -> tuple[int, int]:
    """Create the ``vmail`` system user and group if missing; return their uid and gid."""
    # Parallel test sessions (tox runs every env at once) may race here: useradd then fails
    # on /etc/passwd's lock or finds the user already made, so look again a few times.
    attempts = 6
    for attempt in range(attempts):
        try:
            entry = pwd.getpwnam(MAIL_USER)
            return entry.pw_uid, grp.getgrnam(MAIL_USER).gr_gid
        except KeyError:
            if attempt == attempts - 1:
                raise DovecotError(f"could not create the {MAIL_USER!r} user") from None
            if attempt:
                time.sleep(0.2 * attempt)
        try:
            grp.getgrnam(MAIL_USER)
            group_args = ["--gid", MAIL_USER]
        except KeyError:
            group_args = ["--user-group"]
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        result = subprocess.run(
            [useradd, "--system", *group_args, "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", MAIL_USER],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )  # fmt: skip
        # 9: the name appeared meanwhile; 1 and 10: another useradd holds the lock. Both are
        # settled by looking again; anything else is a real failure.
        if result.returncode not in (0, 1, 9, 10):
            raise DovecotError(f"useradd {MAIL_USER} failed: {result.stderr.strip()}")
    raise AssertionError("unreachable")
