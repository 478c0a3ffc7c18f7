"""Write the files of a published run, and push a folder to the Hub in one commit.

The same folder is used for ``--dry-run`` and for a push: ``data/train-XXXXX-of-YYYYY.parquet`` shards and a
``README.md`` dataset card. A push creates the repository if needed, compares every file's hash with the remote
copy, and sends the changes (new or changed files, plus stale shards to delete) as ONE ``create_commit``; when
nothing changed it makes no commit at all. Transient failures (HTTP 408/429/5xx, connection errors, timeouts) are
retried with bounded exponential backoff. The token comes from the ``token`` argument, ``HF_TOKEN`` or the login
cache, and is scrubbed from every message gvendi logs or raises.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import datasets

from ..utils import atomic_write, backoff_delay, progress_bar, sha256_file
from .card import build_dataset_card, check_license, check_repo_id
from .run_folder import PublishableRun, build_dataset, read_run

logger = logging.getLogger(__name__)

__all__ = [
    "HubPublishError",
    "PushResult",
    "commit_folder",
    "push_run",
    "resolve_token",
    "write_publish_folder",
]

DEFAULT_MAX_SHARD_SIZE = 500 * 1024 * 1024
"""Bytes of Arrow data per parquet shard (the ``datasets.push_to_hub`` default, 500 MB)."""
TRANSIENT_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying."""
_MANAGED_FOLDER = "data/"
_ALLOWED_IN_OUT_DIR = re.compile(r"^(README\.md|data/train-\d{5}-of-\d{5}\.parquet)$")
_TOKEN_PATTERN = re.compile(r"\b(hf_[A-Za-z0-9]{6,}|api_org_[A-Za-z0-9]{6,})\b")
_BEARER_PATTERN = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)

T = TypeVar("T")


class HubPublishError(RuntimeError):
    """A Hub call failed for good (after retries, or with a non-transient error). The message holds no token."""


@dataclass
class PushResult:
    """What a push (or a dry run) did.

    Attributes:
        repo_id (`str`): ``ORG/NAME``.
        repo_type (`str`): ``"dataset"`` or ``"space"``.
        revision (`str`): the branch pushed to.
        files (`list[str]`): the files of the published folder, relative paths.
        changed (`bool`): ``True`` when a commit was made; ``False`` when the remote already matched (or dry run).
        commit (`str`, *optional*): the head commit after the push; ``None`` for a dry run.
        url (`str`, *optional*): the repository URL; ``None`` for a dry run.
        folder (`Path`, *optional*): the dry-run folder.
        uploaded (`list[str]`): files sent in the commit; ``deleted``: stale files removed by it.
        num_generated_rows (`int`, *optional*): generated (non-seed) rows published (``push_run``); 0 means the run
            kept nothing it generated.
    """

    repo_id: str
    repo_type: str
    revision: str
    files: list[str]
    changed: bool
    commit: str | None = None
    url: str | None = None
    num_generated_rows: int | None = None
    folder: Path | None = None
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def dry_run(self) -> bool:
        """Whether this was a dry run (files written, nothing sent)."""
        return self.folder is not None and self.commit is None


# --------------------------------------------------------------------------------------------------- tokens, errors
def resolve_token(token: str | None = None) -> str:
    """The token to push with: ``token`` if given, else ``HF_TOKEN``, else the login cache (``hf auth login``).

    Raises:
        ValueError: when no token is found (the message says how to provide one).
    """
    if token is None:
        from huggingface_hub import get_token

        token = get_token()
    if not token or not str(token).strip():
        raise ValueError(
            "no Hugging Face token found: set the HF_TOKEN environment variable or run `hf auth login` with a token "
            "that has write access to the target organization (nothing was uploaded)."
        )
    return str(token).strip()


def check_online() -> None:
    """Raise a clear error when ``HF_HUB_OFFLINE`` is set (``huggingface_hub`` would refuse every request)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ValueError(
            "HF_HUB_OFFLINE is set, so huggingface_hub refuses every request: unset it to push, or use --dry-run "
            "(nothing was uploaded)."
        )


def scrub(text: str, token: str | None = None) -> str:
    """``text`` with the token, any ``hf_…`` token and any ``Bearer …`` credential replaced by ``***``."""
    if token:
        text = text.replace(token, "***")
    text = _TOKEN_PATTERN.sub("***", text)
    return _BEARER_PATTERN.sub(r"\1***", text)


def _status_code(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level exception types of whichever HTTP stack ``huggingface_hub`` uses."""
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        types.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(types)


def _is_transient(err: BaseException) -> bool:
    status = _status_code(err)
    if status is not None:
        return status in TRANSIENT_STATUS_CODES
    return isinstance(err, _transport_errors())


def _describe(err: BaseException) -> str:
    status = _status_code(err)
    first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if status is not None:
        server_message = getattr(err, "server_message", None)
        detail = server_message.strip() if isinstance(server_message, str) and server_message.strip() else first_line
        return f"HTTP {status}: {detail}"
    return f"{type(err).__name__}: {first_line}"


def _with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    token: str | None,
    max_retries: int,
    base_wait: float,
    max_wait: float = 30.0,
) -> T:
    """Run ``fn``, retrying transient failures; raise a scrubbed :class:`HubPublishError` otherwise."""
    message = ""
    for attempt in range(max_retries + 1):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - every failure becomes a scrubbed HubPublishError below
            message = scrub(f"{what} failed: {_describe(err)}", token)
            if not _is_transient(err) or attempt == max_retries:
                if _is_transient(err):
                    message += f" (gave up after {max_retries + 1} attempts)"
                break
            wait = backoff_delay(attempt, base=base_wait, cap=max_wait)
            logger.warning("%s; retrying in %.1fs (attempt %d of %d)", message, wait, attempt + 2, max_retries + 1)
        time.sleep(wait)
    # Raised outside the `except` block on purpose: the original exception (whose text may echo request details)
    # is neither chained nor attached as context.
    raise HubPublishError(message)


# --------------------------------------------------------------------------------------------------- the folder
def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"dry-run folder {str(out_dir)!r} exists and is not a folder.")
    if out_dir.is_dir():
        foreign = [
            p.relative_to(out_dir).as_posix()
            for p in sorted(out_dir.rglob("*"))
            if p.is_file() and not _ALLOWED_IN_OUT_DIR.match(p.relative_to(out_dir).as_posix())
        ]
        if foreign:
            raise ValueError(
                f"dry-run folder {str(out_dir)!r} already holds other files ({', '.join(foreign[:5])}); "
                "use an empty or new folder (gvendi only overwrites README.md and data/train-*.parquet there)."
            )


def write_publish_folder(
    run: str | Path | PublishableRun,
    out_dir: str | Path,
    *,
    repo_id: str,
    license: str,
    pretty_name: str | None = None,
    task: str | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
) -> list[str]:
    """Write exactly the files a push of ``run`` would upload: parquet shards under ``data/`` and ``README.md``.

    The folder loads with ``datasets.load_dataset(out_dir)`` and its README parses as a ``DatasetCard``. Writing
    the same run twice gives byte-identical files. An existing folder may only hold files gvendi writes (they are
    replaced).

    Args:
        run (`str`, `Path` or [`PublishableRun`]): the run folder.
        out_dir (`str` or `Path`): where to write.
        repo_id (`str`): ``ORG/NAME`` the card names.
        license (`str`): the Hub license id (required).
        pretty_name (`str`, *optional*): the card's display name (``PrismMath``/``PrismNLI`` by default).
        task (`str`, *optional*): the task the caller expects; ``None`` accepts either.
        max_shard_size (`int`, *optional*): bytes of Arrow data per parquet shard.

    Returns:
        `list[str]`: the written files, relative to ``out_dir`` (POSIX paths), sorted.

    Raises:
        ValueError: bad repo id, missing license, a run :func:`read_run` refuses, or a folder holding other files.
    """
    repo_id = check_repo_id(repo_id)
    license = check_license(license)
    if not isinstance(run, PublishableRun):
        run = read_run(run, task=task)
    elif task is not None and run.task != task:
        raise ValueError(f"{run.run_dir} is a {run.task!r} run, not a {task!r} run.")
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)

    dataset = build_dataset(run)
    num_shards = max(1, math.ceil(dataset.data.nbytes / max_shard_size))
    data_dir = out_dir / "data"
    if data_dir.is_dir():
        for stale in data_dir.glob("train-*.parquet"):
            stale.unlink()
    data_dir.mkdir(parents=True, exist_ok=True)
    written = []
    datasets_bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per shard (ours) instead of one per Arrow batch
    try:
        for index in progress_bar(range(num_shards), desc="Writing parquet shards", unit="shard"):
            name = f"data/train-{index:05d}-of-{num_shards:05d}.parquet"
            shard = dataset.shard(num_shards=num_shards, index=index, contiguous=True)
            shard.to_parquet(str(out_dir / name))
            written.append(name)
    finally:
        if datasets_bars:
            datasets.enable_progress_bars()
    download_size = sum((out_dir / name).stat().st_size for name in written)
    card = build_dataset_card(
        run, repo_id=repo_id, license=license, pretty_name=pretty_name, dataset=dataset, download_size=download_size
    )
    atomic_write(out_dir / "README.md", str(card))
    logger.info("wrote %d parquet shard(s) and README.md (%d rows) to %s", num_shards, len(dataset), out_dir)
    return sorted([*written, "README.md"])


# --------------------------------------------------------------------------------------------------- pushing
def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_as_remote(local: Path, remote: Any) -> bool:
    """Whether a local file equals a remote ``RepoFile`` (LFS/Xet files by SHA-256, regular ones by git blob id)."""
    if remote.size is not None and remote.size != local.stat().st_size:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_file(local)
    return remote.blob_id == _git_blob_sha1(local)


def commit_folder(
    folder: str | Path,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload with gvendi",
    commit_description: str | None = None,
    managed_prefixes: tuple[str, ...] = (_MANAGED_FOLDER,),
    space_sdk: str | None = None,
    max_retries: int = 5,
    base_wait: float = 1.0,
) -> PushResult:
    """Make the repository hold ``folder``'s files, in one commit, or in none when it already does.

    Steps: create the repository (``exist_ok``) and the branch ``revision`` if it is not ``main``; list the remote
    files; add every local file whose hash differs from the remote copy, and delete remote files under
    ``managed_prefixes`` that the folder no longer has (stale shards); send it all as one ``create_commit`` pinned
    to the head it was computed against. Each Hub call is retried on transient errors; a commit retry recomputes
    the difference first, so a commit that landed but whose answer was lost is not repeated.

    Args:
        folder (`str` or `Path`): the files to publish.
        repo_id (`str`): ``ORG/NAME``.
        repo_type (`str`, *optional*, defaults to ``"dataset"``): ``"dataset"``, ``"space"`` or ``"model"``.
        token (`str`, *optional*): defaults to ``HF_TOKEN`` or the login cache.
        private (`bool`, *optional*): create the repository private (ignored when it exists).
        revision (`str`, *optional*): the branch to push to; created from ``main`` when missing.
        commit_message (`str`, *optional*): the commit title.
        commit_description (`str`, *optional*): the commit body.
        managed_prefixes (`tuple[str, ...]`, *optional*): remote folders this push owns (stale files deleted).
        space_sdk (`str`, *optional*): the Space SDK when creating a Space.
        max_retries (`int`, *optional*, defaults to 5): retries per Hub call after the first attempt.
        base_wait (`float`, *optional*, defaults to 1.0): seconds before the first retry, doubled each time.

    Returns:
        [`PushResult`]

    Raises:
        ValueError: bad repo id, no token, or an empty folder.
        HubPublishError: a Hub call failed for good; its message never contains the token.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.hf_api import RepoFile

    from .. import __version__

    repo_id = check_repo_id(repo_id)
    folder = Path(folder)
    local = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    if not local:
        raise ValueError(f"{folder} holds no files to push.")
    check_online()
    token = resolve_token(token)
    branch = revision or "main"
    api = HfApi(token=token, library_name="gvendi", library_version=__version__)
    retry = {"token": token, "max_retries": max_retries, "base_wait": base_wait}

    repo_url = _with_retries(
        lambda: api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, space_sdk=space_sdk),
        what=f"creating {repo_type} repository {repo_id}",
        **retry,
    )
    if branch != "main":
        _with_retries(
            lambda: api.create_branch(repo_id, branch=branch, repo_type=repo_type, exist_ok=True),
            what=f"creating branch {branch!r} of {repo_id}",
            **retry,
        )

    outcome: dict[str, Any] = {}

    def diff_and_commit() -> str:
        head = api.repo_info(repo_id, repo_type=repo_type, revision=branch).sha
        remote = {
            entry.path: entry
            for entry in api.list_repo_tree(repo_id, repo_type=repo_type, revision=branch, recursive=True)
            if isinstance(entry, RepoFile)
        }
        uploads = [
            path for path, file in local.items() if path not in remote or not _same_as_remote(file, remote[path])
        ]
        deletions = [
            path for path in remote if path not in local and any(path.startswith(p) for p in managed_prefixes)
        ]
        outcome.update(uploaded=uploads, deleted=deletions)
        if not uploads and not deletions:
            logger.info("%s@%s already holds these %d file(s); no commit made", repo_id, branch, len(local))
            outcome["changed"] = False
            return head
        operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local[path])) for path in uploads]
        operations += [CommitOperationDelete(path_in_repo=path) for path in deletions]
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message,
            commit_description=commit_description,
            repo_type=repo_type,
            revision=branch,
            parent_commit=head,
        )
        outcome["changed"] = True
        return info.oid

    commit = _with_retries(diff_and_commit, what=f"committing to {repo_id}@{branch}", **retry)
    result = PushResult(
        repo_id=repo_id,
        repo_type=repo_type,
        revision=branch,
        files=sorted(local),
        changed=outcome["changed"],
        commit=commit,
        url=str(repo_url),
        uploaded=outcome["uploaded"],
        deleted=outcome["deleted"],
    )
    if result.changed:
        logger.info(
            "pushed %d file(s) (%d deleted) to %s@%s in commit %s",
            len(result.uploaded),
            len(result.deleted),
            repo_id,
            branch,
            commit,
        )
    return result


def push_run(
    run_dir: str | Path,
    repo_id: str,
    *,
    license: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    dry_run_dir: str | Path | None = None,
    pretty_name: str | None = None,
    task: str | None = None,
    commit_message: str | None = None,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
    max_retries: int = 5,
    base_wait: float = 1.0,
) -> PushResult:
    """Publish a finished synthesis run as a Hub dataset (parquet shards + dataset card), in one commit.

    Everything that can be checked locally is checked before the first request: the repo id, the license, the
    run folder (complete, of the expected task, well-formed rows) and the token. With ``dry_run_dir`` the files
    are written there and nothing is sent (no token needed). Pushing the same run again makes no commit.

    Args:
        run_dir (`str` or `Path`): the run folder written by ``gvendi synthesize``.
        repo_id (`str`): ``ORG/NAME`` of the dataset repository.
        license (`str`): a Hub license id (``cc-by-4.0``, ``apache-2.0``, ``other``...). Required, no default.
        private (`bool`, *optional*): create the repository private (ignored if it exists).
        revision (`str`, *optional*): the branch to push to (created from ``main`` if missing).
        token (`str`, *optional*): defaults to ``HF_TOKEN`` or the login cache.
        dry_run_dir (`str` or `Path`, *optional*): write the files here instead of pushing.
        pretty_name (`str`, *optional*): the card's display name (``PrismMath``/``PrismNLI`` by default).
        task (`str`, *optional*): refuse runs of another task (``"math"`` or ``"nli"``).
        commit_message (`str`, *optional*): defaults to ``"Publish <pretty name> (<n> rows) with gvendi"``.
        max_shard_size (`int`, *optional*): bytes of Arrow data per parquet shard.
        max_retries (`int`, *optional*, defaults to 5): retries per Hub call on transient errors.
        base_wait (`float`, *optional*, defaults to 1.0): seconds before the first retry, doubled each time.

    Returns:
        [`PushResult`]

    Raises:
        ValueError: bad input (nothing was uploaded).
        HubPublishError: the Hub refused or kept failing; the message never contains the token.

    Example:
        >>> push_run("runs/math-0", "my-org/PrismMath", license="cc-by-4.0", dry_run_dir="out/")  # doctest: +SKIP
    """
    repo_id = check_repo_id(repo_id)
    license = check_license(license)
    run = read_run(run_dir, task=task)
    folder_args = {
        "repo_id": repo_id,
        "license": license,
        "pretty_name": pretty_name,
        "max_shard_size": max_shard_size,
    }
    if dry_run_dir is not None:
        files = write_publish_folder(run, dry_run_dir, **folder_args)
        return PushResult(
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision or "main",
            files=files,
            changed=False,
            folder=Path(dry_run_dir),
            num_generated_rows=run.num_generated_rows,
        )
    check_online()
    token = resolve_token(token)
    staging = Path(tempfile.mkdtemp(prefix="gvendi-push-"))
    try:
        write_publish_folder(run, staging, **folder_args)
        name = pretty_name or {"math": "PrismMath", "nli": "PrismNLI"}[run.task]
        result = commit_folder(
            staging,
            repo_id,
            repo_type="dataset",
            token=token,
            private=private,
            revision=revision,
            commit_message=commit_message or f"Publish {name} ({len(run.rows)} rows) with gvendi",
            max_retries=max_retries,
            base_wait=base_wait,
        )
        result.num_generated_rows = run.num_generated_rows
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)
