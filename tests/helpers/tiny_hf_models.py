"""Tiny random Hugging Face models saved with ``save_pretrained``, built offline in code.

What a user's downloaded model folder looks like, in a few hundred kB: a CLIP (scoring,
filtering, retrieval), a GPT-2 text generator (prompt expansion) and a BLIP captioner
(caption prompts), each with a tokenizer built here, so nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

WORDS = ("a", "photo", "of", "the", "cat", "dog", "crane", "bird", "machine", "on", "in", "at", "with",
         "red", "blue", "green", "small", "large", "old", "new", "park", "street", "table", "beach", "snow",
         "night", "morning", "light", "dark", "close", "up", "view", "wooden", "field", "river", "sky")


# Line breaks of several lengths: a random model samples near-uniformly, so ~8 % of its tokens
# end a line, and its answers split into prompts of about a dozen words.
NEWLINES = tuple("\n" * k for k in range(1, 9))


def _word_tokenizer(special: list[str]) -> Tokenizer:
    tokens = [*special, *WORDS, *NEWLINES, *"abcdefghijklmnopqrstuvwxyz0123456789.,"]
    vocab = {token: i for i, token in enumerate(tokens)}
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


def save_tiny_blip(folder: Path, seed: int = 0) -> Path:
    """A 1-layer BLIP captioner of width 16 on 32x32 images, with a BERT word-piece tokenizer."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    tokenizer = transformers.BertTokenizer(vocab={token: i for i, token in enumerate(vocab)})
    config = transformers.BlipConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 48, "encoder_hidden_size": 16,
                     "bos_token_id": 2, "sep_token_id": 3, "pad_token_id": 0},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=8,
    )
    torch.manual_seed(seed)
    model = transformers.BlipForConditionalGeneration(config)
    with torch.no_grad():  # a random decoder would mostly pick special tokens, decoded as nothing
        model.text_decoder.cls.predictions.bias[:5] = -10.0
    model.save_pretrained(folder)
    image_processor = transformers.BlipImageProcessor(size={"height": 32, "width": 32})
    transformers.BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised CLIP (2 layers of width 16) with a character-level tokenizer,
    saved with ``save_pretrained``: what a user's downloaded CLIP folder looks like, in 100 kB."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["<|startoftext|>", "<|endoftext|>", "<unk>", *letters, *(c + "</w>" for c in letters)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")  # no merges: one token per character
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32},
                                                      crop_size={"height": 32, "width": 32})
    config = transformers.CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 64,
                     "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 16, "intermediate_size": 32,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=8,
    )
    torch.manual_seed(seed)
    transformers.CLIPModel(config).save_pretrained(folder)
    transformers.CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
