"""Reading data sets for the command line: local files, saved `datasets` folders and Hub ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_features", "load_table", "write_table"]

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def load_table(source: str, *, split: str = "train", config: str | None = None, limit: int | None = None) -> Any:
    """Load ``source`` as a `datasets.Dataset`.

    Args:
        source (`str`): a ``.jsonl``/``.json``/``.parquet``/``.csv`` file, a folder written by
            ``Dataset.save_to_disk``, or a Hub dataset id.
        split (`str`, *optional*, defaults to ``"train"``): split of a Hub data set or a DatasetDict folder.
        config (`str`, *optional*): configuration name of a Hub data set.
        limit (`int`, *optional*): keep only the first ``limit`` rows.

    Raises:
        ValueError: the file does not exist, has an unknown extension, the split is missing, or a Hub id cannot
            be reached (offline), each with what to do instead.
    """
    import datasets

    path = Path(source)
    if path.suffix.lower() in _BUILDERS:
        if not path.is_file():
            raise ValueError(f"data file {source!r} does not exist; check the path (relative to {os.getcwd()}).")
        try:
            table = datasets.load_dataset(_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
        except Exception as err:  # malformed JSON/CSV/Parquet: say which file and why
            raise ValueError(f"could not read {source!r} as {path.suffix} data: {str(err).splitlines()[0]}") from err
    elif path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise ValueError(f"{source!r} has splits {sorted(loaded)}, not {split!r}; pass --split.")
            loaded = loaded[split]
        table = loaded
    elif path.suffix:
        raise ValueError(
            f"unsupported data file {source!r}: use .jsonl, .json, .parquet or .csv, a saved dataset folder, or a Hub id."
        )
    elif source.count("/") == 1 and not path.exists():
        try:
            table = datasets.load_dataset(source, config, split=split)
        except Exception as err:
            raise ValueError(
                f"could not load the Hub dataset {source!r} (split {split!r}): {str(err).splitlines()[0]}. "
                "Offline, download it first or pass a local file."
            ) from None
    else:
        raise ValueError(f"{source!r} is neither a data file, a saved dataset folder nor a Hub id (ORG/NAME).")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be ≥ 1 (got {limit}).")
        table = table.select(range(min(limit, len(table))))
    if len(table) == 0:
        raise ValueError(f"{source!r} has 0 rows: nothing to score.")
    return table


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
