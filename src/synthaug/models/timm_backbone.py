"""Any timm model as a backbone (``timm:MODEL``), frozen or fine-tuned.

timm (Wightman, *PyTorch Image Models*, 2019) holds most open ImageNet networks with their
pretrained weights on the Hugging Face Hub: the BiT ResNet-V2s of Kolesnikov et al. 2020
(``resnetv2_152x2_bit``), ConvNeXts, EfficientNets, ViTs, ... This backbone builds one with
``timm.create_model(MODEL, num_classes=0)`` (the network without its classifier, returning
pooled features) and preprocesses images with the model's own data config
(``timm.data.resolve_model_data_config`` / ``create_transform``: its input size, crop
fraction, interpolation, mean and std), as timm's model cards do.

Everything else is :class:`~synthaug.models.torchvision_backbone.TorchvisionBackbone`'s:
frozen features in the same content-addressed cache (``cache_root()/features``), the same
heads, the same fine-tuning module ``Sequential(network, Dropout, Linear)``. This class only
says how the network, its weights and its transform are made.

Needs the ``timm`` extra: ``pip install "synthaug[timm]"``.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synthaug.errors import ConfigError
from synthaug.fileio import sha256_file
from synthaug.models import TIMM_PREFIX as PREFIX
from synthaug.models.torchvision_backbone import TorchvisionBackbone
from synthaug.models.weights import family_members, load_state_dict_checked


def _timm() -> Any:
    """Import timm (an optional dependency), or say how to install it."""
    try:
        import timm
    except ImportError as error:
        raise ConfigError('timm backbones need the timm package: pip install "synthaug[timm]"') from error
    return timm


def _without_classifier(network: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` without the weights of ``network``'s classifier (timm's ``pretrained_cfg``
    names it: ``fc``, ``head``, ``head.fc``, ...), which a ``num_classes=0`` network lacks."""
    classifiers = network.pretrained_cfg.get("classifier") or ()
    prefixes = tuple(f"{name}." for name in ([classifiers] if isinstance(classifiers, str) else classifiers))
    return {key: value for key, value in state.items() if not key.startswith(prefixes)}


class TimmBackbone(TorchvisionBackbone):
    """A timm model by name, with its classifier removed and its own preprocessing.

    Args:
        model: timm model name, optionally with a pretrained tag: ``"resnet50"``,
            ``"resnet50.a1_in1k"``, ``"resnetv2_152x2_bit.goog_in21k_ft_in1k"``.
        pretrained: Download the model's pretrained weights from the Hugging Face Hub (timm's
            own cache; ``HF_HUB_OFFLINE=1`` uses only what is cached).
        weights_path: Local state dict (``.safetensors``, or ``.pt``/``.pth`` loaded with
            ``weights_only=True``) of this architecture, e.g. ``model.state_dict()`` of a timm
            model saved by the user; its classifier weights, if any, are dropped. For tests
            and air-gapped machines. Exclusive with ``pretrained``.
        freeze: Cached features and a trained head (``True``) or fine-tune the whole network.
        image_size: Input side in pixels, overriding the data config's ``input_size`` (the
            crop fraction, interpolation and normalisation stay the model's).
        head_hidden: Width of a hidden layer in the head (frozen only); ``None``: linear.
        dropout: Default dropout probability in front of the output layer.
        init_seed: Seed of the random initialisation without ``pretrained``/``weights_path``.
        batch_size: Images per forward pass when extracting features.
        device: Device for feature extraction; ``None`` picks CUDA when present.
    """

    def __init__(
        self,
        *,
        model: str,
        pretrained: bool = False,
        weights_path: str | os.PathLike[str] | None = None,
        freeze: bool = True,
        image_size: int | None = None,
        head_hidden: int | None = None,
        dropout: float = 0.2,
        init_seed: int = 0,
        batch_size: int = 64,
        device: str | None = None,
    ) -> None:
        # Not TorchvisionBackbone.__init__: it checks the name against torchvision's models.
        timm = _timm()
        if not timm.is_model(model):
            close = difflib.get_close_matches(model, timm.list_models(), n=3, cutoff=0.6)
            hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models('resnet*')"
            raise ConfigError(f"unknown timm model {model!r}; {hint}")
        if pretrained and weights_path is not None:
            raise ConfigError(f"timm:{model}: give pretrained: true or weights_path, not both")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"timm:{model}: dropout must be in [0, 1), got {dropout}")
        self.model = model
        self.name = PREFIX + model
        self.weights = None  # torchvision weights enum: none here
        self.pretrained = bool(pretrained)
        self.weights_path = None if weights_path is None else str(Path(weights_path).resolve())
        self.freeze = bool(freeze)
        self.image_size = None if image_size is None else int(image_size)
        self.head_hidden = None if head_hidden is None else int(head_hidden)
        self.dropout = float(dropout)
        self.init_seed = int(init_seed)
        self.batch_size = int(batch_size)
        self.num_workers: int | None = None  # loader workers for feature extraction: the machine's default
        self.device = device
        self._extractor: tuple[nn.Module, int] | None = None
        self._identity: str | None = None
        self._data_config: dict[str, Any] | None = None

    @staticmethod
    def model_names() -> frozenset[str]:
        """Every timm architecture name (tags such as ``.a1_in1k`` are accepted too)."""
        return frozenset(_timm().list_models())

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pretrained": self.pretrained,
            "weights_path": self.weights_path,
            "freeze": self.freeze,
            "image_size": self.image_size,
            "head_hidden": self.head_hidden,
            "dropout": self.dropout,
            "init_seed": self.init_seed,
            "batch_size": self.batch_size,
        }

    # -- the network -------------------------------------------------------------------------

    def _create(self, *, pretrained: bool = False) -> nn.Module:
        """``timm.create_model`` without a classifier: forward gives pooled features ``(N, D)``."""
        return _timm().create_model(self.model, pretrained=pretrained, num_classes=0)

    def _weights_identity(self) -> str:
        """What determines the weights, for the feature cache key (memoised)."""
        if self._identity is None:
            timm = _timm()
            if self.weights_path is not None:
                self._identity = f"file-sha256:{sha256_file(self.weights_path)}"
            elif self.pretrained:
                # The hub repository of a tagged model holds one set of weights.
                config = timm.models.get_pretrained_cfg(self.model)
                if config is None:
                    raise ConfigError(f"{self.name}: timm has no pretrained weights for it; drop pretrained")
                self._identity = f"timm-hub:{config.hf_hub_id or config.url}"
            else:
                self._identity = f"random:init_seed={self.init_seed}:torch={torch.__version__}:timm={timm.__version__}"
        return self._identity

    def _load_network(self) -> tuple[nn.Module, int]:
        """Build the network without classifier (pretrained or from ``weights_path``); return it and D."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            try:
                network = self._create(pretrained=self.pretrained)
            except (OSError, RuntimeError, ValueError) as error:
                if not self.pretrained:
                    raise
                raise ConfigError(
                    f"{self.name}: cannot load the pretrained weights ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else ''}); go online, or download them "
                    "and give weights_path"
                ) from error
        if self.weights_path is not None:
            path = Path(self.weights_path)
            load_state_dict_checked(network, self._read_state_dict(path), path=str(path), architecture=self.name,
                                    candidates=self._family_builders, adapt=_without_classifier)
        return network, network.head_hidden_size

    def check_weights(self) -> None:
        """Load ``weights_path`` into a network now, so that a file saved from another
        architecture stops a study before it generates (and pays for) a single image."""
        if self.weights_path is not None:
            self._load_network()

    def _family_builders(self) -> dict[str, Callable[[], nn.Module]]:
        timm = _timm()
        architecture = timm.models.split_model_name_tag(self.model)[0]
        return {
            PREFIX + name: (lambda name=name: timm.create_model(name, num_classes=0))
            for name in family_members(architecture, timm.list_models())
        }

    # -- preprocessing -----------------------------------------------------------------------

    def data_config(self) -> dict[str, Any]:
        """The model's timm data config (``input_size``, ``interpolation``, ``mean``, ``std``,
        ``crop_pct``, ``crop_mode``), with ``image_size`` applied.

        Resolved from a copy of the network built on the ``meta`` device, so no weights are
        allocated or downloaded.
        """
        if self._data_config is None:
            timm = _timm()
            with torch.device("meta"):
                network = self._create()
            config = timm.data.resolve_model_data_config(network)
            if self.image_size is not None:
                config["input_size"] = (config["input_size"][0], self.image_size, self.image_size)
            self._data_config = config
        return dict(self._data_config)

    def _sizes(self) -> tuple[int, int, str, tuple[float, ...], tuple[float, ...]]:
        """The streaming decoder's ``(resize, crop, interpolation, mean, std)`` from the data config,
        as timm's eval transform builds them (shorter side to ``floor(size / crop_pct)``, centre crop)."""
        config = self.data_config()
        size = int(config["input_size"][-1])
        resize = math.floor(size / float(config.get("crop_pct") or 1.0))
        return resize, size, str(config["interpolation"]), tuple(config["mean"]), tuple(config["std"])

    def transform(self) -> Callable[[Any], torch.Tensor]:
        """The per-image preprocessing of the model's data config (PIL image -> ``(3, H, W)``)."""
        return _timm().data.create_transform(**self.data_config(), is_training=False)
