"""``gvendi synthesize``: run or resume Prismatic Synthesis from the command line.

    gvendi synthesize --task math --generator http://127.0.0.1:8080 --rounds 2 --per-round 64 --out runs/math
    gvendi synthesize --task nli --generator http://127.0.0.1:8000 --backend openai --model Qwen/Qwen2.5-7B-Instruct \\
        --solver http://127.0.0.1:8001 --rounds 3 --per-round 200 --out runs/nli --benchmark mnli_dev.jsonl
    gvendi synthesize --resume runs/math
    gvendi synthesize --task math --generator local:tiny --rounds 1 --per-round 8 --out runs/smoke

``--generator`` takes a server URL (``--backend tgi``, the default for URLs, or ``openai``) or ``local[:MODEL]``
(in-process transformers; ``local`` alone is the bundled tiny model, good for plumbing tests only).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

__all__ = ["build_parser", "main", "register_cli"]

logger = logging.getLogger(__name__)


def _endpoint(target: str | None, backend: str | None, model: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if target is not None:
        if target == "local" or target.startswith("local:"):
            out["backend"] = backend or "local"
            out["url"] = None
            out["model"] = model or (target.split(":", 1)[1] if ":" in target else "tiny")
        else:
            out["backend"] = backend or "tgi"
            out["url"] = target
            if model is not None:
                out["model"] = model
    else:
        if backend is not None:
            out["backend"] = backend
        if model is not None:
            out["model"] = model
    return out


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    S = argparse.SUPPRESS  # unset options stay out of the namespace, so --resume can tell what was given
    run = parser.add_argument_group("run")
    run.add_argument("--task", choices=["math", "nli"], default=S, help="what to synthesize (default: math)")
    run.add_argument("--seeds", default=S, metavar="FILE", help="JSONL seed pool (default: the bundled sample)")
    run.add_argument("--out", default=S, metavar="RUN_DIR", help="the run folder to create or continue")
    run.add_argument("--resume", default=S, metavar="RUN_DIR", help="continue the run in RUN_DIR from its config")
    run.add_argument("--config", default=S, metavar="FILE", help="a JSON SynthesisConfig; options override it")
    run.add_argument("--rounds", type=int, default=S, help="rounds (default: 1)")
    run.add_argument("--per-round", type=int, default=S, help="candidates asked for per round (default: 100)")
    run.add_argument("--seed", type=int, default=S, help="root seed of every random choice (default: 0)")
    run.add_argument(
        "--no-progress", "--quiet", dest="no_progress", action="store_true", default=S,
        help="hide progress bars (gvendi's and the libraries'); also GVENDI_DISABLE_PROGRESS_BAR=1",
    )
    run.add_argument(
        "--allow-empty-rounds",
        action="store_true",
        default=S,
        help="let a round in which no candidate parsed pass (default: such a round stops the run, exit 1)",
    )

    gen = parser.add_argument_group("generator and solver")
    gen.add_argument("--generator", default=S, metavar="URL|local[:MODEL]", help="generator endpoint (default: local)")
    gen.add_argument("--backend", choices=["tgi", "openai", "local"], default=S, help="generator route")
    gen.add_argument("--model", default=S, help="model name for the openai route, or local model path")
    gen.add_argument("--solver", default=S, metavar="URL|local[:MODEL]", help="solver/judge (default: generator)")
    gen.add_argument("--solver-backend", choices=["tgi", "openai", "local"], default=S, help="solver route (default: as --backend)")
    gen.add_argument("--solver-model", default=S, help="solver model name (openai route) or local path")
    gen.add_argument("--temperature", type=float, default=S, help="generator temperature (default: 1.0)")
    gen.add_argument("--top-p", type=float, default=S, help="generator top-p (default: 0.95)")
    gen.add_argument("--max-new-tokens", type=int, default=S, help="generator token limit (default: 1024)")
    gen.add_argument("--solver-temperature", type=float, default=S, help="solver temperature (default: 0.75)")
    gen.add_argument("--solver-max-new-tokens", type=int, default=S, help="solver token limit")
    gen.add_argument("--concurrency", type=int, default=S, help="requests in flight per endpoint (default: 32)")
    gen.add_argument("--timeout", type=float, default=S, help="seconds per attempt (default: 120)")
    gen.add_argument("--rpm", type=float, default=S, help="requests-per-minute cap per endpoint")
    gen.add_argument("--max-retries", type=int, default=S, help="retries per request (default: 6)")
    gen.add_argument(
        "--chat-template", choices=["chatml", "plain", "tokenizer"], default=S, help="prompt format for the tgi route"
    )
    gen.add_argument("--api-key-env", default=S, metavar="VAR", help="environment variable holding the API key")

    loop = parser.add_argument_group("loop")
    loop.add_argument("--shots", type=int, default=S, help="few-shot examples per prompt (default: 5)")
    loop.add_argument("--new-per-prompt", type=int, default=S, help="new examples per prompt (default: 2)")
    loop.add_argument(
        "--strategy", choices=["prismatic", "vanilla"], default=S,
        help="prismatic (default: keep only candidates in sparse clusters) or vanilla (uniform shots, no filter)",
    )
    loop.add_argument(
        "--shot-policy", choices=["uniform", "sparse-cluster"], default=S, help="where few-shot examples come from"
    )
    loop.add_argument("--vote-n", type=int, default=S, help="solver/judge samples N (math 3, nli 2)")
    loop.add_argument("--vote-tau", type=int, default=S, help="votes needed τ (default: 2)")
    loop.add_argument("--k-ratio", type=float, default=S, help="clusters per pool example (default: 0.01)")
    loop.add_argument("--min-clusters", type=int, default=S, help="at least this many clusters (default: 2)")
    loop.add_argument("--sparse-ratio", type=float, default=S, help="sparse = below this size quantile (0.5)")
    loop.add_argument("--near-dup-threshold", type=float, default=S, help="5-gram Jaccard of a near duplicate")
    loop.add_argument("--benchmark", action="append", default=S, metavar="FILE|HUB_ID", help="decontaminate against")
    loop.add_argument("--ngram", type=int, default=S, help="decontamination n-gram (default: 10)")
    loop.add_argument("--paraphrase-check", action="store_true", default=S, help="also ask the generator")

    proxy = parser.add_argument_group("G-Vendi proxy")
    proxy.add_argument("--proxy", default=S, help="featurizer proxy: 'tiny', a Hub id or a path (default: tiny)")
    proxy.add_argument("--proxy-revision", default=S, help="Hub revision of the proxy")
    proxy.add_argument("--dim", type=int, default=S, help="feature dimension (default: 1024)")
    proxy.add_argument("--projection", default=S, help="'factored' (default), 'sketch' or 'dense'")
    proxy.add_argument("--proxy-seed", type=int, default=S, help="projection seed (default: 0)")
    proxy.add_argument("--batch-size", type=int, default=S, help="featurizer batch size (default: 8)")
    proxy.add_argument("--device", default=S, help="featurizer device: cpu, cuda, cuda:1 … (default: auto)")


def _copy_given(given: dict[str, Any], target: dict[str, Any], keys: dict[str, str]) -> None:
    """Set ``target[key] = given[option]`` for each ``option: key`` of ``keys`` whose option was given."""
    for option, key in keys.items():
        if option in given:
            target[key] = given[option]


def _overrides(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """Config keys set by the options that were given, merged into ``base`` (a config dict)."""
    given = vars(args)
    data = json.loads(json.dumps(base))
    simple = {
        "task": "task",
        "seeds": "seeds_path",
        "rounds": "rounds",
        "per_round": "per_round",
        "seed": "seed",
        "shots": "shots",
        "new_per_prompt": "new_per_prompt",
        "strategy": "strategy",
        "shot_policy": "shot_policy",
        "k_ratio": "k_ratio",
        "min_clusters": "min_clusters",
        "sparse_ratio": "sparse_ratio",
        "near_dup_threshold": "near_dup_threshold",
        "batch_size": "featurize_batch_size",
        "device": "device",
        "solver_temperature": "solver_temperature",
    }
    _copy_given(given, data, simple)
    if "seeds" in given:  # absolute, so a resume from another directory finds it
        data["seeds_path"] = os.path.abspath(given["seeds"])
    if "no_progress" in given:
        data["show_progress"] = False
    if "allow_empty_rounds" in given:
        data["allow_empty_rounds"] = True
    generator = data.get("generator") or {}
    old_url = generator.get("url")
    generator.update(_endpoint(given.get("generator"), given.get("backend"), given.get("model")))
    shared = {
        "concurrency": "max_concurrency",
        "timeout": "timeout",
        "rpm": "requests_per_minute",
        "max_retries": "max_retries",
        "chat_template": "chat_template",
        "api_key_env": "api_key_env",
    }
    _copy_given(
        given,
        generator,
        {**shared, "temperature": "temperature", "top_p": "top_p", "max_new_tokens": "max_new_tokens"},
    )
    data["generator"] = generator
    solver_given = any(k in given for k in ("solver", "solver_backend", "solver_model", "solver_max_new_tokens"))
    if solver_given or data.get("solver"):
        solver = data.get("solver") or {
            **generator,
            "temperature": data.get("solver_temperature", 0.75),
        }
        solver.update(_endpoint(given.get("solver"), given.get("solver_backend"), given.get("solver_model")))
        if "solver" not in given and old_url and solver.get("url") == old_url and generator.get("url") != old_url:
            # the server moved: a solver that was the generator's server follows it (resume with a new --generator)
            solver["url"] = generator["url"]
        _copy_given(
            given,
            solver,
            {**shared, "solver_temperature": "temperature", "solver_max_new_tokens": "max_new_tokens"},
        )
        data["solver"] = solver
    vote = dict(data.get("vote") or {})
    _copy_given(given, vote, {"vote_n": "n", "vote_tau": "tau"})
    data["vote"] = vote
    decon = dict(data.get("decontamination") or {})
    _copy_given(given, decon, {"benchmark": "benchmarks", "ngram": "ngram"})
    if "paraphrase_check" in given:
        decon["paraphrase_check"] = True
    data["decontamination"] = decon
    proxy = dict(data.get("proxy") or {})
    _copy_given(
        given,
        proxy,
        {
            "proxy": "name",
            "proxy_revision": "revision",
            "dim": "dim",
            "projection": "projection",
            "proxy_seed": "seed",
        },
    )
    data["proxy"] = proxy
    return data


def run_synthesize(args: argparse.Namespace) -> int:
    """The ``synthesize`` handler: 0 on success; 1 when the run cannot produce what it was asked for (an overloaded or
    stalled endpoint, a round in which nothing parsed, a run folder it cannot write); 2 for bad input (options,
    config, a URL that answers as no known server, a locked or damaged run folder); 3 for an unreachable endpoint;
    130 on Ctrl-C."""
    from .backends import EndpointError, EndpointUnreachableError
    from .config import SynthesisConfig
    from .loop import EmptyRoundError, synthesize
    from .store import RunFolderError, RunStore

    given = vars(args)
    try:
        if "resume" in given:
            if "out" in given and given["out"] != given["resume"]:
                raise ValueError("pass either --resume RUN_DIR or --out RUN_DIR, not both with different folders.")
            saved = RunStore(given["resume"], create=False).read_config()
            if saved is None:
                raise ValueError(f"{given['resume']} has no config.json: there is no run to resume there.")
            data = _overrides(args, saved)
            data["out"] = given["resume"]
        else:
            if "out" not in given:
                raise ValueError("--out RUN_DIR is required (or --resume RUN_DIR to continue a run).")
            base: dict[str, Any] = {}
            if "config" in given:
                with open(given["config"], encoding="utf-8") as handle:
                    base = json.load(handle)
            data = _overrides(args, base)
            data["out"] = given["out"]
            if not data["generator"]:
                data.pop("generator")
        config = SynthesisConfig.from_dict(data)
        result = synthesize(config)
    except (EndpointUnreachableError, EndpointError, EmptyRoundError, RunFolderError) as exc:
        print(f"gvendi synthesize: {exc}", file=sys.stderr)
        # unreachable endpoint 3, an empty round 1, else the error's own code (1 runtime failure, 2 user error)
        return 3 if isinstance(exc, EndpointUnreachableError) else getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        folder = given.get("resume") or given.get("out")
        print(
            f"gvendi synthesize: interrupted; finished requests are saved. Continue with --resume {folder}",
            file=sys.stderr,
        )
        return 130
    except (ValueError, TypeError) as exc:
        print(f"gvendi synthesize: {exc}", file=sys.stderr)
        return 2
    totals = result.report["totals"]
    print(
        f"done: {totals['accepted']} accepted of {totals['generated']} asked over {config.rounds} round(s); "
        f"pool G-Vendi {result.report['gvendi']['seed_pool']:.3f} → {result.report['gvendi']['final']:.3f}; "
        f"dataset: {result.run_dir / 'dataset.jsonl'}"
    )
    return 0


def register_cli(subparsers: Any) -> None:
    """Add the ``synthesize`` sub-command to a ``gvendi`` CLI (``argparse`` sub-parsers)."""
    parser = subparsers.add_parser(
        "synthesize",
        help="run or resume Prismatic Synthesis against a TGI/OpenAI-compatible endpoint or a local model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=run_synthesize)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with the one ``synthesize`` sub-command."""
    parser = argparse.ArgumentParser(prog="gvendi")
    register_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m gvendi.synthesis.cli synthesize ...``"""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:  # run as a program: gvendi's INFO lines, other libraries' warnings
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("gvendi").setLevel(logging.INFO)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
