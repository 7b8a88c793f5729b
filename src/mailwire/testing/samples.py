"""A small sample mailbox for demos, examples and tests.

:func:`sample_messages` builds the same messages every time (fixed dates and Message-IDs), with
the ``email`` package, covering what trips clients up: multipart/alternative with attachments,
non-ASCII subjects, names and bodies (properly encoded), and lines starting with ``.`` (one of
them a lone ``.``, which POP3 must dot-stuff).
"""

from __future__ import annotations

import struct
import zlib
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = ["sample_messages"]

_BASE_DATE = datetime(2024, 3, 4, 9, 30, tzinfo=timezone.utc)


def _tiny_png() -> bytes:
    """A valid 2x2 PNG, made here so that nothing binary needs shipping."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)  # 2x2, 8-bit RGB
    rows = b"\x00\xff\x66\x00\x00\x66\xcc" * 2  # filter byte + two pixels, twice
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def _message(index: int, sender: Address, subject: str, to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(_BASE_DATE + timedelta(days=index, hours=index * 3))
    message["Message-ID"] = f"<sample-{index}@mailwire.test>"
    return message


def sample_messages(to: str = "alice@mailwire.test") -> list[EmailMessage]:
    """Return the sample messages, addressed to *to*, oldest first."""
    messages = []

    welcome = _message(1, Address("mailwire", "hello", "mailwire.test"),
                       "Welcome to mailwire", to)
    welcome.set_content(
        "Hello!\n\nThis mailbox is served by mailwire's embedded test server.\n"
        "Everything here is generated; nothing leaves your machine.\n"
    )
    messages.append(welcome)

    report = _message(2, Address("Bob Example", "bob", "example.org"),
                      "Quarterly report (with attachment)", to)
    report.set_content("The figures are attached.\n\nBob\n")
    report.add_alternative(
        "<html><body><p>The figures are <b>attached</b>.</p><p>Bob</p></body></html>\n",
        subtype="html",
    )
    report.add_attachment(
        b"quarter,revenue\nQ1,100\nQ2,120\nQ3,90\nQ4,140\n",
        maintype="text", subtype="csv", filename="report.csv",
    )
    messages.append(report)

    greeting = _message(3, Address("Jürgen Müller", "juergen", "example.de"),
                        "Grüße aus Köln: Café & Kuchen ☕", to)
    greeting.set_content(
        "Liebe Alice,\n\nviele Grüße aus Köln! Das Café am Dom hat die besten Kuchen.\n\n"
        "Bis bald, Jürgen\n"
    )
    messages.append(greeting)

    meeting = _message(4, Address("田中 花子", "hanako", "example.jp"),
                       "会議のお知らせ (meeting notice)", to)
    meeting.set_content("来週の月曜日、午前十時から会議があります。\nよろしくお願いします。\n")
    messages.append(meeting)

    dots = _message(5, Address("Carol Dotson", "carol", "example.net"),
                    "Lines that start with a dot", to)
    dots.set_content(
        "POP3 must dot-stuff the lines below.\n"
        ".hidden-file\n"
        "..two dots\n"
        ".\n"
        "That lone dot above was not the end of this message.\n"
    )
    messages.append(dots)

    photo = _message(6, Address("Dave Pixel", "dave", "example.com"),
                     "Photo from the trip (café terrace)", to)
    photo.set_content("A tiny picture is attached.\n")
    photo.add_alternative("<p>A <i>tiny</i> picture is attached.</p>\n", subtype="html")
    photo.add_attachment(_tiny_png(), maintype="image", subtype="png",
                         filename="terrace.png")
    messages.append(photo)

    # Fixed MIME boundaries, so the same call gives the same bytes every time.
    for index, message in enumerate(messages, 1):
        multiparts = [part for part in message.walk() if part.is_multipart()]
        for level, part in enumerate(multiparts):
            part.set_boundary(f"mailwire-sample-{index}.{level}")
    return messages
