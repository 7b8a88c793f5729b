"""Download every message from a POP3 mailbox into a local Maildir, then delete it remotely.

A message is deleted on the server only after its file is safely on disk (written, flushed,
fsynced and moved into place by ``mailbox.Maildir``), and deletions take effect only at QUIT:
if anything fails half-way, the connection closes without QUIT and the server keeps every
message (RFC 1939 section 6). Nothing the user asked to keep is lost.

Runs against mailwire's embedded test server with sample messages by default::

    python examples/pop3_to_maildir.py /tmp/inbox

or against a real server (STLS with certificate verification unless --ssl is given)::

    python examples/pop3_to_maildir.py /tmp/inbox --host pop.example.org --user me
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import mailbox
import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

try:
    from mailwire import poplib
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mailwire import poplib


@contextlib.contextmanager
def embedded_server() -> Iterator[tuple[str, int, str, str, ssl.SSLContext]]:
    from mailwire.testing import MailServer, sample_messages, test_ssl_context

    with MailServer(users={"alice": "wonderland"}) as server:
        for message in sample_messages("alice@mailwire.test"):
            server.deliver("alice", message)
        yield server.host, server.pop3_port, "alice", "wonderland", test_ssl_context()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def download(
    client: poplib.POP3, folder: mailbox.Maildir, root: Path, keep: bool
) -> tuple[int, int]:
    count, _ = client.stat()
    saved = octets = 0
    for number in range(1, count + 1):
        _, lines, size = client.retr(number)
        key = folder.add(b"\r\n".join(lines) + b"\r\n")
        # Maildir writes to tmp/ and renames into new/; make both durable before DELE.
        with open(root / "new" / key, "rb") as written:
            os.fsync(written.fileno())
        fsync_dir(root / "new")
        if not keep:
            client.dele(number)
        saved += 1
        octets += size
    return saved, octets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("maildir", type=Path, help="local Maildir to deliver into (created)")
    parser.add_argument("--host", help="POP3 server (default: the embedded test server)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--user")
    parser.add_argument("--ssl", action="store_true", help="implicit TLS (POP3S) instead of STLS")
    parser.add_argument("--cafile", help="CA bundle to verify the server with")
    parser.add_argument("--keep", action="store_true", help="do not delete from the server")
    args = parser.parse_args(argv)

    root = args.maildir
    folder = mailbox.Maildir(root, create=True)
    with contextlib.ExitStack() as stack:
        if args.host is None:
            host, port, user, password, context = stack.enter_context(embedded_server())
        else:
            host, user = args.host, args.user or getpass.getuser()
            port = args.port or (poplib.POP3_SSL_PORT if args.ssl else poplib.POP3_PORT)
            password = getpass.getpass(f"POP3 password for {user}@{host}: ")
            context = ssl.create_default_context(cafile=args.cafile)
        if args.ssl:
            client: poplib.POP3 = poplib.POP3_SSL(host, port, context=context, timeout=30)
        else:
            client = poplib.POP3(host, port, timeout=30)
        # The with-block sends QUIT (committing deletions) only if nothing went wrong.
        with client:
            if not args.ssl:
                client.stls(context)
            client.user(user)
            client.pass_(password)
            saved, octets = download(client, folder, root, args.keep)
    action = "kept on" if args.keep else "deleted from"
    print(f"saved {saved} message(s), {octets} octets, into {root}; {action} the server")
    return 0


if __name__ == "__main__":
    sys.exit(main())
