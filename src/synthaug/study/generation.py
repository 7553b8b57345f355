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
    from synthaug.execution import Executor, Resources
    from synthaug.generate.guided import Guidance
    from synthaug.generate.prompts import PromptSpec
    from synthaug.progress import ProgressCallback

__all__ = ["generate_from_spec", "spec_prompt"]


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

    if isinstance(spec.prompt, str):
        return spec.prompt
    try:
        return PromptSpec(**{key: _tuples(value) for key, value in spec.prompt.items()})
    except TypeError as error:
        raise ConfigError(f"{where}.generate.prompt: {error}") from error


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
            images on disk and to generate, estimated cost and seconds) that the study's
            ``--dry-run`` (:mod:`synthaug.study.plan`) prints.

    Returns:
        :func:`~synthaug.generate.generate_dataset`'s summary (its plan with ``dry_run``).

    Raises:
        SynthaugError: Generation failed; the message names the source.
    """
    from synthaug.generate import generate_dataset

    prompt = spec_prompt(spec, where)
    try:
        return generate_dataset(
            directory,
            classes,
            per_class,
            backend=spec.backend,
            model=model if model is not None else spec.model,
            prompt=prompt,
            seed=spec.seed,
            params=spec.params,
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
