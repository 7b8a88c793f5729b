"""IMAP client workloads: the same work through three clients (four on ``d``).

- ``stdlib``: the running interpreter's ``imaplib``;
- ``mailwire``: ``mailwire.imaplib`` (same API, so the same code drives both);
- ``raw``: the floor. It sends the same command lines over a plain blocking socket and reads
  with large ``recv_into`` calls into one buffer until the tagged completion line. It honours
  literals and nothing else: where a line ends in ``{n}`` it skips the next ``n`` bytes, so it
  reads exactly the bytes a real client reads, but it never splits lines or parses a response.
- ``minimal`` (``d`` only): the least a client can do and still return imaplib's ``(typ,
  data)`` for one message's ``(RFC822)``: the raw client's receives, one regex match for the
  ``* n FETCH (... {size}`` line, two slices and a check of the tagged line. No limits, no
  state, no untagged-response bookkeeping. It shows how much of the gap between mailwire and
  raw on ``d`` is the result itself.

Workloads (parameters come from the runner; ``fetch`` says which pattern, as for the server):

- ``c``: ``fetch('1:*', '(RFC822)')`` over ``count`` messages of ``size`` octets;
- ``d``: ``fetch(str(i), '(RFC822)')`` for i = 1..count, one command each;
- ``e``: ``fetch('1', '(RFC822)')`` of one large message (a single big literal);
- ``f``: ``fetch('1:*', '(UID FLAGS RFC822.SIZE)')`` over ``count`` messages (no literals).

In every workload the connection, the greeting (and the library's CAPABILITY), LOGIN and
SELECT happen before ``meter.start()``; only the FETCH commands are measured. Every client
uses a blocking socket (no timeout), as ``imaplib.IMAP4(host, port)`` does by default; the
runner's per-process timeout bounds a hung run.

Digests: library clients fold each ``(typ, data)`` result of ``fetch`` into a
``corpus.FetchDigest``; stdlib and mailwire must agree exactly. The raw client folds the wire
bytes of the measured commands' replies (tagged completion lines included) into a
``WireDigest``. The runner compares both with what the server says a correct client sees. In
``d`` results are digested in batches with the meter paused, and freeing a batch is counted
(a real loop frees each result too); in ``c``, ``e`` and ``f`` the single result is digested
after the meter stops.
"""

from __future__ import annotations

import importlib
import mmap
import re
import socket
from collections.abc import Mapping
from itertools import repeat
from typing import TYPE_CHECKING, Any

from corpus import FetchDigest, WireDigest, digest_in_batches
from imap_server import FLAGS_ITEMS, RFC822_ITEMS, raw_fetch_tag

if TYPE_CHECKING:  # clients.py is __main__ in the client process: do not import it twice
    from clients import ClientFn, Meter

#: Library results held before the meter pauses to digest them (workload d).
BATCH = 64
#: Raw client: digest and rewind once this many reply bytes are buffered (workload d).
RAW_BATCH_BYTES = 1 << 20
RAW_BUFFER = 4 << 20
#: Raw client's capacity estimate per message beyond its size: the response's own lines.
RAW_OVERHEAD = 96

_CRLF = b"\r\n"
_LITERAL_END = b"}\r\n"
#: Longest ``{n}`` the raw client looks back for from a line's closing ``}``.
_MAX_LITERAL_MARK = 24


# --- library clients (stdlib imaplib, mailwire.imaplib) ---------------------------------------


def _library_client(module_name: str, params: Mapping[str, Any], meter: Meter) -> Any:
    module = importlib.import_module(module_name)
    meter.info["module"] = module.__name__
    meter.info["module_file"] = getattr(module, "__file__", None)
    client = module.IMAP4(params["host"], params["port"])
    client.login(params["user"], params["password"])
    client.select("INBOX")
    return client


def library_once(module_name: str, message_set: str, items: str) -> ClientFn:
    """One ``fetch(message_set, items)``, measured alone; digested after the meter stops."""

    def once(params: Mapping[str, Any], meter: Meter) -> str:
        client = _library_client(module_name, params, meter)
        meter.start()
        typ, data = client.fetch(message_set, items)
        meter.stop()
        digest = FetchDigest()
        digest.add(typ, data)
        del data
        client.logout()
        return digest.hexdigest()

    once.__name__ = f"library_once[{module_name}]"
    return once


def _fetch_each(client: Any, items: str, params: Mapping[str, Any], meter: Meter) -> str:
    """Workload d with anything that has imaplib's fetch and logout, logged in and selected."""
    message_sets = map(str, range(1, params["count"] + 1))
    digest = FetchDigest()
    meter.start()
    digest_in_batches(map(client.fetch, message_sets, repeat(items)), digest, meter, BATCH)
    meter.stop()
    client.logout()
    return digest.hexdigest()


def library_each(module_name: str, items: str) -> ClientFn:
    """``fetch(str(i), items)`` for every message; results digested in paused batches."""

    def each(params: Mapping[str, Any], meter: Meter) -> str:
        return _fetch_each(_library_client(module_name, params, meter), items, params, meter)

    each.__name__ = f"library_each[{module_name}]"
    return each


# --- raw socket client (the floor) ------------------------------------------------------------


def _anonymous(size: int) -> mmap.mmap:
    """Private anonymous memory: committed page by page as bytes arrive, like ``malloc``'d
    memory. (``mmap.mmap(-1, n)`` alone is MAP_SHARED, i.e. shmem, whose page faults cost
    about 1.5 times as much: measured 0.11 s vs 0.07 s to fill 100 MiB.)"""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)


class RawIMAP:
    """Command lines out, bytes in: replies land in one lazily committed ``mmap`` buffer."""

    def __init__(self, host: str, port: int, capacity: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.buf = _anonymous(capacity)
        self.view = memoryview(self.buf)
        self.commands = 0
        self._read_greeting()

    def _grow(self, used: int) -> None:
        old_buf, old_view = self.buf, self.view
        self.buf = _anonymous(2 * len(old_buf))
        self.view = memoryview(self.buf)
        self.view[:used] = old_view[:used]
        old_view.release()
        old_buf.close()

    def _receive(self, pos: int) -> int:
        if pos == len(self.buf):
            self._grow(pos)
        received = self.sock.recv_into(self.view[pos:])
        if not received:
            raise ConnectionError("server closed the connection")
        return pos + received

    def _read_greeting(self) -> None:
        pos = 0
        while self.buf.find(_CRLF, 0, pos) < 0:
            pos = self._receive(pos)
        if self.buf[:5] != b"* OK ":
            raise RuntimeError(f"unexpected greeting {self.buf[:pos]!r}")

    def read_reply(self, start: int, tag: bytes) -> int:
        """Receive the reply to the command tagged ``tag`` into the buffer at ``start``.

        Returns the end of the reply. The only parsing: a ``}`` before CRLF closes a literal
        announcement ``{n}``, whose ``n`` bytes are skipped; the reply ends when the received
        bytes end with CRLF and the last line outside a literal starts with ``tag``.
        """
        tagged = tag + b" "
        pos = start  # end of the received bytes
        resume = start  # where the protocol text resumes after the last literal
        text = start  # [text, pos) is protocol text not yet searched for "}\r\n"
        while True:
            pos = self._receive(pos)
            if resume > pos:
                continue  # still inside a literal
            buf = self.buf
            while True:
                close = buf.find(_LITERAL_END, text, pos)
                if close < 0:
                    text = max(text, pos - 2)  # "}\r\n" may straddle two receives
                    break
                brace = buf.rfind(b"{", max(resume, close - _MAX_LITERAL_MARK), close)
                if brace < 0:
                    raise RuntimeError(f"a line ends in '}}' without '{{n}}' at {close}")
                resume = text = close + 3 + int(buf[brace + 1 : close])
                if resume > pos:
                    break
            if resume > pos or buf[pos - 2 : pos] != _CRLF:
                continue
            line = buf.rfind(b"\n", resume, pos - 2) + 1
            if not line:  # no line break since the last literal: a line continued after it
                if resume != start:
                    continue
                line = start
            if buf[line : line + len(tagged)] == tagged:
                if buf[line + len(tagged) : line + len(tagged) + 3] != b"OK ":
                    raise RuntimeError(f"command failed: {buf[line:pos]!r}")
                return pos

    def command(self, line: bytes) -> None:
        self.commands += 1
        tag = b"C%d" % self.commands
        self.sock.sendall(tag + b" " + line + _CRLF)
        self.read_reply(0, tag)

    def fetch(self, tag: bytes, message_set: bytes, items: bytes, start: int) -> int:
        self.sock.sendall(tag + b" FETCH " + message_set + b" " + items + _CRLF)
        return self.read_reply(start, tag)

    def login(self, params: Mapping[str, Any]) -> None:
        user, password = params["user"].encode(), params["password"].encode()
        self.command(b'LOGIN %s "%s"' % (user, password))
        self.command(b"SELECT INBOX")

    def close(self) -> None:
        self.command(b"LOGOUT")
        self.sock.close()
        self.view.release()
        self.buf.close()


def raw_once(message_set: bytes, items: bytes) -> ClientFn:
    def once(params: Mapping[str, Any], meter: Meter) -> str:
        per_message = params.get("size", 0) + RAW_OVERHEAD
        # The buffer is address space only until bytes arrive, so reserving generously is free.
        client = RawIMAP(params["host"], params["port"], params["count"] * per_message + RAW_BUFFER)
        client.login(params)
        meter.start()
        end = client.fetch(raw_fetch_tag(1), message_set, items, 0)
        meter.stop()
        digest = WireDigest()
        digest.add(client.view[:end])
        client.close()
        return digest.hexdigest()

    once.__name__ = f"raw_once[{message_set.decode()} {items.decode()}]"
    return once


def raw_each(items: bytes) -> ClientFn:
    def each(params: Mapping[str, Any], meter: Meter) -> str:
        client = RawIMAP(params["host"], params["port"], RAW_BUFFER)
        client.login(params)
        fetch = client.fetch
        digest = WireDigest()
        pos = 0
        meter.start()
        for number in range(1, params["count"] + 1):
            pos = fetch(raw_fetch_tag(number), b"%d" % number, items, pos)
            if pos >= RAW_BATCH_BYTES:
                meter.pause()
                digest.add(client.view[:pos])
                meter.resume()
                pos = 0
        meter.pause()
        digest.add(client.view[:pos])
        meter.resume()
        meter.stop()
        client.close()
        return digest.hexdigest()

    each.__name__ = f"raw_each[{items.decode()}]"
    return each


# --- minimal client: the result shape and nothing else ----------------------------------------

_FETCH_HEAD = re.compile(rb"\* ([0-9]+) FETCH ([^\r\n]*\{([0-9]+)\})\r\n")


class MinimalIMAP(RawIMAP):
    """The raw client's receives, and one-literal ``fetch`` results built as cheaply as
    CPython allows."""

    def fetch(self, message_set: str, items: str) -> tuple[str, list[Any]]:  # type: ignore[override]
        self.commands += 1
        tag = b"M%d" % self.commands
        end = RawIMAP.fetch(self, tag, message_set.encode(), items.encode(), 0)
        buf, view = self.buf, self.view
        head = _FETCH_HEAD.match(buf, 0, end)
        if head is None:
            raise RuntimeError(f"not a one-literal FETCH reply: {buf[:80]!r}")
        body = head.end()
        after = body + int(head.group(3))
        crlf = buf.find(_CRLF, after, end)
        # read_reply saw the tagged OK; what follows the trailer line must be that line.
        if buf[crlf + 2 : crlf + 3 + len(tag)] != tag + b" ":
            raise RuntimeError("more than one response before the tagged line")
        literal = (head.group(1) + b" " + head.group(2), view[body:after].tobytes())
        return "OK", [literal, view[after:crlf].tobytes()]

    def logout(self) -> None:
        self.close()


def minimal_each(params: Mapping[str, Any], meter: Meter) -> str:
    client = MinimalIMAP(params["host"], params["port"], RAW_BUFFER)
    client.login(params)
    return _fetch_each(client, _RFC822, params, meter)


_RFC822 = RFC822_ITEMS.decode()
_FLAGS = FLAGS_ITEMS.decode()

WORKLOADS: dict[str, dict[str, ClientFn]] = {
    "c": {
        "stdlib": library_once("imaplib", "1:*", _RFC822),
        "mailwire": library_once("mailwire.imaplib", "1:*", _RFC822),
        "raw": raw_once(b"1:*", RFC822_ITEMS),
    },
    "d": {
        "stdlib": library_each("imaplib", _RFC822),
        "mailwire": library_each("mailwire.imaplib", _RFC822),
        "raw": raw_each(RFC822_ITEMS),
        "minimal": minimal_each,
    },
    "e": {
        "stdlib": library_once("imaplib", "1", _RFC822),
        "mailwire": library_once("mailwire.imaplib", "1", _RFC822),
        "raw": raw_once(b"1", RFC822_ITEMS),
    },
    "f": {
        "stdlib": library_once("imaplib", "1:*", _FLAGS),
        "mailwire": library_once("mailwire.imaplib", "1:*", _FLAGS),
        "raw": raw_once(b"1:*", FLAGS_ITEMS),
    },
}
