"""The per-client side of a benchmark: one workload, one client, one fresh process.

The runner starts this script once per (workload, client, repetition):

    python benchmarks/clients.py --suite pop3 --workload a --impl stdlib --params '{...}'

It imports the suite's client module ``<suite>_clients`` (``pop3_clients``; later
``imap_clients``), whose ``WORKLOADS[workload][impl]`` is the function to run, runs it and
prints one JSON line with the measurements.

A workload function receives the parameters and a ``Meter``. It connects (not measured), calls
``meter.start()``, does the work, calls ``meter.stop()``, and returns the digest of what it
received. Anything it does between ``meter.pause()`` and ``meter.resume()`` (computing digests)
is subtracted from the CPU and wall time. Pausing costs two clock reads, so workloads pause
once per batch of results, not once per message.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, Callable

__all__ = ["ClientFn", "Meter", "rss_now_mib"]

#: ``fn(params, meter) -> digest``; see the module docstring.
ClientFn = Callable[[Mapping[str, Any], "Meter"], str]


_MIB = 1024 * 1024
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, else KiB


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_now_mib() -> float:
    """Resident set size right now (Linux); elsewhere the peak so far, the best there is."""
    kib = _proc_status_kib("VmRSS:")
    if kib is not None:
        return kib / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * _MAXRSS_UNIT / _MIB


class Meter:
    """CPU, wall time and memory of the measured part of a workload."""

    def __init__(self) -> None:
        self._paused_cpu = 0.0
        self._paused_wall = 0.0
        self._pause_cpu0 = 0.0
        self._pause_wall0 = 0.0
        self._started = False
        self.result: dict[str, Any] = {}
        #: Extra facts for the report (e.g. which module file was imported).
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        if self._started:
            raise RuntimeError("Meter.start() called twice")
        self._started = True
        self._baseline_mib = rss_now_mib()
        self._ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self._wall0 = time.perf_counter()

    def pause(self) -> None:
        self._pause_wall0 = time.perf_counter()
        self._pause_cpu0 = time.process_time()

    def resume(self) -> None:
        self._paused_cpu += time.process_time() - self._pause_cpu0
        self._paused_wall += time.perf_counter() - self._pause_wall0

    def stop(self) -> None:
        wall1 = time.perf_counter()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        if not self._started or self.result:
            raise RuntimeError("Meter.stop() without start(), or called twice")
        ru0 = self._ru0
        user = ru1.ru_utime - ru0.ru_utime
        system = ru1.ru_stime - ru0.ru_stime
        ru_maxrss = ru1.ru_maxrss * _MAXRSS_UNIT / _MIB
        # On Linux ru_maxrss starts from the *spawning* process's peak (exec records the old
        # address space's high-water mark), so a client started by a runner bigger than itself
        # would report the runner's size. VmHWM is this process's own peak; prefer it.
        hwm_kib = _proc_status_kib("VmHWM:")
        peak = hwm_kib / 1024 if hwm_kib is not None else ru_maxrss
        self.result = {
            "cpu_s": user + system - self._paused_cpu,
            "user_s": user,
            "sys_s": system,
            "excluded_cpu_s": self._paused_cpu,
            "wall_s": wall1 - self._wall0 - self._paused_wall,
            "peak_rss_mib": peak,
            "ru_maxrss_mib": ru_maxrss,
            "baseline_rss_mib": self._baseline_mib,
            "rss_delta_mib": max(0.0, peak - self._baseline_mib),
        }


def run(suite: str, workload: str, impl: str, params: Mapping[str, Any]) -> dict[str, Any]:
    module = importlib.import_module(f"{suite}_clients")
    try:
        fn: ClientFn = module.WORKLOADS[workload][impl]
    except KeyError:
        raise SystemExit(f"{suite} has no client {impl!r} for workload {workload!r}") from None
    meter = Meter()
    digest = fn(params, meter)
    if not meter.result:
        raise RuntimeError(f"{fn.__name__} did not call meter.start()/meter.stop()")
    return {**meter.result, **meter.info, "digest": digest}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one benchmark workload for one client.")
    parser.add_argument("--suite", required=True, help="imports <suite>_clients.py")
    parser.add_argument("--workload", required=True)
    parser.add_argument("--impl", required=True)
    parser.add_argument("--params", required=True, help="JSON object of workload parameters")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    try:
        result = run(args.suite, args.workload, args.impl, params)
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["pid"] = os.getpid()
    print(json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
