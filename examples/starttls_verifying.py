"""Verified TLS for IMAP and POP3, and what an unverified connection looks like.

TLS protects a mail session only when the client checks *who* answered: that the server's
certificate chains to a certificate authority the client trusts, and that it names the host the
client meant to reach. Without both checks the connection is encrypted, but to whoever got in
the path, who can present any certificate at all.

The standard library's ``imaplib`` and ``poplib`` do not check anything by default:
``IMAP4_SSL(host)``, ``POP3_SSL(host)``, ``starttls()`` and ``stls()`` given no context use
``ssl._create_stdlib_context()``, which verifies neither the certificate nor the host name.
PEP 476 made Python verify certificates by default for HTTPS only; the mail modules kept the old
default for compatibility. mailwire, being a drop-in replacement, keeps it too. Two ways out:

- pass a verifying context yourself, ``ssl.create_default_context()`` (the system's CAs, or
  ``cafile=`` for a private CA), as every example here does, or
- set ``MAILWIRE_VERIFY_TLS=1`` in the environment (or ``mailwire.transport.VERIFY_BY_DEFAULT =
  True`` in code): every context mailwire creates because you gave none is then
  ``ssl.create_default_context()``. A context you pass is never changed.

This script connects over all four ways in: IMAP + STARTTLS (port 143), POP3 + STLS (110),
IMAPS (993) and POP3S (995), first with a verifying context, then with a context that trusts the
wrong CA, then under a host name the certificate does not list (both fail with
``ssl.SSLCertVerificationError`` before a password could be sent), and finally with no context,
with and without ``MAILWIRE_VERIFY_TLS=1``.

Runs against mailwire's embedded test server by default; its certificate is TEST-ONLY and
trusted only through ``mailwire.testing.test_ssl_context()``. There, the "wrong CA" is the
system's (``ssl.create_default_context()``), and the wrong host name is ``127.1``, a shorthand
for 127.0.0.1 that the certificate does not list. ::

    python examples/starttls_verifying.py

Against a real server nothing is logged in to; the wrong CA is mailwire's test CA, and the wrong
host name is the server's IP address::

    python examples/starttls_verifying.py --host mail.example.org
"""

from __future__ import annotations

import argparse
import contextlib
import imaplib as std_imaplib
import ipaddress
import os
import poplib as std_poplib
import socket
import ssl
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

try:
    from mailwire import imaplib, poplib
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from mailwire import imaplib, poplib

from mailwire.testing import test_ssl_context

SERVICES = ("IMAP STARTTLS", "POP3 STLS", "IMAPS", "POP3S")
DEFAULT_PORTS = {"IMAP STARTTLS": 143, "POP3 STLS": 110, "IMAPS": 993, "POP3S": 995}
TIMEOUT = 10.0

#: What an attempt gives: a description of the verified connection, or the exception.
Outcome = Union[str, BaseException]


@dataclass
class Target:
    host: str
    ports: dict[str, int]
    #: A context that should accept the server.
    trusted: Callable[[], ssl.SSLContext]
    #: A verifying context trusting some other CA, and what it is.
    wrong_ca: Callable[[], ssl.SSLContext]
    wrong_ca_text: str
    #: Another way to write the server's address, which its certificate does not list.
    alias: str
    embedded: bool


@contextlib.contextmanager
def embedded_server() -> Iterator[Target]:
    from mailwire.testing import MailServer

    with MailServer(users={"alice": "wonderland"}, imap=True) as server:
        ports = {"IMAP STARTTLS": server.imap_port, "POP3 STLS": server.pop3_port,
                 "IMAPS": server.imaps_port, "POP3S": server.pop3s_port}
        yield Target(
            host=server.host,
            ports=ports,
            trusted=test_ssl_context,
            wrong_ca=ssl.create_default_context,
            wrong_ca_text="ssl.create_default_context(): this system's CAs, not the test CA",
            alias="127.1",
            embedded=True,
        )


def real_server(host: str, ports: dict[str, int], cafile: str | None) -> Target:
    address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    return Target(
        host=host,
        ports=ports,
        trusted=lambda: ssl.create_default_context(cafile=cafile),
        wrong_ca=test_ssl_context,
        wrong_ca_text="mailwire.testing.test_ssl_context(): only mailwire's TEST-ONLY CA",
        alias=str(address),
        embedded=False,
    )


# -- connecting --------------------------------------------------------------------------------

def open_tls(service: str, host: str, port: int, context: Optional[ssl.SSLContext],
             modules: tuple[Any, Any] = (imaplib, poplib)) -> Any:
    """Connect to *service* and set up TLS with *context* (None: the module's default).

    Returns the logged-out client, whose ``sock`` is the TLS socket. *modules* are the
    ``(imaplib, poplib)`` to use: mailwire's, or the standard library's for comparison.
    """
    imap, pop = modules
    if service == "IMAPS":
        return imap.IMAP4_SSL(host, port, ssl_context=context, timeout=TIMEOUT)
    if service == "POP3S":
        return pop.POP3_SSL(host, port, context=context, timeout=TIMEOUT)
    if service == "IMAP STARTTLS":
        client = imap.IMAP4(host, port, timeout=TIMEOUT)
        try:
            client.starttls(context)
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
        return client
    client = pop.POP3(host, port, timeout=TIMEOUT)
    try:
        client.stls(context)
    except BaseException:
        with contextlib.suppress(OSError):
            client.close()
        raise
    return client


def describe(sock: ssl.SSLSocket) -> str:
    certificate = sock.getpeercert()
    if not certificate:
        # With verification off, Python does not even parse the certificate it was shown.
        return f"{sock.version()}, certificate NOT verified: anyone could have answered"

    def common_name(name: Any) -> str:
        return next((value for rdn in name for key, value in rdn if key == "commonName"), "?")

    names = ", ".join(str(ipaddress.ip_address(value)) if kind == "IP Address" else value
                      for kind, value in certificate.get("subjectAltName", ()))
    return (f"{sock.version()}, verified: {common_name(certificate['subject'])} "
            f"[{names}], issued by {common_name(certificate['issuer'])}")


def attempt(service: str, host: str, port: int, context: Optional[ssl.SSLContext],
            modules: tuple[Any, Any] = (imaplib, poplib)) -> Outcome:
    """Connect, describe the TLS session and leave; or return the exception that stopped it."""
    try:
        client = open_tls(service, host, port, context, modules)
    except (OSError, imaplib.IMAP4.error, poplib.error_proto,
            std_imaplib.IMAP4.error, std_poplib.error_proto) as exc:
        return exc  # ssl.SSLCertVerificationError is an OSError
    try:
        return describe(client.sock)
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error, poplib.error_proto,
                                 std_imaplib.IMAP4.error, std_poplib.error_proto):
            if hasattr(client, "logout"):
                client.logout()
            else:
                client.quit()


def show(service: str, outcome: Outcome) -> None:
    if isinstance(outcome, ssl.SSLCertVerificationError):
        text = f"refused: ssl.SSLCertVerificationError: {outcome.verify_message}"
    elif isinstance(outcome, BaseException):
        text = f"unavailable: {type(outcome).__name__}: {outcome}"
    else:
        text = outcome
    print(f"  {service:<14} {text}")


@contextlib.contextmanager
def environment(name: str, value: str | None) -> Iterator[None]:
    """Set (or, with None, remove) an environment variable for the duration of the block."""
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# -- the tour ----------------------------------------------------------------------------------

def tour(target: Target) -> bool:
    """Run every demonstration; return whether each ended as it should."""
    as_expected = True

    def check(service: str, outcome: Outcome, should_verify: bool) -> None:
        nonlocal as_expected
        show(service, outcome)
        if isinstance(outcome, ssl.SSLCertVerificationError):
            ok = not should_verify
        elif isinstance(outcome, BaseException):
            ok = not target.embedded  # a real server may not offer every service
        else:
            ok = should_verify and "NOT verified" not in outcome
        as_expected = as_expected and ok

    print(f"1. A verifying context: the certificate must chain to a trusted CA and name "
          f"{target.host!r}")
    for service in SERVICES:
        check(service, attempt(service, target.host, target.ports[service], target.trusted()),
              True)

    print(f"\n2. Wrong CA: {target.wrong_ca_text}")
    for service in SERVICES:
        check(service, attempt(service, target.host, target.ports[service], target.wrong_ca()),
              False)

    print(f"\n3. Wrong host name: the right CA, but the server reached as {target.alias!r}, "
          "a name its certificate does not list")
    for service in SERVICES:
        check(service, attempt(service, target.alias, target.ports[service], target.trusted()),
              False)

    print("\n4. No context at all: the standard library's default verifies nothing (PEP 476 "
          "made\n   only HTTPS verify by default; imaplib and poplib kept the old behaviour)")
    with environment("MAILWIRE_VERIFY_TLS", None):
        for service in ("IMAPS", "POP3S"):
            outcome = attempt(service, target.host, target.ports[service], None,
                              (std_imaplib, std_poplib))
            show(f"stdlib {service}", outcome)
            as_expected = as_expected and isinstance(outcome, str) and "NOT" in outcome
        print("  mailwire keeps that default (it is a drop-in replacement):")
        for service in SERVICES:
            outcome = attempt(service, target.host, target.ports[service], None)
            show(service, outcome)
            as_expected = as_expected and isinstance(outcome, str) and "NOT" in outcome

    print("\n   ...unless MAILWIRE_VERIFY_TLS=1: the default context becomes "
          "ssl.create_default_context()")
    with environment("MAILWIRE_VERIFY_TLS", "1"):
        for service in SERVICES:
            outcome = attempt(service, target.host, target.ports[service], None)
            if target.embedded:
                # The system's CAs do not include the TEST-ONLY CA: refused, as it should be.
                check(service, outcome, False)
            else:
                check(service, outcome, True)
    if target.embedded:
        print("  (the system's CAs do not trust the TEST-ONLY certificate: for the embedded "
              "server,\n   pass mailwire.testing.test_ssl_context() as above)")
    return as_expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", help="mail server (default: the embedded test server)")
    parser.add_argument("--cafile", help="CA bundle to verify the server with")
    for service, port in DEFAULT_PORTS.items():
        option = "--" + service.split()[0].lower() + "-port"
        parser.add_argument(option, type=int, default=port, metavar="PORT",
                            help=f"{service} port (default {port})")
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        if args.host is None:
            target = stack.enter_context(embedded_server())
        else:
            ports = {s: getattr(args, s.split()[0].lower() + "_port") for s in SERVICES}
            target = real_server(args.host, ports, args.cafile)
        ok = tour(target)
    print("\nEvery connection ended as expected." if ok else
          "\nSome connections did not end as expected (see above).")
    return 0 if ok or not target.embedded else 1


if __name__ == "__main__":
    sys.exit(main())
