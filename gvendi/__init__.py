"""gvendi: G-Vendi gradient diversity and Prismatic Synthesis for the Hugging Face ecosystem."""

__version__ = "0.1.0"

from . import _evaluate_hook  # noqa: F401  (lets evaluate.load("gvendi") find the measurement, editable installs too)
from .cluster import KMeansResult, assign_clusters, sparse_clusters, spherical_kmeans
from .compare import ComparisonResult, compare
from .contributions import ContributionResult, contributions, leave_one_out
from .featurizer import GradientFeaturizer
from .gradients import GradientCollector
from .projection import CountSketchProjector, DenseProjector, make_projector
from .proxy import DEFAULT_PROXY, load_proxy
from .report import DiversityReport, build_report, write_report
from .selection import SelectionResult, select
from .utils import disable_progress_bar, enable_progress_bar
from .vendi import GVendiResult, VendiAccumulator, score

__all__ = [
    "DEFAULT_PROXY",
    "ComparisonResult",
    "ContributionResult",
    "CountSketchProjector",
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
    "enable_progress_bar",
    "leave_one_out",
    "load_proxy",
    "make_projector",
    "score",
    "select",
    "sparse_clusters",
    "spherical_kmeans",
    "write_report",
]
