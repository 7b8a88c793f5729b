"""Helpers the private-server fixtures (Dovecot, GNU Mailutils) share: finding a daemon's
binary, telling whether a PID is still running, and the tails of their logs for a failure
report."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["log_tails", "pid_alive", "sbin_binary"]


def sbin_binary(name: str) -> str:
    """``name``'s path (PATH first: root's PATH may lack /usr/sbin)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    return found or f"/usr/sbin/{name}"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a process that has not exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # "pid (comm) S ...": comm may hold spaces or ")", the state follows the last ")"
            state = stat.read().rpartition(")")[2].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def log_tails(paths: Iterable[Path], lines: int, nothing: str) -> str:
    """The last ``lines`` lines of each log in ``paths`` that exists, or ``nothing``."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        tail = text.splitlines()[-lines:]
        if tail:
            parts.append(f"--- {path} (last {len(tail)} lines) ---\n" + "\n".join(tail))
    return "\n".join(parts) if parts else nothing
