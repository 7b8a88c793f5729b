"""Sphinx configuration for the mailwire documentation.

Build (the tox env ``docs`` runs exactly this)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# The package is documented from this checkout's src/, never from an installed copy, and the
# local extensions live in docs/_ext.
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(DOCS / "_ext"))

import mailwire  # noqa: E402

project = "mailwire"
author = "mailwire developers"
copyright = "2026, mailwire developers"
release = mailwire.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "deviations",
    "apicheck",
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext"}
# docs/notes/ and docs/decisions/ hold working notes and design records for developers, not
# pages of the manual.
exclude_patterns = ["_build", "notes", "decisions", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# Every ``py:`` object written in the reference pages is in a module; the default role makes
# `name` a cross-reference in the current module.
default_role = "py:obj"
add_module_names = False
python_display_short_literal_types = True
# Quotes stay straight: error messages and code in running text must be copyable as they are.
smartquotes = False

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

html_theme = "alabaster"
html_title = f"mailwire {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Drop-in, faster and hardened poplib and imaplib",
    "fixed_sidebar": True,
    "show_relbars": True,
}

# apicheck: the names each reference page must cover (see docs/_ext/apicheck.py).
apicheck_modules = {
    "mailwire.poplib": {
        "classes": ["POP3", "POP3_SSL"],
        "extra": [
            "error_proto",
            "POP3_PORT",
            "POP3_SSL_PORT",
            "HAVE_SSL",
            "CR",
            "LF",
            "CRLF",
            "_MAXLINE",
            "_MAXRESPONSE",
        ],
    },
    "mailwire.imaplib": {
        "classes": ["IMAP4", "IMAP4_SSL", "IMAP4_stream", "Idler"],
        "extra": [
            "Idler",
            "Commands",
            "Debug",
            "AllowedVersions",
            "IMAP4_PORT",
            "IMAP4_SSL_PORT",
            "HAVE_SSL",
            "CRLF",
            "_MAXLINE",
            "_MAXLITERAL",
            "Continuation",
            "Flags",
            "InternalDate",
            "Literal",
            "MapCRLF",
            "Mon2num",
            "Months",
            "Response_code",
            "Untagged_response",
            "Untagged_status",
        ],
    },
}


def _read_everything(app, env, added, changed, removed):  # type: ignore[no-untyped-def]
    # An incremental build re-reads only changed pages, so a warning in an unchanged page
    # would pass unnoticed the second time. The manual is small: always read every page.
    return sorted(env.found_docs)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("env-get-outdated", _read_everything)
