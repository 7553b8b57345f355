"""Price tables of the OpenAI Images and chat APIs, used to estimate and cap what a run costs.

Prices are in US dollars as published on https://openai.com/api/pricing/ (image
generation section) and in the model pages of the API documentation, as of
:data:`PRICES_AS_OF`. Prices change: check them before a large run, and pass
``price_per_image`` to the ``openai`` backend to override the table (it is also the only
way to run a model the table does not list, since a guessed price would make
``--max-cost`` meaningless).

Two kinds of entries:

- ``PER_IMAGE``: a fixed price per image by quality and size (dall-e-2, dall-e-3, and the
  published per-image figures of the GPT image models, used for *estimates*);
- ``PER_TOKEN``: prices per token of the GPT image models, used to compute the *actual*
  cost of an image from the ``usage`` the API returns with it.

- ``CHAT_PER_TOKEN``: prices per input and output token of the chat models that write
  prompts (:mod:`synthaug.generate.expand`), applied to the ``usage`` of each completion.

Where a request leaves quality or size to the model (``auto``), the estimate takes the
most expensive option, so that ``--max-cost`` is never exceeded because of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRICES_AS_OF = "2025-10-15"

# model -> quality -> size -> USD per image. dall-e-2 has a single quality tier.
PER_IMAGE: dict[str, dict[str, dict[str, float]]] = {
    "dall-e-2": {
        "standard": {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.020},
    },
    "dall-e-3": {
        "standard": {"1024x1024": 0.040, "1792x1024": 0.080, "1024x1792": 0.080},
        "hd": {"1024x1024": 0.080, "1792x1024": 0.120, "1024x1792": 0.120},
    },
    "gpt-image-1": {
        "low": {"1024x1024": 0.011, "1024x1536": 0.016, "1536x1024": 0.016},
        "medium": {"1024x1024": 0.042, "1024x1536": 0.063, "1536x1024": 0.063},
        "high": {"1024x1024": 0.167, "1024x1536": 0.25, "1536x1024": 0.25},
    },
    "gpt-image-1-mini": {
        "low": {"1024x1024": 0.005, "1024x1536": 0.006, "1536x1024": 0.006},
        "medium": {"1024x1024": 0.011, "1024x1536": 0.015, "1536x1024": 0.015},
        "high": {"1024x1024": 0.036, "1024x1536": 0.052, "1536x1024": 0.052},
    },
}

# model -> USD per token: text input, image input, image output.
PER_TOKEN: dict[str, dict[str, float]] = {
    "gpt-image-1": {"text_input": 5.00e-6, "image_input": 10.00e-6, "image_output": 40.00e-6},
    "gpt-image-1-mini": {"text_input": 2.00e-6, "image_input": 2.50e-6, "image_output": 8.00e-6},
}

# The default quality each model uses when a request gives none.
DEFAULT_QUALITY = {"dall-e-2": "standard", "dall-e-3": "standard"}


# chat model -> USD per token: input (prompt) and output (completion) text tokens.
CHAT_PER_TOKEN: dict[str, dict[str, float]] = {
    "gpt-4o-mini": {"input": 0.15e-6, "output": 0.60e-6},
    "gpt-4o": {"input": 2.50e-6, "output": 10.00e-6},
    "gpt-4.1-nano": {"input": 0.10e-6, "output": 0.40e-6},
    "gpt-4.1-mini": {"input": 0.40e-6, "output": 1.60e-6},
    "gpt-4.1": {"input": 2.00e-6, "output": 8.00e-6},
    "gpt-5-nano": {"input": 0.05e-6, "output": 0.40e-6},
    "gpt-5-mini": {"input": 0.25e-6, "output": 2.00e-6},
    "gpt-5": {"input": 1.25e-6, "output": 10.00e-6},
}


def priced_model(model: str, table: Mapping[str, Any] = PER_IMAGE) -> str | None:
    """The entry of ``table`` for ``model``, matching dated snapshots (``gpt-image-1-2025-04-23``)."""
    for name in sorted(table, key=len, reverse=True):
        if model == name or (model.startswith(name + "-") and model[len(name) + 1 :][:1].isdigit()):
            return name
    return None


def image_price(model: str, quality: str | None, size: str | None) -> float | None:
    """Estimated USD price of one image, or ``None`` if the table does not list ``model``.

    ``quality``/``size`` of ``None`` or ``"auto"`` take the most expensive listed option.
    """
    name = priced_model(model)
    if name is None:
        return None
    table = PER_IMAGE[name]
    quality = quality or DEFAULT_QUALITY.get(name, "auto")
    prices = []
    for tier in table if quality == "auto" else [quality]:
        sizes = table.get(tier)
        if sizes is None:
            return None
        if size in (None, "auto"):
            prices.append(max(sizes.values()))
        elif size in sizes:
            prices.append(sizes[size])
        else:
            return None
    return max(prices)


def usage_cost(model: str, usage: Mapping[str, Any]) -> float | None:
    """Actual USD cost from the ``usage`` block of an Images API response, if priced per token.

    Args:
        model: The model that answered.
        usage: ``{"input_tokens", "output_tokens", "input_tokens_details": {"text_tokens",
            "image_tokens"}, ...}`` as the API returns it.
    """
    name = priced_model(model)
    prices = PER_TOKEN.get(name) if name is not None else None
    if prices is None:
        return None
    details = usage.get("input_tokens_details") or {}
    text_tokens = details.get("text_tokens", usage.get("input_tokens", 0))
    image_input_tokens = details.get("image_tokens", 0)
    return (
        text_tokens * prices["text_input"]
        + image_input_tokens * prices["image_input"]
        + usage.get("output_tokens", 0) * prices["image_output"]
    )


# Input-image tokens assumed for the estimate of one gpt-image edit (an image passed to
# images.edit is billed as image input tokens on top of the output image). The vision
# tiling rule gives 765 tokens for a 1024x1024 input (4 tiles of 170 + 85); the estimate
# takes twice that so that --max-cost holds with high input fidelity too. The actual cost
# comes from the usage the API returns.
EDIT_INPUT_IMAGE_TOKENS = 1530


def edit_input_price(model: str) -> float:
    """Estimated USD for the input image of one ``images.edit`` call (0 where not priced per token).

    dall-e-2 variations cost the same as a generated image of that size, so they need
    nothing extra.
    """
    name = priced_model(model)
    prices = PER_TOKEN.get(name) if name is not None else None
    return EDIT_INPUT_IMAGE_TOKENS * prices["image_input"] if prices is not None else 0.0



def chat_prices(model: str) -> dict[str, float] | None:
    """USD per ``input``/``output`` token of a chat model, or ``None`` if the table does not list it."""
    name = priced_model(model, CHAT_PER_TOKEN)
    return CHAT_PER_TOKEN[name] if name is not None else None


def chat_cost(prices: Mapping[str, float], usage: Mapping[str, Any]) -> float:
    """USD cost of one chat completion from its ``usage`` (``prompt_tokens``, ``completion_tokens``)."""
    return usage.get("prompt_tokens", 0) * prices["input"] + usage.get("completion_tokens", 0) * prices["output"]
