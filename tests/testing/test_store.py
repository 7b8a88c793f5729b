"""The embedded server's mailbox store: users, folders, UIDs, flags, Maildir persistence."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest

from mailwire.testing.store import (
    INBOX,
    FolderExistsError,
    NoSuchFolderError,
    NoSuchUserError,
    Store,
    to_crlf,
)


@pytest.fixture
def store() -> Store:
    return Store({"alice": "secret"})


def test_to_crlf() -> None:
    assert to_crlf(b"") == b""
    assert to_crlf(b"a\nb\r\nc\rd\n") == b"a\r\nb\r\nc\rd\r\n"
    assert to_crlf(b"no newline") == b"no newline"


def test_users_and_passwords(store: Store) -> None:
    assert store.users() == ["alice"]
    assert store.check_password("alice", "secret")
    assert not store.check_password("alice", "Secret")
    assert not store.check_password("nobody", "")
    assert not store.check_password("alice", "\udcff")
    store.add_user("alice", "changed")
    assert store.password("alice") == "changed"
    assert store.folders("alice") == [INBOX]
    with pytest.raises(NoSuchUserError):
        store.password("nobody")
    for bad in ("", "a b", ".hidden", "x\r\n"):
        with pytest.raises(ValueError):
            store.add_user(bad, "pw")
    with pytest.raises(ValueError):
        store.add_user("bob", "pw\r\nUSER x")


def test_deliver_forms_and_normalisation(store: Store) -> None:
    message = EmailMessage()
    message["Subject"] = "Grüße"
    message.set_content("hello\n")
    when = datetime(2024, 1, 2, 3, 4, 5)
    uids = [
        store.deliver("alice", b"Subject: bytes\n\nbody\n"),
        store.deliver("alice", "Subject: str é\n\nbody\n", internal_date=when),
        store.deliver("alice", message, flags=["\\seen", "$Label"]),
        store.deliver("alice", bytearray(b"x\r\n")),
    ]
    assert uids == [1, 2, 3, 4]
    messages = store.messages("alice")
    assert messages[0].data == b"Subject: bytes\r\n\r\nbody\r\n"
    assert messages[0].size == len(messages[0].data)
    assert messages[1].data == "Subject: str é\r\n\r\nbody\r\n".encode()
    assert messages[1].internal_date == when.replace(tzinfo=timezone.utc)
    assert b"\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" in b"\r\n" + messages[2].data
    assert b"\n" not in messages[2].data.replace(b"\r\n", b"")
    assert messages[2].flags == {"\\Seen", "$Label"}
    with pytest.raises(TypeError):
        store.deliver("alice", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        store.deliver("alice", b"x", flags=["\\Bogus"])
    with pytest.raises(ValueError):
        store.deliver("alice", b"x", flags=["two words"])
    with pytest.raises(NoSuchUserError):
        store.deliver("nobody", b"x")
    with pytest.raises(NoSuchFolderError):
        store.deliver("alice", b"x", folder="Nope")


def test_flags_and_expunge(store: Store) -> None:
    for n in range(4):
        store.deliver("alice", f"Subject: {n}\n\n".encode())
    assert store.set_flags("alice", INBOX, [1, 2, 99], ["\\Deleted"], mode="add") == {
        1: {"\\Deleted"}, 2: {"\\Deleted"},
    }
    store.set_flags("alice", INBOX, [2], ["\\Deleted"], mode="remove")
    store.set_flags("alice", INBOX, [3], ["\\Flagged", "\\Deleted"])
    assert store.expunge("alice", INBOX, uids=[1, 2]) == [1]
    assert [m.uid for m in store.messages("alice")] == [2, 3, 4]
    assert store.expunge("alice") == [3]
    assert store.remove("alice", INBOX, [4, 4, 17]) == [4]
    snapshot = store.snapshot("alice")
    assert [m.uid for m in snapshot.messages] == [2]
    assert snapshot.uidnext == 5  # UIDs are never reused
    with pytest.raises(ValueError):
        store.set_flags("alice", INBOX, [2], [], mode="toggle")  # type: ignore[arg-type]


def test_folders(store: Store) -> None:
    store.create_folder("alice", "Archive")
    store.create_folder("alice", "Archive/2024")
    store.create_folder("alice", "Drafts")
    with pytest.raises(FolderExistsError):
        store.create_folder("alice", "Archive")
    with pytest.raises(FolderExistsError):
        store.create_folder("alice", "inbox")
    for bad in ("", "a//b", "/a", "a/", "x\ny"):
        with pytest.raises(ValueError):
            store.create_folder("alice", bad)
    assert store.folders("alice") == [INBOX, "Archive", "Archive/2024", "Drafts"]
    uidvalidities = {store.snapshot("alice", f).uidvalidity for f in store.folders("alice")}
    assert len(uidvalidities) == 4
    store.deliver("alice", b"Subject: old\n\n", folder="Archive/2024")
    store.rename_folder("alice", "Archive", "Old")
    assert store.folders("alice") == [INBOX, "Drafts", "Old", "Old/2024"]
    assert len(store.messages("alice", "Old/2024")) == 1
    with pytest.raises(FolderExistsError):
        store.rename_folder("alice", "Drafts", "Old")
    store.delete_folder("alice", "Old")
    assert store.folders("alice") == [INBOX, "Drafts", "Old/2024"]
    with pytest.raises(ValueError):
        store.delete_folder("alice", "INBOX")
    with pytest.raises(NoSuchFolderError):
        store.delete_folder("alice", "Old")
    assert store.snapshot("alice", "inbox").name == INBOX
    store.subscribe("alice", "Drafts", False)
    assert not store.snapshot("alice", "Drafts").subscribed


def test_rename_inbox_moves_its_messages(store: Store) -> None:
    store.deliver("alice", b"Subject: a\n\n", flags=["\\Seen"])
    store.rename_folder("alice", "INBOX", "Saved")
    assert store.messages("alice") == ()
    saved = store.messages("alice", "Saved")
    assert [(m.uid, m.flags) for m in saved] == [(1, frozenset({"\\Seen"}))]


def test_copy_and_move(store: Store) -> None:
    store.create_folder("alice", "Work")
    for n in range(3):
        store.deliver("alice", f"Subject: {n}\n\n".encode(), flags=["$n" + str(n)])
    assert store.copy("alice", INBOX, [1, 3], "Work") == {1: 1, 3: 2}
    assert store.move("alice", INBOX, [2], "Work") == {2: 3}
    assert [m.uid for m in store.messages("alice")] == [1, 3]
    work = store.messages("alice", "Work")
    assert [m.data for m in work] == [b"Subject: 0\r\n\r\n", b"Subject: 2\r\n\r\n",
                                      b"Subject: 1\r\n\r\n"]
    assert [m.flags for m in work] == [{"$n0"}, {"$n2"}, {"$n1"}]


def test_version_and_wait_for_change(store: Store) -> None:
    version = store.version
    assert store.wait_for_change(version, timeout=0.01) == version
    timer = threading.Timer(0.05, store.deliver, ("alice", b"x\n"))
    timer.start()
    assert store.wait_for_change(version, timeout=5) > version
    timer.join()


def test_concurrent_deliveries_get_distinct_uids(store: Store) -> None:
    def deliver_many() -> None:
        for _ in range(200):
            store.deliver("alice", b"x\n")

    threads = [threading.Thread(target=deliver_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [m.uid for m in store.messages("alice")] == list(range(1, 801))


def maildir_files(folder: Path) -> list[Path]:
    return sorted([*folder.joinpath("new").iterdir(), *folder.joinpath("cur").iterdir()])


def test_maildir_round_trip(tmp_path: Path) -> None:
    when = datetime(2023, 5, 6, 7, 8, 9, tzinfo=timezone.utc)
    first = Store({"alice": "secret"}, maildir=tmp_path)
    first.create_folder("alice", "Work/Q1.2024")
    first.deliver("alice", b"Subject: one\n\n.\n")
    first.deliver("alice", b"Subject: two\n\n", flags=["\\Seen", "\\Flagged", "$Todo"],
                  internal_date=when)
    first.deliver("alice", b"Subject: gone\n\n")
    first.deliver("alice", b"Subject: work\n\n", folder="Work/Q1.2024")
    first.remove("alice", INBOX, [3])
    first.set_flags("alice", INBOX, [1], ["\\Answered"], mode="add")
    inbox_snapshot = first.snapshot("alice")
    work_snapshot = first.snapshot("alice", "Work/Q1.2024")

    user_dir = tmp_path / "alice"
    files = maildir_files(user_dir)
    assert [f.parent.name for f in files] == ["cur", "cur"]
    assert sorted(f.name.rsplit(":2,", 1)[1] for f in files) == ["FS", "R"]
    assert (user_dir / ".Work.Q1%2E2024" / "maildirfolder").exists()
    assert b"\r" not in b"".join(f.read_bytes() for f in files)

    second = Store({"alice": "other"}, maildir=tmp_path)
    assert second.folders("alice") == [INBOX, "Work/Q1.2024"]
    assert second.snapshot("alice") == inbox_snapshot
    assert second.snapshot("alice", "Work/Q1.2024") == work_snapshot
    assert second.messages("alice")[1].internal_date == when


def test_maildir_picks_up_foreign_files(tmp_path: Path) -> None:
    store = Store({"alice": "secret"}, maildir=tmp_path)
    store.deliver("alice", b"Subject: ours\n\n")
    inbox = tmp_path / "alice"
    (inbox / "new" / "1700000000.foreign.host").write_bytes(b"Subject: theirs\n\nhi\n")
    (inbox / "cur" / "1700000001.foreign2.host:2,ST").write_bytes(b"Subject: seen\n\n")
    (inbox / "cur" / ".hidden").write_bytes(b"ignored")
    again = Store({"alice": "secret"}, maildir=tmp_path)
    messages = again.messages("alice")
    assert [m.uid for m in messages] == [1, 2, 3]
    assert messages[0].data == b"Subject: ours\r\n\r\n"
    assert {m.data for m in messages[1:]} == {b"Subject: theirs\r\n\r\nhi\r\n",
                                              b"Subject: seen\r\n\r\n"}
    assert {m.flags for m in messages[1:]} == {frozenset(), frozenset({"\\Seen", "\\Deleted"})}
    assert again.snapshot("alice").uidvalidity == store.snapshot("alice").uidvalidity
    # the new UIDs are remembered
    assert Store({"alice": "x"}, maildir=tmp_path).snapshot("alice") == again.snapshot("alice")


def test_maildir_folder_operations(tmp_path: Path) -> None:
    store = Store({"alice": "secret"}, maildir=tmp_path)
    store.create_folder("alice", "A")
    store.create_folder("alice", "A/B")
    store.deliver("alice", b"Subject: in b\n\n", folder="A/B")
    store.rename_folder("alice", "A", "Z")
    store.set_flags("alice", "Z/B", [1], ["\\Seen"])
    assert not (tmp_path / "alice" / ".A.B").exists()
    assert len(maildir_files(tmp_path / "alice" / ".Z.B")) == 1
    store.copy("alice", "Z/B", [1], INBOX)
    store.delete_folder("alice", "Z/B")
    assert not (tmp_path / "alice" / ".Z.B").exists()
    again = Store({"alice": "secret"}, maildir=tmp_path)
    assert again.folders("alice") == [INBOX, "Z"]
    assert [m.flags for m in again.messages("alice")] == [{"\\Seen"}]


def test_internal_date_default_is_now(store: Store) -> None:
    store.deliver("alice", b"x")
    stamp = store.messages("alice")[0].internal_date
    assert abs(datetime.now(timezone.utc) - stamp) < timedelta(seconds=5)
