"""Prompt construction: templates, per-class prompt lists and seeded diversity options.

Every image slot ``(label, index, attempt)`` gets its prompt from a :class:`PromptSpec`
deterministically: the prompt variant rotates with the slot index (and moves on by one
when a provider refuses the slot), while the background, photographic style and guidance
scale are drawn from a ``random.Random`` seeded with the slot's own seed. The choices are
returned with the prompt so the engine records them per image. No language model is
involved.

References:
    Sariyildiz, Alahari, Larlus, Kalantidis. "Fake it till you make it: Learning
    transferable representations from synthetic ImageNet clones." CVPR 2023 (class names
    with definitions/synonyms and background contexts in prompts).
    Shipard, Wiliem, Thanh, Xiang, Fookes. "Diversity is definitely needed: Improving
    model-agnostic zero-shot classification via stable diffusion." CVPR Workshops 2023
    (random backgrounds, multi-domain styles and a randomised guidance scale).
    He, Sun, Yu, Xue, Zhang, Torr, Bai, Qi. "Is synthetic data from generative models
    ready for image recognition?" ICLR 2023 (richer class descriptions in prompts).

Prompts written by a text model (:mod:`synthaug.generate.expand`) or built from captions of
real images (:mod:`synthaug.generate.captions`) enter as ``class_prompts`` with an
``origins`` entry per prompt, which the manifest row of each image records.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from synthaug.errors import ConfigError

DEFAULT_TEMPLATE = "a photo of a {label}"
LABEL_PLACEHOLDER = "{label}"

# Contexts of the kind Sariyildiz et al. (2023) and Shipard et al. (2023) append to class
# prompts so that the generator does not draw every object on the same backdrop.
BUILTIN_BACKGROUNDS: tuple[str, ...] = (
    "on a plain white background",
    "on a wooden table",
    "in a shop window",
    "on a bed",
    "outdoors in a park",
    "on a city street",
    "in a living room",
    "on a grey studio backdrop",
    "hanging on a rail",
    "on a marble floor",
)

# Photographic and rendering styles ("multi-domain" prompts in Shipard et al., 2023).
BUILTIN_STYLES: tuple[str, ...] = (
    "studio photograph",
    "product photo, soft light",
    "close-up photo",
    "amateur smartphone photo",
    "black and white photograph",
    "catalogue photo",
    "photo taken from above",
    "photo in natural daylight",
)

DEFAULT_NEGATIVE_PROMPT = "blurry, low quality, jpeg artifacts, text, watermark, signature, cartoon, drawing"
"""What ``--negative-prompt default`` asks a diffusers pipeline to avoid.

The common Stable Diffusion practice of steering away from artefacts that hurt a photo
classifier's training images (blur, compression, overlaid text and watermarks from web
training data, non-photographic renderings); the datadreamer tool (Luxonis, 2024) ships a
default negative prompt of the same kind for its synthetic detection datasets.
"""

# Keys of the structured prompt-file form; any other top-level key is a class label.
_SPEC_KEYS = {"templates", "prompts", "descriptions", "backgrounds", "styles", "guidance_scale", "classes"}


def described(label: str, description: str | None) -> str:
    """The class name as prompts write it: ``crane (the bird)``, or ``crane`` without a description.

    A description disambiguates a name with several meanings (Sariyildiz et al. 2023 add the
    WordNet gloss for the same reason).
    """
    return f"{label} ({description})" if description else label


@dataclass(frozen=True)
class PromptChoice:
    """The prompt of one image slot and the options drawn for it.

    Attributes:
        prompt: Full text prompt.
        guidance_scale: Guidance scale drawn from the spec's range, or ``None``.
        options: What was chosen (variant index, background, style), for the manifest.
    """

    prompt: str
    guidance_scale: float | None
    options: dict[str, Any]


@dataclass(frozen=True)
class PromptSpec:
    """How prompts are built for every class.

    Attributes:
        templates: Prompt templates; ``{label}`` is replaced by the class name or one of its
            descriptions. Used for classes without their own ``class_prompts``.
        class_prompts: Per-class prompt lists used verbatim instead of the templates.
        descriptions: Per-class synonyms or descriptions; each one, and the label itself,
            fills ``{label}`` in turn, multiplying the prompt variants.
        backgrounds: Contexts appended to the prompt, one drawn per image (none if empty).
        styles: Photographic styles appended to the prompt, one drawn per image.
        guidance_scale_range: ``(low, high)``: draw each image's guidance scale uniformly
            from this range; ``None`` keeps the backend's (or the run's) guidance scale.
        class_descriptions: Per-class disambiguation (``{"crane": "the bird"}``), written
            after the class name in every template prompt: ``a photo of a crane (the bird)``.
            Unlike ``descriptions`` (alternative names, each used on its own), it goes with
            the name every time.
        origins: Per class, how each of its ``class_prompts`` was made (a small JSON-ready
            mapping: ``{"kind": "expand", "backend": ..., "model": ...}``), recorded in the
            manifest row of every image made from it; classes without an entry have none.
    """

    templates: tuple[str, ...] = (DEFAULT_TEMPLATE,)
    class_prompts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    descriptions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    backgrounds: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    guidance_scale_range: tuple[float, float] | None = None
    class_descriptions: Mapping[str, str] = field(default_factory=dict)
    origins: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)

    def validate(self, classes: Sequence[str]) -> None:
        """Check the spec against the run's classes.

        Raises:
            ConfigError: A template without ``{label}``, an empty prompt list, a per-class
                entry for an unknown class, or an invalid guidance range.
        """
        if not self.templates:
            raise ConfigError("prompt templates: give at least one template, e.g. 'a photo of a {label}'")
        for template in self.templates:
            if LABEL_PLACEHOLDER not in template:
                raise ConfigError(
                    f"prompt template {template!r} has no {{label}} placeholder; add it, or give "
                    "per-class prompts in a --prompt-file"
                )
        known = set(classes)
        for what, mapping in (("prompts", self.class_prompts), ("descriptions", self.descriptions),
                              ("classes", self.class_descriptions)):  # fmt: skip
            unknown = sorted(set(mapping) - known)
            if unknown:
                raise ConfigError(
                    f"prompt file {what}: {', '.join(map(repr, unknown))} not among the classes "
                    f"({', '.join(map(repr, classes))}); fix the label spelling"
                )
            empty = sorted(label for label, values in mapping.items() if not values)
            if empty:
                raise ConfigError(f"prompt file {what}: empty list for {', '.join(map(repr, empty))}")
        for label, origins in self.origins.items():
            if len(origins) != len(self.class_prompts.get(label, ())):
                raise ConfigError(
                    f"prompt origins of {label!r}: {len(origins)} origin(s) for "
                    f"{len(self.class_prompts.get(label, ()))} prompt(s); give one per prompt"
                )
        if self.guidance_scale_range is not None:
            low, high = self.guidance_scale_range
            if not 0 <= low <= high:
                raise ConfigError(
                    f"guidance scale range {low}..{high} is invalid; give 0 <= LOW <= HIGH"
                )

    def variants(self, label: str) -> list[str]:
        """The prompt variants of ``label``, before backgrounds and styles are appended."""
        if label in self.class_prompts:
            return list(self.class_prompts[label])
        meaning = self.class_descriptions.get(label)
        names = [described(name, meaning) for name in (label, *self.descriptions.get(label, ()))]
        return [template.replace(LABEL_PLACEHOLDER, name) for template in self.templates for name in names]

    def choose(self, label: str, index: int, attempt: int, seed: int) -> PromptChoice:
        """Build the prompt of slot ``(label, index)`` at ``attempt``, drawing options from ``seed``.

        The variant rotates with ``index + attempt`` so that the variants are used evenly
        across a class and a refused slot moves on to the next variant.
        """
        variants = self.variants(label)
        variant = (index + attempt) % len(variants)
        rng = random.Random(seed)
        prompt = variants[variant]
        options: dict[str, Any] = {"variant": variant}
        if label in self.origins:
            options["origin"] = dict(self.origins[label][variant])
        if self.backgrounds:
            options["background"] = rng.choice(self.backgrounds)
            prompt = f"{prompt}, {options['background']}"
        if self.styles:
            options["style"] = rng.choice(self.styles)
            prompt = f"{prompt}, {options['style']}"
        guidance_scale = None
        if self.guidance_scale_range is not None:
            guidance_scale = round(rng.uniform(*self.guidance_scale_range), 3)
        return PromptChoice(prompt=prompt, guidance_scale=guidance_scale, options=options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, recorded in ``generation.json`` and compared on resume."""
        return {
            "templates": list(self.templates),
            "class_prompts": {label: list(prompts) for label, prompts in self.class_prompts.items()},
            "descriptions": {label: list(names) for label, names in self.descriptions.items()},
            "backgrounds": list(self.backgrounds),
            "styles": list(self.styles),
            "guidance_scale_range": list(self.guidance_scale_range) if self.guidance_scale_range else None,
            # Only written when used, so folders generated before these fields keep their settings.
            **({"class_descriptions": dict(self.class_descriptions)} if self.class_descriptions else {}),
            **({"origins": {label: [dict(o) for o in origins] for label, origins in self.origins.items()}}
               if self.origins else {}),
        }

    @classmethod
    def from_file(cls, path: str | Path) -> PromptSpec:
        """Read a YAML or JSON prompt file.

        Two forms are accepted. A mapping from class label to a prompt or list of prompts::

            T-shirt/top: ["a photo of a T-shirt", "a folded cotton tee"]
            Trouser: a photo of trousers

        or a mapping with any of the keys ``templates`` (list), ``prompts`` (label -> list),
        ``descriptions`` (label -> list of synonyms/descriptions), ``backgrounds`` and
        ``styles`` (lists, or ``builtin`` for the built-in lists), ``guidance_scale``
        (``[low, high]``) and ``classes`` (label -> its disambiguating description, e.g.
        ``crane: the bird``).

        Raises:
            ConfigError: The file is missing, unreadable or not one of these forms.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"prompt file {path}: cannot read it ({error.strerror})") from error
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ConfigError(f"prompt file {path}: not valid {path.suffix or 'YAML'} ({error})") from error
        if not isinstance(data, dict) or not data:
            raise ConfigError(
                f"prompt file {path}: expected a mapping of label -> prompts, or of {sorted(_SPEC_KEYS)}"
            )
        if not set(data) <= _SPEC_KEYS:
            return cls(class_prompts=_string_lists(data, path, "prompts"))
        guidance = data.get("guidance_scale")
        if guidance is not None and not (
            isinstance(guidance, list) and len(guidance) == 2 and all(isinstance(g, int | float) for g in guidance)
        ):
            raise ConfigError(f"prompt file {path}: guidance_scale must be [low, high], got {guidance!r}")
        return cls(
            templates=tuple(_string_list(data.get("templates", [DEFAULT_TEMPLATE]), path, "templates")),
            class_prompts=_string_lists(data.get("prompts", {}), path, "prompts"),
            descriptions=_string_lists(data.get("descriptions", {}), path, "descriptions"),
            backgrounds=resolve_choices(
                data.get("backgrounds", []), BUILTIN_BACKGROUNDS, f"prompt file {path}: backgrounds"
            ),
            styles=resolve_choices(data.get("styles", []), BUILTIN_STYLES, f"prompt file {path}: styles"),
            guidance_scale_range=(float(guidance[0]), float(guidance[1])) if guidance else None,
            class_descriptions=class_descriptions(data.get("classes", {}), f"prompt file {path}: classes"),
        )


def class_descriptions(value: Any, where: str) -> dict[str, str]:
    """A ``label -> description`` mapping checked to hold non-empty strings (``None``: no description)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of class label -> description, e.g. {{crane: the bird}}")
    descriptions = {}
    for label, text in value.items():
        if text is None:
            continue
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where}: the description of {label!r} must be a non-empty string, got {text!r}")
        descriptions[str(label)] = " ".join(text.split())
    return descriptions


def resolve_choices(value: Any, builtin: tuple[str, ...], where: str) -> tuple[str, ...]:
    """A list of strings as a tuple, or the built-in list for the word ``builtin``."""
    if value == "builtin":
        return builtin
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: expected 'builtin' or a list of non-empty strings, got {value!r}")
    return tuple(v.strip() for v in value)


def _string_list(value: Any, path: Path, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"prompt file {path}: {where} must be a string or a list of non-empty strings")
    return [v.strip() for v in value]


def _string_lists(value: Any, path: Path, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"prompt file {path}: {where} must map class label -> list of strings")
    return {str(label): tuple(_string_list(v, path, f"{where} of {label!r}")) for label, v in value.items()}
