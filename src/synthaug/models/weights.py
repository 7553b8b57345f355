"""Loading a local state dict strictly, with an error that says which architecture it fits.

A ``weights_path`` that belongs to another member of the family (ResNet-50 weights given to
a ResNet-101, ``resnet10t`` weights to ``resnet14t``) fails in ``load_state_dict`` with a
list of dozens of keys. :func:`load_state_dict_checked` turns that into one line: the file,
the architecture asked for, what differs, and the family member whose parameter shapes the
file matches exactly, found by building a few candidates on the ``meta`` device (no memory,
no initialisation cost beyond building the modules).

Both the timm and the torchvision backbone can use it; they differ only in how candidates
are named and built.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeAlias

import torch
from torch import nn

from synthaug.errors import ConfigError

# Candidates built when looking for the architecture a file fits: the nearest names of the
# family. Building one on the meta device takes ~0.1-0.5 s on a busy CPU, so the search stays
# a few seconds at most and happens only on the error path.
MAX_CANDIDATES = 8

ShapeSignature = dict[str, tuple[int, ...]]

StateAdapter: TypeAlias = Callable[[nn.Module, Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]
"""What a backbone does to a file's state dict before loading it into a given network (e.g.
drop the classifier weights the headless network has no place for)."""


def _unchanged(network: nn.Module, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    return state


def shape_signature(state: Mapping[str, torch.Tensor]) -> ShapeSignature:
    """Parameter and buffer shapes by key, the part of a state dict an architecture fixes."""
    return {key: tuple(value.shape) for key, value in state.items()}


def family_members(architecture: str, names: Iterable[str], limit: int = MAX_CANDIDATES) -> list[str]:
    """The other models of ``architecture``'s family, nearest names first.

    The family is the leading run of letters of the name (``resnet`` for ``resnet10t`` and
    ``resnet152``, ``resnetv`` for ``resnetv2_50x1_bit``, ``vit`` for ``vit_tiny_patch16_224``);
    nearness is :mod:`difflib`'s similarity ratio, so depth and width variants come first.
    """
    def family(name: str) -> str:
        return re.match(r"[a-z]*", name.lower()).group(0)

    members = [name for name in set(names) if name != architecture and family(name) == family(architecture)]
    return sorted(members, key=lambda name: (-difflib.SequenceMatcher(None, architecture, name).ratio(), name))[:limit]


def _difference(expected: ShapeSignature, found: ShapeSignature) -> str:
    missing = [key for key in expected if key not in found]
    unexpected = [key for key in found if key not in expected]
    differing = [key for key in expected if key in found and expected[key] != found[key]]
    parts = []
    if missing:
        parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if differing:
        key = differing[0]
        parts.append(f"{len(differing)} with other shapes (e.g. {key}: file {found[key]}, model {expected[key]})")
    return ", ".join(parts)


def fitting_architecture(
    state: Mapping[str, torch.Tensor],
    candidates: Mapping[str, Callable[[], nn.Module]],
    adapt: StateAdapter = _unchanged,
) -> str | None:
    """The first candidate whose state dict has exactly the keys and shapes of ``state``.

    Args:
        state: The state dict read from the file.
        candidates: Architecture name -> function building that network; each is called
            under ``torch.device("meta")``, so no parameter memory is allocated.
        adapt: Applied to ``state`` for each candidate before comparing.
    """
    for name, build in candidates.items():
        with torch.device("meta"):
            network = build()
        if shape_signature(network.state_dict()) == shape_signature(adapt(network, state)):
            return name
    return None


def load_state_dict_checked(
    network: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    path: str,
    architecture: str,
    candidates: Callable[[], Mapping[str, Callable[[], nn.Module]]],
    adapt: StateAdapter = _unchanged,
) -> None:
    """Load ``state`` into ``network`` strictly, or raise one line naming what fits instead.

    Args:
        network: The network built for ``architecture``.
        state: The state dict read from ``path``.
        path: The file, for the message.
        architecture: The name the user asked for, for the message (``timm:resnet14t``).
        candidates: Called only on a mismatch: architecture name -> network builder of the
            family members worth trying (see :func:`family_members`).
        adapt: Applied to ``state`` before loading it into ``network`` or any candidate.

    Raises:
        ConfigError: The keys or shapes differ; names the file, the architecture, the first
            difference and, when one of the candidates matches exactly, that one.
    """
    expected = shape_signature(network.state_dict())
    found = shape_signature(adapt(network, state))
    if expected == found:
        network.load_state_dict(adapt(network, state))
        return
    fits = fitting_architecture(state, candidates(), adapt)
    advice = (
        f"it fits {fits}: ask for that model or give {architecture} weights"
        if fits is not None
        else f"give a state dict saved from {architecture}"
    )
    raise ConfigError(
        f"weights_path {path} does not fit {architecture} ({_difference(expected, found)}); {advice}"
    )
