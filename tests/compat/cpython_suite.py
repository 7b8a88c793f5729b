"""Run CPython's own ``test_poplib``/``test_imaplib`` with mailwire in place of the stdlib module.

The suite that ships with the running interpreter (``test.test_poplib`` from its ``test``
package) is imported and run unchanged; nothing of it is copied into this repository. Before the
test module is imported, ``sys.modules['poplib']`` is pointed at ``mailwire.poplib`` (or another
substitute), so the test module's ``import poplib`` binds mailwire. The substitution is then
checked, so a green run can never silently have exercised the stdlib.

Two halves live in this file:

* the *child*, which runs inside a fresh interpreter, performs the substitution, runs the tests
  with a recording ``unittest`` result and writes the per-test outcomes as JSON;
* the *parent* API (:func:`run_suite`, :func:`check_report`), used by the pytest tests, which
  starts the child with ``sys.executable`` under a time limit and judges the outcome against
  mailwire's deviation registry.

Developers can run it directly (from the repository root, with ``src`` importable)::

    python -m tests.compat.cpython_suite poplib            # mailwire.poplib substituted
    python -m tests.compat.cpython_suite poplib --stdlib   # the real stdlib, as a sanity check
    python -m tests.compat.cpython_suite imaplib --substitute some_module --json out.json
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
import types
import unittest
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT",
    "ENABLED_RESOURCES",
    "SLOW_TEST",
    "STDLIB",
    "SUITES",
    "CPythonSuite",
    "SuiteReport",
    "SuiteRunError",
    "TestRecord",
    "check_report",
    "format_report",
    "main",
    "run_suite",
    "verify_substitution",
]

#: Seconds a whole suite may take before the child dumps its threads' stacks and exits.
DEFAULT_TIMEOUT = 300.0

#: A test slower than this is listed in the summary.
SLOW_TEST = 5.0

#: Extra seconds the parent waits beyond the child's own watchdog before killing it.
_KILL_GRACE = 30.0

#: ``test.support`` resources enabled in the child. Outside regrtest ``test.support`` enables
#: *every* resource (``use_resources is None``), which would let test_imaplib's remote tests
#: reach a public IMAP server on 3.9-3.12. Only loopback-safe resources are enabled here:
#: ``walltime`` marks tests that merely take wall-clock time (timeouts against a local server).
ENABLED_RESOURCES: tuple[str, ...] = ("walltime",)

#: Marker for "no substitution": run the suite against the interpreter's own module.
STDLIB = "stdlib"

# Exit codes of the child.
_EXIT_OK = 0
_EXIT_PROBLEMS = 1
_EXIT_HARNESS = 2

# Outcomes recorded per test, from most to least severe.
_SEVERITY: tuple[str, ...] = (
    "error",
    "failed",
    "unexpected_success",
    "expected_failure",
    "skipped",
    "not_run",
    "passed",
)
#: Outcomes that make a test count as failing.
FAILING: frozenset[str] = frozenset({"error", "failed", "unexpected_success"})
#: Outcomes of tests whose body did not run.
NOT_EXECUTED: frozenset[str] = frozenset({"skipped", "not_run"})


@dataclass(frozen=True)
class CPythonSuite:
    """One CPython test module and the mailwire module substituted for the stdlib one."""

    #: Name of the stdlib module replaced, e.g. ``"poplib"``; also the key in :data:`SUITES`.
    module: str
    #: The CPython test module, e.g. ``"test.test_poplib"``.
    test_module: str
    #: The module substituted by default.
    substitute: str
    #: A run that executed (not skipped) fewer tests than this fails: an empty run cannot pass.
    min_tests_run: int


SUITES: Mapping[str, CPythonSuite] = {
    suite.module: suite
    for suite in (
        CPythonSuite("poplib", "test.test_poplib", "mailwire.poplib", min_tests_run=21),
        CPythonSuite("imaplib", "test.test_imaplib", "mailwire.imaplib", min_tests_run=40),
    )
}


# --------------------------------------------------------------------------------------------
# Data shared by both halves
# --------------------------------------------------------------------------------------------


@dataclass
class TestRecord:
    """What happened to one test (or to one class/module fixture, when ``fixture`` is true)."""

    __test__ = False  # not a pytest test class

    id: str
    outcome: str
    reason: str = ""
    details: list[str] = field(default_factory=list)
    duration: float = 0.0
    fixture: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome,
            "reason": self.reason,
            "details": self.details,
            "duration": round(self.duration, 4),
            "fixture": self.fixture,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestRecord:
        return cls(
            id=str(data["id"]),
            outcome=str(data["outcome"]),
            reason=str(data.get("reason", "")),
            details=[str(d) for d in data.get("details", [])],
            duration=float(data.get("duration", 0.0)),
            fixture=bool(data.get("fixture", False)),
        )


@dataclass
class SuiteReport:
    """The child's account of one run."""

    #: ``"ok"`` when the tests ran; otherwise why they did not (see ``detail``).
    status: str
    module: str
    test_module: str
    #: The substitute's name, or None in stdlib mode.
    substitute: str | None
    python: str = ""
    executable: str = ""
    detail: str = ""
    test_module_file: str = ""
    #: ``__file__`` of the module object the test module actually used.
    module_file: str = ""
    substitution_verified: bool = False
    #: Every test id the loader produced, whether or not it ran.
    collected: list[str] = field(default_factory=list)
    records: list[TestRecord] = field(default_factory=list)
    #: ``test.support.environment_altered`` after the run (e.g. dangling threads).
    environment_altered: bool = False
    duration: float = 0.0
    #: The child's stdout/stderr, filled in by the parent.
    stdout: str = ""
    stderr: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "module": self.module,
            "test_module": self.test_module,
            "substitute": self.substitute,
            "python": self.python,
            "executable": self.executable,
            "detail": self.detail,
            "test_module_file": self.test_module_file,
            "module_file": self.module_file,
            "substitution_verified": self.substitution_verified,
            "collected": self.collected,
            "records": [r.to_json() for r in self.records],
            "counts": dict(self.counts()),
            "environment_altered": self.environment_altered,
            "duration": round(self.duration, 3),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SuiteReport:
        substitute = data.get("substitute")
        return cls(
            status=str(data["status"]),
            module=str(data["module"]),
            test_module=str(data["test_module"]),
            substitute=None if substitute is None else str(substitute),
            python=str(data.get("python", "")),
            executable=str(data.get("executable", "")),
            detail=str(data.get("detail", "")),
            test_module_file=str(data.get("test_module_file", "")),
            module_file=str(data.get("module_file", "")),
            substitution_verified=bool(data.get("substitution_verified", False)),
            collected=[str(t) for t in data.get("collected", [])],
            records=[TestRecord.from_json(r) for r in data.get("records", [])],
            environment_altered=bool(data.get("environment_altered", False)),
            duration=float(data.get("duration", 0.0)),
        )

    # Derived views -------------------------------------------------------------------------

    def by_id(self) -> dict[str, TestRecord]:
        return {r.id: r for r in self.records}

    def tests(self) -> list[TestRecord]:
        """Records of collected tests (fixtures excluded)."""
        return [r for r in self.records if not r.fixture]

    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(r.outcome for r in self.tests())
        counts["collected"] = len(self.collected)
        counts["run"] = sum(1 for r in self.tests() if r.outcome not in NOT_EXECUTED)
        return counts

    def with_outcome(self, outcomes: Iterable[str]) -> list[TestRecord]:
        wanted = frozenset(outcomes)
        return [r for r in self.records if r.outcome in wanted]

    def skip_reasons(self) -> Counter[str]:
        return Counter(r.reason or "(no reason)" for r in self.with_outcome(NOT_EXECUTED))


# --------------------------------------------------------------------------------------------
# Child: run the suite in this process
# --------------------------------------------------------------------------------------------


class _RecordingResult(unittest.TestResult):
    """A ``TestResult`` that keeps one :class:`TestRecord` per test id."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, TestRecord] = {}
        self._started: dict[str, float] = {}

    # Helpers --------------------------------------------------------------------------------

    @staticmethod
    def _is_fixture(test: Any) -> bool:
        # unittest.suite._ErrorHolder stands in for setUpClass/setUpModule/cleanup problems.
        return not isinstance(test, unittest.TestCase)

    def _record(self, test: Any, outcome: str, reason: str = "", detail: str | None = None) -> None:
        parent = getattr(test, "test_case", None)  # a unittest.case._SubTest
        if parent is not None and isinstance(parent, unittest.TestCase):
            if detail is not None:
                detail = f"[subtest {test._subDescription()}]\n{detail}"
            elif reason:
                reason = f"{reason} [subtest {test._subDescription()}]"
            if outcome == "skipped":
                # A skipped subtest does not make the whole test skipped; keep it as a note.
                outcome, detail = "passed", f"subtest skipped: {reason}"
                reason = ""
            test = parent
        test_id = test.id()
        record = self.records.get(test_id)
        if record is None:
            record = TestRecord(id=test_id, outcome=outcome, fixture=self._is_fixture(test))
            self.records[test_id] = record
        elif _SEVERITY.index(outcome) < _SEVERITY.index(record.outcome):
            record.outcome = outcome
        if reason and not record.reason:
            record.reason = reason
        if detail:
            record.details.append(detail)

    def _describe(self, err: Any, test: Any) -> str:
        # unittest's own formatting (drops unittest's frames); private, but in every 3.x.
        formatter = getattr(self, "_exc_info_to_string", None)
        if formatter is None:
            return "".join(traceback.format_exception(*err))
        return str(formatter(err, test))

    # unittest.TestResult protocol ---------------------------------------------------------

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self._started[test.id()] = time.perf_counter()

    def stopTest(self, test: unittest.TestCase) -> None:
        super().stopTest(test)
        started = self._started.pop(test.id(), None)
        record = self.records.get(test.id())
        if record is None:  # finished without any add* call: only possible via odd subclasses
            record = TestRecord(id=test.id(), outcome="passed")
            self.records[test.id()] = record
        if started is not None:
            record.duration = time.perf_counter() - started

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, "failed", detail=self._describe(err, test))

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self._record(test, "error", detail=self._describe(err, test))

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, "skipped", reason=str(reason))

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, "expected_failure", detail=self._describe(err, test))

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected_success", reason="marked expectedFailure but passed")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        outcome = "failed" if issubclass(err[0], test.failureException) else "error"
        self._record(subtest, outcome, detail=self._describe(err, test))


def _iter_tests(suite: unittest.TestSuite) -> Iterator[Any]:
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _iter_tests(item)
        else:
            yield item


def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]).resolve()


def _is_within(path: str, directory: Path) -> bool:
    try:
        Path(path).resolve().relative_to(directory)
    except ValueError:
        return False
    return True


def verify_substitution(
    test_module: types.ModuleType, module_name: str, expected: types.ModuleType
) -> str | None:
    """Why the substitution did not take effect in ``test_module``, or None when it did.

    Checks both the test module's global (what its tests call) and ``sys.modules`` (what
    ``mock.patch('poplib.x')`` and late ``import poplib`` statements resolve to).
    """
    bound = getattr(test_module, module_name, None)
    if bound is not expected:
        return (
            f"{test_module.__name__}.{module_name} is {bound!r}, not the substitute "
            f"{expected!r}: the test module did not bind the substitute"
        )
    in_sys_modules = sys.modules.get(module_name)
    if in_sys_modules is not expected:
        return (
            f"sys.modules[{module_name!r}] is {in_sys_modules!r}, not the substitute "
            f"{expected!r}: something replaced the substitution"
        )
    return None


def _configure_test_support() -> None:
    """Set ``test.support`` up as regrtest would for a quiet, loopback-only run."""
    support: Any = importlib.import_module("test.support")
    support.verbose = 0  # regrtest's default; verbose mode prints from server threads
    support.use_resources = list(ENABLED_RESOURCES)


def run_in_process(module: str, substitute: str | None) -> SuiteReport:
    """Run the CPython suite for ``module`` in *this* interpreter (the child's job).

    ``substitute`` is a module name to install as ``sys.modules[module]``, or None to run
    against the stdlib. Must run in a fresh interpreter: the substitution is process-wide.
    """
    suite_info = SUITES[module]
    report = SuiteReport(
        status="ok",
        module=module,
        test_module=suite_info.test_module,
        substitute=substitute,
        python=sys.version.split()[0],
        executable=sys.executable,
    )
    started = time.perf_counter()

    if suite_info.test_module in sys.modules:
        report.status = "harness_error"
        report.detail = f"{suite_info.test_module} was imported before the substitution"
        return report

    # 1. The CPython test package must be the interpreter's own, not something on sys.path.
    try:
        test_spec = importlib.util.find_spec(suite_info.test_module)
    except ImportError:
        test_spec = None
    if test_spec is None or test_spec.origin is None:
        report.status = "test_module_missing"
        report.detail = (
            f"{suite_info.test_module} is not installed for {sys.executable} "
            "(some distributions ship the CPython test package separately)"
        )
        return report
    report.test_module_file = test_spec.origin
    if not _is_within(test_spec.origin, _stdlib_dir()):
        report.status = "harness_error"
        report.detail = (
            f"{suite_info.test_module} resolves to {test_spec.origin}, outside the stdlib "
            f"directory {_stdlib_dir()}: something on sys.path shadows CPython's test package"
        )
        return report

    # 2. Import the substitute first (it may import the stdlib module for itself), then install.
    expected: types.ModuleType | None = None
    if substitute is not None:
        try:
            expected = importlib.import_module(substitute)
        except BaseException:
            report.status = "substitute_import_error"
            report.detail = f"import {substitute} failed:\n{traceback.format_exc()}"
            return report
        stdlib_module = sys.modules.get(module)
        if expected is stdlib_module:
            report.status = "harness_error"
            report.detail = f"{substitute} is the stdlib module {module} itself"
            return report
        sys.modules[module] = expected

    # 3. Import the CPython test module, which now binds the substitute.
    _configure_test_support()
    try:
        test_module = importlib.import_module(suite_info.test_module)
    except unittest.SkipTest as exc:
        report.status = "module_skipped"
        report.detail = f"{suite_info.test_module} skipped itself on import: {exc}"
        return report
    except BaseException:
        report.status = "test_module_import_error"
        report.detail = f"import {suite_info.test_module} failed:\n{traceback.format_exc()}"
        return report

    if expected is None:  # stdlib mode: the module bound must be the stdlib's own
        expected = sys.modules.get(module)
        bound_file = getattr(expected, "__file__", None) or ""
        if expected is None or not _is_within(bound_file, _stdlib_dir()):
            report.status = "harness_error"
            report.detail = f"stdlib mode, but {module} resolves to {expected!r}"
            return report
    report.module_file = getattr(expected, "__file__", None) or repr(expected)
    problem = verify_substitution(test_module, module, expected)
    if problem is not None:
        report.status = "substitution_failed"
        report.detail = problem
        return report

    # 4. Load (honours load_tests) and run (honours setUpModule/tearDownModule and cleanups).
    suite = unittest.defaultTestLoader.loadTestsFromModule(test_module)
    report.collected = [test.id() for test in _iter_tests(suite)]
    result = _RecordingResult()
    result.startTestRun()
    try:
        suite.run(result)
    finally:
        result.stopTestRun()

    # 5. The substitution must still be in place after the run.
    problem = verify_substitution(test_module, module, expected)
    if problem is not None:
        report.status = "substitution_failed"
        report.detail = f"after the run: {problem}"
    else:
        report.substitution_verified = True

    # Tests that never started: their class or module fixture was skipped or failed.
    fixture_reasons = {r.id: r.reason or r.outcome for r in result.records.values() if r.fixture}
    for test_id in report.collected:
        if test_id not in result.records:
            class_id, _, _ = test_id.rpartition(".")
            module_id, _, _ = class_id.rpartition(".")
            reason = fixture_reasons.get(
                f"setUpClass ({class_id})",
                fixture_reasons.get(f"setUpModule ({module_id})", "never started"),
            )
            result.records[test_id] = TestRecord(
                id=test_id, outcome="not_run", reason=f"not run: {reason}"
            )
    report.records = list(result.records.values())
    support: Any = importlib.import_module("test.support")
    report.environment_altered = bool(getattr(support, "environment_altered", False))
    report.duration = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------------------------
# Judging a report
# --------------------------------------------------------------------------------------------


def check_report(
    report: SuiteReport, expected_failures: Iterable[str], min_tests_run: int
) -> list[str]:
    """Everything wrong with ``report``; an empty list means the run is acceptable.

    ``expected_failures`` are unittest ids that must fail (deviations from the stdlib). An id
    absent from this interpreter's suite is not expected; one that was skipped is not checked.
    """
    problems: list[str] = []
    if report.status != "ok":
        return [f"the suite did not run ({report.status}): {report.detail}"]
    if not report.substitution_verified:
        problems.append("the substitution was not verified after the run")

    expected = frozenset(expected_failures)
    by_id = report.by_id()
    for record in report.with_outcome(FAILING):
        if record.id in expected:
            continue
        problems.append(
            f"{record.id}: {record.outcome}"
            + (f" ({record.reason})" if record.reason else "")
            + "".join(f"\n{_indent(d)}" for d in record.details)
        )
    for test_id in sorted(expected & set(report.collected)):
        registered = by_id.get(test_id)
        if registered is None or registered.outcome in NOT_EXECUTED:
            continue
        if registered.outcome not in FAILING:
            problems.append(
                f"{test_id} is registered as an expected failure (a deviation) but it "
                f"{registered.outcome}: the deviation no longer bites; update the deviation "
                "registry in src/mailwire/deviations.py"
            )

    run = report.counts()["run"]
    if run < min_tests_run:
        problems.append(
            f"only {run} test(s) ran (of {len(report.collected)} collected); at least "
            f"{min_tests_run} must run for the result to mean anything"
        )
    return problems


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


def format_report(
    report: SuiteReport, expected_failures: Iterable[str] = (), *, tracebacks: bool = True
) -> str:
    """A human-readable summary: counts, failures (with tracebacks), skip reasons."""
    expected = frozenset(expected_failures)
    target = report.substitute or f"the stdlib {report.module}"
    lines = [
        f"{report.test_module} on Python {report.python} ({report.executable}) against {target}",
    ]
    if report.status != "ok":
        lines.append(f"status: {report.status}")
        lines.append(_indent(report.detail))
        return "\n".join(lines)
    lines.append(
        f"substitution verified: {report.substitution_verified} "
        f"({report.module} -> {report.module_file})"
    )
    counts = report.counts()
    order = ("collected", "run", *_SEVERITY)
    lines.append(", ".join(f"{counts[k]} {k}" for k in order if counts[k] or k == "run"))
    lines.append(
        f"duration: {report.duration:.1f}s; environment altered: {report.environment_altered}"
    )
    failing = report.with_outcome(FAILING)
    if failing:
        lines.append("")
        lines.append("Failures and errors:")
        for record in failing:
            tag = " [registered deviation]" if record.id in expected else ""
            lines.append(f"  {record.outcome.upper()}: {record.id}{tag}")
            if tracebacks:
                lines.extend(_indent(d, "      ") for d in record.details)
    slow = sorted((r for r in report.records if r.duration >= SLOW_TEST), key=lambda r: -r.duration)
    if slow:
        lines.append("")
        lines.append(f"Slow tests (>= {SLOW_TEST:g}s; often a read waiting for a timeout):")
        lines.extend(f"  {r.duration:6.1f}s {r.id}" for r in slow[:10])
        if len(slow) > 10:
            lines.append(f"  ... and {len(slow) - 10} more")
    reasons = report.skip_reasons()
    if reasons:
        lines.append("")
        lines.append("Skip reasons:")
        lines.extend(f"  {n:3d} x {reason}" for reason, n in sorted(reasons.items()))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Parent: run the child in a subprocess
# --------------------------------------------------------------------------------------------


class SuiteRunError(RuntimeError):
    """The child crashed, timed out or wrote no report. The message has its stderr."""


def _source_root(name: str) -> str | None:
    """The directory this process imports top-level package ``name`` from, when it is a
    source tree that the child would not find by itself (not an installed site-packages)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin)
    root = (origin.parent.parent if origin.name == "__init__.py" else origin.parent).resolve()
    installed = [*site.getsitepackages(), site.getusersitepackages()]
    if any(root == Path(p).resolve() for p in installed):
        return None  # putting site-packages on PYTHONPATH would put it before the stdlib
    return str(root)


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def run_suite(
    module: str,
    substitute: str | None = None,
    *,
    stdlib: bool = False,
    python: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    extra_path: Sequence[str | os.PathLike[str]] = (),
) -> SuiteReport:
    """Run the CPython suite for ``module`` in a subprocess and return its report.

    By default the suite's mailwire module is substituted; pass ``substitute`` to use another
    module or ``stdlib=True`` to substitute nothing. ``python`` defaults to ``sys.executable``.
    ``extra_path`` entries are put first on the child's ``PYTHONPATH``, followed by the
    source directory this process imports ``mailwire`` from (unless it is site-packages), so
    the child tests the same code.
    """
    suite_info = SUITES[module]
    if stdlib and substitute is not None:
        raise ValueError("stdlib=True and a substitute are mutually exclusive")
    target = STDLIB if stdlib else (substitute or suite_info.substitute)

    env = dict(os.environ)
    path_entries = [os.fspath(p) for p in extra_path]
    mailwire_root = _source_root("mailwire")
    if mailwire_root is not None:
        path_entries.append(mailwire_root)
    if env.get("PYTHONPATH"):
        path_entries.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(path_entries)
    env["PYTHONIOENCODING"] = "utf-8"
    env.pop("PYTHONSTARTUP", None)

    with tempfile.TemporaryDirectory(prefix="mailwire-cpython-suite-") as tmp:
        json_path = Path(tmp) / "report.json"
        command = [
            python or sys.executable,
            "-X",
            "faulthandler",
            str(Path(__file__).resolve()),
            module,
            "--substitute",
            target,
            "--json",
            str(json_path),
            "--timeout",
            str(timeout),
            "--quiet",
        ]
        try:
            completed = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=env,
                cwd=tmp,
                timeout=timeout + _KILL_GRACE,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SuiteRunError(
                f"{suite_info.test_module} did not finish within {timeout + _KILL_GRACE:.0f}s "
                f"and was killed.\ncommand: {command}\n--- stderr ---\n{_decode(exc.stderr)}"
                f"\n--- stdout ---\n{_decode(exc.stdout)}"
            ) from None
        stdout = _decode(completed.stdout)
        stderr = _decode(completed.stderr)
        if not json_path.exists():
            raise SuiteRunError(
                f"{suite_info.test_module} wrote no report (exit status "
                f"{completed.returncode}; a timeout dumps thread stacks to stderr).\n"
                f"command: {command}\n--- stderr ---\n{stderr}\n--- stdout ---\n{stdout}"
            )
        report = SuiteReport.from_json(json.loads(json_path.read_text(encoding="utf-8")))
    report.stdout = stdout
    report.stderr = stderr
    return report


# --------------------------------------------------------------------------------------------
# Command line (also the child's entry point)
# --------------------------------------------------------------------------------------------


def _registry_failures(module: str) -> frozenset[str]:
    from mailwire.deviations import expected_cpython_failures

    return expected_cpython_failures(module)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.compat.cpython_suite",
        description=(
            "Run the running interpreter's CPython test module for poplib/imaplib with "
            "mailwire (or another module) substituted for the stdlib module."
        ),
    )
    parser.add_argument("module", choices=sorted(SUITES))
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--substitute",
        metavar="MODULE",
        help=f"module to substitute (default: mailwire.<module>; '{STDLIB}' for none)",
    )
    group.add_argument("--stdlib", action="store_true", help="substitute nothing (sanity check)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds before thread stacks are dumped and the run aborted (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="print no summary")
    parser.add_argument(
        "--no-tracebacks", action="store_true", help="list failures without their tracebacks"
    )
    args = parser.parse_args(argv)

    substitute: str | None
    if args.stdlib or args.substitute == STDLIB:
        substitute = None
    else:
        substitute = args.substitute or SUITES[args.module].substitute

    if args.timeout > 0:
        import faulthandler

        faulthandler.dump_traceback_later(args.timeout, exit=True)
    report = run_in_process(args.module, substitute)

    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")

    expected: frozenset[str] = frozenset()
    if substitute == SUITES[args.module].substitute:
        expected = _registry_failures(args.module)
    problems = check_report(report, expected, SUITES[args.module].min_tests_run)
    if not args.quiet:
        # The tests may have written to stdout; start the summary on a line of its own.
        print("\n" + format_report(report, expected, tracebacks=not args.no_tracebacks))
        if problems and report.status == "ok":
            print(f"\n{len(problems)} problem(s) against the deviation registry:")
            for problem in problems:
                print(f"  - {problem.splitlines()[0]}")
        print("\nOK" if not problems else "\nFAILED")
    sys.stdout.flush()
    if report.status not in ("ok", "module_skipped", "test_module_missing"):
        return _EXIT_HARNESS
    return _EXIT_PROBLEMS if problems else _EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
