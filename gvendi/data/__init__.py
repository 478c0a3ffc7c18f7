"""Bundled demo and test material: a math sample, an NLI sample and a tiny proxy model.

All three are small, synthetic and rebuilt by seeded scripts in this folder::

    python -m gvendi.data.build_samples      # math_sample.jsonl, nli_sample.jsonl
    python -m gvendi.data.build_tiny_proxy   # tiny-proxy/ (tokenizer + 4-layer Qwen2, trained on the samples)

They are for examples, tests and smoke runs; they are not benchmarks, and the tiny proxy is not a real model.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = [
    "DATA_DIR",
    "EVALUATE_MODULE_PATH",
    "MATH_SAMPLE_PATH",
    "NLI_LABELS",
    "NLI_SAMPLE_PATH",
    "TINY_PROXY_PATH",
    "load_math_sample",
    "load_nli_sample",
    "math_prompt_completion",
    "math_templates",
    "nli_prompt_completion",
]

DATA_DIR = Path(__file__).resolve().parent
"""The folder that holds the bundled files."""
EVALUATE_MODULE_PATH = DATA_DIR / "evaluate" / "gvendi.py"
"""The measurement as an evaluate module file, for evaluate's public local-path loading:
``evaluate.load(str(EVALUATE_MODULE_PATH))`` (works with any evaluate release, online or offline)."""
MATH_SAMPLE_PATH = DATA_DIR / "math_sample.jsonl"
"""Grade-school word problems; rows ``{"id", "template", "problem", "solution", "answer"}``."""
NLI_SAMPLE_PATH = DATA_DIR / "nli_sample.jsonl"
"""Premise/hypothesis pairs; rows ``{"id", "phenomenon", "premise", "hypothesis", "label"}``."""
TINY_PROXY_PATH = DATA_DIR / "tiny-proxy"
"""A tiny trained ``Qwen2ForCausalLM`` with its tokenizer and chat template, loadable offline."""

NLI_LABELS = ("entailment", "neutral", "contradiction")
"""The NLI label names, in ``ClassLabel`` order (0, 1, 2; the MNLI convention). Defined here, with the NLI row
format, because the core formats NLI rows; the NLI synthesis task's schema (``ClassLabel``) is built from it."""


def math_prompt_completion(problem: str, solution: str) -> dict[str, str]:
    """The prompt/completion pair of a math row: the problem is the prompt, the solution the completion.

    Args:
        problem (`str`): the word problem.
        solution (`str`): the step-by-step solution ending in ``\\boxed{answer}``.

    Returns:
        `dict[str, str]`: ``{"prompt": problem, "completion": solution}``.
    """
    return {"prompt": problem, "completion": solution}


def nli_prompt_completion(premise: str, hypothesis: str, label: str) -> dict[str, str]:
    """The prompt/completion pair of an NLI row.

    The prompt is three lines, and the completion is the bare label word::

        Premise: {premise}
        Hypothesis: {hypothesis}
        Answer with one word: entailment, neutral or contradiction.

    Args:
        premise (`str`): the premise sentence(s).
        hypothesis (`str`): the hypothesis sentence.
        label (`str`): one of ``"entailment"``, ``"neutral"``, ``"contradiction"``.

    Returns:
        `dict[str, str]`: ``{"prompt": ..., "completion": label}``.

    Raises:
        ValueError: if ``label`` is not one of the three labels.
    """
    if label not in NLI_LABELS:
        raise ValueError(f"label must be one of {', '.join(NLI_LABELS)} (got {label!r}).")
    prompt = (
        f"Premise: {premise}\nHypothesis: {hypothesis}\nAnswer with one word: entailment, neutral or contradiction."
    )
    return {"prompt": prompt, "completion": label}


def _read_jsonl(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_math_sample() -> list[dict[str, str]]:
    """The bundled math sample, with ``prompt`` and ``completion`` added by :func:`math_prompt_completion`.

    Returns:
        `list[dict[str, str]]`: rows with keys ``id``, ``template``, ``problem``, ``solution``, ``answer``,
        ``prompt``, ``completion``, in file order (sorted by template).
    """
    return [
        {**row, **math_prompt_completion(row["problem"], row["solution"])} for row in _read_jsonl(MATH_SAMPLE_PATH)
    ]


def load_nli_sample() -> list[dict[str, str]]:
    """The bundled NLI sample, with ``prompt`` and ``completion`` added by :func:`nli_prompt_completion`.

    Returns:
        `list[dict[str, str]]`: rows with keys ``id``, ``phenomenon``, ``premise``, ``hypothesis``, ``label``,
        ``prompt``, ``completion``, in file order (sorted by phenomenon, then label).
    """
    return [
        {**row, **nli_prompt_completion(row["premise"], row["hypothesis"], row["label"])}
        for row in _read_jsonl(NLI_SAMPLE_PATH)
    ]


def math_templates() -> list[str]:
    """The distinct solution-template names of the math sample, sorted.

    Returns:
        `list[str]`: e.g. ``["age_multiple", "average_speed", ...]``.
    """
    return sorted({row["template"] for row in _read_jsonl(MATH_SAMPLE_PATH)})
