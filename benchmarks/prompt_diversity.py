"""Prompt diversity of templates, text-model expansion and caption prompts (not part of CI).

For each way of making prompts, on the 10 Fashion-MNIST class names, ``--per-class`` prompts
per class, prints: prompts, distinct prompts, distinct words, and the mean pairwise cosine
distance between the prompts of a class (averaged over classes) in two text spaces:
TF-IDF word vectors (scikit-learn; lexical diversity) and the text tower of a CLIP model
(``--clip DIR``; default: the tiny random CLIP of the tests, whose distances mean little).

The ways: ``template`` ("a photo of a {label}", one prompt per class), ``template+context``
(built-in backgrounds and styles drawn per image, :class:`synthaug.generate.prompts.PromptSpec`),
``expand`` (:func:`synthaug.generate.expand.expand_prompts` with a local text-generation model,
``--text-model DIR``; default: the tiny random GPT-2 of the tests) and ``captions``
(:func:`synthaug.generate.captions.caption_images` of Fashion-MNIST training images with
``--captioner DIR``; default: the tiny random BLIP of the tests). With the random test models
the expansion and caption rows show the pipeline, not what a real model writes; pass real
model folders for meaningful numbers.

Run: ``nice -n 10 .venv/bin/python benchmarks/prompt_diversity.py [--per-class 20]``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from synthaug.audit.clip import ClipScorer
from synthaug.data import load_dataset
from synthaug.generate.captions import caption_images, caption_prompt_spec
from synthaug.generate.engine import derive_seed
from synthaug.generate.expand import PromptExpansion, expand_prompts
from synthaug.generate.prompts import BUILTIN_BACKGROUNDS, BUILTIN_STYLES, PromptSpec

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from helpers.tiny_hf_models import save_tiny_blip, save_tiny_clip, save_tiny_gpt2  # noqa: E402


def mean_pairwise_distance(vectors: np.ndarray) -> float:
    """Mean cosine distance over the distinct pairs of rows (0 for fewer than two rows)."""
    if len(vectors) < 2:
        return 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    pairs = np.triu_indices(len(vectors), k=1)
    return float(np.mean(1.0 - similarity[pairs]))


def diversity(prompts: dict[str, list[str]], scorer: ClipScorer) -> dict[str, float]:
    every = list(itertools.chain.from_iterable(prompts.values()))
    tfidf = TfidfVectorizer().fit(every)
    return {
        "prompts": len(every),
        "distinct": len(set(every)),
        "distinct_words": len({word for prompt in every for word in prompt.lower().replace(",", " ").split()}),
        "tfidf_distance": float(np.mean([mean_pairwise_distance(tfidf.transform(p).toarray())
                                         for p in prompts.values()])),
        "clip_distance": float(np.mean([mean_pairwise_distance(scorer.text_embeddings(p)) for p in prompts.values()])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--clip", type=Path)
    parser.add_argument("--text-model", type=Path)
    parser.add_argument("--captioner", type=Path)
    args = parser.parse_args()
    n = args.per_class
    train = load_dataset("fashion-mnist:train")
    classes = list(train.classes)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        scorer = ClipScorer(args.clip or save_tiny_clip(root / "clip"), device="cpu")
        # The tiny CLIP reads one token per character, 64 at most; its tokenizer does not say so.
        scorer.processor.tokenizer.model_max_length = scorer.model.config.text_config.max_position_embeddings
        ways: dict[str, dict[str, list[str]]] = {}
        ways["template"] = {label: [f"a photo of a {label}"] for label in classes}
        spec = PromptSpec(backgrounds=BUILTIN_BACKGROUNDS, styles=BUILTIN_STYLES)
        ways["template+context"] = {
            label: [spec.choose(label, i, 0, derive_seed(0, label, i, 0)).prompt for i in range(n)] for label in classes
        }
        text_model = args.text_model or save_tiny_gpt2(root / "gpt2")
        expansion = PromptExpansion(backend="transformers", model=str(text_model), per_class=n, max_words=40)
        expanded = expand_prompts({label: None for label in classes}, expansion, None)
        ways["expand"] = {label: list(entry.prompts) for label, entry in expanded.classes.items()}
        captioner = args.captioner or save_tiny_blip(root / "blip")
        first = np.concatenate([np.flatnonzero(train.targets == c)[:n] for c in range(len(classes))])
        real = train.subset(first)
        captions = caption_images(real, captioner, cache_dir=root / "captions", device="cpu")
        ways["captions"] = {label: list(p) for label, p in caption_prompt_spec(real, captions).class_prompts.items()}

        print(f"{'prompts':<18}{'n':>6}{'distinct':>10}{'words':>8}{'tfidf dist':>12}{'clip dist':>11}")
        for name, prompts in ways.items():
            d = diversity(prompts, scorer)
            print(f"{name:<18}{d['prompts']:>6}{d['distinct']:>10}{d['distinct_words']:>8}"
                  f"{d['tfidf_distance']:>12.3f}{d['clip_distance']:>11.4f}")
        print("models:", "clip", args.clip or "tiny random (tests)", "| text", args.text_model or "tiny random GPT-2",
              "| captioner", args.captioner or "tiny random BLIP")
        for name in ("template+context", "expand", "captions"):
            print(f"example {name}: {ways[name][classes[0]][0]!r}")


if __name__ == "__main__":
    main()
