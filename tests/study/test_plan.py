"""``synthaug study CONFIG --dry-run`` and the cost line of a paid study (issue 22): the plan
counts units and images, prices the requests with the generator's own estimate, and asks
nothing of the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthaug.study import load_config
from synthaug.study.plan import plan_study

from helpers.fake_openai_server import FakeImagesServer
from helpers.tiny_study import CLASSES, tiny_config_data, write_tiny_folders

PER_CLASS = 4
DALL_E_2_256 = 0.016  # US dollars per 256x256 image (synthaug.generate.pricing)


def _paid_study(tmp_path: Path) -> Path:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data["synthetic"] = [{"name": "dall-e-2", "generate": {
        "backend": "openai", "model": "dall-e-2", "per_class": PER_CLASS, "params": {"size": "256x256"},
        "max_cost": 1.0, "backend_options": {"retry_initial_delay": 0.01}}}]  # fmt: skip
    data["regimes"] = [{"name": "real", "data": "real", "sizes": [3]},
                       {"name": "synthetic", "data": "synthetic", "sizes": [3]}]  # fmt: skip
    data.update(methods=["deterministic"], seeds=[0], ood=[], inspect="off")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def _study(config: Path, run_dir: Path, server: FakeImagesServer, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url,
           "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "synthaug.cli", "study", str(config), "--out", str(run_dir),
                           "--no-progress", "--no-report", "--workers", "1", *extra],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip


@pytest.mark.slow
def test_dry_run_prices_the_study_then_the_run_shows_its_cost_first_and_a_second_plan_finds_it_done(
    tmp_path: Path,
) -> None:
    config, run_dir = _paid_study(tmp_path), tmp_path / "run"
    images = PER_CLASS * len(CLASSES)
    with FakeImagesServer() as server:
        planned = _study(config, run_dir, server, "--dry-run")
        assert planned.returncode == 0, planned.stderr
        assert server.calls == []  # a dry run asks the API nothing
        assert not (run_dir / "results.jsonl").exists()
        first = planned.stdout.splitlines()[0]
        cost = f"${images * DALL_E_2_256:.2f}"
        assert first.startswith(f"plan: {images} image(s) to generate (0 on disk), estimated cost {cost} "
                                f"(dall-e-2 {cost} of max $1.00)")  # fmt: skip
        assert "; 2 of 2 units to run;" in first

        ran = _study(config, run_dir, server)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines()[0] == first  # the cost before anything is requested
        assert len(server.calls) == images

    plan = plan_study(load_config(config), run_dir)
    (source,) = plan.sources
    assert (source.requested, source.on_disk, source.to_generate) == (images, images, 0)
    assert source.estimated_cost_usd == 0.0 and plan.estimated_cost_usd == 0.0 and plan.paid
    assert [(regime.regime, regime.units, regime.finished) for regime in plan.regimes] == [
        ("real", 1, 1), ("synthetic", 1, 1)]  # fmt: skip
    assert plan.seconds_per_unit is not None and plan.seconds_per_unit > 0
    assert plan.to_dict()["sources"][0]["kind"] == "generate"


def test_a_plan_of_a_local_source_counts_its_units_and_costs_nothing(tmp_path: Path) -> None:
    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    plan = plan_study(load_config(config), tmp_path / "run")
    assert plan.units_total == sum(regime.units for regime in plan.regimes) == 14
    assert plan.units_finished == 0 and plan.seconds_per_unit is None and plan.estimated_seconds is None
    assert plan.sources[0].kind == "folder" and not plan.paid
    assert sorted(plan.classes) == sorted(CLASSES)
    assert not (tmp_path / "run").exists()  # a plan writes nothing
