"""Entropy decomposition: hand values, the ln 2 / 0 properties, and torch's Categorical."""

import math

import numpy as np
import pytest
import torch

from synthaug.metrics import expected_entropy, mutual_information, predictive_entropy


def test_members_that_disagree_completely_have_mutual_information_ln2():
    members = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    assert mutual_information(members) == pytest.approx([math.log(2)])
    assert predictive_entropy(members) == pytest.approx([math.log(2)])
    assert expected_entropy(members) == pytest.approx([0.0])


def test_members_that_agree_have_zero_mutual_information():
    members = np.array([[[0.3, 0.7], [0.5, 0.5]]] * 4)
    hand_entropy = [-(0.3 * math.log(0.3) + 0.7 * math.log(0.7)), math.log(2)]
    assert predictive_entropy(members) == pytest.approx(hand_entropy)
    assert expected_entropy(members) == pytest.approx(hand_entropy)
    assert mutual_information(members) == pytest.approx([0.0, 0.0], abs=1e-12)


def test_a_single_sample_has_no_epistemic_uncertainty(predictions):
    probs, _ = predictions
    np.testing.assert_array_equal(mutual_information(probs[0]), np.zeros(probs.shape[1]))
    np.testing.assert_allclose(expected_entropy(probs[0]), predictive_entropy(probs[0]))


def test_decomposition_and_bounds(predictions):
    probs, _ = predictions
    n_samples, _, n_classes = probs.shape
    total, aleatoric, epistemic = predictive_entropy(probs), expected_entropy(probs), mutual_information(probs)
    assert total.shape == aleatoric.shape == epistemic.shape == (probs.shape[1],)
    np.testing.assert_allclose(total, aleatoric + epistemic, atol=1e-12)
    assert (epistemic >= 0).all() and (epistemic <= math.log(min(n_samples, n_classes)) + 1e-12).all()
    assert (total <= math.log(n_classes) + 1e-6).all()


def test_entropies_match_torch_categorical(predictions):
    probs, _ = predictions
    tensor = torch.from_numpy(probs).double()
    reference_total = torch.distributions.Categorical(probs=tensor.mean(dim=0)).entropy().numpy()
    reference_aleatoric = torch.distributions.Categorical(probs=tensor).entropy().mean(dim=0).numpy()
    np.testing.assert_allclose(predictive_entropy(probs), reference_total, rtol=1e-6)
    np.testing.assert_allclose(expected_entropy(probs), reference_aleatoric, rtol=1e-6)
