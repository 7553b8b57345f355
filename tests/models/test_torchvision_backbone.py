"""Torchvision backbones with random or local weights (never a download), at 32x32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch
import torchvision
from torch import nn

from synthaug.data import ImageDataset
from synthaug.data.augment import parse_augment
from synthaug.errors import ConfigError
from synthaug.methods import make_method
from synthaug.models import make_backbone
from synthaug.models.torchvision_backbone import TorchvisionBackbone


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNTHAUG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def small(make_pattern_dataset) -> ImageDataset:
    return make_pattern_dataset(n_per_class=8, size=32)


def reference_features(network: nn.Module, dataset: ImageDataset, backbone: TorchvisionBackbone) -> torch.Tensor:
    """Penultimate features computed by hand: the network without its ``fc`` layer."""
    network.fc = nn.Identity()
    transform = backbone.transform()
    pixels = torch.stack([transform(dataset[i][0].convert("RGB")) for i in range(len(dataset))])
    with torch.no_grad():
        return network.eval()(pixels)


def test_frozen_features_are_the_penultimate_layer_and_cached(small: ImageDataset, cache_in_tmp: Path) -> None:
    backbone = make_backbone("resnet18", image_size=32, init_seed=3)
    features = backbone.prepare(small)
    assert features.shape == (24, 512) and features.dtype == torch.float32

    torch.manual_seed(3)
    expected = reference_features(torchvision.models.resnet18(), small, backbone)
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)

    # The second call reads the content-addressed file: change it and the change shows.
    (entry,) = (cache_in_tmp / "features").glob("*.safetensors")
    assert entry == backbone.feature_cache_path(small)
    safetensors.torch.save_file({"features": torch.ones(24, 512)}, entry)
    assert torch.equal(make_backbone("resnet18", image_size=32, init_seed=3).prepare(small), torch.ones(24, 512))

    # Anything the features depend on gives another address.
    other_paths = {
        make_backbone("resnet18", image_size=32, init_seed=4).feature_cache_path(small),
        make_backbone("resnet18", image_size=48, init_seed=3).feature_cache_path(small),
        backbone.feature_cache_path(small.subset(range(10))),
    }
    assert entry not in other_paths and len(other_paths) == 3


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_local_state_dict_is_loaded(small: ImageDataset, tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(11)
    network = torchvision.models.resnet18()
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pt":
        torch.save(network.state_dict(), path)
    else:
        safetensors.torch.save_file({k: v.contiguous() for k, v in network.state_dict().items()}, path)
    backbone = make_backbone("resnet18", weights_path=path, image_size=32)
    expected = reference_features(network, small, backbone)
    torch.testing.assert_close(backbone.prepare(small), expected, rtol=1e-4, atol=1e-5)
    assert backbone.get_config()["weights_path"] == str(path)


def test_bad_weights_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown weights 'IMAGENET9K'"):
        make_backbone("resnet18", weights="IMAGENET9K").transform()
    with pytest.raises(ConfigError, match="does not exist"):
        make_backbone("resnet18", weights_path=tmp_path / "missing.pt").build_trainable(3)
    (tmp_path / "junk.pt").write_bytes(b"not a state dict")
    with pytest.raises(ConfigError, match="not a readable state dict"):
        make_backbone("resnet18", weights_path=tmp_path / "junk.pt").build_trainable(3)


def test_weights_transforms_are_used_when_named() -> None:
    decoder = make_backbone("resnet18", weights="DEFAULT").pixel_decoder()  # no download: transforms only
    assert decoder.crop == 224 and decoder.resize == 256


def test_heads_and_unfrozen_model(small: ImageDataset) -> None:
    linear = make_backbone("resnet18", image_size=32).build_trainable(3)
    assert [type(m) for m in linear] == [nn.Dropout, nn.Linear] and linear[-1].in_features == 512
    mlp = make_backbone("resnet18", image_size=32, head_hidden=64, dropout=0.1).build_trainable(3)
    assert mlp(torch.zeros(2, 512)).shape == (2, 3) and isinstance(mlp[-1], nn.Linear)

    unfrozen = make_backbone("resnet18", image_size=32, freeze=False)
    pixels = unfrozen.prepare(small)
    assert pixels.shape == (24, 3, 32, 32)
    module = unfrozen.build_trainable(3)
    assert isinstance(module[-1], nn.Linear) and module.eval()(pixels[:2]).shape == (2, 3)
    assert sum(p.numel() for p in module.parameters()) > 11_000_000  # the whole ResNet trains


@pytest.mark.slow
def test_a_method_trains_a_head_on_frozen_features(tmp_path: Path, make_pattern_dataset) -> None:
    train, test = make_pattern_dataset(n_per_class=20, size=32), make_pattern_dataset(n_per_class=5, seed=1, size=32)
    method = make_method("deterministic", backbone="resnet18", backbone_options={"image_size": 32},
                         epochs=30, learning_rate=0.01).fit(train)
    probs = method.predict_proba(test)
    assert probs.shape == (1, 15, 3)
    # Random features of a pattern are weaker than a trained CNN, but clearly above chance.
    assert (probs[0].argmax(1) == test.targets).mean() >= 0.6
    method.save(tmp_path / "model")
    from synthaug.methods import load_method

    np.testing.assert_allclose(load_method(tmp_path / "model").predict_proba(test), probs, atol=1e-6)


def test_frozen_augmented_views_are_cached_and_reused(make_pattern_dataset, cache_in_tmp: Path) -> None:
    train = make_pattern_dataset(n_per_class=8, size=32)
    options = {"backbone": "resnet18", "backbone_options": {"image_size": 32}, "epochs": 2, "augment": "flip-crop",
                   "augment_views": 2}
    make_method("deterministic", seed=0, **options).fit(train)
    entries = {path: path.stat().st_mtime_ns for path in (cache_in_tmp / "features").glob("*.safetensors")}
    assert len(entries) == 3  # features of the training and validation parts, views of the training part
    # Another method on the same images reads the same views: no new entry, none rewritten.
    make_method("mc-dropout", seed=0, num_samples=2, **options).fit(train)
    assert {path: path.stat().st_mtime_ns for path in (cache_in_tmp / "features").glob("*.safetensors")} == entries
    backbone = make_backbone("resnet18", image_size=32)
    views = backbone.prepare_views(train, parse_augment("flip-crop"), 2)
    assert views.shape == (2, 24, 512) and not torch.equal(views[0], views[1])
    assert not torch.equal(views[0], backbone.prepare(train))


def test_augmenting_a_frozen_backbone_needs_views(make_pattern_dataset) -> None:
    train = make_pattern_dataset(n_per_class=4, size=32)
    with pytest.raises(ConfigError, match="needs augment_views"):
        make_method("deterministic", backbone="resnet18", augment="trivialaugment").fit(train)
    with pytest.raises(ConfigError, match="mixup/cutmix mix pixels"):
        make_method("deterministic", backbone="resnet18", augment="mixup", augment_views=2).fit(train)
    with pytest.raises(ConfigError, match="drop augment_views"):
        make_method("deterministic", augment_views=2).fit(train)


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory) -> Path:
    """A local resnet18 state dict (what a user's pretrained file would be), saved by the test."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.safetensors"
    state = torchvision.models.resnet18().state_dict()
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, path)
    return path


FINE_TUNE_OPTIONS = {"ensemble": {"num_members": 2}, "mc-dropout": {"num_samples": 3}, "bnn": {"num_samples": 3},
                     "laplace": {"num_samples": 3}}


@pytest.mark.parametrize("key", ["deterministic", "temperature", "mc-dropout", "ensemble", "bnn", "laplace"])
def test_every_method_fine_tunes_a_local_resnet18(key: str, resnet18_weights: Path, tiny_image_folder: Path) -> None:
    from synthaug.data import load_image_folder

    train = load_image_folder(tiny_image_folder).subset(np.arange(0, 90, 3))  # 30 PNG files, 3 classes
    method = make_method(
        key, backbone="resnet18", backbone_options={"weights_path": str(resnet18_weights), "image_size": 32,
                                                    "freeze": False},
        epochs=1, batch_size=8, augment=["flip-crop", "mixup"], ema_decay=0.5, accumulation_steps=2,
        **FINE_TUNE_OPTIONS.get(key, {}),
    )
    config = method.training_config()  # the fine-tuning recipe, resolved from the backbone
    assert (config.optimizer, config.weight_decay if key != "bnn" else 0.05) == ("adamw", 0.05)
    assert (config.backbone_lr_scale, config.warmup_fraction, config.gradient_clip_norm) == (0.1, 0.05, 1.0)
    method.fit(train)
    probs = method.predict_proba(train)
    assert probs.shape[1:] == (30, 3) and np.isfinite(probs).all()
    network = method.base_method_.model_ if key == "temperature" else method.model_
    assert sum(p.numel() for p in network.parameters()) > 11_000_000  # the whole network trained


def test_weights_that_cannot_be_downloaded_are_one_line_saying_what_to_do(tmp_path: Path, monkeypatch) -> None:
    """No network (here: an empty torch hub cache and a proxy that refuses every connection, so
    the test never downloads, online or not) is a config error naming the file to fetch."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for variable in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError) as error:
        make_backbone("resnet18", weights="DEFAULT").build_trainable(3)
    message = str(error.value)
    assert message.startswith("resnet18: cannot download the DEFAULT weights (URLError")
    assert "https://download.pytorch.org/models/resnet18-" in message and "weights_path" in message
    assert "\n" not in message
    assert not list((tmp_path / "torch").rglob("*.pth"))
