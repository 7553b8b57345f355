"""The contract every uncertainty method follows, and saving/loading methods.

A method is a scikit-learn-style estimator:

- ``__init__`` only stores keyword hyper-parameters (the common ones below, plus the
  method's own); :meth:`UncertaintyMethod.get_params` returns them all;
- ``fit(train, val=None)`` validates, trains and returns ``self``; learned state ends in
  ``_`` (``classes_``, ``backbone_``, ``model_``, ``history_``, ...);
- ``predict_proba(data)`` returns probability samples ``(S, N, C)`` float32 (S = 1 for a
  deterministic network), the one structure :mod:`synthaug.metrics` reads;
- ``save(directory)`` writes ``weights.safetensors`` + ``config.json`` and
  :func:`load_method` rebuilds any saved method from them, without pickle.

Writing a method (``bnn.py``, ``laplace.py``, ... follow this recipe):

1. Subclass :class:`UncertaintyMethod` and decorate it with ``@register_method("key")``.
2. ``__init__(self, *, own_option=default, **common)``: store the method's own options as
   attributes of the same name, pass ``**common`` to ``super().__init__``.
3. Implement :meth:`~UncertaintyMethod._init_state` (build untrained learned modules from
   ``self.classes_`` and ``self.backbone_``), :meth:`~UncertaintyMethod._fit_prepared`
   (train them on :class:`~synthaug.methods.training.PreparedData`, usually with
   :func:`~synthaug.methods.training.train_model` and :meth:`~UncertaintyMethod.training_config`)
   and :meth:`~UncertaintyMethod._predict_log_proba` (``(N, ...)`` inputs -> ``(S, N, C)``
   log-probabilities).
4. A post-hoc method (one that fits something on top of another method's trained model,
   like ``temperature`` and ``laplace``) overrides :meth:`~UncertaintyMethod._make_base`
   and :meth:`~UncertaintyMethod._fit_from_base`, so that :meth:`~UncertaintyMethod.fit_from`
   can start from a base model fitted earlier (a study trains it once for both units).
5. If the learned state is not exactly ``self.model_``'s ``state_dict``, override
   :meth:`~UncertaintyMethod._state_tensors` / :meth:`~UncertaintyMethod._load_state_tensors`
   (tensors) and :meth:`~UncertaintyMethod._json_state` /
   :meth:`~UncertaintyMethod._load_json_state` (small JSON-able values).

The contract test (``tests/methods/test_contract.py``) runs every registered method through
the same checks.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import safetensors.torch
import torch

import synthaug
from synthaug.data.augment import parse_augment
from synthaug.data.loader import PixelBatches
from synthaug.errors import ConfigError, DataError
from synthaug.methods.training import (
    PreparedData,
    TrainingConfig,
    TrainingHistory,
    seeded,
)
from synthaug.models import Backbone, make_backbone
from synthaug.models.base import CLASSIC_RECIPE
from synthaug.progress import ProgressCallback
from synthaug.registry import Registry, did_you_mean
from synthaug.runtime import pick_device

if TYPE_CHECKING:
    from synthaug.data import ImageDataset

METHODS: Registry[type[UncertaintyMethod]] = Registry("method")
"""Uncertainty method classes by key (``deterministic``, ``temperature``, ``mc-dropout``, ...)."""

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

# Hyper-parameters that belong to the machine or session, not to the model: never saved.
RUNTIME_PARAMETERS = ("device", "progress", "num_workers")

M = TypeVar("M", bound="type[UncertaintyMethod]")
Self = TypeVar("Self", bound="UncertaintyMethod")


@dataclass(frozen=True)
class PosthocBase:
    """The fitted model a post-hoc method starts from, named as a study unit would name it.

    A study unit of method ``key`` with hyper-parameters ``params`` (and the post-hoc unit's
    data, seed and backbone) trains exactly the model the post-hoc method would train first,
    so its cached model can be passed to :meth:`UncertaintyMethod.fit_from`.
    """

    key: str  # registry key of the base method, e.g. "deterministic"
    params: dict[str, Any]  # its hyper-parameters, as a unit's configuration lists them


def register_method(key: str) -> Callable[[M], M]:
    """Class decorator: register a method under ``key`` and set its ``key`` attribute."""

    def decorator(cls: M) -> M:
        cls.key = key
        return METHODS.register(key)(cls)

    return decorator


class UncertaintyMethod(ABC):
    """Base class of every uncertainty method (see the module docstring for the recipe).

    Args:
        backbone: Backbone name (``"cnn"``, or a torchvision model such as ``"resnet152"``).
        backbone_options: Keyword options of the backbone (see :func:`synthaug.models.make_backbone`).
        dropout: Dropout probability of the trainable module; ``None`` = the backbone's default.
        epochs: Passes over the training set; ``None``: 15, or more on a small set so that
            training makes at least ``min_steps`` optimiser steps (see
            :meth:`~synthaug.methods.training.TrainingConfig.schedule`).
        min_steps: Least optimiser steps when ``epochs`` is ``None``.
        max_steps: Train exactly this many optimiser steps (fewer if early stopping
            triggers), whatever the training set's size, instead of ``epochs`` / ``min_steps``:
            the equal budget for comparing sets of different sizes (Hugging Face
            ``Trainer``'s ``max_steps``).
        batch_size: Examples per gradient step.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``; ``None``: the backbone's
            (:meth:`~synthaug.models.Backbone.training_defaults`: ``"adam"`` from scratch or
            for a head on features, ``"adamw"`` to fine-tune a pretrained network).
        learning_rate: Initial learning rate; ``None``: the backbone's
            :attr:`~synthaug.models.Backbone.default_learning_rate` (1e-3 for the ``cnn``,
            1e-2 for a head on frozen features, where 1e-3 leaves a linear head short of
            convergence after hundreds of steps).
        weight_decay: L2 penalty (adam, sgd) or decoupled weight decay (adamw); ``None``: the
            backbone's (0, or 0.05 to fine-tune).
        momentum: SGD momentum (Nesterov).
        lr_schedule: ``"cosine"``, ``"step"`` or ``"constant"``.
        patience: Early-stopping patience in epochs on the validation NLL; ``None`` = never.
        label_smoothing: Label smoothing of the cross-entropy.
        loss: ``"cross_entropy"`` or ``"generalized_cross_entropy"`` (noise-robust).
        gce_q: ``q`` of the generalized cross-entropy ``(1 - p_y^q) / q`` (Zhang & Sabuncu
            2018): ``q -> 0`` is the cross-entropy, ``q = 1`` the (most robust, slowest to
            train) mean absolute error.
        weighted_sampling: Draw training examples with replacement in proportion to their
            sample weights instead of weighting their losses (each batch then mixes real and
            synthetic images in the weights' proportions; Trabucco et al. 2024).
        augment: Classical augmentation of the training images: ``None``/``"none"``, a policy
            name (``"flip-crop"``, ``"randaugment"``, ``"trivialaugment"``, ``"autoaugment"``,
            ``"augmix"``, batch-level ``"mixup"``/``"cutmix"``), ``{name: ..., option: value}``
            or a list of those (see :mod:`synthaug.data.augment`). Drawn afresh each epoch from
            ``(seed, epoch, example)``. Off by default: which transforms keep a label is the
            user's call (a flip is wrong for digits).
        augment_views: For a frozen backbone (cached features): extract and cache this many
            augmented views of each image, one drawn per epoch; augmenting a frozen backbone
            needs it (0: none).
        num_workers: DataLoader worker processes that decode and augment images when they are
            streamed (files, large sets); ``None``: half of this process's share of the cores,
            0 for small sets (:func:`synthaug.data.loader.default_num_workers`). Does not
            change the numbers, so it is not saved with the model.
        warmup_fraction: Share of the optimiser steps with a linear learning-rate warm-up
            before the cosine decay; ``None``: the backbone's (0, or 0.05 to fine-tune).
        backbone_lr_scale: Learning-rate factor of every layer but the output layer (a
            pretrained body learns slower than the new head); ``None``: 1, or 0.1 to fine-tune.
        gradient_clip_norm: Clip the gradient's L2 norm to this (0: off); ``None``: 0, or 1 to
            fine-tune.
        ema_decay: Train with an exponential moving average of the weights (Polyak averaging,
            e.g. 0.999) and keep it (0: off); ``None``: the backbone's (off).
        accumulation_steps: Batches whose gradients add up to one optimiser step (a large
            effective batch on a small GPU).
        mixed_precision: bf16 autocast on CUDA; ``None``: on to fine-tune, else off.
        channels_last: Channels-last tensors on CUDA (faster convolutions with bf16); ``None``:
            on to fine-tune, else off.
        compile: Compile the training forward pass with ``torch.compile``.
        val_fraction: When ``fit`` gets no validation set, this stratified fraction of the
            training set (drawn with ``seed``) is held out for early stopping and calibration.
        seed: Seeds initialisation, batch order, dropout and the validation split.
        device: ``None`` picks CUDA when present, else MPS, else CPU.
        progress: Called with progress events of feature extraction and training (the CLI
            draws them); ``None`` reports nothing.
    """

    #: Registry key, set by :func:`register_method`.
    key: ClassVar[str]
    #: Predict under ``torch.inference_mode()`` (faster than ``no_grad``); ``False`` for a
    #: method whose prediction needs autograd (e.g. Jacobians), which then runs under ``no_grad``.
    _inference_mode: ClassVar[bool] = True
    #: Whether the method recalibrates another method's predictions after training (its point
    #: is calibration, not accuracy: a study's headline reports its ECE).
    recalibrates: ClassVar[bool] = False

    def __init__(
        self,
        *,
        backbone: str = "cnn",
        backbone_options: dict[str, Any] | None = None,
        dropout: float | None = None,
        epochs: int | None = None,
        min_steps: int = 500,
        max_steps: int | None = None,
        batch_size: int = 128,
        optimizer: str | None = None,
        learning_rate: float | None = None,
        weight_decay: float | None = None,
        momentum: float = 0.9,
        lr_schedule: str = "cosine",
        patience: int | None = 5,
        label_smoothing: float = 0.0,
        loss: str = "cross_entropy",
        gce_q: float = 0.7,
        weighted_sampling: bool = False,
        augment: Any = None,
        augment_views: int = 0,
        num_workers: int | None = None,
        warmup_fraction: float | None = None,
        backbone_lr_scale: float | None = None,
        gradient_clip_norm: float | None = None,
        ema_decay: float | None = None,
        accumulation_steps: int = 1,
        mixed_precision: bool | None = None,
        channels_last: bool | None = None,
        compile: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
        device: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.backbone = backbone
        self.backbone_options = backbone_options
        self.dropout = dropout
        self.epochs = epochs
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.lr_schedule = lr_schedule
        self.patience = patience
        self.label_smoothing = label_smoothing
        self.loss = loss
        self.gce_q = gce_q
        self.weighted_sampling = weighted_sampling
        self.augment = augment
        self.augment_views = augment_views
        self.num_workers = num_workers
        self.warmup_fraction = warmup_fraction
        self.backbone_lr_scale = backbone_lr_scale
        self.gradient_clip_norm = gradient_clip_norm
        self.ema_decay = ema_decay
        self.accumulation_steps = accumulation_steps
        self.mixed_precision = mixed_precision
        self.channels_last = channels_last
        self.compile = compile
        self.val_fraction = val_fraction
        self.seed = seed
        self.device = device
        self.progress = progress

    # -- hyper-parameters --------------------------------------------------------------------

    @classmethod
    def parameter_names(cls) -> list[str]:
        """Names of all keyword hyper-parameters, from this class's and its bases' ``__init__``."""
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for parameter in inspect.signature(init).parameters.values():
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.name not in names:
                    names.append(parameter.name)
        return names

    @classmethod
    def common_parameter_names(cls) -> list[str]:
        """Hyper-parameters every method shares (those of :class:`UncertaintyMethod`)."""
        return UncertaintyMethod.parameter_names()

    def get_params(self) -> dict[str, Any]:
        """All hyper-parameters, as passed to (or defaulted by) ``__init__``."""
        return {name: getattr(self, name) for name in self.parameter_names()}

    def training_config(self) -> TrainingConfig:
        """The :class:`TrainingConfig` made of this method's hyper-parameters (validated); those
        left at ``None`` take the backbone's values (its default learning rate and
        :meth:`~synthaug.models.Backbone.training_defaults`: the fine-tuning recipe for an
        unfrozen pretrained network, the classic one otherwise)."""
        backbone = self._backbone()
        defaults = {**CLASSIC_RECIPE, **backbone.training_defaults()}
        recipe = {
            name: defaults[name] if getattr(self, name) is None else getattr(self, name) for name in CLASSIC_RECIPE
        }
        learning_rate = self.learning_rate
        if learning_rate is None:
            learning_rate = backbone.default_learning_rate
        return TrainingConfig(
            epochs=self.epochs,
            min_steps=self.min_steps,
            max_steps=self.max_steps,
            batch_size=self.batch_size,
            learning_rate=learning_rate,
            momentum=self.momentum,
            lr_schedule=self.lr_schedule,
            patience=self.patience,
            label_smoothing=self.label_smoothing,
            loss=self.loss,
            gce_q=self.gce_q,
            weighted_sampling=self.weighted_sampling,
            augment=self.augment,
            accumulation_steps=self.accumulation_steps,
            compile=self.compile,
            **recipe,
        )

    def _check_augment(self) -> None:
        """Refuse augmentation a frozen backbone cannot apply (one-line :class:`ConfigError`)."""
        augmentation = parse_augment(self.augment)
        if self.augment_views < 0:
            raise ConfigError(f"augment_views must be >= 0, got {self.augment_views}")
        if self._backbone().trains_on_pixels:
            if self.augment_views:
                raise ConfigError(
                    f"augment_views={self.augment_views} caches views of frozen features, but backbone "
                    f"{self.backbone!r} trains on pixels and augments them every epoch; drop augment_views"
                )
            return
        if augmentation.batch_steps:
            raise ConfigError(
                f"augment: mixup/cutmix mix pixels, which a frozen backbone ({self.backbone!r}) never trains on; "
                "fine-tune it (backbone_options: {freeze: false}) or drop them"
            )
        if augmentation.example_steps and self.augment_views < 1:
            raise ConfigError(
                f"augment on a frozen backbone ({self.backbone!r}) needs augment_views: K (K augmented views of "
                "each image are cached and each epoch draws one); set augment_views, e.g. 4, or augment: none"
            )
        if augmentation.example_steps and not hasattr(self._backbone(), "prepare_views"):
            raise ConfigError(f"backbone {self.backbone!r} cannot cache augmented views; set augment: none")

    def _backbone(self) -> Backbone:
        """The fitted backbone, or (before ``fit``) the one ``fit`` will build; cheap either way."""
        backbone = getattr(self, "backbone_", None)
        return backbone if backbone is not None else make_backbone(self.backbone, **(self.backbone_options or {}))

    def torch_device(self) -> torch.device:
        """The device training and prediction run on."""
        return pick_device(self.device)

    def __repr__(self) -> str:
        defaults = {
            name: parameter.default
            for klass in type(self).__mro__
            if "__init__" in klass.__dict__ and klass is not object
            for name, parameter in inspect.signature(klass.__dict__["__init__"]).parameters.items()
        }
        # The progress callback is the session's, not the model's: it has no place in its repr.
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if defaults.get(k) != v and k != "progress"]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- fit / predict -------------------------------------------------------------------------

    def fit(self, train: ImageDataset, val: ImageDataset | None = None) -> UncertaintyMethod:
        """Train on ``train``; early-stop (and calibrate, where the method does) on ``val``.

        Args:
            train: Training images; ``train.sample_weights`` ``(N,)``, when present, weights
                each example's loss (mixed real + synthetic sets).
            val: Held-out images; ``None`` holds out a stratified ``val_fraction`` of
                ``train`` drawn with ``seed``. Its classes are matched to ``train``'s by name.

        Returns:
            ``self``, fitted.
        """
        train, val = self._split(train, val)
        self.classes_ = list(train.classes)
        self.backbone_ = make_backbone(self.backbone, **(self.backbone_options or {}))
        train_data = self._prepare(train, training=True)
        val_data = self._prepare(val, reread=True)
        with seeded(self.seed):
            self._init_state()
        self._fit_prepared(train_data, val_data)
        return self

    def fit_from(self: Self, base: UncertaintyMethod, train: ImageDataset, val: ImageDataset | None = None) -> Self:
        """Fit a post-hoc method on top of ``base``, a fitted model it would otherwise train first.

        The result is the same as :meth:`fit` on the same data (same numbers, since ``fit``
        trains the base with the same seed) without training the base again: a study with
        ``deterministic`` and ``temperature`` units trains one network for both.
        ``base`` is used as it is, not copied.

        Args:
            base: A fitted method of the class and hyper-parameters :meth:`_make_base` names
                (``device`` and ``progress`` may differ).
            train: The images ``base`` was trained on.
            val: Its validation images (``None``: the same split ``fit`` would hold out).

        Returns:
            ``self``, fitted.

        Raises:
            ConfigError: This method does not start from a base model, or ``base`` is not
                the one it needs (the message names the first differing hyper-parameter).
        """
        expected = self._make_base()
        if expected is None:
            raise ConfigError(f"{self.key} does not start from another method's model; call fit() instead")
        base._check_fitted()
        wanted = {k: v for k, v in expected.get_params().items() if k not in RUNTIME_PARAMETERS}
        given = {k: v for k, v in base.get_params().items() if k not in RUNTIME_PARAMETERS}
        if type(base) is not type(expected):
            raise ConfigError(f"{self.key}: fit_from needs a fitted {expected.key!r} model, got {base.key!r}")
        differing = next((k for k in wanted if wanted[k] != given.get(k)), None)
        if differing is not None:
            raise ConfigError(
                f"{self.key}: the given {base.key} model has {differing}={given.get(differing)!r} but this "
                f"method needs {differing}={wanted[differing]!r}; pass a matching model or call fit()"
            )
        train, val = self._split(train, val)
        if list(train.classes) != list(base.classes_):
            raise DataError(
                f"{self.key}: training set {train.name!r} has classes {list(train.classes)} but the "
                f"{base.key} model was fitted on {list(base.classes_)}; pass the set it was trained on"
            )
        self.classes_ = list(base.classes_)
        self.backbone_ = base.backbone_
        train_data = self._prepare(train, training=True)
        val_data = self._prepare(val, reread=True)
        with seeded(self.seed):
            self._init_state()  # validates this method's options; the base's modules replace its own
        self._fit_from_base(base, train_data, val_data)
        return self

    @classmethod
    def posthoc_base(cls, params: Mapping[str, Any]) -> PosthocBase | None:
        """The base model a unit of this method with hyper-parameters ``params`` starts from.

        ``None`` for a method that trains from scratch, and for a base whose hyper-parameters
        cannot be named from ``params`` alone (e.g. a ``bnn`` base, whose own ``dropout``
        default differs from the one a post-hoc method passes on).

        Args:
            params: The unit's hyper-parameters as configured (without ``seed``, ``device``,
                ``progress``).

        Returns:
            The base's key and hyper-parameters as its own unit would list them: ``params``
            restricted to the common hyper-parameters, plus the base's own options.
        """
        method = make_method(cls.key, **params)
        base = method._make_base()
        if base is None:
            return None
        common = set(cls.common_parameter_names()) - set(RUNTIME_PARAMETERS)
        base_params = {k: v for k, v in params.items() if k in common} | method._base_options()
        named = make_method(base.key, **base_params)
        if named.get_params() != base.get_params():
            return None
        return PosthocBase(key=base.key, params=base_params)

    def _make_base(self) -> UncertaintyMethod | None:
        """For a post-hoc method: the unfitted method whose trained model it starts from.

        ``fit`` trains that model itself (with this method's seed); :meth:`fit_from` takes it
        ready-made. ``None`` (the default): the method trains from scratch.
        """
        return None

    def _base_options(self) -> dict[str, Any]:
        """The base's own (non-common) hyper-parameters that this method sets, for :meth:`posthoc_base`."""
        return {}

    def _fit_from_base(self, base: UncertaintyMethod, train: PreparedData, val: PreparedData) -> None:
        """Finish fitting from ``base`` (checked by :meth:`fit_from`) on prepared tensors."""
        raise ConfigError(f"{self.key} does not start from another method's model; call fit() instead")

    def _split(self, train: ImageDataset, val: ImageDataset | None) -> tuple[ImageDataset, ImageDataset]:
        """``(train, val)``: ``val`` with ``train``'s classes, or a held-out ``val_fraction`` of ``train``."""
        from synthaug.data import train_val_split

        self.training_config()  # validates the optimisation hyper-parameters before any work
        self._check_augment()
        if val is None:
            if not 0.0 < self.val_fraction < 1.0:
                raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
            train, val = train_val_split(train, self.val_fraction, self.seed)
        else:
            val = val.with_classes(list(train.classes))
        if len(train.classes) < 2:
            raise DataError(f"training set {train.name!r} has {len(train.classes)} class; need at least 2")
        return train, val

    def _prepare(self, dataset: ImageDataset, *, training: bool = False, reread: bool = False) -> PreparedData:
        """The set as the trainable module reads it; which path is taken, and why:

        - a backbone trained from pixels (``cnn``, a fine-tuned network) that can decode one
          image (:meth:`~synthaug.models.Backbone.pixel_decoder`): uint8 pixel batches, from
          one in-memory tensor for a small array-backed set (Fashion-MNIST, digits: indexing
          beats decoding) or a small set of files read many times (decoded once), or streamed
          through DataLoader workers otherwise (large sets: memory does not grow with N);
          normalised on the device; augmented per example when ``training``;
        - otherwise :meth:`~synthaug.models.Backbone.prepare`'s tensor (a frozen network's
          cached features, small), plus ``augment_views`` cached augmented views when training.

        Args:
            dataset: The images.
            training: The training set (augmented; carries the sample weights; read every epoch).
            reread: Read many times (the validation set, scored every epoch).
        """
        backbone = self.backbone_
        targets = torch.from_numpy(np.array(dataset.targets, dtype=np.int64))
        weights = getattr(dataset, "sample_weights", None) if training else None
        if weights is not None and np.all(np.asarray(weights) == 1.0):
            weights = None  # uniform weights: the plain mean loss, without the extra product
        sample_weights = None if weights is None else torch.from_numpy(np.array(weights, dtype=np.float32))
        augmentation = parse_augment(self.augment) if training else parse_augment(None)
        decoder = backbone.pixel_decoder() if backbone.trains_on_pixels else None
        if decoder is not None:
            pixels = PixelBatches(
                dataset,
                decoder,
                in_memory_array=backbone.pixel_array(),
                augmenter=augmentation.example_augmenter(),
                num_workers=self.num_workers,
                pin_memory=self.torch_device().type == "cuda",
                reread=training or reread,
            )
            return PreparedData(None, targets, sample_weights, pixels=pixels, normalize=backbone.normalize_pixels)
        inputs = backbone.prepare(dataset, progress=self.progress)
        views = None
        if augmentation.example_steps:
            views = backbone.prepare_views(dataset, augmentation, self.augment_views, progress=self.progress)
        return PreparedData(inputs, targets, sample_weights, views=views)

    def predict_proba(self, data: ImageDataset | torch.Tensor) -> np.ndarray:
        """Predictive probability samples.

        Stochastic methods draw their samples from a generator seeded with ``seed``, so
        repeated calls give the same numbers. Images stream through the same loader as in
        training (:meth:`_prepare`), :data:`~synthaug.methods.training.PREDICT_BATCH` at a time.

        Args:
            data: Images, or inputs already prepared by ``self.backbone_`` ``(N, ...)``.

        Returns:
            float32 ``(S, N, C)``: S samples (S = 1 for a deterministic network), N examples,
            C = ``len(self.classes_)``; each row sums to 1.
        """
        self._check_fitted()
        if isinstance(data, torch.Tensor):
            if not torch.isfinite(data).all():
                raise DataError("prediction inputs contain NaN or infinite values; check the images")
            prepared = PreparedData(data.float(), torch.zeros(len(data), dtype=torch.int64))
        else:
            prepared = self._prepare(data)
            if prepared.inputs is not None and not torch.isfinite(prepared.inputs).all():
                raise DataError("prediction inputs contain NaN or infinite values; check the images")
        return self._predict_prepared(prepared).float().exp().cpu().numpy()

    def _predict_prepared(self, data: PreparedData) -> torch.Tensor:
        """``(S, N, C)`` log-probabilities of a prepared set, batch by batch (seeded, grad off)."""
        grad_off = torch.inference_mode() if self._inference_mode else torch.no_grad()
        with seeded(self.seed), grad_off:
            return torch.cat([self._predict_log_proba(inputs) for inputs in data.in_order(self.torch_device())], dim=1)

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit() or load_method()")

    @abstractmethod
    def _init_state(self) -> None:
        """Build the untrained learned modules from ``classes_`` and ``backbone_``.

        Called under a seeded global generator by ``fit``, and by :func:`load_method` before
        the saved tensors are loaded into the modules.
        """

    @abstractmethod
    def _fit_prepared(self, train: PreparedData, val: PreparedData) -> None:
        """Train the modules built by :meth:`_init_state` on prepared tensors."""

    @abstractmethod
    def _predict_log_proba(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(N, ...)`` prepared inputs -> ``(S, N, C)`` log-probabilities (CPU or device).

        Runs inside ``torch.inference_mode()`` (``no_grad`` where ``_inference_mode`` is
        ``False``) and a seeded global generator.
        """

    # -- saving -------------------------------------------------------------------------------

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        """The learned tensors to save; by default ``self.model_.state_dict()``."""
        return dict(self.model_.state_dict())

    def _load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load tensors written by :meth:`_state_tensors` into the modules of :meth:`_init_state`."""
        self.model_.load_state_dict(tensors)
        self.model_.to(self.torch_device())

    def _json_state(self) -> dict[str, Any]:
        """Small learned values saved in ``config.json`` (by default the training history)."""
        history = getattr(self, "history_", None)
        return {} if history is None else {"history": history.to_dict()}

    def _load_json_state(self, state: dict[str, Any]) -> None:
        if "history" in state:
            self.history_ = TrainingHistory(**state["history"])

    # -- what fit learned ---------------------------------------------------------------------

    def training_histories(self) -> list[TrainingHistory]:
        """The history of each network this method trained (one per ensemble member; empty
        before ``fit``)."""
        history = getattr(self, "history_", None)
        return [] if history is None else [history]

    def fitted_summary(self) -> dict[str, float]:
        """Learned scalars worth reporting after ``fit`` (e.g. ``{"temperature": 1.3}``); none by default."""
        return {}

    def save(self, directory: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``weights.safetensors`` and ``config.json`` into ``directory``.

        ``config.json`` holds the method key, hyper-parameters (without ``device`` and
        ``progress``), classes, backbone config, learned JSON state and synthaug version.

        Args:
            directory: Created if needed.
            overwrite: Replace a model already saved there (refused by default).

        Returns:
            The directory.
        """
        self._check_fitted()
        directory = Path(directory)
        if (directory / CONFIG_FILE).exists() and not overwrite:
            raise ConfigError(f"{directory} already holds a saved model; choose another directory")
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self._state_tensors().items()}
        safetensors.torch.save_file(tensors, directory / WEIGHTS_FILE)
        config = {
            "method": self.key,
            "hyperparameters": {k: v for k, v in self.get_params().items() if k not in RUNTIME_PARAMETERS},
            "classes": self.classes_,
            "backbone": self.backbone_.get_config(),
            "state": self._json_state(),
            "synthaug_version": synthaug.__version__,
            "torch_version": torch.__version__,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2, allow_nan=True) + "\n")
        return directory


def make_method(key: str, **hyperparameters: Any) -> UncertaintyMethod:
    """Build an (unfitted) method by key.

    Args:
        key: One of ``METHODS.keys()``.
        **hyperparameters: Keyword hyper-parameters of that method.

    Raises:
        ConfigError: Unknown key or hyper-parameter.
    """
    method_class = METHODS.get(key)
    names = method_class.parameter_names()
    unknown = sorted(set(hyperparameters) - set(names))
    if unknown:
        hints = [did_you_mean(name, names) for name in unknown]
        if all(hints):  # near misses: the suggestions say it, without the whole list
            listed = ", ".join(f"{name}{hint}" for name, hint in zip(unknown, hints, strict=True))
            raise ConfigError(f"method {key!r} has no hyper-parameter {listed}")
        raise ConfigError(f"method {key!r} has no hyper-parameter {', '.join(unknown)}; it accepts: {', '.join(names)}")
    return method_class(**hyperparameters)


def load_method(
    directory: str | Path, *, device: str | None = None, progress: ProgressCallback | None = None
) -> UncertaintyMethod:
    """Load a method written by :meth:`UncertaintyMethod.save` (no pickle involved).

    Args:
        directory: The saved model directory.
        device: Where to run it; ``None`` picks CUDA when present.
        progress: Called with progress events when it prepares inputs.

    Raises:
        ConfigError: The directory is not a saved synthaug model.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise ConfigError(
            f"{directory} is not a saved model: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            "(write one with `synthaug train`)"
        )
    try:
        config = json.loads(config_path.read_text())
        key, hyperparameters = config["method"], config["hyperparameters"]
        classes, backbone_config = config["classes"], dict(config["backbone"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ConfigError(f"{config_path} is not a valid synthaug model config: {error}") from error
    method = make_method(key, **hyperparameters, device=device, progress=progress)
    method.classes_ = list(classes)
    method.backbone_ = make_backbone(backbone_config.pop("name"), **backbone_config)
    method._init_state()
    method._load_state_tensors(safetensors.torch.load_file(weights_path))
    method._load_json_state(config.get("state", {}))
    return method
