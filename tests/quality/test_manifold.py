"""prdc: agreement with the authors' reference implementation, and hand-checked cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from synthaug.errors import DataError
from synthaug.quality import PRDC, prdc


@pytest.mark.parametrize(("n_real", "n_fake", "dims", "k", "shift"),
                         [(200, 150, 8, 5, 0.0), (120, 300, 3, 3, 0.7), (60, 60, 32, 5, 2.0), (50, 40, 2, 1, 0.3)])
def test_agrees_with_the_reference_prdc_package(n_real: int, n_fake: int, dims: int, k: int, shift: float) -> None:
    reference = pytest.importorskip("prdc")  # the dev extra installs it
    rng = np.random.default_rng(n_real + dims)
    real = rng.normal(size=(n_real, dims)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, dims)) * 1.3 + shift).astype(np.float32)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the set sizes
        expected = reference.compute_prdc(real, fake, nearest_k=k)
    got = prdc(real, fake, nearest_k=k)
    for name in ("precision", "recall", "density", "coverage"):
        assert getattr(got, name) == pytest.approx(float(expected[name]), abs=1e-6), name


def test_identical_sets_are_perfect_and_disjoint_sets_score_zero() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(100, 4))
    same = prdc(real, real.copy(), nearest_k=5)
    # Every fake point sits on a real point (distance 0 < radius): precision, recall and
    # coverage 1; each real ball holds its own point and its 5 neighbours... but strictly
    # inside, so density is (1 + neighbours strictly closer than the 5th) / 5 = 5/5.
    assert (same.precision, same.recall, same.coverage) == (1.0, 1.0, 1.0)
    assert same.density == pytest.approx(1.0)
    far = prdc(real, real + 100.0, nearest_k=5)
    assert (far.precision, far.recall, far.density, far.coverage) == (0.0, 0.0, 0.0, 0.0)


def test_a_collapsed_generator_has_precision_but_no_diversity() -> None:
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 2))
    # Every generated point near one real point: faithful (inside the real manifold) but
    # covering only a few real balls, and the generated manifold is tiny (low recall).
    fake = real[0] + rng.normal(scale=1e-3, size=(100, 2))
    result = prdc(real, fake, nearest_k=5)
    assert result.precision == 1.0
    assert result.recall < 0.05 and result.coverage < 0.05
    assert result.density > 1.0  # crowded on one mode


def test_round_trip_and_errors() -> None:
    record = PRDC(0.5, 0.25, 1.5, 0.75, 5)
    assert PRDC.from_dict(record.to_dict()) == record
    with pytest.raises(DataError, match="more than nearest_k=5"):
        prdc(np.zeros((5, 2)), np.zeros((10, 2)))
    with pytest.raises(DataError, match="dimensions"):
        prdc(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(DataError, match="nearest_k"):
        prdc(np.zeros((10, 2)), np.zeros((10, 2)), nearest_k=0)
