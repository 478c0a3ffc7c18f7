"""Loading the proxy model and turning (prompt, completion) pairs into masked token sequences.

The paper's proxy is ``Qwen/Qwen2.5-0.5B-Instruct`` in bf16, eval mode. A chat proxy sees a user turn (the prompt)
and an assistant turn (the completion); every token up to and including the assistant header is masked from the
loss (label -100), so the loss is the mean over completion tokens, the template's closing tokens included. A proxy
without a chat template sees ``prompt + completion + eos`` with the prompt masked.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigFieldError
from .utils import quiet_libraries, resolve_device

__all__ = [
    "DEFAULT_PROXY",
    "DEFAULT_PROXY_CONFIG",
    "EncodedExample",
    "LoadedProxy",
    "encode_chat",
    "encode_pair",
    "load_proxy",
    "load_tokenizer",
    "proxy_identity",
    "random_proxy_like_default",
    "resolve_proxy_path",
]

DEFAULT_PROXY = "Qwen/Qwen2.5-0.5B-Instruct"
IGNORE_INDEX = -100

#: the architecture of :data:`DEFAULT_PROXY` (its ``config.json`` values: 494M parameters, tied embeddings), for
#: building a randomly initialised model of the real shape offline (benchmarks, real-width tests)
DEFAULT_PROXY_CONFIG = {
    "vocab_size": 151_936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}


@dataclass
class LoadedProxy:
    """A proxy model with its tokenizer and a record of what it is (id, revision, content digest)."""

    model: Any
    tokenizer: Any
    name: str
    revision: str | None
    digest: str
    info: dict[str, Any] = field(default_factory=dict)


def _digest_files(path: Path) -> str:
    """A content identity of a local model folder: names, sizes and the hash of small files (config, tokenizer)."""
    h = hashlib.blake2b(digest_size=12)
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        h.update(f"{file.relative_to(path)}:{stat.st_size}".encode())
        if stat.st_size <= 1 << 20:
            h.update(file.read_bytes())
        else:  # large weights: sample the head and tail instead of reading gigabytes
            with open(file, "rb") as handle:
                h.update(handle.read(1 << 16))
                handle.seek(-(1 << 16), os.SEEK_END)
                h.update(handle.read())
    return h.hexdigest()


def _digest_model(model: torch.nn.Module) -> str:
    """A content identity of an in-memory model: a hash of its parameters' bytes."""
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def resolve_proxy_path(proxy: str) -> str:
    """Where a proxy named by a string loads from: ``"tiny"`` is the bundled demo proxy's folder; anything else (a Hub
    id, a folder) as given."""
    if proxy == "tiny":
        from .data import TINY_PROXY_PATH

        return str(TINY_PROXY_PATH)
    return proxy


def load_proxy(
    proxy: Any = DEFAULT_PROXY,
    *,
    tokenizer: Any = None,
    revision: str | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
) -> LoadedProxy:
    """Load a proxy causal LM and its tokenizer, in eval mode.

    Args:
        proxy: a Hub id, a local folder, ``"tiny"`` (the bundled demo proxy) or an already loaded model.
        tokenizer: the tokenizer, required when ``proxy`` is a model object; loaded with the model otherwise.
        revision (`str`, *optional*): Hub revision (branch, tag or commit).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``…; the first GPU when omitted and available.
        dtype: ``"bfloat16"``, ``"float32"``, …; bf16 on GPU (as in the paper), float32 on CPU when omitted.

    Raises:
        ValueError: an unknown or uncached proxy (offline), or a model object without a tokenizer.
    """
    target_device = resolve_device(device)
    dtype = resolve_dtype(dtype, target_device)

    if isinstance(proxy, torch.nn.Module):
        if tokenizer is None:
            raise ValueError(
                "proxy is a model object, so its tokenizer must be passed too: "
                "GradientFeaturizer(model, tokenizer=tokenizer)."
            )
        model = proxy
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        commit = getattr(getattr(model, "config", None), "_commit_hash", None)
        model.eval()
        return LoadedProxy(model, tokenizer, name, revision or commit, _digest_model(model))

    source = _ProxySource.of(proxy, revision)
    from transformers import AutoModelForCausalLM

    if source.local:
        _check_local_weights(Path(source.name))
    tok = tokenizer if tokenizer is not None else load_tokenizer(proxy, revision=revision)
    with quiet_libraries():
        try:
            # safetensors only: a pickled checkpoint can run code when it is loaded
            model = AutoModelForCausalLM.from_pretrained(
                source.name, dtype=dtype, use_safetensors=True, **source.kwargs
            )
        except (OSError, ValueError) as err:
            raise ConfigFieldError("proxy", proxy, source.error(err)) from None
    model.to(target_device)
    model.eval()
    commit = getattr(model.config, "_commit_hash", None)
    return LoadedProxy(model, tok, source.display, revision or commit, source.digest(commit))


@dataclass
class _ProxySource:
    """Where a proxy named by a string comes from, checked before anything loads: a folder (that must exist) or a
    Hub id (loaded from the cache only when the Hub cannot be reached, so that it fails in seconds)."""

    proxy: str
    name: str
    local: bool
    kwargs: dict[str, Any]

    @classmethod
    def of(cls, proxy: Any, revision: str | None) -> _ProxySource:
        if not isinstance(proxy, (str, os.PathLike)):
            raise TypeError(
                f"proxy must be a Hub id, a local path, 'tiny' or a model object; got {type(proxy).__name__}."
            )
        name = resolve_proxy_path(str(proxy))
        local = Path(name).expanduser().is_dir()
        if not local and _looks_like_path(name):
            raise ValueError(
                f"the proxy folder {str(proxy)!r} does not exist (checked {Path(name).expanduser().resolve()}); pass "
                "the folder that holds the model's config.json and weights, a Hub id, or 'tiny' (the bundled demo "
                "proxy)."
            )
        kwargs: dict[str, Any] = {"revision": revision}
        if local:
            name = str(Path(name).expanduser())
        elif not _hub_offline() and not _cached(name, revision) and not _hub_reachable():
            kwargs["local_files_only"] = True  # no network: fail now instead of a minute of retries
        return cls(str(proxy), name, local, kwargs)

    @property
    def display(self) -> str:
        return "tiny" if self.proxy == "tiny" else self.proxy

    def digest(self, commit: str | None) -> str:
        """The proxy's content identity: a digest of a folder's files, or ``id@revision`` of a Hub model."""
        if self.local:
            return _digest_files(Path(self.name))
        return f"{self.name}@{self.kwargs['revision'] or commit or 'main'}"

    def commit(self) -> str | None:
        """The Hub commit the proxy resolves to (from the cache, or one request), without loading the model."""
        if self.local:
            return None
        try:
            from transformers.utils.hub import cached_file, extract_commit_hash

            path = cached_file(self.name, "config.json", **self.kwargs)
            return extract_commit_hash(path, None)
        except (OSError, ValueError) as err:
            raise ConfigFieldError("proxy", self.proxy, self.error(err)) from None

    def error(self, err: Exception) -> str:
        return _load_error(self.proxy, self.name, self.local, err, no_network="local_files_only" in self.kwargs)


def load_tokenizer(proxy: Any, *, revision: str | None = None) -> Any:
    """The tokenizer of a proxy named by a Hub id, a folder or ``"tiny"`` (same errors as :func:`load_proxy`)."""
    from transformers import AutoTokenizer

    source = _ProxySource.of(proxy, revision)
    with quiet_libraries():
        try:
            return AutoTokenizer.from_pretrained(source.name, **source.kwargs)
        except (OSError, ValueError) as err:
            raise ConfigFieldError("proxy", proxy, source.error(err)) from None


def proxy_identity(proxy: Any, *, revision: str | None = None) -> tuple[str, str | None, str]:
    """(name, revision, digest) of a proxy named by a string, as :func:`load_proxy` records them, without loading
    the model: a folder's digest reads its files; a Hub id resolves its commit from the cache (or one request)."""
    source = _ProxySource.of(proxy, revision)
    if source.local:  # refuse pickled weights when the featurizer is built, not at its first batch
        _check_local_weights(Path(source.name))
    commit = source.commit()
    return source.display, revision or commit, source.digest(commit)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The proxy's precision: as given (``"bfloat16"``, ``torch.float32`` …), else bf16 on GPU and fp32 on CPU."""
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}: use e.g. 'float32', 'bfloat16' or 'float16'.")
        return getattr(torch, dtype)
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a string such as 'bfloat16' or a torch.dtype, got {type(dtype).__name__}.")
    return dtype


def _looks_like_path(name: str) -> bool:
    """A Hub id is ``name`` or ``org/name``; anything starting like a path, or deeper, is meant as a folder."""
    return (
        name.startswith(("/", "./", "../", "~", ".\\")) or name.count("/") > 1 or "\\" in name or name in {".", ".."}
    )


def _hub_offline() -> bool:
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _cached(name: str, revision: str | None) -> bool:
    """Whether the model's config is in the local Hugging Face cache (then loading needs no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json", revision=revision), str)
    except Exception:
        return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection to the Hub endpoint, a few seconds at most (behind an HTTP(S) proxy: assume reachable)."""
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_error(proxy: str, name: str, local: bool, err: Exception, *, no_network: bool) -> str:
    """One message for a proxy that did not load: why, then how to get it."""
    if local:
        return (
            f"could not load the proxy folder {proxy!r}: {str(err).splitlines()[0]}. It needs a config.json, "
            "weights and a tokenizer, as written by save_pretrained."
        )
    if _hub_offline():
        why = "it is not in the local Hugging Face cache and HF_HUB_OFFLINE=1"
    elif no_network:
        why = "the Hugging Face Hub cannot be reached (no network) and it is not in the local cache"
    else:
        why = str(err).splitlines()[0]
    return (
        f"could not load the proxy {proxy!r}: {why}. Check the id for typos, or download it on a machine with "
        f"network (`hf download {name}`, then copy the cache or pass {{proxy=/path/to/model}}), or use the bundled "
        "demo proxy ({proxy=tiny})."
    )


def _check_local_weights(folder: Path) -> None:
    """Refuse a proxy folder whose weights are pickles only (``pytorch_model.bin``): unpickling can run code."""
    if any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
    if pickled:
        raise ValueError(
            f"proxy folder {str(folder)!r} holds pickled weights only ({', '.join(pickled[:3])}); gvendi loads "
            "safetensors only, because unpickling a file can run code. Convert it where you trust the file: "
            "AutoModelForCausalLM.from_pretrained(folder).save_pretrained(folder) writes model.safetensors."
        )
    raise ValueError(
        f"proxy folder {str(folder)!r} holds no model weights (*.safetensors); pass a folder written by "
        "save_pretrained, a Hub id, or 'tiny'."
    )


def context_length(model: Any) -> int | None:
    """The proxy's context window in tokens (``max_position_embeddings``), when its config states one."""
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


@dataclass
class EncodedExample:
    """Token ids and loss labels (-100 where masked) of one example."""

    input_ids: list[int]
    labels: list[int]


def _check_text(value: Any, field_name: str, row: int) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"row {row}: field {field_name!r} must be a string, got {type(value).__name__} ({str(value)[:60]!r}); "
            "convert it to text or drop the row."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"row {row}: field {field_name!r} holds {value[err.start : err.end]!r} at character {err.start}, a lone "
            "surrogate that is not valid Unicode text (a mis-decoded file?); fix or drop the row."
        ) from None
    return value


def _as_ids(encoded: Any) -> list[int]:
    if hasattr(encoded, "keys") and "input_ids" in encoded:
        encoded = encoded["input_ids"]
    if hasattr(encoded, "tolist"):
        encoded = encoded.tolist()
    return list(encoded)


def _template(tokenizer: Any, messages: list[dict], *, add_generation_prompt: bool) -> list[int]:
    return _as_ids(tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt))


def encode_chat(tokenizer: Any, messages: Sequence[dict], *, row: int) -> EncodedExample:
    """Encode a conversation; the loss covers every assistant turn (header excluded, closing tokens included)."""
    if not messages or not isinstance(messages, (list, tuple)):
        raise ValueError(f"row {row}: messages must be a non-empty list of {{'role', 'content'}} dicts.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TypeError(
                f"row {row}: messages[{i}] is a {type(message).__name__}, not a {{'role', 'content'}} dict."
            )
        for key in ("role", "content"):
            if key not in message or message[key] is None:
                raise ValueError(f"row {row}: messages[{i}] has no {key!r}; every message needs 'role' and 'content'.")
            _check_text(message[key], f"messages[{i}].{key}", row)
    messages = [dict(m) for m in messages]
    if not any(m.get("role") == "assistant" for m in messages):
        raise ValueError(f"row {row}: the conversation has no assistant turn, so there is no completion to score.")
    if messages[0].get("role") == "assistant":
        raise ValueError(
            f"row {row}: messages[0] is an assistant turn with no prompt before it; start the conversation with a "
            "user (or system) turn."
        )
    full = _template(tokenizer, messages, add_generation_prompt=False)
    labels = [IGNORE_INDEX] * len(full)
    for i, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        _check_text(message.get("content"), f"messages[{i}].content", row)
        if not message["content"].strip():
            raise ValueError(f"row {row}: assistant turn {i} is empty; every completion needs at least one token.")
        start = len(_template(tokenizer, messages[:i], add_generation_prompt=True))
        stop = len(_template(tokenizer, messages[: i + 1], add_generation_prompt=False))
        labels[start:stop] = full[start:stop]
    return EncodedExample(full, labels)


def encode_pair(
    tokenizer: Any,
    prompt: Any,
    completion: Any,
    *,
    row: int,
    use_chat_template: bool,
    fields: tuple[str, str] = ("prompt", "completion"),
) -> EncodedExample:
    """Encode one (prompt, completion) pair with the prompt masked from the loss."""
    prompt = _check_text(prompt, fields[0], row)
    completion = _check_text(completion, fields[1], row)
    if not completion.strip():
        raise ValueError(
            f"row {row}: field {fields[1]!r} is empty; G-Vendi is the gradient of the completion's loss, so every "
            "row needs a non-empty completion (drop or fill that row)."
        )
    if use_chat_template:
        return encode_chat(
            tokenizer, [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], row=row
        )
    prompt_ids = _as_ids(tokenizer(prompt, add_special_tokens=True))
    completion_ids = _as_ids(tokenizer(completion, add_special_tokens=False))
    if tokenizer.eos_token_id is not None:
        completion_ids.append(tokenizer.eos_token_id)
    return EncodedExample(prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids)


def truncate(example: EncodedExample, max_length: int | None, *, row: int) -> EncodedExample:
    """Cut to ``max_length`` tokens from the right; refuse when no completion token survives."""
    if max_length is not None and len(example.input_ids) > max_length:
        example = EncodedExample(example.input_ids[:max_length], example.labels[:max_length])
    # position 0 is never predicted (labels shift by one), so a label there does not count
    if not any(label != IGNORE_INDEX for label in example.labels[1:]):
        raise ValueError(
            f"row {row}: no completion token is left to score (the completion was truncated away by "
            f"max_length={max_length} or is fully masked); raise max_length or shorten the prompt."
        )
    return example


def random_proxy_like_default(*, seed: int = 0, dtype: torch.dtype | None = None, **overrides: Any) -> torch.nn.Module:
    """A randomly initialised Qwen2 with :data:`DEFAULT_PROXY_CONFIG`'s shape, in eval mode; nothing is downloaded.

    ``overrides`` replace config values, e.g. ``num_hidden_layers=1`` for a CPU-sized model with the real widths and
    vocabulary, or ``vocab_size=8192`` for an exact reference that must fit in memory.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    unknown = set(overrides) - set(DEFAULT_PROXY_CONFIG)
    if unknown:
        raise TypeError(f"random_proxy_like_default: unknown config keys {sorted(unknown)}")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**{**DEFAULT_PROXY_CONFIG, **overrides}))
    return (model if dtype is None else model.to(dtype)).eval()
