"""Out-of-distribution detection quality of any per-example score.

Convention for every function here: **out-of-distribution examples are the positive class
and a higher score means "more likely OOD"**. Scores that grow with confidence (e.g. the
max probability) must be negated or turned around first (``1 - max probability``, predictive
entropy and mutual information already point the right way). Ties count half, as in
scikit-learn's ``roc_auc_score``, which does the work here.

References:
    Hendrycks and Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
    Examples in Neural Networks", ICLR 2017.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthaug.metrics._shapes import as_scores

# The detection rate at which fpr_at_95_tpr reads the false positive rate.
TARGET_TRUE_POSITIVE_RATE = 0.95


def ood_auroc(in_scores: Any, ood_scores: Any) -> float:
    """Area under the ROC curve for telling OOD (positive) from in-distribution examples.

    Args:
        in_scores: ``(N_in,)`` scores of in-distribution examples (higher = more OOD).
        ood_scores: ``(N_ood,)`` scores of out-of-distribution examples.

    Returns:
        AUROC in ``[0, 1]``: the probability that a random OOD example scores higher than a
        random in-distribution one (0.5 is chance).
    """
    targets, scores = _detection_problem(in_scores, ood_scores)
    from sklearn.metrics import roc_auc_score  # here: scikit-learn is slow to import (CLI start-up)

    return float(roc_auc_score(targets, scores))


def ood_aupr(in_scores: Any, ood_scores: Any) -> float:
    """Area under the precision-recall curve with OOD as the positive class ("AUPR-Out").

    Computed as scikit-learn's average precision (a step-wise sum, no interpolation).

    Args:
        in_scores: ``(N_in,)`` scores of in-distribution examples (higher = more OOD).
        ood_scores: ``(N_ood,)`` scores of out-of-distribution examples.

    Returns:
        AUPR in ``[0, 1]``; chance level is ``N_ood / (N_in + N_ood)``.
    """
    targets, scores = _detection_problem(in_scores, ood_scores)
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(targets, scores))


def fpr_at_95_tpr(in_scores: Any, ood_scores: Any) -> float:
    """False positive rate at 95 % true positive rate.

    The fraction of in-distribution examples flagged as OOD by the highest threshold that
    still flags at least 95 % of the OOD examples (lower is better).

    Args:
        in_scores: ``(N_in,)`` scores of in-distribution examples (higher = more OOD).
        ood_scores: ``(N_ood,)`` scores of out-of-distribution examples.

    Returns:
        FPR in ``[0, 1]``.
    """
    targets, scores = _detection_problem(in_scores, ood_scores)
    from sklearn.metrics import roc_curve

    false_positive_rate, true_positive_rate, _ = roc_curve(targets, scores, drop_intermediate=False)
    first_reaching_target = np.searchsorted(true_positive_rate, TARGET_TRUE_POSITIVE_RATE, side="left")
    return float(false_positive_rate[first_reaching_target])


def _detection_problem(in_scores: Any, ood_scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the two score sets into (targets, scores) with OOD as target 1."""
    in_array = as_scores(in_scores, "in_scores")
    ood_array = as_scores(ood_scores, "ood_scores")
    targets = np.concatenate([np.zeros(in_array.shape[0], dtype=np.int8), np.ones(ood_array.shape[0], dtype=np.int8)])
    return targets, np.concatenate([in_array, ood_array])
