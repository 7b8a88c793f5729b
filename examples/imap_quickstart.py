"""IMAP in five steps: connect with verified STARTTLS, log in, list folders, look at the newest
messages, log out.

The table shows each message's UID, flags, date, sender, size and subject, taken from the
ENVELOPE that the server builds from the message's headers, so nothing but a few hundred bytes
per message crosses the wire. INBOX is opened with EXAMINE (``select(readonly=True)``): browsing
changes nothing on the server, not even the ``\\Recent`` flag. Leaving the ``with`` block sends
LOGOUT.

IMAP answers arrive as raw bytes in ``imaplib``, as in the standard library: the small parser
below turns a LIST or FETCH response into Python lists (strings, ``None`` for NIL, nested
lists), decodes modified UTF-7 folder names and MIME encoded-words in subjects and names.

Runs against mailwire's embedded test server with sample messages by default::

    python examples/imap_quickstart.py

or against a real server (STARTTLS with certificate verification unless --ssl is given)::

    python examples/imap_quickstart.py --host imap.example.org --user me --count 20
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import getpass
import io
import re
import ssl
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from email.header import decode_header, make_header
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NamedTuple, Optional

try:
    from mailwire import imaplib
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mailwire import imaplib


@contextlib.contextmanager
def embedded_server() -> Iterator[tuple[str, int, str, str, ssl.SSLContext]]:
    from mailwire.testing import MailServer, sample_messages, test_ssl_context

    with MailServer(users={"alice": "wonderland"}, pop3=False, imap=True) as server:
        for folder in ("Archive", "Archive/2023", "Sent", "Entwürfe"):
            server.store.create_folder("alice", folder)
        flags: dict[int, tuple[str, ...]] = {1: ("\\Seen",), 2: ("\\Seen", "\\Answered"),
                                             6: ("\\Flagged",)}
        for number, message in enumerate(sample_messages("alice@mailwire.test"), 1):
            server.deliver("alice", message, flags=flags.get(number, ()),
                           internal_date=message["date"].datetime)
        yield server.host, server.imap_port, "alice", "wonderland", test_ssl_context()


# -- reading IMAP responses --------------------------------------------------------------------

_OPEN, _CLOSE = object(), object()
_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))', re.DOTALL)
_LITERAL_AT_END = re.compile(rb"\{(\d+)\+?\}\Z")


def _tokens(text: bytes) -> Iterator[Any]:
    position = 0
    while True:
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise ValueError(f"cannot parse {text[position:]!r}")
            return
        position = match.end()
        opening, closing, quoted, atom = match.groups()
        if opening:
            yield _OPEN
        elif closing:
            yield _CLOSE
        elif quoted is not None:
            yield re.sub(rb"\\(.)", rb"\1", quoted)
        else:
            yield None if atom.upper() == b"NIL" else atom


def parse_response(data: Iterable[Any]) -> list[Any]:
    """Turn the data of a LIST or FETCH response into nested lists.

    *data* is what ``imaplib`` returns: ``bytes`` lines, and ``(head, literal)`` tuples where
    the server sent a literal (``head`` ends with ``{size}``), each followed by the rest of its
    line. Atoms and strings become ``bytes``, NIL becomes ``None``, parentheses become lists.
    """
    stack: list[list[Any]] = [[]]
    for item in data:
        pieces: list[Any] = []
        if isinstance(item, tuple):
            head, literal = item
            match = _LITERAL_AT_END.search(head)
            if match is None:
                raise ValueError(f"no literal announced in {head!r}")
            pieces = [*_tokens(head[:match.start()]), bytes(literal)]
        elif item is not None:
            pieces = list(_tokens(item))
        for token in pieces:
            if token is _OPEN:
                stack.append([])
            elif token is _CLOSE:
                if len(stack) == 1:
                    raise ValueError("unbalanced ')' in response")
                done = stack.pop()
                stack[-1].append(done)
            else:
                stack[-1].append(token)
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in response")
    return stack[0]


def decode_mailbox_name(name: bytes) -> str:
    """Decode IMAP's modified UTF-7 (RFC 3501 section 5.1.3): ``Entw&APw-rfe`` is Entwürfe."""

    def shifted(match: re.Match[str]) -> str:
        encoded = match.group(1)
        if not encoded:
            return "&"
        padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
        return base64.b64decode(padded).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", shifted, name.decode("ascii"))


def decode_words(value: Optional[bytes]) -> str:
    """Header text with MIME encoded-words (``=?utf-8?q?...?=``) decoded."""
    if value is None:
        return ""
    text = value.decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, ValueError):  # an unknown charset or broken encoding: show it raw
        return text


# -- the table ---------------------------------------------------------------------------------

class Row(NamedTuple):
    number: int
    uid: int
    flags: tuple[str, ...]
    date: str
    sender: str
    size: int
    subject: str


def list_folders(client: imaplib.IMAP4) -> list[tuple[str, tuple[str, ...]]]:
    """``(name, attributes)`` for every folder, names decoded."""
    typ, data = client.list()
    if typ != "OK":
        raise imaplib.IMAP4.error(f"LIST failed: {data!r}")
    folders = []
    for line in data:
        attributes, _delimiter, name = parse_response([line])
        folders.append((decode_mailbox_name(name),
                        tuple(a.decode("ascii") for a in attributes)))
    return folders


def _sender(envelope: list[Any]) -> str:
    addresses = envelope[2] or envelope[3] or []  # From, else Sender
    if not addresses:
        return ""
    name, _route, mailbox, host = addresses[0]
    if name:
        return decode_words(name)
    return b"@".join(p for p in (mailbox, host) if p).decode("utf-8", "replace")


def _date(raw: Optional[bytes]) -> str:
    if not raw:
        return ""
    try:
        return parsedate_to_datetime(raw.decode("ascii", "replace")).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError, IndexError):
        return raw.decode("ascii", "replace")


def newest(client: imaplib.IMAP4, exists: int, count: int) -> list[Row]:
    """Envelope, flags and size of the newest *count* of *exists* messages, newest first."""
    if exists == 0 or count <= 0:
        return []
    first = max(1, exists - count + 1)
    typ, data = client.fetch(f"{first}:{exists}", "(UID FLAGS RFC822.SIZE ENVELOPE)")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH failed: {data!r}")
    parsed = parse_response(data)
    rows = []
    for number, items in zip(parsed[::2], parsed[1::2]):
        fields = {key.upper().decode("ascii"): value
                  for key, value in zip(items[::2], items[1::2])}
        if "ENVELOPE" not in fields:
            continue  # an unsolicited FLAGS update another client's change caused
        envelope = fields["ENVELOPE"]
        rows.append(Row(
            number=int(number),
            uid=int(fields["UID"]),
            flags=tuple(f.decode("ascii") for f in fields["FLAGS"]),
            date=_date(envelope[0]),
            sender=_sender(envelope),
            size=int(fields["RFC822.SIZE"]),
            subject=decode_words(envelope[1]),
        ))
    return sorted(rows, key=lambda row: row.number, reverse=True)


def width(text: str) -> int:
    """Columns *text* takes in a terminal: East Asian wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def fit(text: str, columns: int) -> str:
    """*text* cut (with an ellipsis) or padded to exactly *columns* terminal columns."""
    if width(text) > columns:
        while width(text) > columns - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (columns - width(text))


def format_table(rows: list[Row]) -> list[str]:
    lines = [f"{'UID':>5}  {fit('Flags', 20)}  {fit('Date', 16)}  {fit('From', 20)}"
             f"  {'Size':>6}  Subject"]
    for row in rows:
        flags = " ".join(f.lstrip("\\") for f in row.flags) or "-"
        lines.append(f"{row.uid:>5}  {fit(flags, 20)}  {fit(row.date, 16)}  "
                     f"{fit(row.sender, 20)}  {row.size:>6}  {row.subject}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="IMAP server (default: the embedded test server)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--ssl", action="store_true", help="implicit TLS (IMAPS) instead of "
                        "STARTTLS")
    parser.add_argument("--cafile", help="CA bundle to verify the server with")
    parser.add_argument("--folder", default="INBOX")
    parser.add_argument("--count", "-n", type=int, default=10,
                        help="how many of the newest messages to show (default 10)")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # subjects are not all ASCII

    with contextlib.ExitStack() as stack:
        if args.host is None:
            host, port, user, password, context = stack.enter_context(embedded_server())
        else:
            host, user = args.host, args.user or getpass.getuser()
            port = args.port or (imaplib.IMAP4_SSL_PORT if args.ssl else imaplib.IMAP4_PORT)
            password = getpass.getpass(f"IMAP password for {user}@{host}: ")
            context = ssl.create_default_context(cafile=args.cafile)
        if args.ssl:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=context,
                                                      timeout=30)
        else:
            client = imaplib.IMAP4(host, port, timeout=30)
        with client:  # LOGOUT at the end, even after an error
            if not args.ssl:
                client.starttls(context)  # raises ssl.SSLCertVerificationError if not verified
            print(f"Connected to {host}:{port}, {client.sock.version()}, certificate verified")
            client.login(user, password)
            print(f"Logged in as {user}")
            print("\nFolders:")
            for name, attributes in list_folders(client):
                print(f"  {fit(name, 20)}  {' '.join(attributes)}")
            typ, data = client.select(args.folder, readonly=True)
            if typ != "OK":
                print(f"cannot open {args.folder}: {data[0].decode(errors='replace')}",
                      file=sys.stderr)
                return 1
            exists = int(data[0])
            rows = newest(client, exists, args.count)
            print(f"\n{args.folder}: {exists} message(s), the newest {len(rows)} first:\n")
            print("\n".join(format_table(rows)))
    print("\nLogged out.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
