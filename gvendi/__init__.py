"""gvendi: G-Vendi gradient diversity and Prismatic Synthesis for the Hugging Face ecosystem.

The public names load on first use (as ``transformers`` does), so ``import gvendi`` and ``gvendi --version`` do not
import torch; ``from gvendi import GradientFeaturizer`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from . import _evaluate_hook  # noqa: F401,E402  (lets evaluate.load("gvendi") find the measurement)

# public name -> the module that defines it
_EXPORTS = {
    "AccumulatorSet": "accumulators",
    "KMeansResult": "cluster",
    "assign_clusters": "cluster",
    "sparse_clusters": "cluster",
    "spherical_kmeans": "cluster",
    "ComparisonResult": "comparison",
    "compare": "comparison",
    "ContributionResult": "per_example",
    "contributions": "per_example",
    "leave_one_out": "per_example",
    "GradientFeaturizer": "featurizer",
    "GradientCollector": "gradients",
    "CountSketchProjector": "projection",
    "DenseProjector": "projection",
    "make_projector": "projection",
    "DEFAULT_PROXY": "proxy",
    "load_proxy": "proxy",
    "DiversityReport": "report",
    "build_report": "report",
    "write_report": "report",
    "SelectionResult": "selection",
    "select": "selection",
    "disable_progress_bar": "utils",
    "disable_progress_bars": "utils",
    "enable_progress_bar": "utils",
    "enable_progress_bars": "utils",
    "GVendiResult": "vendi",
    "VendiAccumulator": "vendi",
    "score": "vendi",
}

if TYPE_CHECKING:  # what static tools (type checkers, the API docs) see
    from .accumulators import AccumulatorSet
    from .cluster import KMeansResult, assign_clusters, sparse_clusters, spherical_kmeans
    from .comparison import ComparisonResult, compare
    from .featurizer import GradientFeaturizer
    from .gradients import GradientCollector
    from .per_example import ContributionResult, contributions, leave_one_out
    from .projection import CountSketchProjector, DenseProjector, make_projector
    from .proxy import DEFAULT_PROXY, load_proxy
    from .report import DiversityReport, build_report, write_report
    from .selection import SelectionResult, select
    from .utils import disable_progress_bar, disable_progress_bars, enable_progress_bar, enable_progress_bars
    from .vendi import GVendiResult, VendiAccumulator, score

__all__ = [
    "AccumulatorSet",
    "ComparisonResult",
    "ContributionResult",
    "CountSketchProjector",
    "DEFAULT_PROXY",
    "DenseProjector",
    "DiversityReport",
    "GVendiResult",
    "GradientCollector",
    "GradientFeaturizer",
    "SelectionResult",
    "KMeansResult",
    "VendiAccumulator",
    "__version__",
    "assign_clusters",
    "build_report",
    "compare",
    "contributions",
    "disable_progress_bar",
    "disable_progress_bars",
    "enable_progress_bar",
    "enable_progress_bars",
    "leave_one_out",
    "load_proxy",
    "make_projector",
    "score",
    "select",
    "sparse_clusters",
    "spherical_kmeans",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule such as gvendi.projection, imported on first attribute access
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module 'gvendi' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
