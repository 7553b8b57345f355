"""``synthaug generate``: a labelled image dataset from class names and prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml

from synthaug.cli._app import app
from synthaug.cli._console import make_console
from synthaug.cli._execution import GenerateWorkersOption, RayOption, executor_from_options
from synthaug.cli._progress import progress_reporter
from synthaug.errors import ConfigError, GenerationError
from synthaug.generate.prompts import (
    BUILTIN_BACKGROUNDS,
    BUILTIN_STYLES,
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_TEMPLATE,
    PromptSpec,
    class_descriptions,
    resolve_choices,
)

if TYPE_CHECKING:
    from rich.console import Console


@app.command("generate")
def generate_cli(
    out: Annotated[Path, typer.Option("--out", help="Output folder (created, or resumed if it exists).")],
    per_class: Annotated[int, typer.Option("--per-class", help="Images wanted per class.")],
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class labels, e.g. 'T-shirt/top,Trouser'.")
    ] = None,
    classes_file: Annotated[
        Path | None,
        typer.Option("--classes-file", help="Class labels: one per line, a JSON/YAML list, or a JSON/YAML "
                     "mapping label -> description (e.g. crane: the bird)."),
    ] = None,
    describe: Annotated[
        list[str] | None,
        typer.Option("--describe", help="LABEL=DESCRIPTION, repeatable: written after the class name in every "
                     "prompt, e.g. --describe 'crane=the bird'."),
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="ddpm, openai or diffusers.")] = "ddpm",
    model: Annotated[str | None, typer.Option("--model", help="Model name, hub id or local path.")] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help=f"Prompt template with {{label}} [default: {DEFAULT_TEMPLATE!r}]."),
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option("--prompt-file", help="YAML/JSON: label -> prompts, or templates/prompts/descriptions/..."),
    ] = None,
    backgrounds: Annotated[
        str | None,
        typer.Option("--backgrounds", help="'builtin' or comma-separated contexts, one drawn per image."),
    ] = None,
    styles: Annotated[
        str | None,
        typer.Option("--styles", help="'builtin' or comma-separated photo styles, one drawn per image."),
    ] = None,
    guidance_scale_range: Annotated[
        str | None, typer.Option("--guidance-scale-range", help="LOW,HIGH: draw each image's guidance scale.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Run seed; every image's seed derives from it.")] = 0,
    concurrency: Annotated[int | None, typer.Option("--concurrency", help="Requests in flight (openai).")] = None,
    max_cost: Annotated[
        float | None, typer.Option("--max-cost", help="Stop before the folder's estimated cost exceeds USD.")
    ] = None,
    price_per_image: Annotated[
        float | None, typer.Option("--price-per-image", help="USD per image, overriding the price table (openai).")
    ] = None,
    size: Annotated[str | None, typer.Option("--size", help="Image size WIDTHxHEIGHT.")] = None,
    quality: Annotated[str | None, typer.Option("--quality", help="Quality tier (openai).")] = None,
    style: Annotated[str | None, typer.Option("--style", help="vivid or natural (dall-e-3).")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps (ddpm, diffusers).")] = None,
    guidance_scale: Annotated[float | None, typer.Option("--guidance-scale", help="Guidance scale.")] = None,
    negative_prompt: Annotated[
        str | None,
        typer.Option("--negative-prompt", help=f"Text to avoid (diffusers); 'default': {DEFAULT_NEGATIVE_PROMPT!r}."),
    ] = None,
    expand: Annotated[
        str | None,
        typer.Option("--expand", help="A text model writes the prompts: 'openai[:CHAT_MODEL]' (default "
                     "gpt-4o-mini) or 'transformers:DIR_OR_HUB_ID'; saved in OUT/prompts.json and reused."),
    ] = None,
    expand_per_class: Annotated[int, typer.Option("--expand-per-class", help="Prompts per class.")] = 20,
    expand_instruction: Annotated[
        Path | None, typer.Option("--expand-instruction", help="Your own instruction file (see the shipped one).")
    ] = None,
    expand_max_words: Annotated[int, typer.Option("--expand-max-words", help="Longest prompt kept.")] = 30,
    expand_max_cost: Annotated[
        float | None, typer.Option("--expand-max-cost", help="USD cap on the text model's cost.")
    ] = None,
    expand_describe: Annotated[
        bool, typer.Option("--expand-describe", help="Ask the text model what each undescribed class means.")
    ] = False,
    expand_price: Annotated[
        str | None,
        typer.Option("--expand-price", help="INPUT,OUTPUT USD per million tokens of an unlisted chat model."),
    ] = None,
    captions_model: Annotated[
        str | None,
        typer.Option("--captions-model", help="Captioning model folder (e.g. BLIP): prompts join each class name "
                     "with captions of its real images (--captions-of)."),
    ] = None,
    captions_of: Annotated[
        str | None, typer.Option("--captions-of", help="Real images to caption (folder or dataset; classes by name).")
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, mps (local backends).")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="float32, float16, bfloat16 (diffusers).")] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Images per model call (local backends).")
    ] = None,
    lora: Annotated[
        str | None,
        typer.Option("--lora", help="LoRA to load into the pipeline (diffusers), e.g. from `synthaug "
                     "train-generator --backend diffusers`."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; generate nothing.")] = False,
    extend: Annotated[
        bool, typer.Option("--extend", help="Add to a folder generated with other settings.")
    ] = False,
    init_images: Annotated[
        str | None,
        typer.Option(
            "--init-images",
            help="Real images to start from (folder or built-in spec, classes matched by name): image j "
            "of a class is a variant of its real image j mod n (ddpm: SDEdit; diffusers: image-to-image; "
            "openai: edits, dall-e-2: variations).",
        ),
    ] = None,
    strength: Annotated[
        str | None,
        typer.Option("--strength", help="With --init-images: noise strength in (0, 1], or a comma list drawn "
                     "per image (1 = text-to-image, near 0 = the real image); not for openai."),
    ] = None,
    workers: GenerateWorkersOption = None,
    ray: RayOption = None,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", help="GPUs per Ray task (fractions share a GPU; local backends).")
    ] = 0.0,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress (bars on a terminal, lines in a log).")
    ] = True,
) -> None:
    """Generate a labelled image dataset from text prompts (resumable: rerun to continue)."""
    labels, meanings = read_classes(classes, classes_file)
    meanings = {**meanings, **parse_descriptions(describe or [])}
    spec = PromptSpec.from_file(prompt_file) if prompt_file is not None else PromptSpec()
    overrides: dict[str, Any] = {}
    if meanings:
        overrides["class_descriptions"] = {**spec.class_descriptions, **meanings}
    if prompt is not None:
        overrides["templates"] = (prompt,)
    if backgrounds is not None:
        overrides["backgrounds"] = resolve_choices(
            _split(backgrounds, "builtin"), BUILTIN_BACKGROUNDS, "--backgrounds"
        )
    if styles is not None:
        overrides["styles"] = resolve_choices(_split(styles, "builtin"), BUILTIN_STYLES, "--styles")
    if guidance_scale_range is not None:
        overrides["guidance_scale_range"] = _parse_range(guidance_scale_range)
    spec = dataclasses.replace(spec, **overrides)
    if negative_prompt == "default":
        negative_prompt = DEFAULT_NEGATIVE_PROMPT
    params = _given(size=size, quality=quality, style=style, steps=steps, guidance_scale=guidance_scale,
                    negative_prompt=negative_prompt)  # fmt: skip
    if expand is not None and captions_model is not None:
        raise ConfigError("give either --expand or --captions-model: both write the per-class prompts")
    expansion = None
    if expand is not None:
        from synthaug.generate.expand import PromptExpansion

        expand_backend, _, expand_model = expand.partition(":")
        expansion = PromptExpansion(
            backend=expand_backend, model=expand_model or None, per_class=expand_per_class,
            instruction=str(expand_instruction) if expand_instruction is not None else None,
            max_words=expand_max_words, seed=seed, max_cost=expand_max_cost, describe=expand_describe,
            usd_per_million_tokens=_parse_pair(expand_price, "--expand-price") if expand_price else None,
        )  # fmt: skip
    elif any(v is not None for v in (expand_instruction, expand_max_cost, expand_price)) or expand_describe:
        raise ConfigError("--expand-* options need --expand (the text model that writes the prompts)")
    if (captions_model is None) != (captions_of is None):
        raise ConfigError("give --captions-model and --captions-of together (the model, and the images to caption)")
    options = _given(concurrency=concurrency, price_per_image=price_per_image, device=device, dtype=dtype,
                     batch_size=batch_size, lora=lora)  # fmt: skip

    guidance = None
    if init_images is not None:
        from synthaug.generate.guided import load_guidance  # reads datasets (torch): only when asked

        guidance = load_guidance(init_images, labels, strength)
    elif strength is not None:
        raise ConfigError("--strength needs --init-images (the real images to start from)")
    from synthaug.execution import Resources
    from synthaug.generate.engine import generate_dataset

    console = make_console()
    if expansion is not None:
        spec = _expanded_spec(console, spec, labels, expansion, out, dry_run, progress)
    if captions_model is not None:
        spec = _captioned_spec(spec, labels, captions_model, captions_of, device, progress)
    # One process by default: a backend already runs its calls (openai) or batches (GPU) in
    # parallel; --workers/--ray spread the shards over processes or machines.
    with (
        executor_from_options(workers, ray, default_workers=1) as executor,
        progress_reporter(progress and not dry_run) as reporter,
    ):
        result = generate_dataset(
            out,
            labels,
            per_class,
            backend=backend,
            model=model,
            prompt=spec,
            seed=seed,
            params=params,
            backend_options=options,
            max_cost=max_cost,
            dry_run=dry_run,
            extend=extend,
            progress=reporter,
            init_images=guidance,
            executor=executor,
            resources=Resources(num_cpus=1, num_gpus=gpus_per_worker),
        )
    if dry_run:
        _print_plan(console, result)
        return
    _print_summary(console, result)
    if result["missing"]:
        missing = sum(result["missing"].values())
        reason = (
            "--max-cost reached" if result["stopped_by_max_cost"] else f"prompts refused, see {out}/rejected.jsonl"
        )
        raise GenerationError(
            f"{missing} image(s) still missing ({reason}); adjust the prompts or budget and rerun with --extend"
        )


def read_classes(classes: str | None, classes_file: Path | None) -> tuple[list[str], dict[str, str]]:
    """Class labels and their descriptions from ``--classes`` or ``--classes-file`` (exactly one of them)."""
    if (classes is None) == (classes_file is None):
        raise ConfigError("give the class labels with either --classes or --classes-file")
    if classes is not None:
        return [label.strip() for label in classes.split(",") if label.strip()], {}
    try:
        text = classes_file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--classes-file {classes_file}: cannot read it ({error.strerror})") from error
    if classes_file.suffix in (".json", ".yaml", ".yml"):
        try:
            labels = json.loads(text) if classes_file.suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as error:
            raise ConfigError(
                f"--classes-file {classes_file}: not valid {classes_file.suffix[1:]} ({error})"
            ) from error
        if isinstance(labels, dict):
            return [str(label) for label in labels], class_descriptions(labels, f"--classes-file {classes_file}")
        if not isinstance(labels, list):
            raise ConfigError(f"--classes-file {classes_file}: expected a list of labels or a label -> description map")
        return [str(label) for label in labels], {}
    return [line.strip() for line in text.splitlines() if line.strip()], {}


def parse_descriptions(values: list[str]) -> dict[str, str]:
    """``--describe LABEL=DESCRIPTION`` options as a mapping."""
    descriptions = {}
    for value in values:
        label, equals, description = value.partition("=")
        if not equals or not label.strip() or not description.strip():
            raise ConfigError(f"--describe {value!r}: expected LABEL=DESCRIPTION, e.g. 'crane=the bird'")
        descriptions[label.strip()] = " ".join(description.split())
    return descriptions


def _expanded_spec(
    console: Console, spec: PromptSpec, labels: list[str], expansion: Any, out: Path, dry_run: bool, progress: bool
) -> PromptSpec:
    """The spec with the text model's prompts; a dry run asks nothing and prints what it would ask."""
    from synthaug.generate.expand import expand_prompts, plan_expansion

    classes = {label: spec.class_descriptions.get(label) for label in labels}
    if dry_run:
        plan = plan_expansion(classes, expansion, out)
        console.print(
            f"prompt expansion ({expansion.backend}, {expansion.model_name}): {len(plan.saved)} class(es) saved, "
            f"{len(plan.to_ask)} to ask in at most {plan.max_calls} call(s), at most ${plan.max_cost_usd:.4f}"
        )
        if plan.to_ask:
            return spec  # the plan below shows template prompts for the classes not yet expanded
    with progress_reporter(progress and not dry_run) as reporter:
        expanded = expand_prompts(classes, expansion, out, progress=reporter)
    if expanded.requests:
        console.print(f"prompt expansion: {expanded.requests} call(s), ${expanded.cost_usd:.4f} in total; "
                      f"prompts saved in {out}/prompts.json")  # fmt: skip
    return expanded.prompt_spec(spec)


def _captioned_spec(
    spec: PromptSpec, labels: list[str], model: str, images: str, device: str | None, progress: bool
) -> PromptSpec:
    """The spec with caption prompts of the real images of ``labels``."""
    import numpy as np

    from synthaug.data import load_dataset
    from synthaug.generate.captions import caption_images, caption_prompt_spec

    real = load_dataset(images)
    missing = [label for label in labels if label not in real.classes]
    if missing:
        raise ConfigError(f"--captions-of {images}: no images of {', '.join(map(repr, missing))}")
    wanted = [real.classes.index(label) for label in labels]
    real = real.subset(np.flatnonzero(np.isin(real.targets, wanted)))
    with progress_reporter(progress) as reporter:
        captions = caption_images(real, model, device=device, progress=reporter)
    return caption_prompt_spec(real, captions, base=spec)


def _split(value: str, keyword: str) -> str | list[str]:
    return keyword if value.strip() == keyword else [part.strip() for part in value.split(",") if part.strip()]


def _parse_pair(value: str, option: str) -> tuple[float, float]:
    try:
        first, second = (float(part) for part in value.split(","))
    except ValueError as error:
        raise ConfigError(f"{option} {value!r}: expected two numbers A,B, e.g. 0.15,0.60") from error
    return first, second


def _parse_range(value: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError as error:
        raise ConfigError(f"--guidance-scale-range {value!r}: expected LOW,HIGH, e.g. 1.5,7.5") from error
    return low, high


def _given(**values: Any) -> dict[str, Any]:
    """The options the user actually gave, so a backend can reject the ones it does not take."""
    return {key: value for key, value in values.items() if value is not None}


def _print_plan(console: Console, plan: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Plan for {plan['out_dir']} ({plan['backend']}, {plan['generator'].get('model')})")
    table.add_column("class")
    table.add_column("to generate", justify="right")
    table.add_column("example prompt")
    for label, count in plan["requests_per_class"].items():
        table.add_row(label, str(count), plan["example_prompts"][label][0])
    console.print(table)
    seconds = plan["estimated_seconds"]
    console.print(
        f"{plan['to_generate']} image(s) to generate, {plan['existing']} already there; "
        f"estimated cost ${plan['estimated_cost_usd']:.4f}"
        + (f" (max ${plan['max_cost']:.2f}: {plan['affordable']} affordable)" if plan["max_cost"] is not None else "")
        + (f"; estimated time {seconds / 60:.1f} min" if seconds is not None else "")
    )


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{summary['out_dir']} ({summary['backend']}, {summary['model']})")
    table.add_column("class")
    table.add_column("images", justify="right")
    table.add_column("missing", justify="right")
    for label, count in summary["per_class_counts"].items():
        table.add_row(label, str(count), str(summary["missing"].get(label, 0)))
    console.print(table)
    console.print(
        f"generated {summary['generated']}, reused {summary['reused']}, refused {summary['rejected']}; "
        f"{summary['seconds']:.1f} s ({summary['images_per_second']:.2f} img/s); "
        f"cost ${summary['cost_usd']:.4f} this run, ${summary['total_cost_usd']:.4f} in total"
    )
