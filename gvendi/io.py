"""Reading data sets for the command line: local files, saved `datasets` folders and Hub ids."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["load_table"]

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _first_line(err: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


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
        if path.stat().st_size == 0 or not path.read_bytes()[:65536].strip():
            raise ValueError(f"{source!r} is empty (0 rows): nothing to score.")
        try:
            table = datasets.load_dataset(_BUILDERS[path.suffix.lower()], data_files=str(path), split="train")
        except Exception as err:  # malformed JSON/CSV/Parquet: say which file and why
            raise ValueError(f"could not read {source!r} as {path.suffix} data: {_first_line(err)}") from err
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
                f"could not load the Hub dataset {source!r} (split {split!r}): {_first_line(err)}. "
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
