"""The registry of deliberate differences between mailwire and the standard library.

mailwire promises to behave like the newest stdlib ``poplib``/``imaplib``. Where it does not,
the difference fixes a bug or closes a hole, and it is listed here with its reason. The docs'
compatibility page and the test suite both read this registry: the suite that runs CPython's own
``test_poplib``/``test_imaplib`` against mailwire expects exactly the CPython tests named in
``cpython_tests`` to fail, and no others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEVIATIONS", "Deviation", "expected_cpython_failures"]


@dataclass(frozen=True)
class Deviation:
    """One deliberate difference from the stdlib."""

    #: Short stable identifier, used in docs anchors and test names.
    id: str
    #: ``"poplib"``, ``"imaplib"`` or ``"both"``.
    module: str
    #: What mailwire does differently, in one sentence.
    summary: str
    #: Why: the bug or hole that the stdlib behaviour amounts to.
    reason: str
    #: CPython unittest ids (``"test.test_poplib.TestPOP3Class.test_x"``) that fail with mailwire
    #: substituted because of this deviation. Empty when no CPython test notices.
    cpython_tests: tuple[str, ...] = field(default=())


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        id="pop-control-chars",
        module="poplib",
        summary=(
            "Command arguments containing CR, LF or NUL raise ValueError before anything is sent."
        ),
        reason=(
            "Older stdlib versions send them, so a user name or password taken from untrusted "
            "input can inject a second POP3 command. CPython 2026 releases reject them too "
            "(gh-143923); mailwire does so on every Python version."
        ),
    ),
    Deviation(
        id="pop-eof-mid-line",
        module="poplib",
        summary=(
            "A connection closed in the middle of a line raises error_proto('-ERR EOF') instead "
            "of returning the partial line with its last byte cut off."
        ),
        reason=(
            "The stdlib strips the last byte of every line on the assumption that it is LF; a "
            "truncated line therefore comes back silently shortened, which is a wrong answer."
        ),
    ),
    Deviation(
        id="pop-line-deadline",
        module="both",
        summary=(
            "The timeout bounds the wait for a whole line (and each block of a bulk read), not "
            "each individual recv() call."
        ),
        reason=(
            "With a per-recv timeout a server that trickles one byte just inside the timeout "
            "can hold a client for ever. The exception raised is the same socket.timeout."
        ),
    ),
    Deviation(
        id="pop-desync-after-timeout",
        module="poplib",
        summary=(
            "After a read times out in the middle of a response, further commands raise "
            "error_proto instead of reading the rest of the old response as the new answer."
        ),
        reason=(
            "The stdlib would hand the tail of the interrupted response to the next command, a "
            "silent wrong answer. Closing and reconnecting is the only safe recovery."
        ),
    ),
    Deviation(
        id="pop-stls-buffered-plaintext",
        module="poplib",
        summary=(
            "stls() aborts the connection if the server sent any bytes after its +OK and "
            "before the TLS handshake."
        ),
        reason=(
            "Those bytes arrived unprotected and would otherwise be read as if they came over "
            "TLS: the STARTTLS response-injection attack (CVE-2011-0411 class)."
        ),
    ),
)


def expected_cpython_failures(module: str) -> frozenset[str]:
    """The CPython unittest ids expected to fail for ``module`` because of a deviation."""
    return frozenset(
        test
        for deviation in DEVIATIONS
        if deviation.module in (module, "both")
        for test in deviation.cpython_tests
    )
