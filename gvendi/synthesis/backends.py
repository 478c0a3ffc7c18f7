"""Text-generation backends behind one async interface, with retries, timeouts and rate limits.

Three backends share :meth:`Backend.generate`:

- ``tgi``: TGI's native generate route (``POST /``) through ``huggingface_hub.AsyncInferenceClient.text_generation``;
- ``openai``: the OpenAI-compatible chat route (``POST /v1/chat/completions``) that TGI, vLLM and SGLang serve,
  through ``AsyncInferenceClient(base_url=.../v1).chat_completion(model=...)``;
- ``local``: in-process ``transformers`` generation (no server).

The base class owns the loop: a concurrency cap (semaphore), an optional requests-per-minute cap, a per-attempt
timeout, and retries with exponential backoff and full jitter (:func:`gvendi.utils.backoff_delay`) on
429/503/424/5xx, timeouts, connection errors and malformed bodies, honouring ``Retry-After``. A request that still
fails comes back as a failed :class:`GenerationResult` carrying its error; it is never dropped. A programming error
(``TypeError``, ``KeyError``, ``AttributeError``… raised outside the HTTP client's response parsing) is a bug, not
a bad answer: it is neither retried nor recorded, it propagates.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..utils import backoff_delay
from .config import EndpointConfig

logger = logging.getLogger(__name__)

__all__ = [
    "Backend",
    "EndpointError",
    "EndpointMismatchError",
    "EndpointOverloadedError",
    "EndpointStalledError",
    "EndpointUnreachableError",
    "GenerationParams",
    "GenerationResult",
    "LocalBackend",
    "MalformedResponseError",
    "OpenAIBackend",
    "TGIBackend",
    "classify_error",
    "make_backend",
    "render_messages",
]

Messages = list[dict[str, str]]

_RETRYABLE_STATUS = {408, 409, 424, 425, 429, 500, 502, 503, 504}


class MalformedResponseError(ValueError):
    """The server answered, but the body is not what the route promises (no generated text, an empty choice list):
    retried like a truncated body."""


class EndpointUnreachableError(ConnectionError):
    """The endpoint could not be reached at all (connection refused, DNS failure, offline mode)."""


class EndpointError(RuntimeError):
    """The endpoint answered, but a run cannot go on with it; ``exit_code`` is what ``gvendi synthesize`` returns."""

    exit_code = 1


class EndpointMismatchError(EndpointError):
    """The endpoint answers, but not as the chosen backend speaks (an HTML page, a 404, bytes that are not JSON):
    the URL or ``--backend`` is wrong."""

    exit_code = 2


class EndpointOverloadedError(EndpointError):
    """The endpoint answered every probe with 429/503/5xx for the whole probe window."""


class EndpointStalledError(EndpointError):
    """The endpoint answered the probe, but no real request finished within the per-attempt timeout."""


# attempts that time out before any request of a backend has ever succeeded: then the endpoint is stalled
STALL_TIMEOUTS = 3


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters of one request; ``seed`` makes servers that honour it reproducible."""

    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": list(self.stop),
        }


@dataclass
class GenerationResult:
    """The outcome of one request after all retries: ``text`` when ``ok``, else ``error``."""

    ok: bool
    text: str | None = None
    error: str | None = None
    attempts: int = 0
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class ErrorInfo:
    """How :func:`classify_error` sees one exception."""

    kind: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    message: str = ""

    def describe(self) -> str:
        status = f" {self.status}" if self.status else ""
        return f"{self.kind}{status}: {self.message}"[:500]


def _httpx_module():
    for name in ("httpx2", "httpx"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def _retry_after(response: Any) -> float | None:
    if response is None:
        return None
    try:
        value = response.headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _response_of(exc: BaseException) -> Any:
    seen = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if response is not None and hasattr(response, "status_code"):
            return response
        current = current.__cause__ or current.__context__
    return None


def classify_error(exc: BaseException) -> ErrorInfo:
    """Map an exception from any route to a kind, a status, retryability and a ``Retry-After`` delay.

    Covers ``huggingface_hub``'s TGI errors on the generate route (``OverloadedError`` for 429,
    ``ValidationError`` for 422, ``GenerationError`` for 424, ``IncompleteGenerationError``), ``HfHubHTTPError``
    with its status on the chat route, ``InferenceTimeoutError`` and ``asyncio`` timeouts, transport errors of the
    HTTP client (connect, read, remote-protocol), and malformed bodies (``JSONDecodeError``, a body the client
    could not read, :class:`MalformedResponseError`). A ``TypeError``/``KeyError``/``AttributeError``… raised
    outside the HTTP client is kind ``bug``: not retryable, and :meth:`Backend.generate` lets it propagate.
    """
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = type(exc).__name__
    response = _response_of(exc)
    status = getattr(response, "status_code", None) if response is not None else None
    retry_after = _retry_after(response)
    try:
        from huggingface_hub.errors import OfflineModeIsEnabled

        if isinstance(exc, OfflineModeIsEnabled):
            return ErrorInfo(
                "offline", False, None, None, message + " (huggingface_hub refuses every URL while HF_HUB_OFFLINE=1)"
            )
    except ImportError:
        pass
    tgi_kinds = {
        "OverloadedError": (429, True),
        "ValidationError": (422, False),
        "GenerationError": (424, True),
        "IncompleteGenerationError": (500, True),
        "UnknownError": (status or 500, True),
    }
    if name in tgi_kinds and type(exc).__module__.startswith("huggingface_hub"):
        code, retryable = tgi_kinds[name]
        return ErrorInfo(name, retryable, status or code, retry_after, message)
    if name == "InferenceTimeoutError" or isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ErrorInfo("timeout", True, None, None, message)
    if isinstance(exc, json.JSONDecodeError) or name == "JSONDecodeError":
        return ErrorInfo("malformed", True, status, None, message)
    if status is not None:
        retryable = status in _RETRYABLE_STATUS or status >= 500
        return ErrorInfo("http", retryable, int(status), retry_after, message)
    httpx = _httpx_module()
    if httpx is not None:
        if isinstance(exc, httpx.ConnectError):
            return ErrorInfo("connect", True, None, None, message)
        if isinstance(exc, httpx.TimeoutException):
            return ErrorInfo("timeout", True, None, None, message)
        if isinstance(exc, (httpx.TransportError, httpx.DecodingError)):
            return ErrorInfo("transport", True, None, None, f"{name}: {message}")
    if isinstance(exc, (ConnectionError, OSError)):
        return ErrorInfo(
            "connect" if isinstance(exc, ConnectionRefusedError) else "transport", True, None, None, message
        )
    if isinstance(exc, (MalformedResponseError, UnicodeDecodeError)) or (
        isinstance(exc, _BUG_TYPES + (ValueError,)) and _raised_by_http_client(exc)
    ):
        return ErrorInfo("malformed", True, status, None, f"{name}: {message}")
    if isinstance(exc, _BUG_TYPES):
        return ErrorInfo("bug", False, status, None, f"{name}: {message}")
    return ErrorInfo(name, False, status, retry_after, message)


# exception types that mean a mistake in the calling code, unless the HTTP client raised them reading a response
_BUG_TYPES: tuple[type[BaseException], ...] = (TypeError, KeyError, IndexError, AttributeError, NameError)
_HTTP_CLIENT_PACKAGES = ("huggingface_hub", "httpx", "httpx2", "httpcore", "aiohttp", "json")


def _raised_by_http_client(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc``'s traceback is in the HTTP client stack (a body it could not parse)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] in _HTTP_CLIENT_PACKAGES


def render_messages(messages: Messages | str, style: str = "chatml") -> str:
    """Turn chat messages into one prompt string for a raw-text route.

    ``chatml`` writes ``<|im_start|>role\\n…<|im_end|>`` turns and opens the assistant turn (Qwen's format);
    ``plain`` joins the contents with blank lines.
    """
    if isinstance(messages, str):
        return messages
    if style == "plain":
        return "\n\n".join(m["content"] for m in messages) + "\n\n"
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


class _RateLimiter:
    """Spaces request starts at least ``60 / rpm`` seconds apart."""

    def __init__(self, requests_per_minute: float | None):
        self.interval = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class Backend:
    """Base class: the retry/timeout/concurrency loop around one ``_generate_once`` call.

    Subclasses implement :meth:`_generate_once` (one attempt, raising on any failure) and may override
    :meth:`aclose`. Create and use a backend inside one running event loop.

    Args:
        endpoint (`EndpointConfig`): URL, model, concurrency, timeout, retries and rate limit.
        backoff_base (`float`, *optional*, defaults to 0.5): first backoff in seconds; doubles per retry.
        backoff_max (`float`, *optional*, defaults to 30): backoff ceiling in seconds.
        retry_after_max (`float`, *optional*, defaults to 120): longest ``Retry-After`` honoured.
    """

    name = "base"
    route = ""

    def __init__(
        self,
        endpoint: EndpointConfig,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 120.0,
        rng: random.Random | None = None,
    ):
        self.endpoint = endpoint
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self._semaphore: asyncio.Semaphore | None = None
        self._limiter: _RateLimiter | None = None
        self._jitter = rng or random.Random()
        self._ever_ok = False
        self._timeouts_before_ok = 0

    @property
    def target(self) -> str:
        """The URL (or model) requests go to, for messages."""
        return (
            f"{self.endpoint.url.rstrip('/')}{self.route}" if self.endpoint.url else f"local model {self.model_name}"
        )

    @property
    def model_name(self) -> str | None:
        return self.endpoint.model

    @property
    def attempt_timeout(self) -> float | None:
        """Seconds one attempt may take (``None``: no limit)."""
        return self.endpoint.timeout

    @property
    def concurrency(self) -> int:
        return self.endpoint.max_concurrency

    def _ensure_loop_state(self) -> None:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._limiter = _RateLimiter(self.endpoint.requests_per_minute)

    async def _generate_once(self, prompt: Messages | str, params: GenerationParams) -> str:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections."""

    def _backoff(self, attempt: int, info: ErrorInfo) -> float:
        return backoff_delay(
            attempt,
            base=self.backoff_base,
            cap=self.backoff_max,
            rng=self._jitter,
            retry_after=info.retry_after,
            retry_after_max=self.retry_after_max,
        )

    async def generate(self, prompt: Messages | str, params: GenerationParams) -> GenerationResult:
        """Send one request, retrying transient failures; never raises for a failed request.

        Args:
            prompt: a prompt string, or chat messages ``[{"role": ..., "content": ...}, ...]``.
            params (`GenerationParams`): sampling parameters.

        Returns:
            `GenerationResult`: ``ok`` with ``text``, or not ``ok`` with ``error`` (the last failure) and
            ``errors`` (every attempt's failure).

        Raises:
            EndpointUnreachableError: when the endpoint refuses connections through every retry, or when
                ``huggingface_hub`` is in offline mode (a failure of the request itself is returned, not raised).
        """
        self._ensure_loop_state()
        assert self._semaphore is not None and self._limiter is not None
        errors: list[str] = []
        start = time.monotonic()
        attempt = 0
        async with self._semaphore:
            while True:
                await self._limiter.wait()
                attempt += 1
                try:
                    text = await asyncio.wait_for(self._generate_once(prompt, params), self.attempt_timeout)
                    if not isinstance(text, str):
                        raise MalformedResponseError(f"expected generated text, got {type(text).__name__}")
                    self._ever_ok = True
                    return GenerationResult(True, text, None, attempt, time.monotonic() - start, errors)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is classified and recorded
                    info = classify_error(exc)
                    if info.kind == "bug":
                        raise
                    if isinstance(exc, asyncio.TimeoutError):
                        info.message = f"no answer within {self.endpoint.timeout:g}s"
                    errors.append(info.describe())
                    if info.kind == "timeout" and not self._ever_ok:
                        self._timeouts_before_ok += 1
                        if self._timeouts_before_ok >= STALL_TIMEOUTS:
                            raise EndpointStalledError(
                                f"{self.target} answered the reachability probe, but {self._timeouts_before_ok} "
                                f"requests got no answer within the {self.attempt_timeout:g}s timeout and none has "
                                "finished: the server is stalled (or the model needs a longer --timeout). Finished "
                                "requests are saved; fix the server and resume the run."
                            ) from exc
                    if info.kind == "offline":
                        raise EndpointUnreachableError(f"cannot reach {self.target}: {info.message}") from exc
                    if not info.retryable or attempt > self.endpoint.max_retries:
                        if info.kind == "connect":
                            # the server is gone, not this request: stop the run instead of recording a failure
                            raise EndpointUnreachableError(
                                f"{self.target} stopped accepting connections ({attempt} attempts: "
                                f"{'; '.join(dict.fromkeys(errors))}); finished requests are saved, resume the "
                                "run once the server is back."
                            ) from exc
                        return GenerationResult(
                            False, None, info.describe(), attempt, time.monotonic() - start, errors
                        )
                    delay = self._backoff(attempt - 1, info)
                    logger.debug("retry %d for %s after %.2fs: %s", attempt, self.target, delay, info.describe())
                    await asyncio.sleep(delay)

    async def check_reachable(self, *, attempts: int = 3, interval: float = 0.5, busy_window: float = 10.0) -> None:
        """Fail fast when the endpoint cannot be reached, or answers but not as this backend speaks.

        Sends a one-token request. It passes when the answer is generated text (or a 422, TGI's validation error,
        which only a TGI-compatible server sends). Connection-level failures (refused, DNS, connect timeout) are
        tried ``attempts`` times; 429/503/5xx answers and resets are retried with backoff for ``busy_window``
        seconds; anything else (an HTML page, a 404, a body that is not JSON) fails at once.

        Raises:
            EndpointUnreachableError: nothing answered, naming the URL and what was tried.
            EndpointMismatchError: something answered, but not a ``tgi``/``openai`` server at that URL.
            EndpointOverloadedError: every probe answer in ``busy_window`` seconds was 429/503/5xx.
        """
        tried: list[str] = []
        busy: list[str] = []
        params = GenerationParams(max_new_tokens=1, temperature=1.0, top_p=0.95, seed=0)
        probe_timeout = min(self.endpoint.timeout, 10.0)
        busy_until: float | None = None
        probes = 0
        # bounded: at most `attempts` connection failures, and busy answers only until `busy_window` has passed
        while True:
            probes += 1
            try:
                text = await asyncio.wait_for(
                    self._generate_once([{"role": "user", "content": "ping"}], params), probe_timeout
                )
                if not isinstance(text, str):
                    raise MalformedResponseError(f"expected generated text, got {type(text).__name__}")
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified
                info = classify_error(exc)
                if info.kind == "bug":
                    raise
                if info.kind in ("connect", "offline", "timeout"):
                    tried.append(info.describe())
                    if info.kind == "offline" or len(tried) >= attempts:
                        break
                    await asyncio.sleep(interval)
                    continue
                if info.status == 422:
                    return  # TGI validated (and refused) the probe: a TGI-compatible server is there
                if info.retryable and info.kind != "malformed":
                    now = time.monotonic()
                    busy_until = busy_until if busy_until is not None else now + busy_window
                    busy.append(info.describe())
                    if now >= busy_until:
                        raise EndpointOverloadedError(
                            f"{self.target} answered all {probes} probes over {busy_window:g}s with "
                            f"{'; '.join(dict.fromkeys(busy))[:300]}: it is overloaded or still loading. Try again "
                            "later, lower --concurrency, or point at another server."
                        ) from None
                    await asyncio.sleep(min(self._backoff(len(busy) - 1, info), max(0.05, busy_until - now)))
                    continue
                raise EndpointMismatchError(self._mismatch_message(exc, info)) from None
        raise EndpointUnreachableError(
            f"cannot reach the {self.name} endpoint {self.target}: tried a 1-token request {len(tried)} time(s) "
            f"({'; '.join(dict.fromkeys(tried))}). Check that the server is running and the URL is right "
            f"(tgi: the server root, openai: the base URL without /v1)."
        )

    def _mismatch_message(self, exc: BaseException, info: ErrorInfo) -> str:
        body = getattr(exc, "doc", None) or getattr(exc, "object", None)
        if isinstance(body, bytes):
            body = body[:60].decode("utf-8", "backslashreplace")
        seen = f"; it sent {str(body)[:60]!r}" if body else ""
        if info.status in (401, 403):
            fix = "check the API key (--api-key-env VAR names the environment variable that holds it)."
        elif self.name == "tgi":
            fix = (
                "pass the root URL of a TGI server (http://host:port, no /v1), or --backend openai for an "
                "OpenAI-compatible server (vLLM, SGLang, TGI's chat route)."
            )
        else:
            fix = "pass the base URL of an OpenAI-compatible server (http://host:port or http://host:port/v1)."
        return (
            f"{self.target} answered the 1-token probe, but not as a {self.name} server "
            f"({info.describe()[:160]}{seen}): {fix}"
        )


def _api_key(endpoint: EndpointConfig) -> str | None:
    if endpoint.api_key_env is None:
        return None
    import os

    key = os.environ.get(endpoint.api_key_env)
    if not key:
        raise ValueError(
            f"api_key_env names {endpoint.api_key_env!r}, but that environment variable is not set; export it or "
            "drop api_key_env."
        )
    return key


class TGIBackend(Backend):
    """TGI's native generate route through ``huggingface_hub.AsyncInferenceClient(base_url=url).text_generation``.

    Chat messages are rendered into one prompt with ``endpoint.chat_template`` (``chatml`` by default).
    """

    name = "tgi"
    route = "/"

    def __init__(self, endpoint: EndpointConfig, **kwargs):
        super().__init__(endpoint, **kwargs)
        self._client = None
        self._api_key = _api_key(endpoint)  # checked now: a missing variable is a configuration error

    def _get_client(self):
        if self._client is None:
            from huggingface_hub import AsyncInferenceClient

            self._client = AsyncInferenceClient(
                base_url=self.endpoint.url.rstrip("/"), timeout=self.endpoint.timeout, api_key=self._api_key
            )
        return self._client

    async def _generate_once(self, prompt: Messages | str, params: GenerationParams) -> str:
        text = render_messages(prompt, self.endpoint.chat_template)
        return await self._get_client().text_generation(
            text,
            max_new_tokens=params.max_new_tokens,
            temperature=params.temperature if params.temperature > 0 else None,
            top_p=params.top_p if 0 < params.top_p < 1 else None,
            do_sample=params.temperature > 0,
            seed=params.seed,
            stop=list(params.stop) or None,
        )

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class OpenAIBackend(Backend):
    """The OpenAI-compatible chat route (``/v1/chat/completions``) of TGI, vLLM or SGLang.

    Uses ``huggingface_hub.AsyncInferenceClient(base_url=url + "/v1").chat_completion(model=...)``; ``url`` may be
    given with or without the ``/v1`` suffix. ``model`` defaults to ``"tgi"`` (what TGI accepts).
    """

    name = "openai"
    route = "/v1/chat/completions"

    def __init__(self, endpoint: EndpointConfig, **kwargs):
        super().__init__(endpoint, **kwargs)
        self._client = None
        self._api_key = _api_key(endpoint)  # checked now: a missing variable is a configuration error

    @property
    def target(self) -> str:
        return f"{self._base_url()}/chat/completions"

    def _base_url(self) -> str:
        url = self.endpoint.url.rstrip("/")
        return url if url.endswith("/v1") else url + "/v1"

    def _get_client(self):
        if self._client is None:
            from huggingface_hub import AsyncInferenceClient

            self._client = AsyncInferenceClient(
                base_url=self._base_url(), timeout=self.endpoint.timeout, api_key=self._api_key
            )
        return self._client

    async def _generate_once(self, prompt: Messages | str, params: GenerationParams) -> str:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        output = await self._get_client().chat_completion(
            messages,
            model=self.endpoint.model or "tgi",
            max_tokens=params.max_new_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
        )
        try:
            content = output.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise MalformedResponseError(f"chat completion without a first choice's message ({exc})") from None
        if content is None:
            raise MalformedResponseError("chat completion has no message content")
        return content

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class LocalBackend(Backend):
    """In-process ``transformers`` generation: the embedded default that needs no server.

    ``endpoint.model`` is a local model folder, a Hub id, or ``"tiny"`` / ``None`` for the bundled tiny proxy
    (trained on the bundled samples only: good for plumbing, not for data). Requests run one at a time in a worker
    thread, each with its own sampling seed, so answers are reproducible; ``timeout`` and ``max_concurrency`` do not
    apply. ``chat_template="tokenizer"`` uses the model's own template, ``chatml``/``plain`` render as in
    :func:`render_messages`.
    """

    name = "local"
    _model_cache: dict[str, tuple[Any, Any]] = {}
    _model_lock = threading.Lock()
    # one generation at a time, and no per-attempt timeout: a worker thread cannot be interrupted, so a timed-out
    # attempt would keep the model busy while its retry queued behind it
    concurrency = 1
    attempt_timeout = None

    def __init__(self, endpoint: EndpointConfig, **kwargs):
        super().__init__(endpoint, **kwargs)
        self._loaded: tuple[Any, Any] | None = None

    @property
    def model_name(self) -> str:
        return self.endpoint.model or "tiny"

    def _model_path(self) -> str:
        from gvendi.proxy import resolve_proxy_path

        return resolve_proxy_path(self.model_name)

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            path = self._model_path()
            with self._model_lock:
                if path not in self._model_cache:
                    from transformers import AutoModelForCausalLM, AutoTokenizer

                    tokenizer = AutoTokenizer.from_pretrained(path)
                    model = AutoModelForCausalLM.from_pretrained(path)
                    model.eval()
                    self._model_cache[path] = (model, tokenizer)
                self._loaded = self._model_cache[path]
        return self._loaded

    def _generate_sync(self, prompt: Messages | str, params: GenerationParams) -> str:
        import torch

        model, tokenizer = self._load()
        if self.endpoint.chat_template == "tokenizer" and not isinstance(prompt, str):
            text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        else:
            text = render_messages(prompt, self.endpoint.chat_template)
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        do_sample = params.temperature > 0
        with self._model_lock, torch.no_grad():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            output = model.generate(
                **inputs,
                max_new_tokens=params.max_new_tokens,
                do_sample=do_sample,
                temperature=params.temperature if do_sample else None,
                top_p=params.top_p if do_sample else None,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )
        completion = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        for stop in params.stop:
            completion = completion.split(stop)[0]
        return completion

    async def _generate_once(self, prompt: Messages | str, params: GenerationParams) -> str:
        return await asyncio.to_thread(self._generate_sync, prompt, params)

    async def check_reachable(self, *, attempts: int = 3, interval: float = 0.5, busy_window: float = 10.0) -> None:
        try:
            await asyncio.to_thread(self._load)
        except Exception as exc:  # noqa: BLE001
            raise EndpointUnreachableError(
                f"cannot load the local model {self.model_name!r} ({type(exc).__name__}: {exc}). Pass a local model "
                "folder, a cached Hub id, or 'tiny'."
            ) from exc


def make_backend(endpoint: EndpointConfig, **kwargs) -> Backend:
    """The backend named by ``endpoint.backend``."""
    classes = {"tgi": TGIBackend, "openai": OpenAIBackend, "local": LocalBackend}
    if endpoint.backend not in classes:
        raise ValueError(f"unknown backend {endpoint.backend!r}; choose one of {sorted(classes)}.")
    return classes[endpoint.backend](endpoint, **kwargs)
