"""OOD detection metrics: hand values and the "OOD is positive, higher is more OOD" convention."""

import numpy as np
import pytest
import torch

from synthaug.errors import DataError
from synthaug.metrics import fpr_at_95_tpr, ood_aupr, ood_auroc

IN_SCORES = np.array([0.1, 0.2, 0.3, 0.4])
OOD_SCORES = np.array([0.35, 0.5, 0.6, 0.7])


def test_hand_computed_values():
    # 15 of the 16 (OOD, in) pairs are ordered correctly; only 0.35 < 0.4 is not.
    assert ood_auroc(IN_SCORES, OOD_SCORES) == pytest.approx(15 / 16)
    # Ranked by score: OOD, OOD, OOD, in, OOD -> precision 1 at recall 3/4, 4/5 at recall 1.
    assert ood_aupr(IN_SCORES, OOD_SCORES) == pytest.approx(0.75 * 1.0 + 0.25 * 0.8)
    # Detecting all four OOD examples (95 % needs all of them) needs threshold .35: 1 of 4 in flagged.
    assert fpr_at_95_tpr(IN_SCORES, OOD_SCORES) == pytest.approx(0.25)


def test_fpr_at_95_tpr_uses_the_highest_threshold_that_reaches_95_percent():
    # 20 OOD examples: the threshold may miss exactly one (19/20 = 95 %), the one at 0.05.
    ood_scores = np.append(np.linspace(0.6, 1.0, 19), 0.05)
    in_scores = np.array([0.1, 0.2, 0.55, 0.7])
    assert fpr_at_95_tpr(in_scores, ood_scores) == pytest.approx(0.25)


def test_perfect_separation_and_reversed_orientation():
    assert ood_auroc(IN_SCORES, IN_SCORES + 1) == 1.0
    assert ood_aupr(IN_SCORES, IN_SCORES + 1) == 1.0
    assert fpr_at_95_tpr(IN_SCORES, IN_SCORES + 1) == 0.0
    # Higher means more OOD: swapping the sets turns the AUROC around.
    assert ood_auroc(OOD_SCORES, IN_SCORES) == pytest.approx(1 - 15 / 16)


def test_ties_count_half_and_torch_input_works():
    scores = torch.tensor([0.5, 0.5, 0.5])
    assert ood_auroc(scores, scores) == 0.5


@pytest.mark.parametrize("bad", [np.array([]), np.array([0.1, np.nan]), np.zeros((2, 2))])
def test_bad_scores_are_data_errors(bad):
    with pytest.raises(DataError, match="ood_scores"):
        ood_auroc(IN_SCORES, bad)
