"""scikit-learn's handwritten digits, resized to 28x28: an offline out-of-distribution set.

1,797 8x8 grayscale digits ship inside scikit-learn (UCI optical recognition of handwritten
digits), so they load without a network. Like Fashion-MNIST they are bright strokes on a dark
background; resized to 28x28 they can be fed to a Fashion-MNIST model as images it has
never seen the like of.

References:
    Alpaydin and Kaynak. Optical Recognition of Handwritten Digits. UCI Machine Learning
    Repository, 1998. https://doi.org/10.24432/C50P49
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from synthaug.data.dataset import RESAMPLE, ImageDataset

CLASSES = [str(digit) for digit in range(10)]
SIZE = 1797
_MAX_INTENSITY = 16  # scikit-learn's digits count pixels 0..16


def load_digits_dataset(size: int = 28) -> ImageDataset:
    """The 1,797 scikit-learn digits as uint8 ``(N, size, size)`` images, classes ``"0".."9"``."""
    from sklearn.datasets import load_digits  # here: scikit-learn is slow to import (CLI start-up)

    digits = load_digits()
    small = np.rint(digits.images * (255 / _MAX_INTENSITY)).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(image).resize((size, size), RESAMPLE)) for image in small])
    return ImageDataset.from_arrays(images, digits.target, CLASSES, name="digits")
