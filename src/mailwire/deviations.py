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
        id="have-ssl-unimported",
        module="both",
        summary=(
            "HAVE_SSL says whether the import system can find ssl and _ssl, without importing "
            "them; on a Python whose _ssl extension exists but cannot be loaded it is True and "
            "the TLS classes raise ImportError when used, where the stdlib's is False and "
            "leaves them out."
        ),
        reason=(
            "Importing ssl costs about 6 MiB, more than all of mailwire, and plaintext and "
            "subprocess connections never need it; importing it eagerly is what kept "
            "mailwire's memory above the stdlib's. Only a broken installation can tell the "
            "difference."
        ),
    ),
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
        id="line-deadline",
        module="both",
        summary=(
            "The timeout bounds the wait for a whole line (and for each 64 KiB of an IMAP "
            "literal), not each individual recv() call."
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
            "After a read times out, or a line or response exceeds its limit, further commands "
            "raise error_proto before anything is sent."
        ),
        reason=(
            "After a timeout the stdlib's socket file refuses every later read ('cannot read "
            "from timed out object') but only after sending the next command, so a DELE or "
            "QUIT still reaches the server; after 'line too long' it reads the rest of the old "
            "line as the next answer. Refusing before sending is the only safe state."
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
            "Such bytes are injected plaintext (the STARTTLS response-injection attack). The "
            "stdlib silently drops those that arrived with the +OK and fails the handshake on "
            "the rest; mailwire makes the attack visible instead of losing data quietly."
        ),
    ),
    Deviation(
        id="pop-capa-robust",
        module="poplib",
        summary=(
            "capa() skips blank lines and answers a non-ASCII CAPA line with "
            "error_proto('-ERR CAPA not supported by server')."
        ),
        reason="The stdlib raises IndexError or UnicodeDecodeError on such server input.",
    ),
    Deviation(
        id="pop-stat-errors",
        module="poplib",
        summary=(
            "A malformed STAT reply raises error_proto with the newest stdlib's messages on "
            "every Python version."
        ),
        reason="CPython 3.9-3.13.0 let IndexError or ValueError escape.",
    ),
    Deviation(
        id="pop-close-always",
        module="poplib",
        summary=(
            "close() works after a failed TLS handshake, and an -ERR greeting closes the "
            "socket before raising."
        ),
        reason=(
            "The stdlib's close() raises OSError(EBADF) on a socket the ssl module already "
            "closed, and it leaks the socket when the greeting is refused."
        ),
    ),
)


_UTF8_APPEND_TESTS = tuple(
    "test.test_imaplib.%s.test_enable_UTF8_True_append" % case
    for case in (
        "NewIMAPTests",
        "NewIMAPSSLTests",
        "ThreadedNetworkedTests",
        "ThreadedNetworkedTestsSSL",
    )
)

DEVIATIONS += (
    Deviation(
        id="imap-utf8-append",
        module="imaplib",
        summary=(
            "In UTF-8 mode APPEND sends the message as RFC 6855 requires, "
            "'UTF8 (~{n}' + message + ')', as the newest stdlib does; CPython 3.9-3.13 send a "
            "plain literal whose content is 'UTF8 (' + message + ')'."
        ),
        reason=(
            "The older form makes the server store the wrapper as part of the message. The "
            "installed 3.9-3.13 test suites assert the old bytes, so those tests are expected "
            "to fail."
        ),
        cpython_tests=_UTF8_APPEND_TESTS,
    ),
    Deviation(
        id="imap-file-assignable",
        module="imaplib",
        summary=(
            "IMAP4.file is a plain attribute: readable and assignable without warnings "
            "(CPython 3.14 made it a read-only property, the newest stdlib a writable one that "
            "warns on every access)."
        ),
        reason=(
            "imapclient and others replace and read IMAP4.file; 3.14's property broke them, and "
            "a DeprecationWarning on each access breaks suites run with -W error."
        ),
    ),
    Deviation(
        id="imap-literal-limit",
        module="imaplib",
        summary=(
            "A literal larger than _MAXLITERAL (2 GiB by default, read at call time) raises "
            "IMAP4.abort; the memory of any literal grows with the bytes received, never with "
            "the size announced: its buffer is at most 16 times what has arrived, and the "
            "resident part at most 8 MiB more than that."
        ),
        reason=(
            "Older stdlib versions allocate the announced size at once, so one line from a "
            "hostile server can exhaust memory; a bound makes the failure clear and early. "
            "Each time the buffer fills, a larger one takes over with one copy of what it "
            "holds; the copies add up to about a fifteenth of the literal, and on Linux the "
            "pages are faulted in ahead of the receives, so a 100 MiB literal costs no more "
            "CPU than with a stdlib that allocates the announced size up front."
        ),
    ),
    Deviation(
        id="imap-broken-after-timeout",
        module="imaplib",
        summary=(
            "After a read times out in the middle of a response, or a line exceeds _MAXLINE, "
            "further commands raise IMAP4.abort instead of parsing the rest of the old "
            "response as the answer to the new command. The exception raised at the time is "
            "unchanged (socket.timeout, or IMAP4.error 'got more than N bytes')."
        ),
        reason=(
            "The stdlib continues on a desynchronised stream: a silent wrong answer. (This "
            "guard, like the literal limit, lives in mailwire's own reading path; a subclass "
            "that overrides read/readline/_get_line reads as the stdlib does.)"
        ),
    ),
    Deviation(
        id="imap-blank-line-limit",
        module="imaplib",
        summary=(
            "Stray blank lines between responses, and after a literal inside an open "
            "parenthesis, are skipped up to 16 in a row; the 17th raises IMAP4.abort "
            "('unexpected response: b\'\'') where the newest stdlib skips any number."
        ),
        reason=(
            "Each blank line arrives in time and takes no memory, so neither the timeout nor a "
            "limit would ever stop a server that sends them for ever: the client would loop "
            "indefinitely. No real server sends more than one or two."
        ),
    ),
    Deviation(
        id="imap-auth-cancel",
        module="imaplib",
        summary=(
            "When no answer can be made to an AUTHENTICATE challenge (it is not base64, or the "
            "authobject raises), mailwire sends '*' to cancel and reads the server's reply "
            "before the exception propagates. A malformed challenge raises IMAP4.error, which "
            "is also the binascii.Error the stdlib raises."
        ),
        reason=(
            "The stdlib leaves the server waiting for the answer, so the next command is taken "
            "as the answer and its reply is mismatched: the connection is out of step. A "
            "hostile challenge should raise the module's own error; being a binascii.Error "
            "too keeps existing except clauses working."
        ),
    ),
    Deviation(
        id="imap-shutdown-always",
        module="imaplib",
        summary=(
            "shutdown() completes on a socket that is already closed, such as after a failed "
            "STARTTLS handshake, where the stdlib raises OSError(EBADF)."
        ),
        reason=(
            "Callers shut down in cleanup handlers (imapclient does after a failed STARTTLS); "
            "the stdlib's EBADF then replaces the certificate error the caller needed to see."
        ),
    ),
    Deviation(
        id="imap-starttls-buffered-plaintext",
        module="imaplib",
        summary=(
            "starttls() raises IMAP4.abort and closes the connection if the server sent any "
            "bytes after its OK and before the TLS handshake."
        ),
        reason=(
            "Those bytes were not protected by TLS and would otherwise be read as if they "
            "were: the STARTTLS response-injection attack."
        ),
    ),
    Deviation(
        id="imap-control-chars",
        module="imaplib",
        summary=(
            "NUL, CR or LF in a command argument raise ValueError('NUL, CR and LF not allowed "
            "in commands') before anything is sent, on every Python version (literal data is "
            "exempt)."
        ),
        reason=(
            "Older releases send them, letting untrusted input inject IMAP commands; CPython "
            "2026 releases reject them too (gh-143921)."
        ),
    ),
    Deviation(
        id="imap-internaldate-hostile",
        module="imaplib",
        summary=(
            "Internaldate2tuple returns None for an unknown month name or year 0, and for "
            "dates the platform's localtime() cannot represent; Int2AP raises ValueError for "
            "an object whose __abs__ is negative."
        ),
        reason=(
            "The stdlib raises KeyError or ValueError on such server input, or loops for ever "
            "in Int2AP: a crash or hang where the documented result is None."
        ),
    ),
    Deviation(
        id="imap-idle-nesting",
        module="imaplib",
        summary="Entering a second idle() on the same connection raises IMAP4.error.",
        reason="CPython fails an assert there (nothing at all under python -O).",
    ),
    Deviation(
        id="imap-time2internaldate-year",
        module="imaplib",
        summary="Time2Internaldate always writes four-digit years, as CPython 3.14 does.",
        reason="3.9-3.13 write year 999 as '999' on Linux, which is not a valid IMAP date.",
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
