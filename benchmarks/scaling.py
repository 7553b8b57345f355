"""Scale-out benchmarks: the demo study on 1 and 2 workers and on Ray, API generation on 2 workers.

Prints (and writes as JSON with ``--json FILE``):

1. **study, local**: the demo study (``synthaug.study.demo``) with 1 and then 2 local worker
   processes, each run into a fresh run folder and cache (every model is trained again) but
   sharing the generated ddpm folder (generated once, before timing). Units/s of the unit
   phase (first unit dispatched to last unit logged, worker start-up included) and the
   2-worker speed-up. Target: >= 1.7x.
2. **study, Ray**: the same study on a 2-node Ray cluster started on this machine
   (``ray.cluster_utils.Cluster``, one CPU per node), against the 1-worker figure.
3. **generation**: the ``openai`` backend against the local fake Images API server (its own
   process) at 0.5 s latency, 2 local workers x concurrency 4: images/s and the share of the
   ideal ``2 x 4 / 0.5 s = 16 images/s``. Target: >= 90 %. The workers are started (and
   their backends built) before timing, as they are for all but the first seconds of a long run.

Run on a quiet machine: ``nice -n 10 .venv/bin/python benchmarks/scaling.py`` (about 25
minutes on 2 cores); ``--small`` runs a reduced grid in a few minutes, to check the script.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

from synthaug.execution import Executor, make_executor  # noqa: E402
from synthaug.execution.local import LocalExecutor  # noqa: E402
from synthaug.progress import ProgressEvent  # noqa: E402
from synthaug.study import parse_config, run_study  # noqa: E402
from synthaug.study.demo import DEMO_CONFIG  # noqa: E402


def study_config(work: Path, small: bool) -> dict[str, Any]:
    """The demo config, generating into one shared folder; ``small``: a 16-unit version."""
    data = copy.deepcopy(DEMO_CONFIG)
    data["synthetic"][0]["generate"]["dir"] = str(work / "generated-ddpm")
    if small:
        for regime in data["regimes"]:
            regime["sizes"] = [size for size in regime["sizes"] if size <= 30] or [30]
        data["regimes"] = data["regimes"][:2]
        data["methods"] = ["deterministic", {"key": "temperature", "sizes": [30]}]
        data["synthetic"][0]["generate"]["per_class"] = 30
        data["seeds"] = [0, 1]
        data["method_params"] = {**data["method_params"], "epochs": 2}
    return data


class UnitClock:
    """Times the unit phase of a study from its progress events (stage ``study``)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.finished: float | None = None
        self.units = 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage != "study":
            return
        if self.started is None:
            self.started = time.perf_counter()
        if event.finished:
            self.finished = time.perf_counter()
            self.units = event.total or 0

    @property
    def seconds(self) -> float:
        assert self.started is not None and self.finished is not None
        return self.finished - self.started


def time_study(data: dict[str, Any], run_dir: Path, executor: Executor) -> dict[str, float]:
    clock = UnitClock()
    run_study(parse_config(data), run_dir, progress=clock, executor=executor)
    return {"units": clock.units, "seconds": round(clock.seconds, 2), "units_per_second": clock.units / clock.seconds}


def study_benchmarks(work: Path, small: bool) -> dict[str, Any]:
    data = study_config(work, small)
    print("preparing: generating the shared ddpm folder once ...", flush=True)
    with LocalExecutor(workers=1) as executor:
        run_study(parse_config({**data, "seeds": [0], "regimes": data["regimes"][:1], "methods": ["deterministic"],
                                "synthetic": data["synthetic"][:1]}),
                  work / "warm-up", executor=executor)  # fmt: skip
    results: dict[str, Any] = {}
    for workers in (1, 2):
        with LocalExecutor(workers=workers, threads_per_worker=1) as executor:
            results[f"local_{workers}"] = time_study(data, work / f"local-{workers}", executor)
        print(f"study, {workers} local worker(s): {_study_line(results[f'local_{workers}'])}", flush=True)
    results["local_speedup"] = results["local_2"]["units_per_second"] / results["local_1"]["units_per_second"]
    print(f"study, local speed-up with 2 workers: {results['local_speedup']:.2f}x (target >= 1.7x)", flush=True)

    import ray
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        with make_executor(ray_address="auto") as executor:
            results["ray_2_nodes"] = time_study(data, work / "ray", executor)
    finally:
        ray.shutdown()
        cluster.shutdown()
    results["ray_speedup"] = results["ray_2_nodes"]["units_per_second"] / results["local_1"]["units_per_second"]
    print(f"study, Ray 2 nodes x 1 CPU: {_study_line(results['ray_2_nodes'])}; "
          f"{results['ray_speedup']:.2f}x the 1-worker rate", flush=True)  # fmt: skip
    return results


def _study_line(result: dict[str, float]) -> str:
    return f"{result['units']} units in {result['seconds']:.1f} s = {result['units_per_second']:.3f} units/s"


def generation_benchmark(work: Path, small: bool, latency: float = 0.5) -> dict[str, Any]:
    from synthaug.generate import generate_dataset

    workers, concurrency, waves = 2, 4, 4 if small else 16
    server = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "helpers" / "fake_openai_server.py"), str(latency)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url, api_key = server.stdout.readline().split()  # type: ignore[union-attr]
        os.environ["OPENAI_API_KEY"] = api_key
        os.environ["OPENAI_BASE_URL"] = base_url
        options = {"concurrency": concurrency}
        kwargs: dict[str, Any] = {"backend": "openai", "model": "dall-e-2", "params": {"size": "256x256"},
                                  "backend_options": options}  # fmt: skip
        n_images = workers * concurrency * waves
        with LocalExecutor(workers=workers) as executor:
            # Start both workers and build their backends before timing.
            generate_dataset(work / "gen-warm-up", ["warm"], 2 * workers * concurrency, executor=executor, **kwargs)
            started = time.perf_counter()
            summary = generate_dataset(work / "gen", ["bench"], n_images, executor=executor, **kwargs)
            elapsed = time.perf_counter() - started
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait()
    assert summary["generated"] == n_images
    rate = n_images / elapsed
    ideal = workers * concurrency / latency
    print(f"generation, {workers} workers x concurrency {concurrency} at {latency} s latency: {n_images} images in "
          f"{elapsed:.1f} s = {rate:.2f} images/s, {rate / ideal:.0%} of the ideal {ideal:.0f}/s "
          "(target >= 90 %)", flush=True)  # fmt: skip
    return {"images": n_images, "seconds": round(elapsed, 2), "images_per_second": rate, "share_of_ideal": rate / ideal}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a reduced grid and run, to check the script")
    parser.add_argument("--skip-study", action="store_true", help="only the generation benchmark")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; {'small' if args.small else 'full'} size", flush=True)
    figures: dict[str, Any] = {"small": args.small, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="synthaug-scaling-") as directory:
        work = Path(directory)
        figures["generation"] = generation_benchmark(work, args.small)
        if not args.skip_study:
            figures["study"] = study_benchmarks(work, args.small)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
