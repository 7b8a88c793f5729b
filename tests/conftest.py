"""Suite-wide pytest hooks (CI strictness) and the private Dovecot fixtures every part of the
suite shares.

Under CI (the ``CI`` environment variable set to anything but "", "0", "false", "no", "off") or
with ``--strict-skips``:

- a test marked ``dovecot``, ``mailutils`` or ``cpython_suite`` that is skipped is reported as
  failed, with the skip reason, so a missing server or interpreter can never turn the real tests
  into a green run;
- a session that collected tests but ran none of them (all skipped) exits with pytest's
  "no tests" code 5, like a session that collected nothing.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from support.dovecot import DovecotServer, missing_requirements

STRICT_MARKERS = ("dovecot", "mailutils", "cpython_suite")
_RAN_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--strict-skips",
        action="store_true",
        default=False,
        help=f"fail skipped tests marked {' or '.join(STRICT_MARKERS)} (always on when CI is set)",
    )


def ci_is_set() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


def _strict(config: pytest.Config) -> bool:
    return bool(config.getoption("strict_skips")) or ci_is_set()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RAN_KEY] = 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.when == "call" and not report.skipped:
        item.config.stash[_RAN_KEY] += 1
    if not report.skipped or hasattr(report, "wasxfail") or not _strict(item.config):
        return
    marker = next((m for m in STRICT_MARKERS if item.get_closest_marker(m)), None)
    if marker is None:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{marker} test skipped under CI/--strict-skips, which counts as a failure: {reason}"
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if (
        _strict(session.config)
        and exitstatus == pytest.ExitCode.OK
        and session.testscollected > 0
        and session.config.stash[_RAN_KEY] == 0
    ):
        session.exitstatus = pytest.ExitCode.NO_TESTS_COLLECTED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "CI/--strict-skips: every collected test was skipped; exiting with code 5",
                red=True,
            )


# -- the private Dovecot, shared by every test that needs one ----------------------------------
# One server per test session for tests/integration and tests/testing alike. Without Dovecot,
# openssl or root it skips with the reason (failures under CI, see above). Test accounts are in
# ``dovecot.users`` (``alice`` is an admin; ``awk``/``awk7`` have awkward passwords); tests that
# look at mailbox contents start from a known state with ``fresh_dovecot``.

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
