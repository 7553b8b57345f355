"""Uncertainty methods, chosen by string key.

>>> from synthaug.methods import make_method, load_method
>>> method = make_method("mc-dropout", backbone="cnn", epochs=10, seed=0).fit(train)
>>> probs = method.predict_proba(test)          # (S, N, C) probability samples
>>> method.save("model_dir"); load_method("model_dir")

Keys: ``deterministic``, ``temperature``, ``mc-dropout``, ``ensemble``, ``bnn``, ``laplace``.
See :mod:`synthaug.methods.base` for the contract and how to add a method.
"""

# Importing a method's module registers it.
from synthaug.methods import bnn, deterministic, ensemble, laplace, mc_dropout, temperature  # noqa: E402,F401
from synthaug.methods.base import METHODS, UncertaintyMethod, load_method, make_method, register_method
from synthaug.methods.training import PreparedData, TrainingConfig, TrainingHistory, train_model

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
