"""Benchmark runner: stdlib vs mailwire vs a raw socket, same server, same workload, one run.

    .venv/bin/python benchmarks/run.py --suite pop3                 # full size, 3 repetitions
    .venv/bin/python benchmarks/run.py --suite pop3 --scale 0.05    # quick smoke run
    .venv/bin/python benchmarks/run.py --suite imap --scale 0.02    # IMAP smoke run
    .venv/bin/python benchmarks/run.py --only b --impl stdlib,raw --repeat 1 --json out.json

For each selected workload the runner starts the suite's loopback server in its own process,
then runs every selected client ``--repeat`` times, each run in a fresh ``clients.py``
subprocess (repetitions interleave the clients, so drift hits them all alike), stops the server
by PID and checks each client's digest against what the server says a correct client sees.
It prints a table (median CPU and wall time, maximum peak RSS and RSS growth) and the ratios,
and with ``--json`` writes everything, every single run included, to a file.

Clients run with ``src/`` first on ``PYTHONPATH``, so ``mailwire`` is the working tree's. If
``mailwire.<module>`` does not import, it is reported as unavailable and the others still run.

Adding a suite: write ``<suite>_server.py`` (same ready-line protocol as ``pop3_server.py``) and
``<suite>_clients.py`` (a ``WORKLOADS`` table like ``pop3_clients.py``), then add a ``Suite`` to
``SUITES`` below (``imap`` is the second example).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import selectors
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
SRC = REPO / "src"

IMPLS = ("stdlib", "mailwire", "raw", "minimal")
#: With ``--base-src``: mailwire from another source tree (say, a worktree of an older commit),
#: run interleaved with the others, so two versions are compared under the same load.
BASE = "base"
#: CPU speed-up over the stdlib that mailwire aims for, unless a workload sets its own.
TARGET_SPEEDUP = 2.0
SEED = 20240601  # corpus.DEFAULT_SEED; repeated so the runner never builds a corpus itself
KIB = 1024
MIB = 1024 * KIB
#: Where the server and the clients run (``--placement``); see ``placement_cpus``.
PLACEMENTS = ("shared", "split", "free")


@dataclass(frozen=True)
class Workload:
    #: ``scale -> parameters`` shared by the server arguments and the clients.
    params: Callable[[float], dict[str, Any]]
    #: ``parameters -> one-line description`` for the report.
    describe: Callable[[Mapping[str, Any]], str]
    #: The stdlib/mailwire CPU ratio mailwire aims for on this workload.
    target: float = TARGET_SPEEDUP
    #: Clients of the suite that have no function for this workload (``minimal`` exists
    #: only where a bare result shape is worth measuring).
    lacks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Suite:
    name: str
    #: Script in benchmarks/ that serves the workload (see pop3_server.py for the protocol).
    server_script: str
    #: ``(params, seed) -> server command-line arguments``.
    server_args: Callable[[Mapping[str, Any], int], list[str]]
    #: Module each library client imports; ``None`` for the raw client.
    modules: dict[str, str | None]
    #: Which entry of the server's ``expected`` digests each client must match.
    expected_key: dict[str, str]
    workloads: dict[str, Workload] = field(default_factory=dict)


def _size(octets: int) -> str:
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if octets >= unit:
            return f"{octets / unit:.{0 if octets % unit == 0 else 1}f} {name}"
    return f"{octets} octets"


def _pop3_many(scale: float) -> dict[str, Any]:
    return {"count": max(1, round(10_000 * scale)), "size": 10 * KIB}


def _pop3_one(scale: float) -> dict[str, Any]:
    return {"count": 1, "size": max(64 * KIB, round(100 * MIB * scale))}


def _imap_range(scale: float) -> dict[str, Any]:
    return {"count": max(1, round(10_000 * scale)), "size": 10 * KIB, "fetch": "range"}


def _imap_single(scale: float) -> dict[str, Any]:
    return {"count": max(1, round(2_000 * scale)), "size": 10 * KIB, "fetch": "single"}


def _imap_literal(scale: float) -> dict[str, Any]:
    return {"count": 1, "size": max(64 * KIB, round(100 * MIB * scale)), "fetch": "single"}


def _imap_flags(scale: float) -> dict[str, Any]:
    return {"count": max(1, round(100_000 * scale)), "fetch": "flags"}


def _imap_server_args(p: Mapping[str, Any], seed: int) -> list[str]:
    size = [f"--size={p['size']}"] if "size" in p else []
    return [f"--count={p['count']}", *size, f"--fetch={p['fetch']}", f"--seed={seed}"]


SUITES: dict[str, Suite] = {
    "pop3": Suite(
        name="pop3",
        server_script="pop3_server.py",
        server_args=lambda p, seed: [
            f"--count={p['count']}",
            f"--size={p['size']}",
            f"--seed={seed}",
        ],
        modules={"stdlib": "poplib", "mailwire": "mailwire.poplib", "raw": None, "minimal": None},
        expected_key={"stdlib": "lines", "mailwire": "lines", "raw": "wire", "minimal": "lines"},
        workloads={
            "a": Workload(
                _pop3_many,
                lambda p: (
                    f"USER/PASS, then retr(i) of each of {p['count']:,} messages "
                    f"of {_size(p['size'])}"
                ),
            ),
            "b": Workload(_pop3_one, lambda p: f"retr(1) of one {_size(p['size'])} message"),
        },
    ),
    "imap": Suite(
        name="imap",
        server_script="imap_server.py",
        server_args=_imap_server_args,
        modules={"stdlib": "imaplib", "mailwire": "mailwire.imaplib", "raw": None, "minimal": None},
        expected_key={"stdlib": "data", "mailwire": "data", "raw": "wire", "minimal": "data"},
        workloads={
            "c": Workload(
                _imap_range,
                lambda p: (
                    f"fetch('1:*', '(RFC822)') of {p['count']:,} messages of {_size(p['size'])}"
                ),
                target=1.8,
                lacks=frozenset({"minimal"}),
            ),
            "d": Workload(
                _imap_single,
                lambda p: (
                    f"fetch(str(i), '(RFC822)') for each of {p['count']:,} messages "
                    f"of {_size(p['size'])}"
                ),
                target=1.3,
            ),
            "e": Workload(
                _imap_literal,
                lambda p: f"fetch('1', '(RFC822)') of one {_size(p['size'])} message",
                target=1.0,
                lacks=frozenset({"minimal"}),
            ),
            "f": Workload(
                _imap_flags,
                lambda p: f"fetch('1:*', '(UID FLAGS RFC822.SIZE)') over {p['count']:,} messages",
                target=8.0,
                lacks=frozenset({"minimal"}),
            ),
        },
    ),
}
#: Suites that are announced but not written yet: ``name -> why not``.
PLANNED_SUITES: dict[str, str] = {}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def client_env(src: Path = SRC) -> dict[str, str]:
    env = dict(os.environ)
    path = [str(src), env["PYTHONPATH"]] if env.get("PYTHONPATH") else [str(src)]
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env


def check_module(module: str, env: Mapping[str, str]) -> str | None:
    """``None`` if ``module`` imports in a client process, else why not."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, sys; importlib.import_module(sys.argv[1])",
            module,
        ],
        cwd=BENCH,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


def placement_cpus(placement: str) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    """The CPUs of the server and of the clients for ``placement``; None leaves the choice to
    the scheduler.

    Where the server runs changes what the kernel charges to the client. With ``shared`` (one
    CPU for both) a request wakes the server on the same CPU and the client seldom sleeps in
    a receive. With ``split`` (a CPU each) every request adds a cross-CPU wake-up of the
    server, an expensive exit to the host under virtualisation, which a client of a remote
    server never pays; bulk transfers, on the other hand, overlap. ``free`` (the default,
    and the protocol the targets were set on) lets the scheduler choose, differently from one
    run to the next. docs/benchmarks.rst, "Placement", has the figures.
    """
    if placement == "free" or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if placement == "shared" or len(cpus) < 2:
        return frozenset(cpus[-1:]), frozenset(cpus[-1:])
    return frozenset(cpus[-2:-1]), frozenset(cpus[-1:])


def _pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that pins the child to ``cpus`` (the runner has no threads, so a
    ``preexec_fn`` is safe here)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class Server:
    """A suite server in its own process, stopped by PID."""

    def __init__(
        self,
        script: str,
        args: Sequence[str],
        env: Mapping[str, str],
        timeout: float,
        cpus: frozenset[int] | None = None,
    ) -> None:
        self.script = script
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / script), *args, f"--parent-pid={os.getpid()}"],
            cwd=BENCH,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            preexec_fn=_pinned(cpus),
        )
        try:
            self.info = self._ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _ready(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=0.5):
                    line = self.proc.stdout.readline()
                    if not line:
                        break
                    info: dict[str, Any] = json.loads(line)
                    return info
                if self.proc.poll() is not None:
                    break
        raise RuntimeError(
            f"{self.script} was not ready within {timeout:.0f} s (exit status {self.proc.poll()})"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM to self.proc.pid
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_client(
    suite: str,
    workload: str,
    impl: str,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    timeout: float,
    cpus: frozenset[int] | None = None,
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(BENCH / "clients.py"),
        "--suite",
        suite,
        "--workload",
        workload,
        "--impl",
        impl,
        "--params",
        json.dumps(params),
    ]
    try:
        proc = subprocess.run(
            command,
            cwd=BENCH,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=_pinned(cpus),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        result = {"error": f"exit status {proc.returncode}, no result"}
    if "error" in result and proc.stderr.strip():
        result["stderr"] = proc.stderr.strip()[-2000:]
    return result


def _client(impl: str) -> str:
    """The client a name runs: ``base`` is mailwire's, from another source tree."""
    return "mailwire" if impl == BASE else impl


def _crc(digest: str | None) -> str:
    return digest.rsplit(" ", 1)[-1] if digest else "-"


def summarise(runs: list[dict[str, Any]], expected: str | None) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r]
    summary: dict[str, Any] = {"runs": runs, "expected_digest": expected}
    if not good:
        summary["status"] = "ERROR"
        summary["error"] = runs[0].get("error") if runs else "no runs"
        return summary
    digests = sorted({r["digest"] for r in good})
    summary.update(
        cpu_s=statistics.median(r["cpu_s"] for r in good),
        cpu_s_range=[min(r["cpu_s"] for r in good), max(r["cpu_s"] for r in good)],
        wall_s=statistics.median(r["wall_s"] for r in good),
        peak_rss_mib=max(r["peak_rss_mib"] for r in good),
        rss_delta_mib=max(r["rss_delta_mib"] for r in good),
        baseline_rss_mib=statistics.median(r["baseline_rss_mib"] for r in good),
        digest=digests[0] if len(digests) == 1 else digests,
        module_file=good[0].get("module_file"),
    )
    if len(good) < len(runs):
        summary["status"] = "ERROR"
        summary["error"] = next(r["error"] for r in runs if "error" in r)
    elif digests != [expected]:
        summary["status"] = "MISMATCH"
    else:
        summary["status"] = "ok"
    return summary


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def paired_ratios(
    results: Mapping[str, Mapping[str, Any]], numerator: str, denominator: str
) -> list[float]:
    """CPU ratio of each repetition's two runs. The runs of one repetition are back to back,
    so slow drift of the machine cancels out of each ratio (it does not out of a ratio of
    medians taken over the whole run)."""
    top = results.get(numerator, {}).get("runs", [])
    bottom = results.get(denominator, {}).get("runs", [])
    return [
        a["cpu_s"] / b["cpu_s"]
        for a, b in zip(top, bottom)
        if "cpu_s" in a and "cpu_s" in b and b["cpu_s"]
    ]


def ratios(results: Mapping[str, Mapping[str, Any]], target: float) -> dict[str, Any]:
    cpu = {impl: r.get("cpu_s") for impl, r in results.items()}
    paired = paired_ratios(results, "stdlib", "mailwire")
    out: dict[str, Any] = {
        "stdlib_over_mailwire_cpu": _ratio(cpu.get("stdlib"), cpu.get("mailwire")),
        "paired_stdlib_over_mailwire_cpu": statistics.median(paired) if paired else None,
        "paired_stdlib_over_mailwire_cpu_range": [min(paired), max(paired)] if paired else None,
        "mailwire_over_raw_cpu": _ratio(cpu.get("mailwire"), cpu.get("raw")),
        "mailwire_over_minimal_cpu": _ratio(cpu.get("mailwire"), cpu.get("minimal")),
        "stdlib_over_minimal_cpu": _ratio(cpu.get("stdlib"), cpu.get("minimal")),
        "stdlib_over_raw_cpu": _ratio(cpu.get("stdlib"), cpu.get("raw")),
        "target_stdlib_over_mailwire_cpu": target,
    }
    if BASE in results:
        out["base_over_mailwire_cpu"] = _ratio(cpu.get(BASE), cpu.get("mailwire"))
    std, mw = results.get("stdlib", {}), results.get("mailwire", {})
    if "peak_rss_mib" in std and "peak_rss_mib" in mw:
        out["mailwire_peak_rss_le_stdlib"] = mw["peak_rss_mib"] <= std["peak_rss_mib"]
        out["mailwire_rss_delta_le_stdlib"] = mw["rss_delta_mib"] <= std["rss_delta_mib"]
    if std.get("digest") is not None and mw.get("digest") is not None:
        out["stdlib_mailwire_digests_equal"] = std["digest"] == mw["digest"]
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: Mapping[str, Any]) -> None:
    print(
        f"suite {report['suite']}  scale {report['scale']}  repeat {report['repeat']}  "
        f"python {report['python_version']}  {report['platform']}  cpus {report['cpus']}"
    )
    where = report["placement"]
    if report["server_cpus"] is not None:
        where += f" (server on CPU {report['server_cpus']}, clients on CPU {report['client_cpus']})"
    print(f"placement {where}")
    start, end = report["load_average_at_start"], report["load_average_at_end"]
    if start and end:
        print(
            f"load average (1 min) {start[0]:.2f} at start, {end[0]:.2f} at end "
            "(other work on the machine adds noise)"
        )
    print(
        f"repo {report['git']}  (CPU: median of runs, ratios also per repetition; "
        "RSS: max of runs; digest checked against the server)"
    )
    for name, w in report["workloads"].items():
        print(f"  {name}: {w['title']}  {json.dumps(w['params'])}")
    for impl, info in report["impls"].items():
        if not info["available"]:
            print(f"  {impl}: UNAVAILABLE ({info['reason']})")
    print()
    print(
        f"{'workload':<9} {'client':<9} {'cpu_s':>8} {'wall_s':>8} {'peak_rss_MiB':>13} "
        f"{'rss_delta_MiB':>14}  digest"
    )
    mismatches: list[str] = []
    for name, w in report["workloads"].items():
        for impl, r in w["results"].items():
            if r["status"] == "unavailable":
                print(f"{name:<9} {impl:<9} {'unavailable':>8}")
                continue
            if r["status"] == "ERROR" and "cpu_s" not in r:
                print(f"{name:<9} {impl:<9} {'ERROR':>8}  {r['error']}")
                continue
            status = r["status"]
            shown = r["digest"] if isinstance(r["digest"], str) else " / ".join(r["digest"])
            note = f"{status} {_crc(shown)}" if status == "ok" else f"{status}: {shown}"
            if status != "ok":
                mismatches.append(
                    f"{name} {impl}: got {shown}; expected {r['expected_digest']}"
                    + (f"; error: {r['error']}" if "error" in r else "")
                )
            print(
                f"{name:<9} {impl:<9} {r['cpu_s']:>8.3f} {r['wall_s']:>8.3f} "
                f"{r['peak_rss_mib']:>13.1f} {r['rss_delta_mib']:>14.1f}  {note}"
            )
    print()
    print("ratios:")
    for name, w in report["workloads"].items():
        q = w["ratios"]
        speedup = q["stdlib_over_mailwire_cpu"]
        target = q["target_stdlib_over_mailwire_cpu"]
        verdict = "" if speedup is None else (": met" if speedup >= target else ": NOT met")
        paired = q.get("paired_stdlib_over_mailwire_cpu")
        spread = q.get("paired_stdlib_over_mailwire_cpu_range")
        parts = [
            f"stdlib/mailwire CPU = {_fmt(speedup, '.2f')} (target >= {target:.1f}{verdict})",
            f"per repetition {_fmt(paired, '.2f')} median"
            + (f", {spread[0]:.2f}-{spread[1]:.2f}" if spread else ""),
            f"mailwire/raw CPU = {_fmt(q['mailwire_over_raw_cpu'], '.2f')}",
            f"stdlib/raw CPU = {_fmt(q['stdlib_over_raw_cpu'], '.2f')}",
        ]
        if q.get("mailwire_over_minimal_cpu") is not None:
            parts.append(
                f"mailwire/minimal CPU = {q['mailwire_over_minimal_cpu']:.2f}; "
                f"stdlib/minimal CPU = {_fmt(q['stdlib_over_minimal_cpu'], '.2f')}"
            )
        if "mailwire_peak_rss_le_stdlib" in q:
            std, mw = w["results"]["stdlib"], w["results"]["mailwire"]
            parts.append(
                "RSS mailwire <= stdlib: "
                + ("yes" if q["mailwire_peak_rss_le_stdlib"] else "no")
                + f" (peak {mw['peak_rss_mib']:.1f} vs {std['peak_rss_mib']:.1f} MiB; "
                f"delta {mw['rss_delta_mib']:.1f} vs {std['rss_delta_mib']:.1f} MiB)"
            )
        else:
            parts.append("RSS mailwire <= stdlib: n/a")
        if "base_over_mailwire_cpu" in q:
            parts.append(f"base/mailwire CPU = {_fmt(q['base_over_mailwire_cpu'], '.2f')}")
        if q.get("stdlib_mailwire_digests_equal") is False:
            parts.append("stdlib/mailwire digests: MISMATCH")
        print(f"  {name}: " + "; ".join(parts))
    for line in mismatches:
        print(f"MISMATCH {line}")


def _git_state() -> str:
    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=False
        )
        return proc.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"{commit}{' + uncommitted src changes' if dirty else ''}"


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _names(text: str, allowed: Sequence[str], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise SystemExit(f"unknown {what} {unknown or text!r}; choose from {', '.join(allowed)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Compare stdlib, mailwire and a raw socket client on the same workload."
    )
    parser.add_argument("--suite", default="pop3", choices=sorted([*SUITES, *PLANNED_SUITES]))
    parser.add_argument("--only", help="comma-separated workloads (default: all of the suite)")
    parser.add_argument(
        "--impl",
        help="comma-separated clients from stdlib,mailwire,raw and minimal (POP3, IMAP d) "
        "(default: all the suite offers)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="shrink the data volume (0.01 = 1%%) for a quick smoke run",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per client (default 3)")
    parser.add_argument(
        "--placement",
        choices=PLACEMENTS,
        default="free",
        help="free: wherever the scheduler puts the server and the clients (default); shared: "
        "all on one CPU; split: the server on one CPU, the clients on another",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="corpus seed")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before a client run (or server start) is given up",
    )
    parser.add_argument(
        "--base-src",
        metavar="PATH",
        help="also run mailwire from this src/ directory (e.g. of a git worktree of another "
        "commit) as client 'base', interleaved with the others",
    )
    args = parser.parse_args(argv)
    if args.suite in PLANNED_SUITES:
        raise SystemExit(f"--suite {args.suite}: {PLANNED_SUITES[args.suite]}")
    if not args.scale > 0 or args.repeat < 1:
        raise SystemExit("--scale must be > 0 and --repeat >= 1")
    suite = SUITES[args.suite]
    workloads = _names(args.only or ",".join(suite.workloads), list(suite.workloads), "workload")
    offered = [impl for impl in IMPLS if impl in suite.modules]
    impls = _names(args.impl or ",".join(offered), offered, "client")
    sources = {impl: SRC for impl in impls}
    if args.base_src:
        base_src = Path(args.base_src).resolve()
        if not (base_src / "mailwire").is_dir():
            raise SystemExit(f"--base-src {args.base_src}: no mailwire package there")
        impls.append(BASE)
        sources[BASE] = base_src

    # The stdlib's modules are byte-compiled when Python is installed, and so is mailwire when
    # pip installs it; compile src/ too, or mailwire's clients would pay for compiling their
    # modules (time and peak memory) while the stdlib's do not.
    import compileall

    envs: dict[str, dict[str, str]] = {}
    for impl in impls:
        compileall.compile_dir(str(sources[impl]), quiet=2)
        envs[impl] = client_env(sources[impl])
        envs[impl].pop("PYTHONDONTWRITEBYTECODE", None)
    env = envs[impls[0]]
    impl_info: dict[str, dict[str, Any]] = {}
    for impl in impls:
        module = suite.modules[_client(impl)]
        reason = check_module(module, envs[impl]) if module else None
        impl_info[impl] = {"available": reason is None, "module": module}
        if reason is not None:
            impl_info[impl]["reason"] = reason
            _say(f"{impl}: unavailable ({module}: {reason}); running the others")
    runnable = [impl for impl in impls if impl_info[impl]["available"]]
    server_cpus, client_cpus = placement_cpus(args.placement)

    report: dict[str, Any] = {
        "suite": suite.name,
        "scale": args.scale,
        "repeat": args.repeat,
        "seed": args.seed,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version,
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        # What was applied: without sched_getaffinity nothing is pinned, and with one CPU
        # "split" can only share it.
        "placement": (
            "free" if server_cpus is None else "shared" if server_cpus == client_cpus else "split"
        ),
        "server_cpus": sorted(server_cpus) if server_cpus is not None else None,
        "client_cpus": sorted(client_cpus) if client_cpus is not None else None,
        "load_average_at_start": _load_average(),
        "git": _git_state(),
        "impls": impl_info,
        "workloads": {},
    }
    for name in workloads:
        workload = suite.workloads[name]
        params = workload.params(args.scale)
        _say(f"[{name}] starting {suite.server_script} {json.dumps(params)}")
        server = Server(
            suite.server_script,
            suite.server_args(params, args.seed),
            env,
            args.timeout,
            server_cpus,
        )
        clients = [impl for impl in runnable if _client(impl) not in workload.lacks]
        runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in clients}
        try:
            client_params = {
                **params,
                "host": "127.0.0.1",
                "port": server.info["port"],
                "user": "bench",
                "password": "bench-secret",
                "seed": args.seed,
            }
            for rep in range(1, args.repeat + 1):
                for impl in clients:
                    result = run_client(
                        suite.name,
                        name,
                        _client(impl),
                        client_params,
                        envs[impl],
                        args.timeout,
                        client_cpus,
                    )
                    runs[impl].append(result)
                    _say(
                        f"[{name}] {impl:<8} run {rep}/{args.repeat}: "
                        + (
                            f"cpu {result['cpu_s']:.3f} s, wall {result['wall_s']:.3f} s, "
                            f"peak {result['peak_rss_mib']:.1f} MiB"
                            if "error" not in result
                            else f"ERROR {result['error']}"
                        )
                    )
        finally:
            server.stop()
        expected = server.info["expected"]
        results: dict[str, Any] = {}
        for impl in impls:
            if _client(impl) in workload.lacks:
                continue
            if impl in runs:
                results[impl] = summarise(
                    runs[impl], expected[suite.expected_key[_client(impl)]]
                )
            else:
                results[impl] = {"status": "unavailable", "reason": impl_info[impl]["reason"]}
        report["workloads"][name] = {
            "title": workload.describe(params),
            "params": params,
            "expected": expected,
            "results": results,
            "ratios": ratios(results, workload.target),
        }

    report["ok"] = all(
        r["status"] in ("ok", "unavailable")
        for w in report["workloads"].values()
        for r in w["results"].values()
    ) and all(
        w["ratios"].get("stdlib_mailwire_digests_equal", True) for w in report["workloads"].values()
    )
    report["load_average_at_end"] = _load_average()
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        _say(f"wrote {args.json}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
