"""OpenAI Images API backend (``images.generate``, ``images.edit``, ``images.create_variation``).

Each request is one ``images.generate`` call with ``n=1`` (an image per request keeps the
unit of work, its prompt and its cost per image; dall-e-3 allows nothing else anyway).
Calls run concurrently on an ``AsyncOpenAI`` client in a private event loop on a worker
thread, at most ``concurrency`` at a time, and results are yielded to the caller's thread
as each one completes.

Guided requests (an ``init_image``, see :mod:`synthaug.generate.guided`) send the real
image as a PNG: gpt-image models through ``images.edit`` with the prompt, ``dall-e-2``
through ``images.create_variation`` (no prompt; the image is resized to the square output
size, as the endpoint requires). ``dall-e-3`` takes no input image. Neither endpoint has a
strength, so a strength is refused. An edit's estimated cost adds the input image
(:func:`synthaug.generate.pricing.edit_input_price`); a variation costs what a generated
image of its size costs.

Per-model rules are checked before anything is sent (:data:`MODEL_RULES`):

- ``dall-e-2``: sizes 256x256, 512x512, 1024x1024; quality ``standard`` only; no style.
- ``dall-e-3``: sizes 1024x1024, 1792x1024, 1024x1792; quality ``standard``/``hd``;
  style ``vivid``/``natural``; n=1 only; returns a revised prompt.
- ``gpt-image-1`` (and ``-mini``, ``1.5``): sizes 1024x1024, 1536x1024, 1024x1536,
  ``auto``; quality ``low``/``medium``/``high``/``auto``; always base64, so the
  ``response_format`` option is rejected; returns token ``usage``.
- ``gpt-image-2`` and newer: also any ``WIDTHxHEIGHT`` with both sides divisible by 16, an
  aspect ratio within 1:3..3:1 and at most 3840x2160 pixels; ``gpt-image-2.5`` and newer
  add quality ``xhigh``/``max``.

(As of the SDK's own documentation, OpenAI has retired dall-e-2/-3 and gpt-image-1 on its
own endpoint; compatible endpoints set through ``OPENAI_BASE_URL`` may still serve them.)

Errors:

- HTTP 408/409/429 (rate limit)/5xx, timeouts and connection errors are retried with
  exponential backoff and jitter, waiting what a ``retry-after``/``retry-after-ms`` header
  asks when present, up to ``max_retries`` times. The SDK's own retries are switched off
  (``max_retries=0`` on the client) because the SDK retries every 429, including
  ``insufficient_quota``, which no amount of waiting fixes.
- A content-policy refusal (HTTP 400 ``content_policy_violation``/``moderation_blocked``)
  is yielded as a :class:`RejectedRequest`, never retried as is.
- A bad key (401), exhausted quota (429 ``insufficient_quota``), any other 4xx, or retries
  used up raise :class:`GenerationError` after cancelling the calls in flight.

The key is read by the SDK from ``OPENAI_API_KEY`` and the endpoint from
``OPENAI_BASE_URL``; neither the key nor the server's text around a 401 ever reaches a
message, a manifest row or ``describe()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import queue
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
from PIL import Image

from synthaug.errors import ConfigError, GenerationError
from synthaug.execution.rate import RateLimiter, Reserver
from synthaug.generate import pricing
from synthaug.generate.backends.base import (
    GeneratedImage,
    GeneratorBackend,
    ImageRequest,
    RejectedRequest,
    parse_size,
)

DEFAULT_MODEL = "gpt-image-1-mini"
REFUSAL_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
# Longest server-requested wait we honour; beyond it the run stops (the SDK uses the same cap).
MAX_RETRY_AFTER_SECONDS = 120.0
# Rough seconds per image per concurrent call, only for --dry-run time estimates.
_TYPICAL_LATENCY_SECONDS = {"dall-e-2": 5.0, "dall-e-3": 15.0, "gpt-image-1": 30.0, "gpt-image-2": 40.0}
_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{6,}")


@dataclass(frozen=True)
class ModelRules:
    """What one model family accepts.

    Attributes:
        family: Family name, used in messages and price/latency look-ups.
        sizes: Accepted sizes; ``None`` means any ``WIDTHxHEIGHT`` within the arbitrary-size
            limits of gpt-image-2 and newer, plus ``auto``.
        qualities: Accepted quality values.
        styles: Accepted style values (empty: the parameter is not supported).
        response_formats: Accepted ``response_format`` values (empty: always base64 and the
            option is rejected).
        default_size: The size the model uses when none is sent.
        max_prompt_characters: Longest prompt the API accepts.
    """

    family: str
    sizes: frozenset[str] | None
    qualities: frozenset[str]
    styles: frozenset[str]
    response_formats: frozenset[str]
    default_size: str
    max_prompt_characters: int


_GPT_IMAGE_QUALITIES = frozenset({"low", "medium", "high", "auto"})
MODEL_RULES: dict[str, ModelRules] = {
    "dall-e-2": ModelRules(
        "dall-e-2",
        sizes=frozenset({"256x256", "512x512", "1024x1024"}),
        qualities=frozenset({"standard"}),
        styles=frozenset(),
        response_formats=frozenset({"b64_json", "url"}),
        default_size="1024x1024",
        max_prompt_characters=1000,
    ),
    "dall-e-3": ModelRules(
        "dall-e-3",
        sizes=frozenset({"1024x1024", "1792x1024", "1024x1792"}),
        qualities=frozenset({"standard", "hd"}),
        styles=frozenset({"vivid", "natural"}),
        response_formats=frozenset({"b64_json", "url"}),
        default_size="1024x1024",
        max_prompt_characters=4000,
    ),
    "gpt-image-1": ModelRules(
        "gpt-image-1",
        sizes=frozenset({"1024x1024", "1536x1024", "1024x1536", "auto"}),
        qualities=_GPT_IMAGE_QUALITIES,
        styles=frozenset(),
        response_formats=frozenset(),
        default_size="auto",
        max_prompt_characters=32000,
    ),
    "gpt-image-2": ModelRules(
        "gpt-image-2",
        sizes=None,
        qualities=_GPT_IMAGE_QUALITIES,
        styles=frozenset(),
        response_formats=frozenset(),
        default_size="auto",
        max_prompt_characters=32000,
    ),
}
_GPT_IMAGE_NAME = re.compile(r"^gpt-image-(?P<version>\d+(?:\.\d+)?)(?:-[a-z]+)?(?:-\d{4}-\d{2}-\d{2})?$")


def model_rules(model: str) -> ModelRules:
    """The rules of ``model``: ``dall-e-2``, ``dall-e-3`` or a ``gpt-image-<version>[-variant][-date]``.

    Raises:
        ConfigError: An unknown model name.
    """
    if model in MODEL_RULES and not model.startswith("gpt-image"):
        return MODEL_RULES[model]
    match = _GPT_IMAGE_NAME.match(model)
    if match is None:
        raise ConfigError(
            f"openai model {model!r} is not an Images API model this backend knows; use dall-e-2, "
            "dall-e-3, gpt-image-1, gpt-image-1-mini or a newer gpt-image-* model"
        )
    version = float(match["version"])
    if version < 2:
        return MODEL_RULES["gpt-image-1"]
    rules = MODEL_RULES["gpt-image-2"]
    if version >= 2.5:
        rules = ModelRules(**{**rules.__dict__, "qualities": rules.qualities | {"xhigh", "max"}})
    return rules


def _check_arbitrary_size(size: str, model: str) -> None:
    width, height = parse_size(size)
    if width % 16 or height % 16:
        raise ConfigError(f"size {size!r} for {model}: width and height must be multiples of 16")
    if max(width, height) > 3 * min(width, height):
        raise ConfigError(f"size {size!r} for {model}: the aspect ratio must be between 1:3 and 3:1")
    if width * height > 3840 * 2160 or max(width, height) > 3840:
        raise ConfigError(f"size {size!r} for {model}: at most 3840x2160 pixels")


class OpenAIImagesBackend(GeneratorBackend):
    """Generate images with the OpenAI Images API.

    Args:
        model: ``dall-e-2``, ``dall-e-3``, ``gpt-image-1``, ``gpt-image-1-mini`` or a newer
            ``gpt-image-*``; default :data:`DEFAULT_MODEL`.
        concurrency: Calls in flight at once.
        max_retries: Retries of one call after a rate limit, server error or timeout.
        timeout: Seconds one call may take before it counts as timed out.
        retry_initial_delay: Backoff before the first retry, doubled each time (seconds).
        retry_max_delay: Longest backoff between retries (seconds).
        response_format: ``b64_json`` (default) or ``url`` (the image is then downloaded);
            dall-e models only, gpt-image models always answer in base64.
        price_per_image: USD per image; overrides the price table (required for a model the
            table does not list).
        images_per_minute: Your account's rate limit: calls are spaced to keep it (shared by
            every worker of a distributed run, see :mod:`synthaug.execution.rate`) and
            ``--dry-run`` estimates the time from it.
    """

    name = "openai"
    supported_params = frozenset({"size", "quality", "style"})
    supported_options = frozenset(
        {
            "concurrency",
            "max_retries",
            "timeout",
            "retry_initial_delay",
            "retry_max_delay",
            "response_format",
            "price_per_image",
            "images_per_minute",
        }
    )
    supports_init_images = True

    def __init__(
        self,
        model: str | None = None,
        *,
        concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 300.0,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        response_format: str | None = None,
        price_per_image: float | None = None,
        images_per_minute: float | None = None,
    ) -> None:
        model = model or DEFAULT_MODEL
        super().__init__(model)
        self.rules = model_rules(model)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
        if max_retries < 0 or timeout <= 0 or retry_initial_delay < 0 or retry_max_delay < 0:
            raise ConfigError("max_retries, timeout and retry delays must be positive numbers")
        if response_format is not None and response_format not in self.rules.response_formats:
            allowed = sorted(self.rules.response_formats)
            raise ConfigError(
                f"response_format {response_format!r} is not accepted by {model}"
                + (f"; choose one of {allowed}" if allowed else "; gpt-image models always return base64")
            )
        if price_per_image is None and pricing.image_price(model, None, None) is None:
            raise ConfigError(
                f"no price is known for openai model {model!r} (price table of {pricing.PRICES_AS_OF}); "
                "give price_per_image (--price-per-image USD) so the cost can be tracked"
            )
        if price_per_image is not None and price_per_image < 0:
            raise ConfigError(f"price_per_image must be >= 0, got {price_per_image}")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout = float(timeout)
        self.retry_initial_delay = float(retry_initial_delay)
        self.retry_max_delay = float(retry_max_delay)
        self.response_format = response_format or ("b64_json" if self.rules.response_formats else None)
        self.price_per_image = price_per_image
        self.images_per_minute = images_per_minute
        # Spaces the calls to keep the account's limit; a distributed run replaces it by the
        # limiter all its workers share.
        self.rate_limiter: Reserver | None = RateLimiter(images_per_minute / 60.0) if images_per_minute else None

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check ``size``, ``quality`` and ``style`` against the model's rules."""
        super().validate(params)
        rules = self.rules
        size = params.get("size")
        if size is not None:
            if rules.sizes is None:
                if size != "auto":
                    _check_arbitrary_size(size, self.model)
            elif size not in rules.sizes:
                raise ConfigError(
                    f"size {size!r} is not accepted by {self.model}; choose one of {sorted(rules.sizes)}"
                )
        quality = params.get("quality")
        if quality is not None and quality not in rules.qualities:
            raise ConfigError(
                f"quality {quality!r} is not accepted by {self.model}; choose one of {sorted(rules.qualities)}"
            )
        style = params.get("style")
        if style is not None and style not in rules.styles:
            raise ConfigError(
                f"style {style!r} is not accepted by {self.model}; "
                + (f"choose one of {sorted(rules.styles)}" if rules.styles else "only dall-e-3 takes a style")
            )

    def validate_guidance(self, strengths: Sequence[float]) -> None:
        """gpt-image models edit, ``dall-e-2`` makes variations; ``dall-e-3`` takes no image.

        Raises:
            ConfigError: ``dall-e-3``, or a strength given (neither endpoint has one).
        """
        if self.rules.family == "dall-e-3":
            raise ConfigError(
                "dall-e-3 cannot start from a real image; use a gpt-image model (images.edit) "
                "or dall-e-2 (images.create_variation) with --init-images"
            )
        if strengths:
            raise ConfigError(
                f"openai {self.model} has no strength for real images; drop --strength "
                "(the prompt steers a gpt-image edit; a dall-e-2 variation takes no prompt)"
            )

    def estimate_cost(self, request: ImageRequest) -> float:
        if self.price_per_image is not None:
            return self.price_per_image
        extra = pricing.edit_input_price(self.model) if request.init_image is not None else 0.0
        quality = request.params.get("quality")
        size = request.params.get("size", self.rules.default_size)
        price = pricing.image_price(self.model, quality, size)
        if price is None:
            raise ConfigError(
                f"the price table has no {self.model} price for quality {quality!r}, size {size!r}; "
                "give price_per_image (--price-per-image USD)"
            )
        return price + extra

    def estimate_seconds(self, n_images: int) -> float | None:
        family = "gpt-image-2" if self.rules.sizes is None else self.rules.family
        seconds = n_images * _TYPICAL_LATENCY_SECONDS[family] / self.concurrency
        if self.images_per_minute:
            seconds = max(seconds, 60.0 * n_images / self.images_per_minute)
        return seconds

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "endpoint": public_endpoint(os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"),
            "openai_sdk_version": openai.__version__,
            "price_table": pricing.PRICES_AS_OF if self.price_per_image is None else "price_per_image",
        }

    def check_ready(self) -> None:
        if not os.environ.get("OPENAI_API_KEY"):
            raise ConfigError("OPENAI_API_KEY is not set; export your OpenAI API key to use the openai backend")

    def generate(self, requests: Sequence[ImageRequest]) -> Iterator[GeneratedImage | RejectedRequest]:
        requests = list(requests)
        if not requests:
            return
        self.check_ready()
        too_long = [r.key for r in requests if len(r.prompt) > self.rules.max_prompt_characters]
        if too_long:
            raise ConfigError(
                f"prompts of {', '.join(too_long[:3])} are longer than the {self.rules.max_prompt_characters} "
                f"characters {self.model} accepts; shorten the prompt template"
            )
        for request in requests:
            self.validate(request.params)

        results: queue.Queue[GeneratedImage | RejectedRequest | BaseException] = queue.Queue()
        loop = asyncio.new_event_loop()
        task = loop.create_task(self._produce(requests, results.put))

        def run_loop() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
            loop.close()

        worker = threading.Thread(target=run_loop, name="openai-images", daemon=True)
        worker.start()
        try:
            for _ in requests:
                item = results.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # The caller stopped early (an error, Ctrl-C, max-cost): abandon calls in flight.
            with contextlib.suppress(RuntimeError):  # the loop already finished and closed
                loop.call_soon_threadsafe(task.cancel)
            worker.join()

    async def _produce(
        self, requests: list[ImageRequest], put: Callable[[GeneratedImage | RejectedRequest | BaseException], None]
    ) -> None:
        """Run every request, ``concurrency`` at a time; ``put`` each result as it completes, and
        a :class:`GenerationError` (then stop) when the run cannot go on."""
        try:
            async with (
                openai.AsyncOpenAI(max_retries=0, timeout=self.timeout) as client,
                httpx2.AsyncClient(timeout=self.timeout) as downloader,
            ):
                semaphore = asyncio.Semaphore(self.concurrency)
                stopped = asyncio.Event()

                async def bounded(request: ImageRequest) -> GeneratedImage | RejectedRequest:
                    async with semaphore:
                        # After a fatal error no new call may start, even in the moment before
                        # the waiting tasks are cancelled (a bad key must not be sent again).
                        if stopped.is_set():
                            raise GenerationError("stopped after an earlier error")
                        if self.rate_limiter is not None:
                            await asyncio.sleep(await asyncio.to_thread(self.rate_limiter.reserve))
                        try:
                            return await self._generate_one(client, downloader, request)
                        except GenerationError:
                            stopped.set()
                            raise

                tasks = [asyncio.create_task(bounded(request)) for request in requests]
                try:
                    for finished in asyncio.as_completed(tasks):
                        put(await finished)
                finally:
                    for pending in tasks:
                        pending.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
        except asyncio.CancelledError:
            raise
        except openai.OpenAIError as error:  # e.g. the client cannot be configured
            put(GenerationError(f"openai client: {redact(str(error))}"))
        except BaseException as error:
            put(error)

    async def _generate_one(
        self, client: openai.AsyncOpenAI, downloader: httpx2.AsyncClient, request: ImageRequest
    ) -> GeneratedImage | RejectedRequest:
        arguments: dict[str, Any] = {"model": self.model, "prompt": request.prompt, "n": 1}
        arguments.update({key: request.params[key] for key in self.supported_params if key in request.params})
        if self.response_format is not None:
            arguments["response_format"] = self.response_format
        call = client.images.generate
        if request.init_image is not None:
            call, arguments = self._image_call(client, request, arguments)
        for retry in range(self.max_retries + 1):
            try:
                response = await call(**arguments)
                break
            except openai.APIStatusError as error:
                if error.status_code == 400 and error.code in REFUSAL_CODES:
                    return RejectedRequest(request, reason=error_text(error), code=error.code)
                if not is_transient(error):
                    # Not chained: the SDK error carries the server's text, which may quote the key.
                    raise GenerationError(fatal_message(error, self.model)) from None
                wait = retry_after_seconds(error.response.headers)
                failure = f"HTTP {error.status_code}"
            except openai.APIConnectionError as error:  # includes APITimeoutError
                wait, failure = None, type(error).__name__
            if retry == self.max_retries:
                raise GenerationError(
                    f"OpenAI Images API still failing after {self.max_retries} retries ({failure}); "
                    "rerun the same command later to resume"
                )
            if wait is not None and wait > MAX_RETRY_AFTER_SECONDS:
                raise GenerationError(
                    f"OpenAI asks to wait {wait:.0f} s before retrying ({failure}); "
                    "rerun the same command later to resume"
                )
            if wait is None:
                backoff = min(self.retry_initial_delay * 2**retry, self.retry_max_delay)
                wait = backoff * (0.5 + random.random() / 2)  # jitter spreads concurrent retries
            await asyncio.sleep(wait)

        if not response.data:
            raise GenerationError(f"OpenAI returned no image for {request.key}; rerun to resume")
        item = response.data[0]
        if item.b64_json is not None:
            data = base64.b64decode(item.b64_json)
        elif item.url is not None:
            data = await _download(downloader, item.url)
        else:
            raise GenerationError(f"OpenAI returned neither image data nor a URL for {request.key}")
        image = Image.open(io.BytesIO(data))
        image.load()
        usage = response.usage.model_dump() if response.usage is not None else None
        cost = self.price_per_image
        if cost is None and usage is not None:
            cost = pricing.usage_cost(self.model, usage)
        if cost is None:
            cost = self.estimate_cost(request)
        return GeneratedImage(
            request=request,
            image=image,
            revised_prompt=getattr(item, "revised_prompt", None),
            cost_usd=float(cost),
            extra={"usage": usage} if usage is not None else {},
        )


    def _image_call(
        self, client: openai.AsyncOpenAI, request: ImageRequest, arguments: dict[str, Any]
    ) -> tuple[Callable[..., Any], dict[str, Any]]:
        """The endpoint and arguments of a guided request: an edit, or a dall-e-2 variation."""
        image = request.init_image.image.convert("RGB")
        if self.rules.family == "dall-e-2":
            side = parse_size(arguments.get("size", self.rules.default_size))[0]
            image = image.resize((side, side), Image.Resampling.BICUBIC)  # variations need a square PNG
            arguments = {key: value for key, value in arguments.items() if key not in ("prompt", "quality", "style")}
            call = client.images.create_variation
        else:
            call = client.images.edit
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return call, {**arguments, "image": ("image.png", buffer.getvalue(), "image/png")}


def is_transient(error: openai.APIStatusError) -> bool:
    """Worth retrying: rate limits (not an exhausted quota), lock/request timeouts and server
    errors (shared with the chat client of :mod:`synthaug.generate.expand`)."""
    if error.status_code == 429:
        return error.code != "insufficient_quota" and error.type != "insufficient_quota"
    return error.status_code in (408, 409) or error.status_code >= 500


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``retry-after-ms`` or ``retry-after`` (seconds) header asks to wait, if any."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: fall back to our own backoff
    return None


def error_text(error: openai.APIStatusError) -> str:
    body = error.body if isinstance(error.body, dict) else {}
    return redact(str(body.get("message") or error.message))


def fatal_message(error: openai.APIStatusError, model: str, api: str = "Images API") -> str:
    """One line for an error no retry fixes; never the server's text around a bad key."""
    if error.status_code == 401:
        # The server's text around a bad key may quote the key itself: leave it out.
        return "OpenAI rejected the API key (HTTP 401); set OPENAI_API_KEY to a valid key and rerun"
    if error.status_code == 429:
        return (
            "OpenAI quota exhausted (HTTP 429 insufficient_quota); add credit or raise the limit, "
            "then rerun the same command to resume"
        )
    code = f" {error.code}" if error.code else ""
    return f"OpenAI {api} refused {model} (HTTP {error.status_code}{code}): {error_text(error)}"


def redact(text: str) -> str:
    """``text`` without the API key or anything shaped like an OpenAI key."""
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        text = text.replace(key, "[redacted]")
    return _KEY_PATTERN.sub("sk-[redacted]", text)


def public_endpoint(url: str) -> str:
    """``url`` without user info, query or fragment (which could hold credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


async def _download(client: httpx2.AsyncClient, url: str, attempts: int = 3) -> bytes:
    """Fetch a generated image from its (short-lived, unauthenticated) URL."""
    for attempt in range(attempts):
        try:
            response = await client.get(url)
            response.raise_for_status()
            return response.content
        except httpx2.HTTPError as error:
            failure = type(error).__name__
            if attempt < attempts - 1:
                await asyncio.sleep(0.5 * 2**attempt)
    raise GenerationError(f"cannot download a generated image ({failure}); rerun the same command to resume")
