"""CPython's own test_poplib/test_imaplib, run against mailwire by the harness in cpython_suite.

Three kinds of test live here:

* the real check: each CPython suite with mailwire substituted passes, except exactly the tests
  that mailwire's deviation registry lists;
* checks of the harness itself: with nothing substituted the suites pass (so outcomes are read
  correctly), a deliberately broken module is caught, a hung run is cut off with its stacks;
* fast unit tests of the judging logic on made-up reports.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from mailwire.deviations import DEVIATIONS, expected_cpython_failures

from .cpython_suite import (
    SUITES,
    CPythonSuite,
    SuiteReport,
    SuiteRunError,
    TestRecord,
    check_report,
    format_report,
    run_suite,
    verify_substitution,
)

_SUITE_PARAMS = [pytest.param(suite, id=suite.module) for suite in SUITES.values()]
_STDERR_TAIL = 4000


def _run(
    suite: CPythonSuite,
    substitute: str | None = None,
    *,
    stdlib: bool = False,
    extra_path: Sequence[Path] = (),
) -> SuiteReport:
    """Run ``suite`` in a subprocess; skip when this interpreter cannot run it at all."""
    try:
        report = run_suite(suite.module, substitute, stdlib=stdlib, extra_path=extra_path)
    except SuiteRunError as exc:
        pytest.fail(str(exc), pytrace=False)
    if report.status in ("test_module_missing", "module_skipped"):
        pytest.skip(f"{suite.test_module} cannot run on Python {report.python}: {report.detail}")
    return report


def _deviation_of(test_id: str) -> str:
    names = [d.id for d in DEVIATIONS if test_id in d.cpython_tests]
    return ", ".join(names)


def _message(report: SuiteReport, problems: list[str], expected: Iterable[str] = ()) -> str:
    expected = frozenset(expected)
    parts = [f"{len(problems)} problem(s) running {report.test_module}:"]
    for problem in problems:
        test_id = problem.split(" ", 1)[0]
        owner = _deviation_of(test_id)
        suffix = f" [deviation {owner}]" if owner else ""
        parts.append(f"- {problem}{suffix}")
    parts.append("")
    parts.append(format_report(report, expected, tracebacks=False))
    if report.stderr.strip():
        parts.append("")
        parts.append("--- child stderr (tail) ---")
        parts.append(report.stderr[-_STDERR_TAIL:])
    return "\n".join(parts)


def _substitute_origin(suite: CPythonSuite) -> str | None:
    """The file of the suite's mailwire module, or None when that module does not exist (yet).

    Only looks the module up, without importing it: a module that exists but fails to import
    is run, and fails with the child's import traceback.
    """
    try:
        spec = importlib.util.find_spec(suite.substitute)
    except ModuleNotFoundError:
        return None
    return None if spec is None else spec.origin


def _mailwire_params() -> list[Any]:
    """One parameter per suite. A suite whose mailwire module does not exist yet is skipped and
    deliberately *not* marked ``cpython_suite``: tests/conftest.py turns skips of marked tests
    into failures under CI, and a module not yet written is a known state, not a broken run.
    Once the module exists, the test is marked and any skip (e.g. no CPython test package on
    this interpreter) fails under CI again."""
    params = []
    for suite in SUITES.values():
        if _substitute_origin(suite) is None:
            reason = (
                f"{suite.substitute} does not exist yet, so {suite.test_module} cannot be run "
                "against it"
            )
            params.append(pytest.param(suite, id=suite.module, marks=pytest.mark.skip(reason)))
        else:
            params.append(pytest.param(suite, id=suite.module, marks=pytest.mark.cpython_suite))
    return params


# ----------------------------------------------------------------------------------------------
# The real check: mailwire under CPython's own tests
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suite", _mailwire_params())
def test_cpython_suite_passes_with_mailwire(suite: CPythonSuite) -> None:
    origin = _substitute_origin(suite)
    assert origin is not None
    report = _run(suite)
    expected = expected_cpython_failures(suite.module)
    problems = check_report(report, expected, suite.min_tests_run)
    assert not problems, _message(report, problems, expected)
    # The child tested the very module this checkout provides.
    assert report.substitute == suite.substitute
    assert Path(report.module_file).resolve() == Path(origin).resolve()
    print(format_report(report, expected, tracebacks=False))


# ----------------------------------------------------------------------------------------------
# The harness checked against the stdlib and against a module known to be broken
# ----------------------------------------------------------------------------------------------


@pytest.mark.cpython_suite
@pytest.mark.parametrize("suite", _SUITE_PARAMS)
def test_harness_passes_on_the_stdlib(suite: CPythonSuite) -> None:
    report = _run(suite, stdlib=True)
    problems = check_report(report, (), suite.min_tests_run)
    assert not problems, _message(report, problems)
    assert report.substitute is None
    assert report.substitution_verified
    assert Path(report.module_file).name == f"{suite.module}.py"
    assert report.counts()["passed"] >= suite.min_tests_run
    print(format_report(report, tracebacks=False))


_BROKEN_POPLIB = '''\
"""poplib whose retr() returns a corrupted first line: the harness must notice."""

import poplib as _stdlib
from poplib import *  # noqa: F403
from poplib import _MAXLINE, CR, CRLF, HAVE_SSL, LF, POP3_PORT, POP3_SSL_PORT  # noqa: F401

__all__ = list(_stdlib.__all__)


class POP3(_stdlib.POP3):
    def retr(self, which):
        resp, lines, octets = super().retr(which)
        return resp, [b"corrupted by a broken test double", *lines[1:]], octets


if HAVE_SSL:

    class POP3_SSL(_stdlib.POP3_SSL, POP3):
        pass
'''

_RETR_TESTS = frozenset(
    f"test.test_poplib.{cls}.test_retr"
    for cls in ("TestPOP3Class", "TestPOP3_SSLClass", "TestPOP3_TLSClass")
)


@pytest.fixture(scope="module")
def broken_poplib_report(tmp_path_factory: pytest.TempPathFactory) -> SuiteReport:
    directory = tmp_path_factory.mktemp("broken-poplib")
    (directory / "broken_poplib.py").write_text(_BROKEN_POPLIB, encoding="utf-8")
    return _run(SUITES["poplib"], "broken_poplib", extra_path=[directory])


@pytest.mark.cpython_suite
def test_harness_reports_failures_of_a_broken_module(broken_poplib_report: SuiteReport) -> None:
    report = broken_poplib_report
    assert report.status == "ok", report.detail
    assert report.substitute == "broken_poplib"
    assert report.substitution_verified
    assert Path(report.module_file).name == "broken_poplib.py"

    failed = {r.id for r in report.with_outcome({"failed", "error"})}
    retr_tests = _RETR_TESTS & set(report.collected)
    assert "test.test_poplib.TestPOP3Class.test_retr" in retr_tests
    assert retr_tests <= failed, format_report(report)
    record = report.by_id()["test.test_poplib.TestPOP3Class.test_retr"]
    assert record.outcome == "failed"
    assert any("corrupted by a broken test double" in d for d in record.details)
    # Only retr is broken: the rest of the suite still passes.
    assert report.counts()["passed"] >= SUITES["poplib"].min_tests_run

    problems = check_report(report, (), SUITES["poplib"].min_tests_run)
    assert {p.split(":", 1)[0] for p in problems} == failed


@pytest.mark.cpython_suite
def test_registered_failures_are_accepted_and_stale_ones_reported(
    broken_poplib_report: SuiteReport,
) -> None:
    report = broken_poplib_report
    failed = {r.id for r in report.with_outcome({"failed", "error"})}
    minimum = SUITES["poplib"].min_tests_run

    # Registering exactly the failing tests makes the run acceptable ...
    assert check_report(report, failed, minimum) == []
    # ... ids that this Python version's suite does not have are simply not expected ...
    assert check_report(report, failed | {"test.test_poplib.NoSuchClass.test_x"}, minimum) == []
    # ... but a registered test that now passes must be noticed.
    stale = "test.test_poplib.TestPOP3Class.test_stat"
    problems = check_report(report, failed | {stale}, minimum)
    assert len(problems) == 1
    assert problems[0].startswith(stale)
    assert "update the deviation registry" in problems[0]


@pytest.mark.cpython_suite
def test_harness_reports_a_substitute_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "unimportable_poplib.py").write_text(
        "raise RuntimeError('a half-written module')\n", encoding="utf-8"
    )
    report = run_suite("poplib", "unimportable_poplib", extra_path=[tmp_path])
    assert report.status == "substitute_import_error"
    assert "a half-written module" in report.detail
    problems = check_report(report, (), SUITES["poplib"].min_tests_run)
    assert len(problems) == 1
    assert "a half-written module" in problems[0]


@pytest.mark.cpython_suite
def test_harness_cuts_off_a_run_that_takes_too_long() -> None:
    with pytest.raises(SuiteRunError) as info:
        run_suite("poplib", stdlib=True, timeout=0.5)
    message = str(info.value)
    assert "wrote no report" in message
    assert "Timeout (" in message  # faulthandler's dump of the child's stacks, from stderr


# ----------------------------------------------------------------------------------------------
# Unit tests of the judging logic (no subprocess)
# ----------------------------------------------------------------------------------------------


def _report(outcomes: dict[str, str], **kwargs: object) -> SuiteReport:
    fields: dict[str, object] = {
        "status": "ok",
        "module": "poplib",
        "test_module": "test.test_poplib",
        "substitute": "mailwire.poplib",
        "substitution_verified": True,
        "collected": list(outcomes),
        "records": [
            TestRecord(id=test_id, outcome=outcome, reason="why" if outcome == "skipped" else "")
            for test_id, outcome in outcomes.items()
        ],
    }
    fields.update(kwargs)
    return SuiteReport(**fields)  # type: ignore[arg-type]


def _ids(count: int) -> dict[str, str]:
    return {f"test.test_poplib.T.test_{i}": "passed" for i in range(count)}


def test_check_report_accepts_a_clean_run() -> None:
    assert check_report(_report(_ids(5)), (), 5) == []


def test_check_report_rejects_an_empty_or_tiny_run() -> None:
    problems = check_report(_report({}), (), 21)
    assert len(problems) == 1
    assert "only 0 test(s) ran" in problems[0]
    skipped = {f"test.test_poplib.T.test_{i}": "skipped" for i in range(30)}
    assert "only 0 test(s) ran" in check_report(_report(skipped), (), 21)[0]


def test_check_report_rejects_unverified_or_failed_runs() -> None:
    assert check_report(_report(_ids(5), substitution_verified=False), (), 5)
    problems = check_report(
        _report({}, status="substitute_import_error", detail="Traceback: boom"), (), 0
    )
    assert problems == ["the suite did not run (substitute_import_error): Traceback: boom"]


def test_check_report_outcomes() -> None:
    outcomes = _ids(5)
    outcomes["test.test_poplib.T.test_err"] = "error"
    outcomes["test.test_poplib.T.test_unexpected"] = "unexpected_success"
    outcomes["test.test_poplib.T.test_xfail"] = "expected_failure"
    outcomes["test.test_poplib.T.test_skip"] = "skipped"
    problems = check_report(_report(outcomes), (), 5)
    assert [p.split(":", 1)[0] for p in problems] == [
        "test.test_poplib.T.test_err",
        "test.test_poplib.T.test_unexpected",
    ]
    # A registered test that was skipped is not checked either way.
    expected = {"test.test_poplib.T.test_err", "test.test_poplib.T.test_unexpected"}
    expected.add("test.test_poplib.T.test_skip")
    assert check_report(_report(outcomes), expected, 5) == []


def test_report_round_trips_through_json() -> None:
    report = _report({**_ids(3), "test.test_poplib.T.test_skip": "skipped"})
    again = SuiteReport.from_json(report.to_json())
    assert again.to_json() == report.to_json()
    assert again.skip_reasons() == {"why": 1}
    text = format_report(again)
    assert "4 collected, 3 run" in text
    assert "why" in text


def test_verify_substitution_detects_the_stdlib_module() -> None:
    substitute = types.ModuleType("fake_poplib")
    test_module = types.ModuleType("test_fake")
    real = types.ModuleType("poplib")
    test_module.poplib = real  # type: ignore[attr-defined]
    problem = verify_substitution(test_module, "poplib", substitute)
    assert problem is not None and "did not bind the substitute" in problem

    test_module.poplib = substitute  # type: ignore[attr-defined]
    saved = sys.modules.get("poplib")
    sys.modules["poplib"] = substitute
    try:
        assert verify_substitution(test_module, "poplib", substitute) is None
        sys.modules["poplib"] = real
        problem = verify_substitution(test_module, "poplib", substitute)
        assert problem is not None and "sys.modules" in problem
    finally:
        if saved is None:
            del sys.modules["poplib"]
        else:
            sys.modules["poplib"] = saved


def test_every_registered_cpython_test_names_a_known_suite() -> None:
    prefixes = tuple(f"{suite.test_module}." for suite in SUITES.values())
    for deviation in DEVIATIONS:
        for test_id in deviation.cpython_tests:
            assert test_id.startswith(prefixes), (deviation.id, test_id)
            assert test_id.count(".") >= 3, (deviation.id, test_id)
