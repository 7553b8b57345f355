"""Find the noise in a (usually AI-generated) image dataset, and filter it out.

>>> from synthaug.audit import AuditConfig, audit_dataset, filter_dataset
>>> result = audit_dataset(generated, "audit", reference=real, test=real_test)
>>> result.rows[0]            # the most suspicious image: file_name, label, score, ...
>>> filter_dataset(generated, "audit", "clean", drop_top=0.1)

:func:`audit_dataset` scores every image (cross-validated confident learning, agreement with
a model trained on real data, ensemble uncertainty, exact and near-duplicates, leakage into
the test set) and writes ``scores.jsonl``, ``classes.csv``, ``audit.html`` and ``audit.json``;
:func:`filter_dataset` writes a new folder without the images it marks. Neither ever
modifies the audited dataset. :func:`audit_weights` turns an audit into per-example
training weights (``dataset.with_sample_weights(...)``), which every method honours.
"""

from synthaug.audit.duplicates import DEFAULT_MIN_SIMILARITY, Matches, find_copies
from synthaug.audit.filter import FilterResult, drop_reasons, filter_dataset, parse_drop_top
from synthaug.audit.run import ROW_FIELDS, AuditResult, audit_dataset
from synthaug.audit.scores import SCORE_COMPONENTS, AuditConfig, combined_score, confident_learning
from synthaug.audit.weights import (
    DEFAULT_WEIGHT_FLOOR,
    AuditScores,
    audit_weights,
    read_scores,
    weight_sets_from_audit,
)

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "DEFAULT_WEIGHT_FLOOR",
    "ROW_FIELDS",
    "SCORE_COMPONENTS",
    "AuditConfig",
    "AuditResult",
    "AuditScores",
    "FilterResult",
    "Matches",
    "audit_dataset",
    "audit_weights",
    "combined_score",
    "confident_learning",
    "drop_reasons",
    "filter_dataset",
    "find_copies",
    "parse_drop_top",
    "read_scores",
    "weight_sets_from_audit",
]
