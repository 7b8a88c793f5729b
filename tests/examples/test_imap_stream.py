"""The IMAP4_stream example: a preauthenticated server on a pipe, and the client using it."""

from __future__ import annotations

import re

from mailwire import imaplib
from mailwire.testing import sample_messages

SUBJECTS = [str(m["subject"]) for m in sample_messages()]


def test_runs_against_its_own_stdio_server(run_example) -> None:
    result = run_example("imap_stream")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "--serve-stdio" in out.splitlines()[0]
    assert "greeting: * PREAUTH [CAPABILITY IMAP4rev1 " in out
    assert "state: AUTH (no LOGIN needed)" in out
    assert "INBOX: 6 message(s)" in out
    for uid, subject in enumerate(SUBJECTS, 1):
        assert re.search(rf"^ +{uid}  {re.escape(subject)}  \(", out, flags=re.MULTILINE)
    assert out.rstrip().endswith("the command exited with status 0.")


def test_the_helper_speaks_preauthenticated_imap_on_stdio(run_example) -> None:
    script = b"a CAPABILITY\r\nb SELECT INBOX\r\nc UID FETCH 6 (FLAGS)\r\nd LOGOUT\r\n"
    result = run_example("imap_stream", "--serve-stdio", stdin=script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split(b"\r\n")
    assert lines[0].startswith(b"* PREAUTH [CAPABILITY IMAP4rev1 ")
    assert b"* 6 EXISTS" in lines
    assert b"c OK Fetch completed." in lines
    assert any(line.startswith(b"* 6 FETCH (UID 6 FLAGS (") for line in lines)
    assert lines[-3:] == [b"* BYE Logging out", b"d OK Logout completed.", b""]


def test_the_helper_ends_when_its_input_does(run_example) -> None:
    result = run_example("imap_stream", "--serve-stdio", stdin=b"a NOOP\r\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(b"\r\na OK NOOP completed.\r\n")


def test_subjects_over_imap4_stream(load_example) -> None:
    example = load_example("imap_stream")
    with imaplib.IMAP4_stream(example.helper_command()) as client:
        assert client.state == "AUTH"
        found = example.subjects(client)
        assert client.is_readonly
    assert client.process.returncode == 0
    assert [uid for uid, _, _ in found] == [1, 2, 3, 4, 5, 6]
    assert [subject for _, _, subject in found] == SUBJECTS
    assert found[2][1] == "Jürgen Müller <juergen@example.de>"
