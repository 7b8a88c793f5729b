"""IMAP over a command's stdin and stdout with ``IMAP4_stream``: no port, no password.

``IMAP4_stream(command)`` runs *command* through the shell and speaks IMAP over its standard
input and output. The usual use is an IMAP server binary started already logged in, often
through ssh, which does the authentication::

    python examples/imap_stream.py --command 'ssh mail.example.org /usr/lib/dovecot/imap'

Such a server greets with ``* PREAUTH``: the session starts in the authenticated state
(``client.state == 'AUTH'``), so the client selects a mailbox straight away, without LOGIN.

By default the command is this same script in a helper mode, ``--serve-stdio``: a tiny
preauthenticated IMAP server on stdin/stdout. It starts mailwire's embedded test server with the
sample messages on loopback, logs in to it, answers the client with a ``* PREAUTH`` greeting and
from then on relays bytes both ways, so every command is answered by the embedded server's real
IMAP implementation. Try it by hand (type ``a SELECT INBOX``, then ``b LOGOUT``)::

    python examples/imap_stream.py --serve-stdio

and run the client against it::

    python examples/imap_stream.py
"""

from __future__ import annotations

import argparse
import email
import io
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import threading
from email import policy
from pathlib import Path

try:
    from mailwire import imaplib
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mailwire import imaplib


# -- the helper: a preauthenticated IMAP server on stdin/stdout ---------------------------------

def _pump_stdin(sock: socket.socket, stdin: int) -> None:
    """Copy the client's commands to the server; at their end, tell the server so."""
    try:
        while True:
            data = os.read(stdin, 65536)
            if not data:
                break
            sock.sendall(data)
    except OSError:
        pass  # the server side is gone: the main thread sees it too
    finally:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve_stdio(stdin: int = 0, stdout: int = 1) -> int:
    """Serve the sample mailbox, preauthenticated, over the file descriptors *stdin*/*stdout*.

    The embedded server speaks IMAP on a TCP port and starts every session with LOGIN, so this
    logs in on the client's behalf over loopback, replaces the greeting by ``* PREAUTH`` and
    then relays. Nothing but IMAP goes to *stdout*.
    """
    from mailwire.testing import MailServer, sample_messages

    password = secrets.token_urlsafe(16)  # only this process ever knows it
    with MailServer(users={"alice": password}, pop3=False, imap=True, tls=False) as server:
        for message in sample_messages("alice@mailwire.test"):
            server.deliver("alice", message)
        with socket.create_connection((server.host, server.imap_port), timeout=60) as sock:
            # Nothing arrives after the LOGIN reply until the next command, so the buffered
            # reader below cannot swallow anything meant for the client.
            with sock.makefile("rb") as replies:
                replies.readline()  # the greeting: "* OK [CAPABILITY ...] mailwire ready."
                sock.sendall(b"0 LOGIN alice " + password.encode("ascii") + b"\r\n")
                reply = replies.readline()
                while reply.startswith(b"* "):  # untagged data before the tagged reply
                    reply = replies.readline()
            status = re.match(rb"0 OK (\[CAPABILITY [^]]*\] )?", reply)
            if status is None:
                print(f"imap_stream helper: cannot log in to the embedded server: {reply!r}",
                      file=sys.stderr)
                return 1
            capability = status.group(1) or b""
            os.write(stdout, b"* PREAUTH " + capability + b"alice, served over a stream\r\n")
            sock.settimeout(None)  # the client may think for as long as it likes
            threading.Thread(target=_pump_stdin, args=(sock, stdin), daemon=True).start()
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break  # LOGOUT answered, or the client went away
                    view = memoryview(data)
                    while view:
                        view = view[os.write(stdout, view):]
            except BrokenPipeError:
                pass  # the client is gone
    return 0


# -- the client ---------------------------------------------------------------------------------

def helper_command() -> str:
    """The shell command that runs this script's ``--serve-stdio`` mode with this Python."""
    parts = [sys.executable, str(Path(__file__).resolve()), "--serve-stdio"]
    if os.name == "nt":
        return subprocess.list2cmdline(parts)
    return shlex.join(parts)


def subjects(client: imaplib.IMAP4, folder: str = "INBOX") -> list[tuple[int, str, str]]:
    """``(uid, sender, subject)`` of every message in *folder* (opened read-only)."""
    typ, data = client.select(folder, readonly=True)
    if typ != "OK":
        raise imaplib.IMAP4.error(f"cannot select {folder}: {data!r}")
    if int(data[0]) == 0:
        return []
    typ, data = client.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
    if typ != "OK":
        raise imaplib.IMAP4.error(f"FETCH failed: {data!r}")
    found = []
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"\bUID (\d+)", item[0])
            headers = email.message_from_bytes(item[1], policy=policy.default)
            found.append((int(uid.group(1)) if uid else 0, str(headers["from"] or ""),
                          str(headers["subject"] or "")))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--command", help="shell command speaking IMAP on stdin/stdout "
                        "(default: this script with --serve-stdio)")
    parser.add_argument("--folder", default="INBOX")
    parser.add_argument("--serve-stdio", action="store_true",
                        help="be the preauthenticated IMAP server on stdin/stdout")
    args = parser.parse_args(argv)
    if args.serve_stdio:
        return serve_stdio()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # subjects are not all ASCII

    command = args.command or helper_command()
    print(f"IMAP4_stream({command!r})")
    with imaplib.IMAP4_stream(command) as client:  # LOGOUT, then the command is waited for
        print(f"greeting: {client.welcome.decode('utf-8', 'replace')}")
        print(f"state: {client.state} (no LOGIN needed)")
        print(f"capabilities: {' '.join(client.capabilities)}\n")
        found = subjects(client, args.folder)
        print(f"{args.folder}: {len(found)} message(s)")
        for uid, sender, subject in found:
            print(f"  {uid:>4}  {subject}  ({sender})")
    print(f"\nLogged out; the command exited with status {client.process.returncode}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
