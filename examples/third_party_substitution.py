"""Run a third-party library that does ``import imaplib`` / ``import poplib`` on mailwire.

Libraries such as imapclient or imap_tools import the standard library's modules themselves.
Putting mailwire's modules into ``sys.modules`` under the stdlib's names *before the library is
imported* makes their ``import imaplib`` bind mailwire's module instead: the library then gets
mailwire's fixes and limits without a line of it changing::

    import sys
    from mailwire import imaplib, poplib

    sys.modules["imaplib"] = imaplib
    sys.modules["poplib"] = poplib

    import imapclient        # its "import imaplib" now gives mailwire.imaplib

The order matters: a module that imported ``imaplib`` before the assignment keeps the stdlib's
module, so do it first thing in your program's entry point (or in ``sitecustomize``). This
script checks that it worked (``imapclient.imapclient.imaplib is mailwire.imaplib``) before
fetching anything.

With imapclient installed it uses imapclient; without it (or with ``--library builtin``) it uses
stand-in "third-party" functions defined below, which only know ``import imaplib`` and
``import poplib``. Runs against mailwire's embedded test server with sample messages by
default::

    python examples/third_party_substitution.py
    python examples/third_party_substitution.py --library builtin

or against a real server (STARTTLS, STLS for POP3, with certificate verification)::

    python examples/third_party_substitution.py --host mail.example.org --user me --pop3-port 110
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.util
import io
import ssl
import sys
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from types import ModuleType
from typing import Any

try:
    import mailwire
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import mailwire

# mailwire's modules import the real stdlib ones first (mailwire's exceptions subclass the
# stdlib's), so import them before taking over the names.
import mailwire.imaplib
import mailwire.poplib


def substitute() -> None:
    """Make ``import imaplib`` and ``import poplib`` give mailwire's modules from now on."""
    for name in ("imapclient", "imap_tools"):
        if name in sys.modules:
            # Already imported: it holds the stdlib's module and would keep using it.
            raise RuntimeError(f"{name} was imported before the substitution; do it first")
    sys.modules["imaplib"] = mailwire.imaplib
    sys.modules["poplib"] = mailwire.poplib


# -- a stand-in for a third-party library --------------------------------------------------------

# These two functions stand in for a third-party library: they know only the stdlib's names, and
# import them the way libraries do, with a plain "import imaplib" that sys.modules answers.

def third_party_imap_subjects(host: str, port: int, user: str, password: str,
                              context: ssl.SSLContext) -> tuple[ModuleType, list[str]]:
    """The raw Subject headers in INBOX, and the ``imaplib`` module that fetched them."""
    import imaplib

    connection = imaplib.IMAP4(host, port, timeout=30)
    try:
        connection.starttls(ssl_context=context)
        connection.login(user, password)
        _typ, count = connection.select("INBOX", readonly=True)
        subjects = []
        if int(count[0]):
            _typ, data = connection.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            subjects = [item[1].decode("ascii", "replace").partition(":")[2].strip()
                        for item in data if isinstance(item, tuple)]
    finally:
        connection.logout()
    return imaplib, subjects


def third_party_pop3_count(host: str, port: int, user: str, password: str,
                           context: ssl.SSLContext) -> tuple[ModuleType, int]:
    """How many messages wait in the POP3 mailbox, and the ``poplib`` module that asked."""
    import poplib

    connection = poplib.POP3(host, port, timeout=30)
    try:
        connection.stls(context=context)
        connection.user(user)
        connection.pass_(password)
        count, _size = connection.stat()
    finally:
        connection.quit()
    return poplib, count


# -- fetching through the library ----------------------------------------------------------------

def decode(subject: Any) -> str:
    """A Subject as text: folding undone, MIME encoded-words decoded."""
    if subject is None:
        return ""
    if isinstance(subject, bytes):
        subject = subject.decode("ascii", "replace")
    return str(make_header(decode_header(" ".join(str(subject).split()))))


def fetch_with_imapclient(host: str, port: int, user: str, password: str,
                          context: ssl.SSLContext) -> list[str]:
    import imapclient
    import imapclient.imapclient

    uses_mailwire = imapclient.imapclient.imaplib is mailwire.imaplib
    print(f"imapclient.imapclient.imaplib is mailwire.imaplib: {uses_mailwire}")
    if not uses_mailwire:
        raise RuntimeError("imapclient is not using mailwire.imaplib")
    with imapclient.IMAPClient(host, port=port, ssl=False, timeout=30) as client:
        client.starttls(context)
        client.login(user, password)
        # IMAPClient keeps its imaplib connection in _imap; looked at here only as proof.
        print(f"  connection class: {type(client._imap).__module__}."
              f"{type(client._imap).__qualname__}, a subclass of "
              f"mailwire.imaplib.IMAP4: {isinstance(client._imap, mailwire.imaplib.IMAP4)}")
        client.select_folder("INBOX", readonly=True)
        envelopes = client.fetch(client.search("ALL"), ["ENVELOPE"])
        return [decode(envelopes[uid][b"ENVELOPE"].subject) for uid in sorted(envelopes)]


def fetch_with_builtin(host: str, port: int, user: str, password: str,
                       context: ssl.SSLContext) -> list[str]:
    module, subjects = third_party_imap_subjects(host, port, user, password, context)
    print(f"third_party_imap_subjects()'s imaplib is mailwire.imaplib: "
          f"{module is mailwire.imaplib}")
    if module is not mailwire.imaplib:
        raise RuntimeError("the third-party function is not using mailwire.imaplib")
    return [decode(subject) for subject in subjects]


@contextlib.contextmanager
def embedded_server() -> Iterator[tuple[str, int, int, str, str, ssl.SSLContext]]:
    from mailwire.testing import MailServer, sample_messages, test_ssl_context

    with MailServer(users={"alice": "wonderland"}, imap=True) as server:
        for message in sample_messages("alice@mailwire.test"):
            server.deliver("alice", message)
        yield (server.host, server.imap_port, server.pop3_port, "alice", "wonderland",
               test_ssl_context())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--library", choices=("auto", "imapclient", "builtin"), default="auto",
                        help="auto: imapclient when installed, else the built-in stand-in")
    parser.add_argument("--host", help="mail server (default: the embedded test server)")
    parser.add_argument("--port", type=int, default=143, help="IMAP port, with STARTTLS")
    parser.add_argument("--pop3-port", type=int, help="also ask POP3 (with STLS) on this port")
    parser.add_argument("--user")
    parser.add_argument("--cafile", help="CA bundle to verify the server with")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")  # subjects are not all ASCII
    library = args.library
    if library == "auto":
        library = "imapclient" if importlib.util.find_spec("imapclient") else "builtin"
    label = "imapclient" if library == "imapclient" else "third_party_imap_subjects()"

    substitute()  # before the library is imported: it is imported only below
    print(f"sys.modules['imaplib'] is mailwire.imaplib: "
          f"{sys.modules['imaplib'] is mailwire.imaplib}")

    with contextlib.ExitStack() as stack:
        if args.host is None:
            host, port, pop3_port, user, password, context = stack.enter_context(
                embedded_server())
        else:
            host, port, pop3_port = args.host, args.port, args.pop3_port
            user = args.user or getpass.getuser()
            password = getpass.getpass(f"Password for {user}@{host}: ")
            context = ssl.create_default_context(cafile=args.cafile)
        fetch = fetch_with_imapclient if library == "imapclient" else fetch_with_builtin
        subjects = fetch(host, port, user, password, context)
        print(f"\nINBOX through {label} on mailwire: {len(subjects)} message(s)")
        for subject in subjects:
            print(f"  {subject}")

        if pop3_port is not None:
            module, count = third_party_pop3_count(host, pop3_port, user, password, context)
            print(f"\nthird_party_pop3_count()'s poplib is mailwire.poplib: "
                  f"{module is mailwire.poplib}")
            print(f"POP3 through third_party_pop3_count() on mailwire: {count} message(s) "
                  "waiting")
            if module is not mailwire.poplib:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
