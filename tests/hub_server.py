"""A small Hub-compatible HTTP server on loopback, for tests that exercise the real ``huggingface_hub`` client.

It implements the few routes that ``HfApi.create_repo``, ``HfApi.create_commit`` (with every file sent inline, as a
"regular" git blob), ``HfApi.create_branch``, repo info, tree listing, ``paths-info``, file downloads and
``datasets.load_dataset`` use, as read from ``huggingface_hub`` 2.4 / ``datasets`` 5.2 and checked against the
requests they actually send. State lives in memory; nothing is written to disk and nothing leaves 127.0.0.1.

Example:
    >>> with LocalHub(token="hf_test") as hub:  # doctest: +SKIP
    ...     env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test"}  # run the client in a subprocess with env
    ...     hub.inject_failure("POST", "/commit/", status=500)  # the next commit answers 500 once

Faults: :meth:`LocalHub.inject_failure` makes the next matching request(s) answer a given status (500, 429...)
or drop the connection, before the route runs, so client retries can be tested. :attr:`LocalHub.requests` records
every request (method, path, status) and :meth:`LocalHub.commits` the commits of a repository's ``main``.

Clients: ``huggingface_hub`` reads ``HF_ENDPOINT``/``HF_HUB_OFFLINE`` at import and the test session is offline, so
:class:`HubClient` runs client code in one long-lived child process pointed at the server (imports paid once).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

_TYPE_FROM_API = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_EMPTY_TREE_OID = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def git_blob_oid(content: bytes) -> str:
    """The git blob SHA-1 of ``content`` (what the Hub reports as a regular file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, bytes]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)

    def resolve(self, revision: str) -> _Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.commits:
            return self.commits[revision]
        return None


@dataclass
class _Failure:
    method: str
    path_contains: str
    status: int
    times: int


class _HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.extra = extra or {}


class LocalHub:
    """An in-memory Hub on ``127.0.0.1`` and a random free port, served from a background thread.

    Args:
        token (`str`, *optional*):
            The only token accepted for writes (and for reading private repositories). ``None`` accepts any
            request, authenticated or not.
        user (`str`, *optional*, defaults to ``"gvendi-tester"``):
            The name ``/api/whoami-v2`` reports.
    """

    def __init__(self, token: str | None = None, user: str = "gvendi-tester"):
        self.token = token
        self.user = user
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """The endpoint to put in ``HF_ENDPOINT``, e.g. ``http://127.0.0.1:38211``."""
        if self._server is None:
            raise RuntimeError("LocalHub is not started; use `with LocalHub() as hub:` or call start().")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHub:
        """Bind a free loopback port and serve in a daemon thread."""
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------------- test helpers
    def inject_failure(self, method: str, path_contains: str, *, status: int = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests whose method and path match with ``status`` (before routing).

        ``status=0`` closes the connection without any answer (the client sees a transport error).
        """
        with self._lock:
            self._failures.append(_Failure(method.upper(), path_contains, status, times))

    def clear_failures(self) -> None:
        """Forget every injected failure not yet consumed."""
        with self._lock:
            self._failures.clear()

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[str]:
        """Commit oids of a repository's ``main`` history, oldest first (the initial empty commit included)."""
        return list(self.repos[(repo_type, repo_id)].history)

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """The files of a repository at a revision."""
        commit = self.repos[(repo_type, repo_id)].resolve(revision)
        if commit is None:
            raise KeyError(revision)
        return dict(commit.files)

    def _take_failure(self, method: str, path: str) -> int | None:
        with self._lock:
            for failure in self._failures:
                if failure.method == method and failure.path_contains in path and failure.times > 0:
                    failure.times -= 1
                    return failure.status
        return None

    # ----------------------------------------------------------------------------------------------- repo state
    def _new_commit(self, repo: _Repo, parent: str | None, title: str, files: dict[str, bytes]) -> _Commit:
        digest = hashlib.sha1()
        digest.update(f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n{len(repo.commits)}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}:{git_blob_oid(files[path])}\n".encode())
        commit = _Commit(oid=digest.hexdigest(), parent=parent, title=title, files=files)
        repo.commits[commit.oid] = commit
        return commit

    def _create_repo(self, repo_type: str, repo_id: str, private: bool, sdk: str | None) -> _Repo:
        repo = _Repo(repo_type=repo_type, repo_id=repo_id, private=private, sdk=sdk)
        initial = {".gitattributes": b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"}
        commit = self._new_commit(repo, None, "initial commit", initial)
        repo.branches["main"] = commit.oid
        repo.history.append(commit.oid)
        self.repos[(repo_type, repo_id)] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: LocalHub

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr logging
        pass

    # ----------------------------------------------------------------------------------------------- plumbing
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        self._status = status

    def _json(self, status: int, payload, headers: dict[str, str] | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _dispatch(self, method: str):
        self._status = 0
        split = urlsplit(self.path)
        raw_path, query = split.path, parse_qs(split.query)
        body = self._body() if method in {"POST", "PUT"} else b""
        try:
            injected = self.hub._take_failure(method, raw_path)
            if injected == 0:  # drop the connection without answering: a transport error on the client side
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            elif injected is not None:
                self._send(injected, json.dumps({"error": f"injected {injected}"}).encode(), head=method == "HEAD")
            else:
                self._route(method, raw_path, query, body)
        except _HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.error_code:
                headers["X-Error-Code"] = err.error_code
            payload = {"error": err.message, **err.extra}
            self._send(err.status, json.dumps(payload).encode(), headers, head=method == "HEAD")
        except Exception as err:  # pragma: no cover - a server bug should surface as a 500, not hang the client
            self._send(500, json.dumps({"error": f"server bug: {type(err).__name__}: {err}"}).encode())
        finally:
            with self.hub._lock:
                self.hub.requests.append((method, raw_path, self._status))

    # ----------------------------------------------------------------------------------------------- auth, lookup
    def _authorized(self) -> bool:
        if self.hub.token is None:
            return True
        return self.headers.get("Authorization", "") == f"Bearer {self.hub.token}"

    def _require_write(self):
        if not self._authorized():
            raise _HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._authorized()):
            raise _HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _commit(self, repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ----------------------------------------------------------------------------------------------- routing
    def _route(self, method: str, path: str, query: dict, body: bytes):
        parts = path.strip("/").split("/")
        if path == "/api/whoami-v2" and method == "GET":
            if not self._authorized() or "Authorization" not in self.headers:
                raise _HubError(401, "Invalid credentials in Authorization header")
            return self._json(200, {"type": "user", "name": self.hub.user, "auth": {"type": "access_token"}})
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if path == "/api/validate-yaml" and method == "POST":
            return self._json(200, {"errors": [], "warnings": []})
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in _TYPE_FROM_API:
            repo_type, repo_id = _TYPE_FROM_API[parts[1]], f"{unquote(parts[2])}/{unquote(parts[3])}"
            rest = parts[4:]
            if not rest and method == "GET":
                return self._repo_info(repo_type, repo_id, "main")
            action = rest[0] if rest else ""
            revision = unquote(rest[1]) if len(rest) > 1 else "main"
            tail = unquote("/".join(rest[2:]))
            if action == "revision" and method == "GET":
                return self._repo_info(repo_type, repo_id, revision)
            if action == "preupload" and method == "POST":
                return self._preupload(repo_type, repo_id, revision, json.loads(body))
            if action == "commit" and method == "POST":
                return self._commit_route(repo_type, repo_id, revision, body, query)
            if action == "paths-info" and method == "POST":
                return self._paths_info(repo_type, repo_id, revision, parse_qs(body.decode()))
            if action == "tree" and method == "GET":
                recursive = query.get("recursive", ["false"])[0].lower() in {"1", "true"}
                return self._tree(repo_type, repo_id, revision, tail, recursive)
            if action == "branch" and method == "POST":
                return self._create_branch(repo_type, repo_id, revision, json.loads(body or b"{}"))
            if action == "refs" and method == "GET":
                repo = self._repo(repo_type, repo_id)
                branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": o} for b, o in repo.branches.items()]
                return self._json(200, {"branches": branches, "tags": [], "converts": []})
        resolve = self._parse_resolve(parts)
        if resolve is not None and method in {"GET", "HEAD"}:
            return self._resolve(method, *resolve)
        raise _HubError(404, f"no route for {method} {path}")

    def _parse_resolve(self, parts: list[str]) -> tuple[str, str, str, str] | None:
        if parts and parts[0] in {"datasets", "spaces"}:
            repo_type, parts = _TYPE_FROM_API[parts[0]], parts[1:]
        else:
            repo_type = "model"
        if len(parts) >= 5 and parts[2] == "resolve":
            return (
                repo_type,
                f"{unquote(parts[0])}/{unquote(parts[1])}",
                unquote(parts[3]),
                unquote("/".join(parts[4:])),
            )
        return None

    # ----------------------------------------------------------------------------------------------- routes
    def _create_repo(self, payload: dict):
        self._require_write()
        repo_type = payload.get("type") or "model"
        if payload.get("organization") is None:
            repo_id = f"{self.hub.user}/{payload['name']}"
        else:
            repo_id = f"{payload['organization']}/{payload['name']}"
        prefix = _URL_PREFIX[repo_type]
        url = f"{self.hub.url}/{prefix}{repo_id}"
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub.repos:
                raise _HubError(409, "You already created this repo", extra={"url": url})
            private = bool(payload.get("private")) or payload.get("visibility") == "private"
            self.hub._create_repo(repo_type, repo_id, private, payload.get("sdk"))
        return self._json(200, {"url": url, "name": repo_id})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str):
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, revision)
        siblings = [
            {"rfilename": p, "size": len(c), "blobId": git_blob_oid(c)} for p, c in sorted(commit.files.items())
        ]
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "siblings": siblings,
        }
        if repo_type == "space":
            info["sdk"] = repo.sdk
        return self._json(200, info)

    def _preupload(self, repo_type: str, repo_id: str, revision: str, payload: dict):
        self._require_write()
        repo = self._repo(repo_type, repo_id)
        commit = repo.resolve(revision)
        files = commit.files if commit is not None else {}
        answer = []
        for item in payload.get("files", []):
            path = item["path"]
            remote = files.get(path)
            answer.append(
                {
                    "path": path,
                    "uploadMode": "regular",  # everything goes inline in the commit: no LFS or Xet storage needed
                    "shouldIgnore": False,
                    "oid": git_blob_oid(remote) if remote is not None else None,
                }
            )
        return self._json(200, {"files": answer, "commitOid": commit.oid if commit else None})

    def _commit_route(self, repo_type: str, repo_id: str, revision: str, body: bytes, query: dict):
        self._require_write()
        if query.get("create_pr"):
            raise _HubError(400, "pull requests are not supported by the local test hub")
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            if revision not in repo.branches:
                raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            files = dict(head.files)
            title = "commit"
            for line in body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    title = value.get("summary") or title
                    parent = value.get("parentCommit")
                    if parent is not None and not head.oid.startswith(parent):
                        raise _HubError(412, "parent commit is not the head of the branch")
                elif key == "file":
                    if value.get("encoding") != "base64":
                        raise _HubError(400, "only base64 file content is supported")
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: c for p, c in files.items() if not p.startswith(prefix)}
                elif key == "lfsFile":
                    raise _HubError(400, "LFS files are not supported by the local test hub (preupload says regular)")
                else:
                    raise _HubError(400, f"unknown commit operation {key!r}")
            commit = self.hub._new_commit(repo, head.oid, title, files)
            repo.branches[revision] = commit.oid
            if revision == "main":
                repo.history.append(commit.oid)
        url = f"{self.hub.url}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{commit.oid}"
        return self._json(200, {"success": True, "commitOid": commit.oid, "commitUrl": url, "hookOutput": ""})

    def _create_branch(self, repo_type: str, repo_id: str, branch: str, payload: dict):
        self._require_write()
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            if branch in repo.branches:
                raise _HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._commit(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.oid
        return self._json(200, {})

    @staticmethod
    def _entries(files: dict[str, bytes]) -> dict[str, dict]:
        entries: dict[str, dict] = {}
        for path, content in files.items():
            entries[path] = {"type": "file", "path": path, "size": len(content), "oid": git_blob_oid(content)}
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                oid = hashlib.sha1(f"tree:{folder}".encode()).hexdigest()
                entries.setdefault(folder, {"type": "directory", "path": folder, "size": 0, "oid": oid})
        return entries

    def _paths_info(self, repo_type: str, repo_id: str, revision: str, form: dict):
        repo = self._repo(repo_type, repo_id)
        entries = self._entries(self._commit(repo, revision).files)
        return self._json(200, [entries[p] for p in form.get("paths", []) if p in entries])

    def _tree(self, repo_type: str, repo_id: str, revision: str, folder: str, recursive: bool):
        repo = self._repo(repo_type, repo_id)
        entries = self._entries(self._commit(repo, revision).files)
        folder = folder.strip("/")
        if folder and (folder not in entries or entries[folder]["type"] != "directory"):
            raise _HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        prefix = f"{folder}/" if folder else ""
        listing = []
        for path in sorted(entries):
            if not path.startswith(prefix):
                continue
            if not recursive and "/" in path[len(prefix) :]:
                continue
            listing.append(entries[path])
        return self._json(200, listing)

    def _resolve(self, method: str, repo_type: str, repo_id: str, revision: str, filename: str):
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, revision)
        if filename not in commit.files:
            raise _HubError(404, "Entry not found", "EntryNotFound")
        content = commit.files[filename]
        oid = git_blob_oid(content)
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{oid}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(filename.split('/')[-1])}",
        }
        status, body = 200, content
        byte_range = self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes=") and method == "GET":
            start_text, _, end_text = byte_range[len("bytes=") :].partition("-")
            if start_text == "":  # suffix range: the last N bytes
                start, end = max(0, len(content) - int(end_text)), len(content) - 1
            else:
                start = int(start_text)
                end = min(int(end_text), len(content) - 1) if end_text else len(content) - 1
            if start >= len(content) and len(content) > 0:
                headers["Content-Range"] = f"bytes */{len(content)}"
                return self._send(416, b"", headers)
            body = content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            status = 206
        if method == "HEAD":
            self.send_response(200)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self._status = 200
            return None
        return self._send(status, body, headers)


# --------------------------------------------------------------------------------------------------- client side
_REPLY_MARKER = "@@gvendi-hub-client-reply@@ "


@dataclass
class ClientResult:
    """What one client command did: its exit code and everything it printed or logged."""

    returncode: int
    stdout: str
    stderr: str


class HubClient:
    """A long-lived Python subprocess that runs ``huggingface_hub``/``datasets`` client code against ``endpoint``.

    ``huggingface_hub`` reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, at import, and the test session is
    offline, so client code runs in a child process whose environment points at the loopback hub. One child serves
    many commands (importing torch, datasets and gvendi once), each with its own captured stdout/stderr (logging
    included, at ``log_level``) and optional environment changes.

    Args:
        endpoint (`str`): the hub URL (``LocalHub.url``).
        home (`Path`): ``HF_HOME`` of the child; every cache goes below it.
        token (`str`, *optional*): ``HF_TOKEN`` of the child.
        log_level (`str`, *optional*, defaults to ``"DEBUG"``): the root logger's level in the child.
    """

    def __init__(self, endpoint: str, home, token: str | None = None, log_level: str = "DEBUG"):
        import os
        import sys
        from pathlib import Path

        home = Path(home)
        repo_root = Path(__file__).resolve().parents[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))}
        env.update(
            HF_ENDPOINT=endpoint,
            HF_HOME=str(home),
            HF_DATASETS_CACHE=str(home / "datasets"),
            HF_MODULES_CACHE=str(home / "modules"),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_DATASETS_DISABLE_PROGRESS_BARS="1",
            HF_EVALUATE_OFFLINE="1",
            GVENDI_DISABLE_PROGRESS_BAR="1",
            GVENDI_HUB_CLIENT_LOG_LEVEL=log_level,
            PYTHONPATH=os.pathsep.join([str(repo_root), str(Path(__file__).resolve().parent)]),
        )
        if token is not None:
            env["HF_TOKEN"] = token
        self.home = home
        self.leaked: list[str] = []
        self._process = subprocess.Popen(
            [sys.executable, "-c", "import hub_server; hub_server._client_worker()"],
            env=env,
            cwd=str(repo_root),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )

    def _send(self, command: dict, timeout: float) -> ClientResult:
        import queue

        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        answers: queue.Queue = queue.Queue()

        def read() -> None:
            for line in self._process.stdout:  # type: ignore[union-attr]
                if line.startswith(_REPLY_MARKER):
                    answers.put(json.loads(line[len(_REPLY_MARKER) :]))
                    return
                self.leaked.append(line)  # written to the real file descriptors, past the redirection
            answers.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            reply = answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise TimeoutError(f"hub client command did not finish within {timeout}s: {command}") from None
        if reply is None:
            raise RuntimeError("hub client process died:\n" + "".join(self.leaked[-50:]))
        return ClientResult(reply["returncode"], reply["stdout"], reply["stderr"])

    def cli(self, *argv: str, env: dict[str, str | None] | None = None, timeout: float = 120) -> ClientResult:
        """Run ``gvendi push ...`` (the parser :func:`gvendi.hub.register_cli` builds) with ``argv``."""
        return self._send({"op": "cli", "argv": list(argv), "env": env or {}}, timeout)

    def run(
        self, code: str, *args: str, env: dict[str, str | None] | None = None, timeout: float = 120
    ) -> ClientResult:
        """Execute ``code`` as ``__main__`` with ``sys.argv[1:] == args``; ``env`` values of ``None`` unset it."""
        return self._send({"op": "exec", "code": code, "argv": list(args), "env": env or {}}, timeout)

    def close(self) -> None:
        """End the child process."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.close()  # the child's loop ends here; its interpreter shutdown is not awaited
                self._process.wait(timeout=0.5)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self.leaked.extend(self._process.stdout.read().splitlines(keepends=True))
            self._process.stdout.close()


def _client_worker() -> None:  # pragma: no cover - runs in the child process
    """The child side of :class:`HubClient`: read JSON commands on stdin, answer one marked JSON line each."""
    import argparse
    import contextlib
    import io
    import logging
    import os
    import sys
    import traceback

    protocol = sys.stdout

    class CurrentStderrHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            sys.stderr.write(self.format(record) + "\n")

    handler = CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(os.environ.get("GVENDI_HUB_CLIENT_LOG_LEVEL", "INFO"))

    import datasets  # noqa: F401  - imported once, here, so each command is fast

    from gvendi.hub import register_cli

    for line in sys.stdin:
        command = json.loads(line)
        saved = {key: os.environ.get(key) for key in command["env"]}
        for key, value in command["env"].items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        out, err = io.StringIO(), io.StringIO()
        returncode = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                if command["op"] == "cli":
                    parser = argparse.ArgumentParser(prog="gvendi")
                    register_cli(parser.add_subparsers(dest="command", required=True))
                    args = parser.parse_args(command["argv"])
                    returncode = args.handler(args)
                else:
                    sys.argv = ["-c", *command["argv"]]
                    exec(compile(command["code"], "<hub-client>", "exec"), {"__name__": "__main__"})
            except SystemExit as exit_:
                returncode = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except BaseException:  # noqa: BLE001 - report, keep serving
                traceback.print_exc()
                returncode = 1
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reply = {"returncode": returncode, "stdout": out.getvalue(), "stderr": err.getvalue()}
        protocol.write(_REPLY_MARKER + json.dumps(reply) + "\n")
        protocol.flush()


def main() -> None:  # pragma: no cover - manual use: python tests/hub_server.py
    """Serve until interrupted, printing the endpoint (handy for poking at the client by hand)."""
    import time

    with LocalHub() as hub:
        print(f"HF_ENDPOINT={hub.url}", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":  # pragma: no cover
    main()
