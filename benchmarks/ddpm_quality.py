"""Quality and speed of a ddpm generator (default: the one shipped with synthaug).

Measures, on Fashion-MNIST, the three figures the shipped generator's card reports:

(a) Agreement: a ``cnn`` classifier (``deterministic`` method) trained on 6,000 real images
    (600 per class from ``fashion-mnist:train[50000:]``, which the generator never saw)
    labels N generated images (default 2,000, N/10 per class) as the class they were asked for.
(b) Classification accuracy score (Ravuri & Vinyals 2019): a ``cnn`` trained on 6,000
    generated images alone (600 per class), evaluated on the real test set.
(c) Speed: images per second of the ``ddpm`` backend at its default settings while it
    makes the 6,000 images of (b) (PNG encoding and disk excluded).

Run from the repository root (a few minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/ddpm_quality.py [--model GEN_DIR] [--steps N] [--guidance-scale G] [--solver S]

References:
    Ravuri & Vinyals (2019), "Classification Accuracy Score for Conditional Generative Models".
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from synthaug.data import ImageDataset, load_dataset, subsample_per_class
from synthaug.generate.backends import ImageRequest, make_backend
from synthaug.methods import make_method
from synthaug.metrics import accuracy


def generate(
    backend, classes: list[str], per_class: int, params: dict, seed_offset: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """``per_class`` images of every class; returns ``(images (N, H, W), labels (N,), images/s)``."""
    requests = [
        ImageRequest(
            label=label,
            class_index=class_index,
            index=index,
            seed=seed_offset + class_index * per_class + index,
            prompt=f"a photo of a {label}",
            params=params,
        )
        for class_index, label in enumerate(classes)
        for index in range(per_class)
    ]
    _ = backend.generator  # load the weights before the clock starts
    started = time.perf_counter()
    results = list(backend.generate(requests))
    seconds = time.perf_counter() - started
    images = np.stack([np.asarray(result.image) for result in results])
    labels = np.array([result.request.class_index for result in results])
    return images, labels, len(results) / seconds


def train_cnn(data: ImageDataset, seed: int):
    return make_method("deterministic", backbone="cnn", seed=seed).fit(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="generator directory (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the generator's)")
    parser.add_argument("--guidance-scale", type=float, default=None, help="guidance (default: the generator's)")
    parser.add_argument("--solver", default=None, help="ddim or dpm-solver++2m (default: the generator's)")
    parser.add_argument("--agreement-images", type=int, default=2000, help="generated images judged in (a)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the classifiers and the real subsample")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    chosen = {"steps": args.steps, "guidance_scale": args.guidance_scale}
    params = {key: value for key, value in chosen.items() if value is not None}
    backend = make_backend("ddpm", args.model)
    backend.validate(params)
    if args.solver is not None:  # a property of the generator's defaults, not a request parameter
        backend.generator.sampling_defaults = {**backend.generator.sampling_defaults, "solver": args.solver}
        _ = backend.generator.default_solver  # checks the name
    classes = backend.classes
    figures: dict = {
        "model": backend.describe()["model"],
        "params": params,
        "solver": backend.generator.default_solver,
        "torch_threads": torch.get_num_threads(),
    }

    # (c) speed, measured while generating the CAS training set of (b).
    images, labels, images_per_second = generate(backend, classes, 600, params, seed_offset=10_000_000)
    figures["images_per_second"] = round(images_per_second, 1)
    figures["load_average_1min"] = os.getloadavg()[0]
    print(f"(c) speed: {images_per_second:.1f} images/s over {len(images)} images ({params or 'defaults'})")
    generated = ImageDataset.from_arrays(images, labels, classes, name="ddpm-generated")

    real_pool = load_dataset("fashion-mnist:train[50000:]").with_classes(classes)
    test = load_dataset("fashion-mnist:test").with_classes(classes)
    real = subsample_per_class(real_pool, 600, seed=args.seed)

    # (a) agreement of a real-trained classifier with the requested class.
    judge = train_cnn(real, args.seed)
    per_class = args.agreement_images // len(classes)
    judged_images, judged_labels, _ = generate(backend, classes, per_class, params, seed_offset=20_000_000)
    judged = ImageDataset.from_arrays(judged_images, judged_labels, classes, name="ddpm-judged")
    agreement = accuracy(judge.predict_proba(judged), judged.targets)
    real_test_accuracy = accuracy(judge.predict_proba(test), test.targets)
    predicted = judge.predict_proba(judged).mean(0).argmax(1)
    figures["agreement"] = round(agreement, 4)
    figures["agreement_per_class"] = {
        label: round(float((predicted[judged.targets == k] == k).mean()), 3) for k, label in enumerate(classes)
    }
    figures["real_classifier_test_accuracy"] = round(real_test_accuracy, 4)
    print(
        f"(a) a cnn trained on 6,000 real images labels {agreement:.1%} of {len(judged)} generated images "
        f"as asked (its own real test accuracy: {real_test_accuracy:.1%})"
    )

    # (b) classification accuracy score.
    cas_model = train_cnn(generated, args.seed)
    cas = accuracy(cas_model.predict_proba(test), test.targets)
    figures["classification_accuracy_score"] = round(cas, 4)
    print(f"(b) a cnn trained on 6,000 generated images alone: {cas:.1%} on the real test set")

    print(json.dumps(figures, indent=1))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)


if __name__ == "__main__":
    main()
