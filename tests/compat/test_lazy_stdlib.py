"""mailwire loads neither the stdlib's modules nor ssl until something needs them, and its
exceptions still become subclasses of the stdlib's, whenever the stdlib's module is imported.

Each case runs in a fresh interpreter: what a process has already imported is the point.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest


def run_fresh(*parts: str) -> dict[str, object]:
    """Run the code ``parts`` in a new interpreter; they leave findings in the dict ``out``."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    program = "import json, sys\nout = {}\n" + code + "\nprint(json.dumps(out))"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_mailwire_loads_no_stdlib_mail_module_and_no_ssl() -> None:
    out = run_fresh(
        """
        before = set(sys.modules)  # a virtualenv's start-up may have loaded typing already
        from mailwire import imaplib, poplib
        watched = {"imaplib", "poplib", "ssl", "typing"}
        out["loaded"] = sorted(watched & (set(sys.modules) - before))
        out["have_ssl"] = [imaplib.HAVE_SSL, poplib.HAVE_SSL]
        out["ssl_classes"] = [hasattr(imaplib, "IMAP4_SSL"), hasattr(poplib, "POP3_SSL")]
        """
    )
    assert out["loaded"] == []
    assert out["have_ssl"] == [True, True]  # this interpreter has ssl: found without loading it
    assert out["ssl_classes"] == [True, True]


def test_ssl_is_loaded_when_a_tls_context_is_made() -> None:
    out = run_fresh(
        """
        from mailwire import transport
        context = transport.default_context()
        out["loaded"] = "ssl" in sys.modules
        out["type"] = type(context).__module__ + "." + type(context).__name__
        """
    )
    assert out == {"loaded": True, "type": "ssl.SSLContext"}


LINK_CHECKS = """
import poplib as std_poplib, imaplib as std_imaplib
out["pop"] = issubclass(poplib.error_proto, std_poplib.error_proto)
out["imap"] = [
    issubclass(imaplib.IMAP4.error, std_imaplib.IMAP4.error),
    issubclass(imaplib.IMAP4.abort, std_imaplib.IMAP4.abort),
    issubclass(imaplib.IMAP4.readonly, std_imaplib.IMAP4.readonly),
    issubclass(imaplib.IMAP4.readonly, imaplib.IMAP4.abort),
    issubclass(imaplib.IMAP4.abort, imaplib.IMAP4.error),
]
out["stdlib_is_real"] = [
    not hasattr(std_poplib, "__mailwire__"), not hasattr(std_imaplib, "__mailwire__")
]
out["watchers_left"] = [type(f).__name__ for f in sys.meta_path if type(f).__name__ == "_Watcher"]
out["loaders"] = [
    type(m.__loader__).__name__ + "/" + type(m.__spec__.loader).__name__
    for m in (std_poplib, std_imaplib)
]
"""

LINKED = {
    "pop": True,
    "imap": [True] * 5,
    "stdlib_is_real": [True, True],
    "watchers_left": [],
    "loaders": ["SourceFileLoader/SourceFileLoader"] * 2,
}


def test_stdlib_imported_after_mailwire_links_the_exceptions() -> None:
    out = run_fresh(
        """
        from mailwire import imaplib, poplib
        early = imaplib.IMAP4.readonly("raised before the stdlib was imported")
        """,
        LINK_CHECKS,
        """
        try:
            raise early
        except std_imaplib.IMAP4.abort as exc:
            out["caught"] = str(exc)
        """
    )
    assert out.pop("caught") == "raised before the stdlib was imported"
    assert out == LINKED


def test_stdlib_imported_before_mailwire_links_at_once() -> None:
    out = run_fresh(
        """
        import imaplib as first_imaplib, poplib as first_poplib
        from mailwire import imaplib, poplib
        """,
        LINK_CHECKS,
    )
    assert out == LINKED


def test_substituted_name_waits_for_the_real_stdlib_module() -> None:
    out = run_fresh(
        """
        from mailwire import imaplib, poplib
        sys.modules["imaplib"] = imaplib
        sys.modules["poplib"] = poplib
        import imaplib as same
        out["same"] = same is imaplib
        out["still_watching"] = any(type(f).__name__ == "_Watcher" for f in sys.meta_path)
        del sys.modules["imaplib"], sys.modules["poplib"]
        """,
        LINK_CHECKS,
    )
    assert out.pop("same") is True
    assert out.pop("still_watching") is True
    assert out == LINKED


def test_a_subclass_made_before_the_link_follows_it() -> None:
    out = run_fresh(
        """
        from mailwire import poplib
        class MyError(poplib.error_proto):
            pass
        import poplib as std_poplib
        out["linked"] = issubclass(MyError, std_poplib.error_proto)
        """
    )
    assert out == {"linked": True}


def test_an_incompatible_stdlib_class_warns_and_its_import_still_works() -> None:
    from types import ModuleType

    from mailwire._compat import StdlibBase, _link_or_warn

    class Mine(StdlibBase):
        pass

    class Slotted(Exception):
        __slots__ = ("extra",)  # a different instance layout: __bases__ cannot take it

    fake = ModuleType("fake_stdlib")
    fake.Slotted = Slotted  # type: ignore[attr-defined]
    with pytest.warns(RuntimeWarning, match="fake_stdlib"):
        _link_or_warn(fake, [(Mine, "Slotted")])
    assert Mine.__bases__ == (StdlibBase,)
