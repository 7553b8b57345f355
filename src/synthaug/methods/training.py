"""The one training loop every uncertainty method uses.

Mini-batch gradient descent on prepared inputs (see :mod:`synthaug.models.base`) — a tensor
in memory, or pixel batches streamed by DataLoader workers and augmented per example
(:class:`PreparedData`, :mod:`synthaug.data.loader`, :mod:`synthaug.data.augment`), mixed by
MixUp / CutMix into soft targets when asked — with
cross-entropy (optionally label-smoothed) or the generalized cross-entropy, Adam/AdamW or SGD
with weight decay, an optional cosine or step learning-rate schedule, early stopping on the
validation NLL with the best weights restored (and a flag when it was still falling at the
end: :attr:`TrainingHistory.under_trained`), the fine-tuning recipe's pieces (linear warm-up,
a slower pretrained body, gradient clipping and accumulation, an EMA of the weights, bf16
autocast and channels-last on CUDA, ``torch.compile``), progress events per epoch (see
:mod:`synthaug.progress`), and a clear :class:`~synthaug.errors.TrainingError` as soon as the
loss is NaN or infinite.

Small training sets: an epoch count alone is a poor default, because 100 images at batch 128
give one optimiser step per epoch and 15 epochs leave a head on frozen features at chance.
Unless ``epochs`` is set, training runs :data:`DEFAULT_EPOCHS` epochs or as many more as it
takes to make ``min_steps`` optimiser steps, with the early-stopping patience stretched by
the same factor (see :meth:`TrainingConfig.schedule`). ``max_steps`` (Hugging Face
``Trainer``'s name) instead trains exactly that many optimiser steps whatever the set's size:
the budget to compare training sets of different sizes on equal terms.

Reproducibility: batches are drawn by shuffling index tensors with a ``torch.Generator``
seeded from ``seed``, and dropout draws from torch's global generator, which :func:`seeded`
forks and seeds, so the same seed gives the same numbers on CPU and the caller's global
random state is left untouched.

Hooks for methods that need more than maximum likelihood:

- ``extra_loss(model, n_train) -> Tensor`` is added to every mini-batch loss (Bayes by
  Backprop adds ``KL(q || p) / n_train`` here, so the sum over an epoch is the ELBO's);
- per-example weights (``PreparedData.sample_weights``, e.g. from mixing real and synthetic
  sets) weight each example's loss; they are rescaled to mean 1 so the loss keeps its scale;
- ``validation_log_proba(model, inputs) -> (N, C)`` replaces the plain softmax of the eval-mode
  logits when scoring the validation set (e.g. to average several weight samples).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthaug.data.augment import example_keys, parse_augment
from synthaug.data.loader import NO_AUGMENTATION, PixelBatches, sequential_batches
from synthaug.errors import ConfigError, TrainingError
from synthaug.progress import ProgressCallback, report
from synthaug.runtime import pick_device

ExtraLoss = Callable[[nn.Module, int], torch.Tensor]
"""``extra_loss(model, n_train)``: a scalar added to each mini-batch's mean loss."""

ValidationLogProba = Callable[[nn.Module, torch.Tensor], torch.Tensor]
"""``validation_log_proba(model, inputs (B, ...)) -> (B, C)`` predictive log-probabilities of one batch."""


PREDICT_BATCH = 512
"""Examples per forward pass when validating and predicting."""


@dataclass
class PreparedData:
    """One set's model inputs (in memory or streamed), labels and optional per-example weights.

    The inputs come one of three ways (see :meth:`UncertaintyMethod._prepare
    <synthaug.methods.base.UncertaintyMethod._prepare>` for which is taken when):

    - ``inputs``: float32 ``(N, ...)`` already prepared by a backbone (features of a frozen
      network, or any tensor a caller passes);
    - ``pixels``: uint8 pixel batches (:class:`~synthaug.data.loader.PixelBatches`, from one
      in-memory tensor or streamed by DataLoader workers, augmented per epoch), which
      ``normalize`` turns into model inputs on the device;
    - ``views``: ``(K, N, ...)`` features of K augmented views of each image (a frozen
      backbone with ``augment_views``); each training epoch draws one view per example from
      ``(seed, epoch, index)``, evaluation reads ``inputs`` (the un-augmented features).

    Attributes:
        inputs: float32 ``(N, ...)`` model inputs, or ``None`` when ``pixels`` is given.
        targets: int64 ``(N,)`` class indices (CPU).
        sample_weights: float32 ``(N,)`` non-negative loss weights, or ``None`` (all equal).
        pixels: Pixel batches of the set, or ``None``.
        normalize: uint8 ``(B, C, H, W)`` on the device -> float32 model inputs (with ``pixels``).
        views: ``(K, N, ...)`` augmented feature views, or ``None``.
    """

    inputs: torch.Tensor | None
    targets: torch.Tensor
    sample_weights: torch.Tensor | None = None
    pixels: PixelBatches | None = None
    normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
    views: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def batches(
        self, batches: Sequence[torch.Tensor], device: torch.device | str, epoch: int = NO_AUGMENTATION, seed: int = 0
    ) -> Iterator[torch.Tensor]:
        """Model inputs on ``device`` for each index tensor of ``batches``.

        ``epoch >= 0`` draws that epoch's augmentation (training), a function of ``(seed,
        epoch, index)``; :data:`NO_AUGMENTATION` gives the plain inputs (validation, prediction).
        """
        if self.pixels is not None:
            for pixels in self.pixels.batches(batches, epoch, seed):
                yield self.normalize(channels_last(pixels.to(device, non_blocking=True)))
        elif self.views is not None and epoch != NO_AUGMENTATION:
            for index in batches:
                view = example_keys(seed, epoch, index.numpy()) % np.uint64(len(self.views))
                yield self.views[torch.from_numpy(view.astype(np.int64)), index].to(device, non_blocking=True)
        else:
            for index in batches:
                yield self.inputs[index].to(device, non_blocking=True)

    def in_order(self, device: torch.device | str, batch_size: int = PREDICT_BATCH) -> Iterator[torch.Tensor]:
        """The un-augmented model inputs on ``device``, in dataset order, ``batch_size`` at a time."""
        return self.batches(sequential_batches(len(self), batch_size), device)

    def loader(self, device: torch.device | str, batch_size: int) -> PreparedLoader:
        """An iterable of ``(inputs, targets)`` batches in order, as laplace-torch's ``fit`` reads."""
        return PreparedLoader(self, device, batch_size)


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """A copy of ``(B, C, H, W)`` images with canonical channels-last (NHWC) strides.

    Every pixel batch goes through here so that every path gives the same numbers: backward
    passes (oneDNN on a CPU) depend on the layout they pick from the strides, and with one
    channel both NCHW and NHWC strides pass as "contiguous" in either format
    (``Tensor.contiguous`` keeps them), so in-memory batches (NHWC, a permuted array) and
    streamed ones (NCHW, collated) trained different weights (2e-2 apart after 20 steps).
    The layout costs nothing measurable (``benchmarks/pixel_layout.py``).
    """
    out = torch.empty_like(images, memory_format=torch.channels_last)
    return out.copy_(images)


class PreparedLoader:
    """``(inputs, targets)`` batches of a :class:`PreparedData` in order, with ``.dataset``
    sized like the set: what laplace-torch's ``fit(train_loader)`` and gridsearch read."""

    def __init__(self, data: PreparedData, device: torch.device | str, batch_size: int) -> None:
        self.data, self.device, self.batch_size = data, device, batch_size
        self.dataset = range(len(data))  # only its length is read

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = sequential_batches(len(self.data), self.batch_size)
        for inputs, index in zip(self.data.batches(order, self.device), order):
            yield inputs, self.data.targets[index].to(self.device)

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)


DEFAULT_EPOCHS = 15
"""Epochs when ``TrainingConfig.epochs`` is not set and the training set is large enough."""


@dataclass(frozen=True)
class TrainingSchedule:
    """How long :func:`train_model` trains a given training set (see :meth:`TrainingConfig.schedule`)."""

    epochs: int  # passes over the training set at most
    steps_per_epoch: int  # batches per pass
    patience: int | None  # early-stopping patience in epochs
    optimizer_steps: int  # optimiser steps in all (the last pass is cut short to make exactly these)
    eval_every: int = 1  # validate after every this many epochs (and after the last)


@dataclass(frozen=True)
class TrainingConfig:
    """Optimisation settings shared by every method."""

    # Passes over the training set (fewer if early stopping triggers); None: DEFAULT_EPOCHS, or
    # more on a small set so that training makes at least `min_steps` optimiser steps.
    epochs: int | None = None
    min_steps: int = 500  # least optimiser steps when `epochs` is None (a head converges; see module doc)
    # Exactly this many optimiser steps (fewer if early stopping triggers), whatever the set's
    # size; instead of `epochs` / `min_steps`. The equal budget for comparing training sets.
    max_steps: int | None = None
    batch_size: int = 128  # examples per gradient step
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"  # adamw = decoupled weight decay
    learning_rate: float = 1e-3  # initial step size
    weight_decay: float = 0.0  # L2 penalty (adam, sgd) or decoupled decay (adamw)
    momentum: float = 0.9  # SGD only (Nesterov)
    lr_schedule: Literal["cosine", "step", "constant"] = "cosine"  # step: x0.1 at 50 % and 75 %
    patience: int | None = 5  # epochs without a better validation NLL before stopping; None: never
    label_smoothing: float = 0.0  # cross-entropy only (Szegedy et al. 2016)
    loss: Literal["cross_entropy", "generalized_cross_entropy"] = "cross_entropy"
    gce_q: float = 0.7  # q of the generalized cross-entropy (Zhang & Sabuncu 2018)
    # Draw each epoch's examples with replacement in proportion to the sample weights instead of
    # weighting their losses: the same objective in expectation, but every batch then mixes the
    # sets in the weights' proportions (DA-Fusion's per-batch synthetic probability).
    weighted_sampling: bool = False
    # Classical augmentation (synthaug.data.augment): only the batch-level part (mixup, cutmix)
    # acts here; the per-example part is applied where the pixels are read (PreparedData).
    augment: Any = None
    # The fine-tuning recipe (Kornblith et al. 2019; torchvision's reference recipe):
    warmup_fraction: float = 0.0  # share of the optimiser steps with a linear warm-up (cosine only)
    backbone_lr_scale: float = 1.0  # learning-rate factor of all but the output layer (a pretrained body)
    gradient_clip_norm: float = 0.0  # clip the gradient's global L2 norm to this; 0: no clipping
    ema_decay: float = 0.0  # keep an exponential moving average of the weights and use it; 0: off
    accumulation_steps: int = 1  # micro-batches per optimiser step (effective batch = this x batch_size)
    mixed_precision: bool = False  # bf16 autocast (CUDA only; ignored elsewhere)
    channels_last: bool = False  # channels-last memory format for 4-D inputs (CUDA only)
    compile: bool = False  # run the training forward pass through torch.compile

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs is None or self.epochs >= 1,
            "min_steps": self.min_steps >= 0,
            "max_steps": self.max_steps is None or self.max_steps >= 1,
            "batch_size": self.batch_size >= 1,
            "optimizer": self.optimizer in ("adam", "adamw", "sgd"),
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "lr_schedule": self.lr_schedule in ("cosine", "step", "constant"),
            "patience": self.patience is None or self.patience >= 1,
            "label_smoothing": 0.0 <= self.label_smoothing < 1.0,
            "loss": self.loss in ("cross_entropy", "generalized_cross_entropy"),
            "gce_q": 0.0 < self.gce_q <= 1.0,
            "warmup_fraction": 0.0 <= self.warmup_fraction < 1.0,
            "backbone_lr_scale": self.backbone_lr_scale >= 0,
            "gradient_clip_norm": self.gradient_clip_norm >= 0,
            "ema_decay": 0.0 <= self.ema_decay < 1.0,
            "accumulation_steps": self.accumulation_steps >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"invalid training setting {name}={getattr(self, name)!r}")
        if self.epochs is not None and self.max_steps is not None:
            raise ConfigError(
                f"epochs={self.epochs} and max_steps={self.max_steps} both set the training length; set one of them"
            )
        if self.loss == "generalized_cross_entropy" and self.label_smoothing > 0:
            raise ConfigError("label_smoothing applies to loss='cross_entropy' only; set one of them")
        if parse_augment(self.augment).batch_steps and self.loss == "generalized_cross_entropy":
            raise ConfigError(
                "augment: mixup/cutmix make soft targets, which loss='generalized_cross_entropy' does not "
                "take; use loss='cross_entropy' or drop mixup/cutmix"
            )

    def schedule(self, n_train: int) -> TrainingSchedule:
        """Epochs, batches per epoch, patience and optimiser steps for ``n_train`` examples.

        With ``epochs`` set, exactly that. With ``max_steps``, as many epochs as make that many
        optimiser steps (the last one cut short). Otherwise :data:`DEFAULT_EPOCHS` or enough
        epochs for ``min_steps`` optimiser steps, whichever is more. Without ``epochs`` the
        patience is scaled by ``epochs / DEFAULT_EPOCHS`` (at least 1), so early stopping waits
        for the same share of training whatever the number of epochs, and a run of many short
        epochs (a small set) is validated every ``epochs // DEFAULT_EPOCHS`` epochs, about
        :data:`DEFAULT_EPOCHS` times in all: 100 validations of 2-step epochs took longer
        than the training itself.
        """
        # BatchNorm cannot train on a batch of one, so a single trailing example is left out
        # of each epoch (a different one each epoch, as the order is reshuffled).
        steps_per_epoch = max(n_train // self.batch_size + int(n_train % self.batch_size > 1), 1)
        per_epoch = math.ceil(steps_per_epoch / self.accumulation_steps)  # optimiser steps per pass
        if self.epochs is not None:
            return TrainingSchedule(self.epochs, steps_per_epoch, self.patience, self.epochs * per_epoch)
        if self.max_steps is not None:
            epochs, optimizer_steps = math.ceil(self.max_steps / per_epoch), self.max_steps
        else:
            epochs = max(DEFAULT_EPOCHS, math.ceil(self.min_steps / per_epoch))
            optimizer_steps = epochs * per_epoch
        patience = None if self.patience is None else max(1, math.ceil(self.patience * epochs / DEFAULT_EPOCHS))
        return TrainingSchedule(epochs, steps_per_epoch, patience, optimizer_steps, max(1, epochs // DEFAULT_EPOCHS))


@dataclass
class TrainingHistory:
    """What happened during :func:`train_model`, one row per finished epoch."""

    epochs: list[dict[str, float]] = field(default_factory=list)  # epoch, train_loss, val_nll, ...
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (None: the last)
    stopped_early: bool = False
    seconds: float = 0.0  # wall time of the whole loop
    # The validation NLL was still falling at the last epoch (best epoch = last, down by more
    # than UNDER_TRAINED_GAIN over the last fifth of the validations, not stopped early): more
    # training would likely have helped, and a study flags the unit.
    under_trained: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generators seeded, restoring them afterwards.

    Model initialisation and dropout draw from the global generators; forking them keeps
    library calls reproducible without changing the caller's random state.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def generalized_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    """Per-example generalized cross-entropy ``(1 - p_y^q) / q``, robust to noisy labels.

    It tends to the cross-entropy as ``q -> 0`` and to the (noise-tolerant) mean absolute
    error at ``q = 1``.

    Args:
        logits: ``(N, C)``.
        targets: ``(N,)`` class indices.
        q: Truncation exponent in ``(0, 1]``.

    Returns:
        ``(N,)`` losses.

    References:
        Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks
        with Noisy Labels", NeurIPS 2018.
    """
    log_p_true = F.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1)
    # 1 - p^q = -expm1(q log p), without the cancellation of 1 - exp(...) for small q.
    return -torch.expm1(q * log_p_true) / q


def per_example_loss(logits: torch.Tensor, targets: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """The configured training loss of each example, ``(N, C)`` logits -> ``(N,)``.

    ``targets`` are class indices ``(N,)`` or probabilities ``(N, C)`` (MixUp / CutMix); the
    cross-entropy takes both (label smoothing included).
    """
    if config.loss == "generalized_cross_entropy":
        return generalized_cross_entropy(logits, targets, config.gce_q)
    return F.cross_entropy(logits, targets, reduction="none", label_smoothing=config.label_smoothing)


def _make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """The optimiser; with ``backbone_lr_scale != 1`` two parameter groups: the output layer
    (``model[-1]``, new) at the learning rate and the rest (a pretrained body) at the scaled one."""
    parameters: list[Any] = [p for p in model.parameters() if p.requires_grad]
    if config.backbone_lr_scale != 1.0 and isinstance(model, nn.Sequential) and len(model) > 1:
        head = {id(p) for p in model[-1].parameters()}
        parameters = [
            {
                "params": [p for p in parameters if id(p) not in head],
                "lr": config.learning_rate * config.backbone_lr_scale,
            },
            {"params": [p for p in parameters if id(p) in head]},
        ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=config.learning_rate,
            momentum=config.momentum,
            nesterov=config.momentum > 0,
            weight_decay=config.weight_decay,
        )
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return optimizer_class(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)


def _make_scheduler(optimizer: torch.optim.Optimizer, config: TrainingConfig, steps: int):
    """A per-step schedule over ``steps`` optimiser steps, or ``None`` for a constant rate.

    Cosine with ``warmup_fraction > 0`` rises linearly from ~0 for that share of the steps,
    then decays (Goyal et al. 2017; Loshchilov & Hutter 2017).
    """
    if config.lr_schedule == "cosine":
        warmup = round(config.warmup_fraction * steps)
        if warmup == 0:
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return torch.optim.lr_scheduler.SequentialLR(
            optimizer,
            [
                torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup),
                torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps - warmup, 1)),
            ],
            milestones=[warmup],
        )
    if config.lr_schedule == "step":
        milestones = [int(steps * 0.5), int(steps * 0.75)]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    return None


def set_dropout(model: nn.Module, active: bool) -> None:
    """Put only the dropout layers of ``model`` in train (``active``) or eval mode.

    MC dropout samples with dropout on while batch norm keeps its running statistics.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train(active)


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str | None = None,
    dropout: bool = False,
) -> torch.Tensor:
    """Logits of ``model`` on ``inputs`` in eval mode, batch by batch.

    Args:
        model: Maps ``(B, ...)`` inputs to ``(B, C)`` logits.
        inputs: ``(N, ...)`` prepared inputs (any device).
        batch_size: Examples per forward pass.
        device: Where to run; ``None`` uses the device of the model's parameters.
        dropout: Keep dropout layers on (one MC dropout sample).

    Returns:
        float32 CPU tensor ``(N, C)``.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    set_dropout(model, dropout)
    try:
        chunks = [model(batch.to(device)).float().cpu() for batch in inputs.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(chunks)


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` holds a dropout layer with a non-zero rate (one MC dropout can sample)."""
    return any(isinstance(module, nn.Dropout) and module.p > 0 for module in model.modules())


def sample_log_proba(
    model: nn.Sequential,
    inputs: torch.Tensor,
    num_samples: int,
    *,
    is_stochastic: Callable[[nn.Module], bool],
    device: torch.device | str | None = None,
    dropout: bool = False,
) -> torch.Tensor:
    """``(S, N, C)`` log-probabilities from ``num_samples`` stochastic forward passes.

    The leading layers of ``model`` that hold no stochastic module (``is_stochastic``) give
    the same output on every pass, so they run once and only the rest runs S times: the same
    numbers as S full passes (same batches, same random draws in the same order) at a
    fraction of the cost when the randomness sits in the last layers (MC dropout in the
    classifier head, a last-layer BNN).

    Args:
        model: The trainable module (a :class:`torch.nn.Sequential`, see ``synthaug.models``).
        inputs: ``(N, ...)`` prepared inputs.
        num_samples: S.
        is_stochastic: Whether a module draws random numbers in eval mode.
        device: Where to run; ``None`` uses the device of the model's parameters.
        dropout: Keep dropout layers on (MC dropout).
    """
    device = device if device is not None else next(model.parameters()).device
    first = next(
        (index for index, layer in enumerate(model) if any(is_stochastic(m) for m in layer.modules())), 0
    )
    was_training = model.training
    try:
        features = predict_logits(model[:first], inputs, device=device) if first else inputs
        head = model[first:]
        samples = [
            F.log_softmax(predict_logits(head, features, device=device, dropout=dropout), dim=-1)
            for _ in range(num_samples)
        ]
    finally:
        model.train(was_training)  # slices are new containers; restore the whole model's mode
    return torch.stack(samples)


def default_validation_log_proba(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``log_softmax`` of the eval-mode logits, ``(N, C)``."""
    return F.log_softmax(predict_logits(model, inputs), dim=-1)


def _check_finite(data: PreparedData, what: str) -> None:
    """Refuse NaN/infinite inputs held in memory (pixels are uint8 and always finite)."""
    for name, tensor in (("inputs", data.inputs), ("views", data.views)):
        if tensor is not None and not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor.reshape(-1, *tensor.shape[-1:]))).any(1).sum())
            raise TrainingError(f"{bad} {what} input {name} row(s) contain NaN or infinite values; check the images")


def validation_log_proba_of(
    model: nn.Module, data: PreparedData, validation_log_proba: ValidationLogProba, device: torch.device
) -> torch.Tensor:
    """``(N, C)`` validation log-probabilities, :data:`PREDICT_BATCH` examples at a time (CPU)."""
    return torch.cat([validation_log_proba(model, inputs).float().cpu() for inputs in data.in_order(device)])


def _epoch_batches(order: torch.Tensor, config: TrainingConfig, steps_per_epoch: int) -> list[torch.Tensor]:
    return list(order.split(config.batch_size)[:steps_per_epoch])


def train_model(
    model: nn.Module,
    train: PreparedData,
    val: PreparedData | None,
    config: TrainingConfig,
    *,
    seed: int,
    device: torch.device | str | None = None,
    extra_loss: ExtraLoss | None = None,
    validation_log_proba: ValidationLogProba = default_validation_log_proba,
    progress: ProgressCallback | None = None,
    description: str = "train",
) -> TrainingHistory:
    """Train ``model`` in place by mini-batch gradient descent.

    Each epoch reads the training batches through ``train`` (in memory or streamed, with that
    epoch's per-example augmentation), mixes them (MixUp / CutMix, soft targets) when
    ``config.augment`` asks, and takes one optimiser step per ``accumulation_steps`` batches
    (bf16 autocast and channels-last on CUDA when asked, gradient clipping, an EMA of the
    weights that then serves for validation and as the result).

    Args:
        model: Maps ``(B, ...)`` inputs to ``(B, C)`` logits; moved to ``device``.
        train: Training inputs, targets and optional per-example weights.
        val: Validation data for early stopping and best-weights restore (on the validation
            NLL); ``None`` trains for all epochs and keeps the last weights.
        config: Optimisation settings.
        seed: Seeds batch order, dropout and MixUp / CutMix (the per-example augmentation is
            seeded by ``train``).
        device: ``None`` picks CUDA when present.
        extra_loss: Added to every mini-batch loss, called as ``extra_loss(model, len(train))``.
        validation_log_proba: Computes ``(B, C)`` validation log-probabilities of a batch.
        progress: Called with one event per finished epoch (stage ``description``).
        description: The progress stage, and what a training error names.

    Returns:
        The per-epoch history.

    Raises:
        TrainingError: Inputs or the loss are NaN/infinite.
    """
    _check_finite(train, "training")
    if val is not None:
        _check_finite(val, "validation")
    device = pick_device(device)
    model.to(device)
    on_cuda = device.type == "cuda"
    if config.channels_last and on_cuda:
        model.to(memory_format=torch.channels_last)
    n_train = len(train)
    weights = None
    if train.sample_weights is not None:
        weights = train.sample_weights.float()
        if (weights < 0).any() or weights.sum() <= 0:
            raise TrainingError("sample weights must be non-negative and not all zero")
        weights = weights / weights.mean()

    schedule = config.schedule(n_train)
    optimizer = _make_optimizer(model, config)
    scheduler = _make_scheduler(optimizer, config, schedule.optimizer_steps)
    shuffle = torch.Generator().manual_seed(seed)
    augmentation = parse_augment(config.augment)
    mixer = augmentation.batch_mixer(_num_outputs(model)) if augmentation.batch_steps else None
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    forward = torch.compile(model) if config.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.mixed_precision and on_cuda)

    history = TrainingHistory()
    best_nll, best_state = math.inf, None
    steps_taken = 0  # optimiser steps so far
    started = time.perf_counter()
    report(progress, description, 0, schedule.epochs, unit="epochs")
    with seeded(seed):
        for epoch in range(1, schedule.epochs + 1):
            epoch_started = time.perf_counter()
            model.train()
            if config.weighted_sampling and weights is not None:
                order = torch.multinomial(weights, n_train, replacement=True, generator=shuffle)
            else:
                order = torch.randperm(n_train, generator=shuffle)
            batches = _epoch_batches(order, config, schedule.steps_per_epoch)
            # A step budget (max_steps) ends inside the last epoch.
            batches = batches[: (schedule.optimizer_steps - steps_taken) * config.accumulation_steps]
            loss_sum, seen = 0.0, 0
            # Epochs are numbered from 0 for the augmentation keys (example_keys).
            # The stream first: zip then runs it to its end, which releases the loader each epoch.
            for step, (inputs, index) in enumerate(zip(train.batches(batches, device, epoch - 1, seed), batches)):
                targets = train.targets[index].to(device, non_blocking=True)
                if not torch.isfinite(inputs).all():
                    raise TrainingError(
                        f"{description}: a training batch contains NaN or infinite values; check the images"
                    )
                if mixer is not None:
                    inputs, targets = mixer(inputs, targets)
                if config.channels_last and on_cuda and inputs.ndim == 4:
                    inputs = inputs.contiguous(memory_format=torch.channels_last)
                with autocast:
                    logits = forward(inputs)
                losses = per_example_loss(logits.float(), targets, config)
                if weights is not None and not config.weighted_sampling:
                    losses = losses * weights[index].to(device)
                loss = losses.mean()
                if extra_loss is not None:
                    loss = loss + extra_loss(model, n_train)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"{description}: the loss became {loss.item()} at epoch {epoch}, batch "
                        f"{step + 1}; lower the learning rate (now {config.learning_rate:g}) "
                        "or check the data"
                    )
                (loss / config.accumulation_steps).backward()
                if (step + 1) % config.accumulation_steps == 0 or step + 1 == len(batches):
                    if config.gradient_clip_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.gradient_clip_norm)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                    steps_taken += 1
                    if scheduler is not None:
                        scheduler.step()
                    if ema is not None:
                        ema.update_parameters(model)
                loss_sum += loss.item() * len(index)
                seen += len(index)

            evaluated = model if ema is None else ema.module
            record = {"epoch": epoch, "train_loss": loss_sum / seen,
                      "learning_rate": optimizer.param_groups[-1]["lr"]}
            validating = val is not None and (epoch % schedule.eval_every == 0 or epoch == schedule.epochs)
            if validating:
                log_proba = validation_log_proba_of(evaluated, val, validation_log_proba, device)
                record["val_nll"] = F.nll_loss(log_proba, val.targets).item()
                record["val_accuracy"] = (log_proba.argmax(1) == val.targets).float().mean().item()
            record["seconds"] = time.perf_counter() - epoch_started
            history.epochs.append(record)
            shown = ("train_loss", "val_nll", "val_accuracy")
            status = " ".join(f"{k} {v:.4f}" for k, v in record.items() if k in shown)
            report(progress, description, epoch, schedule.epochs, unit="epochs", item=status)

            if not validating:
                continue
            if record["val_nll"] < best_nll:
                best_nll, history.best_epoch = record["val_nll"], epoch
                best_state = {k: v.detach().clone() for k, v in evaluated.state_dict().items()}
            elif schedule.patience is not None and epoch - (history.best_epoch or 0) >= schedule.patience:
                history.stopped_early = True
                break
    report(progress, description, len(history.epochs), schedule.epochs, unit="epochs", finished=True)

    if best_state is not None:
        model.load_state_dict(best_state)
    elif ema is not None:
        model.load_state_dict(ema.module.state_dict())
    if config.channels_last and on_cuda:
        model.to(memory_format=torch.contiguous_format)
    history.under_trained = val is not None and not history.stopped_early and _still_improving(history)
    history.seconds = time.perf_counter() - started
    return history


UNDER_TRAINED_GAIN = 0.01
"""Relative fall of the validation NLL over the last fifth of the epochs above which a run whose
best epoch is its last counts as under-trained (see :func:`_still_improving`)."""


def _still_improving(history: TrainingHistory) -> bool:
    """Whether the validation NLL was still falling when training ended: its best epoch is the
    last and it fell by more than :data:`UNDER_TRAINED_GAIN` (relative) over the last fifth of
    the validations (at least one).

    The fall, not only "best epoch = last": a cosine schedule anneals the rate to zero, so the
    last epoch of a converged run is often the best by a hair (0.01-0.5 % in the demo's
    step-budget units) without more training promising anything.
    """
    losses = [epoch["val_nll"] for epoch in history.epochs if "val_nll" in epoch]  # the validated epochs
    if not losses or history.best_epoch != len(history.epochs):
        return False
    recent = max(1, math.ceil(0.2 * len(losses)))
    if len(losses) <= recent:
        return True  # nothing earlier to compare with: no sign of convergence
    before = min(losses[:-recent])
    return (before - losses[-1]) > UNDER_TRAINED_GAIN * abs(before)


def _num_outputs(model: nn.Module) -> int:
    """C, the logits of ``model``: ``out_features`` of its last linear layer (the backbone convention)."""
    linear = [m for m in model.modules() if hasattr(m, "out_features")]
    if not linear:
        raise ConfigError("the trainable module has no output layer with out_features; see synthaug.models.base")
    return int(linear[-1].out_features)
