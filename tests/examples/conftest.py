"""Fixtures for the example tests: run an example as a user would, or import its functions."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: Seconds an example may take in a subprocess (each takes well under one).
TIMEOUT = 60

RunExample = Callable[..., "subprocess.CompletedProcess[Any]"]
LoadExample = Callable[[str], ModuleType]


def _run(name: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[Any]:
    """Output is text (UTF-8), or bytes when *stdin* (bytes) is given."""
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"  # the sample subjects are not all ASCII
    env.pop("MAILWIRE_VERIFY_TLS", None)  # it would change what "no context" means
    text: dict[str, Any] = {"text": True, "encoding": "utf-8"} if stdin is None else {}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        input=stdin, capture_output=True, env=env, timeout=TIMEOUT, check=False, **text,
    )  # fmt: skip


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_example() -> RunExample:
    """``run_example(name, *args)`` runs ``examples/<name>.py`` in a subprocess."""
    return _run


@pytest.fixture
def load_example() -> LoadExample:
    """``load_example(name)`` imports ``examples/<name>.py`` (its ``main()`` does not run)."""
    return _load
