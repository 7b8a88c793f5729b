"""The TLS verification example: verified connections work, the wrong CA or name is refused."""

from __future__ import annotations

import os
import ssl

import pytest

from mailwire.testing import MailServer, test_ssl_context

SERVICES = ("IMAP STARTTLS", "POP3 STLS", "IMAPS", "POP3S")
HOSTNAME_MISMATCH = 62  # X509_V_ERR_HOSTNAME_MISMATCH
UNKNOWN_ISSUER = 20  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY


def test_runs_against_the_embedded_server(run_example) -> None:
    result = run_example("starttls_verifying")
    assert result.returncode == 0, result.stdout + result.stderr
    sections = result.stdout.split("\n\n")
    verified, wrong_ca, wrong_name, no_context, env = sections[:5]
    for service in SERVICES:
        assert f"  {service:<14} TLSv1" in verified
    assert verified.count("verified: localhost [localhost, 127.0.0.1, ::1], issued by "
                          "mailwire TEST-ONLY CA") == 4
    assert wrong_ca.count("refused: ssl.SSLCertVerificationError: unable to get local issuer "
                          "certificate") == 4
    assert wrong_name.count("refused: ssl.SSLCertVerificationError: Hostname mismatch, "
                            "certificate is not valid for '127.1'.") == 4
    assert no_context.count("certificate NOT verified") == 6  # stdlib x2, mailwire x4
    assert "stdlib IMAPS" in no_context and "stdlib POP3S" in no_context
    assert "MAILWIRE_VERIFY_TLS=1" in env
    assert env.count("refused: ssl.SSLCertVerificationError") == 4
    assert result.stdout.rstrip().endswith("Every connection ended as expected.")


@pytest.fixture
def server():
    with MailServer(users={"alice": "pw"}, imap=True) as server:
        yield server


def ports(server: MailServer) -> dict[str, int]:
    return {"IMAP STARTTLS": server.imap_port, "POP3 STLS": server.pop3_port,
            "IMAPS": server.imaps_port, "POP3S": server.pop3s_port}


def test_the_wrong_ca_and_the_wrong_name_really_raise(load_example, server) -> None:
    example = load_example("starttls_verifying")
    for service, port in ports(server).items():
        good = example.attempt(service, server.host, port, test_ssl_context())
        assert isinstance(good, str) and "verified: localhost" in good, (service, good)

        wrong_ca = example.attempt(service, server.host, port, ssl.create_default_context())
        assert isinstance(wrong_ca, ssl.SSLCertVerificationError), (service, wrong_ca)
        assert wrong_ca.verify_code == UNKNOWN_ISSUER

        with pytest.raises(ssl.SSLCertVerificationError) as raised:
            example.open_tls(service, "127.1", port, test_ssl_context())
        assert raised.value.verify_code == HOSTNAME_MISMATCH


def test_mailwire_verify_tls_changes_the_default(load_example, server, monkeypatch) -> None:
    example = load_example("starttls_verifying")
    monkeypatch.delenv("MAILWIRE_VERIFY_TLS", raising=False)
    unverified = example.attempt("IMAPS", server.host, server.imaps_port, None)
    assert isinstance(unverified, str) and "NOT verified" in unverified
    monkeypatch.setenv("MAILWIRE_VERIFY_TLS", "1")
    refused = example.attempt("POP3 STLS", server.host, server.pop3_port, None)
    assert isinstance(refused, ssl.SSLCertVerificationError)
    # A context given explicitly is never changed by the variable.
    assert "verified: localhost" in example.attempt("IMAPS", server.host, server.imaps_port,
                                                    test_ssl_context())


def test_environment_restores_the_variable(load_example, monkeypatch) -> None:
    example = load_example("starttls_verifying")
    monkeypatch.setenv("MAILWIRE_VERIFY_TLS", "0")
    with example.environment("MAILWIRE_VERIFY_TLS", None):
        assert "MAILWIRE_VERIFY_TLS" not in os.environ
    assert os.environ["MAILWIRE_VERIFY_TLS"] == "0"
    monkeypatch.delenv("MAILWIRE_VERIFY_TLS")
    with example.environment("MAILWIRE_VERIFY_TLS", "1"):
        assert os.environ["MAILWIRE_VERIFY_TLS"] == "1"
    assert "MAILWIRE_VERIFY_TLS" not in os.environ
