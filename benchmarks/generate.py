"""Generation throughput benchmarks (not part of CI).

Prints:

- ``openai`` backend throughput through the engine against the local fake Images API
  server with 0.5 s latency per request, at concurrency 1, 4 and 8 (target: >= 85 % of the
  ideal ``K / 0.5 s``);
- the time a resume takes to find its place in a 10,000-row manifest (sha256 of every
  file, manifest rewrite check, planning);
- ``ddpm`` images/s at default settings and ``diffusers`` tiny-pipeline images/s, when the
  backends are available.

Run: ``nice -n 10 .venv/bin/python benchmarks/generate.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
from synthaug.errors import ConfigError  # noqa: E402
from synthaug.generate import generate_dataset  # noqa: E402
from synthaug.generate.backends import (  # noqa: E402
    GeneratedImage,
    GeneratorBackend,
    ImageRequest,
    RejectedRequest,
    make_backend,
)


def openai_throughput(concurrency: int, waves: int = 16, latency: float = 0.5) -> tuple[float, float, float]:
    """Images/s through the engine at ``concurrency``, its share of the ideal K/latency, and the
    client's CPU milliseconds per image (what bounds throughput on a busy machine).

    The fake server runs in its own process, as a real endpoint would, so that it does not
    compete with the client for the GIL.
    """
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "helpers" / "fake_openai_server.py"), str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url, api_key = server.stdout.readline().split()
        os.environ["OPENAI_API_KEY"] = api_key
        os.environ["OPENAI_BASE_URL"] = base_url
        n_images = waves * concurrency
        with tempfile.TemporaryDirectory() as directory:
            started, cpu_started = time.perf_counter(), time.process_time()
            summary = generate_dataset(
                Path(directory) / "out",
                ["bench"],
                n_images,
                backend="openai",
                model="dall-e-2",
                params={"size": "256x256"},
                backend_options={"concurrency": concurrency},
            )
            elapsed = time.perf_counter() - started
            cpu_ms = 1000 * (time.process_time() - cpu_started) / n_images
    finally:
        server.stdin.close()
        server.wait()
    assert summary["generated"] == n_images
    rate = n_images / elapsed
    return rate, rate / (concurrency / latency), cpu_ms


class _SeedPatternBackend(GeneratorBackend):
    """A 28x28 grey image drawn from the request seed: lets the engine fill a 10,000-image
    folder in seconds so the resume scan can be timed on a realistic manifest."""

    name = "seed-pattern"

    def describe(self) -> dict:
        return {"backend": self.name, "model": None}

    def generate(self, requests: Sequence[ImageRequest]) -> Iterator[GeneratedImage | RejectedRequest]:
        for request in requests:
            pixels = np.random.default_rng(request.seed).integers(0, 256, (28, 28), dtype=np.uint8)
            yield GeneratedImage(request, Image.fromarray(pixels))


def resume_seconds(n_images: int = 10_000) -> tuple[float, float]:
    """Seconds to write ``n_images`` with the engine, and seconds for a rerun to find its place."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "out"
        classes = [f"class {i}" for i in range(10)]
        started = time.perf_counter()
        generate_dataset(out, classes, n_images // 10, backend=_SeedPatternBackend())
        write_seconds = time.perf_counter() - started
        started = time.perf_counter()
        summary = generate_dataset(out, classes, n_images // 10, backend=_SeedPatternBackend())
        resume = time.perf_counter() - started
    assert summary["generated"] == 0 and summary["reused"] == n_images
    return write_seconds, resume


def local_backend_rate(
    key: str,
    n_images: int,
    model: str | None = None,
    params: dict | None = None,
    classes: list[str] | None = None,
) -> float | str:
    """Images/s of a registered local backend through the engine (commits included), or why
    it could not run. The model is loaded and warmed up before the clock starts."""
    try:
        backend = make_backend(key, model)
    except (ConfigError, ModuleNotFoundError) as error:
        return f"not available ({error})"
    with backend, tempfile.TemporaryDirectory() as directory:
        classes = classes or list(backend.classes)
        warm_up = ImageRequest(classes[0], 0, 0, seed=0, prompt=f"a photo of a {classes[0]}", params=params or {})
        list(backend.generate([warm_up]))
        summary = generate_dataset(
            Path(directory) / "out", classes, max(1, n_images // len(classes)), backend=backend, params=params
        )
    return summary["images_per_second"]


def diffusers_tiny_rate(n_images: int, steps: int) -> float | str:
    """Images/s of the ``diffusers`` backend on the tiny random Stable Diffusion pipeline of the tests."""
    sys.path.insert(0, str(REPO / "tests"))  # for the tests' `helpers` package
    try:
        from helpers.tiny_diffusers import TINY_IMAGE_SIZE, build_tiny_pipeline
    except ModuleNotFoundError as error:
        return f"not available ({error})"
    with tempfile.TemporaryDirectory() as directory:
        pipeline = build_tiny_pipeline(Path(directory) / "tiny")
        size = f"{TINY_IMAGE_SIZE}x{TINY_IMAGE_SIZE}"
        return local_backend_rate(
            "diffusers", n_images, str(pipeline), {"size": size, "steps": steps}, classes=["cat", "dog"]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resume-images", type=int, default=10_000)
    parser.add_argument("--skip-local", action="store_true", help="only the openai and resume figures")
    parser.add_argument("--ddpm-images", type=int, default=500)
    parser.add_argument("--diffusers-images", type=int, default=64)
    parser.add_argument("--diffusers-steps", type=int, default=10)
    args = parser.parse_args()

    print(f"machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("openai backend vs fake server, 0.5 s latency per request (target >= 85 % of K/0.5 s):")
    openai_throughput(1, waves=1, latency=0.01)  # the SDK's one-time start-up (~1 s) is not throughput
    for concurrency in (1, 4, 8):
        rate, share, cpu_ms = openai_throughput(concurrency)
        print(
            f"  concurrency {concurrency}: {rate:6.2f} images/s = {share:6.1%} of ideal {concurrency / 0.5:.0f}/s "
            f"(client CPU {cpu_ms:.1f} ms/image)"
        )

    print(f"machine load average before the resume test: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    write_seconds, resume = resume_seconds(args.resume_images)
    print(
        f"resume: found its place in a {args.resume_images}-row manifest in {resume:.2f} s "
        f"(writing those images took {write_seconds:.1f} s)"
    )

    if args.skip_local:
        return
    ddpm = local_backend_rate("ddpm", args.ddpm_images)
    print(f"ddpm (shipped model, default settings, 28x28): {_rate(ddpm)}")
    tiny = diffusers_tiny_rate(args.diffusers_images, args.diffusers_steps)
    print(f"diffusers (tiny random SD pipeline, {args.diffusers_steps} steps): {_rate(tiny)}")


def _rate(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.1f} images/s"


if __name__ == "__main__":
    main()
