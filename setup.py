"""Setuptools shim; metadata lives in setup.cfg. The build adds ``gvendi-evaluate.pth`` to site-packages so that
``evaluate.load("gvendi")`` finds the measurement without importing gvendi first (see gvendi/_evaluate_shim.py)."""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithEvaluatePth(build_py):
    def run(self):
        super().run()
        import os

        target = os.path.join(self.build_lib, "gvendi-evaluate.pth")
        with open(target, "w") as handle:
            handle.write("import gvendi_evaluate_hook\n")
        self.copy_file(os.path.join("gvendi", "_evaluate_hook.py"), os.path.join(self.build_lib, "gvendi_evaluate_hook.py"))


setup(
    # the Trainer callback lives in the top-level callbacks/ folder (design card) and installs as gvendi.callbacks
    packages=find_packages(include=["gvendi", "gvendi.*"]) + ["gvendi.callbacks"],
    package_dir={"gvendi.callbacks": "callbacks"},
    cmdclass={"build_py": BuildWithEvaluatePth},
)
