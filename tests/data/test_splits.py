"""Per-class subsampling and stratified splits: deterministic, balanced, nested."""

from __future__ import annotations

import numpy as np
import pytest

from synthaug.data import subsample_per_class, train_val_split
from synthaug.errors import ConfigError, DataError


def test_subsample_per_class_is_deterministic_and_balanced(tiny_arrays_dataset):
    first = subsample_per_class(tiny_arrays_dataset, 5, seed=3)
    assert len(first) == 15
    assert set(first.class_counts().values()) == {5}
    assert subsample_per_class(tiny_arrays_dataset, 5, seed=3).fingerprint() == first.fingerprint()
    assert subsample_per_class(tiny_arrays_dataset, 5, seed=4).fingerprint() != first.fingerprint()
    indices = [record["index"] for record in first.records]
    assert indices == sorted(indices)  # dataset order is kept


def test_subsamples_of_one_seed_are_nested(tiny_arrays_dataset):
    small = {r["index"] for r in subsample_per_class(tiny_arrays_dataset, 4, seed=0).records}
    large = {r["index"] for r in subsample_per_class(tiny_arrays_dataset, 12, seed=0).records}
    assert small < large


def test_subsample_refuses_too_few(tiny_arrays_dataset):
    with pytest.raises(DataError, match=r"fewer than n_per_class=31"):
        subsample_per_class(tiny_arrays_dataset, 31, seed=0)
    with pytest.raises(ConfigError):
        subsample_per_class(tiny_arrays_dataset, 0, seed=0)


def test_train_val_split_is_stratified_disjoint_and_deterministic(tiny_arrays_dataset):
    train, val = train_val_split(tiny_arrays_dataset, 0.2, seed=0)
    assert (len(train), len(val)) == (72, 18)
    assert val.class_counts() == {"horizontal": 6, "vertical": 6, "diagonal": 6}
    train_ids = {r["index"] for r in train.records}
    val_ids = {r["index"] for r in val.records}
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(90))
    again_train, again_val = train_val_split(tiny_arrays_dataset, 0.2, seed=0)
    assert (again_train.fingerprint(), again_val.fingerprint()) == (train.fingerprint(), val.fingerprint())
    assert train_val_split(tiny_arrays_dataset, 0.2, seed=1)[1].fingerprint() != val.fingerprint()


def test_train_val_split_rejects_bad_input(tiny_arrays_dataset):
    with pytest.raises(ConfigError):
        train_val_split(tiny_arrays_dataset, 1.0, seed=0)
    one_of_a_class = tiny_arrays_dataset.subset(np.r_[np.flatnonzero(tiny_arrays_dataset.targets < 2), 2])
    with pytest.raises(DataError, match="cannot split"):
        train_val_split(one_of_a_class, 0.2, seed=0)
