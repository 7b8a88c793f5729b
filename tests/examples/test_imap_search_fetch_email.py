"""The search-and-fetch example: it finds what was asked for and marks nothing as read."""

from __future__ import annotations

from datetime import date

from mailwire import imaplib
from mailwire.testing import MailServer, sample_messages, test_ssl_context

SAMPLES = sample_messages()
SUBJECTS = [str(m["subject"]) for m in SAMPLES]


def test_shows_the_unread_messages_by_default(run_example) -> None:
    result = run_example("imap_search_fetch_email")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "search('UNSEEN'): 5 message(s) in INBOX" in out
    assert SUBJECTS[0] not in out  # the embedded mailbox has the welcome message read
    for uid, sample in enumerate(SAMPLES[1:], 2):
        assert f"[UID {uid}] {sample['subject']}" in out
        assert f"  From: {sample['from']}" in out
    assert "  Attachments: report.csv" in out and "  Attachments: terrace.png" in out
    assert "  | The figures are attached." in out  # the text/plain alternative, not the HTML
    assert "  | viele Grüße aus Köln! Das Café am Dom hat die besten Kuchen." in out
    assert "<html>" not in out
    assert out.rstrip().endswith("none was marked as read.")


def test_criteria_from_the_command_line(run_example) -> None:
    result = run_example("imap_search_fetch_email", "--from", "example", "--since", "2024-03-08")
    assert result.returncode == 0, result.stderr
    assert ("search('FROM ? SINCE ?', params=['example', '8-Mar-2024']): 3 message(s)"
            in result.stdout)
    assert [s for s in SUBJECTS if s in result.stdout] == SUBJECTS[3:]


def test_search_and_fetch_mark_nothing_read(load_example) -> None:
    example = load_example("imap_search_fetch_email")
    with MailServer(users={"alice": "pw"}, pop3=False, imap=True) as server:
        for number, message in enumerate(SAMPLES, 1):
            server.deliver("alice", message, flags=["\\Seen"] if number == 1 else [],
                           internal_date=message["date"].datetime)
        before = {m.uid: m.flags for m in server.messages("alice")}
        with imaplib.IMAP4(server.host, server.imap_port, timeout=10) as client:
            client.starttls(test_ssl_context())
            client.login("alice", "pw")
            client.select("INBOX")  # read-write, as in the example
            assert example.search(client, *example.build_criteria(unseen=True)) == [2, 3, 4, 5, 6]
            fetched = dict(example.fetch_messages(client, [2, 3, 4, 5, 6]))
            assert {m.uid: m.flags for m in server.messages("alice")} == before
            # The check can fail: a plain BODY[] fetch does set \Seen on this server.
            client.fetch(2, "(BODY[])", uid=True)
            assert "\\Seen" in server.messages("alice")[1].flags

            bob = example.build_criteria(sender="bob@example.org", since=date(2024, 3, 6))
            assert bob == ("FROM ? SINCE ?", ["bob@example.org", "6-Mar-2024"])
            assert example.search(client, *bob) == [2]
            assert example.search(client, *example.build_criteria(subject="grüße")) == [3]
            # params= quotes the value: it cannot turn into extra search keys.
            assert example.search(client, *example.build_criteria(subject='x" OR ALL')) == []
            assert example.build_criteria() == ("ALL", [])
    assert sorted(fetched) == [2, 3, 4, 5, 6]
    report = fetched[2]
    assert report["subject"] == SUBJECTS[1]
    assert example.attachment_names(report) == ["report.csv"]
    assert example.text_of(report) == "The figures are attached.\n\nBob\n"
    assert example.attachment_names(fetched[3]) == []
    assert example.describe(6, fetched[6], 8)[:4] == [
        f"[UID 6] {SUBJECTS[5]}",
        "  From: Dave Pixel <dave@example.com>",
        "  Date: 2024-03-11 03:30 +0000",
        "  Attachments: terrace.png",
    ]


def test_imap_date_ignores_the_locale(load_example) -> None:
    example = load_example("imap_search_fetch_email")
    assert example.imap_date(date(2024, 12, 1)) == "1-Dec-2024"


class FakeClient:
    def __init__(self, data: list[object]) -> None:
        self.data = data

    def fetch(self, *args: object, **kwargs: object) -> tuple[str, list[object]]:
        return "OK", self.data


def test_fetch_finds_the_uid_before_or_after_the_body(load_example) -> None:
    example = load_example("imap_search_fetch_email")
    raw = b"Subject: hi\r\n\r\nbody\r\n"
    data = [(b"1 (UID 7 BODY[] {%d}" % len(raw), raw), b")",
            (b"2 (BODY[] {%d}" % len(raw), raw), b" UID 9)",
            b"3 (FLAGS (\\Seen))"]  # an unsolicited update in between
    found = list(example.fetch_messages(FakeClient(data), [7, 9]))
    assert [(uid, str(message["subject"])) for uid, message in found] == [(7, "hi"), (9, "hi")]
