"""Exact and near-duplicate images, within a dataset and against other datasets.

Two kinds of copy are found:

* **exact**: the decoded pixels are identical (sha256 of the RGB pixels and the size, so
  a PNG file and an in-memory array holding the same picture match);
* **near**: the 64-bit DCT perceptual hashes (pHash) differ in at most ``max_distance``
  bits. A pHash keeps only the signs of the lowest spatial frequencies, so re-encoding,
  slight noise, small brightness changes and resizing leave it (almost) unchanged.

Against a test set, either kind is *leakage*: a training image that copies a test image
makes the test score a memory test.

The pHash is written here with :func:`scipy.fft.dctn` because it is a dozen lines and the
usual libraries (``imagehash``) would add a dependency for one function; it follows the
classic definition (Zauner 2010): grayscale, resize to 32x32, 2-D DCT-II, keep the 8x8
lowest frequencies, one bit per coefficient: above the median of those 64 coefficients
without the DC term.

References:
    Zauner, "Implementation and Benchmarking of Perceptual Image Hash Functions", Master's
    thesis, Upper Austria University of Applied Sciences, 2010.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import scipy.fft

from synthaug.data import ImageDataset

HASH_IMAGE_SIZE = 32
"""Side of the grayscale image the DCT is taken of."""

HASH_FREQUENCIES = 8
"""The hash keeps the ``8 x 8`` lowest DCT frequencies: 64 bits."""

DEFAULT_MAX_DISTANCE = 4
"""Hamming distance (bits of 64) up to which two pHashes count as near-duplicates.

Measured on Fashion-MNIST (``benchmarks/noise.py`` prints it): distinct photographs of
the same kind of garment rarely come this close, while an image with slight noise or
re-encoding stays within 0-2 bits."""

# Rows of the query compared with all candidates at once: 512 x 60,000 uint64 = 240 MB.
_CHUNK = 512


def pixel_digests(dataset: ImageDataset) -> list[str]:
    """sha256 hex digest of each image's RGB pixels and size, in dataset order."""
    digests = []
    for index in range(len(dataset)):
        image = dataset[index][0].convert("RGB")
        digest = hashlib.sha256(f"{image.width}x{image.height}\n".encode())
        digest.update(image.tobytes())
        digests.append(digest.hexdigest())
    return digests


def perceptual_hashes(dataset: ImageDataset) -> np.ndarray:
    """64-bit DCT perceptual hash of each image (see the module docstring).

    Returns:
        uint64 ``(N,)``; bit ``k`` is frequency ``(k // 8, k % 8)``.
    """
    pixels = dataset.as_array(size=(HASH_IMAGE_SIZE, HASH_IMAGE_SIZE), mode="L")[..., 0].astype(np.float64)
    return perceptual_hashes_of_pixels(pixels)


def perceptual_hashes_of_pixels(pixels: np.ndarray) -> np.ndarray:
    """pHash of grayscale images already resized: float ``(N, 32, 32)`` -> uint64 ``(N,)``."""
    spectrum = scipy.fft.dctn(pixels, type=2, axes=(1, 2), norm="ortho")
    low = spectrum[:, :HASH_FREQUENCIES, :HASH_FREQUENCIES].reshape(len(pixels), -1)
    # The DC term is the mean brightness; leaving it out of the median keeps the threshold
    # about the image's structure, as in Zauner's definition.
    median = np.median(low[:, 1:], axis=1, keepdims=True)
    bits = (low > median).astype(np.uint64)
    return (bits << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def hamming_distances(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Bit distances between uint64 hashes: ``(Q,)`` x ``(M,)`` -> uint8 ``(Q, M)``."""
    return np.bitwise_count(np.bitwise_xor(query[:, None], candidates[None, :]))


@dataclass(frozen=True)
class Matches:
    """For each query image, the closest candidate image that it (nearly) copies.

    Attributes:
        index: int64 ``(N,)`` index of the matched candidate, -1 where none matches.
        distance: int64 ``(N,)`` pHash distance to it (0 for exact copies), -1 where none.
        exact: bool ``(N,)``: the pixels are identical.
    """

    index: np.ndarray
    distance: np.ndarray
    exact: np.ndarray

    @property
    def found(self) -> np.ndarray:
        """bool ``(N,)``: the query image copies some candidate."""
        return self.index >= 0


def _exact_matches(query_digests: list[str], candidate_digests: list[str], within: bool) -> np.ndarray:
    first_of: dict[str, int] = {}
    for index, digest in enumerate(candidate_digests):
        first_of.setdefault(digest, index)
    matches = np.full(len(query_digests), -1, dtype=np.int64)
    for index, digest in enumerate(query_digests):
        match = first_of.get(digest, -1)
        if not within or match < index:  # within a set, only an earlier image is the original
            matches[index] = match
    return matches


def find_copies(
    query: ImageDataset,
    candidates: ImageDataset | None = None,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> Matches:
    """Find the images of ``query`` that copy an image of ``candidates``, exactly or nearly.

    Args:
        query: The images to check.
        candidates: The images they may copy (a reference or test set); ``None`` looks for
            copies within ``query``, where the match of an image is the first *earlier*
            image it copies (so the first of a group of copies has no match and keeping the
            unmatched images keeps one of each group).
        max_distance: Largest pHash Hamming distance (0-64) that counts as a near copy;
            -1 finds exact copies only.

    Returns:
        The :class:`Matches`; an exact copy wins over a near one.
    """
    within = candidates is None
    candidates = query if within else candidates
    index = _exact_matches(pixel_digests(query), pixel_digests(candidates), within)
    exact = index >= 0
    distance = np.where(exact, 0, -1).astype(np.int64)
    if max_distance >= 0 and len(candidates):
        query_hashes, candidate_hashes = perceptual_hashes(query), perceptual_hashes(candidates)
        for start in range(0, len(query), _CHUNK):
            rows = np.arange(start, min(start + _CHUNK, len(query)))
            distances = hamming_distances(query_hashes[rows], candidate_hashes).astype(np.int64)
            if within:
                # Only earlier images (strictly lower index) may be the original.
                distances[np.arange(len(query))[None, :] >= rows[:, None]] = 65
                # The first earlier image within reach, not the nearest: a stable choice
                # that points every member of a group of copies at its first member.
                near = distances <= max_distance
                best = np.where(near.any(axis=1), near.argmax(axis=1), -1)
            else:
                nearest = distances.argmin(axis=1)
                best = np.where(distances[np.arange(len(rows)), nearest] <= max_distance, nearest, -1)
            for row, match in zip(rows, best):
                if match >= 0 and not exact[row]:
                    index[row], distance[row] = match, distances[row - start, match]
    return Matches(index=index, distance=distance, exact=exact)
