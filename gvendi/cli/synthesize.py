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
from typing import Any

from ..synthesis.config import ProxyConfig, proxy_field_names, proxy_key
from .options import add_config_arguments

__all__ = ["build_parser", "main", "register"]

#: the featurizer settings a run records, by their GVendiConfig name: every ``SynthesisConfig.proxy`` field (derived
#: from GVendiConfig, so a new featurizer field gets its flag here too) and two run fields
_PROXY_FIELDS = {
    **{name: ("proxy", proxy_key(name)) for name in proxy_field_names()},
    "batch_size": (None, "featurize_batch_size"),
    "device": (None, "device"),
}
_PREFIX = "proxy_"

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
    run.add_argument(
        "--config",
        default=S,
        metavar="FILE",
        help="a SynthesisConfig as YAML or JSON (a run folder's config.json works); options given here override it",
    )
    run.add_argument("--rounds", type=int, default=S, help="rounds (default: 1)")
    run.add_argument("--per-round", type=int, default=S, help="candidates asked for per round (default: 100)")
    run.add_argument(
        "--seed",
        type=int,
        default=S,
        help="root seed of every random choice: few-shot draws, k-means, sampling (default: 0; the projection's is "
        "--projection-seed)",
    )
    run.add_argument(
        "--no-progress",
        "--quiet",
        dest="no_progress",
        action="store_true",
        default=S,
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
    gen.add_argument(
        "--solver-backend", choices=["tgi", "openai", "local"], default=S, help="solver route (default: as --backend)"
    )
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
        "--strategy",
        choices=["prismatic", "vanilla"],
        default=S,
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

    add_config_arguments(
        parser,
        title="G-Vendi proxy (gvendi.config.GVendiConfig)",
        fields=list(_PROXY_FIELDS),
        dest_prefix=_PREFIX,
        suppress_defaults=True,
        old_spellings=("--proxy-seed", "--proxy-revision"),
        defaults={"proxy": ProxyConfig.name},  # a run's default (SynthesisConfig.proxy): the bundled proxy
    )


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
        "solver_temperature": "solver_temperature",
        _PREFIX + "batch_size": "featurize_batch_size",
        _PREFIX + "device": "device",
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
    _copy_given(given, proxy, {_PREFIX + name: key for name, (part, key) in _PROXY_FIELDS.items() if part})
    data["proxy"] = proxy
    return data


def run_synthesize(args: argparse.Namespace) -> int:
    """The ``synthesize`` handler. Errors go through the shared exit-code table (:mod:`gvendi.cli.errors`): 1 when
    the run cannot produce what it was asked for (an overloaded or stalled endpoint, a round in which nothing parsed,
    a run folder it cannot write); 2 for bad input (options, config, a URL that answers as no known server, a locked
    or damaged run folder); 3 for an unreachable endpoint; 130 on Ctrl-C."""
    from ..config import read_config_file
    from ..synthesis.config import SynthesisConfig
    from ..synthesis.loop import synthesize
    from ..synthesis.store import RunStore

    given = vars(args)
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
        base: dict[str, Any] = read_config_file(given["config"]) if "config" in given else {}
        data = _overrides(args, base)
        data["out"] = given["out"]
        if not data["generator"]:
            data.pop("generator")
    config = SynthesisConfig.from_dict(data)
    result = synthesize(config)
    totals = result.report["totals"]
    print(
        f"done: {totals['accepted']} accepted of {totals['generated']} asked over {config.rounds} round(s); "
        f"pool G-Vendi {result.report['gvendi']['seed_pool']:.3f} → {result.report['gvendi']['final']:.3f}; "
        f"dataset: {result.run_dir / 'dataset.jsonl'}"
    )
    return 0


def _interrupt_hint(args: argparse.Namespace) -> str:
    folder = vars(args).get("resume") or vars(args).get("out")
    return f"finished requests are saved. Continue with --resume {folder}"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synthesize`` sub-command to a ``gvendi`` CLI (``argparse`` sub-parsers)."""
    parser = subparsers.add_parser(
        "synthesize",
        help="run or resume Prismatic Synthesis against a TGI/OpenAI-compatible endpoint or a local model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=run_synthesize, interrupt_hint=_interrupt_hint)


def build_parser() -> argparse.ArgumentParser:
    """A stand-alone parser with the one ``synthesize`` sub-command (``gvendi.cli.build_parser`` has them all)."""
    parser = argparse.ArgumentParser(prog="gvendi")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m gvendi.synthesis.cli synthesize ...``: the ``gvendi`` command line, logging gvendi's INFO lines."""
    from . import main as gvendi_main

    if not logging.getLogger().handlers:  # run as a program: gvendi's INFO lines, other libraries' warnings
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("gvendi").setLevel(logging.INFO)
    return gvendi_main(argv)
