"""The demo study (``synthaug demo``, what ``make demo`` runs): Fashion-MNIST, offline.

The shipped ``ddpm`` generator plays the text-to-image model. It was trained on Fashion-MNIST
training images 0-49,999 only, so the real pool is images 50,000-59,999 (never seen by the
generator) and the official test set stays untouched. The grid reproduces the original
study's three experiments (synthetic -> classifier, real -> same classifier, synthetic ->
BNN), adds the scarce-real + synthetic regime and temperature scaling and deep ensembles, at 3
seeds, with scikit-learn's digits as the out-of-distribution set. At 10 and 30 real images per
class it also trains with classical augmentation (flip-crop, MixUp), with and without
the generated images, so the report answers whether generated images beat, or add to, the
augmentation a practitioner gets for free (issue 18; SaSPA, NeurIPS 2024).

Every unit trains for the same number of optimiser steps (``max_steps``, no early stopping,
the best validation checkpoint kept), not a number of epochs: 8 epochs gave 10 real images
per class 16 optimiser steps and 80 + 10 mixed ones 120, an unfair comparison whose smallest
models were still improving when stopped; "at least N steps" (``min_steps``) gave the mixed
sets twice the steps of the real ones. The report flags any unit whose validation loss was
still falling at the end ("under-trained").

Sizes, step budget, network width and sample counts are chosen so that ``make demo`` on a
fresh clone, install included, finishes within five minutes on 2 CPU cores: learning curves
use the cheap baseline only, the uncertainty methods run at the largest size, and the
generated images are generated once and shared by every seed (and cached: a rerun resumes).
``examples/fashion-mnist-ddpm.yaml`` is the thorough version.
"""

from __future__ import annotations

import os
from typing import Any

from synthaug.progress import ProgressCallback
from synthaug.study.config import StudyConfig, parse_config
from synthaug.study.runner import StudyResult, run_study

__all__ = [
    "AUGMENTATION_POLICIES", "CNN_CHANNELS", "DEFAULT_RUN_DIR", "DEMO_CONFIG", "MAIN_SIZE", "MAX_STEPS",
    "demo_config", "run_demo",
]  # fmt: skip

DEFAULT_RUN_DIR = "runs/demo"

# Images per class where every method is compared (and the most any regime generates).
MAIN_SIZE = 80

# Optimiser steps of every unit (TrainingConfig.max_steps). 10 + 80 mixed images per class
# (11 epochs at 150 steps) gained 1.7 points over 10 real at 150 steps with early stopping and
# about 5 at 300 steps; 200 steps without early stopping is what five minutes allow.
MAX_STEPS = 200

# Convolution widths of the demo's cnn: half the default (32, 64). At 10-80 images per class it
# was as accurate (200 steps, seeds 0 / 1: 10 real per class 74.2 / 71.4 % vs 74.1 / 72.1 %,
# 80 real per class 81.5 / 82.9 % vs 80.9 / 82.5 %), and it predicts 2.4-3.8x and trains 1.7-2.3x
# faster on one CPU thread (benchmarks/results/pixel_layout.cpu.txt), which pays for a fair step
# budget within five minutes.
CNN_CHANNELS = [16, 32]

# Classical policies the demo compares generated images with (and stacks them on): the standard
# small-image recipe (per example) and MixUp (per batch, and known to change calibration: Wen et
# al. 2021). TrivialAugment is per example and costs 1.24x a step here; the thorough comparison
# of every policy is `benchmarks/augmentation.py`.
AUGMENTATION_POLICIES = ("flip-crop", "mixup")

DEMO_CONFIG: dict[str, Any] = {
    "title": "Can images from a text-to-image model replace or augment real Fashion-MNIST images?",
    "real": {
        "train": "fashion-mnist:train[50000:]",
        "test": "fashion-mnist:test",
        # 300 validation images (early stopping, temperature scaling), scored every epoch: with a
        # step budget the smallest sets run many short epochs, each scored.
        "val_fraction": 0.03,
    },
    "synthetic": [
        {
            "name": "ddpm",
            "generate": {"backend": "ddpm", "per_class": MAIN_SIZE, "prompt": "a photo of a {label}", "seed": 0},
        },
        # Guided generation (SDEdit variants of each regime's real images, `init_images: real`)
        # left the demo to make room for classical augmentation within five minutes; it is
        # measured in benchmarks/guided.py and benchmarks/augmentation.py.
    ],
    "regimes": [
        {"name": "real", "data": "real", "sizes": [10, 30, MAIN_SIZE]},
        # Classical augmentation at the scarce sizes (a flip is label-preserving for clothes).
        *[
            {"name": f"real+{policy}", "data": "real", "sizes": [10, 30], "augment": policy,
             "methods": ["deterministic"]}
            for policy in AUGMENTATION_POLICIES
        ],
        # The ensemble runs on real images only: each member is a full training run.
        {"name": "synthetic", "data": "synthetic", "source": "ddpm", "sizes": [10, MAIN_SIZE],
         "methods": ["deterministic", "temperature", "bnn"]},
        *[
            {
                "name": "real+synthetic" + ("" if policy == "none" else f"+{policy}"),
                "data": "mixed",
                "source": "ddpm",
                "sizes": [10, 30],
                "synthetic_per_class": MAIN_SIZE,
                "methods": ["deterministic"],
                **({} if policy == "none" else {"augment": policy}),
            }
            for policy in ("none", *AUGMENTATION_POLICIES)
        ],
    ],
    "backbones": [{"name": "cnn", "params": {"channels": CNN_CHANNELS}}],
    # The baseline draws the learning curves at every size; the other methods run at the main
    # size only, the ensemble with 3 members rather than the usual 5 (each member is a full
    # training run).
    "methods": [
        "deterministic",
        {"key": "temperature", "sizes": [MAIN_SIZE]},
        {"key": "ensemble", "sizes": [MAIN_SIZE], "params": {"num_members": 3}},
        # Bayes by Backprop on the last layer: the deterministic convolutional trunk runs once
        # per test image, so 20 posterior samples cost little more than one.
        {"key": "bnn", "sizes": [MAIN_SIZE], "params": {"num_samples": 20, "bayesian_layers": "last"}},
    ],
    # A step budget, not epochs (see the module docstring): every unit makes the same number of
    # optimiser steps whatever its training set's size, and keeps its best validation checkpoint
    # (early stopping on a 300-image validation set stopped mixed sets after half their budget).
    "method_params": {"max_steps": MAX_STEPS, "batch_size": 64, "patience": None},
    "seeds": [0, 1, 2],
    "ood": ["digits"],
    "bootstrap_resamples": 100,
    # Each synthetic source is inspected (precision/recall/density/coverage, FD, memorisation)
    # in the feature space of a reference classifier trained on the real pool; 2 epochs (156
    # steps on its 10,000 images) give a feature space good enough for that (real-vs-real
    # precision, recall and coverage 0.96-0.97) at a fraction of the default training.
    "audit": {"epochs": 2},
    # One torch thread: on 2 cores the small CNN trains far faster single-threaded (measured:
    # 2 epochs on 2,000 images take 3 s with 1 thread, 58 s with 2 when another process is busy).
    "threads": 1,
}


def demo_config() -> StudyConfig:
    """The validated demo config."""
    return parse_config(DEMO_CONFIG)


def run_demo(
    out_dir: str | os.PathLike[str] = DEFAULT_RUN_DIR,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> StudyResult:
    """Run (or resume) the demo study into ``out_dir`` on ``workers`` local processes (default:
    one per core), then ``synthaug demo`` draws its report."""
    from synthaug.execution import available_cores
    from synthaug.execution.local import LocalExecutor

    config = demo_config()
    with LocalExecutor(workers or available_cores(), threads_per_worker=config.threads) as executor:
        return run_study(config, out_dir, progress=progress, executor=executor)
