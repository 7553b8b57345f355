"""Uncertainty-targeted generation: spend a synthetic-image budget where the model is unsure.

A targeted regime (``targeted: {budget: ..., method: ...}``, see
:class:`~synthaug.study.config.Targeting`) builds its training set in rounds instead of
drawing a fixed number of synthetic images per class:

1. start from ``size`` images per class (real for ``mixed``, synthetic for ``synthetic``);
2. each round trains the regime's method on what it has, predicts the real validation set and
   scores every class: ``epistemic`` by the mean mutual information of the class's validation
   images (Depeweg et al. 2018), ``error`` by its validation error rate, ``uniform`` by nothing
   (the control that spends the same budget evenly);
3. the round's share of the budget (``budget / rounds``) goes to the classes: a ``floor``
   share evenly, the rest in proportion to the scores (:func:`allocate`); the images come from
   the source's backend through the generation engine (:func:`synthaug.generate.generate_dataset`),
   so they are cached and resumable, and slot ``i`` of a class is the same image for every
   rule and seed (each slot's seed derives from the source's run seed, the label and ``i``).
   Targeted and uniform regimes therefore differ only in how many of each class's images
   they use, not in which ones.

After the last round the unit trains on the whole set and is evaluated like any other unit;
every round's model is cached like a unit's model. Each unit's rounds (allocation, per-class
uncertainty and error, validation and test accuracy) are saved as a :class:`TargetedRun`.

References:
    Askari-Hemmat, Pezeshki, et al., "Improving the Scaling Laws of Synthetic Data with
    Deliberate Practice", arXiv:2502.15588, 2025 (generating where the learner is uncertain).
    Depeweg, Hernández-Lobato, Doshi-Velez & Udluft, "Decomposition of Uncertainty in Bayesian
    Deep Learning for Efficient and Risk-sensitive Learning", ICML 2018 (mutual information).
    Settles, "Active Learning Literature Survey", University of Wisconsin-Madison TR 1648, 2009.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import synthaug
from synthaug.errors import ConfigError, DataError, SynthaugError
from synthaug.fileio import atomic_write_text, from_json_value, to_json_value
from synthaug.study.cache import StudyCache, content_key
from synthaug.study.config import GenerationSpec, StudyConfig, Targeting
from synthaug.study.records import TargetedComparison, TargetedCurve
from synthaug.study.stats import paired_difference, t_interval
from synthaug.study.units import Unit, make_unit_method, model_description

if TYPE_CHECKING:  # the data package pulls in torch; it is imported when a unit runs
    from synthaug.data import ImageDataset
    from synthaug.study.data import StudyData

__all__ = ["DEFAULT_FLOOR", "DEFAULT_ROUNDS", "TargetedComparison", "TargetedCurve", "TargetedRound", "TargetedRun",
           "allocate", "class_scores", "read_targeted_run", "round_shares", "run_rounds", "targeted_analysis"]

# The defaults are the config's (synthaug.study.config.Targeting), named here for callers.
DEFAULT_ROUNDS: int = Targeting.model_fields["rounds"].default
DEFAULT_FLOOR: float = Targeting.model_fields["floor"].default


@dataclass(frozen=True)
class TargetedRound:
    """One round of a targeted unit: what its model trained on, what it scored, what it added.

    Attributes:
        round: 0 for the model trained on the starting set.
        synthetic_images: Synthetic images the targeting had added when this model trained.
        synthetic_per_class: Synthetic images per class this model trained on.
        uncertainty: Mean mutual information (nats) of each class's validation images.
        val_error: Validation error rate of each class.
        val_accuracy: Validation accuracy.
        test_accuracy: Test accuracy of this round's model.
        allocation: Images added per class after this round (what the scores bought).
    """

    round: int
    synthetic_images: int
    synthetic_per_class: dict[str, int]
    uncertainty: dict[str, float]
    val_error: dict[str, float]
    val_accuracy: float
    test_accuracy: float
    allocation: dict[str, int]


@dataclass(frozen=True)
class TargetedRun:
    """The rounds of one targeted unit (saved as JSON in the cache; results rows point at it).

    Attributes:
        unit_id: The unit.
        regime: Its regime's name.
        allocate: The rule (``epistemic``, ``error``, ``uniform``).
        budget: Synthetic images spent over the rounds.
        floor: Share of each round spread evenly.
        size: Starting images per class.
        seed: The unit's seed.
        rounds: Every round before the final training, in order.
        final_per_class: Synthetic images per class of the final training set.
        synthaug_version: Version that ran it.
    """

    unit_id: str
    regime: str
    allocate: str
    budget: int
    floor: float
    size: int
    seed: int
    rounds: list[TargetedRound]
    final_per_class: dict[str, int]
    synthaug_version: str = synthaug.__version__

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return to_json_value(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetedRun:
        """The record from :meth:`to_dict`'s output."""
        data = from_json_value(dict(data))
        return cls(**{**data, "rounds": [TargetedRound(**item) for item in data["rounds"]]})


def read_targeted_run(path: str | Path) -> TargetedRun:
    """The :class:`TargetedRun` saved at ``path``."""
    return TargetedRun.from_dict(json.loads(Path(path).read_text()))


def round_shares(budget: int, rounds: int) -> list[int]:
    """Images spent in each round: ``budget // rounds``, the remainder one each to the first rounds."""
    return [budget // rounds + (1 if index < budget % rounds else 0) for index in range(rounds)]


def allocate(scores: np.ndarray, images: int, floor: float) -> np.ndarray:
    """Split ``images`` over the classes: ``floor`` of them evenly, the rest in proportion to ``scores``.

    Rounded by largest remainder (ties to the earlier class), so the counts sum to ``images``
    exactly. All-zero scores (a model certain of everything) split evenly.

    Args:
        scores: float ``(C,)`` non-negative class scores (uncertainty, error rate).
        images: Images to split.
        floor: Share in [0, 1] split evenly whatever the scores.

    Returns:
        int64 ``(C,)`` images per class.
    """
    scores = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64)), 0.0, None)
    classes = len(scores)
    weights = np.full(classes, 1.0 / classes) if scores.sum() <= 0 else scores / scores.sum()
    target = images * (floor / classes + (1.0 - floor) * weights)
    counts = np.floor(target + 1e-9).astype(np.int64)
    order = np.argsort(-(target - counts), kind="stable")
    counts[order[: images - int(counts.sum())]] += 1
    return counts


def class_scores(samples: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean mutual information and error rate of each class's images.

    Args:
        samples: Predictive samples ``(S, N, C)``.
        labels: True labels ``(N,)``.
        num_classes: C.

    Returns:
        ``(uncertainty (C,), error (C,))``, float64, NaN for a class without images.
    """
    from synthaug.metrics import mutual_information

    information = mutual_information(samples)
    wrong = samples.mean(axis=0).argmax(axis=1) != labels
    uncertainty, error = np.full(num_classes, np.nan), np.full(num_classes, np.nan)
    for label in range(num_classes):
        members = labels == label
        if members.any():
            uncertainty[label], error[label] = information[members].mean(), wrong[members].mean()
    return uncertainty, error


def _generation_dir(cache: StudyCache, spec: GenerationSpec, classes: list[str]) -> Path:
    """One folder per generation spec (whatever its per_class) shared by every targeted unit."""
    return cache.generated_dir(content_key({"targeted": spec.model_dump(mode="json", exclude={"dir", "per_class"}),
                                            "classes": classes}))


def _generated(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit,
               per_class: dict[str, int]) -> ImageDataset:
    """Slots ``0 .. per_class[label] - 1`` of every class, generated where missing."""
    from synthaug.data import load_dataset
    from synthaug.study.generation import generate_from_spec

    source = config.regime_source(unit.regime)
    spec = source.generate
    directory = _generation_dir(cache, spec, data.classes)
    have: dict[str, int] = {}
    if (directory / "metadata.jsonl").is_file():
        existing = load_dataset(str(directory))
        for record, label in zip(existing.records, existing.targets):
            name = existing.classes[label]
            have[name] = max(have.get(name, 0), int(record["index"]) + 1)
    where = f"synthetic[{config.synthetic.index(source)}]"
    for label, count in per_class.items():
        if count > have.get(label, 0):
            try:
                generate_from_spec(directory, spec, [label], count, where, source.name, extend=True)
            except SynthaugError as error:
                raise type(error)(f"regime {unit.regime.name!r}: {error}") from error
    dataset = load_dataset(str(directory)).with_classes(data.classes)
    keep = [index for index, (record, label) in enumerate(zip(dataset.records, dataset.targets))
            if int(record["index"]) < per_class[data.classes[label]]]
    chosen = dataset.subset(np.array(keep, dtype=np.int64), name=f"{source.name} (targeted)")
    short = {name: count for name, count in per_class.items() if chosen.class_counts().get(name, 0) < count}
    if short:
        raise DataError(f"regime {unit.regime.name!r}: the generator gave fewer images than asked for {short}; "
                        "rerun the study to retry the missing ones")
    return chosen


def _training_set(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit,
                  per_class: dict[str, int]) -> ImageDataset:
    from synthaug.data import concat_datasets, subsample_per_class

    real = None if unit.regime.data == "synthetic" else subsample_per_class(data.pool, unit.size, seed=unit.seed)
    if not any(per_class.values()):  # a mixed regime's first round: the real images alone
        return real
    synthetic = _generated(config, data, cache, unit, per_class)
    return synthetic if real is None else concat_datasets([real, synthetic])


def _fit_round(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit, train: ImageDataset) -> Any:
    """The unit's method trained on ``train``, or found in the cache under the key a unit's
    model would have (:func:`synthaug.study.units.model_description`)."""
    from synthaug.methods import load_method

    description = model_description(config, unit, train, data.val)
    key = content_key(description)
    if cache.has_model(key):
        return load_method(cache.model_dir(key), device=config.device)
    method = make_unit_method(config, unit)
    method.fit(train, data.val)
    cache.save_model(key, description, method.save)
    return method


def run_rounds(config: StudyConfig, data: StudyData, cache: StudyCache, unit: Unit) -> tuple[ImageDataset, Path]:
    """Run a targeted unit's rounds; return its final training set and the saved :class:`TargetedRun`.

    Raises:
        ConfigError: ``allocate: epistemic`` with a method that has one predictive sample.
        DataError: the generator could not give the images asked for.
        TrainingError: a round's training failed.
    """
    regime = unit.regime
    targeting = regime.targeted
    rounds, rule, floor = targeting.rounds, targeting.allocate, targeting.floor
    classes = data.classes
    start = unit.size if regime.data == "synthetic" else 0
    per_class = dict.fromkeys(classes, start)
    history = []
    for index, share in enumerate(round_shares(targeting.budget, rounds)):
        model = _fit_round(config, data, cache, unit, _training_set(config, data, cache, unit, per_class))
        samples = model.predict_proba(data.val)
        uncertainty, error = class_scores(samples, data.val.targets, len(classes))
        if rule == "epistemic" and index == 0 and not np.nanmax(uncertainty) > 0:
            raise ConfigError(f"regime {regime.name!r}: method {unit.method.name!r} gives no epistemic uncertainty "
                              "(one predictive sample); use an ensemble, mc-dropout or bnn, or allocate by error")
        scores = {"epistemic": uncertainty, "error": error, "uniform": np.ones(len(classes))}[rule]
        added = allocate(scores, share, floor)
        test_samples = model.predict_proba(data.test)
        history.append(TargetedRound(
            round=index,
            synthetic_images=sum(per_class.values()) - start * len(classes),
            synthetic_per_class=dict(per_class),
            uncertainty=dict(zip(classes, uncertainty.tolist())),
            val_error=dict(zip(classes, error.tolist())),
            val_accuracy=float(np.mean(samples.mean(axis=0).argmax(axis=1) == data.val.targets)),
            test_accuracy=float(np.mean(test_samples.mean(axis=0).argmax(axis=1) == data.test.targets)),
            allocation=dict(zip(classes, added.tolist())),
        ))
        per_class = {name: per_class[name] + int(count) for name, count in zip(classes, added)}
    run = TargetedRun(unit_id=unit.unit_id, regime=regime.name, allocate=rule, budget=targeting.budget, floor=floor,
                      size=unit.size, seed=unit.seed, rounds=history, final_per_class=per_class)
    description = {"targeted_run": run.to_dict(), "val": data.val.fingerprint(), "test": data.test.fingerprint()}
    path = cache.targeted_run_path(content_key(description))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(run.to_dict(), indent=2) + "\n")
    return _training_set(config, data, cache, unit, per_class), path


# -- analysis: curves over the rounds, and targeted against uniform -------------------------


def unit_curve(run: TargetedRun, final_accuracy: float) -> tuple[list[int], list[float]]:
    """A unit's ``(images spent, test accuracy)`` points: one per round, then the final model."""
    images = [item.synthetic_images for item in run.rounds] + [run.budget]
    return images, [item.test_accuracy for item in run.rounds] + [final_accuracy]


def _first_crossing(images: list[int], values: list[float], target: float) -> float | None:
    if values[0] >= target:
        return float(images[0])
    for (x0, y0), (x1, y1) in zip(zip(images, values), zip(images[1:], values[1:])):
        if y1 >= target:
            return float(x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    return None


def targeted_analysis(config: StudyConfig, results: list[Any], run_dir: str | Path) -> tuple[
        list[TargetedCurve], list[TargetedComparison]]:
    """Curves of every targeted regime and size, and each non-uniform one against uniform.

    Args:
        config: The study config.
        results: The study's :class:`~synthaug.study.records.UnitResult` rows.
        run_dir: The run folder (result paths are relative to it).
    """
    run_dir = Path(run_dir)
    runs: dict[tuple[str, int], dict[int, tuple[TargetedRun, float]]] = {}
    for result in results:
        if getattr(result, "targeted", None):
            path = Path(result.targeted)
            run = read_targeted_run(path if path.is_absolute() else run_dir / path)
            runs.setdefault((run.regime, run.size), {})[run.seed] = (run, result.metrics["accuracy"])
    curves = []
    for (name, size), by_seed in runs.items():
        points = [unit_curve(run, final) for run, final in by_seed.values()]
        images = points[0][0]
        first = next(iter(by_seed.values()))[0]
        allocation = {label: [float(np.mean([run.rounds[r].allocation[label] for run, _ in by_seed.values()]))
                              for r in range(len(first.rounds))]
                      for label in first.rounds[0].allocation}
        accuracy = [t_interval([values[i] for _, values in points]) for i in range(len(images))]
        curves.append(TargetedCurve(regime=name, allocate=first.allocate, size=size, images=images,
                                    accuracy=accuracy, allocation=allocation))
    comparisons = []
    regimes = {regime.name: regime for regime in config.regimes if regime.targeted}
    for regime in regimes.values():
        if regime.targeted.allocate == "uniform":
            continue
        same = regime.targeted.model_dump(exclude={"allocate", "floor"})
        baseline = next((other for other in regimes.values() if other.targeted.allocate == "uniform"
                         and (other.data, other.source, other.targeted.model_dump(exclude={"allocate", "floor"}))
                         == (regime.data, regime.source, same)), None)
        if baseline is None:
            continue
        for size in regime.sizes:
            treated, control = runs.get((regime.name, size), {}), runs.get((baseline.name, size), {})
            if not treated or not control:
                continue
            difference = paired_difference({seed: final for seed, (_, final) in treated.items()},
                                           {seed: final for seed, (_, final) in control.items()})
            uniform_final = float(np.mean([final for _, final in control.values()]))
            curve = next(curve for curve in curves if (curve.regime, curve.size) == (regime.name, size))
            crossing = _first_crossing(curve.images, [interval.mean for interval in curve.accuracy], uniform_final)
            seeds = sorted(set(treated) & set(control))
            paired = {seed: (unit_curve(*treated[seed]), unit_curve(*control[seed])) for seed in seeds}
            by_images = [t_interval([ours[1][i] - theirs[1][i] for ours, theirs in paired.values()])
                         for i in range(len(curve.images))]
            reaching = 0
            for ours, theirs in paired.values():
                seed_crossing = _first_crossing(ours[0], ours[1], theirs[1][-1])
                reaching += seed_crossing is not None and seed_crossing <= 0.6 * regime.targeted.budget
            comparisons.append(TargetedComparison(regime=regime.name, baseline=baseline.name, size=size,
                                                  budget=regime.targeted.budget, final_difference=difference,
                                                  uniform_final=uniform_final, images_to_match=crossing,
                                                  by_images=by_images, seeds_reaching=reaching))
    return curves, comparisons
