"""``python -m mailwire``: the demo and the serve command, run as a user would run them."""

from __future__ import annotations

import os
import poplib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailwire.testing import sample_messages, test_ssl_context

SRC = Path(__file__).resolve().parents[2] / "src"
TIMEOUT = 60


def run_module(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "mailwire", *args],
        env=module_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        **kwargs,
    )


def module_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_demo_summarises_every_sample_message() -> None:
    result = run_module("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    samples = sample_messages()
    for sample in samples:
        assert sample["subject"] in out
        assert str(sample["from"]) in out
    assert f"Mailbox: {len(samples)} messages," in out
    assert "STLS: TLSv1" in out and "certificate verified" in out
    assert "1 attachment (report.csv)" in out
    assert "1 attachment (terrace.png)" in out
    assert out.rstrip().endswith("logged out, server stopped.")
    numbered = re.findall(r"^  \[(\d+)\] ", out, flags=re.MULTILINE)
    assert numbered == [str(n) for n in range(1, len(samples) + 1)]


def test_help_lists_the_subcommands() -> None:
    result = run_module("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout and "serve" in result.stdout
    bare = run_module()
    assert bare.returncode == 2
    assert "demo" in bare.stdout


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")
def test_serve_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mailwire", "serve", "--samples", "--user", "zoe:pw"],
        env=module_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        banner = "".join(lines)
        found = re.search(r"POP3 +(\S+) port (\d+) with STLS", banner)
        assert found, banner
        client = poplib.POP3(found.group(1), int(found.group(2)), timeout=TIMEOUT)
        client.stls(test_ssl_context())
        client.user("zoe")
        client.pass_("pw")
        assert client.stat()[0] == len(sample_messages())
        client.quit()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert out.strip() == "Stopped."
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
