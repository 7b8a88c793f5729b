"""Finding the real stdlib module behind a name that mailwire may have taken over.

mailwire's exceptions subclass the stdlib's, so ``except poplib.error_proto`` written against
the stdlib also catches mailwire's. That needs the stdlib module even when a caller has already
put mailwire's module into ``sys.modules`` under the stdlib's name.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Optional

__all__ = ["MARKER", "stdlib_module"]

#: Attribute set on mailwire's shell modules, so they can tell themselves from the stdlib's.
MARKER = "__mailwire__"


def _load_private_copy(name: str) -> Optional[ModuleType]:
    import importlib.util
    import sysconfig

    path = os.path.join(sysconfig.get_paths()["stdlib"], name + ".py")
    spec = importlib.util.spec_from_file_location("_mailwire_stdlib_" + name, path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception:
        return None
    return module


def stdlib_module(name: str) -> Optional[ModuleType]:
    """The stdlib's module ``name``, or None when this Python has none."""
    current = sys.modules.get(name)
    if current is not None and not getattr(current, MARKER, False):
        return current
    if current is None:
        try:
            __import__(name)
        except ImportError:
            return None
        return sys.modules[name]
    # The name already points at mailwire: load the stdlib file under a private name.
    return _load_private_copy(name)
