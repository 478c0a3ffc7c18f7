"""A TGI-compatible HTTP server on loopback, for tests and the client benchmark.

Routes (as TGI serves them): ``POST /`` (answers ``[{"generated_text": ...}]``), ``POST /generate``
(``{"generated_text": ...}``), ``POST /v1/chat/completions`` (OpenAI format), ``GET /health``, ``GET /info``.

Modes:

- ``model``: answers come from a real (tiny) transformers causal LM, seeded per request;
- ``scripted``: answers come from a deterministic responder that understands gvendi's synthesis prompts (math
  problems it can solve, NLI pairs it can judge), and faults are injected at configurable rates: 429 (overloaded),
  503 with ``Retry-After``, timeouts (an answer slower than the client waits), slow answers, truncated JSON bodies
  and connection resets. Every decision is a function of (server seed, request body, how many times that body was
  seen), so a run is reproducible.

A whole-server ``behaviour`` models a broken endpoint instead (issue 15's endpoint matrix): ``html`` (a 200 HTML
page, as a web server or login portal answers), ``404`` (a JSON 404 on every route), ``garbage`` (random bytes with
status 200), ``always429`` (every request overloaded), ``hang_after_probe`` (1-token probes answered, every other
request stalls for ``timeout_delay``), ``reject_after_probe`` (probes answered, every other request refused with 422).

In a test::

    with LoopbackTGIServer(mode="scripted", rate_429=0.1) as server:
        client = AsyncInferenceClient(base_url=server.url)

As a process (the benchmark uses this)::

    python tests/tgi_server.py --mode scripted --delay 0.1      # prints "PORT <n>" once listening
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from typing import Any

from aiohttp import web

__all__ = ["LoopbackTGIServer", "TemplateWalkResponder", "scripted_responder"]

NAMES = ["Ada", "Bo", "Cyd", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Lu", "Mo", "Ned", "Oz", "Pia"]
MATH_TEMPLATES = [
    (
        "{n} has {a} marbles and buys {b} bags with {c} marbles in each bag. How many marbles does {n} have now?",
        r"has (\d+) marbles and buys (\d+) bags with (\d+) marbles",
        lambda a, b, c: a + b * c,
    ),
    (
        "A rectangle is {a} cm long and {b} cm wide, and a square of side {c} cm is cut out of it. What area in "
        "square centimetres is left?",
        r"(\d+) cm long and (\d+) cm wide, and a square of side (\d+) cm",
        lambda a, b, c: a * b - c * c,
    ),
    (
        "{n} reads {a} pages on Monday and {b} pages on each of the next {c} days. How many pages has {n} read?",
        r"reads (\d+) pages on Monday and (\d+) pages on each of the next (\d+) days",
        lambda a, b, c: a + b * c,
    ),
    (
        "What is the remainder when {a} times {b} is divided by {c}?",
        r"remainder when (\d+) times (\d+) is divided by (\d+)",
        lambda a, b, c: (a * b) % c,
    ),
]
PLACES = ["park", "kitchen", "library", "station", "garden", "market", "harbour", "museum"]
ACTIONS = [("paints", "a fence"), ("reads", "a novel"), ("bakes", "bread"), ("repairs", "a bicycle")]


def _rng(*parts: Any) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little"))


def _math_problem(rng: random.Random) -> str:
    template = rng.choice(MATH_TEMPLATES)[0]
    a, b, c = rng.randint(3, 400), rng.randint(2, 60), rng.randint(2, 19)
    if "square of side" in template:
        c = rng.randint(1, min(a, b))
    return template.format(n=rng.choice(NAMES), a=a, b=b, c=c)


NLI_PREMISES = [
    "{n} {verb} {obj} in the {place} with {k} neighbours watching.",
    "Yesterday {n} {verb} {obj} at the {place}, and it took {k} minutes.",
    "At the {place}, {k} visitors saw {n}, who {verb} {obj} before noon.",
    "Because the {place} was open late, {n} {verb} {obj} for {k} minutes.",
]


SOLUTION_STYLES = [
    "Let x be the unknown quantity.\nThe problem gives {nums}.\nSolving for x gives x = {v}.\n\\boxed{{{v}}}",
    "Step 1: list the numbers: {nums}.\nStep 2: combine them as the question asks.\nStep 3: the result is {v}.\n"
    "\\boxed{{{v}}}",
    "We start from {first} and apply each change in turn.\nAfter the last change we have {v}.\n\\boxed{{{v}}}",
    "Write an equation with the given values ({nums}).\nIt simplifies to {v}.\n\\boxed{{{v}}}",
    "Think of it as a table of values: {nums}.\nReading off the answer gives {v}.\nSo the answer is {v}.\n"
    "\\boxed{{{v}}}",
    "{first} is the starting amount.\nThe remaining numbers are {nums}.\nPutting them together, {v}.\n\\boxed{{{v}}}",
]


def _solution(problem: str, value: int) -> str:
    """A worked solution in one of several layouts, chosen by the problem (so solutions differ in structure)."""
    nums = re.findall(r"\d+", problem) or ["0"]
    style = _rng("style", problem.strip()).choice(SOLUTION_STYLES)
    return style.format(nums=", ".join(nums), first=nums[0], v=value)


def _mutate(text: str, rng: random.Random) -> str:
    """A new variant of an example: every number and one name changed (what a generator copying a shot does)."""
    text = re.sub(r"\d+", lambda m: str(rng.randint(2, 99)), text)
    names = [n for n in re.findall(r"\b[A-Z][a-z]+\b", text) if n not in ("The", "If", "How", "What", "A", "In")]
    if names:
        text = text.replace(rng.choice(names), rng.choice(NAMES))
    return text


def _nli_pair(rng: random.Random, label: str) -> tuple[str, str]:
    name, place = rng.choice(NAMES), rng.choice(PLACES)
    verb, obj = rng.choice(ACTIONS)
    premise = rng.choice(NLI_PREMISES).format(n=name, verb=verb, obj=obj, place=place, k=rng.randint(2, 900))
    if label == "entailment":
        hypothesis = rng.choice([f"{name} is in the {place}.", f"Someone {verb} {obj}.", f"{name} {verb} something."])
    elif label == "contradiction":
        hypothesis = rng.choice([f"Nobody {verb} {obj} at the {place}.", f"Nobody saw {name} at the {place}."])
    else:
        hypothesis = f"{name} is in the {place} for the {rng.randint(2, 50)}th time."
    return premise, hypothesis


def scripted_responder(prompt: str, seed: int | None, unparsable_rate: float = 0.1) -> str:
    """A deterministic stand-in for an LLM that answers gvendi's synthesis prompts sensibly.

    Math generation prompts get new templated problems or variants of the shown examples with new numbers (about
    ``unparsable_rate`` of answers are unusable prose); solver prompts get a worked answer, in one of several
    layouts, ending in ``\\boxed{}``, consistent across samples about 80% of the time; NLI prompts get
    premise/hypothesis pairs and ``Label:`` lines; paraphrase checks get ``yes`` when the two texts share 70% of
    their words; anything else gets ``ok``.
    """
    rng = _rng(prompt, seed)
    if "new math problems" in prompt:
        if rng.random() < unparsable_rate:
            return "Sure! Here are some ideas for problems about numbers and shapes."
        count = len(re.findall(r"### Problem \d+\n<the problem statement>", prompt)) or 1
        shots = re.findall(r"Example \d+:\n(.*?)\n\n", prompt, re.DOTALL)
        problems = [
            _mutate(rng.choice(shots), rng) if shots and rng.random() < 0.5 else _math_problem(rng)
            for _ in range(count)
        ]
        return "\n\n".join(f"### Problem {i}\n{p}" for i, p in enumerate(problems, start=1))
    if "Solve the following math problem" in prompt:
        problem = prompt.split("Problem:", 1)[-1]
        for _, pattern, answer in MATH_TEMPLATES:
            match = re.search(pattern, problem)
            if match:
                value = answer(*(int(x) for x in match.groups()))
                roll = rng.random()
                if roll < 0.05:
                    return "I am not sure how to solve this."
                if roll < 0.2:
                    value += rng.choice([-1, 1, 10])
                return _solution(problem, value)
        # a problem the responder cannot compute: a stable answer per problem, with per-sample noise
        value = _rng(problem.strip()).randint(1, 99) + (rng.choice([1, 2]) if rng.random() < 0.2 else 0)
        return _solution(problem, value)
    if "natural-language inference examples" in prompt:
        if rng.random() < unparsable_rate:
            return "Here are a few thoughts about inference."
        targets = re.findall(r"whose relation is (entailment|neutral|contradiction)>", prompt) or ["neutral"]
        blocks = []
        for i, target in enumerate(targets, start=1):
            premise, hypothesis = _nli_pair(rng, target)
            blocks.append(f"### Pair {i}\nPremise: {premise}\nHypothesis: {hypothesis}")
        return "\n\n".join(blocks)
    if "Read the premise and the hypothesis" in prompt:
        hypothesis = prompt.split("Hypothesis:", 1)[-1]
        truth = "contradiction" if "Nobody" in hypothesis else "neutral" if "th time" in hypothesis else "entailment"
        if rng.random() < 0.15:
            truth = rng.choice(["entailment", "neutral", "contradiction"])
        return f"The premise settles this.\nLabel: {truth}"
    if "paraphrases of the same item" in prompt:
        match = re.search(r"Text A:\n(.*)\n\nText B:\n(.*)\n\nReply", prompt, re.DOTALL)
        if not match:
            return "no"
        a, b = (set(re.findall(r"\w+", part.lower())) for part in match.groups())
        return "yes" if len(a & b) / max(1, len(a | b)) >= 0.7 else "no"
    return "ok"


class TemplateWalkResponder:
    """A math generator that writes variants near its shots, over the bundled sample's solution templates.

    For each problem a generation prompt asks for, it picks one of the prompt's shots at random and looks up the
    shot's template (the bundled sample's label, or the template it generated the shot from); with probability
    ``drift`` it moves to a neighbouring template on a fixed ring of the templates (one step either way), otherwise
    it keeps the shot's; it then writes a fresh instance of that template (new names, numbers and phrasing, with the
    template's own worked solution, from ``gvendi/data/_math_generators.py``). The solver answers a problem it
    knows with that worked solution (``unsure`` of the samples say they cannot solve it); everything else falls back
    to :func:`scripted_responder`.

    So what the pool gains depends only on the shots it is shown: with shots drawn uniformly, new problems copy the
    pool's template mix and reach unseen templates only by slow drift from the common ones, and diversity can
    saturate; shots drawn from rare regions reach new templates sooner. This is a designed stand-in for "an LLM
    writes variants of its examples", not evidence that a given LLM behaves so.
    """

    def __init__(self, drift: float = 0.25, unsure: float = 0.1):
        from gvendi.data import load_math_sample
        from gvendi.data._math_generators import TEMPLATES

        self.drift, self.unsure = drift, unsure
        self.templates = TEMPLATES
        self.ring = sorted(TEMPLATES)
        self.known: dict[str, tuple[str, str]] = {}  # problem → (template, worked solution)
        for row in load_math_sample():
            self.known[row["problem"].strip()] = (row["template"], row["solution"])

    def __call__(self, prompt: str, seed: int | None, unparsable_rate: float) -> str:
        rng = _rng("walk", prompt, seed)
        if "new math problems" in prompt:
            count = len(re.findall(r"### Problem \d+\n<the problem statement>", prompt)) or 1
            shots = [shot.strip() for shot in re.findall(r"Example \d+:\n(.*?)\n\n", prompt, re.DOTALL)]
            templates = [self.known[shot][0] for shot in shots if shot in self.known]
            if not templates:
                return scripted_responder(prompt, seed, unparsable_rate)
            problems = []
            for _ in range(count):
                index = self.ring.index(rng.choice(templates))
                if rng.random() < self.drift:
                    index = (index + rng.choice((-1, 1))) % len(self.ring)
                template = self.ring[index]
                problem, solution, _ = self.templates[template](rng)
                self.known.setdefault(problem.strip(), (template, solution))
                problems.append(problem)
            return "\n\n".join(f"### Problem {i}\n{p}" for i, p in enumerate(problems, start=1))
        if "Solve the following math problem" in prompt:
            problem = prompt.split("Problem:", 1)[-1].strip()
            if problem in self.known:
                return "I am not sure how to solve this." if rng.random() < self.unsure else self.known[problem][1]
        return scripted_responder(prompt, seed, unparsable_rate)


class LoopbackTGIServer:
    """A TGI-compatible server on ``127.0.0.1`` (a free port), run on a background thread.

    Args:
        mode: ``"scripted"`` or ``"model"``.
        model_path: the model folder for ``model`` mode (default: gvendi's bundled tiny model).
        seed: seeds every scripted decision.
        delay: seconds every answer waits before it is sent (the benchmark uses 0.1).
        rate_429, rate_503, rate_timeout, rate_slow, rate_malformed, rate_reset: fault rates per attempt.
        timeout_delay: how long a "timeout" answer stalls (longer than the client's timeout).
        slow_delay: extra seconds of a slow answer.
        retry_after: the ``Retry-After`` seconds sent with 503.
        unparsable_rate: fraction of scripted generations that are unusable prose.
        max_new_tokens_cap: upper bound on tokens generated in ``model`` mode (keeps tests fast).
        max_concurrent: requests served at once; more get 429, as TGI's ``--max-concurrent-requests``.
        max_lifetime: the server stops itself after this many seconds.
        behaviour: ``None`` (a working server) or a broken endpoint: ``html``, ``404``, ``garbage``, ``always429``,
            ``hang_after_probe`` (see the module docstring).
        responder: in ``scripted`` mode, ``"scripted"`` (:func:`scripted_responder`) or ``"template-walk"``
            (:class:`TemplateWalkResponder`: math problems written as variants near their shots).
        drift: the template-walk responder's probability of moving to a neighbouring template.
    """

    BEHAVIOURS = (None, "html", "404", "garbage", "always429", "hang_after_probe", "reject_after_probe")

    def __init__(
        self,
        mode: str = "scripted",
        *,
        model_path: str | None = None,
        seed: int = 0,
        delay: float = 0.0,
        rate_429: float = 0.0,
        rate_503: float = 0.0,
        rate_timeout: float = 0.0,
        rate_slow: float = 0.0,
        rate_malformed: float = 0.0,
        rate_reset: float = 0.0,
        timeout_delay: float = 3.0,
        slow_delay: float = 0.2,
        retry_after: int = 1,
        unparsable_rate: float = 0.1,
        max_new_tokens_cap: int = 32,
        max_concurrent: int = 512,
        max_lifetime: float = 900.0,
        behaviour: str | None = None,
        responder: str = "scripted",
        drift: float = 0.25,
    ):
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {self.BEHAVIOURS}, got {behaviour!r}.")
        self.behaviour = behaviour
        if mode not in ("scripted", "model"):
            raise ValueError(f"mode must be 'scripted' or 'model', got {mode!r}.")
        self.mode = mode
        if responder not in ("scripted", "template-walk"):
            raise ValueError(f"responder must be 'scripted' or 'template-walk', got {responder!r}.")
        self._respond = scripted_responder if responder == "scripted" else TemplateWalkResponder(drift=drift)
        self.model_path = model_path
        self.seed = seed
        self.delay = delay
        self.rates = [
            ("429", rate_429),
            ("503", rate_503),
            ("timeout", rate_timeout),
            ("slow", rate_slow),
            ("malformed", rate_malformed),
            ("reset", rate_reset),
        ]
        self.timeout_delay = timeout_delay
        self.slow_delay = slow_delay
        self.retry_after = retry_after
        self.unparsable_rate = unparsable_rate
        self.max_new_tokens_cap = max_new_tokens_cap
        self.max_concurrent = max_concurrent
        self.max_lifetime = max_lifetime
        self.stats: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._model = None
        self._model_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackTGIServer:
        if self.mode == "model":
            self._load_model()
        ready = threading.Event()
        errors: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.call_later(self.max_lifetime, loop.stop)
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=serve, name="loopback-tgi", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    async def _start_site(self) -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/", self._generate_root)
        app.router.add_post("/generate", self._generate)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/health", self._health)
        app.router.add_get("/info", self._info)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> LoopbackTGIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- answers --------------------------------------------------------------------------------------------------
    def _load_model(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.model_path
        if path is None:
            from gvendi.data import TINY_PROXY_PATH

            path = str(TINY_PROXY_PATH)
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModelForCausalLM.from_pretrained(path).eval()

    def _model_generate(self, text: str, max_new_tokens: int, temperature: float, seed: int | None) -> str:
        import torch

        tokenizer, model = self._tokenizer, self._model
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with self._model_lock, torch.no_grad():
            torch.manual_seed(seed if seed is not None else 0)
            output = model.generate(
                **inputs,
                max_new_tokens=max(1, min(max_new_tokens, self.max_new_tokens_cap)),
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    async def _answer(self, text: str, params: dict[str, Any], chat_messages: list | None = None) -> str:
        seed = params.get("seed")
        if text.rstrip().endswith("ping") or "user\nping<|im_end|>" in text:
            self.stats["probes"] += 1  # the client's reachability check
        if self.mode == "scripted":
            return self._respond(text, seed, self.unparsable_rate)
        if chat_messages is not None:
            text = self._tokenizer.apply_chat_template(chat_messages, tokenize=False, add_generation_prompt=True)
        max_new = int(params.get("max_new_tokens") or params.get("max_tokens") or 16)
        temperature = float(params.get("temperature") or 0.0)
        return await asyncio.get_running_loop().run_in_executor(
            None, self._model_generate, text, max_new, temperature, seed
        )

    def _fault(self, body: bytes) -> str | None:
        key = hashlib.sha256(body).hexdigest()
        with self._lock:
            self._seen[key] += 1
            attempt = self._seen[key]
        roll = _rng(self.seed, key, attempt).random()
        edge = 0.0
        for kind, rate in self.rates:
            edge += rate
            if roll < edge:
                return kind
        return None

    async def _serve(self, request: web.Request, route: str) -> web.StreamResponse:
        body = await request.read()
        with self._lock:
            self.stats["requests"] += 1
            self.stats[f"route_{route}"] += 1
            self._in_flight += 1
            busy = self._in_flight > self.max_concurrent
        try:
            broken = await self._broken(request, body)
            if broken is not None:
                return broken
            if busy:
                self.stats["429_busy"] += 1
                return self._error(route, 429, "Model is overloaded", "overloaded")
            try:
                payload = json.loads(body)
            except json.JSONDecodeError:
                return self._error(route, 422, "body is not JSON", "validation")
            fault = self._fault(body) if self.mode == "scripted" else None
            if fault:
                self.stats[fault] += 1
            if fault == "429":
                return self._error(route, 429, "Model is overloaded", "overloaded")
            if fault == "503":
                return web.json_response(
                    {"error": "Service Unavailable"}, status=503, headers={"Retry-After": str(self.retry_after)}
                )
            if fault == "timeout":
                await asyncio.sleep(self.timeout_delay)
            if fault == "slow":
                await asyncio.sleep(self.slow_delay)
            if self.delay:
                await asyncio.sleep(self.delay)
            if fault == "reset":
                request.transport.close()
                return web.Response(status=500)
            if route == "chat":
                messages = payload.get("messages") or []
                text = "\n".join(str(m.get("content", "")) for m in messages)
                answer = await self._answer(text, payload, chat_messages=messages)
                result: Any = {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": payload.get("model") or "loopback",
                    "system_fingerprint": "loopback",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": answer},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                }
            else:
                params = payload.get("parameters") or {}
                answer = await self._answer(str(payload.get("inputs", "")), params)
                result = {"generated_text": answer}
                if route == "root":
                    result = [result]
            text = json.dumps(result)
            if fault == "malformed":
                return web.Response(text=text[: max(1, len(text) // 2)], content_type="application/json")
            self.stats["ok"] += 1
            return web.Response(text=text, content_type="application/json")
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _broken(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        """The answer of a broken endpoint (``behaviour``), or ``None`` to serve normally."""
        kind = self.behaviour
        if kind is None:
            return None
        self.stats[f"behaviour_{kind}"] += 1
        if kind == "html":
            page = "<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>"
            return web.Response(text=page, content_type="text/html")
        if kind == "404":
            return web.json_response({"detail": "Not Found"}, status=404)
        if kind == "garbage":
            return web.Response(body=random.Random(len(body)).randbytes(256), content_type="application/octet-stream")
        if kind == "always429":
            return self._error("", 429, "Model is overloaded", "overloaded")
        if kind in ("hang_after_probe", "reject_after_probe"):
            try:
                payload = json.loads(body)
            except json.JSONDecodeError:
                payload = {}
            tokens = (payload.get("parameters") or {}).get("max_new_tokens", payload.get("max_tokens"))
            probe = tokens == 1 and "ping" in json.dumps(payload.get("inputs", payload.get("messages", "")))
            if not probe and kind == "reject_after_probe":
                return self._error("", 422, "Input validation error: refused by the test server", "validation")
            if not probe:
                await asyncio.sleep(self.timeout_delay)
            return None
        return None

    @staticmethod
    def _error(route: str, status: int, message: str, error_type: str) -> web.Response:
        return web.json_response({"error": message, "error_type": error_type}, status=status)

    async def _generate_root(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "root")

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "generate")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, "chat")

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _info(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "model_id": "gvendi/loopback-tiny" if self.mode == "model" else "gvendi/loopback-scripted",
                "model_dtype": "float32",
                "max_concurrent_requests": self.max_concurrent,
                "version": "loopback",
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["scripted", "model"], default="scripted")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-lifetime", type=float, default=900.0)
    parser.add_argument("--behaviour", choices=[b for b in LoopbackTGIServer.BEHAVIOURS if b], default=None)
    parser.add_argument("--timeout-delay", type=float, default=3.0)
    parser.add_argument("--responder", choices=["scripted", "template-walk"], default="scripted")
    parser.add_argument("--drift", type=float, default=0.25)
    for kind in ("429", "503", "timeout", "slow", "malformed", "reset"):
        parser.add_argument(f"--rate-{kind}", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = LoopbackTGIServer(
        args.mode,
        seed=args.seed,
        delay=args.delay,
        max_lifetime=args.max_lifetime,
        behaviour=args.behaviour,
        timeout_delay=args.timeout_delay,
        responder=args.responder,
        drift=args.drift,
        **{f"rate_{k}": getattr(args, f"rate_{k}") for k in ("429", "503", "timeout", "slow", "malformed", "reset")},
    ).start()
    print(f"PORT {server.port}", flush=True)
    try:
        server._thread.join()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
