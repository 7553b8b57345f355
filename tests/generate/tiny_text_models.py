"""Tiny random Hugging Face models saved with ``save_pretrained``, built offline in code.

What a user's downloaded model folder looks like, in a few hundred kB: a GPT-2 text
generator (for prompt expansion) and a BLIP captioner (for caption prompts), each with a
tokenizer built here from a small word list, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, decoders

WORDS = ("a photo of the cat dog crane bird machine on in at with red blue green small large old new park street "
         "table beach snow night morning light dark close up view wooden field river sky").split()


def _word_tokenizer(special: list[str]) -> Tokenizer:
    vocab = {token: i for i, token in enumerate([*special, *WORDS, *"abcdefghijklmnopqrstuvwxyz0123456789.,\n"])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special[0]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit()])
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    return tokenizer


def save_tiny_gpt2(folder: Path, seed: int = 0) -> Path:
    """A 2-layer GPT-2 of width 16 over a word-level vocabulary, with its tokenizer."""
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=_word_tokenizer(["<unk>", "<|endoftext|>"]), unk_token="<unk>",
        eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<|endoftext|>",
    )
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=16, n_layer=2, n_head=2,
                                     bos_token_id=1, eos_token_id=1)
    torch.manual_seed(seed)
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
