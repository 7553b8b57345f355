"""Prompt expansion against the fake OpenAI chat endpoint and a tiny local GPT-2."""

from __future__ import annotations

import json

import pytest

from synthaug.errors import ConfigError, GenerationError
from synthaug.generate import pricing
from synthaug.generate.engine import generate_dataset
from synthaug.generate.expand import (
    PROMPTS_NAME,
    ExpandedPrompts,
    OpenAIChatModel,
    PromptExpansion,
    expand_prompts,
    parse_reply,
)
from synthaug.generate.manifest import read_jsonl

from helpers.fake_openai_server import REFUSAL_MARKER

FAST = {"retry_initial_delay": 0.01, "retry_max_delay": 0.05}


def _chat_calls(server) -> list[dict]:
    return [call for call in server.calls if call["endpoint"] == "/v1/chat/completions"]


def _expand(classes, out, text_model=None, **settings):
    config = PromptExpansion(**{"per_class": 3, **settings})
    if text_model is not None:
        return expand_prompts(classes, config, out, text_model=text_model)
    model = OpenAIChatModel(config.model_name, **FAST)
    try:
        return expand_prompts(classes, config, out, text_model=model)
    finally:
        model.close()


def test_reply_lines_are_cleaned_deduplicated_and_length_limited():
    seen: set[str] = set()
    text = ('1. A red crane in a marsh\n- a Red crane  in a marsh.\n\n"a crane at dawn"\n'
            '3) a tall bird standing in water\n' + "crane " * 40)
    kept, rejected = parse_reply(text, "crane", "crane (the bird)", max_words=10, seen=seen)
    assert kept == ["A red crane in a marsh", "a crane at dawn", "crane (the bird), a tall bird standing in water"]
    assert [r["reason"] for r in rejected] == ["duplicate", "too_long"]


def test_openai_expansion_saves_prompts_with_cost_and_is_not_asked_again(openai_server, tmp_path):
    classes = {"crane": "the bird", "trouser": None}
    first = _expand(classes, tmp_path)
    calls = len(_chat_calls(openai_server))
    assert calls == 2  # one call per class was enough
    assert [len(first.classes[label].prompts) for label in classes] == [3, 3]
    assert all(p.startswith("crane (the bird), scene") for p in first.classes["crane"].prompts)
    asked = _chat_calls(openai_server)[0]["messages"][0]["content"]
    assert "crane (the bird)" in asked and "crane, trouser" in asked and "30 words" in asked
    usage = first.classes["crane"].calls[0]["usage"]
    prices = pricing.CHAT_PER_TOKEN["gpt-4o-mini"]
    expected = usage["prompt_tokens"] * prices["input"] + usage["completion_tokens"] * prices["output"]
    assert usage["prompt_tokens"] == len(asked.split()) and first.classes["crane"].cost_usd == pytest.approx(expected)
    saved = json.loads((tmp_path / PROMPTS_NAME).read_text())
    assert saved["inputs"]["model"] == "gpt-4o-mini" and len(saved["inputs"]["instruction_sha256"]) == 64
    assert saved["classes"]["trouser"]["calls"][0]["raw"].startswith("1. scene 1")

    again = _expand(classes, tmp_path)
    assert len(_chat_calls(openai_server)) == calls and again.requests == 0
    assert again.to_dict() == first.to_dict()
    # A new class is asked for alone; the others are reused.
    _expand({**classes, "shirt": None}, tmp_path)
    assert len(_chat_calls(openai_server)) == calls + 1


def test_changed_settings_or_description_are_refused(openai_server, tmp_path):
    _expand({"crane": "the bird"}, tmp_path)
    with pytest.raises(ConfigError, match="per_class: 3 -> 4"):
        _expand({"crane": "the bird"}, tmp_path, per_class=4)
    with pytest.raises(ConfigError, match="'the machine'"):
        _expand({"crane": "the machine"}, tmp_path)
    instruction = tmp_path / "mine.txt"
    instruction.write_text("List {n} photos of a {name}.")
    with pytest.raises(ConfigError, match="instruction_sha256"):
        _expand({"crane": "the bird"}, tmp_path, instruction=str(instruction))


def test_rate_limits_and_server_errors_are_retried(openai_server, tmp_path):
    openai_server.script = [("429", 0), ("500",)]
    result = _expand({"crane": None}, tmp_path)
    assert len(_chat_calls(openai_server)) == 3 and len(result.classes["crane"].prompts) == 3


def test_a_bad_key_is_one_line_without_the_key(openai_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123456789")
    with pytest.raises(GenerationError, match="HTTP 401") as caught:
        _expand({"crane": None}, tmp_path)
    assert "sk-wrong" not in str(caught.value)


def test_refusals_are_recorded_and_a_class_without_prompts_stops(openai_server, tmp_path):
    label = "thing"  # its description holds the word the fake server refuses
    with pytest.raises(GenerationError, match="no usable prompt"):
        _expand({"cat": None, label: REFUSAL_MARKER}, tmp_path)
    saved = json.loads((tmp_path / PROMPTS_NAME).read_text())
    refused = saved["classes"][label]
    assert [r["reason"] for r in refused["rejected"]] == ["refused"] * 3 and refused["prompts"] == []
    assert len(saved["classes"]["cat"]["prompts"]) == 3  # the class before it is kept for the rerun


def test_a_short_answer_is_asked_again_for_the_rest(openai_server, tmp_path):
    answers = iter(["cat one\ncat two\ncat one", "cat three\ncat four", "CAT four\ncat five\ncat six"])
    openai_server.chat_reply = lambda message: next(answers)
    result = _expand({"cat": None}, None, per_class=5)
    entry = result.classes["cat"]
    assert len(entry.calls) == 3 and len(entry.prompts) == 5
    assert entry.prompts == ("cat one", "cat two", "cat three", "cat four", "cat five")
    assert [r["reason"] for r in entry.rejected] == ["duplicate"] * 2


def test_max_cost_stops_before_a_call_that_could_exceed_it(openai_server, tmp_path):
    config = PromptExpansion(per_class=3)
    asked = config.instruction_text().format(n=3, label="cat", name="cat", classes="cat, dog", max_words=30)
    worst_case = OpenAIChatModel().estimate_cost(asked, 3 * (2 * 30 + 4) + 16)
    with pytest.raises(GenerationError, match="max_cost"):
        _expand({"cat": None, "dog": None}, tmp_path, max_cost=1.05 * worst_case)
    assert len(_chat_calls(openai_server)) == 1  # the first call fitted, the second would not


def test_describe_asks_the_model_once_per_class_and_uses_its_answer(openai_server, tmp_path):
    openai_server.chat_reply = lambda m: ("a machine that lifts loads" if "mean" in m
                                          else "crane at a port\ncrane on a ship")
    result = _expand({"crane": None, "cat": "the animal"}, tmp_path, per_class=2, describe=True)
    purposes = [call["purpose"] for call in result.classes["crane"].calls]
    assert purposes == ["describe", "prompts"] and result.classes["crane"].description == "a machine that lifts loads"
    assert [c["purpose"] for c in result.classes["cat"].calls] == ["prompts"]  # given: not asked
    spec = result.prompt_spec()
    assert spec.class_descriptions == {"crane": "a machine that lifts loads", "cat": "the animal"}


def test_expanded_prompts_reach_the_manifest_with_their_origin(openai_server, tmp_path):
    out = tmp_path / "data"
    expanded = _expand({"crane": "the bird"}, out, per_class=2)
    summary = generate_dataset(out, ["crane"], 3, backend="openai", model="dall-e-2",
                               prompt=expanded.prompt_spec(), params={"size": "256x256"},
                               backend_options=FAST)  # fmt: skip
    assert summary["generated"] == 3
    rows = sorted(read_jsonl(out / "metadata.jsonl")[0], key=lambda row: row["index"])
    assert [row["prompt"] for row in rows] == [*expanded.classes["crane"].prompts, expanded.classes["crane"].prompts[0]]
    origin = rows[1]["prompt_options"]["origin"]
    assert origin["kind"] == "expand" and origin["model"] == "gpt-4o-mini" and origin["position"] == 1
    assert ExpandedPrompts.from_dict(json.loads((out / PROMPTS_NAME).read_text())).classes == expanded.classes


def test_settings_are_checked_before_anything_is_asked(tmp_path):
    with pytest.raises(ConfigError, match="needs a model"):
        PromptExpansion(backend="transformers")
    with pytest.raises(ConfigError, match="per_class"):
        PromptExpansion(per_class=0)
    with pytest.raises(ConfigError, match="unknown key"):
        PromptExpansion.from_dict({"per_clas": 3})
    with pytest.raises(ConfigError, match="usd_per_million_tokens"):
        OpenAIChatModel("my-own-model")


@pytest.mark.slow  # builds and loads tiny transformers/diffusers models (seconds on 2 cores)
def test_a_local_text_model_expands_reproducibly(tmp_path):
    transformers = pytest.importorskip("transformers")  # noqa: F841
    from synthaug.generate.expand import TransformersTextModel

    from helpers.tiny_hf_models import save_tiny_gpt2

    folder = save_tiny_gpt2(tmp_path / "gpt2")
    model = TransformersTextModel(str(folder), device="cpu")
    settings = {"backend": "transformers", "model": str(folder), "per_class": 2, "max_words": 80}
    first = _expand({"cat": None}, tmp_path / "a", text_model=model, **settings)
    second = _expand({"cat": None}, tmp_path / "b", text_model=model, **settings)
    entry = first.classes["cat"]
    assert 1 <= len(entry.prompts) <= 2 and all("cat" in prompt.lower() for prompt in entry.prompts)
    assert first.to_dict() == second.to_dict() and entry.cost_usd == 0.0
