"""What a study would do, before it does anything: ``synthaug study CONFIG --dry-run``.

:func:`plan_study` builds a :class:`StudyPlan` without generating, training or paying: the
units of each regime (sizes x backbones x methods x seeds, and how many the run folder's log
already holds), the images each synthetic source asks for and how many are already on disk,
the estimated API cost of each source against its ``max_cost``, and a rough time. Each
generated source is planned by the same entry point that generates it
(:func:`synthaug.study.generation.generate_from_spec` with ``dry_run``), so the plan prices
exactly the requests the study would send. Only the CLI prints it.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthaug.study.cache import StudyCache
from synthaug.study.codec import Record
from synthaug.study.config import StudyConfig, SyntheticSource
from synthaug.study.results import read_results
from synthaug.study.run_folder import RunFolder
from synthaug.study.units import plan_units

__all__ = ["RegimePlan", "SourcePlan", "StudyPlan", "is_paid_backend", "plan_study"]


@dataclass(frozen=True)
class RegimePlan(Record):
    """The units of one regime.

    Attributes:
        regime: The regime's name.
        sizes: Its sizes (images per class).
        units: Units of its grid (sizes x backbones x methods x seeds).
        finished: Of those, units already in the run folder's ``results.jsonl``.
    """

    regime: str
    sizes: list[int]
    units: int
    finished: int


@dataclass(frozen=True)
class SourcePlan(Record):
    """What one synthetic source will request.

    Attributes:
        source: The source's name.
        kind: ``folder`` (an existing folder: nothing to make), ``generate``, ``retrieve``
            (real images from a pool, :mod:`synthaug.retrieve`: free), ``per-real``
            (one set per real size and seed of the regimes that use it) or ``targeted``
            (rounds decide the images as the study runs: not known ahead).
        backend: Generator backend key (``None`` for a folder).
        requested: Images the source asks for in all (every set of a per-real source).
        on_disk: Of those, images already generated.
        to_generate: Images still to request.
        estimated_cost_usd: Estimated API cost of ``to_generate`` (0 for local backends).
        max_cost: The spec's cap in US dollars (per folder), if any.
        estimated_seconds: The backend's rough wall time, ``None`` when it gives none.
        text_model_calls: Calls to the text model of a ``prompt.expand`` block, at most
            (its cost is in ``estimated_cost_usd``).
    """

    source: str
    kind: str
    backend: str | None
    requested: int
    on_disk: int
    to_generate: int
    estimated_cost_usd: float
    max_cost: float | None
    estimated_seconds: float | None
    text_model_calls: int = 0


@dataclass(frozen=True)
class StudyPlan(Record):
    """The whole plan (see the module docstring).

    Attributes:
        run_dir: The run folder.
        classes: Classes the models learn.
        regimes: One plan per regime.
        sources: One plan per synthetic source.
        units_total: Units of the grid.
        units_finished: Units already logged.
        estimated_cost_usd: Sum of the sources' estimated costs.
        paid: Whether any source uses a paid backend.
        seconds_per_unit: Median wall time of the logged units (``None`` before the first).
        estimated_seconds: Generation seconds the backends estimate, plus the remaining units
            at ``seconds_per_unit``; ``None`` when neither is known.
    """

    run_dir: str
    classes: list[str]
    regimes: list[RegimePlan]
    sources: list[SourcePlan]
    units_total: int
    units_finished: int
    estimated_cost_usd: float
    paid: bool
    seconds_per_unit: float | None
    estimated_seconds: float | None


def is_paid_backend(key: str) -> bool:
    """Whether a backend prices its requests (it overrides ``estimate_cost``); read from its
    class, so nothing is loaded."""
    from synthaug.generate.backends import GeneratorBackend, backend_class

    return backend_class(key).estimate_cost is not GeneratorBackend.estimate_cost


def _study_classes(config: StudyConfig) -> tuple[list[str], Any]:
    """The classes the models learn and the real training pool after the validation split,
    as :func:`synthaug.study.data.prepare_study_data` makes them."""
    from synthaug.data import load_dataset, train_val_split
    from synthaug.errors import ConfigError, DataError

    try:
        pool = load_dataset(config.real.train)
    except DataError as error:
        raise ConfigError(f"real.train: {error}") from error
    if config.real.val is None:
        pool, _ = train_val_split(pool, config.real.val_fraction, seed=config.real.val_seed)
    holdout = set(config.holdout_classes())
    classes = [name for name in pool.classes if name not in holdout]
    if holdout:  # the pool the regimes draw from holds the learnt classes only (as in study/data.py)
        pool = _learnt(pool, classes)
    return classes, pool


def _plan_source(
    config: StudyConfig, source: SyntheticSource, index: int, classes: list[str], pool: Any, cache: StudyCache
) -> SourcePlan:
    from synthaug.study.data import source_folder
    from synthaug.study.generation import generate_from_spec

    if source.retrieve is not None:  # real images: nothing paid, nothing generated
        return _plan_retrieval(config, source, classes, pool, cache)
    spec = source.generate
    if spec is None:
        return SourcePlan(source.name, "folder", None, 0, 0, 0, 0.0, None, None)
    where = f"synthetic[{index}]"
    targeted = any(regime.targeted and config.regime_source(regime) == source for regime in config.regimes)
    if targeted:
        return SourcePlan(source.name, "targeted", spec.backend, 0, 0, 0, 0.0, spec.max_cost, None)
    plans: list[dict[str, Any]] = []
    if spec.per_real:
        from synthaug.data import subsample_per_class
        from synthaug.study.guided import guidance_from_spec, per_real_sets

        folders = per_real_sets(config, source, index, pool, pool, pool, classes, cache, generate=False)
        for (size, seed), folder in folders.items():
            if spec.tune_on == "real":  # the tuned generator does not exist yet: count the folder only
                plans.append(_count_only(folder, spec.per_class * len(classes)))
                continue
            guidance = guidance_from_spec(spec, subsample_per_class(pool, size, seed=seed), classes)
            plans.append(generate_from_spec(folder, spec, classes, spec.per_class, where, source.name,
                                            init_images=guidance, dry_run=True))  # fmt: skip
        kind = "per-real"
    else:
        folder, guidance = source_folder(spec, classes, cache, pool)
        plans.append(generate_from_spec(folder, spec, classes, spec.per_class, where, source.name,
                                        init_images=guidance, dry_run=True))  # fmt: skip
        kind = "generate"
    seconds = [plan["estimated_seconds"] for plan in plans if plan.get("estimated_seconds") is not None]
    return SourcePlan(
        source=source.name,
        kind=kind,
        backend=spec.backend,
        requested=len(plans) * spec.per_class * len(classes),
        on_disk=sum(plan["existing"] for plan in plans),
        to_generate=sum(plan["to_generate"] for plan in plans),
        estimated_cost_usd=round(sum(plan["estimated_cost_usd"] for plan in plans), 6),
        max_cost=spec.max_cost,
        estimated_seconds=sum(seconds) if seconds else None,
        text_model_calls=sum(plan.get("text_model_calls", 0) for plan in plans),
    )


def _plan_retrieval(
    config: StudyConfig, source: SyntheticSource, classes: list[str], pool: Any, cache: StudyCache
) -> SourcePlan:
    """A retrieved source: done when its folder (keyed by the test and validation sets it is
    deduplicated against) holds ``retrieval.json``."""
    from synthaug.data import load_dataset, train_val_split
    from synthaug.retrieve import SETTINGS_NAME
    from synthaug.study.data import retrieval_folder

    test = load_dataset(config.real.test).with_classes(list(load_dataset(config.real.train).classes))
    if config.real.val is not None:
        val = load_dataset(config.real.val)
    else:
        _, val = train_val_split(load_dataset(config.real.train), config.real.val_fraction, seed=config.real.val_seed)
    holdout = set(config.holdout_classes())
    if holdout:  # as study/data.py aligns them
        test, val = (_learnt(dataset, classes) for dataset in (test, val))
    requested = source.retrieve.per_class * len(classes)
    done = (retrieval_folder(source, classes, test, val, cache) / SETTINGS_NAME).is_file()
    return SourcePlan(source.name, "retrieve", None, requested, requested if done else 0, 0 if done else requested,
                      0.0, None, None)  # fmt: skip


def _learnt(dataset: Any, classes: list[str]) -> Any:
    """``dataset`` with the images of ``classes`` only, re-indexed to their order."""
    keep = [index for index, target in enumerate(dataset.targets) if dataset.classes[target] in classes]
    return dataset.subset(np.asarray(keep, dtype=np.int64)).with_classes(classes)


def _count_only(folder: Path, requested: int) -> dict[str, Any]:
    from synthaug.generate.manifest import scan_manifest

    existing = len(scan_manifest(folder).rows) if folder.exists() else 0
    return {"existing": existing, "to_generate": max(requested - existing, 0), "estimated_cost_usd": 0.0,
            "estimated_seconds": None}  # fmt: skip


def plan_study(config: StudyConfig, out_dir: str | os.PathLike[str]) -> StudyPlan:
    """The plan of ``config`` run into ``out_dir``; nothing is generated, trained or written.

    Args:
        config: The validated study config.
        out_dir: The run folder (its log and cache say what is already done).

    Raises:
        ConfigError: A dataset is missing or a source's spec is invalid (the same checks a run
            makes before generating).
    """
    folder = RunFolder(Path(out_dir).absolute())
    cache = StudyCache(folder.cache(config).absolute())
    classes, pool = _study_classes(config)
    units = plan_units(config)
    finished = {result.unit_id: result for result in read_results(folder.results)} if folder.results.is_file() else {}
    regimes = [
        RegimePlan(
            regime=regime.name,
            sizes=list(regime.sizes),
            units=sum(unit.regime.name == regime.name for unit in units),
            finished=sum(unit.regime.name == regime.name and unit.unit_id in finished for unit in units),
        )
        for regime in config.regimes
    ]
    sources = [
        _plan_source(config, source, index, classes, pool, cache) for index, source in enumerate(config.synthetic)
    ]
    done = sum(plan.finished for plan in regimes)
    per_unit = statistics.median(result.unit_seconds for result in finished.values()) if finished else None
    parts = [plan.estimated_seconds for plan in sources if plan.estimated_seconds is not None]
    if per_unit is not None:
        parts.append(per_unit * (len(units) - done))
    return StudyPlan(
        run_dir=str(folder.root),
        classes=classes,
        regimes=regimes,
        sources=sources,
        units_total=len(units),
        units_finished=done,
        estimated_cost_usd=round(sum(plan.estimated_cost_usd for plan in sources), 6),
        paid=any(source.generate is not None and is_paid_backend(source.generate.backend)
                 for source in config.synthetic),  # fmt: skip
        seconds_per_unit=per_unit,
        estimated_seconds=sum(parts) if parts else None,
    )
