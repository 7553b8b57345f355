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
    "GenerationSpec",
    "MethodSpec",
    "OODSpec",
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


class SyntheticSource(_Strict):
    """One synthetic dataset: an existing generated folder, or a generation spec."""

    # Name that regimes refer to (`source:`) and the report shows ("ddpm", "dall-e-3", ...).
    name: str = Field(min_length=1)
    # An existing image folder (e.g. the output of `synthaug generate`).
    path: str | None = None
    # Or: generate the images as part of the study.
    generate: GenerationSpec | None = None


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
        if self.drop_top is None and self.threshold is None and not (self.drop_label_issues or self.drop_duplicates):
            raise ValueError("say what to drop: drop_top, threshold, drop_label_issues or drop_duplicates")
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

    @property
    def treatment(self) -> str | None:
        """What this regime does beyond drawing images (filter, weights, method settings), as
        the tables show it; ``None`` for a plain regime."""
        parts = [self.filter.describe()] if self.filter is not None else []
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
    # Settings of the audits that filtered and audit-weighted regimes use (the fields of
    # `synthaug.audit.AuditConfig`: folds, method, method_options, backbone, epochs,
    # reference_method, seed, score_components, ...); each such synthetic source is audited
    # once, against the real training pool (reference) and test set (leakage). Absent: the
    # AuditConfig defaults.
    audit: dict[str, Any] | None = None
    # Real images per class at which the exchange rate is reported; default: every size of
    # the real-only regime.
    exchange_rate_at: list[int] | None = None
    # Resamples of the bootstraps (over test examples and over seeds).
    bootstrap_resamples: int = Field(default=1000, ge=100)
    # torch device (`cpu`, `cuda`, ...); default: the best available.
    device: str | None = None
    # CPU threads torch may use while the study runs; default: torch's own (one per core).
    # Small networks parallelise poorly, so 1 can be as fast, and much faster on a busy machine.
    threads: int | None = Field(default=None, ge=1)
    # Where trained models, predictions and generated images are cached by content hash;
    # default `RUN_DIR/cache`. Point several studies at one folder to share work.
    cache_dir: str | None = None

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
        return [
            method
            for method in self.methods
            if (regime.methods is None or method.name in regime.methods)
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


def _first_error_line(error: ValidationError, model: type[BaseModel]) -> str:
    """One line naming the key path of the first problem pydantic found."""
    details = error.errors(include_url=False)
    first = details[0]
    where = _format_location(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, first["loc"][:-1])
        valid = ", ".join(parent.model_fields) if parent is not None else ""
        message = f"unknown key; valid keys here: {valid}" if valid else "unknown key"
    elif kind == "missing":
        message = "missing required key"
    else:
        message = first["msg"].removeprefix("Value error, ")
        message = message[0].lower() + message[1:]
        if "input" in first and not isinstance(first["input"], dict | list):
            message += f" (got {first['input']!r})"
    more = f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})" if len(details) > 1 else ""
    return f"{where}: {message}{more}"


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


def _check_references(config: StudyConfig) -> None:
    """Cross-field checks pydantic cannot place on one key; each names the key at fault."""
    sources = [source.name for source in config.synthetic]
    for index, source in enumerate(config.synthetic):
        if (source.path is None) == (source.generate is None):
            raise ConfigError(f"synthetic[{index}]: give exactly one of `path` or `generate`")
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
            for key in ("source", "synthetic_per_class", "synthetic_weight", "filter", "weights"):
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
        if regime.data == "mixed" and regime.synthetic_per_class is None:
            raise ConfigError(f"{where}.synthetic_per_class: missing; a mixed regime needs it")
        if regime.data == "synthetic" and regime.synthetic_weight is not None:
            raise ConfigError(f"{where}.synthetic_weight: only a mixed regime takes it")
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
        if source is not None and source.generate is not None:
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
        ConfigError: One line naming the key path of the first problem.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"(top level): the study config must be a mapping of keys, got {type(data).__name__}")
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_first_error_line(error, StudyConfig)) from None
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
    return StudyConfig.model_validate(data)


def config_to_dict(config: StudyConfig) -> dict[str, Any]:
    """The config as plain data (what ``config.resolved.yaml`` holds)."""
    return config.model_dump(mode="json")
