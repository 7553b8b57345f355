"""Prediction throughput of the uncertainty methods (not part of CI).

Images per second of ``predict_proba`` on the 10,000 Fashion-MNIST test images with the
``cnn`` backbone, for ``deterministic``, ``mc-dropout`` (20 samples) and a last-layer
``bnn`` (20 samples): the work a study unit does after training, on the test set and each
OOD set. The timed call starts from the :class:`~synthaug.data.ImageDataset` (decoding and
normalising the pixels included), as the study runner calls it. The networks are trained
for one epoch on 2,000 images only: the weights do not change the cost of a forward pass.

Prints, per method, the median (and the spread) of ``--repeats`` timed calls.

Run: ``nice -n 10 .venv/bin/python benchmarks/predict.py [--repeats 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from synthaug.data import load_dataset, subsample_per_class
from synthaug.methods import make_method

METHODS = {
    "deterministic": ("deterministic", {}),
    "mc-dropout (S=20)": ("mc-dropout", {"num_samples": 20}),
    "bnn last layer (S=20)": ("bnn", {"bayesian_layers": "last", "num_samples": 20}),
}


def images_per_second(method, test, repeats: int) -> list[float]:
    """Images/s of ``repeats`` calls of ``method.predict_proba(test)``, after one warm-up call."""
    method.predict_proba(test.subset(slice(0, 512)))
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        probs = method.predict_proba(test)
        rates.append(len(test) / (time.perf_counter() - started))
        assert probs.shape[1] == len(test)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--test", default="fashion-mnist:test", help="the images predicted")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Older synthaug (the "before" figures) drew progress bars unless told progress=False.
    quiet = {"progress": False} if make_method("deterministic").progress is True else {}
    train = subsample_per_class(load_dataset("fashion-mnist:train"), 200, seed=0)
    test = load_dataset(args.test)
    print(f"{len(test)} test images, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, (key, options) in METHODS.items():
        method = make_method(key, epochs=1, seed=0, device="cpu", **quiet, **options).fit(train)
        rates = images_per_second(method, test, args.repeats)
        spread = f"{min(rates):,.0f}-{max(rates):,.0f}"
        print(f"{name:24s} {statistics.median(rates):9,.0f} images/s  (median of {len(rates)}: {spread})")


if __name__ == "__main__":
    main()
