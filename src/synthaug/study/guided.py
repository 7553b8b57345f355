"""Synthetic sources made from real images: guided by them, or from a generator tuned on them.

A source with ``generate: {init_images: real, strength: [...]}`` or ``generate: {tune_on:
real}`` depends on the real images of each regime: a ``mixed`` regime at ``n`` real images per
class and seed ``s`` gets variants of exactly those ``n`` images (or samples of a generator
tuned on exactly them), never of images another run sees, so the comparison with the
text-only source stays paired by seed and the real images are counted once. A ``synthetic``
regime starts from ``real_per_class`` real images per class at its seed.

Each such set is generated once into a content-addressed folder whose key holds the
generation spec and the fingerprint of the real images used; the driver generates every set
before training starts, workers only read them. Guidance from a dataset spec
(``init_images: fashion-mnist:train[:100]``) is a single set, keyed by the digest of its
images.

Leakage guard: guidance images are compared by pixel content with the study's test and
validation sets (:func:`synthaug.generate.guided.check_no_leakage`); any shared image is a
one-line :class:`~synthaug.errors.ConfigError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthaug.errors import ConfigError, SynthaugError
from synthaug.progress import ProgressCallback, report
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.config import GenerationSpec, StudyConfig, SyntheticSource

if TYPE_CHECKING:
    from synthaug.data import ImageDataset
    from synthaug.generate.guided import Guidance

DEFAULT_TUNE_STEPS = 300


def real_sizes(config: StudyConfig, source: SyntheticSource) -> list[int]:
    """The real sizes (images per class) whose own real images the source starts from."""
    sizes: set[int] = set()
    for regime in config.regimes:
        if regime.data == "real" or (regime.source or config.synthetic[0].name) != source.name:
            continue
        if regime.data == "mixed":
            sizes.update(regime.sizes)
        elif source.generate.real_per_class is not None:
            sizes.add(source.generate.real_per_class)
    return sorted(sizes)


def guidance_from_spec(spec: GenerationSpec, real: ImageDataset | str, classes: list[str]) -> Guidance:
    """The :class:`~synthaug.generate.guided.Guidance` of ``spec`` from ``real``."""
    from synthaug.generate.guided import load_guidance

    return load_guidance(real, classes, spec.strength if spec.strength is not None else None)


def check_guidance(guidance: Guidance, test: ImageDataset, val: ImageDataset, where: str) -> None:
    """The leakage guard: no guidance image may be a test or validation image (by pixels)."""
    from synthaug.generate.guided import check_no_leakage

    try:
        check_no_leakage(guidance.content_hashes(), {"test": test, "validation": val})
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from error


def check_caption_images(real: ImageDataset, test: ImageDataset, val: ImageDataset, where: str) -> None:
    """The leakage guard of ``prompt.captions``: no captioned image may be a test or validation
    image (by pixels), or its caption would describe what the models are evaluated on."""
    from synthaug.generate.guided import held_out_hashes

    captioned = held_out_hashes(real)
    for name, dataset in (("test", test), ("validation", val)):
        shared = captioned & held_out_hashes(dataset)
        if shared:
            raise ConfigError(f"{where}.generate.prompt.captions: {len(shared)} real training image(s) are also in "
                              f"the {name} set {dataset.name} (same pixels); remove them from real.train")  # fmt: skip


def per_real_sets(
    config: StudyConfig,
    source: SyntheticSource,
    index: int,
    pool: ImageDataset,
    test: ImageDataset,
    val: ImageDataset,
    classes: list[str],
    cache: StudyCache,
    progress: ProgressCallback | None = None,
    generate: bool = True,
) -> dict[tuple[int, int], Path]:
    """Generate (or find) the set of every ``(real size, seed)`` of a per-real source.

    Returns:
        ``(size, seed) -> folder``; with ``generate=False`` the folders are only located.
    """
    from synthaug.data import subsample_per_class
    from synthaug.study.generation import generate_from_spec

    spec = source.generate
    where = f"synthetic[{index}]"
    folders: dict[tuple[int, int], Path] = {}
    for size in real_sizes(config, source):
        for seed in config.seeds:
            real = subsample_per_class(pool, size, seed=seed)
            description = {
                "generate": spec.identity(),
                "classes": classes,
                "real": real.fingerprint(),
            }
            folder = cache.generated_dir(content_key(description))
            folders[(size, seed)] = folder
            if not generate:
                continue
            stage = f"generate {source.name}"
            report(progress, stage, 0, item=f"from {size} real/class, seed {seed}")
            model, guidance = spec.model, None
            try:
                if spec.tune_on == "real":
                    model = str(_tuned_generator(spec, real, cache, description, seed, config.device, progress))
                else:
                    guidance = guidance_from_spec(spec, real, classes)
                    check_guidance(guidance, test, val, f"{where}.generate.init_images")
            except SynthaugError as error:
                raise type(error)(f"{where} ({source.name}): {error}") from error
            if spec.captions is not None:
                check_caption_images(real, test, val, where)
            generate_from_spec(folder, spec, classes, spec.per_class, where, source.name, model=model,
                               init_images=guidance, progress=progress, real=real,
                               cache_dir=cache.root / "captions")  # fmt: skip
    return folders


def _tuned_generator(
    spec: GenerationSpec, real: ImageDataset, cache: StudyCache, description: dict[str, Any], seed: int,
    device: str | None, progress: ProgressCallback | None,
) -> Path:  # fmt: skip
    """The ddpm generator tuned on ``real`` (tuned once, then found in the cache)."""
    from synthaug.study.tuning import CHECK_FILE, tune_and_check

    folder = cache.generated_dir(content_key({**description, "tuned_generator": True}))
    if not (folder / CHECK_FILE).is_file():
        tune_and_check(real, folder, spec.model or "ddpm-fashion-mnist", seed=seed, device=device,
                       progress=progress, steps=spec.tune_steps or DEFAULT_TUNE_STEPS)  # fmt: skip
    return folder

