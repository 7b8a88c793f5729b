"""A fast loopback POP3 server for the benchmarks.

It runs in its own process, so its CPU time never lands on the client being measured, and it is
written to stay out of the way: every ``RETR`` response (status line, dot-stuffed body, ``.``
terminator) is rendered once at start-up and then sent with ``sendall``, in large slices of one
buffer for big messages. It serves one client at a time on 127.0.0.1 and knows just enough POP3
for the benchmark workloads: USER, PASS, STAT, LIST, RETR, NOOP, RSET, CAPA and QUIT.

The mailbox is ``--count`` messages of ``--size`` octets from ``corpus.message``. When ready, the
server prints one JSON line to stdout: ``{"port": ..., "pid": ..., "expected": {...}}`` where
``expected`` holds the digests a correct client must report (``lines`` for a library client's
``retr`` results, ``wire`` for the raw bytes). It exits when its parent goes away, after
``--idle-timeout`` seconds without a connection, or on SIGTERM from the runner.

    python benchmarks/pop3_server.py --count 10000 --size 10240
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence

from corpus import DEFAULT_SEED, LinesDigest, WireDigest, message
from serving import listen_and_serve

SEND_CHUNK = 4 << 20
MAX_COMMAND = 512


def dot_stuff(body: bytes) -> bytes:
    """Escape every line that starts with ``.`` by doubling the dot (RFC 1939, section 3)."""
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    return b"." + stuffed if stuffed.startswith(b".") else stuffed


def status_line(body: bytes) -> bytes:
    return b"+OK %d octets" % len(body)


class Mailbox:
    """Pre-rendered responses for one benchmark mailbox, plus the digests clients must match."""

    def __init__(self, seed: int, count: int, size: int) -> None:
        lines = LinesDigest()
        wire = WireDigest()
        self.retr: list[bytes] = []
        for index in range(1, count + 1):
            body = message(seed, index, size)
            status = status_line(body)
            lines.add_text(status, body)
            response = status + b"\r\n" + dot_stuff(body) + b".\r\n"
            del body
            wire.add(response)
            self.retr.append(response)
        self.count = count
        self.sizes = [size] * count
        self.total = size * count
        self.expected = {"lines": lines.hexdigest(), "wire": wire.hexdigest()}
        listing = b"".join(b"%d %d\r\n" % (i, n) for i, n in enumerate(self.sizes, 1))
        self.list_all = (
            b"+OK %d messages (%d octets)\r\n" % (count, self.total) + listing + b".\r\n"
        )


def _message_number(mailbox: Mailbox, arg: bytes) -> int | None:
    try:
        number = int(arg)
    except ValueError:
        return None
    return number if 1 <= number <= mailbox.count else None


def _send(conn: socket.socket, data: bytes) -> None:
    if len(data) <= SEND_CHUNK:
        conn.sendall(data)
        return
    view = memoryview(data)
    for offset in range(0, len(view), SEND_CHUNK):
        conn.sendall(view[offset : offset + SEND_CHUNK])


def handle(conn: socket.socket, mailbox: Mailbox) -> None:
    """One POP3 session; returns when the client quits or disconnects."""
    reader = conn.makefile("rb")
    conn.sendall(b"+OK mailwire benchmark POP3 server ready\r\n")
    user: bytes | None = None
    authenticated = False
    try:
        while True:
            line = reader.readline(MAX_COMMAND)
            if not line:
                return
            if not line.endswith(b"\n"):
                conn.sendall(b"-ERR command too long\r\n")
                return
            verb, _, arg = line.rstrip(b"\r\n").partition(b" ")
            verb = verb.upper()
            if verb == b"QUIT":
                conn.sendall(b"+OK bye\r\n")
                return
            if verb == b"CAPA":
                conn.sendall(b"+OK capability list follows\r\nUSER\r\n.\r\n")
            elif verb == b"NOOP":
                conn.sendall(b"+OK\r\n")
            elif not authenticated:
                if verb == b"USER":
                    user = arg
                    conn.sendall(b"+OK send PASS\r\n")
                elif verb == b"PASS" and user is not None:
                    authenticated = True
                    conn.sendall(
                        b"+OK maildrop has %d messages (%d octets)\r\n"
                        % (mailbox.count, mailbox.total)
                    )
                else:
                    conn.sendall(b"-ERR authenticate first\r\n")
            elif verb == b"RETR":
                number = _message_number(mailbox, arg)
                if number is None:
                    conn.sendall(b"-ERR no such message\r\n")
                else:
                    _send(conn, mailbox.retr[number - 1])
            elif verb == b"STAT":
                conn.sendall(b"+OK %d %d\r\n" % (mailbox.count, mailbox.total))
            elif verb == b"LIST":
                if not arg:
                    _send(conn, mailbox.list_all)
                    continue
                number = _message_number(mailbox, arg)
                if number is None:
                    conn.sendall(b"-ERR no such message\r\n")
                else:
                    conn.sendall(b"+OK %d %d\r\n" % (number, mailbox.sizes[number - 1]))
            elif verb == b"RSET":
                conn.sendall(b"+OK\r\n")
            else:
                conn.sendall(b"-ERR unknown command\r\n")
    finally:
        reader.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="messages in the mailbox")
    parser.add_argument("--size", type=int, required=True, help="octets per message")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument(
        "--parent-pid", type=int, default=os.getppid(), help="exit when this process is gone"
    )
    args = parser.parse_args(argv)

    mailbox = Mailbox(args.seed, args.count, args.size)
    ready = {"messages": mailbox.count, "octets": mailbox.total, "expected": mailbox.expected}
    listen_and_serve(
        args.port,
        ready,
        lambda conn: handle(conn, mailbox),
        args.idle_timeout,
        args.parent_pid,
        "pop3_server",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
