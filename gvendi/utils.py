"""Small shared helpers: the one progress-bar switch, devices, stable hashing, atomic writes, file hashing and the
retry backoff rule."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "atomic_write",
    "backoff_delay",
    "disable_progress_bars",
    "enable_progress_bars",
    "fast_bf16",
    "progress_bar",
    "progress_bars_disabled",
    "quiet_libraries",
    "resolve_device",
    "sha256_file",
    "stable_seed",
]

_TRUE = {"1", "true", "yes", "on"}
_PROGRESS_DISABLED: bool | None = None  # None: follow the environment variables
LINE_INTERVAL_S = float(os.environ.get("GVENDI_PROGRESS_INTERVAL", "30"))
"""Off a terminal (a log file, a CI log) a bar prints one line at most this often (``GVENDI_PROGRESS_INTERVAL``)."""


def progress_bars_disabled() -> bool:
    """Whether gvendi's bars (and, while gvendi drives them, the libraries' bars) are off.

    Off after :func:`disable_progress_bars`, or when ``GVENDI_DISABLE_PROGRESS_BAR`` or ``TQDM_DISABLE`` is set to
    ``1``/``true``; :func:`enable_progress_bars` turns them back on whatever the environment says.
    """
    if _PROGRESS_DISABLED is not None:
        return _PROGRESS_DISABLED
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE for var in ("GVENDI_DISABLE_PROGRESS_BAR", "TQDM_DISABLE")
    )


def _library_switches() -> list[tuple[object, object, object]]:
    """(is_enabled, disable, enable) of the libraries whose bars gvendi's work shows: transformers, datasets,
    huggingface_hub and evaluate; a library that is not installed is skipped."""
    switches = []
    with contextlib.suppress(ImportError):
        import huggingface_hub.utils as hub

        switches.append(
            (lambda: not hub.are_progress_bars_disabled(), hub.disable_progress_bars, hub.enable_progress_bars)
        )
    with contextlib.suppress(ImportError):
        import transformers.utils.logging as tf

        switches.append((tf.is_progress_bar_enabled, tf.disable_progress_bar, tf.enable_progress_bar))
    with contextlib.suppress(ImportError):
        import datasets

        switches.append(
            (datasets.is_progress_bar_enabled, datasets.disable_progress_bars, datasets.enable_progress_bars)
        )
    with contextlib.suppress(ImportError):
        import evaluate.utils.logging as ev

        switches.append((ev.is_progress_bar_enabled, ev.disable_progress_bar, ev.enable_progress_bar))
    return switches


def disable_progress_bars() -> None:
    """Silence every progress bar: gvendi's, and those of transformers, datasets, huggingface_hub and evaluate.

    The same as ``GVENDI_DISABLE_PROGRESS_BAR=1`` (or ``TQDM_DISABLE=1``) in the environment, or ``--quiet`` on any
    ``gvendi`` command.
    """
    global _PROGRESS_DISABLED
    _PROGRESS_DISABLED = True
    for _, disable, _ in _library_switches():
        disable()


def enable_progress_bars() -> None:
    """Turn progress bars back on (gvendi's and the libraries' that :func:`disable_progress_bars` turned off)."""
    global _PROGRESS_DISABLED
    _PROGRESS_DISABLED = False
    for _, _, enable in _library_switches():
        enable()


disable_progress_bar = disable_progress_bars  # the singular names of earlier releases
enable_progress_bar = enable_progress_bars


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """While gvendi's bars are off, keep the libraries' bars (model loading, dataset reading) off too."""
    if not progress_bars_disabled():
        yield
        return
    switches = [(enabled(), disable, enable) for enabled, disable, enable in _library_switches()]
    for _, disable, _ in switches:
        disable()
    try:
        yield
    finally:
        for was_enabled, _, enable in switches:
            if was_enabled:
                enable()


def _line_bar_class():
    from tqdm import tqdm as std_tqdm

    class LineBar(std_tqdm):
        """A tqdm bar for logs: a full line every ``LINE_INTERVAL_S`` seconds and at the end, never a ``\\r``."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("mininterval", LINE_INTERVAL_S)
            kwargs.setdefault("ascii", True)
            self._last_line = -1.0
            self._last_n = None
            super().__init__(*args, **kwargs)

        def display(self, msg=None, pos=None, force=False):
            if msg == "":  # tqdm clearing the bar: a log keeps its lines
                return False
            now = time.monotonic()
            if not force and self._last_line >= 0 and now - self._last_line < LINE_INTERVAL_S:
                return True
            self._last_line = now
            self._last_n = self.n
            self.fp.write((msg if msg is not None else self.__str__()).strip() + "\n")
            self.fp.flush()
            return True

        def close(self):
            if not self.disable and self._last_line >= 0:
                if self._last_n != self.n:
                    self.display(force=True)  # the final count, once
                self.leave = False  # (tqdm's own final redraw would repeat it)
            super().close()

    return LineBar


def progress_bar(iterable=None, *, disable: bool = False, **kwargs):
    """A tqdm bar that respects :func:`disable_progress_bars` and its environment variables.

    On a terminal it is tqdm's bar; when the output is not a terminal (a log file, a CI log) it prints a plain line
    every ``GVENDI_PROGRESS_INTERVAL`` seconds (default 30) and one when it finishes.
    """
    disable = disable or progress_bars_disabled()
    stream = kwargs.get("file") or sys.stderr
    interactive = bool(getattr(stream, "isatty", lambda: False)()) or "ipykernel" in sys.modules
    if interactive or disable:
        from tqdm.auto import tqdm

        return tqdm(iterable, disable=disable, **kwargs)
    return _line_bar_class()(iterable, **kwargs)


def resolve_device(device=None):
    """The given device, else the first CUDA GPU when present, else the CPU.

    Raises:
        ValueError: a CUDA device was asked for and this torch has no usable CUDA (CPU-only build, no GPU), or the
            device string is not one torch knows.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"unknown device {device!r} ({err}); use 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch is a CPU-only build" if torch.version.cuda is None else "none is visible"
            raise ValueError(
                f"device {device!r} asks for a CUDA GPU, but {why}; use 'cpu' (or no device, to pick one "
                "automatically)."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible (cuda:0 …)."
            )
    elif resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r}: MPS is not available here; use 'cpu'.")
    elif resolved.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"device {device!r} is not supported by gvendi: use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return resolved


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from the parts' text (the same on every machine, unlike ``hash``)."""
    import hashlib

    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def atomic_write(
    path: str | os.PathLike, data: str | bytes | Callable[[BinaryIO], object], *, fsync: bool = True
) -> None:
    """Write ``path`` so that a reader never sees half a file: into a temporary file beside it (``.NAME.PID.tmp``),
    then ``fsync`` and ``os.replace`` over the target.

    Args:
        path: the file to write (its folder is created when missing).
        data: text (written as UTF-8), bytes, or a callable that writes into the open binary handle
            (``lambda handle: np.save(handle, array)``).
        fsync (`bool`, *optional*, defaults to `True`): flush the file to disk before the rename.

    Raises:
        OSError: the file cannot be written; the temporary file is removed and the target is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
    retry_after: float | None = None,
    retry_after_max: float = 120.0,
) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0): the one backoff rule.

    Exponential, ``min(cap, base · 2**attempt)``; with ``rng``, "full jitter" (uniform in ``[0, that]``, so many
    clients retrying together spread out). A server's ``Retry-After`` wins when given: ``min(retry_after,
    retry_after_max)``, plus a jitter of up to ``base`` seconds when ``rng`` is given.
    """
    if retry_after is not None:
        return min(retry_after, retry_after_max) + (rng.uniform(0, base) if rng is not None else 0.0)
    ceiling = min(cap, base * 2**attempt)
    return rng.uniform(0, ceiling) if rng is not None else ceiling


def fast_bf16(device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively (CUDA with bf16, a CPU with AVX512-BF16/AMX through
    oneDNN), so that a bf16 GEMM is faster than a float32 one."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False
