"""A study checks every input it can before its first paid request (issue 22).

The scenario a new user met: ``examples/openai-resnet50.yaml`` with a ``weights_path`` saved
from a resnet18 under the name ``resnet50`` generated (and paid for) every image, then stopped
with a 90-line traceback. Now the driver loads the weights first: zero image requests, one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from helpers.fake_openai_server import FakeImagesServer
from helpers.tiny_study import write_tiny_folders

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "openai-resnet50.yaml"


def _example_with(folders: dict[str, Path], weights_path: Path) -> dict:
    """The shipped example, on the tiny folders, with a small dall-e-2 source and a local weights file."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["real"] = {"train": str(folders["pool"]), "test": str(folders["test"]), "val_fraction": 0.25}
    data["ood"] = [{"name": "noise", "data": str(folders["ood"])}]
    spec = data["synthetic"][0]["generate"]
    spec.update(model="dall-e-2", per_class=4, params={"size": "256x256"}, max_cost=1.0)
    data["regimes"] = [{"name": "real", "data": "real", "sizes": [3]},
                       {"name": "synthetic", "data": "synthetic", "source": "dall-e-3", "sizes": [3]}]  # fmt: skip
    data["methods"] = ["deterministic"]
    data["backbones"] = [{"name": "resnet50", "params": {"weights_path": str(weights_path), "freeze": True}}]
    return data


def test_resnet18_weights_named_resnet50_stop_the_study_before_any_image_is_paid_for(tmp_path: Path) -> None:
    folders = write_tiny_folders(tmp_path / "data")
    weights = tmp_path / "resnet50.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(_example_with(folders, weights)))
    with FakeImagesServer() as server:
        env = {**os.environ, "OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url,
               "PYTHONPATH": os.pathsep.join(sys.path)}  # fmt: skip
        completed = subprocess.run(
            [sys.executable, "-m", "synthaug.cli", "study", str(config), "--out", str(tmp_path / "run"),
             "--no-progress", "--no-report"],
            capture_output=True, text=True, env=env, timeout=300,
        )  # fmt: skip
        assert server.calls == []  # not one image requested
    assert completed.returncode == 1
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert str(weights) in lines[0]
    assert "backbones[0] (resnet50)" in lines[0]
    assert "it fits resnet18" in lines[0]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_weights_of_another_depth_name_the_architecture_they_fit(tmp_path: Path, name: str) -> None:
    from synthaug.errors import ConfigError
    from synthaug.models import make_backbone

    weights = tmp_path / "w.pt"
    other = "resnet34" if name == "resnet18" else "resnet101"
    torch.save(torchvision.models.get_model(other).state_dict(), weights)
    with pytest.raises(ConfigError, match=f"does not fit {name} .*it fits {other}"):
        make_backbone(name, weights_path=str(weights)).check_weights()
    torch.save(torchvision.models.get_model(name).state_dict(), weights)
    make_backbone(name, weights_path=str(weights)).check_weights()  # the right file loads


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"retrieve": {"pool": "no/such/pool", "by": "clip:no/such/clip", "per_class": 2}},
         r"synthetic\[1\].retrieve.pool: "),
        ({"generate": {"per_class": 2, "prompt": {"captions": {"model": "no/such/blip"}}}},
         r"synthetic\[1\].generate.prompt.captions.model: no/such/blip is no folder"),
        ({"generate": {"per_class": 2, "prompt": {"expand": {"backend": "transformers"}}}},
         r"synthetic\[1\].generate.prompt.expand with the transformers backend needs a model"),
    ],
)  # fmt: skip
def test_a_later_sources_bad_input_stops_the_study_before_an_earlier_one_pays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: dict, message: str
) -> None:
    from synthaug.errors import ConfigError
    from synthaug.study import parse_config, run_study

    from helpers.tiny_study import tiny_config_data

    data = tiny_config_data(write_tiny_folders(tmp_path / "data"))
    data["synthetic"] = [
        {"name": "paid", "generate": {"backend": "openai", "model": "dall-e-2", "per_class": 2,
                                      "params": {"size": "256x256"}}},
        {"name": "second", **second},
    ]  # fmt: skip
    data["regimes"] = [{"name": "real", "data": "real", "sizes": [2]},
                       {"name": "synthetic", "data": "synthetic", "source": "paid", "sizes": [2]}]  # fmt: skip
    with FakeImagesServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        with pytest.raises(ConfigError, match=message):
            run_study(parse_config(data), tmp_path / "run")
        assert server.calls == []
