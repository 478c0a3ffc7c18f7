"""Prismatic Synthesis: gradient-targeted data generation against a TGI/OpenAI-compatible endpoint or a local model.

Use :func:`synthesize` with a :class:`SynthesisConfig` (or ``gvendi synthesize`` on the command line), continue an
interrupted run with :func:`resume`, and read a finished run folder with :func:`load_run`.
"""

from .backends import (
    Backend,
    EndpointError,
    EndpointMismatchError,
    EndpointOverloadedError,
    EndpointStalledError,
    EndpointUnreachableError,
    GenerationParams,
    GenerationResult,
    LocalBackend,
    OpenAIBackend,
    TGIBackend,
    classify_error,
    make_backend,
)
from .config import EndpointConfig, ProxyConfig, SynthesisConfig
from .filters import ExactDedupFilter, FilterStep, NearDedupFilter, NGramDecontaminationFilter, load_benchmark_texts
from .loop import EmptyRoundError, RunResult, resume, synthesize
from .store import RunFolderError, RunFolderLockedError, RunStore, load_run, request_id
from .tasks import MathTask, NLITask, Task, get_task, load_seed_file

__all__ = [
    "Backend",
    "EmptyRoundError",
    "EndpointConfig",
    "EndpointError",
    "EndpointMismatchError",
    "EndpointOverloadedError",
    "EndpointStalledError",
    "EndpointUnreachableError",
    "ExactDedupFilter",
    "FilterStep",
    "GenerationParams",
    "GenerationResult",
    "LocalBackend",
    "MathTask",
    "NGramDecontaminationFilter",
    "NLITask",
    "NearDedupFilter",
    "OpenAIBackend",
    "ProxyConfig",
    "RunFolderError",
    "RunFolderLockedError",
    "RunResult",
    "RunStore",
    "SynthesisConfig",
    "TGIBackend",
    "Task",
    "classify_error",
    "get_task",
    "load_benchmark_texts",
    "load_run",
    "load_seed_file",
    "make_backend",
    "request_id",
    "resume",
    "synthesize",
]
