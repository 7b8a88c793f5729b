"""POP3 client workloads: the same work through four clients.

- ``stdlib``: the running interpreter's ``poplib``;
- ``mailwire``: ``mailwire.poplib`` (same API, so the same code drives both);
- ``raw``: the floor. It sends the same commands over a plain blocking socket and reads the
  same bytes with large ``recv_into`` calls into one buffer until the reply's terminator, with
  no parsing and no line splitting.
- ``minimal``: the least a client can do and still return poplib's ``(response, lines,
  octets)``: the raw client's receives, then one regex pass that finds the dot-stuffed lines
  and one ``splitlines``. No limits, no deadlines, no checks beyond the digest's. On ``a`` it
  shows how much of the gap between mailwire and raw is the result itself; on ``b`` it is no
  floor, since it holds the whole reply at once.

Workloads (parameters come from the runner):

- ``a``: USER/PASS, then ``retr(i)`` for every message ``1..count``. Login is measured; the
  connection and greeting are not.
- ``b``: after login (not measured), ``retr(1)`` of one large message.

Every client uses a blocking socket (no timeout), as ``poplib.POP3(host, port)`` does by default;
the runner's per-process timeout bounds a hung run.

Digests: library clients fold each ``(response, lines, octets)`` into a ``LinesDigest``, the raw
client folds the wire bytes into a ``WireDigest``; the runner compares them with what the server
says a correct client must see. In workload ``a`` results are digested in batches with the meter
paused, so the digest's cost is not counted; dropping the batch (freeing the line lists) is
counted, because a real loop frees each result as it goes too.
"""

from __future__ import annotations

import importlib
import mmap
import re
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from corpus import LinesDigest, WireDigest, digest_in_batches

if TYPE_CHECKING:  # clients.py is __main__ in the client process: do not import it twice
    from clients import ClientFn, Meter

#: Library results held before the meter pauses to digest them.
BATCH = 64
#: Raw client: digest and rewind once this many reply bytes are buffered.
RAW_BATCH_BYTES = 1 << 20
RAW_BUFFER = 4 << 20

_TERMINATOR = b"\r\n.\r\n"
_DOT_LINE = re.compile(rb"\n\.")
_CRLF = b"\r\n"


# --- library clients (stdlib poplib, mailwire.poplib) ----------------------------------------


def _library_client(module_name: str, params: Mapping[str, Any], meter: Meter) -> Any:
    module = importlib.import_module(module_name)
    meter.info["module"] = module.__name__
    meter.info["module_file"] = getattr(module, "__file__", None)
    return module.POP3(params["host"], params["port"])


def library_many(module_name: str) -> ClientFn:
    def many(params: Mapping[str, Any], meter: Meter) -> str:
        return _retr_each(_library_client(module_name, params, meter), params, meter)

    many.__name__ = f"library_many[{module_name}]"
    return many


def _retr_each(client: Any, params: Mapping[str, Any], meter: Meter) -> str:
    """Workload a with anything that has poplib's user, pass_, retr and quit."""
    digest = LinesDigest()
    meter.start()
    client.user(params["user"])
    client.pass_(params["password"])
    digest_in_batches(map(client.retr, range(1, params["count"] + 1)), digest, meter, BATCH)
    meter.stop()
    client.quit()
    return digest.hexdigest()


def _retr_one(client: Any, params: Mapping[str, Any], meter: Meter) -> str:
    """Workload b with anything that has poplib's user, pass_, retr and quit."""
    client.user(params["user"])
    client.pass_(params["password"])
    meter.start()
    response, lines, octets = client.retr(1)
    meter.stop()
    digest = LinesDigest()
    digest.add(response, lines, octets)
    client.quit()
    return digest.hexdigest()


def library_one(module_name: str) -> ClientFn:
    def one(params: Mapping[str, Any], meter: Meter) -> str:
        return _retr_one(_library_client(module_name, params, meter), params, meter)

    one.__name__ = f"library_one[{module_name}]"
    return one


# --- raw socket client (the floor) ------------------------------------------------------------


class RawPOP3:
    """Commands out, bytes in: replies land in one lazily committed ``mmap`` buffer."""

    def __init__(self, host: str, port: int, capacity: int) -> None:
        self.sock = socket.create_connection((host, port))
        self.buf = mmap.mmap(-1, capacity)
        self.view = memoryview(self.buf)
        self.read_until(0, _CRLF)  # greeting

    def _grow(self, used: int) -> None:
        old_buf, old_view = self.buf, self.view
        self.buf = mmap.mmap(-1, 2 * len(old_buf))
        self.view = memoryview(self.buf)
        self.view[:used] = old_view[:used]
        old_view.release()
        old_buf.close()

    def read_until(self, start: int, marker: bytes) -> int:
        """Receive a reply into the buffer at ``start`` until ``marker``; return its end."""
        recv_into = self.sock.recv_into
        pos = find_from = start
        while True:
            if pos == len(self.buf):
                self._grow(pos)
            received = recv_into(self.view[pos:])
            if not received:
                raise ConnectionError("server closed the connection")
            if pos == start and self.buf[start] == 0x2D:  # "-ERR ..."
                raise RuntimeError(bytes(self.view[start : pos + received]))
            pos += received
            end = self.buf.find(marker, find_from, pos)
            if end >= 0:
                end += len(marker)
                if end != pos:
                    raise RuntimeError("unexpected bytes after the reply")
                return end
            find_from = max(start, pos - len(marker) + 1)

    def command(self, line: bytes) -> None:
        self.sock.sendall(line)
        self.read_until(0, _CRLF)

    def retr(self, number: int, start: int) -> int:
        self.sock.sendall(b"RETR %d\r\n" % number)
        return self.read_until(start, _TERMINATOR)

    def login(self, params: Mapping[str, Any]) -> None:
        self.command(b"USER %s\r\n" % params["user"].encode())
        self.command(b"PASS %s\r\n" % params["password"].encode())

    def close(self) -> None:
        self.command(b"QUIT\r\n")
        self.sock.close()
        self.view.release()
        self.buf.close()


def raw_many(params: Mapping[str, Any], meter: Meter) -> str:
    client = RawPOP3(params["host"], params["port"], RAW_BUFFER)
    retr = client.retr
    digest = WireDigest()
    pos = 0
    meter.start()
    client.login(params)
    for number in range(1, params["count"] + 1):
        pos = retr(number, pos)
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


def raw_one(params: Mapping[str, Any], meter: Meter) -> str:
    # The buffer is address space only until bytes arrive, so reserving generously is free.
    client = RawPOP3(params["host"], params["port"], params["size"] * 9 // 8 + RAW_BUFFER)
    client.login(params)
    meter.start()
    end = client.retr(1, 0)
    meter.stop()
    digest = WireDigest()
    digest.add(client.view[:end])
    client.close()
    return digest.hexdigest()


# --- minimal client: the result shape and nothing else ----------------------------------------


class MinimalPOP3(RawPOP3):
    """The raw client's receives, and ``retr`` results built as cheaply as CPython allows."""

    def user(self, name: str) -> None:
        self.command(b"USER %s\r\n" % name.encode())

    def pass_(self, password: str) -> None:
        self.command(b"PASS %s\r\n" % password.encode())

    def quit(self) -> None:
        self.close()

    def retr(self, number: int) -> tuple[bytes, list[bytes], int]:  # type: ignore[override]
        end = RawPOP3.retr(self, number, 0)
        data = self.view[:end].tobytes()
        status = data.index(b"\n") + 1
        # Each "\n." starts a dotted line: ".." is stuffed (drop one dot), "." ends the body.
        pieces = []
        piece = status
        for mark in _DOT_LINE.finditer(data, status - 1):
            cut = mark.start() + 1
            if data[cut + 1] != 0x2E:
                break
            pieces.append(data[piece:cut])
            piece = cut + 1
        pieces.append(data[piece : end - 3])  # up to the body's last CRLF
        body = b"".join(pieces)
        return data[: status - 2], body.splitlines(), len(body)


def minimal_many(params: Mapping[str, Any], meter: Meter) -> str:
    return _retr_each(MinimalPOP3(params["host"], params["port"], RAW_BUFFER), params, meter)


def minimal_one(params: Mapping[str, Any], meter: Meter) -> str:
    capacity = params["size"] * 9 // 8 + RAW_BUFFER
    return _retr_one(MinimalPOP3(params["host"], params["port"], capacity), params, meter)


WORKLOADS: dict[str, dict[str, ClientFn]] = {
    "a": {
        "stdlib": library_many("poplib"),
        "mailwire": library_many("mailwire.poplib"),
        "raw": raw_many,
        "minimal": minimal_many,
    },
    "b": {
        "stdlib": library_one("poplib"),
        "mailwire": library_one("mailwire.poplib"),
        "raw": raw_one,
        "minimal": minimal_one,
    },
}
