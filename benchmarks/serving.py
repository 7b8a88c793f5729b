"""What every benchmark server shares: listen on loopback, say it is ready, serve one client at
a time, and go away when the runner does (or nobody has connected for a while)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any


def _alive(pid: int) -> bool:
    if os.getppid() == pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def serve(
    listener: socket.socket,
    handle: Callable[[socket.socket], None],
    idle_timeout: float,
    parent: int,
    name: str,
) -> None:
    """Serve clients one at a time until ``parent`` exits or nobody connects for a while."""
    listener.settimeout(1.0)
    idle_since = time.monotonic()
    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            if not _alive(parent) or time.monotonic() - idle_since > idle_timeout:
                return
            continue
        with conn:
            conn.settimeout(idle_timeout)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                handle(conn)
            except OSError as exc:  # a client that died mid-session must not stop the server
                print(f"{name}: session ended: {exc!r}", file=sys.stderr)
        idle_since = time.monotonic()


def listen_and_serve(
    port: int,
    ready: Mapping[str, Any],
    handle: Callable[[socket.socket], None],
    idle_timeout: float,
    parent: int,
    name: str,
) -> None:
    """Bind 127.0.0.1:``port`` (0: a free one), print one JSON line (``ready`` plus the port and
    PID) for the runner, then :func:`serve`."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(4)
        info = {"port": listener.getsockname()[1], "pid": os.getpid(), **ready}
        print(json.dumps(info), flush=True)
        serve(listener, handle, idle_timeout, parent, name)
