"""What distinguishes MC dropout and deep ensembles from one deterministic network."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.errors import ConfigError
from synthaug.methods import make_method

TINY = {"backbone_options": {"image_size": 16, "channels": [8, 16], "hidden": 32}, "epochs": 3,
        "batch_size": 32, "learning_rate": 3e-3}


@pytest.fixture
def patterns(make_pattern_dataset):
    return make_pattern_dataset(n_per_class=20, size=16), make_pattern_dataset(n_per_class=5, seed=1, size=16)


def test_mc_dropout_samples_differ_and_average_near_the_deterministic_net(patterns) -> None:
    train, test = patterns
    mc = make_method("mc-dropout", num_samples=6, dropout=0.5, **TINY).fit(train)
    samples = mc.predict_proba(test)
    assert samples.shape == (6, 15, 3)
    assert not np.allclose(samples[0], samples[1])  # dropout is on at test time
    # Same seed, same training: the dropout-off network is the deterministic method's.
    deterministic = make_method("deterministic", dropout=0.5, **TINY).fit(train).predict_proba(test)
    assert np.abs(samples.mean(0) - deterministic[0]).mean() < 0.1


def test_mc_dropout_needs_dropout(patterns) -> None:
    with pytest.raises(ConfigError, match="dropout > 0"):
        make_method("mc-dropout", dropout=0.0, **TINY).fit(patterns[0])


def test_ensemble_members_are_distinct_and_seeded(patterns) -> None:
    train, test = patterns
    ensemble = make_method("ensemble", num_members=3, **TINY).fit(train)
    samples = ensemble.predict_proba(test)
    assert samples.shape == (3, 15, 3) and len(ensemble.histories_) == 3
    assert not np.allclose(samples[0], samples[1]) and not np.allclose(samples[1], samples[2])
    seeds = ensemble.member_seeds()
    other = make_method("ensemble", num_members=3, seed=1).member_seeds()
    assert len(set(seeds)) == 3 and not set(seeds) & set(other)
    with pytest.raises(ConfigError, match="num_members"):
        make_method("ensemble", num_members=0, **TINY).fit(train)


def test_mc_dropout_samples_with_dropout_on_and_batch_norm_frozen(patterns) -> None:
    """At test time every dropout layer of the classifier is on, at the trained rate, and batch
    norm keeps its running statistics (no update from the test batches)."""
    import torch
    from torch import nn

    train, test = patterns
    mc = make_method("mc-dropout", num_samples=5, dropout=0.3, **TINY).fit(train)
    dropouts = [m for m in mc.model_.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2 and all(m.p == 0.3 for m in dropouts)
    norms = [m for m in mc.model_.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]
    modes = [m.training for m in mc.model_.modules()]
    seen_training: list[bool] = []
    hooks = [m.register_forward_hook(lambda module, *_: seen_training.append(module.training)) for m in dropouts]
    samples = mc.predict_proba(test)
    for hook in hooks:
        hook.remove()
    assert seen_training and all(seen_training)  # dropout on in every pass
    for norm, mean in zip(norms, before):
        torch.testing.assert_close(norm.running_mean, mean)
    assert [m.training for m in mc.model_.modules()] == modes  # modes restored
    # Each pass drops different units: 5 distinct samples.
    assert len({samples[s].round(6).tobytes() for s in range(5)}) == 5
