"""Fixtures for the tests that run against a private Dovecot (see tests/support/dovecot.py).

``dovecot`` starts one server per test session in a fresh directory and stops it by its master
PID at the end. Without Dovecot, openssl or root it skips with the reason; the suite-wide
conftest turns those skips into failures under CI.

Test accounts are in ``dovecot.users`` (``alice`` is an admin; ``awk``/``awk7`` have awkward
passwords). Tests that look at mailbox contents start from a known state with ``fresh_dovecot``.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator

import pytest

from support.dovecot import DovecotServer, missing_requirements

#: Set to keep the server's directory (config, logs, mail) after the session, for debugging.
KEEP_DIR_ENV = "MAILWIRE_KEEP_DOVECOT_DIR"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """The session's private Dovecot, started on free loopback ports."""
    reason = missing_requirements()
    if reason is not None:
        pytest.skip(f"no private Dovecot server: {reason}")
    # Not pytest's tmp_path: its directories are private to root, and Dovecot's unprivileged
    # processes must be able to reach the files under the runtime directory.
    runtime = tempfile.mkdtemp(prefix="mailwire-dovecot-")
    os.chmod(runtime, 0o755)
    server = DovecotServer(runtime)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        if os.environ.get(KEEP_DIR_ENV):
            print(f"\nDovecot runtime directory kept: {runtime}")
        else:
            shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def fresh_dovecot(dovecot: DovecotServer) -> DovecotServer:
    """The session's Dovecot with every test user's mail store emptied (only an empty INBOX)."""
    dovecot.clear_all()
    return dovecot


@pytest.fixture(scope="session")
def dovecot_tls(dovecot: DovecotServer) -> ssl.SSLContext:
    """A client TLS context that trusts the server's test CA (and nothing else)."""
    return ssl.create_default_context(cafile=dovecot.ca_file)
