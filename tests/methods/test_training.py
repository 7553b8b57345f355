"""The shared training loop: losses, weights, hooks, early stopping, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from synthaug.errors import ConfigError, TrainingError
from synthaug.methods.training import (
    PreparedData,
    TrainingConfig,
    TrainingHistory,
    _still_improving,
    generalized_cross_entropy,
    predict_logits,
    seeded,
    train_model,
)


def blobs(n: int = 200, seed: int = 0, flip: float = 0.0) -> PreparedData:
    """Two Gaussian blobs in 2-D; ``flip`` of the labels moved to the other class."""
    generator = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % 2
    inputs = torch.randn(n, 2, generator=generator) + 2.5 * (targets[:, None] * 2 - 1).float()
    if flip:
        flipped = torch.rand(n, generator=generator) < flip
        targets = torch.where(flipped, 1 - targets, targets)
    return PreparedData(inputs, targets)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


FAST = TrainingConfig(epochs=5, batch_size=32, learning_rate=0.01)


def test_generalized_cross_entropy_matches_its_formula() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    targets = torch.tensor([0, 1])
    expected = torch.tensor([(1 - 0.5**0.7) / 0.7, (1 - 0.1**0.7) / 0.7])
    torch.testing.assert_close(generalized_cross_entropy(logits, targets, q=0.7), expected)
    # q -> 0 recovers the cross-entropy.
    torch.testing.assert_close(
        generalized_cross_entropy(logits, targets, q=1e-6), F.cross_entropy(logits, targets, reduction="none"),
        rtol=1e-4, atol=1e-4,
    )


def test_same_seed_same_weights_and_global_state_untouched() -> None:
    def run(seed: int) -> list[torch.Tensor]:
        with seeded(0):
            model = mlp()
        train_model(model, blobs(), blobs(seed=1), FAST, seed=seed)
        return list(model.state_dict().values())

    before = torch.random.get_rng_state()
    first, second, other = run(5), run(5), run(6)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_early_stopping_keeps_the_best_validation_weights() -> None:
    with seeded(0):
        model = mlp()
    # Noisy labels and a high learning rate: the validation NLL goes up again.
    config = TrainingConfig(epochs=40, batch_size=16, learning_rate=0.05, patience=3, lr_schedule="constant")
    val = blobs(seed=1, flip=0.3)
    history = train_model(model, blobs(n=60, flip=0.3), val, config, seed=0)
    nlls = [row["val_nll"] for row in history.epochs]
    assert history.stopped_early and len(nlls) == history.best_epoch + 3
    assert history.best_epoch == 1 + nlls.index(min(nlls))
    final_nll = F.cross_entropy(predict_logits(model, val.inputs), val.targets).item()
    assert final_nll == pytest.approx(min(nlls), rel=1e-5)


def test_zero_weight_examples_do_not_count() -> None:
    clean = blobs(n=200)
    # Half the examples get the wrong label; with weight 0 they must not matter.
    wrong = torch.arange(200) < 100
    noisy_targets = torch.where(wrong, 1 - clean.targets, clean.targets)
    weighted = PreparedData(clean.inputs, noisy_targets, sample_weights=(~wrong).float())
    unweighted = PreparedData(clean.inputs, noisy_targets)
    accuracies = []
    for data in (weighted, unweighted):
        with seeded(0):
            model = mlp()
        train_model(model, data, None, FAST, seed=0)
        accuracies.append((predict_logits(model, clean.inputs).argmax(1) == clean.targets).float().mean().item())
    assert accuracies[0] > 0.95 and accuracies[1] < 0.75


def test_weighted_sampling_draws_by_the_weights_instead_of_weighting_losses() -> None:
    clean = blobs(n=200)
    wrong = torch.arange(200) < 100
    noisy = PreparedData(clean.inputs, torch.where(wrong, 1 - clean.targets, clean.targets),
                         sample_weights=(~wrong).float())  # fmt: skip
    sampled_config = TrainingConfig(epochs=5, batch_size=32, learning_rate=0.01, weighted_sampling=True)
    models = []
    for config in (sampled_config, FAST):
        with seeded(0):
            model = mlp()
        train_model(model, noisy, None, config, seed=0)
        models.append(model)
    # Zero-weight (mislabelled) examples are never drawn, so they do not matter either way ...
    accuracy = (predict_logits(models[0], clean.inputs).argmax(1) == clean.targets).float().mean().item()
    assert accuracy > 0.95
    # ... but the batches differ from loss weighting's, and so do the trained weights.
    assert not torch.allclose(models[0][0].weight, models[1][0].weight)


def test_extra_loss_hook_gets_the_training_set_size() -> None:
    calls = []

    def l2_towards_zero(model: nn.Module, n_train: int) -> torch.Tensor:
        calls.append(n_train)
        return 10.0 * sum((p**2).sum() for p in model.parameters())

    def squared_norm(model: nn.Module) -> float:
        return sum((p**2).sum() for p in model.parameters()).item()

    with seeded(0):
        penalised, free = mlp(), mlp()
    free.load_state_dict(penalised.state_dict())
    initial = squared_norm(free)
    train_model(penalised, blobs(n=96), None, FAST, seed=0, extra_loss=l2_towards_zero)
    train_model(free, blobs(n=96), None, FAST, seed=0)
    assert calls == [96] * (FAST.epochs * 3)
    # Fitting separable blobs grows the weights; the penalty shrinks them instead.
    assert squared_norm(penalised) < initial < squared_norm(free)


def test_nan_inputs_and_diverging_loss_raise_training_error() -> None:
    data = blobs()
    data.inputs[3, 1] = math.nan
    with pytest.raises(TrainingError, match="1 training input"):
        train_model(mlp(), data, None, FAST, seed=0)
    with pytest.raises(TrainingError, match="the loss became (nan|inf) at epoch"):
        train_model(mlp(), blobs(), None, TrainingConfig(learning_rate=1e30, lr_schedule="constant"), seed=0)


@pytest.mark.parametrize(
    "settings",
    [{"epochs": 0}, {"optimizer": "rmsprop"}, {"lr_schedule": "linear"}, {"label_smoothing": 1.0},
     {"loss": "generalized_cross_entropy", "label_smoothing": 0.1}, {"gce_q": 0.0}],
)
def test_invalid_settings_are_config_errors(settings: dict) -> None:
    with pytest.raises(ConfigError):
        TrainingConfig(**settings)


@pytest.mark.parametrize(
    "settings",
    [{"optimizer": "sgd", "lr_schedule": "step", "weight_decay": 1e-4},
     {"optimizer": "adamw", "weight_decay": 0.01, "label_smoothing": 0.1},
     {"loss": "generalized_cross_entropy", "lr_schedule": "constant"}],
)
def test_every_optimiser_schedule_and_loss_learns(settings: dict) -> None:
    with seeded(0):
        model = mlp()
    config = TrainingConfig(epochs=8, batch_size=32, learning_rate=0.05 if settings.get("optimizer") == "sgd" else 0.01,
                            **settings)
    train_model(model, blobs(), None, config, seed=0)
    test = blobs(seed=2)
    assert (predict_logits(model, test.inputs).argmax(1) == test.targets).float().mean() > 0.95


def test_every_method_passes_the_generalized_cross_entropy_q_to_training() -> None:
    from synthaug.methods import make_method

    method = make_method("deterministic", loss="generalized_cross_entropy", gce_q=0.3)
    assert method.training_config().gce_q == 0.3
    assert method.get_params()["gce_q"] == 0.3
    with pytest.raises(ConfigError, match="gce_q"):
        make_method("deterministic", loss="generalized_cross_entropy", gce_q=1.5).training_config()


def test_under_trained_flags_a_validation_loss_still_improving_at_the_last_epoch() -> None:
    with seeded(0):
        model = mlp()
    config = TrainingConfig(epochs=2, batch_size=32, learning_rate=1e-3)
    short = train_model(model, blobs(), blobs(seed=1), config, seed=0)
    assert short.best_epoch == 2 and short.under_trained
    with seeded(0):
        model = mlp()
    # A rate that overshoots: the best epoch comes early and training stops before the end.
    long = train_model(model, blobs(), blobs(seed=1), TrainingConfig(epochs=60, batch_size=32, learning_rate=0.05,
                                                                        patience=2), seed=0)
    assert long.stopped_early and not long.under_trained
    assert not train_model(mlp(), blobs(), None, FAST, seed=0).under_trained  # nothing to judge by


def _history(losses: list[float]) -> TrainingHistory:
    best = min(range(len(losses)), key=losses.__getitem__) + 1
    return TrainingHistory(epochs=[{"epoch": i + 1, "val_nll": v} for i, v in enumerate(losses)], best_epoch=best)


def test_under_trained_means_still_falling_not_best_by_a_hair_at_the_end_of_an_annealed_run() -> None:
    # Falling steadily to the end: more training would help.
    assert _still_improving(_history([1.0, 0.8, 0.7, 0.62, 0.55]))
    # Converged: the last epoch is the best by 0.2 % (a cosine schedule annealed to zero).
    assert not _still_improving(_history([1.0, 0.6, 0.50, 0.500, 0.4995, 0.499]))
    assert not _still_improving(_history([1.0, 0.5, 0.7, 0.8]))  # best earlier: overfitting, not under-training
    assert _still_improving(_history([0.9]))  # one epoch: no sign of convergence
    assert not _still_improving(TrainingHistory())


def _count_optimizer_steps(run) -> int:
    steps = []
    handle = register_optimizer_step_post_hook(lambda *_: steps.append(1))
    try:
        run()
    finally:
        handle.remove()
    return len(steps)


@pytest.mark.parametrize(("n", "accumulation"), [(100, 1), (1000, 1), (100, 2)])
def test_max_steps_trains_exactly_that_many_optimiser_steps_whatever_the_set_size(n: int, accumulation: int) -> None:
    config = TrainingConfig(max_steps=7, batch_size=32, learning_rate=0.01, patience=None,
                            accumulation_steps=accumulation)  # fmt: skip
    with seeded(0):
        model = mlp()
    history: list[TrainingHistory] = []
    steps = _count_optimizer_steps(lambda: history.append(train_model(model, blobs(n), blobs(seed=1), config, seed=0)))
    assert steps == 7
    schedule = config.schedule(n)
    per_epoch = math.ceil(schedule.steps_per_epoch / accumulation)
    assert len(history[0].epochs) == schedule.epochs == math.ceil(7 / per_epoch)
    # The cosine schedule spans exactly the budget: the rate reaches 0 at the last step.
    assert history[0].epochs[-1]["learning_rate"] == pytest.approx(0.0, abs=1e-12)


def test_max_steps_schedule_scales_patience_and_refuses_epochs_too() -> None:
    schedule = TrainingConfig(max_steps=100, batch_size=64, patience=3).schedule(900)
    assert (schedule.steps_per_epoch, schedule.epochs, schedule.optimizer_steps) == (15, 7, 100)
    assert schedule.patience == 2  # 3 epochs of 15 is a fifth of training; 2 of 7 is the same share, rounded up
    assert TrainingConfig(max_steps=100, batch_size=64, patience=3).schedule(100_000).patience == 1
    with pytest.raises(ConfigError, match="epochs=3 and max_steps=10 both set the training length"):
        TrainingConfig(epochs=3, max_steps=10)
    with pytest.raises(ConfigError, match="max_steps"):
        TrainingConfig(max_steps=0)


def test_warmup_then_cosine_and_a_slower_body() -> None:
    config = TrainingConfig(epochs=4, batch_size=50, learning_rate=0.01, warmup_fraction=0.25, backbone_lr_scale=0.1)
    with seeded(0):
        model = mlp()
    history = train_model(model, blobs(), None, config, seed=0)
    rates = [record["learning_rate"] for record in history.epochs]  # the head's rate after each epoch
    assert rates[0] == pytest.approx(0.01)  # warm-up over the first 4 of 16 steps
    assert rates[1] > rates[2] > rates[3] >= 0  # then cosine decay
    from synthaug.methods.training import _make_optimizer

    groups = _make_optimizer(mlp(), config).param_groups
    assert [group["lr"] for group in groups] == pytest.approx([0.001, 0.01])
    assert [len(group["params"]) for group in groups] == [2, 2]  # body (first Linear), head (last Linear)


def test_accumulation_clipping_and_ema_train_and_differ_from_plain() -> None:
    def run(**settings) -> torch.Tensor:
        with seeded(0):
            model = mlp()
        config = TrainingConfig(epochs=3, batch_size=20, learning_rate=0.01, **settings)
        history = train_model(model, blobs(), blobs(seed=1), config, seed=0)
        assert history.epochs[-1]["val_accuracy"] > 0.9
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    plain = run()
    for settings in ({"accumulation_steps": 2}, {"gradient_clip_norm": 0.1}, {"ema_decay": 0.9}):
        assert not torch.equal(run(**settings), plain), settings
        torch.testing.assert_close(run(**settings), run(**settings), rtol=0, atol=0)


def test_soft_targets_train_and_gce_refuses_them() -> None:
    def as_images(data: PreparedData) -> PreparedData:  # MixUp mixes (B, C, H, W) batches
        return PreparedData(data.inputs.view(-1, 2, 1, 1), data.targets)

    model = nn.Sequential(nn.Flatten(), *mlp())
    config = TrainingConfig(epochs=4, batch_size=32, learning_rate=0.01, augment="mixup", label_smoothing=0.1)
    mixed = train_model(model, as_images(blobs()), as_images(blobs(seed=1)), config, seed=0)
    assert mixed.epochs[-1]["val_accuracy"] > 0.9
    with pytest.raises(ConfigError, match="soft targets"):
        TrainingConfig(loss="generalized_cross_entropy", augment=["flip-crop", "cutmix"])


def test_a_run_of_many_short_epochs_is_validated_about_fifteen_times_and_always_at_the_end() -> None:
    config = TrainingConfig(max_steps=103, batch_size=32, learning_rate=0.01, patience=None)
    schedule = config.schedule(64)  # 2 batches per epoch: 52 epochs
    assert (schedule.epochs, schedule.eval_every) == (52, 3)
    with seeded(0):
        model = mlp()
    history = train_model(model, blobs(64), blobs(seed=1), config, seed=0)
    validated = [record["epoch"] for record in history.epochs if "val_nll" in record]
    assert validated == [*range(3, 52, 3), 52]
    assert history.best_epoch in validated
    # Patience counts epochs, validated or not: a rate that overshoots stops a few validations in.
    overshoot = TrainingConfig(max_steps=400, batch_size=32, learning_rate=0.3, patience=2)
    with seeded(0):
        model = mlp()
    stopped = train_model(model, blobs(64, flip=0.3), blobs(seed=1), overshoot, seed=0)
    assert stopped.stopped_early
    last = stopped.epochs[-1]["epoch"]
    assert "val_nll" in stopped.epochs[-1] and last - stopped.best_epoch >= overshoot.schedule(64).patience
    assert TrainingConfig(epochs=40, batch_size=32).schedule(64).eval_every == 1  # epochs set: every epoch
