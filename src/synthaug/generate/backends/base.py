"""The one protocol every image generator backend follows.

The engine (:func:`synthaug.generate.generate_dataset`) plans a run as independent
:class:`ImageRequest` units, each keyed by ``(label, index)`` and carrying its own seed, and
hands them to a :class:`GeneratorBackend`. The backend yields one :class:`GeneratedImage`
or :class:`RejectedRequest` per request, in the order they finish; the engine commits each
result to disk as it arrives. Because a request is self-contained (prompt, parameters and
seed), the same plan can be split over machines and GPUs without changing any backend
(see ``docs/scaling.md``).

A backend:

- declares the generation parameters it understands in ``supported_params`` (names from
  :data:`PARAM_NAMES`) and checks their values in :meth:`GeneratorBackend.validate` before
  anything is sent or loaded, raising :class:`~synthaug.errors.ConfigError`;
- yields :class:`RejectedRequest` for a refusal that the same request would get again
  (a content-policy block) so that the engine can move on to another prompt variant;
- raises :class:`~synthaug.errors.GenerationError` for a failure that stops the run (bad
  key, exhausted quota, retries used up), after finishing or abandoning its in-flight work
  so that nothing is half-written.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from PIL import Image

from synthaug.errors import ConfigError

# Generation parameters with one meaning across backends; a backend supports a subset.
PARAM_NAMES: dict[str, str] = {
    "size": "output size as 'WIDTHxHEIGHT' (or 'auto' where the model allows it)",
    "quality": "provider quality tier (e.g. 'standard'/'hd' for dall-e-3)",
    "style": "provider style (e.g. 'vivid'/'natural' for dall-e-3)",
    "steps": "number of denoising steps",
    "guidance_scale": "classifier-free guidance scale",
    "negative_prompt": "text the image should avoid",
}

_SIZE_PATTERN = re.compile(r"^(\d+)x(\d+)$")


def parse_size(size: str) -> tuple[int, int]:
    """Parse ``'WIDTHxHEIGHT'`` into ``(width, height)``.

    Raises:
        ConfigError: If ``size`` is not two positive integers joined by ``x``.
    """
    match = _SIZE_PATTERN.match(str(size))
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise ConfigError(f"size {size!r} is not WIDTHxHEIGHT (e.g. '1024x1024')")
    return int(match[1]), int(match[2])


def check_positive_int(name: str, value: Any, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer from 1 to ``maximum``, else raise :class:`ConfigError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum and value > maximum):
        limit = f" from 1 to {maximum}" if maximum else " >= 1"
        raise ConfigError(f"{name} must be an integer{limit}, got {value!r}")
    return value


def check_denoising_params(params: Mapping[str, Any], max_steps: int | None = None) -> None:
    """Check the ``steps`` and ``guidance_scale`` parameters of a local diffusion backend.

    Raises:
        ConfigError: ``steps`` is not an integer from 1 to ``max_steps``, or
            ``guidance_scale`` is not a number >= 0.
    """
    if "steps" in params:
        check_positive_int("steps", params["steps"], max_steps)
    guidance_scale = params.get("guidance_scale", 0)
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float) or guidance_scale < 0:
        raise ConfigError(f"guidance_scale must be a number >= 0 (1 = no guidance), got {guidance_scale!r}")


@dataclass(frozen=True)
class InitImage:
    """A real image a guided request starts from (SDEdit, image-to-image, image edit).

    Attributes:
        image: The decoded image.
        file_name: Its file (relative to its dataset root), or ``SOURCE[INDEX]`` for an
            in-memory built-in dataset.
        sha256: sha256 of the file's bytes (of the pixels for an in-memory image).
        pixels_sha256: sha256 of the decoded pixels, the same whatever the file format
            (what the leakage guard compares).
    """

    image: Image.Image = field(compare=False, repr=False)
    file_name: str
    sha256: str
    pixels_sha256: str


@dataclass(frozen=True)
class ImageRequest:
    """One image to generate: an independent unit of work.

    Attributes:
        label: Class name, verbatim (may contain ``/``, spaces, anything).
        class_index: Position of ``label`` in the run's class list.
        index: Slot of this image within its class, ``0 .. per_class - 1``.
        seed: Seed of this image, derived deterministically from the run seed, the label,
            the index and the attempt; a local backend seeds its sampler with it.
        prompt: The full text prompt sent to the model.
        params: Backend generation parameters (names from :data:`PARAM_NAMES`).
        attempt: 0 for the first try of this slot; incremented each time a provider refuses
            the slot's prompt, so the engine moves to the next prompt variant and seed.
        folder: Folder name (safe slug) of the class inside the output directory; empty
            means the slug of ``label``.
        init_image: The real image this request is a variant of (guided generation), or
            ``None`` for text-to-image.
        strength: How far the real image is noised before denoising, in ``(0, 1]``
            (1 = text-to-image); ``None`` for text-to-image or a backend without strength.
        variant: Which variant of ``init_image`` this slot is (0 for the first).
    """

    label: str
    class_index: int
    index: int
    seed: int
    prompt: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    attempt: int = 0
    folder: str = ""
    init_image: InitImage | None = field(default=None, hash=False)
    strength: float | None = None
    variant: int = 0

    @property
    def key(self) -> str:
        """Stable id of the slot, also its file path without suffix: ``<folder>/<index:06d>``."""
        from synthaug.generate.slug import slugify

        return f"{self.folder or slugify(self.label)}/{self.index:06d}"


@dataclass
class GeneratedImage:
    """A finished image.

    Attributes:
        request: The request it answers.
        image: The decoded image.
        revised_prompt: The prompt the provider actually used, when it rewrites prompts
            (dall-e-3); ``None`` otherwise.
        cost_usd: Estimated cost of this image in US dollars (0 for local backends).
        extra: Backend-specific provenance recorded in the manifest row (e.g. token usage).
    """

    request: ImageRequest
    image: Image.Image
    revised_prompt: str | None = None
    cost_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RejectedRequest:
    """A request the provider refused for a reason that retrying it unchanged will not fix.

    Attributes:
        request: The refused request.
        reason: The provider's explanation (never containing credentials).
        code: Machine-readable reason, e.g. ``content_policy_violation``.
        cost_usd: What the refusal cost (providers normally charge nothing).
    """

    request: ImageRequest
    reason: str
    code: str
    cost_usd: float = 0.0


class GeneratorBackend(ABC):
    """Turns :class:`ImageRequest` units into images.

    Subclasses set ``name`` (the registry key), ``supported_params`` and
    ``supported_options``, call ``super().__init__(model, **options)`` first, implement
    :meth:`generate` and :meth:`describe`, and extend :meth:`validate` with their own value
    checks. ``__init__`` takes the model (hub id, local path or provider model name) and
    keyword options (``device``, ``dtype``, ``batch_size``, ``concurrency``...); it should
    be cheap or fail fast with a :class:`ConfigError`; heavy loading may be deferred to the
    first :meth:`generate` call.

    Args:
        model: Model name or path; ``None`` picks the backend's default.
        **options: Backend options (not per-image parameters).
    """

    name: ClassVar[str]
    supported_params: ClassVar[frozenset[str]] = frozenset()
    # Keyword options ``__init__`` accepts (e.g. ``device``, ``batch_size``, ``concurrency``);
    # anything else is a ConfigError, so a CLI option a backend ignores is never silently dropped.
    supported_options: ClassVar[frozenset[str]] = frozenset()
    # How many requests the backend turns into images in one call of the model; the engine
    # feeds at least this many at once.
    max_batch_size: ClassVar[int] = 1
    # Whether requests may carry an init image (guided generation); the engine refuses a
    # guided run on a backend without it before anything is written.
    supports_init_images: ClassVar[bool] = False

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.check_options(options)
        self.model = model
        self.options = options

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Raise :class:`ConfigError` naming any option outside ``supported_options``."""
        unsupported = sorted(set(options) - cls.supported_options)
        if unsupported:
            accepted = ", ".join(sorted(cls.supported_options)) or "none"
            raise ConfigError(
                f"backend {cls.name!r} does not take the option(s) {', '.join(unsupported)}; "
                f"it accepts: {accepted}"
            )

    def validate(self, params: Mapping[str, Any]) -> None:
        """Check generation parameters before anything is sent or loaded.

        The base implementation rejects parameter names outside ``supported_params``;
        subclasses call it and then check values.

        Raises:
            ConfigError: Naming the parameter, what is wrong and the accepted values.
        """
        unsupported = sorted(set(params) - self.supported_params)
        if unsupported:
            accepted = ", ".join(sorted(self.supported_params)) or "none"
            raise ConfigError(
                f"backend {self.name!r} does not support {', '.join(unsupported)}; "
                f"it accepts: {accepted}"
            )

    def check_request(self, request: ImageRequest) -> None:
        """Check that this backend can serve ``request`` at all, before anything is written.

        The engine calls it on the first request of every class, so a class the backend
        cannot draw (e.g. a label unknown to a class-conditional model) is refused before
        the output folder records the run. The default accepts every request.

        Raises:
            ConfigError: Naming the class and what the backend accepts.
        """

    def check_ready(self) -> None:
        """Check that this backend can generate now (e.g. that its API key is set), before the
        output folder is created or any progress is reported. A dry run does not call it: pricing
        a run needs no credentials. The default is always ready.

        Raises:
            ConfigError: Saying what is missing and how to provide it.
        """

    def validate_guidance(self, strengths: Sequence[float]) -> None:
        """Check that this backend (and model) can start from real images at ``strengths``
        (empty: no strength given).

        The default accepts any strength when ``supports_init_images`` is set.

        Raises:
            ConfigError: The backend cannot start from real images, or needs other strengths.
        """
        if not self.supports_init_images:
            raise ConfigError(f"backend {self.name!r} cannot start from real images (--init-images); "
                              "use ddpm, diffusers or openai")  # fmt: skip
        if not strengths:
            raise ConfigError(f"backend {self.name!r} needs --strength with --init-images, e.g. 0.5 or 0.5,0.75")

    def estimate_cost(self, request: ImageRequest) -> float:
        """Estimated cost of ``request`` in US dollars (0 for local backends)."""
        return 0.0

    def estimate_seconds(self, n_images: int) -> float | None:
        """Rough wall time for ``n_images`` at this backend's rate limit, or ``None`` if unknown.

        Used only for ``--dry-run`` plans.
        """
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance of the generator: at least ``backend`` and ``model``; plus version or
        revision, dtype, device... Everything here must be safe to write to disk (no keys)."""

    @abstractmethod
    def generate(
        self, requests: Sequence[ImageRequest]
    ) -> Iterator[GeneratedImage | RejectedRequest]:
        """Generate one result per request, yielded as each finishes (any order).

        Raises:
            GenerationError: The run cannot go on (bad credentials, exhausted quota,
                retries used up). Results already yielded stay valid.
        """

    def close(self) -> None:
        """Release clients, threads or GPU memory. Safe to call twice."""

    def __enter__(self) -> GeneratorBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
