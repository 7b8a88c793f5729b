"""Count the Python bytecode instructions that one single-message fetch (workload d) runs in
the stdlib, mailwire and the minimal client, against the benchmark's IMAP server.

Unlike CPU time, an instruction count does not move with the machine's load or with where
the scheduler puts the server, so it shows what a change to the per-command path saves
when (d) cannot tell it from its noise. It is a guide, not a measure of time: C calls count
as one instruction, and on (d) what code and data a command touches counts as much as how
many instructions it runs (docs/benchmarks.rst, "What a drop-in costs on (d)").

    python benchmarks/trace_fetch.py              # totals for the three clients
    python benchmarks/trace_fetch.py --top 12     # and where each client's instructions go

Each client is warmed up with a few dozen fetches first, so that what is traced is the
steady state, not first-call work.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, Callable, Optional

from imap_clients import RAW_BUFFER, MinimalIMAP
from run import SEED, SRC, Server, _imap_server_args, client_env

#: Fetches run before the traced one.
WARM_UP = 40
_PARAMS = {"count": 64, "size": 10 * 1024, "fetch": "single"}
_LOGIN = {"user": "bench", "password": "bench-secret"}

Counts = collections.Counter  # (file, function) -> instructions


def _library(module_name: str, port: int) -> Any:
    module = importlib.import_module(module_name)
    client = module.IMAP4("127.0.0.1", port)
    client.login(_LOGIN["user"], _LOGIN["password"])
    client.select("INBOX")
    return client


def _minimal(port: int) -> Any:
    client = MinimalIMAP("127.0.0.1", port, RAW_BUFFER)
    client.login(_LOGIN)
    return client


def traced(call: Callable[[], Any]) -> Counts[tuple[str, str]]:
    """The instructions ``call()`` runs, per (file, function)."""
    counts: Counts[tuple[str, str]] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Optional[Callable[..., Any]]:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[(os.path.basename(code.co_filename), code.co_name)] += 1
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    # This script's own frames (the lambda that makes the call) are not the client's work.
    here = os.path.basename(__file__)
    return collections.Counter({key: n for key, n in counts.items() if key[0] != here})


def measure(client: Any) -> Counts[tuple[str, str]]:
    for number in range(1, WARM_UP + 1):
        client.fetch(str(number), "(RFC822)")
    counts = traced(lambda: client.fetch(str(WARM_UP + 1), "(RFC822)"))
    client.logout()
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=0, help="also list the N busiest functions")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(SRC))  # mailwire from this checkout, as run.py's clients use it
    server = Server("imap_server.py", _imap_server_args(_PARAMS, SEED), client_env(), 60)
    try:
        port = server.info["port"]
        clients: dict[str, Callable[[], Any]] = {
            "stdlib": lambda: _library("imaplib", port),
            "mailwire": lambda: _library("mailwire.imaplib", port),
            "minimal": lambda: _minimal(port),
        }
        for name, connect in clients.items():
            counts = measure(connect())
            print(f"{name:<9} {sum(counts.values()):5d} instructions per fetch")
            for (file, function), count in counts.most_common(args.top):
                print(f"          {count:5d}  {function} ({file})")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
