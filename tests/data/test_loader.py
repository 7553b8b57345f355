"""Pixel batches: in memory or streamed by DataLoader workers, with the same numbers either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from synthaug.data import ImageDataset, load_image_folder, loader
from synthaug.data.augment import parse_augment
from synthaug.data.dataset import ImageDecoder
from synthaug.data.loader import PixelBatches, default_num_workers, sequential_batches
from synthaug.execution import available_cores
from synthaug.methods import make_method

SIZE = (28, 28)


class NoWholeArray(ImageDataset):
    """A real dataset that refuses to decode everything at once (what streaming must never ask)."""

    def as_array(self, size=None, mode="L"):
        raise AssertionError("as_array was called: a code path built an O(N) pixel tensor for files")


def strict_folder(root: Path) -> NoWholeArray:
    folder = load_image_folder(root)
    return NoWholeArray.from_files(
        [Path(f) for f in folder.files], folder.targets, folder.classes, folder.records, folder.name
    )


def read_all(batches: PixelBatches, epoch: int, order: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(list(batches.batches(order, epoch, seed=7)))


def test_in_memory_and_streamed_with_any_worker_count_give_the_same_pixels(tiny_arrays_dataset) -> None:
    augmenter = parse_augment(["flip-crop", "trivialaugment"]).example_augmenter()
    decode = ImageDecoder(SIZE, "L")
    order = list(torch.randperm(len(tiny_arrays_dataset), generator=torch.Generator().manual_seed(0)).split(16))
    in_memory = PixelBatches(tiny_arrays_dataset, decode, in_memory_array=(SIZE, "L"), augmenter=augmenter)
    assert not in_memory.streamed
    streams = [PixelBatches(tiny_arrays_dataset, decode, augmenter=augmenter, num_workers=w) for w in (0, 2)]
    assert all(stream.streamed for stream in streams)
    for epoch in (0, 1):
        expected = read_all(in_memory, epoch, order)
        for stream in streams:
            assert torch.equal(read_all(stream, epoch, order), expected)
    assert not torch.equal(read_all(in_memory, 0, order), read_all(in_memory, 1, order))
    plain = read_all(in_memory, -1, sequential_batches(len(tiny_arrays_dataset), 32))
    assert torch.equal(plain[:, 0], torch.from_numpy(tiny_arrays_dataset.as_array()[..., 0]))


def test_streaming_a_method_with_two_workers_gives_the_numbers_of_zero(tiny_image_folder: Path, monkeypatch) -> None:
    # A set of files too large to decode once (the limit is 0 here) streams; as_array raises:
    # nothing may hold every image.
    monkeypatch.setattr(loader, "DECODE_ONCE_LIMIT_BYTES", 0)
    train = strict_folder(tiny_image_folder)
    options = {
        "backbone_options": {"channels": [8, 16], "hidden": 32},
        "epochs": 2,
        "batch_size": 16,
        "augment": ["flip-crop", "trivialaugment"],
        "seed": 0,
    }
    threads = torch.get_num_threads()
    probs = [
        make_method("mc-dropout", num_samples=3, num_workers=workers, **options).fit(train).predict_proba(train)
        for workers in (0, 2)
    ]
    np.testing.assert_array_equal(probs[0], probs[1])
    assert torch.get_num_threads() == threads  # the training process keeps its threads
    assert probs[0].shape == (3, 90, 3)


def test_default_workers_follow_the_set_size_and_this_process_share() -> None:
    assert default_num_workers(10) == 0
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_num_workers(100_000) == 0
        torch.set_num_threads(2)
        assert default_num_workers(100_000) == min(2, available_cores()) // 2
    finally:
        torch.set_num_threads(threads)


def test_a_small_set_of_files_read_many_times_is_decoded_once_with_the_streamed_pixels(tiny_image_folder: Path) -> None:
    folder = load_image_folder(tiny_image_folder)
    augmenter = parse_augment(["flip-crop", "trivialaugment"]).example_augmenter()
    decode = ImageDecoder(SIZE, "L")
    order = list(torch.randperm(len(folder), generator=torch.Generator().manual_seed(1)).split(16))
    once = PixelBatches(folder, decode, in_memory_array=(SIZE, "L"), augmenter=augmenter, reread=True)
    assert not once.streamed  # decoded into one tensor up front
    # Read once (prediction), or too large for the limit: streamed, as before.
    assert PixelBatches(folder, decode, in_memory_array=(SIZE, "L"), augmenter=augmenter).streamed
    streamed = PixelBatches(strict_folder(tiny_image_folder), decode, augmenter=augmenter, num_workers=0)
    for epoch in (-1, 0, 1):
        assert torch.equal(read_all(once, epoch, order), read_all(streamed, epoch, order))


def test_a_method_trains_on_small_file_sets_decoded_once_with_the_numbers_of_streaming(
    tiny_image_folder: Path, monkeypatch
) -> None:
    train = load_image_folder(tiny_image_folder)
    options = {"backbone_options": {"channels": [8, 16], "hidden": 32}, "max_steps": 6, "batch_size": 16,
               "augment": "flip-crop", "seed": 0}  # fmt: skip
    decoded_once = make_method("deterministic", **options).fit(train).predict_proba(train)
    monkeypatch.setattr(loader, "DECODE_ONCE_LIMIT_BYTES", 0)
    streamed = make_method("deterministic", **options).fit(train).predict_proba(train)
    np.testing.assert_array_equal(decoded_once, streamed)
