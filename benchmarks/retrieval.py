"""Speed of the retrieval baseline (:mod:`synthaug.retrieve`) on this machine (not part of CI).

Three figures, each a median of ``--repeats`` runs in this one process:

1. ranking: :func:`synthaug.retrieve.rank_pool` over ``--pool`` random unit-length features
   of width 512 (a CLIP ViT-B/32 embedding) and 10 class prompts, ``--per-class`` images each;
   the baseline is a full ``argsort`` of every class column (what a naive top-k does);
2. the warm cache: :func:`synthaug.retrieve.pool_embeddings` on Fashion-MNIST's training set
   (60,000 images) when every embedding is already cached (random vectors put in the cache
   under the images' real content digests): hashing the images plus reading the cache;
3. feature extraction: images per second of a tiny random CLIP (2 layers of width 16, 32x32
   input, the test model) embedding ``--extract`` Fashion-MNIST images, cold cache. A real
   ViT-B/32 costs far more per image; this measures synthaug's own overhead around the model.

Run: ``nice -n 10 .venv/bin/python benchmarks/retrieval.py [--pool 100000 --repeats 5]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from synthaug.audit.clip import ClipScorer
from synthaug.audit.duplicates import pixel_digests
from synthaug.data import load_dataset
from synthaug.retrieve import _model_key, pool_embeddings, rank_pool

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from helpers.tiny_hf_models import save_tiny_clip  # noqa: E402


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--extract", type=int, default=1024)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.pool, 512), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts = rng.standard_normal((10, 512), dtype=np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    ranking = median_seconds(lambda: rank_pool(images, texts, args.per_class), args.repeats)
    naive = median_seconds(lambda: [np.argsort(-(images @ texts.T)[:, c]) for c in range(10)], args.repeats)
    print(f"ranking {args.pool:,} x 512 features, 10 classes, {args.per_class} per class: "
          f"median {ranking:.3f} s (full argsort per class: {naive:.3f} s, ratio {ranking / naive:.2f})")

    with tempfile.TemporaryDirectory() as scratch:
        clip = save_tiny_clip(Path(scratch) / "clip")
        scorer = ClipScorer(clip, device="cpu", batch_size=64)
        train = load_dataset("fashion-mnist:train")
        started = time.perf_counter()
        digests = pixel_digests(train)
        hashing = time.perf_counter() - started
        vectors = rng.standard_normal((len(train), 512), dtype=np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, sha256=np.array(digests), vectors=vectors)
        (Path(scratch) / f"clip-embeddings-{_model_key(str(clip))}.npz").write_bytes(buffer.getvalue())
        warm = median_seconds(lambda: pool_embeddings(train, scorer, scratch), max(1, args.repeats // 2))
        print(f"warm cache, {len(train):,} Fashion-MNIST images: median {warm:.2f} s "
              f"(of which hashing the pixels once: {hashing:.2f} s)")

        small = load_dataset(f"fashion-mnist:test[:{args.extract}]")
        cold_dir = Path(scratch) / "cold"
        started = time.perf_counter()
        result = pool_embeddings(small, scorer, cold_dir)
        seconds = time.perf_counter() - started
        print(f"extraction, tiny CLIP, {result.embedded} images, cold cache: {seconds:.2f} s "
              f"({result.embedded / seconds:.0f} images/s)")


if __name__ == "__main__":
    main()
