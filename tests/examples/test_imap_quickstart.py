"""The IMAP quickstart example: folders, then the newest messages as a table, newest first."""

from __future__ import annotations

import re

from mailwire import imaplib
from mailwire.testing import MailServer, sample_messages, test_ssl_context

SUBJECTS = [str(m["subject"]) for m in sample_messages()]


def test_runs_against_the_embedded_server(run_example) -> None:
    result = run_example("imap_quickstart")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "TLSv1" in out and "certificate verified" in out
    for folder in ("INBOX", "Archive/2023", "Sent", "Entwürfe"):  # mUTF-7 decoded
        assert re.search(rf"^  {re.escape(folder)} ", out, flags=re.MULTILINE), folder
    for subject in SUBJECTS:
        assert subject in out
    uids = re.findall(r"^ +(\d+)  ", out.split("Subject\n", 1)[1], flags=re.MULTILINE)
    assert uids == ["6", "5", "4", "3", "2", "1"]
    assert re.search(r"^ +2  Answered Seen Recent +2024-03-06 15:30  Bob Example ", out,
                     flags=re.MULTILINE)
    assert "田中 花子" in out and "Jürgen Müller" in out  # encoded-words decoded
    assert out.rstrip().endswith("Logged out.")


def test_count_limits_the_table_to_the_newest(run_example) -> None:
    result = run_example("imap_quickstart", "--count", "2")
    assert result.returncode == 0, result.stderr
    assert "6 message(s), the newest 2 first" in result.stdout
    assert [s for s in SUBJECTS if s in result.stdout] == SUBJECTS[4:]


def test_newest_reads_envelopes_literals_included_and_changes_nothing(load_example) -> None:
    example = load_example("imap_quickstart")
    raw = ('From: "Zoë \\"Q\\" Quote" <zoe@example.org>\n'  # 8-bit: sent as literals
           'Subject: Größe "quoted" \\ (back)\n'
           "Date: Tue, 05 Mar 2024 12:00:00 +0000\n\nhi\n").encode()
    with MailServer(users={"alice": "pw"}, pop3=False, imap=True) as server:
        for message in sample_messages():
            server.deliver("alice", message)
        server.deliver("alice", raw, flags=["\\Flagged"])
        before = [m.flags for m in server.messages("alice")]
        with imaplib.IMAP4(server.host, server.imap_port, timeout=10) as client:
            client.starttls(test_ssl_context())
            client.login("alice", "pw")
            assert dict(example.list_folders(client)) == {"INBOX": ("\\HasNoChildren",)}
            _typ, data = client.select("INBOX", readonly=True)
            rows = example.newest(client, int(data[0]), 3)
        assert [m.flags for m in server.messages("alice")] == before
    assert [row.uid for row in rows] == [7, 6, 5]
    assert rows[0].subject == 'Größe "quoted" \\ (back)'
    assert rows[0].sender == 'Zoë "Q" Quote'
    assert rows[0].date == "2024-03-05 12:00"
    assert rows[0].flags == ("\\Flagged", "\\Recent")
    assert rows[0].size == len(raw.replace(b"\n", b"\r\n"))
    assert [row.subject for row in rows[1:]] == [SUBJECTS[5], SUBJECTS[4]]
    assert rows[1].sender == "Dave Pixel"


def test_helpers(load_example) -> None:
    example = load_example("imap_quickstart")
    assert example.decode_mailbox_name(b"Entw&APw-rfe") == "Entwürfe"
    assert example.decode_mailbox_name(b"R&-D/&ZeVnLIqe-") == "R&D/日本語"
    parsed = example.parse_response([(b'1 (X {4}', b'a )"'), b' NIL "q\\"t" (\\Seen))'])
    assert parsed == [b"1", [b"X", b'a )"', None, b'q"t', [b"\\Seen"]]]
    assert example.width("会議 ok") == 7
    cut = example.fit("会議のお知らせ", 7)
    assert example.width(cut) == 7 and cut.startswith("会議の")
    assert example.fit("ab", 4) == "ab  "
    assert example.decode_words(b"=?utf-8?q?J=C3=BCrgen?=") == "Jürgen"
