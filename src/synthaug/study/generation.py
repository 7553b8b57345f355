"""The one way a study turns a source's generation spec into images.

Every study path that generates — a plain source (:mod:`synthaug.study.data`), a source made
from each regime's own real images (:mod:`synthaug.study.guided`) and the rounds of a targeted
regime (:mod:`synthaug.study.targeted`) — calls :func:`generate_from_spec`, so the spec's
prompt is converted once, the same way, and a generation error names the source the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.errors import ConfigError, SynthaugError
from synthaug.study.config import GenerationSpec

if TYPE_CHECKING:
    from synthaug.data import ImageDataset
    from synthaug.execution import Executor, Resources
    from synthaug.generate.guided import Guidance
    from synthaug.generate.prompts import PromptSpec
    from synthaug.progress import ProgressCallback

__all__ = ["generate_from_spec", "spec_prompt", "text_model_settings"]


def _tuples(value: Any) -> Any:
    """YAML lists as the tuples PromptSpec expects (also inside per-class mappings)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def spec_prompt(spec: GenerationSpec, where: str) -> str | PromptSpec:
    """The spec's prompt as :func:`synthaug.generate.generate_dataset` takes it: a template
    string as is, a mapping as a :class:`~synthaug.generate.prompts.PromptSpec`.

    Raises:
        ConfigError: The mapping has a key PromptSpec does not know (named
            ``<where>.generate.prompt``, ``where`` being the source's key, ``synthetic[0]``).
    """
    from synthaug.generate.prompts import PromptSpec

    descriptions = dict(spec.classes or {})
    if isinstance(spec.prompt, str) and not descriptions:
        return spec.prompt
    fields = {"templates": (spec.prompt,)} if isinstance(spec.prompt, str) else {
        key: _tuples(value) for key, value in spec.prompt.items() if key not in ("expand", "captions")}  # fmt: skip
    if descriptions:
        fields["class_descriptions"] = {**descriptions, **fields.get("class_descriptions", {})}
    try:
        return PromptSpec(**fields)
    except TypeError as error:
        raise ConfigError(f"{where}.generate.prompt: {error}") from error


def _expansion(spec: GenerationSpec, where: str) -> Any:
    """The spec's ``prompt.expand`` block as a :class:`~synthaug.generate.expand.PromptExpansion`."""
    from synthaug.generate.expand import PromptExpansion

    block = spec.prompt.get("expand") if isinstance(spec.prompt, dict) else None
    if block is None:
        return None
    try:
        return PromptExpansion.from_dict(block)
    except ConfigError as error:
        raise ConfigError(f"{where}.generate.prompt.{error}") from error


def text_model_settings(spec: GenerationSpec, where: str) -> None:
    """Check the spec's text-model blocks without loading a model: the ``expand`` settings (an
    instruction file that exists, a known backend) and the ``captions`` model folder.

    Raises:
        ConfigError: Naming ``<where>.generate.prompt.<block>``.
    """
    _expansion(spec, where)
    if spec.captions is not None:
        model = str(spec.captions["model"])
        if not Path(model).is_dir():
            raise ConfigError(
                f"{where}.generate.prompt.captions.model: {model} is no folder; give a captioning model saved "
                "with save_pretrained (e.g. Salesforce/blip-image-captioning-base)"
            )


def _captioned(spec: GenerationSpec, prompt: PromptSpec, classes: list[str], real: ImageDataset | None,
               cache_dir: Path | None, progress: ProgressCallback | None, where: str) -> PromptSpec:  # fmt: skip
    """``prompt`` with one prompt per caption of the real images of ``classes`` in ``real``
    (those the regimes may use: the caller checked them against the test and validation sets)."""
    import numpy as np

    from synthaug.generate.captions import CAPTION_TEMPLATE, caption_images, caption_prompt_spec

    if real is None:
        raise ConfigError(f"{where}.generate.prompt.captions: this generation has no real images to caption")
    wanted = [real.classes.index(label) for label in classes if label in real.classes]
    real = real.subset(np.flatnonzero(np.isin(real.targets, wanted)))
    captions = caption_images(real, spec.captions["model"], cache_dir=cache_dir, progress=progress)
    return caption_prompt_spec(real, captions, base=prompt, template=spec.captions.get("template", CAPTION_TEMPLATE))


def generate_from_spec(
    directory: Path,
    spec: GenerationSpec,
    classes: list[str],
    per_class: int,
    where: str,
    name: str,
    *,
    model: str | None = None,
    init_images: Guidance | None = None,
    extend: bool = False,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    resources: Resources | None = None,
    dry_run: bool = False,
    real: ImageDataset | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Generate (or resume generating) ``per_class`` images of each class into ``directory``.

    Args:
        directory: The output folder (resumed when it exists).
        spec: The source's generation spec (backend, model, prompt, seed, params, cost cap).
        classes: Class names to generate.
        per_class: Images wanted per class (the spec's own ``per_class`` for a whole source, what
            a targeted round asks for otherwise).
        where: The source's key in the config (``synthetic[0]``).
        name: The source's name; errors start with ``<where> (<name>)``.
        model: A model replacing the spec's (a generator tuned on a regime's real images).
        init_images: Guidance images (guided generation).
        extend: Add classes to an existing folder (targeted rounds grow one folder class by class).
        progress: Passed to the engine, which reports its images.
        executor: Where generation runs; ``None``: this process.
        resources: What one generation shard reserves on a Ray cluster.
        dry_run: Generate nothing; return the plan (:func:`synthaug.generate.plan.dry_run_plan`:
            images on disk and to generate, estimated cost and seconds, plus ``text_model_calls``
            and ``text_cost_usd`` of a prompt expansion, at most) that the study's ``--dry-run``
            (:mod:`synthaug.study.plan`) prints. Nothing is captioned or asked of a text model.
        real: The real images ``prompt.captions`` may caption (the regime's own, or the training
            pool; never test or validation images).
        cache_dir: Where captions are cached by image content (default: synthaug's cache).

    A ``prompt.expand`` block asks the text model for the prompts of every class first and
    saves them as ``prompts.json`` in ``directory``, so a resumed generation reads them and
    asks nothing again; the images' provenance names each prompt's origin.

    Returns:
        :func:`~synthaug.generate.generate_dataset`'s summary (its plan with ``dry_run``).

    Raises:
        SynthaugError: Generation failed; the message names the source.
    """
    from synthaug.generate import generate_dataset
    from synthaug.generate.expand import expand_prompts, plan_expansion
    from synthaug.generate.prompts import DEFAULT_NEGATIVE_PROMPT, PromptSpec

    prompt = spec_prompt(spec, where)
    expansion = _expansion(spec, where)
    params = dict(spec.params)
    if spec.negative_prompt is not None:
        default = spec.negative_prompt == "default"
        params["negative_prompt"] = DEFAULT_NEGATIVE_PROMPT if default else spec.negative_prompt
    text_plan = None
    try:
        if expansion is not None or spec.captions is not None:
            base = PromptSpec(templates=(prompt,)) if isinstance(prompt, str) else prompt
            if expansion is not None:
                described = {label: base.class_descriptions.get(label) for label in classes}
                if dry_run:
                    text_plan = plan_expansion(described, expansion, directory)
                else:
                    prompt = expand_prompts(described, expansion, directory, progress=progress).prompt_spec(base)
            elif not dry_run:
                prompt = _captioned(spec, base, classes, real, cache_dir, progress, where)
        plan = generate_dataset(
            directory,
            classes,
            per_class,
            backend=spec.backend,
            model=model if model is not None else spec.model,
            prompt=prompt,
            seed=spec.seed,
            params=params,
            backend_options=spec.backend_options,
            max_cost=spec.max_cost,
            extend=extend,
            progress=progress,
            executor=executor,
            resources=resources,
            init_images=init_images,
            dry_run=dry_run,
        )
    except SynthaugError as error:
        raise type(error)(f"{where} ({name}): {error}") from error
    if text_plan is not None:
        plan = {**plan, "text_model_calls": text_plan.max_calls, "text_cost_usd": text_plan.max_cost_usd,
                "estimated_cost_usd": plan["estimated_cost_usd"] + text_plan.max_cost_usd}  # fmt: skip
    return plan
