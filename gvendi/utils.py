"""Small shared helpers: the one progress-bar switch, devices, stable hashing."""

from __future__ import annotations

import hashlib
import os

import torch
from tqdm.auto import tqdm

_PROGRESS_DISABLED = os.environ.get("GVENDI_DISABLE_PROGRESS_BAR", "").lower() in {"1", "true", "yes"}


def disable_progress_bar() -> None:
    """Silence every gvendi progress bar (also: ``GVENDI_DISABLE_PROGRESS_BAR=1``)."""
    global _PROGRESS_DISABLED
    _PROGRESS_DISABLED = True


def enable_progress_bar() -> None:
    """Turn gvendi progress bars back on."""
    global _PROGRESS_DISABLED
    _PROGRESS_DISABLED = False


def progress_bar(iterable=None, *, disable: bool = False, **kwargs):
    """A tqdm bar that respects :func:`disable_progress_bar`."""
    return tqdm(iterable, disable=disable or _PROGRESS_DISABLED, **kwargs)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else the first CUDA GPU when present, else the CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} asks for a CUDA GPU, but torch sees none (torch.cuda.is_available() is False); "
                "use device='cpu' (or install a CUDA build of torch)."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible.")
    elif resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} asks for Apple's MPS, which this torch build cannot use; use 'cpu'.")
    elif resolved.type not in ("cpu", "cuda", "mps", "meta"):
        raise ValueError(f"device {device!r} is not supported by gvendi: use 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return resolved


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from the parts' text (the same on every machine, unlike ``hash``)."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)
