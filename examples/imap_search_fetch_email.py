"""Search a mailbox, fetch the matching messages whole and read them with the ``email`` package,
without marking anything as read.

- The search criteria go to ``search(..., params=[...])``: each ``?`` is replaced by a value
  quoted as IMAP needs, so a sender or subject taken from user input cannot break the command
  (the standard library sends criteria exactly as written; quoting them is left to you).
- ``uid=True`` sends ``UID SEARCH`` and ``UID FETCH``: UIDs stay valid while other clients
  delete messages, message sequence numbers do not.
- ``BODY.PEEK[]`` fetches the complete message without setting ``\\Seen``. ``BODY[]`` and
  ``RFC822`` set it, on a mailbox opened with SELECT (read-write), as this one is.
- ``email.message_from_bytes(..., policy=email.policy.default)`` gives an ``EmailMessage``:
  decoded headers, ``get_body()`` for the text part and ``iter_attachments()``.

With no criteria it shows the unread (UNSEEN) messages. Runs against mailwire's embedded test
server with sample messages by default (the first one already read)::

    python examples/imap_search_fetch_email.py
    python examples/imap_search_fetch_email.py --all --since 2024-03-08
    python examples/imap_search_fetch_email.py --from bob@example.org

or against a real server (STARTTLS with certificate verification unless --ssl is given)::

    python examples/imap_search_fetch_email.py --host imap.example.org --user me --unseen
"""

from __future__ import annotations

import argparse
import contextlib
import email
import getpass
import io
import re
import ssl
import sys
from collections.abc import Iterator
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

try:
    from mailwire import imaplib
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mailwire import imaplib

_UID = re.compile(rb"\bUID (\d+)")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@contextlib.contextmanager
def embedded_server() -> Iterator[tuple[str, int, str, str, ssl.SSLContext]]:
    from mailwire.testing import MailServer, sample_messages, test_ssl_context

    with MailServer(users={"alice": "wonderland"}, pop3=False, imap=True) as server:
        for number, message in enumerate(sample_messages("alice@mailwire.test"), 1):
            # The first message was read already; each arrived when it was sent.
            server.deliver("alice", message, flags=("\\Seen",) if number == 1 else (),
                           internal_date=message["date"].datetime)
        yield server.host, server.imap_port, "alice", "wonderland", test_ssl_context()


def imap_date(day: date) -> str:
    """A date as IMAP search keys want it: ``7-Mar-2024`` (English month names, whatever the
    locale, hence no strftime)."""
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"


def build_criteria(
    *,
    unseen: bool = False,
    sender: str | None = None,
    subject: str | None = None,
    since: date | None = None,
) -> tuple[str, list[Any]]:
    """IMAP search criteria with ``?`` placeholders, and the values that fill them.

    Criteria listed together must all match (IMAP ANDs them). No criteria means ALL.
    """
    keys: list[str] = []
    values: list[Any] = []
    if unseen:
        keys.append("UNSEEN")
    if sender:
        keys.append("FROM ?")
        values.append(sender)
    if subject:
        keys.append("SUBJECT ?")
        values.append(subject)
    if since:
        keys.append("SINCE ?")  # the day the server received it, from that day on
        values.append(imap_date(since))
    return " ".join(keys) or "ALL", values


def search(client: imaplib.IMAP4, criteria: str, values: list[Any]) -> list[int]:
    """UIDs of the messages matching *criteria* in the selected mailbox."""
    # Values that are not ASCII need a charset; UTF-8 is the one every server knows.
    ascii_only = all(not isinstance(v, str) or v.isascii() for v in values)
    typ, data = client.search(None if ascii_only else "UTF-8", criteria,
                              params=values or None, uid=True)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"SEARCH failed: {data!r}")
    return [int(uid) for uid in data[0].split()]


def fetch_messages(client: imaplib.IMAP4, uids: list[int]) -> Iterator[tuple[int, EmailMessage]]:
    """``(uid, message)`` for each of *uids*, fetched with BODY.PEEK[] (nothing marked read)."""
    if not uids:
        return
    typ, data = client.fetch(uids, "(UID BODY.PEEK[])", uid=True)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH failed: {data!r}")
    for index, item in enumerate(data):
        if not isinstance(item, tuple):
            continue  # the b")" closing each message, or an unsolicited FLAGS update
        head, raw = item
        # Servers send UID before the body (as here) or after it, in the rest of the line.
        rest = data[index + 1] if index + 1 < len(data) else b""
        match = _UID.search(head) or _UID.search(rest if isinstance(rest, bytes) else b"")
        if match is None:
            continue
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        yield int(match.group(1)), message


def text_of(message: EmailMessage) -> str | None:
    """The message's plain-text body (the text/plain alternative when there is one), its
    lines ending in LF (messages travel with CRLF)."""
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return None
    assert isinstance(part, EmailMessage)
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or lying charset
        content = part.get_payload(decode=True).decode("utf-8", "replace")
    return str(content).replace("\r\n", "\n")


def attachment_names(message: EmailMessage) -> list[str]:
    return [part.get_filename() or f"(unnamed {part.get_content_type()})"
            for part in message.iter_attachments()]


def describe(uid: int, message: EmailMessage, max_lines: int) -> list[str]:
    sent = message["date"]
    lines = [
        f"[UID {uid}] {message['subject']}",
        f"  From: {message['from']}",
        f"  Date: {sent.datetime.strftime('%Y-%m-%d %H:%M %z') if sent else '(none)'}",
    ]
    names = attachment_names(message)
    lines.append(f"  Attachments: {', '.join(names) if names else 'none'}")
    text = text_of(message)
    if text is None:
        lines.append("  (no plain-text part)")
    else:
        body = text.rstrip("\n").splitlines()
        lines += [f"  | {line}".rstrip() for line in body[:max_lines]]
        if len(body) > max_lines:
            lines.append(f"  | ... ({len(body) - max_lines} more lines)")
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
    parser.add_argument("--unseen", action="store_true", help="unread messages only")
    parser.add_argument("--from", dest="sender", metavar="ADDRESS",
                        help="sender contains this text")
    parser.add_argument("--subject", help="subject contains this text")
    parser.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD",
                        help="received on or after this day")
    parser.add_argument("--all", action="store_true",
                        help="no UNSEEN default when no other criteria are given")
    parser.add_argument("--lines", type=int, default=8, help="text lines shown per message")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # subjects are not all ASCII

    unseen = args.unseen or not (args.all or args.sender or args.subject or args.since)
    criteria, values = build_criteria(unseen=unseen, sender=args.sender,
                                      subject=args.subject, since=args.since)
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
        with client:
            if not args.ssl:
                client.starttls(context)
            client.login(user, password)
            typ, data = client.select(args.folder)
            if typ != "OK":
                print(f"cannot open {args.folder}: {data[0].decode(errors='replace')}",
                      file=sys.stderr)
                return 1
            uids = search(client, criteria, values)
            shown = f"{criteria!r}, params={values!r}" if values else repr(criteria)
            print(f"search({shown}): {len(uids)} message(s) in {args.folder}\n")
            for uid, message in fetch_messages(client, uids):
                print("\n".join(describe(uid, message, args.lines)))
                print()
    print(f"Fetched {len(uids)} message(s) with BODY.PEEK[]; none was marked as read.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
