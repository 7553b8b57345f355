"""A study's datasets: load the real, OOD and synthetic data once, and draw each unit's
training set from it.

The driver prepares, a worker opens. :func:`prepare_study_data` (the driver, once, before any
unit runs) generates the synthetic sources declared by a generation spec, audits the sources
that filtered or audit-weighted regimes draw from, loads every dataset class-aligned to the real
training pool and checks that every regime's sizes are available. :func:`open_study_data` (a
worker that was not sent the driver's data) loads the same datasets from what the driver made
and never generates or audits: two workers must never write into one folder. :func:`training_set`
then draws a unit's ``n`` images per class with the unit's seed.

One exception, on purpose: a targeted regime's units (:mod:`synthaug.study.targeted`) generate
in their worker, because which images a round needs depends on the model the round before
trained; the runner gives each targeted unit a wave of its own, so one process at a time writes
the regime's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthaug.errors import ConfigError, DataError, SynthaugError
from synthaug.progress import ProgressCallback, report
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.config import GenerationSpec, Regime, StudyConfig, SyntheticSource, audit_config
from synthaug.study.shift import shifted_test_sets
from synthaug.study.units import Unit, method_identity

if TYPE_CHECKING:  # the data package pulls in torch; it is imported when data is loaded
    from synthaug.data import ImageDataset
    from synthaug.execution import Executor, Resources
    from synthaug.generate.guided import Guidance

__all__ = [
    "StudyData", "check_backbones", "open_study_data", "prepare_study_data", "source_folder", "synthetic_pool",
    "training_set",
]


@dataclass
class StudyData:
    """Every dataset a study needs, class-aligned to the real training pool.

    Attributes:
        classes: Class names the models learn (held-out classes removed).
        pool: Real images the regimes draw from (validation split removed).
        val: Real validation set.
        test: Real test set.
        ood: OOD sets by name.
        shifted: Corrupted copies of ``test`` by ``shift:<corruption>:<severity>`` (the
            config's ``shift``; see :mod:`synthaug.study.shift`).
        synthetic: Synthetic datasets by source name.
        synthetic_dirs: Folder of each synthetic source (for the report's sample grid).
        audits: Audit folder of each synthetic source that a filtered or audit-weighted
            regime uses.
        regime_pools: The synthetic images each filtered or audit-weighted regime draws from
            (by regime name; other regimes draw from their whole source).
    """

    classes: list[str]
    pool: ImageDataset
    val: ImageDataset
    test: ImageDataset
    ood: dict[str, ImageDataset] = field(default_factory=dict)
    shifted: dict[str, ImageDataset] = field(default_factory=dict)
    synthetic: dict[str, ImageDataset] = field(default_factory=dict)
    synthetic_dirs: dict[str, str] = field(default_factory=dict)
    audits: dict[str, Path] = field(default_factory=dict)
    regime_pools: dict[str, ImageDataset] = field(default_factory=dict)
    # Sources made from each regime's own real images (study/guided.py): (source, real size,
    # seed) -> the images generated from exactly those real images.
    per_real: dict[tuple[str, int, int], ImageDataset] = field(default_factory=dict)


def _load(spec: str, where: str) -> ImageDataset:
    from synthaug.data import load_dataset

    try:
        return load_dataset(spec)
    except DataError as error:
        raise ConfigError(f"{where}: {error}") from error


def _restrict(dataset: ImageDataset, classes: list[str], where: str) -> ImageDataset:
    """``dataset`` keeping only the images of ``classes`` (by name), re-indexed to their order."""
    unknown = [name for name in classes if name not in dataset.classes]
    if unknown:
        raise ConfigError(f"{where}: classes {unknown} are missing from {dataset.name}")
    keep = np.isin(np.asarray(dataset.classes, dtype=object)[dataset.targets], classes)
    return dataset.subset(np.flatnonzero(keep)).with_classes(classes)


def source_folder(
    spec: GenerationSpec, classes: list[str], cache: StudyCache, real: ImageDataset | None = None
) -> tuple[Path, Guidance | None]:
    """The folder a (not per-real) generated source is written to, and its guidance images:
    the spec's ``dir``, else a cache folder keyed by what the images depend on (with
    ``prompt.captions``, the real training images ``real`` that are captioned)."""
    description: dict[str, Any] = {"generate": spec.identity(), "classes": classes}
    if spec.captions is not None and real is not None:
        description["captions_of"] = real.fingerprint()
    guidance = None
    if spec.init_images is not None:  # guidance from a dataset spec (per-real sources: study/guided.py)
        from synthaug.study.guided import guidance_from_spec

        guidance = guidance_from_spec(spec, spec.init_images, classes)
        description["init_images_sha256"] = guidance.to_dict()["images_sha256"]
    return (Path(spec.dir) if spec.dir else cache.generated_dir(content_key(description))), guidance


def _generate_source(
    source: SyntheticSource,
    spec: GenerationSpec,
    index: int,
    classes: list[str],
    cache: StudyCache,
    progress: ProgressCallback | None,
    executor: Executor | None = None,
    generate: bool = True,
    resources: Resources | None = None,
    real: ImageDataset | None = None,
) -> Path:
    """Generate (or resume generating) a synthetic source; returns its folder (only that
    when not ``generate``: a worker uses the folder its driver generated)."""
    from synthaug.study.generation import generate_from_spec

    directory, guidance = source_folder(spec, classes, cache, real)
    if not generate:
        return directory
    generate_from_spec(directory, spec, classes, spec.per_class, f"synthetic[{index}]", source.name,
                       init_images=guidance, progress=progress, executor=executor, resources=resources, real=real,
                       cache_dir=cache.root / "captions")  # fmt: skip
    return directory


def retrieval_folder(source: SyntheticSource, classes: list[str], test: ImageDataset, val: ImageDataset,
                     cache: StudyCache) -> Path:  # fmt: skip
    """The cache folder of a retrieved source: keyed by its spec, the classes and the sets it is
    deduplicated against (another test set may exclude other pool images)."""
    description = {"retrieve": source.retrieve.model_dump(mode="json"), "classes": classes,
                   "exclude": [test.fingerprint(), val.fingerprint()]}  # fmt: skip
    return cache.generated_dir(content_key(description))


def _retrieve_source(
    source: SyntheticSource, where: str, classes: list[str], data: StudyData, cache: StudyCache,
    device: str | None, progress: ProgressCallback | None, prepare: bool,
) -> Path:  # fmt: skip
    """Retrieve a source's images from its pool (once: a finished folder holds
    ``retrieval.json``), deduplicated against the study's test and validation sets.

    Retrieval writes into a fresh ``.partial`` folder renamed when complete, so an interrupted
    retrieval starts over (pool embeddings stay cached under ``CACHE/retrieval``, so a rerun
    embeds nothing twice).
    """
    import shutil

    from synthaug.retrieve import SETTINGS_NAME, retrieve_dataset

    spec = source.retrieve
    directory = retrieval_folder(source, classes, data.test, data.val, cache)
    if (directory / SETTINGS_NAME).is_file() or not prepare:
        return directory
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    stage = f"retrieve {source.name}"
    report(progress, stage, 0, item=spec.pool)
    try:
        retrieve_dataset(_load(spec.pool, f"{where}.retrieve.pool"), dict.fromkeys(classes), spec.clip,
                         spec.per_class, partial, exclude=[data.test, data.val], cache_dir=cache.root / "retrieval",
                         device=device, progress=progress)  # fmt: skip
    except SynthaugError as error:
        raise type(error)(f"{where} ({source.name}): {error}") from error
    partial.rename(directory)
    report(progress, stage, 1, 1, item=spec.pool, finished=True)
    return directory


def prepare_study_data(
    config: StudyConfig,
    cache: StudyCache,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    resources: Resources | None = None,
) -> StudyData:
    """The driver's part: generate the synthetic sources that are missing (or resume them),
    audit the sources that filtered or audit-weighted regimes need (or find the audits in the
    cache), load every dataset and check that every regime's sizes are available.

    Args:
        config: The study config.
        cache: Where generated images and audits are stored.
        progress: Told as loading starts and ends and as each audit starts and ends, and passed
            to generation and the audits, which report their own images, folds and epochs.
        executor: Where generation runs (:mod:`synthaug.execution`); ``None``: this process.
        resources: What one generation shard reserves on a Ray cluster (the units' own).

    Raises:
        ConfigError: A dataset is missing or unreadable, class names do not match, a
            regime's ``method_params`` are invalid, or a regime asks for more images per class
            than its data has; the message names the key.
    """
    return _study_data(config, cache, progress, executor, resources, prepare=True)


def open_study_data(config: StudyConfig, cache: StudyCache) -> StudyData:
    """A worker's part: the same datasets as :func:`prepare_study_data`, from the folders and
    audits its driver made; nothing is generated or audited here.

    Raises:
        ConfigError: A dataset is missing or unreadable (the driver has not prepared it).
        DataError: An audit the driver should have made is not in the cache.
    """
    return _study_data(config, cache, None, None, None, prepare=False)


def _study_data(
    config: StudyConfig,
    cache: StudyCache,
    progress: ProgressCallback | None,
    executor: Executor | None,
    resources: Resources | None,
    prepare: bool,
) -> StudyData:
    """What :func:`prepare_study_data` and :func:`open_study_data` share: every dataset, loaded
    and class-aligned; with ``prepare``, made first where missing."""
    from synthaug.data import train_val_split

    if prepare:
        check_backbones(config)
        _check_source_inputs(config)
    report(progress, "load data", 0)
    pool = _load(config.real.train, "real.train")
    if config.real.val is not None:
        val = _load(config.real.val, "real.val")
    else:
        pool, val = train_val_split(pool, config.real.val_fraction, seed=config.real.val_seed)
    test = _load(config.real.test, "real.test")
    all_classes = list(pool.classes)
    holdout = config.holdout_classes()
    for index, entry in enumerate(config.ood):
        for name in entry.holdout_classes or []:
            if name not in all_classes:
                raise ConfigError(f"ood[{index}].holdout_classes: unknown class {name!r}; classes are {all_classes}")
    classes = [name for name in all_classes if name not in holdout]
    if len(classes) < 2:
        raise ConfigError("ood: holding these classes out leaves fewer than two classes to learn")

    def aligned(dataset: ImageDataset, where: str) -> ImageDataset:
        try:
            dataset = dataset.with_classes(all_classes)
        except DataError as error:
            raise ConfigError(f"{where}: {error}") from error
        return _restrict(dataset, classes, where) if holdout else dataset

    data = StudyData(
        classes=classes,
        pool=aligned(pool, "real.train"),
        val=aligned(val, "real.val"),
        test=aligned(test, "real.test"),
    )
    full_test = test.with_classes(all_classes)
    for entry in config.ood:
        if entry.data is not None:
            data.ood[entry.name] = _load(entry.data, f"ood[{config.ood.index(entry)}].data")
        else:
            mask = np.isin(np.asarray(all_classes, dtype=object)[full_test.targets], entry.holdout_classes)
            data.ood[entry.name] = full_test.subset(np.flatnonzero(mask), name=f"{full_test.name} ({entry.name})")
    if config.shift is not None:
        shift = config.shift
        data.shifted = shifted_test_sets(data.test, shift.corruptions, shift.severities, shift.seed)

    for index, source in enumerate(config.synthetic):
        where = f"synthetic[{index}]"
        if source.retrieve is not None:
            directory = _retrieve_source(source, where, classes, data, cache, config.device, progress, prepare)
            dataset = _load(str(directory), f"{where}.retrieve")
        elif source.generate is None:
            directory = Path(str(source.path))
            dataset = _load(str(source.path), f"{where}.path")
        elif source.generate.per_real:
            from synthaug.study.guided import per_real_sets

            folders = per_real_sets(config, source, index, data.pool, data.test, data.val, classes, cache,
                                    progress, generate=prepare)  # fmt: skip
            for (size, seed), folder in folders.items():
                data.per_real[(source.name, size, seed)] = aligned(_load(str(folder), f"{where}.generate"), where)
            if not folders:
                raise ConfigError(
                    f"{where}.generate.init_images: `real` means each regime's own real images, but no "
                    f"real or mixed regime uses source {source.name!r}; add one or remove the source"
                )
            directory = next(iter(folders.values()))  # a representative set (sample grids, size checks)
            dataset = _load(str(directory), f"{where}.generate")
        else:
            if source.generate.init_images is not None:
                from synthaug.study.guided import check_guidance, guidance_from_spec

                check_guidance(guidance_from_spec(source.generate, source.generate.init_images, classes), data.test,
                               data.val, f"{where}.generate.init_images")  # fmt: skip
            if source.generate.captions is not None and prepare:
                from synthaug.study.guided import check_caption_images

                check_caption_images(data.pool, data.test, data.val, where)
            directory = _generate_source(
                source, source.generate, index, classes, cache, progress, executor, prepare, resources, data.pool
            )
            dataset = _load(str(directory), f"{where}.generate")
        data.synthetic[source.name] = aligned(dataset, where)
        data.synthetic_dirs[source.name] = str(directory)
    for name in config.audited_sources():
        data.audits[name] = _audit_source(config, data, cache, name, progress, prepare)
    for regime in config.regimes:
        if regime.filter is not None or regime.weights is not None:
            data.regime_pools[regime.name] = _treated_pool(config, data, regime)
    _check_sizes(config, data)
    report(progress, "load data", 1, 1, finished=True)
    return data


def check_backbones(config: StudyConfig) -> None:
    """Build every backbone and load its local weights, so that a ``weights_path`` saved from
    another architecture (or a misspelt option) stops the study on its driver before the first
    generated (possibly paid) image, with one line naming ``backbones[i]``.

    Raises:
        ConfigError: A backbone cannot be built or its weights do not fit it.
    """
    from synthaug.models import make_backbone

    for index, spec in enumerate(config.backbones):
        try:
            make_backbone(spec.name, **dict(spec.params or {})).check_weights()
        except ConfigError as error:
            raise ConfigError(f"backbones[{index}] ({spec.name}): {error}") from error


def _check_source_inputs(config: StudyConfig) -> None:
    """What every source reads besides the real data, checked before the first source is
    generated (a later source's missing pool must not stop the study after an earlier one paid):
    retrieval pools, prompt-expansion settings and captioning-model folders."""
    from synthaug.study.generation import spec_prompt, text_model_settings

    for index, source in enumerate(config.synthetic):
        where = f"synthetic[{index}]"
        if source.retrieve is not None:
            _load(source.retrieve.pool, f"{where}.retrieve.pool")
        if source.generate is not None:
            spec_prompt(source.generate, where)
            text_model_settings(source.generate, where)


def _audit_method_identities(settings: Any) -> dict[str, Any]:
    """:func:`~synthaug.study.units.method_identity` of the fold and reference methods an audit
    with ``settings`` (an ``AuditConfig``) trains."""
    from synthaug.methods import make_method

    common = {"backbone": settings.backbone, "epochs": settings.epochs, "seed": settings.seed}
    return {
        "folds": method_identity(make_method(settings.method, **common, **settings.method_options)),
        "reference": method_identity(make_method(settings.reference_method, **common)),
    }


def _audit_source(
    config: StudyConfig, data: StudyData, cache: StudyCache, name: str, progress: ProgressCallback | None,
    prepare: bool = True,
) -> Path:
    """Audit synthetic source ``name`` against the real training pool and test set, once:
    the audit is cached under the hash of its settings and data (an interrupted audit resumes).
    Without ``prepare`` (a worker) the audit is only found.

    Raises:
        DataError: Without ``prepare``, the audit is not in the cache.
    """
    from synthaug.audit import audit_dataset

    settings = audit_config(config)
    synthetic = data.synthetic[name]
    description = {
        "audit": settings.to_dict(),
        # The resolved parameters of the methods the audit trains (their defaults included), not
        # the package version: a release that changes no default keeps the audit.
        "methods": _audit_method_identities(settings),
        "data": synthetic.fingerprint(),
        "reference": data.pool.fingerprint(),
        "test": data.test.fingerprint(),
    }
    key = content_key(description)
    directory = cache.audit_dir(key)
    if not cache.has_audit(key) and not prepare:
        raise DataError(f"audit of synthetic source {name!r}: not in the cache at {directory}; the study's "
                        "driver audits every source before its workers start (rerun the study)")
    if not cache.has_audit(key):
        stage = f"audit {name}"
        report(progress, stage, 0, item=f"{len(synthetic)} images")
        try:
            audit_dataset(synthetic, directory, reference=data.pool, test=data.test, config=settings,
                          device=config.device, progress=progress)
        except SynthaugError as error:
            raise type(error)(f"audit of synthetic source {name!r}: {error}") from error
        report(progress, stage, 1, 1, item=f"{len(synthetic)} images", finished=True)
    return directory


def _treated_pool(config: StudyConfig, data: StudyData, regime: Regime) -> ImageDataset:
    """The synthetic images a filtered and/or audit-weighted regime draws from."""
    from synthaug.audit import audit_weights, drop_reasons
    from synthaug.audit.filter import read_audit

    source = config.regime_source(regime)
    assert source is not None  # filter and weights need a synthetic source (checked by the config)
    synthetic, audit_dir = data.synthetic[source.name], data.audits[source.name]
    pool = synthetic
    if regime.weights == "audit":
        pool = pool.with_sample_weights(audit_weights(synthetic, audit_dir))
    if regime.filter is not None:
        clip = regime.filter.clip
        also = None
        if clip is not None:  # the CLIP rules (synthaug.audit.clip), merged with the audit's
            from synthaug.audit.clip import ClipScorer
            from synthaug.audit.filter import clip_drop_reasons

            also = clip_drop_reasons(ClipScorer(clip.model, device=config.device).score(synthetic), synthetic.classes,
                                     min_clip_score=clip.min_score, class_agreement=clip.class_agreement)
        dropped = drop_reasons(read_audit(audit_dir, synthetic), **regime.filter.model_dump(exclude={"clip"}),
                               also=also)
        kept = np.array([index for index in range(len(synthetic)) if index not in dropped], dtype=np.int64)
        pool = pool.subset(kept, name=f"{synthetic.name} ({regime.filter.describe()})")
    return pool


def synthetic_pool(config: StudyConfig, data: StudyData, regime: Regime) -> ImageDataset:
    """The synthetic images ``regime`` draws from: its source, filtered or weighted as it says."""
    if regime.name in data.regime_pools:
        return data.regime_pools[regime.name]
    source = config.regime_source(regime)
    assert source is not None  # every synthetic or mixed regime has one (checked by the config)
    return data.synthetic[source.name]


def _check_sizes(config: StudyConfig, data: StudyData) -> None:
    pool_min = min(data.pool.class_counts().values())
    for index, regime in enumerate(config.regimes):
        where = f"regimes[{index}]"
        if regime.data in ("real", "mixed") and max(regime.sizes) > pool_min:
            raise ConfigError(
                f"{where}.sizes: asks for {max(regime.sizes)} real images per class but the "
                f"training pool has {pool_min} for its smallest class (after the validation split)"
            )
        source = config.regime_source(regime)
        if source is None or regime.targeted:  # a targeted regime generates what its rounds ask for
            continue
        synthetic_min = min(synthetic_pool(config, data, regime).class_counts().values())
        wanted = max(regime.sizes) if regime.data == "synthetic" else regime.synthetic_per_class
        if wanted is not None and wanted > synthetic_min:
            key = "sizes" if regime.data == "synthetic" else "synthetic_per_class"
            after = f" after {regime.filter.describe()} (lower the sizes or drop fewer)" if regime.filter else ""
            raise ConfigError(
                f"{where}.{key}: asks for {wanted} synthetic images per class but source "
                f"{source.name!r} has {synthetic_min} for its smallest class{after}"
            )


def training_set(config: StudyConfig, data: StudyData, unit: Unit) -> ImageDataset:
    """The unit's training set: ``size`` images per class drawn with the unit's seed."""
    from synthaug.data import concat_datasets, subsample_per_class

    regime = unit.regime
    if regime.data == "real":
        return subsample_per_class(data.pool, unit.size, seed=unit.seed)
    synthetic = synthetic_pool(config, data, regime)
    source = config.regime_source(regime)
    if source is not None and source.generate is not None and source.generate.per_real:
        # Made from this unit's own real images (study/guided.py): the same draw as `real` below.
        real_size = unit.size if regime.data == "mixed" else source.generate.real_per_class
        synthetic = data.per_real[(source.name, real_size, unit.seed)]
    if regime.data == "synthetic":
        return subsample_per_class(synthetic, unit.size, seed=unit.seed)
    real = subsample_per_class(data.pool, unit.size, seed=unit.seed)
    added = subsample_per_class(synthetic, regime.synthetic_per_class, seed=unit.seed)
    mix = regime.mix
    share = mix.synthetic_weight if mix.synthetic_weight is not None else mix.synthetic_probability
    if share is None:
        return concat_datasets([real, added])
    # Per-set factors that give the synthetic images a total share of the loss
    # (`synthetic_weight`) or of the draws (`synthetic_probability`: the unit's method samples
    # by these weights); within each set, images keep their relative (e.g. audit) weights.
    return concat_datasets(
        [real, added], weights=[(1.0 - share) / real.sample_weights.sum(), share / added.sample_weights.sum()]
    )
