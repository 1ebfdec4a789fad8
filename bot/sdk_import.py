"""Import databricks-sdk's modules without running the package's `__init__` until something needs it.

`databricks/sdk/__init__.py` imports every service module (about a second on a small machine) to build
`WorkspaceClient`; patbot needs only the client core and two or three services. Python runs a package's
`__init__` before any of its submodules, so `defer_sdk_package()` registers `databricks.sdk` as a plain
package first: its submodules import as usual, and the first access to a name the `__init__` defines
(`from databricks.sdk import WorkspaceClient`) runs the real `__init__` in place. Nothing of the SDK is
changed; only when its `__init__` runs.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGE = "databricks.sdk"
_lock = threading.RLock()


def defer_sdk_package() -> None:
    """Register `databricks.sdk` without running its `__init__` (no-op if it is already imported)."""
    with _lock:
        if PACKAGE in sys.modules:
            return
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            return  # not installed as a regular package: let the normal import report it
        package = importlib.util.module_from_spec(spec)
        state = {"loaded": False}

        def complete(name: str) -> Any:
            # A submodule (`from databricks.sdk import errors`) imports alone; anything else is defined by
            # the package's `__init__`, which runs once, here, in the registered module.
            if name.startswith("__"):
                raise AttributeError(name)
            if importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
                return importlib.import_module(f"{PACKAGE}.{name}")
            with _lock:
                if not state["loaded"]:
                    state["loaded"] = True
                    assert spec.loader is not None
                    spec.loader.exec_module(package)
            try:
                return package.__dict__[name]
            except KeyError:
                raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

        package.__getattr__ = complete  # type: ignore[method-assign]
        sys.modules[PACKAGE] = package
        parent = sys.modules.get("databricks")
        if isinstance(parent, ModuleType):
            parent.sdk = package  # type: ignore[attr-defined]
