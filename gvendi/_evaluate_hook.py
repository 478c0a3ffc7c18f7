"""Make ``evaluate.load("gvendi")`` find the measurement without importing gvendi first.

`evaluate` has no plugin registry. Offline (``HF_EVALUATE_OFFLINE=1``) it falls back to its module cache, looking for
``<HF_MODULES_CACHE>/evaluate_modules/metrics/evaluate-measurement--gvendi/<64-hex>/gvendi.py``. This hook writes a
two-line shim there (``from gvendi.measurement import Gvendi``) the moment `evaluate` is imported, and at no other
time. A wheel install runs it at interpreter start through ``gvendi-evaluate.pth`` (a copy of this file named
``gvendi_evaluate_hook``), which costs one ``sys.meta_path`` entry and imports nothing; ``import gvendi`` installs it
too (editable installs do not carry ``.pth`` files). It must stay free of imports beyond the standard library.
"""

import hashlib
import importlib.abc
import importlib.machinery
import os
import sys

SHIM_SOURCE = (
    '"""G-Vendi measurement, registered by the installed gvendi package (see gvendi/_evaluate_hook.py)."""\n'
    "from gvendi.measurement import Gvendi  # noqa: F401\n"
)
MODULE_DIR = "evaluate-measurement--gvendi"


def shim_path():
    """Where evaluate's offline fallback looks for the module, from evaluate's own configuration."""
    import evaluate.config as config

    digest = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()
    return os.path.join(
        str(config.HF_MODULES_CACHE), config.MODULE_NAME_FOR_DYNAMIC_MODULES, "metrics", MODULE_DIR, digest, "gvendi.py"
    )


def register():
    """Write the shim into evaluate's module cache if it is not there yet (never raises)."""
    try:
        path = shim_path()
        if os.path.isfile(path):
            return path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as handle:
            handle.write(SHIM_SOURCE)
        os.replace(tmp, path)  # atomic: a reader never sees half a file
        return path
    except Exception:  # a read-only cache must not break `import evaluate`
        return None


class _EvaluateImportWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of `evaluate` so that :func:`register` runs once it has loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "evaluate":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            register()

        spec.loader.exec_module = exec_module
        return spec


def install():
    """Register now if `evaluate` is already imported, else watch for its import."""
    if "evaluate" in sys.modules and hasattr(sys.modules["evaluate"], "load"):
        register()
        return
    if not any(type(finder).__name__ == "_EvaluateImportWatcher" for finder in sys.meta_path):
        sys.meta_path.insert(0, _EvaluateImportWatcher())


install()
