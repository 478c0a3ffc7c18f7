"""Filter steps of the synthesis loop: exact and near-duplicate removal, n-gram decontamination.

Each step is a small class in the datatrove style: the base class owns the loop over rows and the counters
(kept, and dropped per reason); a subclass answers one question, :meth:`FilterStep.drop_reason`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ExactDedupFilter",
    "FilterStep",
    "NGramDecontaminationFilter",
    "NearDedupFilter",
    "closest_benchmark_item",
    "load_benchmark_texts",
    "word_tokens",
]

_WORD = re.compile(r"\w+", re.UNICODE)


def word_tokens(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation and whitespace dropped)."""
    return _WORD.findall(text.lower())


def _ngrams(tokens: list[str], n: int) -> set[tuple[str, ...]]:
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


class FilterStep:
    """One filtering step with counted drop reasons.

    Args:
        text_fn: maps a row to the text the step looks at.
    """

    name = "filter"

    def __init__(self, text_fn: Callable[[dict[str, Any]], str]):
        self.text_fn = text_fn
        self.stats: Counter[str] = Counter()

    def drop_reason(self, row: dict[str, Any]) -> str | None:
        """Why ``row`` is dropped, or ``None`` to keep it."""
        raise NotImplementedError

    def keep(self, row: dict[str, Any]) -> None:
        """Called for each kept row (steps that remember what they kept override it)."""

    def __call__(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        kept = []
        for row in rows:
            reason = self.drop_reason(row)
            if reason is None:
                self.stats["kept"] += 1
                self.keep(row)
                kept.append(row)
            else:
                self.stats[f"dropped_{reason}"] += 1
        return kept


class ExactDedupFilter(FilterStep):
    """Drops rows whose normalised text (lower-cased words) equals a pool row's or an earlier kept row's."""

    name = "exact_dedup"

    def __init__(self, pool_texts: Iterable[str], text_fn: Callable[[dict[str, Any]], str]):
        super().__init__(text_fn)
        self._seen = {self._key(text) for text in pool_texts}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(" ".join(word_tokens(text)).encode()).hexdigest()

    def drop_reason(self, row: dict[str, Any]) -> str | None:
        return "exact_duplicate" if self._key(self.text_fn(row)) in self._seen else None

    def keep(self, row: dict[str, Any]) -> None:
        self._seen.add(self._key(self.text_fn(row)))


class NearDedupFilter(FilterStep):
    """Drops rows whose word ``shingle``-gram Jaccard with a pool row (or an earlier kept row) is ≥ ``threshold``.

    Candidates are found with MinHash locality-sensitive hashing (``num_perm`` hashes in ``bands`` bands) and then
    confirmed with the exact Jaccard similarity, so the only approximation is a rare missed pair.
    """

    name = "near_dedup"

    def __init__(
        self,
        pool_texts: Iterable[str],
        text_fn: Callable[[dict[str, Any]], str],
        *,
        threshold: float = 0.8,
        shingle: int = 5,
        num_perm: int = 64,
        bands: int = 16,
        seed: int = 0,
    ):
        super().__init__(text_fn)
        if num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a multiple of bands ({bands}).")
        self.threshold, self.shingle, self.bands = threshold, shingle, bands
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._buckets: dict[tuple[int, bytes], list[int]] = {}
        self._shingles: list[set[int]] = []
        for text in pool_texts:
            self._add(self._shingle_set(text))

    def _shingle_set(self, text: str) -> set[int]:
        return {zlib.crc32(" ".join(gram).encode()) for gram in _ngrams(word_tokens(text), self.shingle)}

    def _signature(self, shingles: set[int]) -> np.ndarray:
        if not shingles:
            return np.zeros(len(self._a), dtype=np.uint64)
        x = np.fromiter(shingles, dtype=np.uint64)[:, None]
        with np.errstate(over="ignore"):
            hashed = (x * self._a[None, :] + self._b[None, :]) >> np.uint64(32)  # multiply-shift family, [S,P]
        return hashed.min(axis=0)

    def _bands(self, signature: np.ndarray) -> list[tuple[int, bytes]]:
        rows = len(signature) // self.bands
        return [(band, signature[band * rows : (band + 1) * rows].tobytes()) for band in range(self.bands)]

    def _add(self, shingles: set[int]) -> None:
        index = len(self._shingles)
        self._shingles.append(shingles)
        for key in self._bands(self._signature(shingles)):
            self._buckets.setdefault(key, []).append(index)

    def drop_reason(self, row: dict[str, Any]) -> str | None:
        shingles = self._shingle_set(self.text_fn(row))
        row["_shingles"] = shingles
        if not shingles:
            return None
        candidates = {i for key in self._bands(self._signature(shingles)) for i in self._buckets.get(key, [])}
        for i in candidates:
            other = self._shingles[i]
            if len(shingles & other) / len(shingles | other) >= self.threshold:
                return "near_duplicate"
        return None

    def keep(self, row: dict[str, Any]) -> None:
        self._add(row.pop("_shingles", None) or self._shingle_set(self.text_fn(row)))

    def __call__(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = list(rows)
        kept = super().__call__(rows)
        for row in rows:
            row.pop("_shingles", None)
        return kept


class NGramDecontaminationFilter(FilterStep):
    """Drops rows sharing any word ``n``-gram with a benchmark text (texts shorter than ``n`` words count whole)."""

    name = "decontamination"

    def __init__(self, benchmark_texts: Iterable[str], text_fn: Callable[[dict[str, Any]], str], *, n: int = 10):
        super().__init__(text_fn)
        self.n = n
        self._grams: set[int] = set()
        for text in benchmark_texts:
            self._grams.update(self._hashes(text))

    def _hashes(self, text: str) -> set[int]:
        return {
            int.from_bytes(hashlib.blake2b(" ".join(g).encode(), digest_size=8).digest(), "little")
            for g in _ngrams(word_tokens(text), self.n)
        }

    def drop_reason(self, row: dict[str, Any]) -> str | None:
        return "benchmark_ngram_overlap" if self._hashes(self.text_fn(row)) & self._grams else None


def closest_benchmark_item(text: str, index: dict[tuple[str, ...], list[int]], *, n: int = 3) -> tuple[int, float]:
    """The benchmark item sharing the most word ``n``-grams with ``text``: ``(item index, shared fraction)``."""
    grams = _ngrams(word_tokens(text), n)
    counts: Counter[int] = Counter()
    for gram in grams:
        counts.update(index.get(gram, ()))
    if not counts or not grams:
        return -1, 0.0
    item, shared = counts.most_common(1)[0]
    return item, shared / len(grams)


def build_ngram_index(texts: list[str], *, n: int = 3) -> dict[tuple[str, ...], list[int]]:
    """Inverted index word ``n``-gram → benchmark item indices (for :func:`closest_benchmark_item`)."""
    index: dict[tuple[str, ...], list[int]] = {}
    for i, text in enumerate(texts):
        for gram in _ngrams(word_tokens(text), n):
            index.setdefault(gram, []).append(i)
    return index


_TEXT_COLUMNS = {
    "math": [("problem",), ("question",), ("prompt",), ("input",), ("text",)],
    "nli": [("premise", "hypothesis"), ("sentence1", "sentence2"), ("text",)],
}


def _rows_from_file(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", data.get("rows", []))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if suffix in (".csv", ".tsv"):
        with open(path, encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    raise ValueError(f"benchmark file {path}: unsupported format {suffix!r}; use .jsonl, .json, .parquet or .csv.")


def _rows_from_hub(spec: str) -> list[dict[str, Any]]:
    """``owner/name``, ``owner/name:config`` and an optional ``@split`` (default: every split)."""
    import datasets

    name, _, split = spec.partition("@")
    name, _, config = name.partition(":")
    try:
        loaded = datasets.load_dataset(name, config or None, split=split or None)
    except Exception as exc:
        raise ValueError(
            f"cannot load benchmark {spec!r} from the Hub ({type(exc).__name__}: {exc}); pass a local "
            ".jsonl/.parquet/.csv file, or a Hub id as owner/name[:config][@split] that is reachable or cached."
        ) from exc
    parts = loaded.values() if isinstance(loaded, dict) else [loaded]
    return [row for part in parts for row in part]


def load_benchmark_texts(specs: list[str], task: str) -> list[str]:
    """Texts of the benchmark sets to decontaminate against.

    Args:
        specs: local files (``.jsonl``, ``.json``, ``.parquet``, ``.csv``) or Hub dataset ids
            (``owner/name[:config][@split]``, loaded with ``datasets``).
        task: ``"math"`` reads ``problem``/``question``/``prompt``/``input``/``text``; ``"nli"`` reads
            ``premise`` + ``hypothesis`` (or ``sentence1`` + ``sentence2``, or ``text``).

    Raises:
        ValueError: for an unreadable source, or one with none of the expected text columns.
    """
    texts: list[str] = []
    for spec in specs:
        path = Path(spec)
        rows = _rows_from_file(path) if path.exists() else _rows_from_hub(spec)
        if not rows:
            continue
        columns = next((cols for cols in _TEXT_COLUMNS[task] if all(c in rows[0] for c in cols)), None)
        if columns is None:
            raise ValueError(
                f"benchmark {spec!r} has columns {sorted(rows[0])}, none of the text columns gvendi reads for "
                f"{task}: {[' + '.join(c) for c in _TEXT_COLUMNS[task]]}."
            )
        texts.extend("\n".join(str(row[c]) for c in columns) for row in rows)
    return texts
