"""Reading data sets for the command line: local files, saved `datasets` folders and Hub ids."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import ConfigFieldError

__all__ = ["load_features", "load_table", "write_table"]

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _first_bad_line(path: Path) -> str | None:
    """'line N: why' for the first line of a JSON Lines file that is not one JSON object (lines count from 1)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as err:
                return f"line {number}: {err.msg} (column {err.colno})"
            if not isinstance(value, dict):
                return f"line {number}: a JSON {type(value).__name__}, not an object of fields"
    return None


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _read_error(path: Path, err: Exception) -> str:
    """Where a local file is malformed, as a person would look for it: a line number from 1, not a byte offset."""
    if path.suffix.lower() == ".jsonl":
        where = _first_bad_line(path)
        if where:
            return where
    if path.suffix.lower() == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError as decode_error:
            return f"line {decode_error.lineno}: {decode_error.msg} (column {decode_error.colno})"
    return _first_line(err)


def load_table(source: str, *, split: str | None = None, config: str | None = None, limit: int | None = None) -> Any:
    """Load ``source`` as a `datasets.Dataset`.

    Args:
        source (`str`): a ``.jsonl``/``.json``/``.parquet``/``.csv`` file, a folder written by
            ``Dataset.save_to_disk``, or a Hub dataset id.
        split (`str`, *optional*, defaults to ``"train"``): split of a Hub data set or a DatasetDict folder; an error
            for a single file or a single-split folder, which have no splits.
        config (`str`, *optional*): configuration name of a Hub data set.
        limit (`int`, *optional*): keep only the first ``limit`` rows.

    Raises:
        ValueError: the file does not exist, has an unknown extension, the split is missing, or a Hub id cannot
            be reached (offline), each with what to do instead.
    """
    import datasets

    from .utils import quiet_libraries

    path = Path(source)
    if limit is not None and limit < 1:
        raise ConfigFieldError("limit", limit, f"{{limit}} must be ≥ 1 (got {limit}).")
    if path.suffix.lower() in _BUILDERS or path.is_dir():
        if config is not None:
            raise ConfigFieldError(
                "config",
                config,
                f"{{config}} {config!r} names a Hub dataset configuration; {source!r} is local. Drop it.",
            )
    if path.suffix.lower() in _BUILDERS:
        if not path.is_file():
            raise ValueError(f"data file {source!r} does not exist; check the path (relative to {os.getcwd()}).")
        if split is not None:
            raise ConfigFieldError(
                "split",
                split,
                f"{{split}} {split!r} does not apply to {source!r}: a single file has no splits. Drop {{split}}, or "
                "pass the file of the split you want.",
            )
        if path.stat().st_size == 0 or (path.suffix.lower() in {".jsonl", ".json", ".csv"} and not _has_text(path)):
            raise ValueError(f"{source!r} is empty (0 rows): nothing to score.")
        try:
            with quiet_libraries():
                table = datasets.load_dataset(_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
        except Exception as err:  # malformed JSON/CSV/Parquet: say which file, which line and why
            raise ValueError(f"could not read {source!r} as {path.suffix} data: {_read_error(path, err)}") from None
    elif path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            split = "train" if split is None else split
            if split not in loaded:
                raise ConfigFieldError(
                    "split",
                    split,
                    f"{source!r} has splits {sorted(loaded)}, not {split!r}; pass one of them as {{split}}.",
                )
            loaded = loaded[split]
        elif split is not None:
            raise ConfigFieldError(
                "split", split, f"{{split}} {split!r} does not apply to {source!r}: it holds one Dataset, not splits."
            )
        table = loaded
    elif path.suffix:
        raise ValueError(
            f"unsupported data file {source!r}: use .jsonl, .json, .parquet or .csv, a saved dataset folder, or a Hub "
            "id."
        )
    elif source.count("/") == 1 and not path.exists():
        split = "train" if split is None else split
        try:
            with quiet_libraries():
                table = datasets.load_dataset(source, config, split=split)
        except Exception as err:
            raise ValueError(
                f"could not load the Hub dataset {source!r} (split {split!r}): {_first_line(err)}. "
                "Offline, download it first or pass a local file."
            ) from None
    else:
        raise ValueError(f"{source!r} is neither a data file, a saved dataset folder nor a Hub id (ORG/NAME).")
    if limit is not None:
        table = table.select(range(min(limit, len(table))))
    if len(table) == 0:
        raise ValueError(f"{source!r} has 0 rows: nothing to score.")
    return table


def _has_text(path: Path) -> bool:
    """Whether a text file holds anything but whitespace (read in chunks, stops at the first character)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return True
    return False


def write_table(table: Any, out: str) -> str:
    """Write a `datasets.Dataset` to ``out``: ``.jsonl``/``.json``/``.parquet``/``.csv`` by suffix, else a folder
    for ``datasets.load_from_disk``. Returns the path written."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix and suffix not in _BUILDERS:
        raise ValueError(f"unsupported output {out!r}: use .jsonl, .json, .parquet or .csv, or a folder name.")
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".jsonl":
        table.to_json(str(path), lines=True, force_ascii=False)
    elif suffix == ".json":
        table.to_json(str(path), lines=False, force_ascii=False)
    elif suffix == ".parquet":
        table.to_parquet(str(path))
    elif suffix == ".csv":
        table.to_csv(str(path), index=False)
    else:
        table.save_to_disk(str(path))
    return str(path)


def load_features(source: str) -> Any:
    """Features saved by ``gvendi featurize`` (its folder, or the ``features.npy`` in it) or any ``.npy`` file of
    shape (N, dim), memory-mapped."""
    import numpy as np

    path = Path(source)
    if path.is_dir():
        path = path / "features.npy"
    if path.suffix.lower() != ".npy" or not path.is_file():
        raise ValueError(
            f"no features at {source!r}: pass a .npy file of shape (N, dim) or a folder written by `gvendi featurize`."
        )
    array = np.load(str(path), mmap_mode="r")
    if array.ndim != 2:
        raise ValueError(f"features in {str(path)!r} have shape {array.shape}; expected (N, dim).")
    return array
