"""Build the bundled math and NLI samples, deterministically.

    python -m gvendi.data.build_samples                      # rewrite gvendi/data/*.jsonl
    python -m gvendi.data.build_samples --output-dir /tmp/x  # write elsewhere (the tests check byte identity)

``math_sample.jsonl`` holds grade-school word problems from 15 solution templates (names, objects, numbers and the
problem's phrasing vary; the steps of the solution follow the template) with step-by-step solutions ending in
``\\boxed{answer}``. ``nli_sample.jsonl`` holds premise/hypothesis pairs over 8 phenomena whose labels are fixed by
construction. Every row comes from a seeded :class:`random.Random`; rows are sorted before ids are assigned.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from ._math_generators import TEMPLATES
from ._nli_generators import LABELS, PHENOMENA

SEED = 20250526
MATH_PER_TEMPLATE = 64
NLI_PER_PHENOMENON = 80
MATH_FILENAME = "math_sample.jsonl"
NLI_FILENAME = "nli_sample.jsonl"
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}\s*$")


def build_math_rows(seed: int = SEED, per_template: int = MATH_PER_TEMPLATE) -> list[dict[str, str]]:
    """Math rows, ``per_template`` distinct problems for each template, sorted by (template, problem).

    Args:
        seed (`int`, *optional*, defaults to `SEED`): the seed of every template's generator.
        per_template (`int`, *optional*, defaults to 64): problems per template.

    Returns:
        `list[dict[str, str]]`: rows with keys ``id``, ``template``, ``problem``, ``solution``, ``answer``.
    """
    rows = []
    for template, generate in sorted(TEMPLATES.items()):
        rng = random.Random(f"{seed}:math:{template}")
        seen: dict[str, tuple[str, str]] = {}
        for _ in range(per_template * 50):
            if len(seen) == per_template:
                break
            problem, solution, answer = generate(rng)
            match = _BOXED.search(solution)
            if match is None or match.group(1) != answer:
                raise AssertionError(f"{template}: the solution does not end in \\boxed{{{answer}}}: {solution!r}")
            seen.setdefault(problem, (solution, answer))
        if len(seen) < per_template:
            raise RuntimeError(f"{template}: only {len(seen)} distinct problems, {per_template} wanted")
        rows += [
            {"template": template, "problem": p, "solution": s, "answer": a} for p, (s, a) in sorted(seen.items())
        ]
    return [{"id": f"math-{i + 1:04d}", **row} for i, row in enumerate(rows)]


def build_nli_rows(seed: int = SEED, per_phenomenon: int = NLI_PER_PHENOMENON) -> list[dict[str, str]]:
    """NLI rows, ``per_phenomenon`` distinct pairs per phenomenon with labels cycling through the three classes.

    Args:
        seed (`int`, *optional*, defaults to `SEED`): the seed of every phenomenon's generator.
        per_phenomenon (`int`, *optional*, defaults to 80): pairs per phenomenon.

    Returns:
        `list[dict[str, str]]`: rows with keys ``id``, ``phenomenon``, ``premise``, ``hypothesis``, ``label``,
        sorted by (phenomenon, label, premise, hypothesis).
    """
    rows = []
    for phenomenon, generate in sorted(PHENOMENA.items()):
        rng = random.Random(f"{seed}:nli:{phenomenon}")
        seen: dict[tuple[str, str], str] = {}
        for _ in range(per_phenomenon * 50):
            if len(seen) == per_phenomenon:
                break
            label = LABELS[len(seen) % len(LABELS)]
            pair = generate(rng, label)
            if pair not in seen and pair[0] != pair[1]:
                seen[pair] = label
        if len(seen) < per_phenomenon:
            raise RuntimeError(f"{phenomenon}: only {len(seen)} distinct pairs, {per_phenomenon} wanted")
        rows += [
            {"phenomenon": phenomenon, "premise": p, "hypothesis": h, "label": label}
            for (p, h), label in sorted(seen.items(), key=lambda kv: (kv[1], kv[0]))
        ]
    return [{"id": f"nli-{i + 1:04d}", **row} for i, row in enumerate(rows)]


def write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    """Write rows as UTF-8 JSON lines with ``\\n`` endings (the same bytes on every platform)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_samples(output_dir: str | Path | None = None, *, seed: int = SEED) -> tuple[Path, Path]:
    """Write ``math_sample.jsonl`` and ``nli_sample.jsonl``.

    Args:
        output_dir (`str` or `Path`, *optional*): target folder, created if missing; defaults to this package folder.
        seed (`int`, *optional*, defaults to `SEED`): generator seed; the bundled files use the default.

    Returns:
        `tuple[Path, Path]`: the math and NLI file paths.
    """
    out = Path(output_dir) if output_dir is not None else Path(__file__).parent
    out.mkdir(parents=True, exist_ok=True)
    math_path, nli_path = out / MATH_FILENAME, out / NLI_FILENAME
    write_jsonl(build_math_rows(seed), math_path)
    write_jsonl(build_nli_rows(seed), nli_path)
    return math_path, nli_path


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default=None, help="where to write the files (default: gvendi/data/)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"generator seed (default: {SEED})")
    args = parser.parse_args(argv)
    for path in build_samples(args.output_dir, seed=args.seed):
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
