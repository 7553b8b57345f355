"""Prompt expansion: a text model writes many varied prompts per class, once, saved with the dataset.

Templates ("a photo of a {label}, on a wooden table") vary little; a language model asked for
short, varied scene descriptions of each class gives the generator more to draw (He et al.
2023 "language enhancement"; DIAGen and "Diversify, Don't Fine-Tune" fill adjective, place
and time-of-day slots with an LLM). :func:`expand_prompts` asks a text model, per class, for
``per_class`` prompts from an instruction synthaug ships (``assets/prompts/expand.txt``; pass
your own file to change it), the class name, its optional description ("crane": "the bird")
and the full class list (so the model can tell the classes apart).

What comes back is cleaned: numbering and quotes are stripped, prompts longer than
``max_words`` words are dropped, duplicates (case- and whitespace-normalised, within a class)
are dropped, a prompt that does not name its class gets the class name put in front
(``"crane (the bird), <prompt>"``) so that the image generator draws the right thing, and a
refused or empty answer is recorded. A class still short of ``per_class`` prompts is asked
again for the rest, up to :data:`MAX_ROUNDS` calls.

Everything is saved in ``DIR/prompts.json`` (:data:`PROMPTS_NAME`) after each class: the
inputs (backend, model, instruction and its sha256, ``per_class``, ``max_words``, seed), and
per class the prompts, the rejected lines with the reason, and every call's raw answer,
token usage and cost. A rerun with the same inputs reuses the saved prompts without asking
the text model again (only classes not yet in the file are asked). A rerun with other inputs
(another model, instruction, ``per_class``...) is refused with a one-line error: the images
already generated were made from the saved prompts, so a silently new list would mix two
prompt sets in one folder; delete the file or choose a new folder to start over.

Two backends:

* ``openai``: the chat completions API through the official SDK, with the key handling,
  retries (429/5xx/timeouts, ``retry-after``) and one-line errors of the image backend
  (:mod:`synthaug.generate.backends.openai_images`); the cost of each call is computed from
  its token ``usage`` and the chat price table (:data:`synthaug.generate.pricing.CHAT_PER_TOKEN`),
  and ``max_cost`` stops before a call that could exceed it.
* ``transformers``: a local Hugging Face text-generation model (a folder written by
  ``save_pretrained`` or a hub id) through ``transformers.pipeline("text-generation")``,
  sampled with a seeded generator; costs nothing but time.

References:
    He, Sun, Yu, Xue, Zhang, Torr, Bai, Qi. "Is synthetic data from generative models ready
    for image recognition?" ICLR 2023 (language enhancement of class names).
    Islam, Zunaed, Rahman, et al. "Diversify, Don't Fine-Tune: Scaling up Visual Recognition
    Training with Synthetic Images." 2024 (LLM-written contexts and class disambiguation).
    Lingenberg, Reuter, Sudhakaran, Glimm, Kummer. "DIAGen: Diverse Image Augmentation with
    Generative Models." GCPR 2024 (LLM-filled adjective/location/time-of-day prompts).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from synthaug.errors import ConfigError, GenerationError
from synthaug.fileio import atomic_write_text, sha256_bytes
from synthaug.generate.manifest import PROMPTS_NAME
from synthaug.generate.prompts import PromptSpec, described
from synthaug.progress import ProgressCallback, report

FORMAT = 1
BACKENDS = ("openai", "transformers")
DEFAULT_CHAT_MODEL = "gpt-4o-mini"
MAX_ROUNDS = 3
"""Calls per class at most: a class short of prompts after one answer is asked for the rest."""

_NUMBERING = re.compile(r"^\s*(?:[-*\u2022]+|\(?\d+[.):]|\d+\s*-)\s*")


@dataclass(frozen=True)
class PromptExpansion:
    """How a text model writes the prompts (the ``prompt: {expand: ...}`` block of a study, ``--expand``).

    Attributes:
        backend: ``openai`` (chat completions API) or ``transformers`` (local model).
        model: Chat model name, or a text-generation model folder/hub id; ``None`` is
            :data:`DEFAULT_CHAT_MODEL` for ``openai`` (``transformers`` needs one).
        per_class: Prompts wanted per class.
        instruction: Path of an instruction text file with ``{n}``, ``{label}``, ``{name}``
            (label with its description), ``{classes}`` and ``{max_words}`` placeholders;
            ``None`` is the shipped ``assets/prompts/expand.txt``.
        max_words: Longest prompt kept, in words (image models read ~77 CLIP tokens).
        seed: Seed of the calls (the OpenAI ``seed`` parameter; the local sampler's generator).
        max_cost: Cap in US dollars on the expansion's text-model cost (all runs together).
        describe: Ask the text model once per class without a description what the class
            means among the others, and use (and save) its answer as the description.
        usd_per_million_tokens: ``(input, output)`` prices for a chat model the price table
            does not list.
    """

    backend: str = "openai"
    model: str | None = None
    per_class: int = 20
    instruction: str | None = None
    max_words: int = 30
    seed: int = 0
    max_cost: float | None = None
    describe: bool = False
    usd_per_million_tokens: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"expand backend {self.backend!r} is unknown; choose one of {', '.join(BACKENDS)}")
        if self.backend == "transformers" and not self.model:
            raise ConfigError("expand with the transformers backend needs a model: a folder or hub id")
        for name in ("per_class", "max_words"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"expand {name} must be a positive integer, got {value!r}")
        if self.max_cost is not None and self.max_cost < 0:
            raise ConfigError(f"expand max_cost must be >= 0 US dollars, got {self.max_cost}")
        if self.instruction is not None and not Path(self.instruction).is_file():
            raise ConfigError(f"expand instruction {self.instruction}: no such file; give a text file")

    @property
    def model_name(self) -> str:
        """The model actually used."""
        return self.model or DEFAULT_CHAT_MODEL

    def instruction_text(self) -> str:
        """The instruction template (the shipped one unless a file is given)."""
        if self.instruction is None:
            return resources.files("synthaug").joinpath("assets/prompts/expand.txt").read_text(encoding="utf-8")
        return Path(self.instruction).read_text(encoding="utf-8")

    def inputs(self) -> dict[str, Any]:
        """What the saved list depends on; a saved list is reused only when these match."""
        return {
            "backend": self.backend,
            "model": self.model_name,
            "instruction_sha256": sha256_bytes(self.instruction_text().encode()),
            "per_class": self.per_class,
            "max_words": self.max_words,
            "seed": self.seed,
            "describe": self.describe,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptExpansion:
        """The record from a mapping (a study's ``expand`` block).

        Raises:
            ConfigError: An unknown key, or a value the checks refuse.
        """
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            known = ", ".join(cls.__dataclass_fields__)
            raise ConfigError(f"expand: unknown key(s) {', '.join(unknown)}; known: {known}")
        values = dict(data)
        if values.get("usd_per_million_tokens") is not None:
            values["usd_per_million_tokens"] = tuple(values["usd_per_million_tokens"])
        return cls(**values)


@dataclass(frozen=True)
class TextReply:
    """One answer of a text model.

    Attributes:
        text: The answer ('' when refused).
        refusal: The model's refusal message, or ``None``.
        usage: Token counts as the API returns them (``prompt_tokens``, ``completion_tokens``).
        cost_usd: What the call cost.
    """

    text: str
    refusal: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: float = 0.0


class TextModel(Protocol):
    """A text model that answers one instruction at a time."""

    def complete(self, instruction: str, *, seed: int, max_tokens: int) -> TextReply: ...

    def estimate_cost(self, instruction: str, max_tokens: int) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ClassPrompts:
    """The prompts of one class and how they were made.

    Attributes:
        prompts: The kept prompts, in the order they came.
        description: The class description used (given, or the model's when ``describe``).
        description_source: ``given``, ``model`` or ``None`` (no description).
        rejected: ``{"text", "reason"}`` of every line not kept (``duplicate``, ``too_long``,
            ``refused``, ``empty``).
        calls: ``{"raw", "refusal", "usage", "cost_usd", "seed", "purpose"}`` of every call.
    """

    prompts: tuple[str, ...]
    description: str | None
    description_source: str | None
    rejected: tuple[Mapping[str, Any], ...] = ()
    calls: tuple[Mapping[str, Any], ...] = ()

    @property
    def cost_usd(self) -> float:
        return float(sum(call.get("cost_usd", 0.0) for call in self.calls))

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": list(self.prompts),
            "description": self.description,
            "description_source": self.description_source,
            "rejected": [dict(r) for r in self.rejected],
            "calls": [dict(c) for c in self.calls],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassPrompts:
        return cls(
            prompts=tuple(data["prompts"]),
            description=data.get("description"),
            description_source=data.get("description_source"),
            rejected=tuple(data.get("rejected", ())),
            calls=tuple(data.get("calls", ())),
        )


@dataclass(frozen=True)
class ExpandedPrompts:
    """The prompt list of a dataset (what ``prompts.json`` holds).

    Attributes:
        inputs: :meth:`PromptExpansion.inputs` of the run that wrote it.
        instruction: The instruction template text.
        classes: Label -> its :class:`ClassPrompts`, in class order.
        requests: Text-model calls made by this call of :func:`expand_prompts` (0: all reused).
    """

    inputs: Mapping[str, Any]
    instruction: str
    classes: Mapping[str, ClassPrompts]
    requests: int = 0

    @property
    def cost_usd(self) -> float:
        """What every call behind the list cost, earlier runs included."""
        return sum(entry.cost_usd for entry in self.classes.values())

    def origin(self, label: str, position: int) -> dict[str, Any]:
        """The provenance of prompt ``position`` of ``label``, as a manifest row records it."""
        return {
            "kind": "expand",
            "backend": self.inputs["backend"],
            "model": self.inputs["model"],
            "instruction_sha256": self.inputs["instruction_sha256"],
            "position": position,
        }

    def prompt_spec(self, base: PromptSpec | None = None) -> PromptSpec:
        """``base`` (default: a plain spec) with these prompts as the per-class prompt lists,
        each with its origin, and the descriptions used."""
        base = base or PromptSpec()
        return replace(
            base,
            class_prompts={**base.class_prompts, **{label: e.prompts for label, e in self.classes.items()}},
            class_descriptions={**base.class_descriptions, **{
                label: e.description for label, e in self.classes.items() if e.description}},
            origins={**base.origins, **{
                label: tuple(self.origin(label, i) for i in range(len(e.prompts))) for label, e in self.classes.items()
            }},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "inputs": dict(self.inputs),
            "instruction": self.instruction,
            "cost_usd": round(self.cost_usd, 6),
            "classes": {label: entry.to_dict() for label, entry in self.classes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExpandedPrompts:
        return cls(
            inputs=dict(data["inputs"]),
            instruction=data["instruction"],
            classes={label: ClassPrompts.from_dict(entry) for label, entry in data["classes"].items()},
        )


def normalise(prompt: str) -> str:
    """The form duplicates are compared in: lower case, single spaces, no final full stop."""
    return " ".join(prompt.lower().split()).rstrip(".")


def parse_reply(
    text: str, label: str, name: str, max_words: int, seen: set[str]
) -> tuple[list[str], list[dict[str, str]]]:
    """Prompts in a text model's answer, one per line, and the lines rejected with the reason.

    Args:
        text: The answer.
        label: The class name a prompt must contain (case-insensitive).
        name: What is put in front of a prompt that lacks the class name (the label with
            its description).
        max_words: Longest prompt kept, in words.
        seen: Normalised prompts already kept for the class; updated in place.
    """
    kept: list[str] = []
    rejected: list[dict[str, str]] = []
    for line in text.splitlines():
        prompt = " ".join(_NUMBERING.sub("", line).strip().strip("\"'\u201c\u201d").split())
        if not prompt:
            continue
        if label.lower() not in prompt.lower():
            prompt = f"{name}, {prompt}"
        if len(prompt.split()) > max_words + len(name.split()):
            rejected.append({"text": prompt, "reason": "too_long"})
            continue
        key = normalise(prompt)
        if key in seen:
            rejected.append({"text": prompt, "reason": "duplicate"})
            continue
        seen.add(key)
        kept.append(prompt)
    return kept, rejected


def expand_prompts(
    classes: Mapping[str, str | None],
    config: PromptExpansion,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    text_model: TextModel | None = None,
    progress: ProgressCallback | None = None,
) -> ExpandedPrompts:
    """Write ``config.per_class`` prompts for every class, reusing a saved list.

    Args:
        classes: Label -> its description (``None`` for none), in class order.
        config: The expansion settings.
        out_dir: Dataset folder whose ``prompts.json`` is read and written after each class;
            ``None`` keeps the list in memory only.
        text_model: A ready text model (tests, or a caller that shares one); default: the one
            ``config`` names, built only if some class must be asked.
        progress: Called after each class (stage ``expand prompts``, in classes).

    Returns:
        The prompts of every class in ``classes`` (and of any other class the file held).

    Raises:
        ConfigError: The saved list was made with other inputs or other descriptions, or the
            text model cannot be built.
        GenerationError: The model cannot be reached, ``max_cost`` would be exceeded, or a
            class got no usable prompt (what each call answered is saved in the file).
    """
    instruction = config.instruction_text()
    inputs = config.inputs()
    path = Path(out_dir) / PROMPTS_NAME if out_dir is not None else None
    saved = _read_saved(path, inputs, classes) if path is not None else {}
    entries: dict[str, ClassPrompts] = dict(saved)
    todo = [label for label in classes if label not in entries]
    spent = sum(entry.cost_usd for entry in entries.values())
    requests = 0
    report(progress, "expand prompts", len(classes) - len(todo), len(classes), unit="classes")
    if todo:
        own_model = text_model is None
        model = text_model or make_text_model(config)
        try:
            for done, label in enumerate(todo, start=len(classes) - len(todo) + 1):
                entry = _expand_class(model, config, instruction, label, classes, spent)
                requests += len(entry.calls)
                spent += entry.cost_usd
                entries[label] = entry
                if path is not None:
                    _save(path, ExpandedPrompts(inputs, instruction, entries))
                if not entry.prompts:
                    where = f"; the answers are in {path}" if path is not None else ""
                    raise GenerationError(
                        f"the text model gave no usable prompt for {label!r} in {len(entry.calls)} call(s){where}; "
                        "change the instruction or the model"
                    )
                report(progress, "expand prompts", done, len(classes), item=label, unit="classes")
        finally:
            if own_model:
                model.close()
    report(progress, "expand prompts", len(classes), len(classes), unit="classes", finished=True)
    ordered = {label: entries[label] for label in classes} | entries
    return ExpandedPrompts(inputs, instruction, ordered, requests)


@dataclass(frozen=True)
class ExpansionPlan:
    """What :func:`expand_prompts` would ask, for ``--dry-run`` and a study's plan.

    Attributes:
        saved: Classes whose prompts are already in ``prompts.json``.
        to_ask: Classes the text model would be asked about.
        max_calls: Text-model calls at most (``MAX_ROUNDS`` per class, one more to describe it).
        max_cost_usd: The most those calls can cost (0 for a local model).
    """

    saved: tuple[str, ...]
    to_ask: tuple[str, ...]
    max_calls: int
    max_cost_usd: float


def plan_expansion(
    classes: Mapping[str, str | None], config: PromptExpansion, out_dir: str | os.PathLike[str] | None = None
) -> ExpansionPlan:
    """How many calls, at most, and what they can cost at most, without calling anything.

    Raises:
        ConfigError: The saved list was made with other inputs, or the chat model has no price.
    """
    saved = _read_saved(Path(out_dir) / PROMPTS_NAME, config.inputs(), classes) if out_dir is not None else {}
    to_ask = tuple(label for label in classes if label not in saved)
    per_class = MAX_ROUNDS + (1 if config.describe else 0)
    cost = 0.0
    if config.backend == "openai":
        prices = _chat_prices(config.model_name, config.usd_per_million_tokens)
        instruction = config.instruction_text()
        worst_tokens = len(instruction) / 4 + 16 + 8 * len(classes)
        answer_tokens = config.per_class * (2 * config.max_words + 4) + 16
        per_call = worst_tokens * prices["input"] + answer_tokens * prices["output"]
        cost = per_call * per_class * len(to_ask)
    return ExpansionPlan(tuple(saved), to_ask, per_class * len(to_ask), cost)


def _chat_prices(model: str, usd_per_million_tokens: tuple[float, float] | None) -> dict[str, float]:
    """USD per input/output token: the override, else the table.

    Raises:
        ConfigError: Neither knows the model (a guessed price would make ``max_cost`` meaningless).
    """
    from synthaug.generate import pricing

    if usd_per_million_tokens is not None:
        return {"input": usd_per_million_tokens[0] / 1e6, "output": usd_per_million_tokens[1] / 1e6}
    prices = pricing.chat_prices(model)
    if prices is None:
        raise ConfigError(
            f"no price is known for chat model {model!r} (price table of {pricing.PRICES_AS_OF}); give "
            "usd_per_million_tokens (--expand-price INPUT,OUTPUT) so the cost can be tracked"
        )
    return prices


def _expand_class(
    model: TextModel, config: PromptExpansion, instruction: str, label: str,
    classes: Mapping[str, str | None], spent: float,
) -> ClassPrompts:
    """Ask for one class's prompts: its description first if wanted, then up to MAX_ROUNDS calls."""
    calls: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    description, source = classes[label], "given" if classes[label] else None
    class_list = ", ".join(classes)

    def call(text: str, seed: int, max_tokens: int, purpose: str) -> TextReply:
        cost = model.estimate_cost(text, max_tokens)
        if config.max_cost is not None and spent + sum(c["cost_usd"] for c in calls) + cost > config.max_cost + 1e-9:
            raise GenerationError(
                f"prompt expansion would exceed its max_cost of ${config.max_cost:.4f} at {label!r} "
                f"(${spent:.4f} spent); raise the expansion's max_cost and rerun to resume"
            )
        reply = model.complete(text, seed=seed, max_tokens=max_tokens)
        calls.append({"purpose": purpose, "seed": seed, "raw": reply.text, "refusal": reply.refusal,
                      "usage": dict(reply.usage), "cost_usd": float(reply.cost_usd)})  # fmt: skip
        if reply.refusal is not None or not reply.text.strip():
            rejected.append({"text": reply.text, "reason": "refused" if reply.refusal is not None else "empty",
                             "refusal": reply.refusal})  # fmt: skip
        return reply

    if config.describe and not description:
        describe = resources.files("synthaug").joinpath("assets/prompts/describe.txt").read_text(encoding="utf-8")
        reply = call(describe.format(label=label, classes=class_list), _seed(config.seed, label, -1), 32, "describe")
        words = reply.text.strip().splitlines()[0].split()[:12] if reply.text.strip() else []
        if words and reply.refusal is None:
            description, source = " ".join(words).strip("\"'.").strip(), "model"
    name = described(label, description)
    seen: set[str] = set()
    prompts: list[str] = []
    for round_number in range(MAX_ROUNDS):
        wanted = config.per_class - len(prompts)
        if wanted <= 0:
            break
        text = instruction.format(n=wanted, label=label, name=name, classes=class_list, max_words=config.max_words)
        max_tokens = wanted * (2 * config.max_words + 4) + 16
        reply = call(text, _seed(config.seed, label, round_number), max_tokens, "prompts")
        if reply.refusal is not None:
            continue
        kept, dropped = parse_reply(reply.text, label, name, config.max_words, seen)
        prompts.extend(kept)
        rejected.extend(dropped)
    return ClassPrompts(tuple(prompts[: config.per_class]), description, source, tuple(rejected), tuple(calls))


def _seed(seed: int, label: str, round_number: int) -> int:
    digest = hashlib.sha256(f"{seed}\x00{label}\x00{round_number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _read_saved(
    path: Path, inputs: Mapping[str, Any], classes: Mapping[str, str | None]
) -> dict[str, ClassPrompts]:
    """The saved classes that can be reused; a file written with other inputs is an error."""
    if not path.is_file():
        return {}
    try:
        saved = ExpandedPrompts.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{path}: not a synthaug prompt list ({error}); delete it to write a new one") from error
    changes = [f"{key}: {saved.inputs.get(key)!r} -> {value!r}" for key, value in inputs.items()
               if saved.inputs.get(key) != value]  # fmt: skip
    if changes:
        raise ConfigError(
            f"{path} was written with other settings ({'; '.join(changes)}); rerun with the same expansion "
            "settings to reuse it, or delete it (or choose a new folder) to ask the text model again"
        )
    for label, entry in saved.classes.items():
        given = classes.get(label)
        if label in classes and entry.description_source == "given" and entry.description != given:
            raise ConfigError(
                f"{path}: {label!r} was expanded with the description {entry.description!r}, now {given!r}; "
                "use the same description, or delete the file to ask again"
            )
        if label in classes and given and entry.description_source != "given":
            raise ConfigError(
                f"{path}: {label!r} was expanded without the description {given!r}; "
                "delete the file to ask again with it"
            )
    return dict(saved.classes)


def _save(path: Path, prompts: ExpandedPrompts) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(prompts.to_dict(), indent=2, ensure_ascii=False) + "\n")


def make_text_model(config: PromptExpansion) -> TextModel:
    """The text model ``config`` names (see the module docstring for the two backends)."""
    if config.backend == "openai":
        return OpenAIChatModel(config.model_name, usd_per_million_tokens=config.usd_per_million_tokens)
    return TransformersTextModel(config.model_name)


class OpenAIChatModel:
    """The OpenAI chat completions API, with the image backend's key handling and retries.

    Args:
        model: Chat model name.
        max_retries: Retries of one call after a rate limit, server error or timeout.
        timeout: Seconds one call may take.
        retry_initial_delay: Backoff before the first retry, doubled each time (seconds).
        retry_max_delay: Longest backoff (seconds).
        usd_per_million_tokens: ``(input, output)`` prices overriding the table.

    Raises:
        ConfigError: No price is known for the model, or ``OPENAI_API_KEY`` is not set.
    """

    def __init__(
        self,
        model: str = DEFAULT_CHAT_MODEL,
        *,
        max_retries: int = 5,
        timeout: float = 120.0,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 60.0,
        usd_per_million_tokens: tuple[float, float] | None = None,
    ) -> None:
        import openai

        self.prices = _chat_prices(model, usd_per_million_tokens)
        if not os.environ.get("OPENAI_API_KEY"):
            raise ConfigError("OPENAI_API_KEY is not set; export your OpenAI API key to expand prompts with openai")
        self.model = model
        self.max_retries = max_retries
        self.retry_initial_delay = retry_initial_delay
        self.retry_max_delay = retry_max_delay
        self._client = openai.OpenAI(max_retries=0, timeout=timeout)  # our own retries, see openai_images

    def estimate_cost(self, instruction: str, max_tokens: int) -> float:
        """The most a call can cost: ~4 characters a token in, ``max_tokens`` out."""
        return (len(instruction) / 4 + 16) * self.prices["input"] + max_tokens * self.prices["output"]

    def complete(self, instruction: str, *, seed: int, max_tokens: int) -> TextReply:
        import openai

        from synthaug.generate import pricing
        from synthaug.generate.backends.openai_images import (
            MAX_RETRY_AFTER_SECONDS,
            fatal_message,
            is_transient,
            retry_after_seconds,
        )

        for retry in range(self.max_retries + 1):
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=[{"role": "user", "content": instruction}],
                    seed=seed, max_completion_tokens=max_tokens,
                )  # fmt: skip
                break
            except openai.APIStatusError as error:
                if not is_transient(error):
                    raise GenerationError(fatal_message(error, self.model, api="chat API")) from None
                wait, failure = retry_after_seconds(error.response.headers), f"HTTP {error.status_code}"
            except openai.APIConnectionError as error:
                wait, failure = None, type(error).__name__
            if retry == self.max_retries or (wait is not None and wait > MAX_RETRY_AFTER_SECONDS):
                raise GenerationError(
                    f"OpenAI chat API still failing ({failure}) after {retry} retries; rerun later to resume"
                )
            time.sleep(wait if wait is not None else min(self.retry_initial_delay * 2**retry, self.retry_max_delay))
        choice = response.choices[0]
        usage = response.usage.model_dump(exclude_none=True) if response.usage is not None else {}
        refusal = getattr(choice.message, "refusal", None)
        if refusal is None and choice.finish_reason == "content_filter":
            refusal = "content_filter"
        return TextReply(
            text=choice.message.content or "",
            refusal=refusal,
            usage=usage,
            cost_usd=pricing.chat_cost(self.prices, usage),
        )

    def close(self) -> None:
        self._client.close()


class TransformersTextModel:
    """A local Hugging Face causal language model behind ``pipeline("text-generation")``.

    Args:
        model: A folder written by ``save_pretrained`` (model and tokenizer) or a hub id.
        device: Torch device; default: CUDA when present.

    Raises:
        ConfigError: The folder or id holds no text-generation model.
    """

    def __init__(self, model: str, device: str | None = None) -> None:
        import transformers

        from synthaug.runtime import pick_device

        self.model = model
        try:
            self._pipeline = transformers.pipeline("text-generation", model=model, device=pick_device(device))
        except (OSError, ValueError, KeyError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"text model {model}: cannot load a text-generation model ({first})") from error

    def estimate_cost(self, instruction: str, max_tokens: int) -> float:
        return 0.0

    def complete(self, instruction: str, *, seed: int, max_tokens: int) -> TextReply:
        import torch

        tokenizer = self._pipeline.tokenizer
        # A small model cannot write past its context; a short answer is asked again for the rest.
        context = getattr(self._pipeline.model.config, "max_position_embeddings", None)
        if context is not None:
            max_tokens = max(1, min(max_tokens, context - len(tokenizer(instruction)["input_ids"])))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            output = self._pipeline(
                instruction, max_new_tokens=max_tokens, do_sample=True, return_full_text=False,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            )  # fmt: skip
        text = output[0]["generated_text"]
        return TextReply(text=text, usage={"completion_tokens": len(tokenizer(text)["input_ids"])})

    def close(self) -> None:
        self._pipeline = None

