"""Render mailwire's deviation registry (``mailwire.deviations.DEVIATIONS``) into the docs.

The compatibility page and the test suite read the same registry, so they cannot disagree:

``.. mailwire-deviations::``
    One section per deviation, in registry order: its id (also the anchor
    ``deviation-<id>``), the module it concerns, what mailwire does, why, and the CPython
    tests expected to fail because of it. ``:module: poplib`` (or ``imaplib``) keeps the
    deviations of that module, those marked ``both`` included.

``:deviation:`id```
    A link to one deviation's section. An id the registry does not have is a build warning,
    so a page can never point at a deviation that was renamed or removed.

The registry is re-read on every build, and a page using the directive is rebuilt whenever
``deviations.py`` changes.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective, SphinxRole

logger = logging.getLogger(__name__)

MODULES = ("poplib", "imaplib", "both")


def _registry() -> tuple[Any, ...]:
    module = importlib.import_module("mailwire.deviations")
    return tuple(module.DEVIATIONS)


def _registry_file() -> str:
    return str(importlib.import_module("mailwire.deviations").__file__)


def label(deviation_id: str) -> str:
    """The anchor (and ``:ref:`` label) of a deviation's section."""
    return "deviation-" + deviation_id


def _paragraph(heading: str, text: str) -> nodes.paragraph:
    para = nodes.paragraph()
    para += nodes.strong(text=heading)
    para += nodes.Text(" " + text)
    return para


class DeviationsDirective(SphinxDirective):
    has_content = False
    option_spec: ClassVar[dict[str, Callable[[str], Any]]] = {
        "module": lambda arg: directives.choice(arg, ("poplib", "imaplib"))
    }

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(_registry_file())
        wanted = self.options.get("module")
        result: list[nodes.Node] = []
        seen: set[str] = set()
        for deviation in _registry():
            problems = self._check(deviation, seen)
            for problem in problems:
                logger.warning("deviation registry: %s", problem, location=self.get_location())
            if wanted and deviation.module not in (wanted, "both"):
                continue
            result.append(self._section(deviation))
        if not result:
            logger.warning(
                "deviation registry: no deviation to show here", location=self.get_location()
            )
        return result

    @staticmethod
    def _check(deviation: Any, seen: set[str]) -> list[str]:
        problems = []
        if deviation.id in seen:
            problems.append(f"duplicate id {deviation.id!r}")
        seen.add(deviation.id)
        if deviation.module not in MODULES:
            problems.append(f"{deviation.id}: module {deviation.module!r} not in {MODULES}")
        if not deviation.summary.strip() or not deviation.reason.strip():
            problems.append(f"{deviation.id}: summary and reason must not be empty")
        for test in deviation.cpython_tests:
            if not test.startswith("test."):
                problems.append(f"{deviation.id}: {test!r} is not a CPython unittest id")
        return problems

    def _section(self, deviation: Any) -> nodes.section:
        section = nodes.section()
        section["names"].append(label(deviation.id))
        section += nodes.title(text=deviation.id)
        self.state.document.note_explicit_target(section, section)

        module = {"both": "poplib and imaplib"}.get(deviation.module, deviation.module)
        section += _paragraph("Module:", module + ".")
        section += _paragraph("What mailwire does:", deviation.summary)
        section += _paragraph("Why:", deviation.reason)
        if deviation.cpython_tests:
            section += nodes.paragraph(
                text="CPython tests expected to fail with mailwire substituted:"
            )
            items = nodes.bullet_list()
            for test in deviation.cpython_tests:
                item = nodes.list_item()
                item += nodes.paragraph("", "", nodes.literal(text=test))
                items += item
            section += items
        else:
            section += nodes.paragraph(text="No CPython test notices this difference.")
        return section


class DeviationRole(SphinxRole):
    """``:deviation:`imap-file-assignable``` links to that deviation's section."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        deviation_id = self.text.strip()
        self.env.note_dependency(_registry_file())
        if deviation_id not in {d.id for d in _registry()}:
            logger.warning(
                "unknown deviation id %r (not in mailwire.deviations.DEVIATIONS)",
                deviation_id,
                location=self.get_location(),
            )
            return [nodes.literal(text=deviation_id)], []
        ref = addnodes.pending_xref(
            "",
            nodes.literal(text=deviation_id),
            refdomain="std",
            reftype="ref",
            reftarget=label(deviation_id),
            refexplicit=True,
            refwarn=True,
        )
        return [ref], []


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("mailwire-deviations", DeviationsDirective)
    app.add_role("deviation", DeviationRole())
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
