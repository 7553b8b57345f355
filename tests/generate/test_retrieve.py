"""The retrieval baseline on a tiny random CLIP, with answers built from the model's own embeddings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synthaug.data import ImageDataset, load_dataset
from synthaug.errors import ConfigError
from synthaug.retrieve import rank_pool

pytest.importorskip("transformers")
from synthaug.audit.clip import ClipScorer  # noqa: E402
from synthaug.retrieve import retrieve_dataset  # noqa: E402

from helpers.tiny_hf_models import save_tiny_clip  # noqa: E402


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_ranking_keeps_each_image_in_its_closest_class_most_similar_first():
    text = np.eye(3, 4, dtype=np.float32)  # three class directions in 4-d
    images = np.array([[0.9, 0.1, 0, 0], [0.99, 0, 0.1, 0], [0.5, 0.6, 0, 0], [0, 0, 1, 0], [0.2, 0, 0.3, 0.9],
                       [0.7, 0, 0, 0.7]], dtype=np.float32)  # fmt: skip
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    ranking = rank_pool(images, text, per_class=2)
    assert [list(i) for i in ranking.indices] == [[1, 0], [2], [3, 4]]
    np.testing.assert_allclose(ranking.similarities[0], images[[1, 0], 0], rtol=1e-6)
    excluded = np.zeros(6, dtype=bool)
    excluded[1] = True
    assert list(rank_pool(images, text, 2, excluded).indices[0]) == [0, 5]


def _expected(scorer: ClipScorer, pool: ImageDataset, prompts: list[str], per_class: int) -> list[list[int]]:
    """The answer from the model's own embeddings: each image in its most similar class, best first."""
    similarity = scorer.image_embeddings(pool).astype(np.float64) @ scorer.text_embeddings(prompts).T
    best = similarity.argmax(axis=1)
    return [sorted(np.flatnonzero(best == c), key=lambda i: -similarity[i, c])[:per_class] for c in range(len(prompts))]


def test_retrieved_folder_holds_the_nearest_images_with_provenance(tiny_clip, tmp_path,
                                                                   make_pattern_dataset: Callable[..., ImageDataset]):
    pool = make_pattern_dataset(8, seed=3)
    classes = {"cat": None, "crane": "the bird", "dog": None}
    prompts = ["a photo of a cat", "a photo of a crane (the bird)", "a photo of a dog"]
    scorer = ClipScorer(tiny_clip, device="cpu")
    expected = _expected(scorer, pool, prompts, per_class=3)

    summary = retrieve_dataset(pool, classes, tiny_clip, 3, tmp_path / "out", cache_dir=tmp_path / "cache",
                               device="cpu")  # fmt: skip
    assert summary.embedded == len(pool) and summary.prompts["crane"] == prompts[1]
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    for class_index, label in enumerate(classes):
        got = sorted((r for r in rows if r["label"] == label), key=lambda r: r["rank"])
        assert [r["pool_index"] for r in got] == [int(i) for i in expected[class_index]]
    assert max(summary.per_class_counts.values()) == 3  # some class is full, so the order is tested
    row = rows[0]
    assert row["source"] == "retrieved" and len(row["pool_sha256"]) == 64 and -1 <= row["similarity"] <= 1
    loaded = load_dataset(tmp_path / "out")
    assert len(loaded) == len(rows) and set(loaded.classes) <= set(classes)

    again = retrieve_dataset(pool, classes, tiny_clip, 3, tmp_path / "again", cache_dir=tmp_path / "cache",
                             device="cpu")  # fmt: skip
    assert again.embedded == 0  # every embedding came from the content-addressed cache
    assert (tmp_path / "again" / "metadata.jsonl").read_text().replace("again", "out") == \
        (tmp_path / "out" / "metadata.jsonl").read_text()


def test_copies_of_excluded_images_are_dropped_and_the_next_move_up(tiny_clip, tmp_path, make_pattern_dataset):
    pool = make_pattern_dataset(8, seed=3)
    classes = {"cat": None, "dog": None}
    scorer = ClipScorer(tiny_clip, device="cpu")
    expected = _expected(scorer, pool, ["a photo of a cat", "a photo of a dog"], per_class=len(pool))
    label = max((0, 1), key=lambda c: len(expected[c]))  # a random CLIP may give one class most images
    top = [int(i) for i in expected[label][:2]]
    test_set = pool.subset(top[:1])  # the best image of that class is in the test set
    summary = retrieve_dataset(pool, classes, tiny_clip, 2, tmp_path / "out", exclude=[test_set],
                               cache_dir=tmp_path / "cache", device="cpu")  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "out" / "metadata.jsonl").read_text().splitlines()]
    got = [r["pool_index"] for r in sorted(rows, key=lambda r: r["rank"]) if r["label"] == list(classes)[label]]
    assert summary.excluded >= 1 and top[0] not in got and got[0] == top[1]


def test_a_non_empty_output_folder_is_refused(tiny_clip, tmp_path, make_pattern_dataset):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        retrieve_dataset(make_pattern_dataset(1), {"cat": None}, tiny_clip, 1, tmp_path / "out")
