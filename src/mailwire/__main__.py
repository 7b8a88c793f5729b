"""Command line: ``python -m mailwire demo`` and ``python -m mailwire serve``.

``demo`` starts the embedded test mail server with a sample mailbox, reads it all over POP3 with
STLS and a verifying TLS context, and prints a summary. ``serve`` runs the embedded server in the
foreground until Ctrl-C, for trying a client by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import io
import re
import signal
import sys
import time
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage

from mailwire import __version__, imaplib, poplib
from mailwire.testing import CA_FILE, MailServer, sample_messages, test_ssl_context

DEMO_USER = "alice"
DEMO_PASSWORD = "wonderland"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _describe(number: int, message: EmailMessage, octets: int) -> list[str]:
    date = message["date"]
    when = date.datetime.strftime("%a %d %b %Y %H:%M %z") if date is not None else "(no date)"
    leaves = [part for part in message.walk() if not part.is_multipart()]
    attachments = [part for part in leaves if isinstance(part, EmailMessage)
                   and part.is_attachment()]
    names = ", ".join(part.get_filename() or "unnamed" for part in attachments)
    parts = _plural(len(leaves), "part") + ", " + (
        f"{_plural(len(attachments), 'attachment')} ({names})" if attachments
        else "no attachments"
    )
    return [
        f"  [{number}] {message['subject']}",
        f"      From: {message['from']}",
        f"      Date: {when}",
        f"      Size: {octets:,} octets; {message.get_content_type()}, {parts}",
    ]


def _imap_summary(server: MailServer) -> list[str]:
    """Read the same mailbox over IMAP + STARTTLS; one line per message, subjects last."""
    with imaplib.IMAP4(server.host, server.imap_port, timeout=30) as imap:
        imap.starttls(test_ssl_context())
        version = getattr(imap.sock, "version", lambda: "TLS")()
        print(f"IMAP on port {server.imap_port}: STARTTLS {version}, certificate verified; "
              f"capabilities {' '.join(imap.capabilities[:6])} ...")
        imap.login(DEMO_USER, DEMO_PASSWORD)
        _, exists = imap.select("INBOX", readonly=True)
        _, data = imap.fetch(
            "1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        )
        subjects = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            header, literal = item
            fields = re.search(rb"UID (\d+).*RFC822\.SIZE (\d+)", header)
            parsed = email.message_from_bytes(literal, policy=policy.default)
            subject = str(parsed["subject"])
            subjects.append(subject)
            uid, size = (int(x) for x in fields.groups()) if fields else (0, 0)
            print(f"  UID {uid:<3} {size:>6,} octets  {subject}")
        print(f"INBOX (read-only): {_plural(int(exists[0] or 0), 'message')}")
        return subjects


def demo(args: argparse.Namespace) -> int:
    """Serve the sample mailbox and read it over POP3 + STLS and IMAP + STARTTLS, each with a
    verifying TLS context."""
    with MailServer(users={DEMO_USER: DEMO_PASSWORD}, imap=True) as server:
        samples = sample_messages(f"{DEMO_USER}@mailwire.test")
        for sample in samples:
            server.deliver(DEMO_USER, sample)
        print(f"mailwire {__version__} demo")
        print(f"Embedded test server on {server.host}: POP3 port {server.pop3_port}, IMAP port "
              f"{server.imap_port}; {_plural(len(samples), 'sample message')} for {DEMO_USER!r}")
        client = poplib.POP3(server.host, server.pop3_port, timeout=30)
        pop_subjects = []
        try:
            capabilities = " ".join(
                " ".join([name, *params]) for name, params in client.capa().items()
            )
            print(f"POP3 capabilities: {capabilities}")
            client.stls(test_ssl_context())
            version = getattr(client.sock, "version", lambda: "TLS")()
            print(f"STLS: {version}, certificate verified against the TEST-ONLY CA "
                  f"for {server.host}")
            client.user(DEMO_USER)
            client.pass_(DEMO_PASSWORD)
            count, total = client.stat()
            print(f"Mailbox: {_plural(count, 'message')}, {total:,} octets")
            print()
            for number in range(1, count + 1):
                _, lines, octets = client.retr(number)
                message = email.message_from_bytes(b"\r\n".join(lines) + b"\r\n",
                                                   policy=policy.default)
                assert isinstance(message, EmailMessage)
                pop_subjects.append(str(message["subject"]))
                print("\n".join(_describe(number, message, octets)))
            print()
            client.quit()
        except BaseException:
            client.close()
            raise
        imap_subjects = _imap_summary(server)
    print()
    same = "the same" if imap_subjects == pop_subjects else "DIFFERENT"
    print(f"Retrieved {_plural(count, 'message')} over POP3 and {len(imap_subjects)} over IMAP "
          f"({same} subjects), both over verified TLS; logged out, server stopped.")
    return 0 if same == "the same" else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    """Run the embedded server until interrupted."""
    users = {}
    for spec in args.user or ["alice:secret"]:
        name, sep, password = spec.partition(":")
        if not sep or not name:
            print(f"error: --user wants NAME:PASSWORD, not {spec!r}", file=sys.stderr)
            return 2
        users[name] = password
    server = MailServer(
        users,
        host=args.host,
        tls=not args.no_tls,
        require_tls=args.require_tls,
        maildir=args.maildir,
        imap=True,
        ports={
            "pop3": args.pop3_port,
            "pop3s": args.pop3s_port,
            "imap": args.imap_port,
            "imaps": args.imaps_port,
        },
    )
    with server:
        if args.samples:
            for name in users:
                for sample in sample_messages(f"{name}@mailwire.test"):
                    server.deliver(name, sample)
        print("mailwire test mail server (loopback only; TEST-ONLY certificate)")
        stls = " with STLS" if server.pop3s is not None else ""
        print(f"  POP3   {server.host} port {server.pop3_port}{stls}")
        if server.pop3s is not None:
            print(f"  POP3S  {server.host} port {server.pop3s_port}")
        starttls = " with STARTTLS" if server.imaps is not None else ""
        print(f"  IMAP   {server.host} port {server.imap_port}{starttls}")
        if server.imaps is not None:
            print(f"  IMAPS  {server.host} port {server.imaps_port}")
            print(f"  CA     {CA_FILE}")
        print(f"  users  {', '.join(sorted(users))}")
        print("Press Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.signal(signal.SIGTERM, _interrupt)
            while True:
                time.sleep(3600)  # unlike a bare Event.wait(), Ctrl-C ends it on Windows too
    print("Stopped.")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mailwire",
        description="mailwire: drop-in, faster and hardened poplib and imaplib.",
    )
    parser.add_argument("--version", action="version", version=f"mailwire {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo_parser = commands.add_parser(
        "demo",
        help="read a sample mailbox from the embedded server over POP3 and IMAP, verified TLS",
        description="Start the embedded test server with a sample mailbox, read every message "
        "over POP3 with STLS and a verifying TLS context, and print a summary.",
    )
    demo_parser.set_defaults(func=demo)
    serve_parser = commands.add_parser(
        "serve",
        help="run the embedded test mail server until Ctrl-C",
        description="Run the embedded test mail server on loopback until Ctrl-C.",
    )
    serve_parser.add_argument("--host", default="127.0.0.1",
                              help="loopback address to listen on (default 127.0.0.1)")
    serve_parser.add_argument("--user", action="append", metavar="NAME:PASSWORD",
                              help="add a user (repeatable; default alice:secret)")
    serve_parser.add_argument("--samples", action="store_true",
                              help="deliver the sample messages to every user")
    serve_parser.add_argument("--maildir", metavar="DIR",
                              help="keep mailboxes as Maildirs in DIR")
    serve_parser.add_argument("--pop3-port", type=int, default=0, metavar="PORT",
                              help="POP3 port (default: any free port)")
    serve_parser.add_argument("--pop3s-port", type=int, default=0, metavar="PORT",
                              help="POP3S port (default: any free port)")
    serve_parser.add_argument("--imap-port", type=int, default=0, metavar="PORT",
                              help="IMAP port (default: a free one)")
    serve_parser.add_argument("--imaps-port", type=int, default=0, metavar="PORT",
                              help="IMAPS port (default: a free one)")
    serve_parser.add_argument("--require-tls", action="store_true",
                              help="refuse passwords before STLS")
    serve_parser.add_argument("--no-tls", action="store_true",
                              help="no STLS and no POP3S")
    serve_parser.set_defaults(func=serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Subjects are not ASCII; never die on a console that cannot show them.
        sys.stdout.reconfigure(errors="backslashreplace")
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
