"""Make ``evaluate.load("gvendi")`` find the measurement without importing gvendi first.

The public route needs no hook: ``evaluate.load(str(gvendi.data.EVALUATE_MODULE_PATH))`` loads the measurement
through evaluate's documented local-path loading, with any evaluate release. Loading it *by name* has no public API:
`evaluate` has no plugin registry. Offline (``HF_EVALUATE_OFFLINE=1``) it falls back to its module cache, looking for
``<HF_MODULES_CACHE>/evaluate_modules/metrics/evaluate-measurement--gvendi/<64-hex>/gvendi.py``. This hook writes a
two-line shim there (``from gvendi.measurement import Gvendi``) the moment `evaluate` is imported, and at no other
time, and routes ``evaluate.load("gvendi")`` straight to it, so no Hub request is tried and evaluate's "Using the
latest cached version" warning never shows. Every install (wheel or ``pip install -e``) runs it at interpreter start
through ``gvendi-evaluate.pth`` (a copy of this file named ``gvendi_evaluate_hook``, see setup.py), which costs one
``sys.meta_path`` entry and imports nothing; ``import gvendi`` installs it too. It must stay free of imports beyond
the standard library.

Because that path and ``evaluation_module_factory`` are evaluate internals, the hook only acts on the evaluate
releases it is tested with (:data:`SUPPORTED`, checked when evaluate is imported); on any other release it does
nothing, and the public route above still works. ``tests/test_measurement.py`` covers both routes and the guard.
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
#: the evaluate releases whose module cache layout and loader this hook is tested with: [low, high)
SUPPORTED = ((0, 4, 3), (0, 5, 0))


def supported(version):
    """Whether evaluate ``version`` (e.g. ``"0.4.6"``) is one the hook is tested with (:data:`SUPPORTED`)."""
    parts = []
    for piece in str(version).split(".")[:3]:
        digits = ""
        for char in piece:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            return False
        parts.append(int(digits))
    while len(parts) < 3:
        parts.append(0)
    return SUPPORTED[0] <= tuple(parts) < SUPPORTED[1]


def shim_path():
    """Where evaluate's offline fallback looks for the module, from evaluate's own configuration."""
    import evaluate.config as config

    digest = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()
    root = os.path.join(str(config.HF_MODULES_CACHE), config.MODULE_NAME_FOR_DYNAMIC_MODULES)
    return os.path.join(root, "metrics", MODULE_DIR, digest, "gvendi.py")


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


def _module_path(shim: str) -> str:
    """The dotted import path evaluate gives a file of its dynamic-modules cache (as its own cache fallback does)."""
    import evaluate.config as config

    digest = os.path.basename(os.path.dirname(shim))
    return ".".join([config.MODULE_NAME_FOR_DYNAMIC_MODULES, "metrics", MODULE_DIR, digest, "gvendi"])


def _route_load(loading) -> None:
    """Answer ``evaluate.load("gvendi")`` with the shim before evaluate asks the Hub (a local gvendi.py still wins)."""
    original = loading.evaluation_module_factory
    if getattr(original, "_gvendi_route", False):
        return

    def evaluation_module_factory(path, module_type=None, *args, **kwargs):
        local = os.path.isfile(path) or os.path.isfile(os.path.join(path, "gvendi.py"))
        if path == "gvendi" and module_type in (None, "measurement") and not local:
            loading.init_dynamic_modules()  # the cache's root package, as evaluate creates it
            shim = register()
            if shim is not None:
                import importlib

                importlib.invalidate_caches()
                return loading.ImportableModule(_module_path(shim), os.path.basename(os.path.dirname(shim)))
        return original(path, module_type, *args, **kwargs)

    evaluation_module_factory._gvendi_route = True
    loading.evaluation_module_factory = evaluation_module_factory


def _after_evaluate_import() -> None:
    if not supported(getattr(sys.modules.get("evaluate"), "__version__", "")):
        return  # an untested evaluate: leave its internals alone (the public local-path route still works)
    register()
    try:
        _route_load(sys.modules["evaluate.loading"])
    except Exception:  # an evaluate without this function: the cache fallback (register) still works offline
        pass


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
            _after_evaluate_import()

        spec.loader.exec_module = exec_module
        return spec


def install():
    """Register now if `evaluate` is already imported, else watch for its import."""
    if "evaluate" in sys.modules and hasattr(sys.modules["evaluate"], "load"):
        _after_evaluate_import()
        return
    if not any(type(finder).__name__ == "_EvaluateImportWatcher" for finder in sys.meta_path):
        sys.meta_path.insert(0, _EvaluateImportWatcher())


install()
