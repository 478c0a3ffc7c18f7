"""Pushing over HTTP with the real ``huggingface_hub``/``datasets`` clients, against the loopback hub in hub_server.py.

``tests/conftest.py`` sets ``HF_HUB_OFFLINE=1`` for the whole session, and ``huggingface_hub`` reads ``HF_ENDPOINT``
when it is imported, so client code runs in a child process (:class:`hub_server.HubClient`) with ``HF_ENDPOINT``
pointed at the loopback server, the offline switches removed, caches in a temporary folder and a sentinel token.
"""

from __future__ import annotations

import json

import pytest
from hub_server import HubClient, LocalHub
from test_hub import make_run_folder

from gvendi.hub import build_dataset

SENTINEL = "hf_SENTINELtoken0123456789abcdefXYZ"

LOAD = """
import json, sys
import datasets
ds = datasets.load_dataset(sys.argv[1], split="train", revision=sys.argv[2] if len(sys.argv) > 2 else None)
print(json.dumps({"features": ds.features.to_dict(), "rows": ds.to_list()}))
"""
PUSH = """
import sys
from gvendi.hub import push_run
kwargs = eval(sys.argv[3]) if len(sys.argv) > 3 else {}
r = push_run(sys.argv[1], sys.argv[2], license="cc-by-4.0", base_wait=0.01, **kwargs)
print(r.commit, len(r.uploaded), len(r.deleted), r.changed)
"""


@pytest.fixture(scope="module")
def hub_and_client(tmp_path_factory):
    with LocalHub(token=SENTINEL) as server:
        client = HubClient(server.url, tmp_path_factory.mktemp("hf-home"), token=SENTINEL)
        try:
            yield server, client
        finally:
            client.close()


@pytest.fixture
def hub(hub_and_client):
    server, _ = hub_and_client
    server.clear_failures()
    yield server
    server.clear_failures()


@pytest.fixture
def client(hub_and_client):
    return hub_and_client[1]


def _loaded(result) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("task", ["math", "nli"])
def test_push_then_load_round_trips_every_row(hub, client, tmp_path, task):
    run_dir = make_run_folder(tmp_path, task)
    repo_id = f"my-org/Prism{task.upper()}-roundtrip"
    pushed = client.cli("push", str(run_dir), "--repo-id", repo_id, "--license", "cc-by-4.0")
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    assert "in commit" in pushed.stdout
    assert len(hub.commits(repo_id)) == 2  # the repo's initial commit + ONE commit holding every file
    assert sorted(hub.files(repo_id)) == [".gitattributes", "README.md", "data/train-00000-of-00001.parquet"]

    result = _loaded(client.run(LOAD, repo_id))
    expected = build_dataset(run_dir)
    assert result["rows"] == expected.to_list()
    assert result["features"] == expected.features.to_dict()


def test_pushing_the_same_run_again_changes_nothing(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "math")
    args = ("push", str(run_dir), "--repo-id", "my-org/PrismMath-again", "--license", "cc-by-4.0")
    assert client.cli(*args).returncode == 0
    history = hub.commits("my-org/PrismMath-again")
    mark = len(hub.requests)
    again = client.cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already up to date" in again.stdout
    assert hub.commits("my-org/PrismMath-again") == history
    assert not [r for r in hub.requests[mark:] if "/commit/" in r[1] or "/preupload/" in r[1]]


def test_fewer_shards_delete_stale_ones_in_the_same_commit(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "math")
    repo_id = "my-org/PrismMath-shards"
    first = client.run(PUSH, str(run_dir), repo_id, "{'max_shard_size': 2000}")
    assert first.returncode == 0, first.stderr[-3000:]
    shards = [p for p in hub.files(repo_id) if p.startswith("data/")]
    assert len(shards) > 1
    second = client.run(PUSH, str(run_dir), repo_id)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.split()[1:] == ["2", str(len(shards)), "True"]  # new shard + card; every old shard deleted
    assert [p for p in hub.files(repo_id) if p.startswith("data/")] == ["data/train-00000-of-00001.parquet"]
    assert len(hub.commits(repo_id)) == 3
    assert [row["id"] for row in _loaded(client.run(LOAD, repo_id))["rows"]] == build_dataset(run_dir)["id"]


def test_transient_errors_are_retried_into_one_commit(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "nli")
    repo_id = "my-org/PrismNLI-retry"
    mark = len(hub.requests)
    hub.inject_failure("POST", "/api/repos/create", status=503)
    hub.inject_failure("GET", f"/api/datasets/{repo_id}/tree/", status=0)  # connection dropped
    hub.inject_failure("POST", "/preupload/", status=429)
    hub.inject_failure("POST", "/commit/", status=500)
    result = client.run(PUSH, str(run_dir), repo_id)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [
        (method, path.split("/")[-2] if "/api/datasets/" in path else path, status)
        for method, path, status in hub.requests[mark:]
    ]
    assert ("POST", "/api/repos/create", 503) in seen and ("POST", "preupload", 429) in seen
    assert ("POST", "commit", 500) in seen and ("POST", "commit", 200) in seen
    assert "retrying" in result.stderr
    assert len(hub.commits(repo_id)) == 2
    assert result.stdout.split()[0] == hub.commits(repo_id)[-1]


def test_persistent_errors_give_up_without_committing(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "math")
    repo_id = "my-org/PrismMath-down"
    hub.inject_failure("POST", "/commit/", status=502, times=100)
    code = (
        "import sys; from gvendi.hub import push_run, HubPublishError\n"
        "try:\n"
        "    push_run(sys.argv[1], sys.argv[2], license='cc-by-4.0', base_wait=0.01, max_retries=2)\n"
        "except HubPublishError as err:\n"
        "    print('FAILED', err, err.__cause__, err.__context__)\n"
    )
    result = client.run(code, str(run_dir), repo_id)
    assert "FAILED" in result.stdout and "HTTP 502" in result.stdout, result.stderr[-3000:]
    assert "gave up after 3 attempts" in result.stdout
    assert result.stdout.rstrip().endswith("None None")  # no chained exception carrying request details
    assert len(hub.commits(repo_id)) == 1


def test_private_push_to_a_revision(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "math")
    repo_id = "my-org/PrismMath-private"
    args = ("push", str(run_dir), "--repo-id", repo_id, "--license", "mit", "--private", "--revision", "v1")
    result = client.cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.repos[("dataset", repo_id)].private
    assert "README.md" in hub.files(repo_id, revision="v1")
    assert "README.md" not in hub.files(repo_id, revision="main")
    assert len(_loaded(client.run(LOAD, repo_id, "v1"))["rows"]) == 20
    info = "import sys; from huggingface_hub import HfApi; print(HfApi().dataset_info(sys.argv[1]).private)"
    assert client.run(info, repo_id).stdout.strip() == "True"
    anonymous = client.run(info, repo_id, env={"HF_TOKEN": None})
    assert anonymous.returncode != 0 and "RepositoryNotFoundError" in anonymous.stderr  # invisible without token


def test_token_from_the_login_cache(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "nli")
    token_file = client.home / "token"
    token_file.write_text(SENTINEL)
    try:
        args = ("push", str(run_dir), "--repo-id", "my-org/PrismNLI-login", "--license", "cc-by-4.0")
        result = client.cli(*args, env={"HF_TOKEN": None})
    finally:
        token_file.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(hub.commits("my-org/PrismNLI-login")) == 2


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (("--repo-id", "PrismMath", "--license", "cc-by-4.0"), {}, "repo id must be ORG/NAME"),
        (("--repo-id", "my-org/PrismMath-bad"), {}, "the following arguments are required: --license"),
        (("--repo-id", "my-org/PrismMath-bad", "--license", "cc-by-4.0"), {"HF_TOKEN": None}, "no Hugging Face token"),
        (("--repo-id", "my-org/PrismMath-bad", "--license", "cc-by-4.0", "--task", "nli"), {}, "not a 'nli' run"),
    ],
)
def test_bad_input_fails_before_any_upload(hub, client, tmp_path, args, env, message):
    run_dir = make_run_folder(tmp_path, "math")
    mark = len(hub.requests)
    result = client.cli("push", str(run_dir), *args, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert hub.requests[mark:] == []
    assert ("dataset", "my-org/PrismMath-bad") not in hub.repos


def test_incomplete_run_fails_before_any_upload(hub, client, tmp_path):
    run_dir = make_run_folder(tmp_path, "math")
    report = json.loads((run_dir / "report.json").read_text())
    report["complete"] = False
    (run_dir / "report.json").write_text(json.dumps(report))
    (run_dir / "dataset.jsonl").unlink()
    mark = len(hub.requests)
    result = client.cli("push", str(run_dir), "--repo-id", "my-org/PrismMath-incomplete", "--license", "cc-by-4.0")
    assert result.returncode == 2 and "not a complete run" in result.stderr
    assert hub.requests[mark:] == []


def test_sentinel_token_is_printed_nowhere(hub, client, tmp_path):
    """Dry run, push, no-op push, rejected credentials, a 403 and a dead connection: the token shows up nowhere."""
    run_dir = make_run_folder(tmp_path, "nli")
    repo_id = "my-org/PrismNLI-sentinel"
    base = ("push", str(run_dir), "--repo-id", repo_id, "--license", "cc-by-4.0")
    outputs = [
        client.cli(*base, "--dry-run", str(tmp_path / "dry")),
        client.cli(*base),
        client.cli(*base),  # nothing changed
    ]
    (run_dir / "dataset.jsonl").write_text((run_dir / "dataset.jsonl").read_text().replace("r1-0000", "r1-000a"))
    outputs.append(client.cli(*base, env={"HF_TOKEN": "hf_wrongTOKEN000000000000000000"}))  # the server says 401
    hub.inject_failure("POST", "/commit/", status=403)  # not transient: fails at once
    outputs.append(client.cli(*base))
    api_failure = (
        "import sys, traceback; from gvendi.hub import push_run\n"
        "try:\n"
        "    push_run(sys.argv[1], sys.argv[2], license='cc-by-4.0', base_wait=0.01, max_retries=1)\n"
        "except Exception as err:\n"
        "    print(repr(err)); print(''.join(traceback.format_exception(err)))\n"
        "    print(repr(err.__context__), repr(err.__cause__), err.args)\n"
    )
    hub.inject_failure("POST", "/api/repos/create", status=0, times=50)  # the connection keeps dropping
    outputs.append(client.run(api_failure, str(run_dir), repo_id))

    assert [o.returncode for o in outputs[:5]] == [0, 0, 0, 1, 1], [o.stderr[-2000:] for o in outputs]
    assert "HTTP 401" in outputs[3].stderr and "HTTP 403" in outputs[4].stderr
    assert "HubPublishError" in outputs[5].stdout and "gave up" in outputs[5].stdout
    assert "DEBUG" in outputs[1].stderr  # the client logged at DEBUG level: those logs were searched too
    for output in outputs:
        assert SENTINEL not in output.stdout and SENTINEL not in output.stderr
    assert SENTINEL not in "".join(client.leaked)
    # ... and in no file: the dry-run folder, the run folder, the client's caches, the published repository
    for root in (tmp_path, client.home):
        for path in root.rglob("*"):
            if path.is_file():
                assert SENTINEL.encode() not in path.read_bytes(), path
    card = hub.files(repo_id)["README.md"].decode()
    assert "PrismNLI" in card
    for content in hub.files(repo_id).values():
        assert SENTINEL.encode() not in content


def test_measurement_space_push(hub, client):
    code = (
        "from gvendi.hub import push_measurement_space\n"
        "r = push_measurement_space('my-org/gvendi', base_wait=0.01)\n"
        "print(r.changed, r.commit)\n"
    )
    first = client.run(code)
    assert first.returncode == 0, first.stderr[-3000:]
    repo = hub.repos[("space", "my-org/gvendi")]
    assert repo.sdk == "gradio"
    files = hub.files("my-org/gvendi", repo_type="space")
    assert {"README.md", "app.py", "gvendi.py", "requirements.txt"} <= set(files)
    assert b"sdk: gradio" in files["README.md"] and b"- measurement" in files["README.md"]
    second = client.run(code)
    assert second.returncode == 0 and second.stdout.split()[0] == "False"
    assert len(hub.commits("my-org/gvendi", repo_type="space")) == 2
