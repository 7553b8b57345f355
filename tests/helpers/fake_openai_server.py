"""A small local server that speaks the OpenAI Images API, for tests and benchmarks.

``POST /v1/images/generations`` answers like the real API: a JSON body with ``data`` (one
real PNG per image, as ``b64_json`` or as a ``url`` the server also serves), a
``revised_prompt`` for dall-e-3 and token ``usage`` for gpt-image models.
``POST /v1/images/edits`` (gpt-image models) and ``POST /v1/images/variations`` (dall-e-2
only, square PNG only) take multipart forms like the real API; their pixels depend on the
input image's bytes (and the prompt of an edit), and the recorded call holds
``image_sha256`` and ``image_size`` instead of the file. ``POST /v1/chat/completions``
answers the last user message with ``server.chat_reply(message)`` (default: as many
numbered lines as the first number in the message asks for), with token ``usage`` (words
in, words out); a message containing :data:`REFUSAL_MARKER` gets a ``refusal`` (HTTP 200,
as the real API answers one). Failures are scripted, for every endpoint:

- a prompt containing :data:`REFUSAL_MARKER` gets HTTP 400 ``content_policy_violation``
  (dall-e) or ``moderation_blocked`` (gpt-image);
- a wrong ``Authorization`` key gets HTTP 401 whose message quotes the key in full (worse
  than the real API, to prove the client never repeats it);
- ``server.quota_exhausted = True`` answers HTTP 429 ``insufficient_quota``;
- ``server.script`` is a list of failures consumed one per request: ``("429", seconds)``
  (rate limit with ``retry-after``), ``("500",)``, ``("sleep", seconds)`` (answer late, to
  trigger a client timeout);
- ``server.latency`` delays every answer (seconds).
- ``server.hold_after = N`` holds every request after the N-th until ``server.release`` is set.

Each request's pixels depend only on the prompt, so the same prompt gives the same image.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import functools
import hashlib
import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

REFUSAL_MARKER = "forbiddenword"
# Output image tokens of gpt-image-1 by quality and size (OpenAI pricing documentation).
_OUTPUT_TOKENS = {
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}


# Retry delays of the openai backend in tests: the fake server's rate limits are retried at once.
FAST_RETRIES = {"retry_initial_delay": 0.01, "retry_max_delay": 0.05}


@functools.lru_cache(maxsize=256)
def png_for(prompt: str, size: str) -> bytes:
    """A real PNG of ``size`` whose colours are a function of ``prompt``."""
    width, height = (1024, 1024) if size == "auto" else map(int, size.split("x"))
    digest = hashlib.sha256(prompt.encode()).digest()
    image = Image.new("RGB", (width, height), tuple(digest[:3]))
    # A second colour block so that images are not uniform.
    image.paste(tuple(digest[3:6]), (0, 0, width // 2, height // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def default_chat_reply(message: str) -> str:
    """Numbered lines, as many as the first number in ``message`` asks for (3 without one)."""
    match = re.search(r"\d+", message)
    count = int(match.group()) if match else 3
    digest = hashlib.sha256(message.encode()).hexdigest()[:6]
    return "\n".join(f"{i + 1}. scene {i + 1} in setting {digest}" for i in range(count))


class FakeImagesServer(ThreadingHTTPServer):
    """The server; use as a context manager. ``base_url`` is what ``OPENAI_BASE_URL`` takes."""

    daemon_threads = True

    def __init__(self, api_key: str = "sk-test-valid-key-0000", latency: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_key = api_key
        self.latency = latency
        self.quota_exhausted = False
        self.script: list[tuple[Any, ...]] = []
        self.calls: list[dict[str, Any]] = []  # JSON bodies of every generation request
        self.call_times: list[float] = []  # time.monotonic() at which each request arrived
        self.images_served = 0  # successful generations (what a real account would pay for)
        # Requests after the first `hold_after` wait until `release` is set (a run that cannot
        # finish before the test acts on it); None: none wait.
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.files: dict[str, bytes] = {}
        self.chat_reply: Callable[[str], str] = default_chat_reply
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeImagesServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
        self.server_close()

    def serve_until_stdin_closes(self) -> None:
        """Run in a separate process (``python fake_openai_server.py LATENCY``): print the base URL
        and the key, serve until the parent closes our stdin."""
        with self:
            print(self.base_url, self.api_key, flush=True)
            sys.stdin.read()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that cancel calls in flight (on purpose) reset their connections

    def next_failure(self) -> tuple[Any, ...] | None:
        with self._lock:
            return self.script.pop(0) if self.script else None


class _Handler(BaseHTTPRequestHandler):
    server: FakeImagesServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        pass  # keep test output clean

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(
        self, status: int, message: str, kind: str, code: str | None, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()
        self._send(status, body, "application/json", headers)

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        data = self.server.files.get(self.path)
        if data is None:
            self._error(404, "no such file", "invalid_request_error", None)
        else:
            self._send(200, data, "image/png")

    def _read_body(self) -> dict[str, Any]:
        """The JSON body, or the multipart form of an edit/variation (the image as its digest)."""
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not self.headers.get("Content-Type", "").startswith("multipart/form-data"):
            return json.loads(raw or b"{}")
        header = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + raw)
        body: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if part.get_filename() is None:
                body[name] = payload.decode()
            else:
                image = Image.open(io.BytesIO(payload))
                body["image_sha256"] = hashlib.sha256(payload).hexdigest()
                body["image_size"] = f"{image.width}x{image.height}"
                body["image_format"] = image.format
        if "n" in body:
            body["n"] = int(body["n"])
        return body

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        body = self._read_body()
        server = self.server
        with server._lock:
            server.calls.append({**body, "endpoint": self.path})
            server.call_times.append(time.monotonic())
            held = server.hold_after is not None and len(server.calls) > server.hold_after
        if held:
            server.release.wait(timeout=60)
        if self.path not in ("/v1/images/generations", "/v1/images/edits", "/v1/images/variations",
                             "/v1/chat/completions"):
            self._error(404, f"unknown path {self.path}", "invalid_request_error", None)
            return
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if key != server.api_key:
            self._error(401, f"Incorrect API key provided: {key}.", "invalid_request_error", "invalid_api_key")
            return
        if server.quota_exhausted:
            self._error(429, "You exceeded your current quota.", "insufficient_quota", "insufficient_quota")
            return
        failure = server.next_failure()
        if failure is not None and failure[0] == "429":
            self._error(429, "Rate limit reached.", "requests", "rate_limit_exceeded", {"retry-after": str(failure[1])})
            return
        if failure is not None and failure[0] == "500":
            self._error(500, "The server had an error.", "server_error", None)
            return
        delay = server.latency + (failure[1] if failure is not None and failure[0] == "sleep" else 0.0)
        if delay:
            time.sleep(delay)
        if self.path == "/v1/chat/completions":
            self._chat(body)
            return
        model = body.get("model", "dall-e-2")
        gpt_image = model.startswith("gpt-image")
        if self.path != "/v1/images/generations":
            if "image_sha256" not in body or body.get("image_format") != "PNG":
                self._error(400, "Invalid input image: upload a PNG.", "invalid_request_error", "invalid_image")
                return
            variation = self.path.endswith("/variations")
            if (variation and model != "dall-e-2") or (not variation and not gpt_image):
                self._error(400, f"Invalid model {model} for {self.path}.", "invalid_request_error", "invalid_model")
                return
            width, height = map(int, body["image_size"].split("x"))
            if variation and width != height:
                self._error(400, "Uploaded image must be a square PNG.", "invalid_request_error", "invalid_image")
                return
        prompt = body.get("prompt", "") + body.get("image_sha256", "")
        if REFUSAL_MARKER in prompt:
            code = "moderation_blocked" if gpt_image else "content_policy_violation"
            self._error(400, "Your request was rejected by the safety system.", "invalid_request_error", code)
            return
        if gpt_image and "response_format" in body:
            self._error(400, "Unknown parameter: 'response_format'.", "invalid_request_error", "unknown_parameter")
            return
        size = body.get("size", "auto" if gpt_image else "1024x1024")
        png = png_for(prompt, size)
        item: dict[str, Any] = {}
        if body.get("response_format") == "url":
            with server._lock:
                path = f"/files/{len(server.files)}.png"
                server.files[path] = png
            item["url"] = f"http://127.0.0.1:{server.server_address[1]}{path}"
        else:
            item["b64_json"] = base64.b64encode(png).decode()
        if model == "dall-e-3":
            item["revised_prompt"] = f"A detailed photograph: {prompt}"
        answer: dict[str, Any] = {"created": int(time.time()), "data": [item]}
        if gpt_image:
            quality = body.get("quality", "auto")
            tokens = _OUTPUT_TOKENS["high" if quality == "auto" else quality].get(size, 6240)
            text_tokens = len(body.get("prompt", "").split())
            image_tokens = 255 if "image_sha256" in body else 0  # one 512-px tile and the base
            answer["usage"] = {
                "input_tokens": text_tokens + image_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens": tokens,
                "total_tokens": text_tokens + image_tokens + tokens,
            }
        with server._lock:
            server.images_served += 1
        self._send(200, json.dumps(answer).encode(), "application/json")

    def _chat(self, body: dict[str, Any]) -> None:
        message = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        refused = REFUSAL_MARKER in message
        content = None if refused else self.server.chat_reply(message)
        answer = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content,
                            "refusal": "I can't help with that." if refused else None},
            }],
            "usage": {"prompt_tokens": len(message.split()), "completion_tokens": len((content or "").split()),
                      "total_tokens": len(message.split()) + len((content or "").split())},
        }
        self._send(200, json.dumps(answer).encode(), "application/json")


if __name__ == "__main__":
    # A server in its own process, so that benchmarks do not share the client's GIL.
    FakeImagesServer(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0).serve_until_stdin_closes()
