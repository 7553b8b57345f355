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

Classical augmentation is a regime's ``augment`` (over the study's ``augment``; nothing by
default), so that one study holds, at the same real images and seeds, real; real +
classical; real + generated; real + generated + classical (``real_per_class`` and ``seed``
draw the same real images whatever the policy) — the comparison of Trabucco et al. (DA-Fusion,
ICLR 2024) and Michaeli & Fried (SaSPA, NeurIPS 2024) on the user's own task.

The sections live in :mod:`synthaug.study.config_sections` (data, sources, methods, execution)
and :mod:`synthaug.study.config_regimes` (regimes with their ``mix``, ``targeted`` and
``filter`` sections); each checks its own keys in its validators, and this module adds the
checks that need the whole study. Every field has a ``description``: ``synthaug
config-schema`` prints the JSON schema.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from synthaug.errors import ConfigError
from synthaug.study.config_errors import problems_message, validation_message
from synthaug.study.config_regimes import (
    AUGMENT_FIELD,
    ClipFilter,
    Mixing,
    Regime,
    RegimeFilter,
    Targeting,
    augment_label,
)
from synthaug.study.config_sections import (
    BackboneSpec,
    Corruption,
    Execution,
    GenerationSpec,
    MethodSpec,
    OODSpec,
    RayExecution,
    RealData,
    RetrievalSpec,
    ShiftSpec,
    Strict,
    SyntheticSource,
    Tracking,
)

__all__ = [  # the sections are defined in config_sections and config_regimes, read from here
    "BackboneSpec", "ClipFilter", "Corruption", "Execution", "GenerationSpec", "MethodSpec", "Mixing", "OODSpec",
    "RayExecution", "RealData", "Regime", "RegimeFilter", "RetrievalSpec", "ShiftSpec", "StudyConfig",
    "SyntheticSource", "Targeting",
    "audit_config", "config_to_dict", "load_config", "parse_config",
]  # fmt: skip


class StudyConfig(Strict):
    """The whole study."""

    title: str = Field(
        default="Can synthetic images augment real training data?",
        description="One-line question the report answers first.",
    )
    real: RealData = Field(description="The real images.")
    synthetic: list[SyntheticSource] = Field(
        default_factory=list,
        description="Synthetic sources (may be empty for a real-only study).",
    )
    regimes: list[Regime] = Field(
        min_length=1,
        description="Training regimes; the grid is regimes x sizes x backbones x methods x seeds.",
    )
    backbones: list[BackboneSpec] = Field(
        default_factory=lambda: [BackboneSpec(name="cnn")], min_length=1,
        description="Backbones (a name or {name, params}).",
    )
    methods: list[MethodSpec] = Field(
        default_factory=lambda: [MethodSpec(key="deterministic")], min_length=1,
        description="Methods (a key or {key, name, params}).",
    )
    method_params: dict[str, Any] = Field(
        default_factory=dict,
        description="Hyper-parameters given to every method (e.g. `epochs: 10`), under each method's own.",
    )
    augment: Any = Field(
        default=None,
        description=AUGMENT_FIELD + " The default of every regime (a regime's own `augment` wins).",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], min_length=1,
        description="Seeds: each seed draws its own real/synthetic subsample and its own initialisation.",
    )
    ood: list[OODSpec] = Field(
        default_factory=list,
        description="Out-of-distribution sets (a dataset spec or {name, data | holdout_classes}).",
    )
    shift: ShiftSpec | None = Field(
        default=None,
        description=(
            "Also evaluate every model on corrupted copies of the real test set, e.g. `{corruptions: "
            "[gaussian_noise, blur], severities: [1, 3, 5]}`; absent: no shift."
        ),
    )
    audit: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Settings of the audits that filtered and audit-weighted regimes use (the fields of "
            "`synthaug.audit.AuditConfig`: folds, method, method_options, backbone, epochs, reference_method, "
            "seed, score_components, ...); each such synthetic source is audited once, against the real "
            "training pool (reference) and test set (leakage). Absent: the AuditConfig defaults."
        ),
    )
    inspect: str | None = Field(
        default=None,
        description=(
            "Feature space in which each synthetic source is inspected against the real training pool "
            "(`synthaug inspect`: precision/recall/density/coverage, FD, memorisation per class): `reference` "
            "(a classifier trained on the pool with the `audit` settings; the default), `thumbnails` (pixels, "
            "fast), `clip:DIR` or `model:DIR`; `off` skips the inspection."
        ),
    )
    exchange_rate_at: list[int] | None = Field(
        default=None,
        description=(
            "Real images per class at which the exchange rate is reported; default: every size of the "
            "real-only regime."
        ),
    )
    bootstrap_resamples: int = Field(
        default=1000, ge=100,
        description="Resamples of the bootstraps (over test examples and over seeds).",
    )
    device: str | None = Field(
        default=None,
        description="torch device (`cpu`, `cuda`, ...); default: the best available.",
    )
    threads: int = Field(
        default=1, ge=1,
        description=(
            "torch CPU threads of every unit (on any engine) and of the driver's own work. Fixed rather than "
            "cores / workers because the float reduction order follows the thread count: a fixed count gives "
            "the same numbers with 1 or 2 workers or on Ray. 1: small networks parallelise poorly, so 1 is "
            "about as fast per unit and leaves the cores to parallel units."
        ),
    )
    cache_dir: str | None = Field(
        default=None,
        description=(
            "Where trained models, predictions and generated images are cached by content hash; default "
            "`RUN_DIR/cache`. Point several studies at one folder to share work."
        ),
    )
    execution: Execution = Field(
        default_factory=Execution,
        description=(
            "Where the units run: `{workers: 2}` or `{ray: {address: auto, num_gpus: 0.25}}`; the command "
            "line's --workers/--ray win over it."
        ),
    )
    tracking: Tracking = Field(
        default_factory=Tracking,
        description=(
            "Experiment tracking, e.g. `{mlflow: {experiment: fashion-ddpm}}`; the command line's `--track "
            "mlflow` switches MLflow on as well."
        ),
    )

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

    def regime_augment(self, regime: Regime) -> Any:
        """The ``augment`` value of ``regime``: its own, else the study's (``None``: nothing)."""
        return regime.augment if regime.augment is not None else self.augment

    def augment_label(self, regime: Regime) -> str:
        """The readable policy of ``regime`` (``"none"`` when it has none)."""
        return augment_label(self.regime_augment(regime))

    def method_params_for(self, regime: Regime, method: MethodSpec) -> dict[str, Any]:
        """The hyper-parameters ``method`` runs with in ``regime``: the study's ``augment``, the
        study's ``method_params``, the method's, the regime's, then the regime's ``augment``."""
        params = {} if self.augment is None else {"augment": self.augment}
        params.update({**self.method_params, **method.params, **(regime.method_params or {})})
        if regime.augment is not None:
            params["augment"] = regime.augment
        return params

    def plain_regime(self, data: str, augment: str = "none") -> Regime | None:
        """The first regime of kind ``data`` without a treatment and with augmentation
        ``augment`` (a label of :meth:`augment_label`), else the first without a treatment, else
        the first of that kind: the baseline that tables and the headline compare against."""
        regimes = [regime for regime in self.regimes if regime.data == data]
        untreated = [regime for regime in regimes if regime.treatment is None]
        return next(
            (regime for regime in untreated if self.augment_label(regime) == augment),
            untreated[0] if untreated else (regimes[0] if regimes else None),
        )

    def untreated_counterpart(self, regime: Regime) -> Regime | None:
        """The regime drawing the same data as a treated ``regime``, with the same augmentation,
        without any treatment."""
        if regime.treatment is None:
            return None
        return next(
            (
                other
                for other in self.regimes
                if other.treatment is None
                and self.augment_label(other) == self.augment_label(regime)
                and other.data == regime.data
                and self.regime_source(other) == self.regime_source(regime)
                and other.mix == regime.mix
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
        names = [regime.targeted.method] if regime.targeted else regime.methods
        return [
            method
            for method in self.methods
            if (names is None or method.name in names)
            and (size is None or method.sizes is None or size in method.sizes)
        ]

    def holdout_classes(self) -> list[str]:
        """Real classes held out of training by any OOD entry."""
        return [name for entry in self.ood for name in (entry.holdout_classes or [])]


def _check_real_guidance(config: StudyConfig, source: SyntheticSource, where: str) -> None:
    """Guided (`init_images`) and tuned (`tune_on`) sources: what the regimes drawing from them
    may do (the keys of the source itself are checked by :class:`GenerationSpec`)."""
    spec = source.generate
    for index, regime in enumerate(config.regimes):
        if regime.data == "real" or (regime.source or config.synthetic[0].name) != source.name or not spec.per_real:
            continue
        if regime.filter is not None or regime.weights is not None or regime.targeted:
            raise ConfigError(f"regimes[{index}]: a source guided by or tuned on each regime's real images "
                              "cannot be filtered, audit-weighted or targeted")  # fmt: skip
        if regime.data == "synthetic" and spec.real_per_class is None:
            raise ConfigError(f"{where}.real_per_class: missing; synthetic regime {regime.name!r} starts from it")


@contextlib.contextmanager
def _collecting(problems: list[str]) -> Iterator[None]:
    """Add the message of a :class:`ConfigError` raised inside to ``problems`` and go on."""
    try:
        yield
    except ConfigError as error:
        problems.append(str(error))


def _check_references(config: StudyConfig) -> None:
    """Cross-field checks pydantic cannot place on one key; each names the key at fault.

    Raises:
        ConfigError: Every problem found, one line each (as pydantic's own are listed).
    """
    problems: list[str] = []
    sources = [source.name for source in config.synthetic]
    for index, source in enumerate(config.synthetic):
        if source.generate is not None:
            with _collecting(problems):
                _check_real_guidance(config, source, f"synthetic[{index}].generate")
    if len(set(sources)) != len(sources):
        problems.append("synthetic: source names must be distinct")
    names = [regime.name for regime in config.regimes]
    if len(set(names)) != len(names):
        problems.append("regimes: regime names must be distinct")
    method_names = [method.name for method in config.methods]
    if len(set(method_names)) != len(method_names):
        problems.append("methods: method names must be distinct (give repeated keys a `name`)")
    backbone_names = [backbone.name for backbone in config.backbones]
    if len(set(backbone_names)) != len(backbone_names):
        problems.append("backbones: backbone names must be distinct")
    plain_real = [config.augment_label(r) for r in config.regimes if r.data == "real" and r.treatment is None]
    if len(set(plain_real)) < len(plain_real):
        problems.append(
            "regimes: at most one regime may have `data: real` without `method_params` per `augment` policy "
            "(it is the baseline of that policy)"
        )
    method_problems = _method_problems(config)
    problems += method_problems
    for index, regime in enumerate(config.regimes):
        where = f"regimes[{index}]"
        if regime.data != "real":
            if not sources:
                problems.append(f"{where}.data: a {regime.data} regime needs a `synthetic` source")
                continue
            if regime.source is None and len(sources) > 1:
                problems.append(f"{where}.source: missing; choose one of: {', '.join(sources)}")
                continue
            if regime.source is not None and regime.source not in sources:
                problems.append(
                    f"{where}.source: unknown source {regime.source!r}; choose one of: {', '.join(sources)}"
                )
                continue
        if regime.targeted:
            with _collecting(problems):
                _check_targeted(config, regime, f"{where}.targeted", method_names)
        if config.augment_label(regime) != "none" and not method_problems:  # it builds the methods
            with _collecting(problems):
                _check_augment(config, regime, where)
        for position, name in enumerate(regime.methods or []):
            if name not in method_names:
                problems.append(
                    f"{where}.methods[{position}]: unknown method {name!r}; choose one of: {', '.join(method_names)}"
                )
        source = config.regime_source(regime)
        made = None if source is None else (source.generate or source.retrieve)
        if made is not None and not regime.targeted:
            largest = max(regime.sizes) if regime.data == "synthetic" else regime.synthetic_per_class
            if largest is not None and largest > made.per_class:
                verb = "retrieves" if source.retrieve is not None else "generates"
                problems.append(
                    f"{where}.sizes: asks for {largest} synthetic images per class but source "
                    f"{source.name!r} {verb} {made.per_class}; raise its per_class"
                )
    ood_names = [entry.name for entry in config.ood]
    if len(set(ood_names)) != len(ood_names):
        problems.append("ood: OOD set names must be distinct")
    real = [regime for regime in config.regimes if regime.data == "real"]
    if config.exchange_rate_at is not None and not real:
        problems.append("exchange_rate_at: needs a regime with `data: real`")
    if config.audit:
        with _collecting(problems):
            audit_config(config)
    if config.inspect not in (None, "off"):
        from synthaug.quality.features import FeatureSpace

        try:
            FeatureSpace.parse(config.inspect)
        except ConfigError as error:
            problems.append(f"inspect: {error}")
    if problems:
        raise ConfigError(problems_message(problems))


def _method_problems(config: StudyConfig) -> list[str]:
    """Build every method the study runs, with the hyper-parameters of every regime, so that an
    unknown method key or a misspelt or invalid hyper-parameter is found when the config is read,
    not when the first unit trains (after the data, and any paid image, were made): one line per
    problem, naming the key where it is set. Building a method is cheap (backbones build their
    networks lazily) but imports torch.
    """
    from synthaug.methods import METHODS, make_method

    problems: list[str] = []
    shared_ok = True  # the study's `method_params` go to every method: one line for them is enough
    good = []
    for index, spec in enumerate(config.methods):
        try:
            METHODS.get(spec.key)
        except ConfigError as error:
            problems.append(f"methods[{index}].key: {error}")
            continue
        if shared_ok:
            try:
                make_method(spec.key, **config.method_params).training_config()
            except ConfigError as error:
                problems.append(f"method_params: {error}")
                shared_ok = False
        shared = config.method_params if shared_ok else {}
        try:
            make_method(spec.key, **{**shared, **spec.params}).training_config()
        except ConfigError as error:
            problems.append(f"methods[{index}].params: {error}")
            continue
        good.append(spec.name)
    for index, regime in enumerate(config.regimes):
        if not regime.method_params or not shared_ok:
            continue
        for method in config.regime_methods(regime):
            if method.name not in good:
                continue
            params = {**config.method_params, **method.params, **regime.method_params}
            try:
                make_method(method.key, **params).training_config()
            except ConfigError as error:
                problems.append(f"regimes[{index}].method_params: {error}")  # the same for each method: one line
    return problems


def _check_augment(config: StudyConfig, regime: Regime, where: str) -> None:
    """A regime's augmentation, checked before anything runs: the policy parses, and every
    backbone of the study can apply it with every method of the regime (a frozen backbone needs
    ``augment_views``; MixUp/CutMix need pixels). Run after :func:`_method_problems` found
    every method buildable.
    """
    from synthaug.methods import make_method

    key = f"{where}.augment" if regime.augment is not None else "augment"
    for backbone in config.backbones:
        for method in config.regime_methods(regime):
            options = config.method_params_for(regime, method)
            options["backbone"] = backbone.name
            if backbone.params:
                options["backbone_options"] = dict(backbone.params)
            try:
                make_method(method.key, **options)._check_augment()
            except ConfigError as error:
                raise ConfigError(f"{key} (regime {regime.name!r}, backbone {backbone.name!r}, method "
                                  f"{method.name!r}): {error}") from None


def _check_targeted(config: StudyConfig, regime: Regime, where: str, method_names: list[str]) -> None:
    """The checks of a targeted regime that need the rest of the study (its own keys are
    checked by :class:`Targeting` and :class:`Regime`)."""
    method = regime.targeted.method
    if method not in method_names:
        raise ConfigError(f"{where}.method: unknown method {method!r}; choose one of: {', '.join(method_names)}")
    source = config.regime_source(regime)
    if source is not None and source.generate is None:
        raise ConfigError(f"{where}: a targeted regime generates its images as the rounds ask; source "
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
        raise ConfigError(validation_message(error, StudyConfig)) from None
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
        if source.get("retrieve"):
            source["retrieve"]["pool"] = _resolve_spec(source["retrieve"]["pool"], base)
            source["retrieve"]["by"] = "clip:" + _resolve_spec(source["retrieve"]["by"].removeprefix("clip:"), base)
        if source.get("generate") and source["generate"].get("dir"):
            directory = Path(source["generate"]["dir"])
            source["generate"]["dir"] = str(directory if directory.is_absolute() else (base / directory).resolve())
    for entry in data["ood"]:
        if entry.get("data"):
            entry["data"] = _resolve_spec(entry["data"], base)
    if data.get("cache_dir") and not Path(data["cache_dir"]).is_absolute():
        data["cache_dir"] = str((base / data["cache_dir"]).resolve())
    return StudyConfig.model_validate(
        {
            **data,
            "execution": config.execution.model_dump(mode="json"),
            "tracking": config.tracking.model_dump(mode="json"),
        }
    )


def config_to_dict(config: StudyConfig) -> dict[str, Any]:
    """The config as plain data (what ``config.resolved.yaml`` holds); ``execution`` and
    ``tracking`` are left out: where the units ran and where they were logged do not change
    the study, so a run resumes under other settings."""
    return config.model_dump(mode="json", exclude={"execution", "tracking"})
