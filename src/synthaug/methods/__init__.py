"""Uncertainty methods, chosen by string key.

>>> from synthaug.methods import make_method, load_method
>>> method = make_method("mc-dropout", backbone="cnn", epochs=10, seed=0).fit(train)
>>> probs = method.predict_proba(test)          # (S, N, C) probability samples
>>> method.save("model_dir"); load_method("model_dir")

Keys: ``deterministic``, ``temperature``, ``mc-dropout``, ``ensemble``, ``bnn``, ``laplace``.
See :mod:`synthaug.methods.base` for the contract and how to add a method.
"""

import importlib

from synthaug.methods.base import METHODS, UncertaintyMethod, load_method, make_method, register_method
from synthaug.methods.training import PreparedData, TrainingConfig, TrainingHistory, train_model

# Importing a method's module registers it.
_METHOD_MODULES = ["deterministic", "temperature", "mc_dropout", "ensemble", "bnn", "laplace"]

# TODO(integration): bnn and laplace are written in parallel; this tolerance goes once they land.
for _name in _METHOD_MODULES:
    try:
        importlib.import_module(f"synthaug.methods.{_name}")
    except ModuleNotFoundError as _error:
        if _error.name != f"synthaug.methods.{_name}":
            raise

__all__ = [
    "METHODS",
    "PreparedData",
    "TrainingConfig",
    "TrainingHistory",
    "UncertaintyMethod",
    "load_method",
    "make_method",
    "register_method",
    "train_model",
]
