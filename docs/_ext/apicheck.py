"""Check that the reference pages and the code name the same things.

For each module in the ``apicheck_modules`` setting (``{"mailwire.poplib": {"classes": [...],
"extra": [...]}}``), the build warns (an error under ``-W``):

- for every name that must be documented and has no ``py:`` description: the module's
  ``__all__``, the ``extra`` names, and every public member defined by each listed class;
- for every ``py:`` description under the module that names nothing in the code. An attribute
  passes if the class has it or the module's source assigns ``self.<name>``, since many of
  the stdlib-compatible attributes only exist on instances.

So a method added to ``IMAP4`` without documentation, or documentation left behind for a name
that was renamed, fails the docs build instead of going unnoticed.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging

logger = logging.getLogger(__name__)

_MISSING = object()


def _public_members(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_")}


def _resolve(module: Any, dotted: str) -> Any:
    obj = module
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # imaplib.__version__ warns on access
        for part in dotted.split("."):
            obj = getattr(obj, part, _MISSING)
            if obj is _MISSING:
                return _MISSING
    return obj


def _check(app: Sphinx, env: BuildEnvironment) -> None:
    objects = env.get_domain("py").objects
    for modname, spec in app.config.apicheck_modules.items():
        module = importlib.import_module(modname)
        try:
            source = inspect.getsource(module)
        except OSError:  # pragma: no cover - the package always ships its sources
            source = ""
        entry = objects.get(modname)
        where = entry.docname if entry is not None else None
        if entry is None:
            logger.warning("apicheck: module %s is not documented anywhere", modname)

        documented: dict[str, Any] = {}
        prefix = modname + "."
        for fullname, obj_entry in objects.items():
            if fullname.startswith(prefix):
                documented[fullname[len(prefix) :]] = obj_entry

        required = set(getattr(module, "__all__", ())) | set(spec.get("extra", ()))
        for class_name in spec.get("classes", ()):
            cls = getattr(module, class_name, None)
            if isinstance(cls, type):
                required.add(class_name)
                required.update(class_name + "." + m for m in _public_members(cls))
        for name in sorted(required - set(documented)):
            logger.warning(
                "apicheck: %s%s is public but not documented", prefix, name, location=where
            )

        for name, obj_entry in sorted(documented.items()):
            if _resolve(module, name) is not _MISSING:
                continue
            attr = name.rpartition(".")[2]
            assigned = re.search(r"\bself\.%s\s*[:=,]" % re.escape(attr), source)
            if obj_entry.objtype == "attribute" and assigned:
                continue
            logger.warning(
                "apicheck: %s%s is documented but the code has no such name",
                prefix,
                name,
                location=obj_entry.docname,
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("apicheck_modules", {}, "env", types=[dict])
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
