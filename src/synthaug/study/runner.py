"""Run a study: load the data, generate what is missing, train and evaluate the whole grid.

:func:`run_study` is what ``synthaug study CONFIG --out RUN_DIR`` calls. The grid is
regimes x sizes x backbones x methods x seeds; each point is a :class:`~synthaug.study.units.Unit`.
:func:`run_unit` builds a unit's training set (``n`` images per class, drawn with the unit's
seed), trains its method (or finds the trained model in the cache), predicts on the real test
set and every OOD set (or finds those predictions) and evaluates them; the driver loop in
:func:`run_study` appends its :class:`~synthaug.study.records.UnitResult` to
``RUN_DIR/results.jsonl`` (the only writer of that log), then analyses the finished grid.
Rendering the report is the caller's next step (``synthaug.report.build_report``).

Resuming: units already in the log are skipped, and the cache holds every model and prediction
under the hash of what produced it, so a rerun after an interruption redoes nothing that was
finished. A run folder is bound to its config (:meth:`~synthaug.study.run_folder.RunFolder.bind`);
running a different config into it is refused rather than mixing two studies in one log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthaug.errors import ConfigError
from synthaug.execution import Executor, Resources, drop_worker_state, make_executor, worker_state
from synthaug.execution.transfer import FolderStorage
from synthaug.fileio import directory_lock
from synthaug.progress import ProgressCallback, report
from synthaug.study.analysis import analyze_study
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.config import StudyConfig, config_to_dict, resolve_paths
from synthaug.study.config_regimes import augment_label
from synthaug.study.data import StudyData, open_study_data, prepare_study_data, training_set
from synthaug.study.inspection import inspect_sources
from synthaug.study.records import GroupKey, StudyAnalysis, UnitResult
from synthaug.study.results import append_result, read_results
from synthaug.study.run_folder import RunFolder, environment_record
from synthaug.study.shift import shift_metrics
from synthaug.study.summary import write_summary_files
from synthaug.study.transport import (
    UnitOutcome,
    pack_outcome,
    relative_path,
    scratch_cache,
    units_send_files,
    unpack_outcome,
)
from synthaug.study.units import (
    Unit,
    make_unit_base,
    make_unit_method,
    method_identity,
    model_description,
    params_key,
    plan_units,
    unit_method_params,
)

if TYPE_CHECKING:  # the data package pulls in torch; the runner imports it when it runs
    from synthaug.methods import UncertaintyMethod

__all__ = ["StudyResult", "UnitCallback", "evaluate_unit", "run_study", "run_unit", "unit_group"]

#: Called after each unit's result is safely in the log (an exception stops the study; a
#: rerun resumes after that unit).
UnitCallback = Callable[[Unit, UnitResult], None]


@dataclass
class StudyResult:
    """What :func:`run_study` returns.

    Attributes:
        run_dir: The run folder.
        results: One result per unit of the grid, in grid order.
        analysis: The analysis (also in ``RUN_DIR/analysis.json``).
        summary_markdown: The short Markdown summary (also in ``RUN_DIR/summary.md``).
        units_total: Units in the grid.
        units_resumed: Units found finished in the log.
        seconds: Wall time of this call.
    """

    run_dir: Path
    results: list[UnitResult]
    analysis: StudyAnalysis
    summary_markdown: str
    units_total: int
    units_resumed: int
    seconds: float


def _cached_base(
    config: StudyConfig, cache: StudyCache, unit: Unit, description: dict[str, Any]
) -> UncertaintyMethod | None:
    """The trained model a post-hoc unit (``temperature``, ``laplace``) starts from, if cached.

    A unit of the base method (``deterministic``) with the same data, seed, backbone and base
    hyper-parameters has the same model description but for the method's identity, so its
    content key finds it; ``None`` when no such model was trained yet (the unit then trains
    its own base, with the same result).
    """
    from synthaug.methods import load_method

    base = make_unit_base(config, unit)
    if base is None:
        return None
    base_key = content_key({**description, **method_identity(base)})
    if not cache.has_model(base_key):
        return None
    return load_method(cache.model_dir(base_key), device=config.device)


def unit_group(config: StudyConfig, unit: Unit) -> GroupKey:
    """The group a unit belongs to, with what its training data holds."""
    regime = unit.regime
    source = config.regime_source(regime)
    return GroupKey(
        regime=regime.name,
        data=regime.data,
        source=source.name if source is not None else None,
        treatment=regime.treatment,
        size=unit.size,
        real_per_class=unit.size if regime.data != "synthetic" else 0,
        synthetic_per_class=unit.size if regime.data == "synthetic" else (regime.synthetic_per_class or 0),
        backbone=unit.backbone.name,
        method=unit.method.name,
        method_key=unit.method.key,
        augment=augment_label(unit_method_params(config, unit).get("augment")),
    )


def run_unit(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit, run_dir: Path) -> UnitResult:
    """Train (or reuse), predict (or reuse) and evaluate one unit.

    Writes only to the cache (content-addressed, so two workers running the same unit agree);
    recording the result in the log is the caller's job.
    """
    import torch

    from synthaug.methods import load_method
    from synthaug.metrics import load_predictions

    started = time.perf_counter()
    targeted_run = None
    if unit.regime.targeted:  # the rounds generate and choose the synthetic images (study/targeted.py)
        from synthaug.study.targeted import run_rounds

        train, targeted_run = run_rounds(config, data, cache, unit)
    else:
        train = training_set(config, data, unit)
    description = model_description(config, unit, train, data.val)
    model_key = content_key(description)
    trained_now = False
    train_seconds = 0.0
    method = None
    if not cache.has_model(model_key):
        method = make_unit_method(config, unit)
        base = _cached_base(config, cache, unit, description)
        fit_started = time.perf_counter()
        try:
            if base is None:
                method.fit(train, data.val)
            else:  # a post-hoc method on a model a unit of its base method trained: same numbers
                method.fit_from(base, train, data.val)
        except ConfigError as error:  # e.g. augmentation a backbone cannot apply: name the regime
            raise ConfigError(f"regimes: {unit.regime.name!r} ({unit.unit_id}): {error}") from None
        train_seconds = time.perf_counter() - fit_started
        cache.save_model(model_key, description, method.save)
        trained_now = True

    prediction_paths: dict[str, Path] = {}
    predict_seconds = 0.0
    for set_name, dataset in [("test", data.test), *data.ood.items(), *data.shifted.items()]:
        prediction_key = content_key({"model": model_key, "data": dataset.fingerprint(), "classes": data.classes})
        if not cache.has_predictions(prediction_key):
            if method is None:
                method = load_method(cache.model_dir(model_key), device=config.device)
            predict_started = time.perf_counter()
            probs = method.predict_proba(dataset)
            predict_seconds += time.perf_counter() - predict_started
            # An OOD set has no label among the model's classes; its file stores zeros.
            labels = dataset.targets if set_name not in data.ood else np.zeros(len(dataset), dtype=np.int64)
            cache.save_predictions(prediction_key, probs, labels, data.classes)
        prediction_paths[set_name] = cache.predictions_path(prediction_key)

    test_probs, test_labels, _ = load_predictions(prediction_paths["test"])
    ood_probs = {name: load_predictions(prediction_paths[name])[0] for name in data.ood}
    metrics = evaluate_unit(test_probs, test_labels, ood_probs)
    for name in data.shifted:  # the config's `shift` (study/shift.py)
        shifted_probs, shifted_labels, _ = load_predictions(prediction_paths[name])
        metrics.update(shift_metrics(name, shifted_probs, shifted_labels))
    key = unit_group(config, unit)
    if unit.regime.targeted:  # its rounds chose how many of each class; the key says how many on average
        average = len(train) // len(data.classes) - (0 if unit.regime.data == "synthetic" else unit.size)
        key = dataclasses.replace(key, synthetic_per_class=average)
    audit_dir = data.audits[key.source] if key.source is not None and unit.regime.name in data.regime_pools else None
    return UnitResult(
        unit_id=unit.unit_id,
        key=key,
        audit=None if audit_dir is None else relative_path(audit_dir, run_dir),
        seed=unit.seed,
        n_train=len(train),
        model_key=model_key,
        model_dir=relative_path(cache.model_dir(model_key), run_dir),
        predictions={name: relative_path(path, run_dir) for name, path in prediction_paths.items()},
        trained=trained_now,
        train_seconds=train_seconds,
        predict_seconds=predict_seconds,
        unit_seconds=time.perf_counter() - started,
        metrics=metrics,
        targeted=None if targeted_run is None else relative_path(targeted_run, run_dir),
        params_key=params_key(config, unit),
        threads=torch.get_num_threads(),  # what the unit ran with (the config's `threads`)
        under_trained=_under_trained(method if method is not None else load_method(cache.model_dir(model_key))),
    )


def _under_trained(method: UncertaintyMethod) -> bool | None:
    """Whether any network ``method`` trained was still improving at its last epoch
    (``None`` when it kept no training history, e.g. a post-hoc method on a cached model)."""
    histories = method.training_histories()
    return any(history.under_trained for history in histories) if histories else None


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


def _check_finished_params(
    config: StudyConfig, units: list[Unit], finished: dict[str, UnitResult], results_path: Path
) -> None:
    """Refuse to resume when a finished unit's row was computed with other resolved parameters
    than this run would use (a release changed a default): the log would mix two sets of
    defaults.

    Raises:
        ConfigError: A finished unit's parameters differ, or its row does not record them.
    """
    for unit in units:
        result = finished.get(unit.unit_id)
        if result is None or result.params_key == params_key(config, unit):
            continue
        why = (
            "was logged without its resolved parameters (by an older synthaug)"
            if result.params_key is None
            else "was computed with other resolved parameters (defaults) than this synthaug gives it"
        )
        raise ConfigError(
            f"{results_path}: unit {unit.unit_id} {why}; resuming would mix two sets of defaults in one "
            "log: choose a new --out folder, or delete the run folder to start over"
        )


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


@dataclass(frozen=True)
class _UnitTask:
    """What a worker needs to run one unit (the study's data reaches it through
    :meth:`~synthaug.execution.Executor.share`, under :attr:`data_key`)."""

    config: StudyConfig
    unit: Unit
    cache_root: str
    run_dir: str
    # Send the model and predictions back by value (the worker does not see the run folder, or
    # `execution.ray.storage` keeps the models): see study/transport.py.
    send_files: bool = False
    storage: str | None = None

    @property
    def data_key(self) -> tuple[str, str]:
        return "study data", content_key({"config": config_to_dict(self.config), "cache": self.cache_root})


def _run_unit_task(task: _UnitTask) -> UnitResult | UnitOutcome:
    """A worker's part of a study: one unit, with the data its driver shared (loaded here, from
    what the driver generated and audited, only when it was not shared)."""
    cache = StudyCache(task.cache_root)
    data = worker_state(task.data_key, lambda: open_study_data(task.config, cache))
    # The unit's own thread count, whatever its engine gave the worker: the numbers then do not
    # depend on the engine or the worker count.
    with _torch_threads(task.config.threads):
        if not task.send_files:
            return run_unit(task.config, data, cache, task.unit, Path(task.run_dir))
        scratch = scratch_cache(task.cache_root, task.storage)
        return pack_outcome(run_unit(task.config, data, scratch, task.unit, Path(task.run_dir)), scratch)


def study_executor(config: StudyConfig, default_workers: int = 1) -> Executor:
    """The executor ``config.execution`` asks for (``default_workers`` local processes when it
    names none)."""
    from synthaug.execution.local import LocalExecutor

    execution = config.execution
    if execution.ray is not None:
        return make_executor(ray_address=execution.ray.address)
    workers = execution.workers or default_workers
    return LocalExecutor(workers, threads_per_worker=config.threads)


def _dispatch_order(units: list[Unit], config: StudyConfig, data: StudyData) -> list[list[Unit]]:
    """The units in two waves when they run in parallel: first one unit per training set, then
    the rest.

    Units that share a training set (the methods of one regime, size, backbone and seed) share
    what is cached from it: a frozen backbone's features of that set, and the trained model a
    post-hoc method (temperature) starts from. The first wave computes each of those once; the
    second finds them in the cache, so no two workers ever compute the same thing at the same
    time. Within a wave the grid order is kept (the first listed method leads).

    Units of targeted regimes come last, one per wave: they generate into one folder shared by
    the regime, which only one process may write at a time.
    """
    targeted = [unit for unit in units if unit.regime.targeted]
    units = [unit for unit in units if not unit.regime.targeted]
    leaders: dict[tuple[Any, ...], Unit] = {}
    for unit in units:
        leaders.setdefault((unit.regime.name, unit.size, unit.backbone.name, unit.seed), unit)
    leading = {unit.unit_id for unit in leaders.values()}
    first = [unit for unit in units if unit.unit_id in leading]
    second = [unit for unit in units if unit.unit_id not in leading]
    return [wave for wave in (first, second) if wave] + [[unit] for unit in targeted]


def _prepare_shared_features(config: StudyConfig, data: StudyData) -> None:
    """Extract a frozen backbone's features of the sets every unit predicts on (validation,
    test, OOD) on the driver, once, before units run in parallel and would each extract them."""
    from synthaug.models import make_backbone

    for spec in config.backbones:
        backbone = make_backbone(spec.name, **dict(spec.params or {}))
        if getattr(backbone, "freeze", False):
            for dataset in [data.val, data.test, *data.ood.values(), *data.shifted.values()]:
                backbone.prepare(dataset)


def run_study(
    config: StudyConfig,
    out_dir: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    on_unit_done: UnitCallback | None = None,
    executor: Executor | None = None,
) -> StudyResult:
    """Run (or resume) a study and write its results, analysis and summaries.

    Args:
        config: The validated study config.
        out_dir: The run folder ``RUN_DIR``; created if missing. Rerunning into it resumes.
        progress: Told as the data loads (and sources are generated and audited), after each
            unit (stage ``"study"``, item = the unit id) and as the analysis runs.
        on_unit_done: Called after each unit's result is safely stored, with the unit and its
            result (an exception raised here stops the study; a rerun resumes after that unit).
        executor: Where units run (:mod:`synthaug.execution`); ``None``: as
            ``config.execution`` says, by default in this process. Results are the same
            whatever runs them; this process stays the only writer of ``results.jsonl``, and
            generates and audits the synthetic sources before any unit starts. Workers get
            absolute paths; where they do not see the run folder (checked with a probe file),
            or ``execution.ray.storage`` is set, they send their files back by value
            (:mod:`synthaug.study.transport`).

    Returns:
        The :class:`StudyResult`. ``RUN_DIR/report.html`` is drawn from it by
        :func:`synthaug.report.build_report` (``synthaug study`` does both).

    Raises:
        ConfigError: Bad data paths, class mismatches, sizes beyond the data, a run folder
            bound to a different config, or one that another process is writing.
    """
    # Absolute, here: a worker's working directory is not this one (on Ray: where `ray start` ran).
    run_dir = Path(out_dir).absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    # One writer per run folder: a second study would run every unit again and log it twice.
    # The lock is the operating system's, so a killed run leaves none behind.
    with directory_lock(run_dir, ConfigError):
        return _run_study_locked(config, run_dir, progress, on_unit_done, executor)


def _run_study_locked(
    config: StudyConfig,
    run_dir: Path,
    progress: ProgressCallback | None,
    on_unit_done: UnitCallback | None,
    executor: Executor | None,
) -> StudyResult:
    """:func:`run_study`'s work, with the run folder's lock held."""
    started = time.perf_counter()
    folder = RunFolder(run_dir)
    folder.bind(config)
    cache = StudyCache(folder.cache(config).absolute())
    units = plan_units(config)
    results_path = folder.results
    owned = executor is None
    executor = study_executor(config) if executor is None else executor
    send_files = False
    try:
        ray = config.execution.ray
        resources = Resources(ray.num_cpus, ray.num_gpus) if ray is not None else None
        with _torch_threads(config.threads):
            data = prepare_study_data(config, cache, progress=progress, executor=executor, resources=resources)
            inspect_sources(config, data, cache, run_dir, progress)  # "what the generator made" (study/inspection.py)
            finished = {result.unit_id: result for result in read_results(results_path)}
            _check_finished_params(config, units, finished, results_path)
            resumed = sum(unit.unit_id in finished for unit in units)
            report(progress, "study", resumed, len(units), unit="units")
            todo = [unit for unit in units if unit.unit_id not in finished]
            waves = [todo] if executor.in_process else _dispatch_order(todo, config, data)
            if todo and not executor.in_process:
                _prepare_shared_features(config, data)
            storage = None if ray is None or ray.storage is None else FolderStorage.resolved(ray.storage)
            send_files = bool(todo) and units_send_files(executor, [run_dir, cache.root], storage)
            task_config = resolve_paths(config, Path.cwd())  # data folders, absolute for the workers
            tasks = [
                [_UnitTask(task_config, unit, str(cache.root), str(run_dir), send_files, storage) for unit in wave]
                for wave in waves
            ]
            if todo:  # (a finished study resumes with one empty wave and nothing to run)
                # Sent to each worker once (on Ray: to the object store): workers never reload it.
                executor.share(tasks[0][0].data_key, data)
            try:
                for wave in tasks:
                    for task, result in executor.map_unordered(_run_unit_task, wave, resources):
                        if isinstance(result, UnitOutcome):  # the driver writes what came back by value
                            result = unpack_outcome(result, cache, run_dir)
                        append_result(results_path, result)
                        finished[task.unit.unit_id] = result
                        report(progress, "study", len(finished), len(units), item=task.unit.unit_id, unit="units")
                        if on_unit_done is not None:
                            on_unit_done(task.unit, result)
            finally:
                if todo:
                    drop_worker_state(tasks[0][0].data_key)
            report(progress, "study", len(units), len(units), unit="units", finished=True)
    finally:
        if owned:
            executor.close()
    results = [finished[unit.unit_id] for unit in units]
    environment = environment_record(config, time.perf_counter() - started)
    # How this call's units stored their models and predictions (study/transport.py).
    environment["unit_files"] = "sent back through the object store" if send_files else "written in place"
    folder.write_environment(environment)
    report(progress, "analyze", 0, 1)
    analysis = analyze_study(config, data, results, run_dir)
    markdown = write_summary_files(analysis, run_dir)
    report(progress, "analyze", 1, 1, finished=True)
    return StudyResult(
        run_dir=run_dir,
        results=results,
        analysis=analysis,
        summary_markdown=markdown,
        units_total=len(units),
        units_resumed=resumed,
        seconds=time.perf_counter() - started,
    )
