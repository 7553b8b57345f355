"""The shared strict loader: one line naming the file, the architecture and the one it fits."""

from __future__ import annotations

import pytest
import torch
import torchvision

from synthaug.errors import ConfigError
from synthaug.models.weights import family_members, load_state_dict_checked


def torchvision_candidates(architecture: str) -> dict:
    names = torchvision.models.list_models(module=torchvision.models)
    members = family_members(architecture, names)
    return {name: (lambda name=name: torchvision.models.get_model(name)) for name in members}


def test_family_members_are_the_nearest_names_of_the_same_family() -> None:
    names = ["resnet18", "resnet34", "resnet50", "resnext50_32x4d", "vit_b_16", "wide_resnet50_2"]
    assert family_members("resnet34", names, limit=2) == ["resnet18", "resnet50"]
    assert "vit_b_16" not in family_members("resnet34", names) and "resnet34" not in family_members("resnet34", names)


def test_a_matching_state_dict_loads_and_another_names_its_architecture() -> None:
    torch.manual_seed(0)
    source = torchvision.models.resnet18()
    target = torchvision.models.resnet18()
    load_state_dict_checked(target, source.state_dict(), path="r18.pt", architecture="resnet18",
                            candidates=lambda: torchvision_candidates("resnet18"))
    assert torch.equal(target.conv1.weight, source.conv1.weight)

    with pytest.raises(ConfigError) as error:
        load_state_dict_checked(torchvision.models.resnet34(), source.state_dict(), path="r18.pt",
                                architecture="resnet34", candidates=lambda: torchvision_candidates("resnet34"))
    assert str(error.value) == (
        "weights_path r18.pt does not fit resnet34 (96 keys missing (e.g. layer1.2.conv1.weight)); "
        "it fits resnet18: ask for that model or give resnet34 weights"
    )
