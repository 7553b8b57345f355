"""The openai backend, driven through the real SDK against the local fake Images API server."""

from __future__ import annotations

import time

import pytest

from synthaug.errors import ConfigError, GenerationError
from synthaug.generate import pricing
from synthaug.generate.backends import GeneratedImage, ImageRequest, RejectedRequest, make_backend

from helpers.fake_openai_server import FAST_RETRIES, REFUSAL_MARKER


def _request(index: int = 0, prompt: str = "a photo of a trouser", **params) -> ImageRequest:
    return ImageRequest("Trouser", 1, index, seed=index, prompt=prompt, params=params or {"size": "256x256"})


def _backend(model: str = "dall-e-2", **options):
    return make_backend("openai", model, **{**FAST_RETRIES, **options})


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        ("dall-e-2", {"size": "1792x1024"}, "256x256"),
        ("dall-e-2", {"style": "vivid"}, "only dall-e-3"),
        ("dall-e-2", {"quality": "hd"}, "standard"),
        ("dall-e-3", {"size": "512x512"}, "1024x1792"),
        ("dall-e-3", {"quality": "high"}, "hd"),
        ("gpt-image-1", {"size": "1792x1024"}, "1536x1024"),
        ("gpt-image-1", {"quality": "hd"}, "medium"),
        ("gpt-image-1", {"style": "natural"}, "only dall-e-3"),
        ("gpt-image-1", {"steps": 20}, "does not support steps"),
        ("gpt-image-2", {"size": "1000x1000"}, "multiples of 16"),
        ("gpt-image-2", {"size": "3200x800"}, "aspect ratio"),
        ("gpt-image-2", {"quality": "max"}, "medium"),
    ],
)
def test_each_model_checks_its_own_parameters_before_sending(model, params, message):
    backend = _backend(model, price_per_image=0.01)
    with pytest.raises(ConfigError, match=message):
        backend.validate(params)


def test_valid_parameters_per_model_pass():
    _backend("dall-e-3").validate({"size": "1792x1024", "quality": "hd", "style": "natural"})
    _backend("gpt-image-1").validate({"size": "auto", "quality": "low"})
    _backend("gpt-image-2", price_per_image=0.01).validate({"size": "1536x864", "quality": "high"})
    _backend("gpt-image-2.5-flare", price_per_image=0.01).validate({"quality": "max"})


def test_gpt_image_rejects_response_format_and_unknown_models_are_refused():
    with pytest.raises(ConfigError, match="always return base64"):
        _backend("gpt-image-1", response_format="url")
    with pytest.raises(ConfigError, match="not an Images API model"):
        _backend("dall-e-4")
    with pytest.raises(ConfigError, match="--price-per-image"):
        _backend("gpt-image-2")  # not in the price table: a guessed price would defeat --max-cost


def test_prices_follow_the_table():
    dalle3 = _backend("dall-e-3")
    assert dalle3.estimate_cost(_request(size="1024x1024")) == pytest.approx(0.04)
    assert dalle3.estimate_cost(_request(size="1792x1024", quality="hd")) == pytest.approx(0.12)
    # 'auto' is priced as the most expensive option so --max-cost holds whatever the model picks.
    assert _backend("gpt-image-1").estimate_cost(_request(quality="auto", size="auto")) == pytest.approx(0.25)
    assert pricing.image_price("gpt-image-1-2025-04-23", "low", "1024x1024") == pytest.approx(0.011)


def test_images_come_back_decoded_with_revised_prompt_and_usage_cost(openai_server):
    with _backend("dall-e-3") as backend:
        (result,) = backend.generate([_request(size="1024x1024", quality="hd")])
    assert isinstance(result, GeneratedImage) and result.image.size == (1024, 1024)
    assert result.revised_prompt.startswith("A detailed photograph")
    assert result.cost_usd == pytest.approx(0.08)
    with _backend("gpt-image-1") as backend:
        (result,) = backend.generate([_request(size="1024x1024", quality="low")])
    tokens = result.extra["usage"]
    assert tokens["output_tokens"] == 272
    expected = tokens["input_tokens"] * 5e-6 + 272 * 40e-6
    assert result.cost_usd == pytest.approx(expected)
    assert "response_format" not in openai_server.calls[-1]


def test_url_responses_are_downloaded(openai_server):
    with _backend("dall-e-2", response_format="url") as backend:
        (result,) = backend.generate([_request()])
    assert result.image.size == (256, 256) and openai_server.files
    assert openai_server.calls[-1]["response_format"] == "url"


def test_calls_run_concurrently_and_results_stream(openai_server):
    openai_server.latency = 0.3
    with _backend(concurrency=4) as backend:
        started = time.perf_counter()
        results = list(backend.generate([_request(i) for i in range(8)]))
        elapsed = time.perf_counter() - started
    assert len(results) == 8
    assert 0.55 < elapsed < 1.2  # two waves of four, not eight sequential calls (2.4 s)


def test_rate_limit_waits_for_retry_after_and_server_errors_are_retried(openai_server):
    openai_server.script = [("429", 0.4), ("500",), ("500",)]
    with _backend(concurrency=1) as backend:
        started = time.perf_counter()
        (result,) = backend.generate([_request()])
        elapsed = time.perf_counter() - started
    assert isinstance(result, GeneratedImage)
    assert len(openai_server.calls) == 4 and openai_server.images_served == 1
    assert elapsed >= 0.4  # honoured retry-after


def test_timeouts_are_retried(openai_server):
    openai_server.script = [("sleep", 1.5)]
    with _backend(timeout=0.5) as backend:
        (result,) = backend.generate([_request()])
    assert isinstance(result, GeneratedImage) and len(openai_server.calls) == 2


def test_retries_run_out_into_one_clear_error(openai_server):
    openai_server.script = [("500",)] * 3
    with _backend(max_retries=2) as backend, pytest.raises(GenerationError, match="after 2 retries"):
        list(backend.generate([_request()]))


def test_content_policy_refusal_is_a_rejected_request_not_a_retry(openai_server):
    with _backend() as backend:
        results = list(backend.generate([_request(0), _request(1, prompt=f"a {REFUSAL_MARKER} trouser")]))
    (rejected,) = [r for r in results if isinstance(r, RejectedRequest)]
    assert rejected.code == "content_policy_violation" and rejected.request.index == 1
    assert "safety system" in rejected.reason
    assert len(openai_server.calls) == 2


def test_gpt_image_refusal_code_is_moderation_blocked(openai_server):
    with _backend("gpt-image-1") as backend:
        (result,) = backend.generate([_request(prompt=REFUSAL_MARKER, size="1024x1024", quality="low")])
    assert isinstance(result, RejectedRequest) and result.code == "moderation_blocked"


def test_bad_key_stops_at_once_without_repeating_the_key(openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-CANARY-42")
    with _backend() as backend, pytest.raises(GenerationError, match="401") as caught:
        list(backend.generate([_request(i) for i in range(6)]))
    assert "CANARY" not in str(caught.value) and caught.value.__cause__ is None
    assert len(openai_server.calls) <= 4  # the calls in flight at most, none retried


def test_exhausted_quota_stops_without_retrying(openai_server):
    openai_server.quota_exhausted = True
    with _backend(concurrency=1) as backend, pytest.raises(GenerationError, match="insufficient_quota"):
        list(backend.generate([_request(i) for i in range(3)]))
    assert len(openai_server.calls) == 1


def test_missing_key_is_a_config_error(openai_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with _backend() as backend, pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        list(backend.generate([_request()]))
    assert openai_server.calls == []


def test_describe_names_the_endpoint_without_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:secret@example.org:8443/v1?token=abc")
    description = _backend().describe()
    assert description["endpoint"] == "https://example.org:8443/v1"
    assert description["model"] == "dall-e-2"
