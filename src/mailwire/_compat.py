"""Making mailwire's exceptions subclasses of the stdlib's, without importing the stdlib.

``except poplib.error_proto`` written against the stdlib must also catch mailwire's
``error_proto``. Importing the stdlib module eagerly to subclass it would cost every mailwire
user the stdlib's own start-up memory (``imaplib`` drags in ssl, subprocess, calendar, ...:
several MiB, more than mailwire itself). But a caller can only name the stdlib's class once the
stdlib's module has been imported, so the link is made then: mailwire's classes start on a
stand-in base, and when the stdlib's module finishes executing, its classes take the stand-in's
place in ``__bases__``. If the stdlib's module is already loaded when mailwire is, that happens
at once.

The watch is a ``sys.meta_path`` entry that finds nothing itself: for a watched name it asks the
other finders, lets the stdlib's own loader run the module, then makes the link and, when
nothing is left to watch, removes itself.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType
    from typing import Any, Optional

__all__ = ["MARKER", "StdlibBase", "find_spec", "inherit_from_stdlib"]

#: Attribute set on mailwire's shell modules, so they can tell themselves from the stdlib's.
MARKER = "__mailwire__"


class StdlibBase(Exception):
    """Base of mailwire's public exceptions until the stdlib's counterpart replaces it.

    A direct ``Exception`` base could not be swapped: ``__bases__`` assignment needs the old and
    the new base to have the same instance layout, and a class statement's subclass of
    ``Exception`` adds a ``__weakref__`` slot that ``Exception`` itself lacks.
    """


def _resolve(module: ModuleType, path: str) -> Any:
    target: Any = module
    for part in path.split("."):
        target = getattr(target, part)
    return target


def _link(module: ModuleType, links: Sequence[tuple[type, str]]) -> None:
    for cls, path in links:
        std = _resolve(module, path)
        if std in cls.__mro__:
            continue
        bases = tuple(b for b in cls.__bases__ if b is not StdlibBase)
        cls.__bases__ = (*bases, std)


def _link_or_warn(module: ModuleType, links: Sequence[tuple[type, str]]) -> None:
    try:
        _link(module, links)
    except (AttributeError, TypeError) as exc:
        # A future stdlib whose exceptions changed shape; its import must still succeed.
        import warnings

        warnings.warn(
            f"mailwire's exceptions could not be made subclasses of {module.__name__}'s: {exc}",
            RuntimeWarning,
            stacklevel=2,
        )


def find_spec(
    name: str, path: Optional[Sequence[str]] = None, target: Any = None, skip: Any = None
) -> Optional[ModuleSpec]:
    """What importing ``name`` would find, without importing it (nor ``importlib.util``)."""
    for finder in list(sys.meta_path):
        find = getattr(finder, "find_spec", None)
        if finder is skip or find is None:
            continue
        spec: Optional[ModuleSpec] = find(name, path, target)
        if spec is not None:
            return spec
    return None


class _AfterExec:
    """Wraps the stdlib's loader for one import; links the exceptions once the module ran."""

    def __init__(self, loader: Any, watcher: _Watcher) -> None:
        self._loader = loader
        self._watcher = watcher

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # The module sees its own loader, as if mailwire had never been there.
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._watcher.imported(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _Watcher:
    """The ``sys.meta_path`` entry: watches stdlib module names until they are imported."""

    def __init__(self) -> None:
        self.pending: dict[str, list[Sequence[tuple[type, str]]]] = {}

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        if fullname not in self.pending:
            return None
        spec = find_spec(fullname, path, target, skip=self)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _AfterExec(spec.loader, self)  # type: ignore[assignment]
        return spec

    def imported(self, module: ModuleType) -> None:
        if getattr(module, MARKER, False):
            return
        for links in self.pending.pop(module.__name__, ()):
            _link_or_warn(module, links)
        if not self.pending:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass

    def watch(self, name: str, links: Sequence[tuple[type, str]]) -> None:
        self.pending.setdefault(name, []).append(links)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)


_watcher = _Watcher()


def inherit_from_stdlib(name: str, links: Sequence[tuple[type, str]]) -> None:
    """Make each mailwire class in ``links`` (pairs of the class and the attribute path of its
    stdlib counterpart, linked in order) a subclass of its counterpart in the
    stdlib's module ``name``: now if that module is loaded, else as soon as it is imported.

    Each class must list :class:`StdlibBase` among its bases, or subclass one that does.
    """
    current = sys.modules.get(name)
    if current is not None and not getattr(current, MARKER, False):
        _link_or_warn(current, links)
    else:
        _watcher.watch(name, links)
