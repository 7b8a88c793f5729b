"""Fixtures for the protocol tests: scripted fake servers and TLS test certificates.

``tls_files`` makes a test CA and a leaf certificate for ``localhost``/``127.0.0.1`` signed by
it, once per session, with the ``openssl`` command (tests that need TLS skip without it).
``fake_pop3`` starts :class:`~fakeserver.ScriptedPOP3Server` instances and stops and joins every
one of them at teardown, failing the test if a server recorded an unexpected event; no test may
leave a thread running.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from .fakeserver import ScriptedPOP3Server, StartServer, Step, TLSFiles


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make the test certificates")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "ca.cnf").write_text(
        "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\n[dn]\n"
        "[v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
        encoding="ascii",
    )
    (d / "leaf.ext").write_text(
        "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n"
        "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n",
        encoding="ascii",
    )
    _openssl("req", "-x509", *ec, "-config", str(d / "ca.cnf"), "-days", "30",
             "-subj", "/CN=mailwire protocol test CA",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    _openssl("req", "-new", *ec, "-config", str(d / "ca.cnf"), "-subj", "/CN=localhost",
             "-keyout", str(d / "leaf.key"), "-out", str(d / "leaf.csr"))  # fmt: skip
    _openssl("x509", "-req", "-in", str(d / "leaf.csr"), "-CA", str(d / "ca.pem"),
             "-CAkey", str(d / "ca.key"), "-set_serial", "1", "-days", "30",
             "-extfile", str(d / "leaf.ext"), "-out", str(d / "leaf.pem"))  # fmt: skip
    return TLSFiles(d / "ca.pem", d / "leaf.pem", d / "leaf.key")


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Set up first, torn down last: every thread a test started must be gone by then."""
    before = set(threading.enumerate())
    yield
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leftover, leftover


@pytest.fixture
def fake_pop3() -> Iterator[StartServer]:
    """``fake_pop3(script, **options)`` starts a scripted server; all are stopped afterwards."""
    servers: list[ScriptedPOP3Server] = []

    def start(script: Sequence[Step], **options: Any) -> ScriptedPOP3Server:
        server = ScriptedPOP3Server(script, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
    problems = [f"{s.address}: {e}" for s in servers for e in s.errors]
    assert not problems, problems
