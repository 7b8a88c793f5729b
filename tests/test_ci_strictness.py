"""The CI strictness hooks in tests/conftest.py, run on small generated suites with pytester."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")

SUITE = """
import pytest

@pytest.mark.dovecot
def test_needs_server():
    pytest.skip("dovecot is not installed")

@pytest.mark.mailutils
def test_needs_second_server():
    pytest.skip("imap4d is not installed")

@pytest.mark.cpython_suite
@pytest.mark.skip(reason="no CPython test package")
def test_cpython():
    pass

@pytest.fixture
def server():
    pytest.skip("fixture could not start the server")

@pytest.mark.dovecot
def test_fixture_skip(server):
    pass

def test_plain_skip():
    pytest.skip("unrelated optional feature")

@pytest.mark.dovecot
@pytest.mark.xfail(reason="known server quirk")
def test_expected_failure():
    assert False

def test_runs():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    # hypothesis's plugin would re-import hypothesis (~1 s) in every in-process run
    pytester.makeini(
        "[pytest]\nmarkers =\n    dovecot: d\n    mailutils: m\n    cpython_suite: c\n"
        "addopts = --strict-markers -p no:hypothesispytest\n"
    )
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_marked_skips_are_only_skips_without_ci(suite: pytest.Pytester) -> None:
    result = suite.runpytest()
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_marked_skips_fail_under_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    result = suite.runpytest("-rfE")
    # skips in setup (skip marks, fixtures) are reported as errors
    result.assert_outcomes(passed=1, failed=2, errors=2, skipped=1, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for line in (
        "dovecot test skipped under CI/--strict-skips*: Skipped: dovecot is not installed",
        "mailutils test skipped under CI*: Skipped: imap4d is not installed",
        "cpython_suite test skipped under CI*: Skipped: no CPython test package",
        "dovecot test skipped under CI*: Skipped: fixture could not start the server",
    ):
        result.stdout.fnmatch_lines([line])  # one at a time: section order varies by version


@pytest.mark.parametrize("value", ["", "0", "false", "False"])
def test_ci_off_values(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    suite.runpytest().assert_outcomes(passed=1, skipped=5, xfailed=1)


def test_strict_skips_option_without_ci(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--strict-skips")
    result.assert_outcomes(passed=1, failed=2, errors=2, skipped=1, xfailed=1)


def test_all_skipped_exits_5_under_ci(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "1")
    result = suite.runpytest("-k", "plain_skip")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.fnmatch_lines(["*every collected test was skipped*"])
    monkeypatch.delenv("CI")
    assert suite.runpytest("-k", "plain_skip").ret == pytest.ExitCode.OK


def test_nothing_collected_exits_5(suite: pytest.Pytester) -> None:
    assert suite.runpytest("-k", "no_such_test").ret == pytest.ExitCode.NO_TESTS_COLLECTED
