"""The run folder: the source of truth of a synthesis run.

```
RUN_DIR/
  config.json            the SynthesisConfig (JSON)
  requests.jsonl         append-only record of every finished request, keyed by a deterministic request id
  rounds/round_000/pool.jsonl            the seed pool
  rounds/round_RRR/pool.jsonl, stats.json the pool after round RRR and that round's counts (written last)
  features/<hash>.npz    cached features, keyed by the content hash of the featurized rows
  dataset.jsonl, report.json, report.md, plots/*.png
```

Every record is written with ``flush`` + ``fsync`` (by a writer thread); a torn last line (a crash mid-write) is cut
off when the folder is reopened. Whole files (pools, stats, report, dataset) are written atomically
(:func:`gvendi.utils.atomic_write`: a temporary file, ``fsync``, ``os.replace``), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import atomic_write

logger = logging.getLogger(__name__)

__all__ = [
    "RecordIndex",
    "RunFolderDamagedError",
    "RunFolderError",
    "RunFolderLockedError",
    "RunStore",
    "atomic_write_text",
    "content_hash",
    "load_run",
    "request_id",
]


class RunFolderError(RuntimeError):
    """The run folder cannot be read or written (read-only, full disk, damaged file): one line naming the file and
    what to do. ``gvendi synthesize`` exits with ``exit_code`` (1)."""

    exit_code = 1


class RunFolderDamagedError(RunFolderError, ValueError):
    """A run-folder file is not valid JSON (a truncated or edited file). Also a ``ValueError``, so readers of
    finished runs (``gvendi push``) treat it as bad input."""


class RunFolderLockedError(RunFolderError):
    """Another process holds the run folder's lock (``RUN_DIR/.lock``); ``gvendi synthesize`` exits 2."""

    exit_code = 2


def _fs_error(action: str, path: Path | str, exc: OSError) -> RunFolderError:
    reason = exc.strerror or str(exc)
    hint = {
        28: "free some disk space, then resume the run (finished requests are kept)",  # ENOSPC
        122: "free some quota, then resume the run (finished requests are kept)",  # EDQUOT
        13: "make the run folder writable (or copy it somewhere writable) and resume there",  # EACCES
        1: "make the run folder writable (or copy it somewhere writable) and resume there",  # EPERM
        30: "the file system is read-only: copy the run folder somewhere writable and resume there",  # EROFS
    }.get(exc.errno or -1, "fix the cause, then resume the run (finished requests are kept)")
    return RunFolderError(f"cannot {action} {path}: {reason}; {hint}.")


def content_hash(obj: Any) -> str:
    """SHA-256 (hex) of an object's canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def request_id(*, task: str, round: int, stage: str, prompt: Any, params: dict[str, Any], seed: int) -> str:
    """The deterministic id of one request: a hash of task, round, stage, prompt, parameters and seed."""
    return content_hash(
        {"task": task, "round": round, "stage": stage, "prompt": prompt, "params": params, "seed": seed}
    )[:32]


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`gvendi.utils.atomic_write`).

    Raises:
        RunFolderError: the file cannot be written (read-only folder, full disk); the temporary file is removed.
    """
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise _fs_error("write", path, exc) from exc


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Atomically write rows as JSON lines."""
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file.

    Raises:
        RunFolderError: naming the file and the line that is not UTF-8 JSON (a damaged or truncated file).
    """
    rows = []
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line.decode("utf-8")))
                except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                    raise RunFolderDamagedError(
                        f"{path} line {number} is damaged: not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
                    ) from None
    except OSError as exc:
        raise _fs_error("read", path, exc) from exc
    return rows


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except ValueError as exc:
        raise RunFolderDamagedError(
            f"{path} is damaged: not valid JSON ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    except OSError as exc:
        raise _fs_error("read", path, exc) from exc


class RecordIndex(Mapping):
    """Finished requests by id: records written this session stay in memory until they are on disk, older ones are
    read back from ``requests.jsonl`` by byte offset."""

    def __init__(self, path: Path):
        self.path = path
        self._offsets: dict[str, tuple[int, int]] = {}
        self._fresh: dict[str, dict[str, Any]] = {}
        self._reader = None
        self._lock = threading.Lock()

    def __getitem__(self, rid: str) -> dict[str, Any]:
        record = self._fresh.get(rid)
        if record is not None:
            return record
        offset, length = self._offsets[rid]
        with self._lock:
            if self._reader is None:
                self._reader = open(self.path, "rb", buffering=0)  # unbuffered: the writer keeps appending
            self._reader.seek(offset)
            data = self._reader.read(length)
        return json.loads(data)

    def __contains__(self, rid: object) -> bool:
        return rid in self._fresh or rid in self._offsets

    def __iter__(self):
        yield from list(self._offsets)
        yield from [rid for rid in list(self._fresh) if rid not in self._offsets]

    def __len__(self) -> int:
        return len(self._offsets) + sum(1 for rid in list(self._fresh) if rid not in self._offsets)

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


class RunStore:
    """Reads and writes one run folder.

    Args:
        run_dir: the folder; created when missing (unless ``create=False``).
        create (`bool`, *optional*, defaults to `True`): create the folder; with `False` a missing folder raises
            ``ValueError`` (``--resume`` of a mistyped path must not leave an empty folder behind).
    """

    def __init__(self, run_dir: str | os.PathLike, *, create: bool = True):
        self.root = Path(run_dir)
        if not create and not self.root.is_dir():
            raise ValueError(f"{self.root} does not exist (or is not a folder): there is no run to resume there.")
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _fs_error("create the run folder", self.root, exc) from exc
        self._lock_handle = None
        self.requests_path = self.root / "requests.jsonl"
        self._records = RecordIndex(self.requests_path)
        self._handle = None
        self._cond = threading.Condition()
        self._pending: list[tuple[str, bytes]] = []
        self._writing = False
        self._closing = False
        self._writer_error: OSError | None = None
        self._thread: threading.Thread | None = None
        self._features: dict[str, np.ndarray] = {}
        self._features_loaded = False

    # -- lock -----------------------------------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the folder's exclusive lock (``RUN_DIR/.lock``, ``fcntl.flock``), so two processes never run one
        folder at once; the kernel drops it when the process ends, however it ends.

        Raises:
            RunFolderLockedError: another process holds it.
            RunFolderError: the lock file cannot be created (read-only folder).
        """
        if self._lock_handle is not None:
            return
        import fcntl

        path = self.root / ".lock"
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as exc:
            raise _fs_error("create the lock file", path, exc) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderLockedError(
                f"{self.root} is in use by another gvendi synthesize (pid {holder}): wait for it to finish or stop "
                "it, then resume; two processes on one folder would send every request twice."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_handle = handle

    def unlock(self) -> None:
        """Release the lock taken by :meth:`lock`."""
        if self._lock_handle is not None:
            self._lock_handle.close()  # closing the descriptor drops the flock
            self._lock_handle = None

    # -- config ---------------------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_path.exists():
            return None
        try:
            return json.loads(self.config_path.read_bytes().decode("utf-8"))
        except ValueError as exc:
            raise ValueError(f"{self.config_path} is not valid JSON ({exc}); the run folder is damaged.") from None
        except OSError as exc:
            raise _fs_error("read", self.config_path, exc) from exc

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- request record -------------------------------------------------------------------------------------------
    def open_records(self) -> RecordIndex:
        """Index ``requests.jsonl`` (cutting a torn last line) and open it for appending.

        Only byte offsets are kept in memory; a record is read back from the file when asked for, so a long run's
        record (which can reach gigabytes of solver text) never has to fit in memory.
        """
        try:
            return self._open_records()
        except OSError as exc:
            raise _fs_error("open", self.requests_path, exc) from exc

    def _open_records(self) -> RecordIndex:
        self._records = RecordIndex(self.requests_path)
        good_end = 0
        if self.requests_path.exists():
            size = self.requests_path.stat().st_size
            with open(self.requests_path, "rb") as handle:
                offset = 0
                for number, line in enumerate(handle, start=1):
                    if not line.endswith(b"\n"):
                        break  # a torn last line: cut below
                    if line.strip():
                        try:
                            self._records._offsets[json.loads(line)["id"]] = (offset, len(line))
                        except (ValueError, KeyError, TypeError):  # not JSON, not UTF-8, or no id
                            logger.warning(
                                "%s line %d is unreadable (damaged); ignoring it: that request is asked again.",
                                self.requests_path,
                                number,
                            )
                    offset += len(line)
                    good_end = offset
            if good_end < size:
                logger.warning("cutting a torn last record (%d bytes) from %s", size - good_end, self.requests_path)
                with open(self.requests_path, "r+b") as handle:
                    handle.truncate(good_end)
                    handle.flush()
                    os.fsync(handle.fileno())
        self._handle = open(self.requests_path, "ab")
        self._pending, self._writing, self._closing, self._writer_error = [], False, False, None
        self._thread = threading.Thread(target=self._writer, name="gvendi-requests-writer", daemon=True)
        self._thread.start()
        return self._records

    @property
    def records(self) -> RecordIndex:
        """Finished requests by id (a read-only mapping)."""
        return self._records

    def append_record(self, record: dict[str, Any]) -> None:
        """Index one finished request by ``record["id"]`` and queue it for ``requests.jsonl``.

        A writer thread appends queued records and then calls ``flush`` + ``fsync`` (records that finish together
        share one ``fsync``), so the event loop never waits on the disk. :meth:`flush` waits until everything
        queued is on disk; a record lost to a crash before that is simply asked again on resume.
        """
        if self._handle is None:
            self.open_records()
        if self._writer_error is not None:
            raise _fs_error("write", self.requests_path, self._writer_error) from self._writer_error
        self._records._fresh[record["id"]] = record
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._cond:
            self._pending.append((record["id"], line))
            self._cond.notify()

    def _writer(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending and self._closing:
                    return
                batch, self._pending = self._pending, []
                self._writing = True
            try:
                self._handle.seek(0, os.SEEK_END)
                position = self._handle.tell()
                self._handle.write(b"".join(line for _, line in batch))
                self._handle.flush()
                os.fsync(self._handle.fileno())
                for rid, line in batch:  # now on disk: keep its offset, drop the in-memory copy
                    self._records._offsets[rid] = (position, len(line))
                    self._records._fresh.pop(rid, None)
                    position += len(line)
            except OSError as exc:  # surfaced on the next append or flush
                self._writer_error = exc
            except Exception as exc:  # noqa: BLE001 - never leave flush() waiting on a dead writer
                self._writer_error = OSError(f"{type(exc).__name__}: {exc}")
            with self._cond:
                self._writing = False
                self._cond.notify_all()

    def flush(self) -> None:
        """Wait until every queued record is written and fsynced."""
        with self._cond:
            while self._pending or self._writing:
                self._cond.wait(0.1)
        if self._writer_error is not None:
            raise _fs_error("write", self.requests_path, self._writer_error) from self._writer_error

    def close(self) -> None:
        if self._handle is not None:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join()
            self._handle.close()
            self._handle = None
            self._records.close()
            if self._writer_error is not None:
                raise _fs_error("write", self.requests_path, self._writer_error) from self._writer_error

    # -- pools and round stats ------------------------------------------------------------------------------------
    def round_dir(self, round_index: int) -> Path:
        return self.root / "rounds" / f"round_{round_index:03d}"

    def write_pool(self, round_index: int, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.round_dir(round_index) / "pool.jsonl", rows)

    def read_pool(self, round_index: int) -> list[dict[str, Any]] | None:
        """The pool after round ``round_index``; ``None`` when missing or damaged (the round is then redone from
        the request record, which sends no request twice)."""
        path = self.round_dir(round_index) / "pool.jsonl"
        if not path.exists():
            return None
        try:
            return read_jsonl(path)
        except RunFolderError as exc:
            logger.warning("%s; redoing round %d from the request record.", exc, round_index)
            return None

    def write_round_stats(self, round_index: int, stats: dict[str, Any]) -> None:
        """Mark a round finished: written after its pool, so its presence means the round is complete."""
        atomic_write_text(self.round_dir(round_index) / "stats.json", json.dumps(stats, indent=2) + "\n")

    def read_round_stats(self, round_index: int) -> dict[str, Any] | None:
        """Round ``round_index``'s counts; ``None`` when missing or damaged (then the round is redone)."""
        path = self.round_dir(round_index) / "stats.json"
        if not path.exists():
            return None
        try:
            stats = _read_json(path)
        except RunFolderError as exc:
            logger.warning("%s; redoing round %d from the request record.", exc, round_index)
            return None
        return stats if isinstance(stats, dict) else None

    # -- feature cache --------------------------------------------------------------------------------------------
    def _load_features(self) -> None:
        if self._features_loaded:
            return
        folder = self.root / "features"
        for path in sorted(folder.glob("*.npz")) if folder.exists() else []:
            try:
                with np.load(path) as data:
                    for key, row in zip(data["keys"].tolist(), data["features"]):
                        self._features[str(key)] = row
            except Exception as exc:  # noqa: BLE001 - a damaged cache file is recomputed
                logger.warning("ignoring damaged feature cache %s (%s)", path, exc)
        self._features_loaded = True

    def cached_features(self, keys: list[str]) -> dict[str, np.ndarray]:
        """The cached feature rows among ``keys``."""
        self._load_features()
        return {key: self._features[key] for key in keys if key in self._features}

    def save_features(self, keys: list[str], features: np.ndarray) -> None:
        """Cache feature rows under their content keys (one ``.npz`` per featurize call, written atomically)."""
        self._load_features()
        folder = self.root / "features"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _fs_error("create", folder, exc) from exc
        path = folder / f"{content_hash(keys)[:24]}.npz"
        arrays = {"keys": np.array(keys), "features": np.asarray(features, dtype=np.float32)}
        try:
            atomic_write(path, lambda handle: np.savez(handle, **arrays))
        except OSError as exc:
            raise _fs_error("write", path, exc) from exc
        for key, row in zip(keys, features):
            self._features[key] = np.asarray(row, dtype=np.float32)

    # -- outputs --------------------------------------------------------------------------------------------------
    def write_dataset(self, rows: list[dict[str, Any]]) -> None:
        write_jsonl(self.root / "dataset.jsonl", rows)

    def write_report(self, report: dict[str, Any], markdown: str) -> None:
        atomic_write_text(self.root / "report.json", json.dumps(report, indent=2) + "\n")
        atomic_write_text(self.root / "report.md", markdown)


def load_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Read a finished run folder: ``(config, report, rows of dataset.jsonl)``: the one reader of finished runs
    (``gvendi push`` reads through it too, then checks the rows against the task's schema).

    Raises:
        ValueError: when the folder, ``config.json``, ``report.json`` or ``dataset.jsonl`` is missing, either JSON
            file is not an object, or the run has not completed (resume it with ``gvendi synthesize --resume
            RUN_DIR``).
        RunFolderDamagedError: a file is not valid JSON (also a ``ValueError``), naming the file and the line.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise ValueError(f"run folder {str(root)!r} does not exist or is not a folder.")
    missing = [name for name in ("config.json", "report.json") if not (root / name).exists()]
    if missing:
        raise ValueError(
            f"{root} is not a complete synthesis run folder: missing {', '.join(missing)} (was it written by "
            "gvendi synthesize?)."
        )
    config, report = _read_json(root / "config.json"), _read_json(root / "report.json")
    for name, value in (("config.json", config), ("report.json", report)):
        if not isinstance(value, dict):
            raise ValueError(f"{root / name} must hold a JSON object, found {type(value).__name__}.")
    if report.get("complete") is not True:
        raise ValueError(
            f"the run in {root} is not a complete run: it is incomplete (report.json has complete="
            f"{report.get('complete')!r}); finish it with `gvendi synthesize --resume {root}` before reading or "
            "publishing it."
        )
    if not (root / "dataset.jsonl").exists():
        raise ValueError(
            f"{root} has no dataset.jsonl although its report says complete; the run folder is damaged: rerun "
            "with --resume."
        )
    return config, report, read_jsonl(root / "dataset.jsonl")
