"""The benchmark message corpus and the digests that check what a client received.

Shared by every suite (POP3 and IMAP). Everything here is deterministic: a message is a
pure function of ``(seed, index, size)``, so a server, a client and a runner that never talk to
each other still agree on the bytes.

Messages look like mail: a block of headers, a blank line, then text lines of about 70
characters ending in CRLF. A few percent of the lines start with ``.`` (and some are exactly
``.``), so POP3 dot-stuffing really happens; some are empty or quoted (``> ...``). The body is cut
to exactly ``size`` octets and always ends with CRLF.

Digests are cheap (CRC-32 chained over the data, plus counts) so that computing them costs little
next to the client under test; the clients compute them outside the measured CPU time anyway.
"""

from __future__ import annotations

import functools
import random
import zlib
from collections.abc import Iterable, Sequence
from typing import Any, Union

__all__ = [
    "DEFAULT_SEED",
    "FetchDigest",
    "LinesDigest",
    "WireDigest",
    "digest_in_batches",
    "message",
]

DEFAULT_SEED = 20240601

_POOL_SIZE = 4096
_VOCABULARY_SIZE = 600
_LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
_LETTER_WEIGHTS = (
    127,
    91,
    82,
    75,
    70,
    67,
    63,
    61,
    60,
    43,
    40,
    28,
    28,
    24,
    24,
    22,
    20,
    20,
    19,
    15,
    10,
    8,
    2,
    2,
    1,
    1,
)


def _vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < _VOCABULARY_SIZE:
        length = rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12))
        words.add("".join(rng.choices(_LETTERS, _LETTER_WEIGHTS, k=length)))
    return sorted(words)


def _sentence_line(rng: random.Random, words: Sequence[str], target: int) -> str:
    parts: list[str] = []
    length = 0
    while length < target:
        word = rng.choice(words)
        if not parts or rng.random() < 0.08:
            word = word.capitalize()
        roll = rng.random()
        if roll < 0.06:
            word += ","
        elif roll < 0.10:
            word += "."
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:target].rstrip()


@functools.lru_cache(maxsize=4)
def _line_pool(seed: int) -> tuple[bytes, ...]:
    """A fixed pool of body lines (without CRLF) that messages draw from."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    pool: list[bytes] = []
    for _ in range(_POOL_SIZE):
        roll = rng.random()
        if roll < 0.03:
            line = ""
        elif roll < 0.04:
            line = "."
        elif roll < 0.08:
            # Lines that dot-stuffing must escape: ".sig", "..", ". indented", "...".
            lead = rng.choice((".", "..", ". ", "...", ".-- "))
            line = lead + _sentence_line(rng, words, rng.randint(30, 74))
        elif roll < 0.12:
            line = "> " + _sentence_line(rng, words, rng.randint(40, 72))
        else:
            line = _sentence_line(rng, words, rng.randint(62, 78))
        pool.append(line.encode("ascii"))
    return tuple(pool)


def _headers(rng: random.Random, seed: int, index: int) -> bytes:
    day = 1 + index % 28
    hour, minute, second = rng.randrange(24), rng.randrange(60), rng.randrange(60)
    sender = f"user{rng.randrange(10_000)}"
    lines = [
        f"Return-Path: <{sender}@example.org>",
        f"Received: from mx{rng.randrange(100)}.example.org (mx.example.org "
        f"[192.0.2.{rng.randrange(1, 255)}])",
        f"\tby mail.example.net with ESMTPS id {rng.getrandbits(64):016x};",
        f"\tMon, {day:02d} Jan 2024 {hour:02d}:{minute:02d}:{second:02d} +0000",
        f"From: Sender {sender} <{sender}@example.org>",
        "To: Benchmark Recipient <bench@example.net>",
        f"Subject: mailwire benchmark message {index} (seed {seed})",
        f"Date: Mon, {day:02d} Jan 2024 {hour:02d}:{minute:02d}:{second:02d} +0000",
        f"Message-ID: <{seed}.{index}.{rng.getrandbits(32):08x}@bench.mailwire.invalid>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def _fit(text: bytes, size: int) -> bytes:
    """Cut CRLF-terminated ``text`` (at least ``size`` octets long) to exactly ``size`` octets.

    The result still ends with CRLF: the line that crosses the limit is shortened.
    """
    last = text.rfind(b"\r\n", 0, size - 1)
    cut = last + 2 if last >= 0 else 0  # end of the last whole line that fits
    rest = size - cut
    if rest == 0:
        return text[:cut]
    if rest == 1:  # no room for a line of its own: lengthen the previous one
        return text[: cut - 2] + b"-\r\n"
    return text[: size - 2] + b"\r\n"


def message(seed: int, index: int, size: int) -> bytes:
    """Message ``index`` (1-based) of a corpus: exactly ``size`` octets, CRLF line ends."""
    if size < 4:
        raise ValueError(f"message size {size} is too small")
    rng = random.Random(seed * 1_000_003 + index)
    head = _headers(rng, seed, index)
    if len(head) >= size:
        return _fit(head + b"x\r\n", size)
    pool = _line_pool(seed)
    chunks = [head]
    have = len(head)
    while have < size:
        # ~68 octets per pool line on average: draw a little more than needed.
        lines = rng.choices(pool, k=(size - have) // 60 + 2)
        chunk = b"\r\n".join(lines) + b"\r\n"
        chunks.append(chunk)
        have += len(chunk)
    return _fit(b"".join(chunks), size)


def digest_in_batches(results: Iterable[Any], digest: Any, meter: Any, size: int = 64) -> None:
    """Fold ``results`` into ``digest`` ``size`` at a time with ``meter`` (a ``Meter``)
    paused, so the digest's cost is not measured; dropping each batch is, because a real
    loop frees each result as it goes too. Pass a ``map`` over the client's method: it calls
    it from C, adding nothing per call to what is measured."""
    batch: list[Any] = []
    for result in results:
        batch.append(result)
        if len(batch) == size:
            meter.pause()
            digest.add_all(batch)
            meter.resume()
            batch.clear()
    meter.pause()
    digest.add_all(batch)
    meter.resume()
    batch.clear()


class LinesDigest:
    """What a library client saw: ``(response, lines, octets)`` tuples as ``retr`` returns.

    Two clients that return the same responses, the same lines and the same octet counts get
    the same digest. ``add_text`` computes the digest a correct client must get for a response
    status line and an (unstuffed) message body.
    """

    __slots__ = ("crc", "lines", "messages", "octets")

    def __init__(self) -> None:
        self.messages = 0
        self.lines = 0
        self.octets = 0
        self.crc = 0

    def add(self, response: bytes, lines: Sequence[bytes], octets: int) -> None:
        crc = zlib.crc32(response, self.crc)
        crc = zlib.crc32(b"\r\n", crc)
        if lines:
            crc = zlib.crc32(b"\r\n".join(lines), crc)
            crc = zlib.crc32(b"\r\n", crc)
        self.crc = crc
        self.messages += 1
        self.lines += len(lines)
        self.octets += octets

    def add_all(self, results: Iterable[tuple[bytes, Sequence[bytes], int]]) -> None:
        for response, lines, octets in results:
            self.add(response, lines, octets)

    def add_text(self, response: bytes, body: bytes) -> None:
        """The expected digest: ``body`` is CRLF-terminated lines (or empty)."""
        self.crc = zlib.crc32(body, zlib.crc32(b"\r\n", zlib.crc32(response, self.crc)))
        self.messages += 1
        self.lines += body.count(b"\n")
        self.octets += len(body)

    def hexdigest(self) -> str:
        return f"msgs={self.messages} lines={self.lines} octets={self.octets} crc={self.crc:08x}"


class WireDigest:
    """What a raw client saw: the exact bytes on the wire, concatenated."""

    __slots__ = ("crc", "octets")

    def __init__(self) -> None:
        self.octets = 0
        self.crc = 0

    def add(self, data: bytes | bytearray | memoryview) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.octets += len(data)

    def hexdigest(self) -> str:
        return f"wire={self.octets} crc={self.crc:08x}"


#: One element of an ``imaplib`` response's data list: a line, a ``(line, literal)`` pair,
#: or ``None`` (no data).
FetchItem = Union[bytes, tuple[bytes, bytes], None]


class FetchDigest:
    """What an IMAP library client saw: the ``(typ, data)`` results of ``fetch`` calls.

    ``data`` is the list ``imaplib`` returns: plain lines (``bytes``), ``(line, literal)``
    tuples for responses with a literal, or ``[None]``. Two clients that return the same
    ``typ`` strings and the same lists, element by element and in the same shapes, get the same
    digest. A server computes the expected digest by calling ``begin`` once per command and
    ``add_items`` with the elements a correct client returns, in as many pieces as it likes.
    """

    __slots__ = ("crc", "lines", "literals", "octets", "responses")

    def __init__(self) -> None:
        self.responses = 0
        self.lines = 0
        self.literals = 0
        self.octets = 0
        self.crc = 0

    def begin(self, typ: str) -> None:
        self.responses += 1
        self.crc = zlib.crc32(b"\x00" + typ.encode("ascii") + b"\x00", self.crc)

    def add_items(self, data: Iterable[FetchItem]) -> None:
        crc = self.crc
        lines = literals = octets = 0
        for item in data:
            if isinstance(item, tuple):
                line, literal = item
                # The literal's length keeps "line + literal" from matching other splits.
                crc = zlib.crc32(b"\x01%d\x01" % len(literal), zlib.crc32(line, crc))
                crc = zlib.crc32(literal, crc)
                literals += 1
                octets += len(literal)
            elif item is None:
                crc = zlib.crc32(b"\x03", crc)
            else:
                crc = zlib.crc32(b"\x02", zlib.crc32(item, crc))
                lines += 1
        self.crc = crc
        self.lines += lines
        self.literals += literals
        self.octets += octets

    def add(self, typ: str, data: Iterable[FetchItem]) -> None:
        """Fold one ``(typ, data)`` result of ``fetch``."""
        self.begin(typ)
        self.add_items(data)

    def add_all(self, results: Iterable[tuple[str, Iterable[FetchItem]]]) -> None:
        for typ, data in results:
            self.add(typ, data)

    def hexdigest(self) -> str:
        return (
            f"responses={self.responses} lines={self.lines} literals={self.literals} "
            f"octets={self.octets} crc={self.crc:08x}"
        )
