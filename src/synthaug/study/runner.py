"""Run a study: load the data, generate what is missing, train and evaluate the whole grid.

:func:`run_study` is what ``synthaug study CONFIG --out RUN_DIR`` calls. The grid is
regimes x sizes x backbones x methods x seeds; each point is a :class:`Unit`. A unit builds its
training set (``n`` images per class, drawn with the unit's seed), trains its method (or finds
the trained model in the cache), predicts on the real test set and every OOD set (or finds
those predictions), evaluates them and appends one row to ``RUN_DIR/results.jsonl``.

Resuming: rows already in the log are skipped, and the cache holds every model and prediction
under the hash of what produced it, so a rerun after an interruption redoes nothing that was
finished. A run folder is bound to its config (``config.resolved.yaml``); running a different
config into it is refused rather than mixing two studies in one log.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import synthaug
from synthaug.errors import ConfigError, DataError, SynthaugError
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.config import (
    BackboneSpec,
    GenerationSpec,
    MethodSpec,
    Regime,
    StudyConfig,
    SyntheticSource,
    audit_config,
    config_to_dict,
)
from synthaug.study.results import append_row, read_rows, to_json_value

if TYPE_CHECKING:  # the data package pulls in torch; the runner imports it when it runs
    from synthaug.data import ImageDataset

__all__ = ["StudyData", "StudyResult", "Unit", "load_study_data", "plan_units", "run_study"]

RESULTS_FILE = "results.jsonl"
CONFIG_FILE = "config.resolved.yaml"
ENVIRONMENT_FILE = "environment.json"

# Packages whose versions can change the numbers; recorded beside the results.
RECORDED_PACKAGES = (
    "synthaug",
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "scikit-learn",
    "pillow",
    "torchmetrics",
    "laplace-torch",
    "openai",
    "diffusers",
    "transformers",
)


@dataclass(frozen=True)
class Unit:
    """One point of the study grid: a training set, a model and a seed."""

    regime: Regime
    size: int
    backbone: BackboneSpec
    method: MethodSpec
    seed: int

    @property
    def unit_id(self) -> str:
        """Readable id, unique within a study."""
        return f"{self.regime.name}/n={self.size}/{self.backbone.name}/{self.method.name}/seed={self.seed}"


@dataclass
class StudyData:
    """Every dataset a study needs, class-aligned to the real training pool.

    Attributes:
        classes: Class names the models learn (held-out classes removed).
        pool: Real images the regimes draw from (validation split removed).
        val: Real validation set.
        test: Real test set.
        ood: OOD sets by name.
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
    synthetic: dict[str, ImageDataset] = field(default_factory=dict)
    synthetic_dirs: dict[str, str] = field(default_factory=dict)
    audits: dict[str, Path] = field(default_factory=dict)
    regime_pools: dict[str, ImageDataset] = field(default_factory=dict)


@dataclass
class StudyResult:
    """What :func:`run_study` returns.

    Attributes:
        run_dir: The run folder.
        rows: One results row per unit of the grid.
        analysis: The contents of ``analysis.json``.
        report_path: ``RUN_DIR/report.html`` (``None`` when the report was not rendered).
        summary_markdown: The short Markdown summary (also in ``RUN_DIR/summary.md``).
        units_total: Units in the grid.
        units_resumed: Units found finished in the log.
        seconds: Wall time of this call.
    """

    run_dir: Path
    rows: list[dict[str, Any]]
    analysis: dict[str, Any]
    report_path: Path | None
    summary_markdown: str
    units_total: int
    units_resumed: int
    seconds: float


def plan_units(config: StudyConfig) -> list[Unit]:
    """The study grid in run order: for each regime and size, backbones, methods, seeds.

    Seeds are the innermost loop so that a partial run already has every seed of the first
    groups, which is what the statistics need first.
    """
    return [
        Unit(regime, size, backbone, method, seed)
        for regime in config.regimes
        for size in regime.sizes
        for backbone in config.backbones
        for method in config.regime_methods(regime, size)
        for seed in config.seeds
    ]


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


def _tuples(value: Any) -> Any:
    """YAML lists as the tuples PromptSpec expects (also inside per-class mappings)."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _generate_source(
    source: SyntheticSource, spec: GenerationSpec, index: int, classes: list[str], cache: StudyCache, progress: bool
) -> Path:
    """Generate (or resume generating) a synthetic source; returns its folder."""
    from synthaug.generate import generate_dataset
    from synthaug.generate.prompts import PromptSpec

    description = {"generate": spec.model_dump(mode="json", exclude={"dir"}), "classes": classes}
    directory = Path(spec.dir) if spec.dir else cache.generated_dir(content_key(description))
    prompt: Any = spec.prompt
    if isinstance(prompt, dict):
        try:
            prompt = PromptSpec(**{key: _tuples(value) for key, value in prompt.items()})
        except TypeError as error:
            raise ConfigError(f"synthetic[{index}].generate.prompt: {error}") from error
    try:
        generate_dataset(
            directory,
            classes,
            spec.per_class,
            backend=spec.backend,
            model=spec.model,
            prompt=prompt,
            seed=spec.seed,
            params=spec.params,
            backend_options=spec.backend_options,
            max_cost=spec.max_cost,
            progress=progress,
        )
    except SynthaugError as error:
        raise type(error)(f"synthetic[{index}] ({source.name}): {error}") from error
    return directory


def load_study_data(
    config: StudyConfig, cache: StudyCache, progress: bool = False, log: Callable[[str], None] | None = None
) -> StudyData:
    """Load the real, OOD and synthetic datasets (generating synthetic ones as needed), audit
    the synthetic sources that filtered or audit-weighted regimes need (or find the audits in
    the cache), and check that every regime's sizes are available.

    Args:
        config: The study config.
        cache: Where generated images and audits are stored.
        progress: Show the generation progress bars.
        log: Called with a one-line message as a long stage (an audit) starts.

    Raises:
        ConfigError: A dataset is missing or unreadable, class names do not match, a
            regime's ``method_params`` are invalid, or a regime asks for more images per class
            than its data has; the message names the key.
    """
    from synthaug.data import train_val_split

    _check_method_params(config)
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

    for index, source in enumerate(config.synthetic):
        where = f"synthetic[{index}]"
        if source.generate is None:
            directory = Path(str(source.path))
            dataset = _load(str(source.path), f"{where}.path")
        else:
            directory = _generate_source(source, source.generate, index, classes, cache, progress)
            dataset = _load(str(directory), f"{where}.generate")
        data.synthetic[source.name] = aligned(dataset, where)
        data.synthetic_dirs[source.name] = str(directory)
    for name in config.audited_sources():
        data.audits[name] = _audit_source(config, data, cache, name, log)
    for regime in config.regimes:
        if regime.filter is not None or regime.weights is not None:
            data.regime_pools[regime.name] = _treated_pool(config, data, regime)
    _check_sizes(config, data)
    return data


def _check_method_params(config: StudyConfig) -> None:
    """Build each regime's methods with its ``method_params``, so a misspelt or invalid
    hyper-parameter stops the study before anything is trained."""
    for index, regime in enumerate(config.regimes):
        if not regime.method_params:
            continue
        for method in config.regime_methods(regime):
            unit = Unit(regime, regime.sizes[0], config.backbones[0], method, config.seeds[0])
            try:
                _make_method(config, unit).training_config()
            except ConfigError as error:
                raise ConfigError(f"regimes[{index}].method_params: {error}") from error


def _audit_source(
    config: StudyConfig, data: StudyData, cache: StudyCache, name: str, log: Callable[[str], None] | None
) -> Path:
    """Audit synthetic source ``name`` against the real training pool and test set, once:
    the audit is cached under the hash of its settings and data (an interrupted audit resumes)."""
    from synthaug.audit import audit_dataset

    settings = audit_config(config)
    synthetic = data.synthetic[name]
    description = {
        "synthaug_version": synthaug.__version__,
        "audit": settings.to_dict(),
        "data": synthetic.fingerprint(),
        "reference": data.pool.fingerprint(),
        "test": data.test.fingerprint(),
    }
    key = content_key(description)
    directory = cache.audit_dir(key)
    if not cache.has_audit(key):
        if log is not None:
            log(f"auditing {name} ({len(synthetic)} images)")
        try:
            audit_dataset(synthetic, directory, reference=data.pool, test=data.test, config=settings,
                          device=config.device)
        except SynthaugError as error:
            raise type(error)(f"audit of synthetic source {name!r}: {error}") from error
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
        dropped = drop_reasons(read_audit(audit_dir, synthetic), **regime.filter.model_dump())
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
        if source is None:
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
    if regime.data == "synthetic":
        return subsample_per_class(synthetic, unit.size, seed=unit.seed)
    real = subsample_per_class(data.pool, unit.size, seed=unit.seed)
    added = subsample_per_class(synthetic, regime.synthetic_per_class, seed=unit.seed)
    if regime.synthetic_weight is None:
        return concat_datasets([real, added])
    # Per-set factors that give the synthetic images a total share `synthetic_weight` of the
    # loss; within each set, images keep their relative (e.g. audit) weights.
    share = regime.synthetic_weight
    return concat_datasets(
        [real, added], weights=[(1.0 - share) / real.sample_weights.sum(), share / added.sample_weights.sum()]
    )


def _method_params(config: StudyConfig, unit: Unit) -> dict[str, Any]:
    return {**config.method_params, **unit.method.params, **(unit.regime.method_params or {})}


def _make_method(config: StudyConfig, unit: Unit) -> Any:
    from synthaug.methods import make_method

    options: dict[str, Any] = dict(_method_params(config, unit))
    options["backbone"] = unit.backbone.name
    if unit.backbone.params:
        options["backbone_options"] = dict(unit.backbone.params)
    # The study shows one progress bar for the whole grid, not one per training run.
    return make_method(unit.method.key, seed=unit.seed, device=config.device, progress=False, **options)


def _model_description(config: StudyConfig, unit: Unit, train: ImageDataset, val: ImageDataset) -> dict[str, Any]:
    return {
        "synthaug_version": synthaug.__version__,
        "train": train.fingerprint(),
        "val": val.fingerprint(),
        "method": unit.method.key,
        "params": _method_params(config, unit),
        "backbone": unit.backbone.model_dump(mode="json"),
        "seed": unit.seed,
    }


def _relative(path: Path, run_dir: Path) -> str:
    try:
        return str(path.resolve().relative_to(run_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def run_unit(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit, run_dir: Path) -> dict[str, Any]:
    """Train (or reuse), predict (or reuse) and evaluate one unit; returns its results row."""
    from synthaug.methods import load_method
    from synthaug.metrics import load_predictions

    started = time.perf_counter()
    train = training_set(config, data, unit)
    description = _model_description(config, unit, train, data.val)
    model_key = content_key(description)
    trained_now = False
    train_seconds = 0.0
    method = None
    if not cache.has_model(model_key):
        method = _make_method(config, unit)
        fit_started = time.perf_counter()
        method.fit(train, data.val)
        train_seconds = time.perf_counter() - fit_started
        cache.save_model(model_key, description, method.save)
        trained_now = True

    prediction_paths: dict[str, Path] = {}
    predict_seconds = 0.0
    for set_name, dataset in [("test", data.test), *data.ood.items()]:
        prediction_key = content_key({"model": model_key, "data": dataset.fingerprint(), "classes": data.classes})
        if not cache.has_predictions(prediction_key):
            if method is None:
                method = load_method(cache.model_dir(model_key), device=config.device)
            predict_started = time.perf_counter()
            probs = method.predict_proba(dataset)
            predict_seconds += time.perf_counter() - predict_started
            # An OOD set has no label among the model's classes; its file stores zeros.
            labels = dataset.targets if set_name == "test" else np.zeros(len(dataset), dtype=np.int64)
            cache.save_predictions(prediction_key, probs, labels, data.classes)
        prediction_paths[set_name] = cache.predictions_path(prediction_key)

    test_probs, test_labels, _ = load_predictions(prediction_paths["test"])
    ood_probs = {name: load_predictions(prediction_paths[name])[0] for name in data.ood}
    metrics = evaluate_unit(test_probs, test_labels, ood_probs)
    source = config.regime_source(unit.regime)
    audit_dir = data.audits[source.name] if unit.regime.name in data.regime_pools else None
    return {
        "unit_id": unit.unit_id,
        "regime": unit.regime.name,
        "data": unit.regime.data,
        "source": source.name if source is not None else None,
        "treatment": unit.regime.treatment,
        "audit": None if audit_dir is None else _relative(audit_dir, run_dir),
        "size": unit.size,
        "real_per_class": unit.size if unit.regime.data != "synthetic" else 0,
        "synthetic_per_class": (
            unit.size if unit.regime.data == "synthetic" else (unit.regime.synthetic_per_class or 0)
        ),
        "backbone": unit.backbone.name,
        "method": unit.method.name,
        "method_key": unit.method.key,
        "seed": unit.seed,
        "n_train": len(train),
        "model_key": model_key,
        "model_dir": _relative(cache.model_dir(model_key), run_dir),
        "predictions": {name: _relative(path, run_dir) for name, path in prediction_paths.items()},
        "trained": trained_now,
        "train_seconds": train_seconds,
        "predict_seconds": predict_seconds,
        "unit_seconds": time.perf_counter() - started,
        "metrics": metrics,
    }


def evaluate_unit(
    test_probs: np.ndarray, test_labels: np.ndarray, ood_probs: dict[str, np.ndarray]
) -> dict[str, float]:
    """Every metric of :func:`synthaug.metrics.evaluate_predictions` on the real test set,
    plus the OOD detection metrics against each OOD set, keyed ``<ood set>:<metric>``.

    Args:
        test_probs: ``(S, N, C)`` predictions on the test set.
        test_labels: ``(N,)`` test labels.
        ood_probs: ``{name: (S, M, C)}`` predictions on each OOD set.
    """
    from synthaug.metrics import evaluate_predictions

    metrics = evaluate_predictions(test_probs, test_labels)
    for name, probs in ood_probs.items():
        with_ood = evaluate_predictions(test_probs, test_labels, ood_probs=probs)
        metrics.update({f"{name}:{key}": value for key, value in with_ood.items() if key not in metrics})
    return metrics


def _first_difference(old: Any, new: Any, path: str = "") -> str | None:
    """Key path of the first difference between two plain-data trees."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = _first_difference(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
        return None
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            found = _first_difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if old == new else (path or "(top level)")


def bind_run_dir(config: StudyConfig, run_dir: Path) -> None:
    """Save ``config.resolved.yaml`` in a new run folder, or check that an existing run
    folder holds this same study.

    Raises:
        ConfigError: The folder holds a study with a different config.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    resolved = config_to_dict(config)
    path = run_dir / CONFIG_FILE
    if path.exists():
        previous = yaml.safe_load(path.read_text(encoding="utf-8"))
        difference = _first_difference(previous, resolved)
        if difference is not None:
            raise ConfigError(
                f"{run_dir}: holds a study with a different config (first difference at "
                f"`{difference}`); choose a new --out folder, or delete {path} to start over"
            )
        return
    staging = path.with_name(f".{CONFIG_FILE}.partial")
    staging.write_text(yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(staging, path)


def environment_record(config: StudyConfig, seconds: float | None = None) -> dict[str, Any]:
    """Package versions, platform, device and seeds, saved as ``environment.json``."""
    import torch

    from synthaug.runtime import pick_device

    versions = {}
    for name in RECORDED_PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "synthaug_version": synthaug.__version__,
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(pick_device(config.device)),
        "torch_threads": config.threads or torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "seeds": list(config.seeds),
        "seconds": seconds,
    }


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with torch limited to ``threads`` CPU threads (unchanged when None)."""
    import torch

    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _study_progress(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]study[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        yield bar


def run_study(
    config: StudyConfig,
    out_dir: str | os.PathLike[str],
    progress: bool = True,
    on_unit_done: Callable[[Unit, dict[str, Any]], None] | None = None,
    render_report: bool = True,
) -> StudyResult:
    """Run (or resume) a study and write its results, analysis and report.

    Args:
        config: The validated study config.
        out_dir: The run folder ``RUN_DIR``; created if missing. Rerunning into it resumes.
        progress: Show one progress bar for the whole grid (and the generation/training bars
            of the parts it calls).
        on_unit_done: Called after each unit's row is safely stored, with the unit and row
            (an exception raised here stops the study; a rerun resumes after that unit).
        render_report: Write ``report.html`` (the analysis is always written).

    Returns:
        The :class:`StudyResult`.

    Raises:
        ConfigError: Bad data paths, class mismatches, sizes beyond the data, or a run folder
            bound to a different config.
    """
    from synthaug.study.analysis import analyze_study, write_summary_files

    started = time.perf_counter()
    run_dir = Path(out_dir)
    bind_run_dir(config, run_dir)
    cache = StudyCache(config.cache_dir or run_dir / "cache")
    units = plan_units(config)
    results_path = run_dir / RESULTS_FILE
    with _torch_threads(config.threads), _study_progress(progress) as bar:
        task = bar.add_task("loading data", total=len(units)) if bar is not None else None
        log = (lambda message: bar.update(task, description=message)) if bar is not None else None
        data = load_study_data(config, cache, progress=progress, log=log)
        finished = {row["unit_id"]: row for row in read_rows(results_path)}
        resumed = sum(unit.unit_id in finished for unit in units)
        if bar is not None:
            bar.update(task, completed=resumed, description="")
        for unit in units:
            if unit.unit_id in finished:
                continue
            if bar is not None:
                bar.update(task, description=unit.unit_id)
            row = run_unit(config, data, cache, unit, run_dir)
            append_row(results_path, row)
            finished[unit.unit_id] = row
            if bar is not None:
                bar.advance(task)
            if on_unit_done is not None:
                on_unit_done(unit, row)
        if bar is not None:
            bar.update(task, description="done")
    rows = [finished[unit.unit_id] for unit in units]
    seconds = time.perf_counter() - started
    environment = environment_record(config, seconds)
    (run_dir / ENVIRONMENT_FILE).write_text(json.dumps(to_json_value(environment), indent=2))
    analysis = analyze_study(config, data, rows, run_dir)
    markdown = write_summary_files(analysis, run_dir)
    report_path = None
    if render_report:
        from synthaug.report.build import build_report

        report_path = build_report(run_dir)
    return StudyResult(
        run_dir=run_dir,
        rows=rows,
        analysis=analysis,
        report_path=report_path,
        summary_markdown=markdown,
        units_total=len(units),
        units_resumed=resumed,
        seconds=time.perf_counter() - started,
    )
