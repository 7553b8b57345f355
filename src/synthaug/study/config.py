"""The study configuration: what data, which regimes, which models, how many seeds.

A study is declared in one YAML file and validated here with pydantic (``extra="forbid"``, so
a misspelt key is an error rather than a silently ignored setting). Every problem becomes one
:class:`~synthaug.errors.ConfigError` line that names the key path, e.g.
``regimes[1].sizes[0]: input should be greater than 0 (got -5)``.

A minimal config::

    real:
      train: fashion-mnist:train[50000:]
      test: fashion-mnist:test
    synthetic:
      - name: ddpm
        generate: {backend: ddpm, per_class: 200}
    regimes:
      - {name: real, data: real, sizes: [10, 50, 200]}
      - {name: synthetic, data: synthetic, source: ddpm, sizes: [10, 50, 200]}
    methods: [deterministic, bnn]
    ood: [digits]

Noise-robust regimes (see :class:`Regime`) train on the same source filtered by an audit
(``filter: {drop_top: 0.1}``), weighted by it (``weights: audit``), or with a robust loss
(``method_params: {loss: generalized_cross_entropy}``); the study audits each such source
against the real training pool once, with the settings of the top-level ``audit`` section.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthaug.errors import ConfigError

__all__ = [
    "BackboneSpec",
    "ClipFilter",
    "Execution",
    "GenerationSpec",
    "MethodSpec",
    "OODSpec",
    "ShiftSpec",
    "RayExecution",
    "RealData",
    "Regime",
    "RegimeFilter",
    "StudyConfig",
    "SyntheticSource",
    "audit_config",
    "config_to_dict",
    "load_config",
    "parse_config",
]


class _Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RealData(_Strict):
    """The real images: a training pool to draw from, a validation split and the test set."""

    # Training pool that real-only and mixed regimes draw `n` images per class from: an image
    # folder or a built-in name such as `fashion-mnist:train[50000:]`.
    train: str
    # The real test set every model is evaluated on (the study's common yardstick).
    test: str
    # Optional separate validation set (early stopping, temperature scaling). When absent,
    # `val_fraction` of the training pool is held out (stratified, seeded) and never trained on.
    val: str | None = None
    # Fraction of the training pool held out for validation when `val` is not given.
    val_fraction: float = Field(default=0.1, gt=0.0, lt=1.0)
    # Seed of the validation split (kept apart from the model seeds so that every model, at
    # every seed, is validated on the same images).
    val_seed: int = 0


class GenerationSpec(_Strict):
    """Images the study generates itself through :func:`synthaug.generate.generate_dataset`."""

    # Generator backend key: `ddpm` (offline, shipped), `openai`, `diffusers`.
    backend: str = "ddpm"
    # Backend model name or path (`dall-e-3`, a hub id, a generator directory); backend default if absent.
    model: str | None = None
    # Images generated per class; regimes draw their sizes from these.
    per_class: int = Field(gt=0)
    # Prompt: a template where `{label}` is replaced by the class name, or a mapping of
    # `synthaug.generate.prompts.PromptSpec` fields (templates, class_prompts, descriptions,
    # backgrounds, styles, guidance_scale_range) for diverse prompts.
    prompt: str | dict[str, Any] = "a photo of a {label}"
    # Seed of the generation run (each image's seed derives from it).
    seed: int = 0
    # Generation parameters (size, quality, style, steps, guidance_scale, negative_prompt);
    # the backend rejects those it does not support before anything is generated.
    params: dict[str, Any] = Field(default_factory=dict)
    # Backend options (concurrency, device, batch_size, ...).
    backend_options: dict[str, Any] = Field(default_factory=dict)
    # Cap in US dollars on the estimated cost of the folder (paid backends).
    max_cost: float | None = Field(default=None, ge=0.0)
    # Output folder; by default a content-addressed folder under the study cache, so the same
    # spec is generated once and a rerun resumes it.
    dir: str | None = None
    # Guided generation (`synthaug.generate.guided`: SDEdit on ddpm, image-to-image on
    # diffusers, edits on openai): `real` starts every regime from its own real images at its
    # size and seed (the leakage guard refuses test or validation images), or a dataset spec
    # (folder or built-in) starts every regime from that dataset.
    init_images: str | None = None
    # Strength(s) of guided generation in (0, 1], one drawn per image (ddpm, diffusers).
    strength: float | list[float] | None = None
    # `real`: generate with the ddpm generator fine-tuned on each regime's own real images at
    # its size and seed (`synthaug.study.tuning`, with its near-copy check).
    tune_on: Literal["real"] | None = None
    # Fine-tuning steps of `tune_on` (default 300).
    tune_steps: int | None = Field(default=None, gt=0)
    # `init_images: real` or `tune_on: real`: real images per class that `synthetic` regimes
    # of this source start from (a `mixed` regime uses its own size).
    real_per_class: int | None = Field(default=None, gt=0)

    def identity(self) -> dict[str, Any]:
        """What the generated images depend on, for a cache key: every field but ``dir``, and
        the guidance fields only when set (so folders generated before they existed keep
        their keys)."""
        unset = {name for name in ("init_images", "strength", "tune_on", "tune_steps", "real_per_class")
                 if getattr(self, name) is None}  # fmt: skip
        return self.model_dump(mode="json", exclude={"dir", *unset})

    @property
    def per_real(self) -> bool:
        """Whether the images depend on each regime's own real images (guided by or tuned on them)."""
        return self.init_images == "real" or self.tune_on == "real"


class SyntheticSource(_Strict):
    """One synthetic dataset: an existing generated folder, or a generation spec."""

    # Name that regimes refer to (`source:`) and the report shows ("ddpm", "dall-e-3", ...).
    name: str = Field(min_length=1)
    # An existing image folder (e.g. the output of `synthaug generate`).
    path: str | None = None
    # Or: generate the images as part of the study.
    generate: GenerationSpec | None = None


class ClipFilter(_Strict):
    """CLIP rules of a regime filter (:mod:`synthaug.audit.clip`; the standard filter of
    generated training data)."""

    # A local CLIP model folder (written by CLIPModel and CLIPProcessor save_pretrained).
    model: str = Field(min_length=1)
    # Drop images whose CLIPScore against their prompt (100 x cosine, 0..100) is below this.
    min_score: float | None = Field(default=None, ge=0.0, le=100.0)
    # Drop images whose zero-shot CLIP class is not their label.
    class_agreement: bool = False

    @model_validator(mode="after")
    def _one_rule(self) -> ClipFilter:
        if self.min_score is None and not self.class_agreement:
            raise ValueError("say what CLIP drops: min_score or class_agreement")
        return self


class RegimeFilter(_Strict):
    """Which images of the synthetic source a filtered regime leaves out, by the study's audit
    of that source (the options of :func:`synthaug.audit.drop_reasons`)."""

    # Drop the images with the highest combined audit score: a fraction in (0, 1) of the
    # source (0.1 = the top 10 %) or a count (>= 1).
    drop_top: float | int | None = None
    # Or drop every image whose combined audit score (in (0, 1]) is at least this.
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)
    # Drop the images confident learning flags as label issues.
    drop_label_issues: bool = False
    # Drop copies of earlier images of the source and copies of real training images.
    drop_duplicates: bool = False
    # Drop copies of real test images (leakage); on by default, as in `synthaug filter`.
    drop_leakage: bool = True
    # Apply drop_top within each class (the top 10 % of every class), keeping the classes
    # balanced: suspects cluster in the classes the generator confuses.
    per_class: bool = False
    # Also drop what a CLIP model marks (`{model: DIR, min_score: 25}` or `class_agreement: true`).
    clip: ClipFilter | None = None

    @field_validator("drop_top")
    @classmethod
    def _fraction_or_count(cls, value: float | int | None) -> float | int | None:
        if value is None:
            return None
        if isinstance(value, bool) or (isinstance(value, float) and not 0.0 < value < 1.0) or value <= 0:
            raise ValueError("must be a fraction in (0, 1) such as 0.1, or a count >= 1")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> RegimeFilter:
        if self.drop_top is not None and self.threshold is not None:
            raise ValueError("give drop_top or threshold, not both")
        if (self.drop_top is None and self.threshold is None and self.clip is None
                and not (self.drop_label_issues or self.drop_duplicates)):
            raise ValueError("say what to drop: drop_top, threshold, drop_label_issues, drop_duplicates or clip")
        if self.per_class and self.drop_top is None:
            raise ValueError("per_class applies to drop_top; give drop_top")
        return self

    def describe(self) -> str:
        """``"filtered: top 10 % by audit score"``."""
        rules = []
        scope = " of each class" if self.per_class else ""
        if isinstance(self.drop_top, float):
            rules.append(f"top {100 * self.drop_top:g} %{scope} by audit score")
        elif self.drop_top is not None:
            rules.append(f"top {self.drop_top}{scope} by audit score")
        if self.threshold is not None:
            rules.append(f"audit score ≥ {self.threshold:g}")
        if self.drop_label_issues:
            rules.append("label issues")
        if self.drop_duplicates:
            rules.append("duplicates")
        if self.clip is not None and self.clip.min_score is not None:
            rules.append(f"CLIP score < {self.clip.min_score:g}")
        if self.clip is not None and self.clip.class_agreement:
            rules.append("CLIP class disagrees")
        return "filtered: " + " + ".join(rules)


class Regime(_Strict):
    """A way of building the training set, at one or more sizes."""

    # Label used in tables and plots; unique within the study.
    name: str = Field(min_length=1)
    # `real`: n real images per class; `synthetic`: n synthetic images per class;
    # `mixed`: n real images per class plus `synthetic_per_class` synthetic ones.
    data: Literal["real", "synthetic", "mixed"]
    # Images per class (real for `real`/`mixed`, synthetic for `synthetic`); one run per size.
    sizes: list[int] = Field(min_length=1)
    # Synthetic source name (required when the study has more than one source).
    source: str | None = None
    # `mixed` only: synthetic images per class added to the real ones.
    synthetic_per_class: int | None = Field(default=None, gt=0)
    # `mixed` only: share of synthetic images in the training stream (0..1); by default each
    # image counts once, whatever its origin.
    synthetic_weight: float | None = Field(default=None, ge=0.0, le=1.0)
    # `mixed` only, instead of `synthetic_weight`: each training example is drawn from the
    # synthetic images with this probability and from the real ones otherwise (with
    # replacement, per batch), as DA-Fusion mixes them (Trabucco et al. 2024: 0.5).
    synthetic_probability: float | None = Field(default=None, gt=0.0, lt=1.0)
    # Names of the study's methods to run in this regime (default: all of them). Learning
    # curves usually need only the cheap baseline at many sizes.
    methods: list[str] | None = None
    # Synthetic or mixed only: draw the synthetic images from the source without the images
    # the study's audit marks (e.g. `{drop_top: 0.1}`); sizes count the images kept.
    filter: RegimeFilter | None = None
    # Synthetic or mixed only: `audit` weights each synthetic image's loss by the out-of-sample
    # probability of its label in the study's audit (`synthaug.audit.audit_weights`).
    weights: Literal["audit"] | None = None
    # Hyper-parameters of every method in this regime, over the study's `method_params` and
    # each method's own: a robust loss is `{loss: generalized_cross_entropy}` or
    # `{label_smoothing: 0.1}`. (None rather than {} when absent, so that run folders written
    # before this key existed still match their config and resume.)
    method_params: dict[str, Any] | None = None
    # Uncertainty-targeted generation (a `budget` makes the regime targeted, see
    # `synthaug.study.targeted`): synthetic images added in total over the rounds, on top of
    # `sizes` images per class (real for `mixed`, synthetic for `synthetic`), generated by the
    # source's backend as the rounds ask for them.
    budget: int | None = Field(default=None, gt=0)
    # Targeted only: rounds the budget is spent in (default 4); each round trains `method`,
    # scores every class on the real validation set and spends the next 1/rounds of the budget.
    rounds: int | None = Field(default=None, ge=1)
    # Targeted only: what a class's share follows: `epistemic` (mean mutual information of its
    # validation images, the default), `error` (its validation error rate) or `uniform` (the control).
    allocate: Literal["epistemic", "error", "uniform"] | None = None
    # Targeted only: share of each round's images spread evenly over the classes before the rest
    # follows the scores, so that no class is starved (0..1; default 0.2; 1 = uniform).
    floor: float | None = Field(default=None, ge=0.0, le=1.0)
    # Targeted only: name of the study method trained and scored in every round (an ensemble,
    # MC dropout or BNN gives the mutual information); the regime runs this method only.
    method: str | None = None

    @property
    def targeted(self) -> bool:
        """Whether the regime spends a budget by uncertainty-targeted generation."""
        return self.budget is not None

    @property
    def treatment(self) -> str | None:
        """What this regime does beyond drawing images (filter, weights, method settings), as
        the tables show it; ``None`` for a plain regime."""
        parts = [self.filter.describe()] if self.filter is not None else []
        if self.targeted:
            parts.append(f"targeted ({self.allocate or 'epistemic'}): {self.budget} images in {self.rounds or 4} rounds")
        if self.weights == "audit":
            parts.append("audit-weighted")
        parts += [f"{key}={value}" for key, value in sorted((self.method_params or {}).items())]
        return ", ".join(parts) or None

    @field_validator("sizes")
    @classmethod
    def _positive_unique_sizes(cls, sizes: list[int]) -> list[int]:
        if any(size <= 0 for size in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError("must be a list of distinct positive integers")
        return sorted(sizes)


class MethodSpec(_Strict):
    """An uncertainty method by registered key, with its hyper-parameters."""

    # Registered key in `synthaug.methods.METHODS` (deterministic, temperature, mc-dropout,
    # ensemble, bnn, laplace, ...).
    key: str
    # Label in tables; defaults to the key (give two entries of one key different names).
    name: str = ""
    # Keyword hyper-parameters of the method (e.g. `epochs`, `n_members`); they override
    # the study-wide `method_params`.
    params: dict[str, Any] = Field(default_factory=dict)
    # Run this method only at these sizes (images per class), e.g. an expensive method at the
    # largest size only while the baseline draws the learning curves; default: every size.
    sizes: list[int] | None = None

    @field_validator("sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int] | None) -> list[int] | None:
        if sizes is not None and (not sizes or any(size <= 0 for size in sizes)):
            raise ValueError("must be a non-empty list of positive integers")
        return sizes

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("key"), str):
            return {**data, "name": data["key"]}
        return data


class BackboneSpec(_Strict):
    """A backbone by registered name (`cnn`, or any torchvision model name)."""

    # Registered backbone name, e.g. `cnn` or `resnet50`.
    name: str
    # Keyword arguments for the backbone (e.g. `weights_path`, `freeze: true`).
    params: dict[str, Any] = Field(default_factory=dict)


class OODSpec(_Strict):
    """An out-of-distribution set: another dataset, or real classes held out of training."""

    # Label in tables (`digits`, `holdout`).
    name: str = Field(min_length=1)
    # A dataset spec (image folder or built-in name such as `digits`).
    data: str | None = None
    # Or: real classes removed from every training, validation and test set; their test
    # images become this OOD set (novel-class detection).
    holdout_classes: list[str] | None = None


# The corruptions of `synthaug.data.shift.CORRUPTIONS` (a test checks the two lists agree;
# named here so that reading a config does not import the image code).
Corruption = Literal["gaussian_noise", "blur", "contrast", "brightness", "rotation", "translation"]


class ShiftSpec(_Strict):
    """Corrupted copies of the real test set that every model is evaluated on as well
    (accuracy, ECE, NLL and Brier under dataset shift; Ovadia et al. 2019)."""

    # Corruptions (MNIST-C / ImageNet-C recipe, generated in code); default: all six.
    corruptions: list[Corruption] = Field(
        default_factory=lambda: ["gaussian_noise", "blur", "contrast", "brightness", "rotation", "translation"],
        min_length=1,
    )
    # Severities from 1 (mild) to 5 (severe); default: all five.
    severities: list[Literal[1, 2, 3, 4, 5]] = Field(default_factory=lambda: [1, 2, 3, 4, 5], min_length=1)
    # Seeds the random parts (noise, rotation signs, translation directions).
    seed: int = 0

    @field_validator("corruptions", "severities")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError("list each entry once")
        return value


class RayExecution(_Strict):
    """Where and with what each unit runs on a Ray cluster."""

    # The cluster: `auto` (the one `ray start` joined this machine to), `local` (a private
    # one started here), `HOST:PORT` of the head node or `ray://HOST:10001` (Ray Client).
    address: str = "auto"
    # CPU cores each unit reserves (and the torch threads it uses).
    num_cpus: float = Field(default=1.0, gt=0)
    # GPUs each unit reserves; a fraction shares one GPU (0.25: four small models at a time).
    num_gpus: float = Field(default=0.0, ge=0)
    # Where units keep trained models when the workers do not write the run folder themselves:
    # `s3://bucket/prefix`, `gs://...` or a path every node mounts (read with pyarrow.fs). With
    # it, predictions and metrics come back through Ray's object store and the driver writes
    # them; without it, the workers must see the run folder (a shared file system, checked
    # before any unit runs), or, where they do not, models come back through the object store too.
    storage: str | None = None


class Execution(_Strict):
    """Where the units run. Not part of the study's identity: the results are the same
    whatever runs them, so a run folder can be resumed with other settings here."""

    # Local worker processes; `synthaug study` defaults to one per core, `run_study` from
    # Python to 1 (everything in the calling process). Ignored when `ray` is set.
    workers: int | None = Field(default=None, ge=1)
    # Run the units on a Ray cluster instead (needs `pip install 'synthaug[ray]'`).
    ray: RayExecution | None = None


class MLflowTracking(_Strict):
    """Where `synthaug study --track mlflow` logs (see `synthaug.tracking.mlflow`)."""

    # Tracking URI; default: $MLFLOW_TRACKING_URI, else a SQLite store in `mlruns/` beside
    # the run folder.
    uri: str | None = None
    # Experiment name; default: `synthaug`.
    experiment: str | None = None


class Tracking(_Strict):
    """Experiment tracking. Not part of the study's identity (like `execution`): a run folder
    can be resumed with tracking switched on or off."""

    # Log the study to MLflow (needs `pip install 'synthaug[mlflow]'`): one run per unit,
    # nested under one run for the study.
    mlflow: MLflowTracking | None = None


class StudyConfig(_Strict):
    """The whole study."""

    # One-line question the report answers first.
    title: str = "Can synthetic images augment real training data?"
    # The real images.
    real: RealData
    # Synthetic sources (may be empty for a real-only study).
    synthetic: list[SyntheticSource] = Field(default_factory=list)
    # Training regimes; the grid is regimes x sizes x backbones x methods x seeds.
    regimes: list[Regime] = Field(min_length=1)
    # Backbones (a name or {name, params}).
    backbones: list[BackboneSpec] = Field(default_factory=lambda: [BackboneSpec(name="cnn")], min_length=1)
    # Methods (a key or {key, name, params}).
    methods: list[MethodSpec] = Field(default_factory=lambda: [MethodSpec(key="deterministic")], min_length=1)
    # Hyper-parameters given to every method (e.g. `epochs: 10`), under each method's own.
    method_params: dict[str, Any] = Field(default_factory=dict)
    # Seeds: each seed draws its own real/synthetic subsample and its own initialisation.
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    # Out-of-distribution sets (a dataset spec or {name, data | holdout_classes}).
    ood: list[OODSpec] = Field(default_factory=list)
    # Also evaluate every model on corrupted copies of the real test set, e.g.
    # `{corruptions: [gaussian_noise, blur], severities: [1, 3, 5]}`; absent: no shift.
    shift: ShiftSpec | None = None
    # Settings of the audits that filtered and audit-weighted regimes use (the fields of
    # `synthaug.audit.AuditConfig`: folds, method, method_options, backbone, epochs,
    # reference_method, seed, score_components, ...); each such synthetic source is audited
    # once, against the real training pool (reference) and test set (leakage). Absent: the
    # AuditConfig defaults.
    audit: dict[str, Any] | None = None
    # Feature space in which each synthetic source is inspected against the real training pool
    # (`synthaug inspect`: precision/recall/density/coverage, FD, memorisation per class):
    # `reference` (a classifier trained on the pool with the `audit` settings; the default),
    # `thumbnails` (pixels, fast), `clip:DIR` or `model:DIR`; `off` skips the inspection.
    inspect: str | None = None
    # Real images per class at which the exchange rate is reported; default: every size of
    # the real-only regime.
    exchange_rate_at: list[int] | None = None
    # Resamples of the bootstraps (over test examples and over seeds).
    bootstrap_resamples: int = Field(default=1000, ge=100)
    # torch device (`cpu`, `cuda`, ...); default: the best available.
    device: str | None = None
    # torch CPU threads of every unit (on any engine) and of the driver's own work. Fixed rather
    # than cores / workers because the float reduction order follows the thread count: a fixed
    # count gives the same numbers with 1 or 2 workers or on Ray. 1: small networks parallelise
    # poorly, so 1 is about as fast per unit and leaves the cores to parallel units.
    threads: int = Field(default=1, ge=1)
    # Where trained models, predictions and generated images are cached by content hash;
    # default `RUN_DIR/cache`. Point several studies at one folder to share work.
    cache_dir: str | None = None
    # Where the units run: `{workers: 2}` or `{ray: {address: auto, num_gpus: 0.25}}`; the
    # command line's --workers/--ray win over it.
    execution: Execution = Field(default_factory=Execution)
    # Experiment tracking, e.g. `{mlflow: {experiment: fashion-ddpm}}`; the command line's
    # `--track mlflow` switches MLflow on as well.
    tracking: Tracking = Field(default_factory=Tracking)

    @field_validator("backbones", mode="before")
    @classmethod
    def _backbone_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("methods", mode="before")
    @classmethod
    def _method_keys(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"key": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("ood", mode="before")
    @classmethod
    def _ood_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item, "data": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct")
        return seeds

    @field_validator("exchange_rate_at")
    @classmethod
    def _positive_sizes(cls, sizes: list[int] | None) -> list[int] | None:
        if sizes is not None and any(size <= 0 for size in sizes):
            raise ValueError("must be a list of positive integers")
        return sizes

    # -- derived views used by the runner and the analysis --------------------------------

    def source(self, name: str) -> SyntheticSource:
        """The synthetic source called ``name``."""
        return next(source for source in self.synthetic if source.name == name)

    def regime_source(self, regime: Regime) -> SyntheticSource | None:
        """The synthetic source a regime draws from (``None`` for a real-only regime)."""
        if regime.data == "real":
            return None
        return self.source(regime.source) if regime.source else self.synthetic[0]

    def plain_regime(self, data: str) -> Regime | None:
        """The first regime of kind ``data`` without a treatment (else the first of that
        kind): the baseline that tables and the headline compare against."""
        regimes = [regime for regime in self.regimes if regime.data == data]
        return next((regime for regime in regimes if regime.treatment is None), regimes[0] if regimes else None)

    def untreated_counterpart(self, regime: Regime) -> Regime | None:
        """The regime drawing the same data as a treated ``regime`` without any treatment."""
        if regime.treatment is None:
            return None
        return next(
            (
                other
                for other in self.regimes
                if other.treatment is None
                and other.data == regime.data
                and self.regime_source(other) == self.regime_source(regime)
                and other.synthetic_per_class == regime.synthetic_per_class
                and other.synthetic_weight == regime.synthetic_weight
                and other.synthetic_probability == regime.synthetic_probability
            ),
            None,
        )

    def audited_sources(self) -> list[str]:
        """Names of the synthetic sources a filtered or audit-weighted regime needs audited."""
        names = [
            self.regime_source(regime).name
            for regime in self.regimes
            if regime.filter is not None or regime.weights is not None
        ]
        return list(dict.fromkeys(names))

    def regime_methods(self, regime: Regime, size: int | None = None) -> list[MethodSpec]:
        """The methods run in ``regime`` (at ``size`` if given), in the study's order."""
        names = [regime.method] if regime.targeted else regime.methods
        return [
            method
            for method in self.methods
            if (names is None or method.name in names)
            and (size is None or method.sizes is None or size in method.sizes)
        ]

    def holdout_classes(self) -> list[str]:
        """Real classes held out of training by any OOD entry."""
        return [name for entry in self.ood for name in (entry.holdout_classes or [])]


def _format_location(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


#: Problems a config error lists one per line; the rest are counted ("and N more").
MAX_LISTED_PROBLEMS = 8


def _problem_line(detail: Any, model: type[BaseModel]) -> str:
    """One short line naming the key path of one problem pydantic found, and what is wrong."""
    where = _format_location(detail["loc"])
    kind = detail["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, detail["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent is not None else ""
        message = f"unknown key; valid keys here: {valid}" if valid else "unknown key"
    elif kind == "missing":
        message = "missing required key"
    else:
        message = detail["msg"].removeprefix("Value error, ")
        message = message[0].lower() + message[1:]
        if "input" in detail and not isinstance(detail["input"], dict | list):
            message += f" (got {detail['input']!r})"
    return f"{where}: {message}"


def _error_message(error: ValidationError, model: type[BaseModel]) -> str:
    """Every problem pydantic found, one line each with its key path (the first
    :data:`MAX_LISTED_PROBLEMS`, then how many more), so a user fixes them all in one go.

    One problem reads as one line; several as ``N problems:`` and an indented line each.
    """
    lines = list(dict.fromkeys(_problem_line(detail, model) for detail in error.errors(include_url=False)))
    if len(lines) == 1:
        return lines[0]
    listed = [f"  {line}" for line in lines[:MAX_LISTED_PROBLEMS]]
    if len(lines) > MAX_LISTED_PROBLEMS:
        listed.append(f"  and {len(lines) - MAX_LISTED_PROBLEMS} more")
    return "\n".join([f"{len(lines)} problems:", *listed])


def _model_at(model: type[BaseModel], location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model class found at ``location`` below ``model`` (list indices skipped)."""
    current: Any = model
    for part in location:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if isinstance(current, type) else None
        if field is None:
            return None
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        for candidate in list(candidates):
            candidates.extend(getattr(candidate, "__args__", ()))
        current = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if current is None:
            return None
    return current


def _check_real_guidance(config: StudyConfig, source: SyntheticSource, where: str) -> None:
    """Guided (`init_images`) and tuned (`tune_on`) sources: the keys they need together."""
    spec = source.generate
    if spec.init_images is not None and spec.tune_on is not None:
        raise ConfigError(f"{where}: give either init_images or tune_on, not both")
    if spec.tune_on is not None and spec.backend != "ddpm":
        raise ConfigError(f"{where}.tune_on: tuning in a study needs backend ddpm (diffusers LoRA: "
                          "`synthaug train-generator --backend diffusers`, then a source with `model`)")  # fmt: skip
    if spec.strength is not None and spec.init_images is None:
        raise ConfigError(f"{where}.strength: needs init_images (the real images to start from)")
    if spec.tune_steps is not None and spec.tune_on is None:
        raise ConfigError(f"{where}.tune_steps: needs tune_on")
    if spec.real_per_class is not None and not spec.per_real:
        raise ConfigError(f"{where}.real_per_class: only for init_images: real or tune_on: real")
    for index, regime in enumerate(config.regimes):
        if regime.data == "real" or (regime.source or config.synthetic[0].name) != source.name or not spec.per_real:
            continue
        if regime.filter is not None or regime.weights is not None or regime.targeted:
            raise ConfigError(f"regimes[{index}]: a source guided by or tuned on each regime's real images "
                              "cannot be filtered, audit-weighted or targeted")  # fmt: skip
        if regime.data == "synthetic" and spec.real_per_class is None:
            raise ConfigError(f"{where}.real_per_class: missing; synthetic regime {regime.name!r} starts from it")


def _check_references(config: StudyConfig) -> None:
    """Cross-field checks pydantic cannot place on one key; each names the key at fault."""
    sources = [source.name for source in config.synthetic]
    for index, source in enumerate(config.synthetic):
        if (source.path is None) == (source.generate is None):
            raise ConfigError(f"synthetic[{index}]: give exactly one of `path` or `generate`")
        if source.generate is not None:
            _check_real_guidance(config, source, f"synthetic[{index}].generate")
    if len(set(sources)) != len(sources):
        raise ConfigError("synthetic: source names must be distinct")
    names = [regime.name for regime in config.regimes]
    if len(set(names)) != len(names):
        raise ConfigError("regimes: regime names must be distinct")
    method_names = [method.name for method in config.methods]
    if len(set(method_names)) != len(method_names):
        raise ConfigError("methods: method names must be distinct (give repeated keys a `name`)")
    backbone_names = [backbone.name for backbone in config.backbones]
    if len(set(backbone_names)) != len(backbone_names):
        raise ConfigError("backbones: backbone names must be distinct")
    if sum(regime.data == "real" and regime.treatment is None for regime in config.regimes) > 1:
        raise ConfigError(
            "regimes: at most one regime may have `data: real` without `method_params` (it is the baseline)"
        )
    for index, regime in enumerate(config.regimes):
        where = f"regimes[{index}]"
        if regime.data == "real":
            for key in ("source", "synthetic_per_class", "synthetic_weight", "synthetic_probability", "filter",
                        "weights"):
                if getattr(regime, key) is not None:
                    raise ConfigError(f"{where}.{key}: only a synthetic or mixed regime takes it")
        else:
            if not sources:
                raise ConfigError(f"{where}.data: a {regime.data} regime needs a `synthetic` source")
            if regime.source is None and len(sources) > 1:
                raise ConfigError(f"{where}.source: missing; choose one of: {', '.join(sources)}")
            if regime.source is not None and regime.source not in sources:
                raise ConfigError(
                    f"{where}.source: unknown source {regime.source!r}; choose one of: {', '.join(sources)}"
                )
        if regime.targeted or any(getattr(regime, key) is not None for key in ("rounds", "allocate", "floor", "method")):
            _check_targeted(config, regime, where, method_names)
        elif regime.data == "mixed" and regime.synthetic_per_class is None:
            raise ConfigError(f"{where}.synthetic_per_class: missing; a mixed regime needs it")
        if regime.data == "synthetic" and regime.synthetic_weight is not None:
            raise ConfigError(f"{where}.synthetic_weight: only a mixed regime takes it")
        if regime.data == "synthetic" and regime.synthetic_probability is not None:
            raise ConfigError(f"{where}.synthetic_probability: only a mixed regime takes it")
        if regime.synthetic_weight is not None and regime.synthetic_probability is not None:
            raise ConfigError(f"{where}.synthetic_probability: give it or synthetic_weight, not both")
        if regime.data == "synthetic" and regime.synthetic_per_class is not None:
            raise ConfigError(f"{where}.synthetic_per_class: a synthetic regime uses `sizes`")
        if regime.methods is not None:
            for position, name in enumerate(regime.methods):
                if name not in method_names:
                    raise ConfigError(
                        f"{where}.methods[{position}]: unknown method {name!r}; "
                        f"choose one of: {', '.join(method_names)}"
                    )
        source = config.regime_source(regime)
        if source is not None and source.generate is not None and not regime.targeted:
            largest = max(regime.sizes) if regime.data == "synthetic" else regime.synthetic_per_class
            if largest is not None and largest > source.generate.per_class:
                raise ConfigError(
                    f"{where}.sizes: asks for {largest} synthetic images per class but source "
                    f"{source.name!r} generates {source.generate.per_class}; raise its per_class"
                )
    ood_names = [entry.name for entry in config.ood]
    if len(set(ood_names)) != len(ood_names):
        raise ConfigError("ood: OOD set names must be distinct")
    for index, entry in enumerate(config.ood):
        if (entry.data is None) == (entry.holdout_classes is None):
            raise ConfigError(f"ood[{index}]: give exactly one of `data` or `holdout_classes`")
        if entry.holdout_classes is not None and not entry.holdout_classes:
            raise ConfigError(f"ood[{index}].holdout_classes: name at least one class")
    real = [regime for regime in config.regimes if regime.data == "real"]
    if config.exchange_rate_at is not None and not real:
        raise ConfigError("exchange_rate_at: needs a regime with `data: real`")
    if config.audit:
        audit_config(config)
    if config.inspect not in (None, "off"):
        from synthaug.quality.features import FeatureSpace

        try:
            FeatureSpace.parse(config.inspect)
        except ConfigError as error:
            raise ConfigError(f"inspect: {error}") from None


def _check_targeted(config: StudyConfig, regime: Regime, where: str, method_names: list[str]) -> None:
    """The one-line errors of a targeted regime's keys (see :class:`Regime`)."""
    if not regime.targeted:
        key = next(key for key in ("rounds", "allocate", "floor", "method") if getattr(regime, key) is not None)
        raise ConfigError(f"{where}.{key}: only a targeted regime takes it; give `budget` (synthetic images to spend)")
    if regime.data == "real":
        raise ConfigError(f"{where}.budget: a targeted regime generates images; use `data: mixed` or `data: synthetic`")
    for key in ("synthetic_per_class", "filter", "weights", "methods"):
        if getattr(regime, key) is not None:
            raise ConfigError(f"{where}.{key}: a targeted regime does not take it (its `budget` sets the synthetic "
                              "images, its `method` the one method)")
    if regime.method is None:
        raise ConfigError(f"{where}.method: missing; name the study method every round trains, "
                          f"one of: {', '.join(method_names)}")
    if regime.method not in method_names:
        raise ConfigError(f"{where}.method: unknown method {regime.method!r}; choose one of: {', '.join(method_names)}")
    if regime.budget < (regime.rounds or 4):
        raise ConfigError(f"{where}.budget: {regime.budget} images cannot be spent in {regime.rounds or 4} rounds; "
                          "raise the budget or lower `rounds`")
    source = config.regime_source(regime)
    if source is not None and source.generate is None:
        raise ConfigError(f"{where}.source: a targeted regime generates its images as the rounds ask; source "
                          f"{source.name!r} needs `generate`, not `path`")


def audit_config(config: StudyConfig) -> Any:
    """The :class:`synthaug.audit.AuditConfig` of the study's ``audit`` section.

    Raises:
        ConfigError: naming ``audit.<key>`` for an unknown key or a bad value.
    """
    import dataclasses

    from synthaug.audit import AuditConfig

    valid = [field.name for field in dataclasses.fields(AuditConfig)]
    settings = config.audit or {}
    unknown = [key for key in settings if key not in valid]
    if unknown:
        raise ConfigError(f"audit.{unknown[0]}: unknown key; valid keys here: {', '.join(valid)}")
    try:
        return AuditConfig(**settings)
    except ConfigError as error:
        raise ConfigError(f"audit: {error}") from None
    except TypeError as error:  # a wrong type that the dataclass's checks trip over
        raise ConfigError(f"audit: {error}") from None


def parse_config(data: Any) -> StudyConfig:
    """Validate a parsed YAML/JSON mapping into a :class:`StudyConfig`.

    Raises:
        ConfigError: Every problem found, one line each naming its key path.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): the study config must be a mapping of keys, got {type(data).__name__}")
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_error_message(error, StudyConfig)) from None
    _check_references(config)
    return config


def load_config(path: str | os.PathLike[str]) -> StudyConfig:
    """Read and validate a study config from a YAML file.

    Relative dataset and folder paths in the file are resolved against the file's directory,
    so a config works from any working directory.

    Raises:
        ConfigError: The file is missing, is not YAML, or does not validate; the message
            starts with the file name and the key path.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the study config ({error.strerror})") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(error, 'problem', error)})") from error
    try:
        config = parse_config(data)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    return resolve_paths(config, path.parent)


def _resolve_spec(spec: str, base: Path) -> str:
    """A dataset spec made absolute when it is a relative path that exists beside the config."""
    candidate = base / spec
    if not Path(spec).is_absolute() and candidate.exists():
        return str(candidate.resolve())
    return spec


def resolve_paths(config: StudyConfig, base: Path) -> StudyConfig:
    """Return ``config`` with relative paths that exist under ``base`` made absolute."""
    data = config_to_dict(config)
    real = data["real"]
    for key in ("train", "test", "val"):
        if real.get(key):
            real[key] = _resolve_spec(real[key], base)
    for source in data["synthetic"]:
        if source.get("path"):
            source["path"] = _resolve_spec(source["path"], base)
        if source.get("generate") and source["generate"].get("dir"):
            directory = Path(source["generate"]["dir"])
            source["generate"]["dir"] = str(directory if directory.is_absolute() else (base / directory).resolve())
    for entry in data["ood"]:
        if entry.get("data"):
            entry["data"] = _resolve_spec(entry["data"], base)
    if data.get("cache_dir") and not Path(data["cache_dir"]).is_absolute():
        data["cache_dir"] = str((base / data["cache_dir"]).resolve())
    return StudyConfig.model_validate(
        {**data, "execution": config.execution.model_dump(mode="json"), "tracking": config.tracking.model_dump(mode="json")}
    )


def config_to_dict(config: StudyConfig) -> dict[str, Any]:
    """The config as plain data (what ``config.resolved.yaml`` holds); ``execution`` and
    ``tracking`` are left out: where the units ran and where they were logged do not change
    the study, so a run resumes under other settings."""
    return config.model_dump(mode="json", exclude={"execution", "tracking"})
