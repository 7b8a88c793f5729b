"""TEST-ONLY TLS material for the embedded mail server.

mailwire ships a small test certificate authority and one certificate it signed for
``localhost`` (subject alternative names ``localhost``, ``127.0.0.1`` and ``::1``), valid from
2000 to 2125. The CA's private key was thrown away after signing, but **the server key is
public**: it is in this package for anyone to read. Trust this CA only in a client context you
build for tests, never in a system trust store and never for real mail.

- :func:`test_ssl_context` is the client side: it verifies certificates and host names, trusting
  only the test CA. Use it with ``stls()``, ``starttls()``, ``POP3_SSL`` or ``IMAP4_SSL`` against
  the embedded server, connecting to ``localhost``, ``127.0.0.1`` or ``::1``.
- :func:`server_ssl_context` is the server side, which the embedded server uses unless given a
  context of its own.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["CA_FILE", "CERT_FILE", "server_ssl_context", "test_ssl_context"]

_DATA = Path(__file__).resolve().parent / "data"

#: TEST-ONLY: PEM file of the test CA certificate (with a comment header).
CA_FILE: Path = _DATA / "test-ca.pem"
#: TEST-ONLY: PEM file holding the ``localhost`` certificate and its (public!) private key.
CERT_FILE: Path = _DATA / "test-localhost.pem"


def test_ssl_context() -> ssl.SSLContext:
    """Return a new TEST-ONLY client context that trusts only mailwire's test CA.

    It verifies the server's certificate and checks the host name (``CERT_REQUIRED``,
    ``check_hostname=True``), exactly as :func:`ssl.create_default_context` does, so it accepts
    the embedded server reached as ``localhost``, ``127.0.0.1`` or ``::1`` and nothing else.
    """
    return ssl.create_default_context(cafile=str(CA_FILE))


# pytest would otherwise collect this function as a test wherever a test module imports it.
test_ssl_context.__test__ = False  # type: ignore[attr-defined]


def server_ssl_context() -> ssl.SSLContext:
    """Return a new TEST-ONLY server context presenting the shipped ``localhost`` certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(CERT_FILE))
    return context
