"""timm backbones from local weights (never a download): timm's tiny ``test_*`` models at 32 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image
from torch import nn

from synthaug.data import ImageDataset
from synthaug.errors import ConfigError
from synthaug.methods import make_method
from synthaug.models import make_backbone
from synthaug.models.timm_backbone import TimmBackbone

timm = pytest.importorskip("timm")


@pytest.fixture(autouse=True)
def offline_cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "cache"


@pytest.fixture
def small(make_pattern_dataset) -> ImageDataset:
    return make_pattern_dataset(n_per_class=8, size=32)


def save_weights(path: Path, model: str = "test_resnet", seed: int = 11, num_classes: int = 7) -> nn.Module:
    """A seeded timm model *with* a classifier of its own, saved as a state dict at ``path``."""
    torch.manual_seed(seed)
    network = timm.create_model(model, num_classes=num_classes)
    state = {key: value.contiguous() for key, value in network.state_dict().items()}
    if path.suffix == ".safetensors":
        safetensors.torch.save_file(state, path)
    else:
        torch.save(state, path)
    return network


def reference_features(network: nn.Module, dataset: ImageDataset, backbone: TimmBackbone) -> torch.Tensor:
    """Pooled features by hand: the saved network with its classifier reset."""
    network.reset_classifier(0)
    transform = backbone.transform()
    pixels = torch.stack([transform(dataset[i][0].convert("RGB")) for i in range(len(dataset))])
    with torch.no_grad():
        return network.eval()(pixels)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_frozen_features_come_from_the_local_weights_and_are_cached(
    small: ImageDataset, tmp_path: Path, offline_cache_in_tmp: Path, suffix: str
) -> None:
    path = tmp_path / f"test_resnet{suffix}"
    network = save_weights(path)
    backbone = make_backbone("timm:test_resnet", weights_path=path, image_size=32)
    features = backbone.prepare(small)
    assert features.shape == (24, 96) and features.dtype == torch.float32
    torch.testing.assert_close(features, reference_features(network, small, backbone), rtol=1e-4, atol=1e-5)

    # Same content-addressed cache as the torchvision backbone: the second call reads the file.
    (entry,) = (offline_cache_in_tmp / "features").glob("*.safetensors")
    assert entry == backbone.feature_cache_path(small)
    safetensors.torch.save_file({"features": torch.ones(24, 96)}, entry)
    again = make_backbone("timm:test_resnet", weights_path=path, image_size=32)
    assert torch.equal(again.prepare(small), torch.ones(24, 96))
    # Other weights, another size, random weights: other addresses.
    other = tmp_path / f"other{suffix}"
    save_weights(other, seed=12)
    addresses = {
        make_backbone("timm:test_resnet", weights_path=other, image_size=32).feature_cache_path(small),
        make_backbone("timm:test_resnet", weights_path=path, image_size=48).feature_cache_path(small),
        make_backbone("timm:test_resnet", image_size=32).feature_cache_path(small),
    }
    assert entry not in addresses and len(addresses) == 3


def test_preprocessing_follows_the_model_data_config() -> None:
    backbone = make_backbone("timm:test_resnet")
    network = timm.create_model("test_resnet")
    config = timm.data.resolve_model_data_config(network)
    assert backbone.data_config() == config and config["mean"] == (0.5, 0.5, 0.5)  # not ImageNet's

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    expected = timm.data.create_transform(**config, is_training=False)(image)
    pixels = backbone.transform()(image)
    assert pixels.shape == config["input_size"] == (3, 160, 160)
    torch.testing.assert_close(pixels, expected)

    # image_size changes the input size only; a flat grey image shows the model's mean and std.
    grey = Image.new("RGB", (40, 40), (51, 102, 204))
    small = make_backbone("timm:test_resnet", image_size=24).transform()(grey)
    assert small.shape == (3, 24, 24)
    torch.testing.assert_close(small[:, 12, 12], (torch.tensor([51, 102, 204]) / 255 - 0.5) / 0.5)


@pytest.mark.slow
def test_a_method_trains_a_head_on_frozen_timm_features(tmp_path: Path, make_pattern_dataset) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path)
    train, test = make_pattern_dataset(n_per_class=20, size=32), make_pattern_dataset(n_per_class=5, seed=1, size=32)
    method = make_method("deterministic", backbone="timm:test_resnet",
                         backbone_options={"weights_path": str(path), "image_size": 32}, epochs=30).fit(train)
    probs = method.predict_proba(test)
    assert probs.shape == (1, 15, 3)
    assert (probs[0].argmax(1) == test.targets).mean() >= 0.6  # random features, but well above chance
    method.save(tmp_path / "model")
    from synthaug.methods import load_method

    np.testing.assert_allclose(load_method(tmp_path / "model").predict_proba(test), probs, atol=1e-6)


def test_unfrozen_training_updates_the_whole_network(tmp_path: Path, small: ImageDataset) -> None:
    path = tmp_path / "w.pt"
    save_weights(path)
    backbone = make_backbone("timm:test_resnet", weights_path=path, image_size=32, freeze=False)
    module = backbone.build_trainable(3)
    assert isinstance(module[-1], nn.Linear) and module[-1].in_features == 96
    assert [type(m) for m in module[1:]] == [nn.Dropout, nn.Linear]

    method = make_method("deterministic", backbone="timm:test_resnet", epochs=2, batch_size=8,
                         backbone_options={"weights_path": str(path), "image_size": 32, "freeze": False}).fit(small)
    trained = method.model_[0].state_dict()
    start = backbone.build_trainable(3)[0].state_dict()
    changed = [key for key, value in start.items()
               if value.is_floating_point() and not torch.equal(value, trained[key])]
    assert "conv1.0.weight" in changed and len(changed) > len(start) // 2  # the body trained, not just the head
    assert method.predict_proba(small).shape == (1, 24, 3)


def test_weights_of_another_architecture_name_the_one_they_fit(tmp_path: Path) -> None:
    path = tmp_path / "resnet.safetensors"
    save_weights(path, model="resnet10t")  # a depth variant of the model asked for
    with pytest.raises(ConfigError) as error:
        make_backbone("timm:resnet14t", weights_path=path).build_trainable(3)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "does not fit timm:resnet14t" in message
    assert "it fits timm:resnet10t" in message

    torch.save({"stem.0.weight": torch.zeros(3, 3)}, tmp_path / "junk.pt")
    with pytest.raises(ConfigError, match=r"does not fit timm:test_resnet \(.*missing.*\); give a state dict saved"):
        make_backbone("timm:test_resnet", weights_path=tmp_path / "junk.pt").prepare(ImageDataset.from_arrays(
            np.zeros((1, 8, 8), np.uint8), [0], ["a"]))


def test_names_options_and_the_offline_hub_are_one_line_errors(tmp_path: Path) -> None:
    backbone = make_backbone("timm:test_resnet", image_size=32, dropout=0.1)
    assert backbone.get_config()["name"] == "timm:test_resnet"
    assert make_backbone(**backbone.get_config()).get_config() == backbone.get_config()
    with pytest.raises(ConfigError, match="unknown timm model 'resnet_18'; did you mean resnet18"):
        make_backbone("timm:resnet_18")
    with pytest.raises(ConfigError, match="not both"):
        make_backbone("timm:test_resnet", pretrained=True, weights_path=tmp_path / "w.pt")
    with pytest.raises(ConfigError, match=r"timm:resnet10t: cannot load the pretrained weights .*give weights_path"):
        make_backbone("timm:resnet10t", pretrained=True).build_trainable(3)


@pytest.mark.parametrize("example", ["resnetv2-152-original.yaml", "resnetv2-152-finetune.yaml"])
def test_the_resnetv2_examples_name_an_open_224_px_model(example: str) -> None:
    from synthaug.study.config import load_config

    config = load_config(Path(__file__).parents[2] / "examples" / example)
    (spec,) = config.backbones
    backbone = make_backbone(spec.name, **spec.params)  # builds nothing, downloads nothing
    assert backbone.data_config()["input_size"] == (3, 224, 224)
    assert backbone._weights_identity() == "timm-hub:timm/resnetv2_152x2_bit.goog_teacher_in21k_ft_in1k"
    assert backbone.freeze is (example == "resnetv2-152-original.yaml")
