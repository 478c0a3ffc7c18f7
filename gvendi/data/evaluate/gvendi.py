"""The G-Vendi measurement as an evaluate module file: ``evaluate.load(gvendi.data.EVALUATE_MODULE_PATH)``."""

from gvendi.measurement import Gvendi  # noqa: F401
