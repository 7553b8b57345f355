"""Any torchvision classification model as a backbone, frozen (the study's set-up) or not.

A frozen model is a fixed feature extractor: :meth:`TorchvisionBackbone.prepare` runs it once
per (model, weights, dataset, transform) and stores the penultimate features on disk under
``cache_root()/features/<sha256>.safetensors``, so every head, method and seed after the first
trains on cached features in seconds. The trainable module is then a small head.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import safetensors.torch
import torch
from torch import nn

from synthaug.errors import ConfigError, DataError
from synthaug.fileio import atomic_write_bytes, sha256_bytes, sha256_file
from synthaug.models.base import Backbone
from synthaug.models.weights import family_members, load_state_dict_checked
from synthaug.progress import ProgressCallback, report
from synthaug.runtime import pick_device

if TYPE_CHECKING:
    import torchvision

    from synthaug.data import ImageDataset

# torchvision's ImageNet statistics, used with random weights or a bare local state dict.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Bump when the stored feature layout changes, so stale cache entries are never read.
# 2: images decoded by the streaming pipeline (resize and crop on the PIL image, then uint8).
FEATURE_CACHE_FORMAT = 2

FINE_TUNING_RECIPE: dict[str, Any] = {
    "optimizer": "adamw",
    "weight_decay": 0.05,
    "warmup_fraction": 0.05,
    "backbone_lr_scale": 0.1,
    "gradient_clip_norm": 1.0,
    "ema_decay": 0.0,
    "mixed_precision": True,
    "channels_last": True,
}
"""Defaults of an unfrozen (fine-tuned) network, after torchvision's and timm's recipes for a
pretrained ResNet-50 on a few thousand images: AdamW with decoupled weight decay 0.05, 5 %
linear warm-up then cosine decay, the pretrained body at a tenth of the new head's learning
rate (Kornblith et al. 2019; Howard & Ruder 2018's discriminative rates), gradient clipping
at norm 1, and on CUDA bf16 autocast with channels-last tensors. EMA is left off: over the
few hundred steps of a small set it lags the weights more than it smooths them."""


class PixelDecoder:
    """PIL image -> uint8 ``(3, crop, crop)``: RGB, shorter side resized, centre-cropped.

    Picklable (DataLoader workers run it). Resizing happens on the PIL image, as
    torchvision's ``ImageClassification`` preset does.
    """

    def __init__(self, resize: int, crop: int, interpolation: str = "bilinear") -> None:
        self.resize, self.crop, self.interpolation = resize, crop, interpolation

    def __call__(self, image: Any) -> torch.Tensor:
        from torchvision.transforms import InterpolationMode, v2

        image = image.convert("RGB") if image.mode != "RGB" else image
        mode = InterpolationMode(self.interpolation)
        image = v2.functional.resize(image, self.resize, interpolation=mode, antialias=True)
        image = v2.functional.center_crop(image, self.crop)
        return v2.functional.pil_to_tensor(image)

    def __repr__(self) -> str:
        return f"PixelDecoder(resize={self.resize}, crop={self.crop}, interpolation={self.interpolation!r})"


@functools.cache
def torchvision_model_names() -> frozenset[str]:
    """Names of torchvision's classification models (``resnet18``, ``vit_b_16``, ...)."""
    import torchvision  # here, not at the top: importing torchvision costs ~1.5 s (CLI start-up)

    return frozenset(torchvision.models.list_models(module=torchvision.models))


def _replace_output_layer(model: nn.Module) -> int:
    """Swap the model's output :class:`~torch.nn.Linear` for an identity, in place.

    The output layer is the last ``nn.Linear`` registered in the model (``fc`` for ResNets,
    ``classifier[-1]`` for EfficientNets, ``heads.head`` for ViTs), so the model then returns
    its penultimate features.

    Returns:
        The feature dimension D (the removed layer's ``in_features``).
    """
    linear_names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linear_names:
        raise ConfigError(
            f"{type(model).__name__} has no nn.Linear output layer to replace; "
            "choose a torchvision model with a linear classifier (resnet, efficientnet, vit, ...)"
        )
    parent_name, _, child_name = linear_names[-1].rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    in_features = parent.get_submodule(child_name).in_features
    setattr(parent, child_name, nn.Identity())
    return in_features


class Preprocess:
    """One image -> normalised float ``(3, H, W)``: a decoder, then a batch normalisation."""

    def __init__(self, decode: PixelDecoder, normalize: Any, statistics: str) -> None:
        self.decode, self.normalize, self.statistics = decode, normalize, statistics

    def __call__(self, image: Any) -> torch.Tensor:
        return self.normalize(self.decode(image)[None])[0]

    def __repr__(self) -> str:
        return f"{self.decode!r} -> float / 255 -> Normalize(mean, std = {self.statistics})"


class TorchvisionBackbone(Backbone):
    """A torchvision classification model (by name) with its classifier replaced.

    Preprocessing follows the weights' own transforms (``weights.transforms()``: resize,
    centre crop, ImageNet normalisation). With random weights or a bare ``weights_path``
    (no torchvision weights name to take the transforms from), or when ``image_size`` is
    given, images are resized (shorter side) and centre-cropped to ``image_size`` (224 by
    default), scaled to ``[0, 1]`` and normalised with the ImageNet mean and std.

    Args:
        model: torchvision model name, e.g. ``"resnet152"``, ``"efficientnet_b0"``.
        weights: torchvision weights name (``"DEFAULT"``, ``"IMAGENET1K_V2"``, ...) or
            ``None`` for random weights. Without ``weights_path`` torchvision downloads
            them (for users online); with it, only the transforms are taken from the name.
        weights_path: Local state dict (``.pt``/``.pth``, loaded with ``weights_only=True``,
            or ``.safetensors``) for the model, loaded strictly.
        freeze: Use the model as a fixed feature extractor with cached features and train a
            head only (``True``), or fine-tune the whole network (``False``).
        image_size: Input side in pixels; overrides the weights' transforms.
        head_hidden: Width of a hidden layer in the head (frozen only); ``None`` gives a
            linear head ``Dropout -> Linear``.
        dropout: Default dropout probability in front of the output layer.
        init_seed: Seed of the random initialisation when ``weights`` and ``weights_path``
            are both ``None`` (so the "random features" are reproducible).
        batch_size: Images per forward pass when extracting features.
        num_workers: DataLoader worker processes decoding images for feature extraction;
            ``None``: :func:`synthaug.data.loader.default_num_workers`.
        device: Device for feature extraction; ``None`` picks CUDA when present.
    """

    def __init__(
        self,
        *,
        model: str,
        weights: str | None = None,
        weights_path: str | os.PathLike[str] | None = None,
        freeze: bool = True,
        image_size: int | None = None,
        head_hidden: int | None = None,
        dropout: float = 0.2,
        init_seed: int = 0,
        batch_size: int = 64,
        num_workers: int | None = None,
        device: str | None = None,
    ) -> None:
        if model not in torchvision_model_names():
            raise ConfigError(f"unknown torchvision classification model {model!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{model}: dropout must be in [0, 1), got {dropout}")
        self.name = model
        self.weights = weights
        self.weights_path = None if weights_path is None else str(Path(weights_path).resolve())
        self.freeze = bool(freeze)
        self.image_size = None if image_size is None else int(image_size)
        self.head_hidden = None if head_hidden is None else int(head_hidden)
        self.dropout = float(dropout)
        self.init_seed = int(init_seed)
        self.batch_size = int(batch_size)
        self.num_workers = num_workers
        self.device = device
        self._extractor: tuple[nn.Module, int] | None = None
        self._identity: str | None = None

    @property
    def default_learning_rate(self) -> float:
        """1e-2 for a head on frozen features, else 1e-3.

        A head on frozen features is a linear probe: at 1e-3, 500 Adam steps leave it short of
        the logistic-regression optimum (360 digit images, 10 classes, random resnet18
        features: 86.9 % test accuracy against scikit-learn's 92.9 %); at 1e-2 it reaches
        92.7 % (``tests/models/test_frozen_head_defaults.py``).
        """
        return 1e-2 if self.freeze else 1e-3

    @property
    def trains_on_pixels(self) -> bool:  # type: ignore[override]
        """An unfrozen network is trained from pixels; a frozen one's head from features."""
        return not self.freeze

    def training_defaults(self) -> dict[str, Any]:
        """:data:`FINE_TUNING_RECIPE` when unfrozen, the classic recipe for a head on features."""
        return dict(FINE_TUNING_RECIPE) if not self.freeze else super().training_defaults()

    @staticmethod
    def model_names() -> frozenset[str]:
        """The model names this backbone accepts (:func:`torchvision_model_names`)."""
        return torchvision_model_names()

    def get_config(self) -> dict[str, Any]:
        # ``device`` and ``num_workers`` are left out: they belong to the machine, not to the model.
        return {
            "name": self.name,
            "weights": self.weights,
            "weights_path": self.weights_path,
            "freeze": self.freeze,
            "image_size": self.image_size,
            "head_hidden": self.head_hidden,
            "dropout": self.dropout,
            "init_seed": self.init_seed,
            "batch_size": self.batch_size,
        }

    # -- the pretrained network ------------------------------------------------------------

    def _weights_enum(self) -> torchvision.models.WeightsEnum | None:
        if self.weights is None:
            return None
        import torchvision

        try:
            return torchvision.models.get_model_weights(self.name)[self.weights]
        except KeyError:
            known = ", ".join(torchvision.models.get_model_weights(self.name).__members__)
            raise ConfigError(
                f"{self.name}: unknown weights {self.weights!r}; choose one of: {known}"
            ) from None

    def _weights_identity(self) -> str:
        """What determines the network's weights, for the feature cache key (memoised)."""
        if self._identity is None:
            if self.weights_path is not None:
                # Hashing the file, not its name: a replaced file must not reuse old features.
                self._identity = f"file-sha256:{sha256_file(self.weights_path)}"
            elif self.weights is not None:
                self._identity = f"torchvision:{self._weights_enum()}"
            else:
                self._identity = f"random:init_seed={self.init_seed}:torch={torch.__version__}"
        return self._identity

    def _load_network(self) -> tuple[nn.Module, int]:
        """Build the pretrained network with its output layer removed; return it and D."""
        import torchvision

        download = self._weights_enum() if self.weights_path is None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.init_seed)
            try:
                network = torchvision.models.get_model(self.name, weights=download)
            except (OSError, RuntimeError) as error:  # urllib's URLError is an OSError
                if download is None:
                    raise
                reason = str(getattr(error, "reason", None) or error).splitlines()[0]
                raise ConfigError(
                    f"{self.name}: cannot download the {self.weights} weights ({type(error).__name__}: {reason}); "
                    f"go online once (torchvision keeps them in {torch.hub.get_dir()}/checkpoints), or download "
                    f"{download.url} elsewhere and give weights_path"
                ) from error
        if self.weights_path is not None:
            path = Path(self.weights_path)
            load_state_dict_checked(network, self._read_state_dict(path), path=str(path), architecture=self.name,
                                    candidates=self._family_builders)
        return network, _replace_output_layer(network)

    def _family_builders(self) -> dict[str, Any]:
        """Builders of the torchvision models nearest in name (what a mismatched file may fit)."""
        import torchvision

        return {
            name: (lambda name=name: torchvision.models.get_model(name))
            for name in family_members(self.name, torchvision_model_names())
        }

    def check_weights(self) -> None:
        """Load ``weights_path`` into a network now (and check the ``weights`` name), so that a
        file saved from another architecture stops a study before it generates (and pays for) a
        single image rather than when the first unit extracts features."""
        self._weights_enum()
        if self.weights_path is not None:
            self._load_network()

    def _read_state_dict(self, path: Path) -> dict[str, torch.Tensor]:
        if not path.is_file():
            raise ConfigError(f"weights_path {path} does not exist; give a state dict file")
        try:
            if path.suffix == ".safetensors":
                return safetensors.torch.load_file(path)
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # any unreadable file: corrupt, pickled code, wrong format
            raise ConfigError(f"weights_path {path} is not a readable state dict: {error}") from error
        if not isinstance(state, dict):
            raise ConfigError(f"weights_path {path} holds a {type(state).__name__}, not a state dict")
        return state

    def _sizes(self) -> tuple[int, int, str, tuple[float, ...], tuple[float, ...]]:
        """``(resize, crop, interpolation, mean, std)`` of the weights' preset, or the defaults."""
        weights = self._weights_enum()
        if weights is not None and self.image_size is None:
            preset = weights.transforms()
            return (int(preset.resize_size[0]), int(preset.crop_size[0]), preset.interpolation.value,
                    tuple(preset.mean), tuple(preset.std))
        size = self.image_size or 224
        return size, size, "bilinear", IMAGENET_MEAN, IMAGENET_STD

    def pixel_decoder(self) -> PixelDecoder:
        """One image -> uint8 ``(3, crop, crop)`` (the weights' resize and centre crop)."""
        resize, crop, interpolation, _, _ = self._sizes()
        return PixelDecoder(resize, crop, interpolation)

    def normalize_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, 3, H, W)`` -> scaled to ``[0, 1]`` and normalised with the weights' mean/std."""
        _, _, _, mean, std = self._sizes()
        mean_t = torch.tensor(mean, device=pixels.device).view(1, -1, 1, 1)
        std_t = torch.tensor(std, device=pixels.device).view(1, -1, 1, 1)
        return (pixels.float() / 255.0 - mean_t) / std_t

    def transform(self) -> Preprocess:
        """The per-image preprocessing (PIL image -> float tensor ``(3, H, W)``): decoder + normalisation."""
        return Preprocess(self.pixel_decoder(), self.normalize_pixels, repr(self._sizes()[3:]))

    # -- inputs ------------------------------------------------------------------------------

    def _stream(self, dataset: ImageDataset, augmenter: Any = None) -> Any:
        from synthaug.data.loader import PixelBatches

        return PixelBatches(
            dataset, self.pixel_decoder(), augmenter=augmenter,
            num_workers=self.num_workers, pin_memory=pick_device(self.device).type == "cuda",
        )

    def prepare(self, dataset: ImageDataset, *, progress: ProgressCallback | None = None) -> torch.Tensor:
        """Frozen: penultimate features ``(N, D)`` (cached); else pixels ``(N, 3, H, W)``.

        Unfrozen pixels are held in memory as float32 (``N * 3 * H * W * 4`` bytes): methods
        never call this for an unfrozen network (they stream, see :mod:`synthaug.data.loader`);
        it is here for callers that want the whole tensor.
        """
        if not self.freeze:
            from synthaug.data.loader import sequential_batches

            stream = self._stream(dataset)
            order = sequential_batches(len(dataset), self.batch_size)
            return torch.cat([self.normalize_pixels(batch) for batch in stream.batches(order)])
        path = self.feature_cache_path(dataset)
        if path.is_file():
            return safetensors.torch.load_file(path)["features"]
        features = self._extract_features(dataset, progress=progress)
        self._write_cache(path, {"features": features}, dataset)
        return features

    def prepare_views(
        self, dataset: ImageDataset, augmentation: Any, views: int, *, progress: ProgressCallback | None = None
    ) -> torch.Tensor:
        """Features of ``views`` augmented views of each image, ``(views, N, D)``, cached.

        View ``k`` is epoch ``k`` of the per-example augmentation with seed 0, so the cache
        entry depends only on the model, the images, the policy and ``views`` (content
        addressed like the features) and every method and seed reuses it; a training epoch
        then draws one view per image (:class:`~synthaug.methods.training.PreparedData`).
        """
        path = self.feature_cache_path(dataset, views=(augmentation.spec(), int(views)))
        if path.is_file():
            return safetensors.torch.load_file(path)["views"]
        augmenter = augmentation.example_augmenter()
        stacked = torch.stack(
            [self._extract_features(dataset, progress=progress, augmenter=augmenter, epoch=k) for k in range(views)]
        )
        self._write_cache(path, {"views": stacked}, dataset)
        return stacked

    def _write_cache(self, path: Path, tensors: dict[str, torch.Tensor], dataset: ImageDataset) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"model": self.name, "weights": self._weights_identity(),
                    "dataset": dataset.fingerprint(), "transform": repr(self.transform())}
        # Atomic, so a crashed run never leaves a half-written entry; not fsynced: a cache.
        atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=metadata), durable=False)

    def feature_cache_path(self, dataset: ImageDataset, views: tuple[str, int] | None = None) -> Path:
        """Content address of ``dataset``'s features: sha256 of everything they depend on.

        ``views = (augmentation spec, count)`` addresses the augmented views instead.
        """
        from synthaug.data.cache import cache_root

        contents = {
            "format": FEATURE_CACHE_FORMAT,
            "model": self.name,
            "weights": self._weights_identity(),
            "dataset": dataset.fingerprint(),
            "transform": repr(self.transform()),
        }
        if views is not None:
            contents["views"] = list(views)
        key = json.dumps(contents, sort_keys=True)
        digest = sha256_bytes(key.encode())
        return Path(cache_root()) / "features" / f"{digest}.safetensors"

    @torch.no_grad()
    def _extract_features(
        self, dataset: ImageDataset, *, progress: ProgressCallback | None, augmenter: Any = None, epoch: int = -1
    ) -> torch.Tensor:
        """Features ``(N, D)`` through the streaming loader: workers decode (and augment, for
        view ``epoch``), the network runs batch by batch, and only the features are kept."""
        from synthaug.data.loader import sequential_batches

        if len(dataset) == 0:
            raise DataError(f"dataset {dataset.name!r} is empty; nothing to extract features from")
        if self._extractor is None:
            self._extractor = self._load_network()
        network, _ = self._extractor
        device = pick_device(self.device)
        network.to(device).eval()
        chunks = []
        stage, item = "features", f"{self.name} on {dataset.name}"
        report(progress, stage, 0, len(dataset), unit="images", item=item)
        done = 0
        stream = self._stream(dataset, augmenter)
        for pixels in stream.batches(sequential_batches(len(dataset), self.batch_size), epoch):
            chunks.append(network(self.normalize_pixels(pixels.to(device, non_blocking=True))).float().cpu())
            done += len(pixels)
            report(progress, stage, done, len(dataset), unit="images", item=item)
        report(progress, stage, len(dataset), len(dataset), unit="images", item=item, finished=True)
        return torch.cat(chunks).contiguous()

    # -- trainable module --------------------------------------------------------------------

    def build_trainable(self, num_classes: int, dropout: float | None = None) -> nn.Sequential:
        """Frozen: a head on ``(N, D)`` features; else the whole network + a new classifier."""
        p = self.dropout if dropout is None else float(dropout)
        if not self.freeze:
            network, dim = self._load_network()
            return nn.Sequential(network, nn.Dropout(p), nn.Linear(dim, num_classes))
        if self._extractor is None:
            self._extractor = self._load_network()
        _, dim = self._extractor
        if self.head_hidden is None:
            return nn.Sequential(nn.Dropout(p), nn.Linear(dim, num_classes))
        return nn.Sequential(
            nn.Linear(dim, self.head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p),
            nn.Linear(self.head_hidden, num_classes),
        )
