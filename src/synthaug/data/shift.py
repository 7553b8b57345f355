"""Corrupted copies of a test set at five severities: a dataset shift generated in code.

Ovadia et al. (2019) measure how calibration and uncertainty degrade when the test data
drift away from the training data, on copies of the test set corrupted at increasing
severity (the ImageNet-C recipe of Hendrycks & Dietterich 2019; MNIST-C, Mu & Gilmer 2019,
for digit-sized images). :func:`corrupt` builds such a copy of any dataset; the corruptions
are computed on the ``[0, 1]`` pixel scale of the stored images, seeded, and sized relative
to a 28-pixel image so that a severity means the same on larger images:

============== ====================================================================
corruption      severity 1 .. 5
============== ====================================================================
gaussian_noise  additive ``N(0, s^2)`` pixel noise, s = 0.08, 0.12, 0.18, 0.26, 0.38
blur            Gaussian blur, sigma = 0.5, 0.75, 1.0, 1.5, 2.0 pixels (of 28)
contrast        ``(x - mean) * c + mean``, c = 0.4, 0.3, 0.2, 0.1, 0.05 (ImageNet-C)
brightness      ``x + b``, b = 0.1, 0.2, 0.3, 0.4, 0.5, clipped (ImageNet-C's V shift)
rotation        rotation by +-10, 20, 30, 45, 60 degrees, sign drawn per image
translation     shift by 2, 4, 6, 8, 10 pixels (of 28) in a direction drawn per image
============== ====================================================================

Noise, rotation sign and translation direction come from ``numpy.random.default_rng`` seeded
with ``(seed, corruption index, severity)``, so a shifted set is the same on every machine.
Corrupted pixel arrays are cached on disk under ``<cache>/shift`` by the source dataset's
fingerprint, so a study that evaluates many models on 30 shifted sets builds each once.

Spec syntax understood by :func:`synthaug.data.load_dataset`:

- ``fashion-mnist-c:test:<corruption>:<severity>``, e.g. ``fashion-mnist-c:test:blur:3``;
- ``shift:<corruption>:<severity>:<any dataset spec>``, e.g.
  ``shift:rotation:5:fashion-mnist:test[:1000]`` or ``shift:contrast:2:path/to/folder``.

References:
    Ovadia, Fertig, Ren, Nado, Sculley, Nowozin, Dillon, Lakshminarayanan & Snoek, "Can You
    Trust Your Model's Uncertainty? Evaluating Predictive Uncertainty Under Dataset Shift",
    NeurIPS 2019.
    Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
    Perturbations", ICLR 2019.
    Mu & Gilmer, "MNIST-C: A Robustness Benchmark for Computer Vision", ICML Workshop 2019.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from synthaug.data.cache import cache_dir
from synthaug.data.dataset import ImageDataset
from synthaug.errors import ConfigError, DataError
from synthaug.fileio import write_atomically

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# Severity parameters (index = severity - 1), see the module docstring.
_NOISE_STD = (0.08, 0.12, 0.18, 0.26, 0.38)
_BLUR_SIGMA = (0.5, 0.75, 1.0, 1.5, 2.0)
_CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
_ROTATION_DEGREES = (10.0, 20.0, 30.0, 45.0, 60.0)
_TRANSLATION_PIXELS = (2.0, 4.0, 6.0, 8.0, 10.0)
# Blur and translation are given in pixels of a 28-pixel image.
_REFERENCE_SIDE = 28

# A corruption maps float images (N, H, W, C) in [0, 1], a severity index and a generator to
# float images of the same shape (clipped to [0, 1] by the caller).
Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _gaussian_noise(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    return images + rng.normal(0.0, _NOISE_STD[level], images.shape)


def _blur(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # here: scipy is slow to import (CLI start-up)

    sigma = _BLUR_SIGMA[level] * images.shape[1] / _REFERENCE_SIDE
    # Blur height and width only, never across images or channels.
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="constant")


def _contrast(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    means = images.mean(axis=(1, 2, 3), keepdims=True)
    return (images - means) * _CONTRAST[level] + means


def _brightness(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    return images + _BRIGHTNESS[level]


def _rotation(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    signs = rng.choice((-1.0, 1.0), size=len(images))
    return np.stack([
        ndimage.rotate(image, sign * _ROTATION_DEGREES[level], axes=(0, 1), reshape=False, order=1, mode="constant")
        for image, sign in zip(images, signs, strict=True)
    ])


def _translation(images: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    distance = _TRANSLATION_PIXELS[level] * images.shape[1] / _REFERENCE_SIDE
    angles = rng.uniform(0.0, 2.0 * np.pi, size=len(images))
    return np.stack([
        ndimage.shift(image, (distance * np.sin(angle), distance * np.cos(angle), 0), order=1, mode="constant")
        for image, angle in zip(images, angles, strict=True)
    ])


CORRUPTIONS: dict[str, Corruption] = {
    "gaussian_noise": _gaussian_noise,
    "blur": _blur,
    "contrast": _contrast,
    "brightness": _brightness,
    "rotation": _rotation,
    "translation": _translation,
}
"""The corruptions by name, in the order of the module docstring's table."""


def check_corruption(corruption: str, severity: int, where: str = "shift") -> None:
    """Raise :class:`ConfigError` unless ``corruption`` is known and ``severity`` is 1..5."""
    if corruption not in CORRUPTIONS:
        raise ConfigError(f"{where}: unknown corruption {corruption!r}; choose from {', '.join(CORRUPTIONS)}")
    if isinstance(severity, bool) or severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be an integer from 1 to 5, got {severity!r}")


def corrupt(
    dataset: ImageDataset, corruption: str, severity: int, *, seed: int = 0, cache: bool = True
) -> ImageDataset:
    """A copy of ``dataset`` under ``corruption`` at ``severity`` (same labels and classes).

    Args:
        dataset: The clean images; all must share one size (a test set).
        corruption: A key of :data:`CORRUPTIONS`.
        severity: 1 (mild) to 5 (severe).
        seed: Seeds the random parts (noise, rotation signs, translation directions).
        cache: Read and write the corrupted pixels under ``<cache>/shift``.

    Returns:
        An in-memory dataset named ``"<name> | <corruption>:<severity>"``, grayscale when the
        source's first image is grayscale, RGB otherwise.

    Raises:
        ConfigError: Unknown corruption or a severity outside 1..5.
        DataError: The images do not share one size.
    """
    check_corruption(corruption, severity)
    mode = "L" if len(dataset) and dataset[0][0].mode in ("L", "1", "I", "I;16", "F") else "RGB"
    name = f"{dataset.name} | {corruption}:{severity}"
    path = None
    if cache:
        path = cache_dir("shift") / f"{dataset.fingerprint()[:32]}-{mode}-{corruption}-{severity}-seed{seed}.npy"
        if path.is_file():
            return ImageDataset.from_arrays(np.load(path), dataset.targets, dataset.classes, name=name)
    pixels = dataset.as_array(mode=mode).astype(np.float64) / 255.0
    rng = np.random.default_rng((seed, list(CORRUPTIONS).index(corruption), severity))
    shifted = CORRUPTIONS[corruption](pixels, severity - 1, rng)
    images = np.rint(np.clip(shifted, 0.0, 1.0) * 255.0).astype(np.uint8)
    if path is not None:
        buffer = io.BytesIO()
        np.save(buffer, images)
        write_atomically(path, lambda stream: stream.write(buffer.getvalue()), durable=False)
    return ImageDataset.from_arrays(images, dataset.targets, dataset.classes, name=name)


def parse_shift_spec(spec: str) -> tuple[str, int, str] | None:
    """``(corruption, severity, source spec)`` of a shifted-dataset spec, or ``None``.

    Understands ``shift:<corruption>:<severity>:<spec>`` and
    ``fashion-mnist-c:<split>:<corruption>:<severity>``.

    Raises:
        DataError: The spec starts like one of these but is malformed.
    """
    if spec.startswith("shift:"):
        parts = spec.split(":", 3)
        if len(parts) != 4 or not parts[3]:
            raise DataError(
                f"{spec}: write shift:<corruption>:<severity>:<dataset>, e.g. shift:blur:3:fashion-mnist:test"
            )
        corruption, severity, source = parts[1], parts[2], parts[3]
    elif spec.startswith("fashion-mnist-c:"):
        parts = spec.split(":")
        if len(parts) != 4:
            raise DataError(
                f"{spec}: write fashion-mnist-c:<split>:<corruption>:<severity>, e.g. fashion-mnist-c:test:blur:3"
            )
        source, corruption, severity = f"fashion-mnist:{parts[1]}", parts[2], parts[3]
    else:
        return None
    if not severity.isdigit():
        raise DataError(f"{spec}: severity must be an integer from 1 to 5, got {severity!r}")
    try:
        check_corruption(corruption, int(severity), where=spec)
    except ConfigError as error:
        raise DataError(str(error)) from error
    return corruption, int(severity), source
