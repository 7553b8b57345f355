"""Per-image scores: label-error ranking, confident learning, uncertainty, rank combination."""

from __future__ import annotations

import math

import numpy as np
import pytest

from synthaug.audit import AuditConfig, combined_score, confident_learning
from synthaug.audit.scores import disagreement, rank_normalise, uncertainty_scores
from synthaug.errors import ConfigError


def test_flipped_labels_are_ranked_at_the_top(noisy_audit) -> None:
    top = {row["index"] for row in noisy_audit.result.rows[: len(noisy_audit.flipped)]}
    precision_at_k = len(top & set(noisy_audit.flipped.tolist())) / len(noisy_audit.flipped)
    assert precision_at_k >= 0.75, precision_at_k
    # Confident learning flags mostly flipped images too.
    issues = {row["index"] for row in noisy_audit.result.rows if row["label_issue"]}
    assert len(issues & set(noisy_audit.flipped.tolist())) >= 0.75 * len(issues) > 0


def test_rows_rank_by_score_and_reference_predicts_the_true_class(noisy_audit) -> None:
    rows = noisy_audit.result.rows
    assert [row["rank"] for row in rows] == list(range(1, len(rows) + 1))
    assert all(a["score"] >= b["score"] for a, b in zip(rows, rows[1:]))
    flipped = [row for row in rows if row["index"] in set(noisy_audit.flipped.tolist())]
    # A reference model trained on clean real data mostly disagrees with the flipped labels.
    assert np.mean([row["reference_predicted"] != row["label"] for row in flipped]) >= 0.75


def test_disagreement_is_the_variation_ratio() -> None:
    # Three samples voting (0, 0, 1) on the first example and (2, 2, 2) on the second.
    samples = np.array([[[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]],
                        [[0.6, 0.4, 0.0], [0.1, 0.1, 0.8]],
                        [[0.2, 0.8, 0.0], [0.3, 0.3, 0.4]]])
    np.testing.assert_allclose(disagreement(samples), [1 / 3, 0.0])
    assert disagreement(samples[:1]).tolist() == [0.0, 0.0]


def test_uncertainty_of_two_members_that_disagree_completely() -> None:
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    scores = uncertainty_scores(samples)
    assert scores["mutual_information"][0] == pytest.approx(math.log(2))
    assert scores["expected_entropy"][0] == pytest.approx(0.0)
    assert scores["disagreement"][0] == pytest.approx(0.5)


def test_combined_score_averages_normalised_ranks() -> None:
    np.testing.assert_allclose(rank_normalise(np.array([0.5, 0.1, 0.9, 0.1])), [0.75, 0.375, 1.0, 0.375])
    score = combined_score({"a": np.array([1.0, 2.0, 3.0]), "b": np.array([30.0, 20.0, 10.0])})
    np.testing.assert_allclose(score, [2 / 3, 2 / 3, 2 / 3])
    with pytest.raises(ConfigError):
        combined_score({})


def test_confident_learning_on_hand_made_probabilities() -> None:
    # 20 confident, correct examples per class and 2 examples of class 0 confidently predicted as 1.
    labels = np.array([0] * 20 + [1] * 20 + [0, 0])
    probs = np.array([[0.95, 0.05]] * 20 + [[0.05, 0.95]] * 20 + [[0.02, 0.98]] * 2)
    learning = confident_learning(labels, probs)
    assert np.flatnonzero(learning.label_issue).tolist() == [40, 41]
    np.testing.assert_allclose(learning.label_quality[40:], [0.02, 0.02])
    assert learning.noise_rate[0] == pytest.approx(2 / 22, abs=0.01)
    assert learning.noise_rate[1] == pytest.approx(0.0, abs=0.01)


def test_confident_learning_ignores_classes_without_images() -> None:
    labels = np.array([0] * 5 + [2] * 5)
    probs = np.tile([[0.8, 0.1, 0.1]], (10, 1))
    probs[5:] = [0.1, 0.1, 0.8]
    learning = confident_learning(labels, probs)
    assert not learning.label_issue.any() and math.isnan(learning.noise_rate[1])


@pytest.mark.parametrize("settings", [{"folds": 1}, {"score_components": ("accuracy",)},
                                      {"method_options": {"seed": 3}}, {"min_similarity": 1.5}])
def test_bad_settings_are_refused(settings: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(settings)) if "method_options" not in settings else "seed"):
        AuditConfig(**settings)
