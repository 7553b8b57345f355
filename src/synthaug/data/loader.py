"""Batches of pixels for training and prediction: from memory, or streamed through DataLoader workers.

The paths give the same numbers (tested), and :class:`PixelBatches` takes one:

- **in memory** — a small array-backed set (Fashion-MNIST, digits, :meth:`ImageDataset.from_arrays`)
  whose uint8 pixels ``(N, C, H, W)`` fit comfortably: a batch is one indexing of that
  tensor. Decoding PNGs or forking workers would only add cost (Fashion-MNIST's 60,000
  images are 47 MB; a CNN step on 28x28 images takes milliseconds).
- **decoded once** — a small set of image files that the caller reads many times (training,
  validation) and whose decoded pixels fit in :data:`DECODE_ONCE_LIMIT_BYTES`: decoded into
  one tensor up front, then as above. 800 generated 28x28 PNGs take 0.05 s to decode once;
  streamed, they were decoded again every epoch (and in a local executor's worker, which may not
  start loader workers, in the training process itself).
- **streamed** — everything else (image files, large arrays): a
  :class:`torch.utils.data.DataLoader` whose worker processes decode each image, resize it
  (:class:`DecodedImages`) and augment it; only the batches in flight are in memory, so
  memory does not grow with the dataset. Workers persist across epochs and prefetch; pinned
  memory on CUDA.

Either way the batches are uint8 pixels; the backbone normalises them on the device, in
channels-last memory order (:func:`synthaug.methods.training.channels_last`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from synthaug.data.augment import ExampleAugmenter, example_keys
from synthaug.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from synthaug.data.dataset import ImageDataset

Decode = Callable[["Image.Image"], torch.Tensor]
"""One image -> uint8 pixels ``(C, H, W)`` at the model's input size (picklable, for workers)."""

IN_MEMORY_LIMIT_BYTES = 512 * 2**20
"""Largest decoded array-backed set kept as one tensor (512 MiB); larger ones stream."""

DECODE_ONCE_LIMIT_BYTES = 64 * 2**20
"""Largest decoded set of image files decoded once when read many times (64 MiB: 85,000 28x28
grey images, 445 at 224x224 RGB); larger sets stream, so memory does not grow with them."""

TINY_SET = 512
"""Sets with fewer items are read in the training process: starting workers costs more."""

NO_AUGMENTATION = -1
"""The epoch number that asks for un-augmented pixels (validation, prediction, features)."""


def default_num_workers(num_items: int) -> int:
    """Loader worker processes for a set of ``num_items``, within this process's share of the machine.

    The share is this process's torch threads (an executor running several units gives each
    ``cores // units``), capped by :func:`synthaug.execution.available_cores`; half of it goes
    to decoding workers, so units x loader workers stay within half the cores. The training
    process keeps its threads: decoding workers mostly wait once their prefetch queue is full,
    and taking threads from a compute-bound step cost more than it saved (a plain DataLoader
    loop does the same). Tiny sets use 0, and so does a daemonic process (a worker of the
    local executor), which may not have children.
    """
    from synthaug.execution import available_cores

    if num_items < TINY_SET or multiprocessing.current_process().daemon:
        return 0
    share = min(torch.get_num_threads(), available_cores())
    return share // 2


class DecodedImages(Dataset):
    """Map-style dataset: ``(seed, epoch, index)`` -> uint8 pixels ``(C, H, W)`` of ``images[index]``.

    Decoding, resizing and the per-example augmentation of that epoch run here, i.e. in the
    DataLoader's workers. ``epoch = NO_AUGMENTATION`` gives the plain pixels.
    """

    def __init__(self, images: ImageDataset, decode: Decode, augmenter: ExampleAugmenter | None) -> None:
        self.images, self.decode, self.augmenter = images, decode, augmenter

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int, int]) -> torch.Tensor:
        seed, epoch, index = key
        pixels = self.decode(self.images[index][0])
        if self.augmenter is not None and epoch != NO_AUGMENTATION:
            pixels = self.augmenter.example(pixels, int(example_keys(seed, epoch, [index])[0]))
        return pixels


class _EpochBatches(Sampler):
    """Batch sampler whose batches the caller sets before each pass (it runs in the main process,
    so persistent workers see each epoch's order without being restarted)."""

    def __init__(self) -> None:
        self.keys: list[list[tuple[int, int, int]]] = []

    def set(self, batches: Sequence[torch.Tensor], epoch: int, seed: int) -> None:
        self.keys = [[(seed, epoch, int(i)) for i in batch] for batch in batches]

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


class PixelBatches:
    """uint8 pixel batches of one set, in the order the caller asks, augmented per epoch.

    Args:
        images: The set.
        decode: One image -> uint8 ``(C, H, W)``.
        in_memory_array: ``(size, mode)`` for :meth:`ImageDataset.as_array` when the caller's
            backbone can read the set as one array; the in-memory path is then taken for a
            small array-backed set (see the module docstring). ``None``: always stream.
        augmenter: Per-example augmentation, or ``None``.
        num_workers: Loader worker processes; ``None``: :func:`default_num_workers`.
        pin_memory: Page-locked batches for fast copies to CUDA.
        reread: The caller reads the set many times (training, validation): a small set of
            files (:data:`DECODE_ONCE_LIMIT_BYTES`) is then decoded once and kept in memory.
    """

    def __init__(
        self,
        images: ImageDataset,
        decode: Decode,
        *,
        in_memory_array: tuple[tuple[int, int], str] | None = None,
        augmenter: ExampleAugmenter | None = None,
        num_workers: int | None = None,
        pin_memory: bool = False,
        reread: bool = False,
    ) -> None:
        self.augmenter = augmenter
        self.pixels: torch.Tensor | None = None
        self._loader: DataLoader | None = None
        if in_memory_array is not None:
            (height, width), mode = in_memory_array
            decoded_bytes = len(images) * (1 if mode == "L" else 3) * height * width
            limit = IN_MEMORY_LIMIT_BYTES if images.in_memory else DECODE_ONCE_LIMIT_BYTES if reread else -1
            if decoded_bytes <= limit:
                # The in-memory path: one uint8 tensor, no decoding per epoch, no workers.
                array = images.as_array(size=(height, width), mode=mode)
                self.pixels = torch.from_numpy(np.array(array)).permute(0, 3, 1, 2)  # a writable copy
        if self.pixels is None:
            # The streamed path: workers decode and augment; nothing holds the whole set.
            self.num_workers = default_num_workers(len(images)) if num_workers is None else int(num_workers)
            if self.num_workers < 0:
                raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
            if self.num_workers and multiprocessing.current_process().daemon:
                raise ConfigError(
                    f"num_workers={self.num_workers}: this process is a daemonic worker (the local executor's) "
                    "and cannot start loader workers; set num_workers: 0 (or null) or run units on Ray"
                )
            self._sampler = _EpochBatches()
            self._loader = DataLoader(
                DecodedImages(images, decode, augmenter),
                batch_sampler=self._sampler,
                num_workers=self.num_workers,
                pin_memory=pin_memory,
                persistent_workers=self.num_workers > 0,
                prefetch_factor=4 if self.num_workers > 0 else None,
                # Its own generator: the loader must not draw from torch's global one, or
                # dropout would differ between the in-memory and the streamed path.
                generator=torch.Generator(),
            )
        else:
            self.num_workers = 0
        self._length = len(images)

    @property
    def streamed(self) -> bool:
        """Whether batches come through the DataLoader (else from one tensor in memory)."""
        return self._loader is not None

    def __len__(self) -> int:
        return self._length

    def batches(
        self, batches: Sequence[torch.Tensor], epoch: int = NO_AUGMENTATION, seed: int = 0
    ) -> Iterator[torch.Tensor]:
        """Yield uint8 ``(B, C, H, W)`` for each index tensor in ``batches``.

        ``epoch >= 0`` draws that epoch's augmentation, seeded by ``(seed, epoch, index)``;
        :data:`NO_AUGMENTATION` gives the images.
        """
        if self._loader is None:
            for index in batches:
                pixels = self.pixels[index]
                if self.augmenter is not None and epoch != NO_AUGMENTATION:
                    pixels = self.augmenter.batch(pixels, example_keys(seed, epoch, index.numpy()))
                yield pixels
            return
        self._sampler.set(batches, epoch, seed)
        yield from self._loader


def sequential_batches(count: int, batch_size: int) -> list[torch.Tensor]:
    """Index tensors ``[0, B), [B, 2B), ...`` covering ``count`` items in order."""
    return list(torch.arange(count).split(batch_size))
