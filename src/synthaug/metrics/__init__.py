"""Metrics for probabilistic classifiers: accuracy, calibration, uncertainty, OOD detection,
selective prediction, bootstrap intervals, and the predictions file they all read.

Every metric takes probability samples ``(S, N, C)`` (or ``(N, C)``, read as ``S = 1``) as a
numpy array or torch tensor, plus integer labels ``(N,)``. Conventions are documented on each
function; :data:`synthaug.metrics.evaluate.CONVENTIONS` summarises them.
"""

from synthaug.metrics.bootstrap import ConfidenceInterval, bootstrap_ci
from synthaug.metrics.calibration import (
    ReliabilityDiagram,
    classwise_calibration_error,
    expected_calibration_error,
    maximum_calibration_error,
    reliability_diagram,
)
from synthaug.metrics.classification import accuracy, brier_score, negative_log_likelihood
from synthaug.metrics.evaluate import evaluate_prediction_files, evaluate_predictions, metric_bounds
from synthaug.metrics.ood import fpr_at_95_tpr, ood_aupr, ood_auroc
from synthaug.metrics.plots import ReliabilityDisplay
from synthaug.metrics.predictions import Predictions, load_predictions, save_predictions
from synthaug.metrics.selective import RiskCoverageCurve, aurc, risk_coverage_curve
from synthaug.metrics.uncertainty import expected_entropy, mutual_information, predictive_entropy

__all__ = [
    "ConfidenceInterval",
    "Predictions",
    "ReliabilityDiagram",
    "ReliabilityDisplay",
    "RiskCoverageCurve",
    "accuracy",
    "aurc",
    "bootstrap_ci",
    "brier_score",
    "classwise_calibration_error",
    "evaluate_prediction_files",
    "evaluate_predictions",
    "expected_calibration_error",
    "expected_entropy",
    "fpr_at_95_tpr",
    "load_predictions",
    "maximum_calibration_error",
    "metric_bounds",
    "mutual_information",
    "negative_log_likelihood",
    "ood_aupr",
    "ood_auroc",
    "predictive_entropy",
    "reliability_diagram",
    "risk_coverage_curve",
    "save_predictions",
]
