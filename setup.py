"""Setuptools shim; metadata lives in setup.cfg. Every build, editable (``pip install -e``) included, adds
``gvendi-evaluate.pth`` and ``gvendi_evaluate_hook.py`` to site-packages, so that ``evaluate.load("gvendi")`` finds
the measurement without importing gvendi first (see gvendi/_evaluate_hook.py)."""

import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

PTH_NAME = "gvendi-evaluate.pth"
HOOK_NAME = "gvendi_evaluate_hook.py"


class BuildWithEvaluatePth(build_py):
    """build_py that also writes the evaluate hook and its ``.pth`` next to the package.

    A wheel takes them from ``build_lib``. An editable wheel ignores files in ``build_lib`` that belong to no package
    (it maps packages to the source tree instead), so in editable mode they go straight into the folder the editable
    wheel is assembled from (``install_lib``, as setuptools' editable_wheel configures it).
    """

    def run(self):
        super().run()
        targets = [self.build_lib]
        if getattr(self, "editable_mode", False):
            targets.append(self.get_finalized_command("install").install_lib)
        for target in targets:
            os.makedirs(target, exist_ok=True)
            with open(os.path.join(target, PTH_NAME), "w") as handle:
                handle.write("import gvendi_evaluate_hook\n")
            self.copy_file(os.path.join("gvendi", "_evaluate_hook.py"), os.path.join(target, HOOK_NAME))


setup(
    # the Trainer callback lives in the top-level callbacks/ folder (design card) and installs as gvendi.callbacks
    packages=find_packages(include=["gvendi", "gvendi.*"]) + ["gvendi.callbacks"],
    package_dir={"gvendi.callbacks": "callbacks"},
    cmdclass={"build_py": BuildWithEvaluatePth},
)
