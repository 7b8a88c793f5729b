"""A fast loopback IMAP4rev1 responder for the benchmarks.

It runs in its own process, so its CPU time never lands on the client being measured, and it is
written to stay out of the way: every FETCH response is rendered once at start-up into one
buffer per item list, and a FETCH is answered by ``sendall`` of a slice of that buffer (in large
slices for ``1:*``). It serves one client at a time on 127.0.0.1 and knows exactly the commands
the workloads send: CAPABILITY, LOGIN, SELECT, FETCH, NOOP and LOGOUT.

    greeting   * OK [CAPABILITY IMAP4rev1] ready
    SELECT     * N EXISTS, * 0 RECENT, * OK [UIDVALIDITY 1], * FLAGS (...), tag OK
    FETCH      <set> (RFC822)                  * i FETCH (RFC822 {size}CRLF<message>)CRLF
    FETCH      <set> (UID FLAGS RFC822.SIZE)   * i FETCH (UID i FLAGS (\\Seen) RFC822.SIZE s)
    LOGOUT     * BYE, tag OK

``<set>`` is ``1:*``, ``n`` or ``n:m``. The tag of each command is whatever precedes its first
space. The mailbox is ``--count`` messages: with ``--size`` they are ``corpus.message`` bodies of
that many octets; without it there are no bodies, only sizes (a deterministic spread), which is
all ``(UID FLAGS RFC822.SIZE)`` needs.

When ready, the server prints one JSON line to stdout: ``{"port": ..., "pid": ...,
"expected": {"data": ..., "wire": ...}}``. ``--fetch`` names the workload's FETCH pattern, so
the server can say what a correct client sees:

- ``range``: one ``FETCH 1:* (RFC822)``;
- ``single``: ``FETCH i (RFC822)`` for i = 1..count, one command each;
- ``flags``: one ``FETCH 1:* (UID FLAGS RFC822.SIZE)``.

``data`` is the ``corpus.FetchDigest`` of the ``(typ, data)`` results a library client returns;
``wire`` is the ``corpus.WireDigest`` of the bytes the raw client receives for those commands,
tagged completion lines included. The raw client tags its measured FETCH commands ``F1``,
``F2``, ... (``raw_fetch_tag``). The server exits when its parent goes away, after
``--idle-timeout`` seconds without a connection, or on SIGTERM from the runner.

    python benchmarks/imap_server.py --count 100 --size 10240 --fetch range
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import sys
from collections.abc import Sequence

from corpus import DEFAULT_SEED, FetchDigest, WireDigest, message
from serving import listen_and_serve

SEND_CHUNK = 4 << 20
MAX_COMMAND = 1024
FETCH_MODES = ("range", "single", "flags")
RFC822_ITEMS = b"(RFC822)"
FLAGS_ITEMS = b"(UID FLAGS RFC822.SIZE)"
#: Sizes reported when the mailbox has no bodies: a deterministic spread in this range.
SIZES_WITHOUT_BODIES = (500, 200_000)


def raw_fetch_tag(number: int) -> bytes:
    """The tag of the raw client's ``number``-th measured FETCH command (from 1)."""
    return b"F%d" % number


def fetch_done(tag: bytes) -> bytes:
    return tag + b" OK FETCH completed\r\n"


def rfc822_line(number: int, size: int) -> bytes:
    """The line that opens message ``number``'s RFC822 response, without CRLF."""
    return b"* %d FETCH (RFC822 {%d}" % (number, size)


def flags_line(number: int, size: int) -> bytes:
    """Message ``number``'s ``(UID FLAGS RFC822.SIZE)`` response, without CRLF."""
    return b"* %d FETCH (UID %d FLAGS (\\Seen) RFC822.SIZE %d)" % (number, number, size)


def client_item(line: bytes) -> bytes:
    """What ``imaplib`` returns for a ``* i FETCH (...)`` line: ``i (...)``."""
    return line[2:].replace(b" FETCH ", b" ", 1)


class Rendered:
    """All responses for one item list in one buffer; message i is ``view[at[i-1]:at[i]]``."""

    def __init__(self, buffer: bytes | bytearray, offsets: list[int]) -> None:
        self.buffer = buffer
        self.view = memoryview(buffer)
        self.offsets = offsets

    def span(self, first: int, last: int) -> memoryview:
        return self.view[self.offsets[first - 1] : self.offsets[last]]


class Mailbox:
    """Pre-rendered FETCH responses for one benchmark mailbox, plus the expected digests."""

    def __init__(self, seed: int, count: int, size: int | None, fetch: str) -> None:
        if count < 1:
            raise ValueError("the mailbox needs at least one message")
        self.count = count
        data = FetchDigest()
        wire = WireDigest()
        if size is None:
            rng = random.Random(seed)
            low, high = SIZES_WITHOUT_BODIES
            self.sizes = [rng.randrange(low, high) for _ in range(count)]
            self.rfc822: Rendered | None = None
        else:
            self.sizes = [size] * count
            self.rfc822 = self._render_rfc822(seed, size, fetch, data, wire)
        self.flags = self._render_flags(fetch, data, wire)
        if fetch in ("range", "single") and self.rfc822 is None:
            raise ValueError(f"--fetch {fetch} needs message bodies (--size)")
        self.expected = {"data": data.hexdigest(), "wire": wire.hexdigest()}

    def _render_rfc822(
        self, seed: int, size: int, fetch: str, data: FetchDigest, wire: WireDigest
    ) -> Rendered:
        count = self.count
        heads = [rfc822_line(i, size) for i in range(1, count + 1)]
        total = sum(map(len, heads)) + count * (size + 5)  # CRLF after the head, ")\r\n"
        buffer = bytearray(total)  # filled in place: one copy of the mailbox, not two
        offsets = [0]
        at = 0
        if fetch == "range":
            data.begin("OK")
        for number, head in enumerate(heads, 1):
            body = message(seed, number, size)
            start = at
            buffer[at : at + len(head)] = head
            at += len(head)
            buffer[at : at + 2] = b"\r\n"
            at += 2
            buffer[at : at + size] = body
            at += size
            buffer[at : at + 3] = b")\r\n"
            at += 3
            offsets.append(at)
            if fetch == "range":
                data.add_items([(client_item(head), body), b")"])
                wire.add(memoryview(buffer)[start:at])
            elif fetch == "single":
                data.add("OK", [(client_item(head), body), b")"])
                wire.add(memoryview(buffer)[start:at])
                wire.add(fetch_done(raw_fetch_tag(number)))
        assert at == total
        if fetch == "range":
            wire.add(fetch_done(raw_fetch_tag(1)))
        return Rendered(buffer, offsets)

    def _render_flags(self, fetch: str, data: FetchDigest, wire: WireDigest) -> Rendered:
        lines = [flags_line(i, s) for i, s in enumerate(self.sizes, 1)]
        buffer = b"\r\n".join(lines) + b"\r\n"
        offsets = [0]
        at = 0
        for line in lines:
            at += len(line) + 2
            offsets.append(at)
        if fetch == "flags":
            data.add("OK", [client_item(line) for line in lines])
            wire.add(buffer)
            wire.add(fetch_done(raw_fetch_tag(1)))
        return Rendered(buffer, offsets)


def _send(conn: socket.socket, data: memoryview) -> None:
    for offset in range(0, len(data), SEND_CHUNK):
        conn.sendall(data[offset : offset + SEND_CHUNK])


def _message_range(mailbox: Mailbox, text: bytes) -> tuple[int, int] | None:
    first, colon, last = text.partition(b":")
    try:
        low = int(first)
        high = mailbox.count if last == b"*" else int(last) if colon else low
    except ValueError:
        return None
    if not 1 <= low <= high <= mailbox.count:
        return None
    return low, high


def fetch(conn: socket.socket, mailbox: Mailbox, tag: bytes, arg: bytes) -> None:
    message_set, _, items = arg.partition(b" ")
    span = _message_range(mailbox, message_set)
    if span is None:
        conn.sendall(tag + b" BAD invalid message set\r\n")
        return
    rendered = {RFC822_ITEMS: mailbox.rfc822, FLAGS_ITEMS: mailbox.flags}.get(items)
    if rendered is None:
        conn.sendall(tag + b" NO these items are not served here\r\n")
        return
    data = rendered.span(*span)
    if len(data) <= SEND_CHUNK:  # one small response plus completion: one send
        conn.sendall(bytes(data) + fetch_done(tag))
        return
    _send(conn, data)
    conn.sendall(fetch_done(tag))


def handle(conn: socket.socket, mailbox: Mailbox) -> None:
    """One IMAP session; returns when the client logs out or disconnects."""
    reader = conn.makefile("rb")
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
    authenticated = selected = False
    try:
        while True:
            line = reader.readline(MAX_COMMAND)
            if not line:
                return
            if not line.endswith(b"\r\n"):
                conn.sendall(b"* BYE command line too long\r\n")
                return
            tag, _, rest = line[:-2].partition(b" ")
            verb, _, arg = rest.partition(b" ")
            verb = verb.upper()
            if verb == b"FETCH" and selected:
                fetch(conn, mailbox, tag, arg)
            elif verb == b"LOGOUT":
                conn.sendall(b"* BYE logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
                return
            elif verb == b"CAPABILITY":
                conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK CAPABILITY completed\r\n")
            elif verb == b"NOOP":
                conn.sendall(tag + b" OK NOOP completed\r\n")
            elif verb == b"LOGIN" and not authenticated:
                authenticated = True
                conn.sendall(tag + b" OK LOGIN completed\r\n")
            elif verb == b"SELECT" and authenticated:
                selected = True
                conn.sendall(
                    b"* %d EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] UIDs valid\r\n"
                    b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
                    b"%s OK [READ-WRITE] SELECT completed\r\n" % (mailbox.count, tag)
                )
            else:
                conn.sendall(tag + b" BAD command unknown or not valid now\r\n")
    finally:
        reader.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, required=True, help="messages in the mailbox")
    parser.add_argument(
        "--size", type=int, help="octets per message (omit for a mailbox of sizes only)"
    )
    parser.add_argument(
        "--fetch",
        choices=FETCH_MODES,
        required=True,
        help="the workload's FETCH pattern (decides the expected digests)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument(
        "--parent-pid", type=int, default=os.getppid(), help="exit when this process is gone"
    )
    args = parser.parse_args(argv)

    mailbox = Mailbox(args.seed, args.count, args.size, args.fetch)
    ready = {"messages": mailbox.count, "octets": sum(mailbox.sizes), "expected": mailbox.expected}
    listen_and_serve(
        args.port,
        ready,
        lambda conn: handle(conn, mailbox),
        args.idle_timeout,
        args.parent_pid,
        "imap_server",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
