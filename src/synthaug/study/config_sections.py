"""The sections of a study config other than the regimes: real data, synthetic sources,
methods, backbones, OOD sets, dataset shift, execution and tracking.

Each is a pydantic model (``extra="forbid"``: a misspelt key is an error) whose fields carry a
``description``, so ``synthaug config-schema`` prints a JSON schema that editors use for
completion. :mod:`synthaug.study.config` gathers them into :class:`~synthaug.study.config.StudyConfig`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BackboneSpec",
    "Corruption",
    "Execution",
    "GenerationSpec",
    "MLflowTracking",
    "MethodSpec",
    "OODSpec",
    "RayExecution",
    "RealData",
    "RetrievalSpec",
    "ShiftSpec",
    "Strict",
    "SyntheticSource",
    "Tracking",
]


class Strict(BaseModel):
    """Base of every config section: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RealData(Strict):
    """The real images: a training pool to draw from, a validation split and the test set."""

    train: str = Field(
        description=(
            "Training pool that real-only and mixed regimes draw `n` images per class from: an image folder "
            "or a built-in name such as `fashion-mnist:train[50000:]`."
        ),
    )
    test: str = Field(description="The real test set every model is evaluated on (the study's common yardstick).")
    val: str | None = Field(
        default=None,
        description=(
            "Optional separate validation set (early stopping, temperature scaling). When absent, "
            "`val_fraction` of the training pool is held out (stratified, seeded) and never trained on."
        ),
    )
    val_fraction: float = Field(
        default=0.1, gt=0.0, lt=1.0,
        description="Fraction of the training pool held out for validation when `val` is not given.",
    )
    val_seed: int = Field(
        default=0,
        description=(
            "Seed of the validation split (kept apart from the model seeds so that every model, at every "
            "seed, is validated on the same images)."
        ),
    )


class GenerationSpec(Strict):
    """Images the study generates itself through :func:`synthaug.generate.generate_dataset`."""

    backend: str = Field(
        default="ddpm",
        description="Generator backend key: `ddpm` (offline, shipped), `openai`, `diffusers`.",
    )
    model: str | None = Field(
        default=None,
        description=(
            "Backend model name or path (`dall-e-3`, a hub id, a generator directory); backend default if "
            "absent."
        ),
    )
    per_class: int = Field(gt=0, description="Images generated per class; regimes draw their sizes from these.")
    prompt: str | dict[str, Any] = Field(
        default="a photo of a {label}",
        description=(
            "Prompt: a template where `{label}` is replaced by the class name, or a mapping of "
            "`synthaug.generate.prompts.PromptSpec` fields (templates, class_prompts, descriptions, "
            "backgrounds, styles, guidance_scale_range) for diverse prompts, plus `expand: {backend, model, "
            "per_class, ...}` (a text model writes the prompts: `synthaug.generate.expand.PromptExpansion`, "
            "saved as prompts.json in the folder, so a rerun asks nothing again) or `captions: {model: DIR}` "
            "(captions of the real training images the regimes may use, joined to the class name; Lei et al. 2023)."
        ),
    )
    classes: dict[str, str] | None = Field(
        default=None,
        description=(
            "Class descriptions used in every prompt and asked of the text model, e.g. `{crane: the bird}`."
        ),
    )
    negative_prompt: str | None = Field(
        default=None,
        description=(
            "What a diffusers pipeline should avoid; `default` is "
            "`synthaug.generate.prompts.DEFAULT_NEGATIVE_PROMPT`; other backends refuse it before generating."
        ),
    )
    seed: int = Field(default=0, description="Seed of the generation run (each image's seed derives from it).")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Generation parameters (size, quality, style, steps, guidance_scale, negative_prompt); the "
            "backend rejects those it does not support before anything is generated."
        ),
    )
    backend_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Backend options (concurrency, device, batch_size, ...).",
    )
    max_cost: float | None = Field(
        default=None, ge=0.0,
        description="Cap in US dollars on the estimated cost of the folder (paid backends).",
    )
    dir: str | None = Field(
        default=None,
        description=(
            "Output folder; by default a content-addressed folder under the study cache, so the same spec is "
            "generated once and a rerun resumes it."
        ),
    )
    init_images: str | None = Field(
        default=None,
        description=(
            "Guided generation (`synthaug.generate.guided`: SDEdit on ddpm, image-to-image on diffusers, "
            "edits on openai): `real` starts every regime from its own real images at its size and seed (the "
            "leakage guard refuses test or validation images), or a dataset spec (folder or built-in) starts "
            "every regime from that dataset."
        ),
    )
    strength: float | list[float] | None = Field(
        default=None,
        description="Strength(s) of guided generation in (0, 1], one drawn per image (ddpm, diffusers).",
    )
    tune_on: Literal["real"] | None = Field(
        default=None,
        description=(
            "`real`: generate with the ddpm generator fine-tuned on each regime's own real images at its size "
            "and seed (`synthaug.study.tuning`, with its near-copy check)."
        ),
    )
    tune_steps: int | None = Field(default=None, gt=0, description="Fine-tuning steps of `tune_on` (default 300).")
    real_per_class: int | None = Field(
        default=None, gt=0,
        description=(
            "`init_images: real` or `tune_on: real`: real images per class that `synthetic` regimes of this "
            "source start from (a `mixed` regime uses its own size)."
        ),
    )

    def identity(self) -> dict[str, Any]:
        """What the generated images depend on, for a cache key: every field but ``dir``, and
        the guidance fields only when set (so folders generated before they existed keep
        their keys)."""
        unset = {name for name in ("init_images", "strength", "tune_on", "tune_steps", "real_per_class", "classes",
                                   "negative_prompt") if getattr(self, name) is None}  # fmt: skip
        return self.model_dump(mode="json", exclude={"dir", *unset})

    @property
    def captions(self) -> dict[str, Any] | None:
        """The ``prompt: {captions: {...}}`` block, if any."""
        return self.prompt.get("captions") if isinstance(self.prompt, dict) else None

    @property
    def per_real(self) -> bool:
        """Whether the images depend on each regime's own real images (guided by or tuned on them)."""
        return self.init_images == "real" or self.tune_on == "real"

    @model_validator(mode="after")
    def _guidance_keys_together(self) -> GenerationSpec:
        """Guided (``init_images``) and tuned (``tune_on``) generation: the keys each needs."""
        if self.init_images is not None and self.tune_on is not None:
            raise ValueError("give either init_images or tune_on, not both")
        if self.tune_on is not None and self.backend != "ddpm":
            raise ValueError("tune_on: tuning in a study needs backend ddpm (diffusers LoRA: "
                             "`synthaug train-generator --backend diffusers`, then a source with `model`)")
        if self.strength is not None and self.init_images is None:
            raise ValueError("strength: needs init_images (the real images to start from)")
        if self.tune_steps is not None and self.tune_on is None:
            raise ValueError("tune_steps: needs tune_on")
        if self.real_per_class is not None and not self.per_real:
            raise ValueError("real_per_class: only for init_images: real or tune_on: real")
        if isinstance(self.prompt, dict):
            if "expand" in self.prompt and "captions" in self.prompt:
                raise ValueError("prompt: give either expand or captions, not both")
            captions = self.prompt.get("captions")
            if captions is not None and (not isinstance(captions, dict) or set(captions) - {"model", "template"}
                                         or not captions.get("model")):  # fmt: skip
                raise ValueError("prompt.captions: give {model: DIR_OR_HUB_ID} (and optionally template)")
        return self


class RetrievalSpec(Strict):
    """Real images retrieved from an unlabelled pool by CLIP (:func:`synthaug.retrieve.retrieve_dataset`):
    the baseline generated images must beat (Geng et al., NeurIPS 2024)."""

    pool: str = Field(
        description="The unlabelled pool: an image folder or a dataset name (its labels are ignored).",
    )
    by: str = Field(
        description="`clip:DIR_OR_HUB_ID`: the CLIP model that ranks pool images by similarity to each class prompt.",
    )
    per_class: int = Field(gt=0, description="Images retrieved per class; regimes draw their sizes from these.")

    @field_validator("by")
    @classmethod
    def _clip(cls, value: str) -> str:
        if not value.startswith("clip:") or not value.removeprefix("clip:"):
            raise ValueError(f"give `clip:DIR_OR_HUB_ID`, e.g. clip:openai/clip-vit-base-patch32 (got {value!r})")
        return value

    @property
    def clip(self) -> str:
        """The CLIP model's folder or hub id."""
        return self.by.removeprefix("clip:")


class SyntheticSource(Strict):
    """One synthetic dataset: an existing generated folder, or a generation spec."""

    name: str = Field(
        min_length=1,
        description="Name that regimes refer to (`source:`) and the report shows (\"ddpm\", \"dall-e-3\", ...).",
    )
    path: str | None = Field(
        default=None,
        description="An existing image folder (e.g. the output of `synthaug generate`).",
    )
    generate: GenerationSpec | None = Field(default=None, description="Or: generate the images as part of the study.")
    retrieve: RetrievalSpec | None = Field(
        default=None,
        description=(
            "Or: retrieve real images from an unlabelled pool, e.g. `{pool: FOLDER, by: clip:DIR, per_class: 100}` "
            "(deduplicated against the study's test and validation sets); the report calls it \"retrieved\"."
        ),
    )

    @model_validator(mode="after")
    def _one_origin(self) -> SyntheticSource:
        if sum(value is not None for value in (self.path, self.generate, self.retrieve)) != 1:
            raise ValueError("give exactly one of `path`, `generate` or `retrieve`")
        return self

    @property
    def kind(self) -> Literal["generated", "retrieved"]:
        """What the images are, as the report names them: ``retrieved`` real images or
        ``generated`` ones (a folder source is a generated folder, ``synthaug generate``'s output)."""
        return "retrieved" if self.retrieve is not None else "generated"


class MethodSpec(Strict):
    """An uncertainty method by registered key, with its hyper-parameters."""

    key: str = Field(
        description=(
            "Registered key in `synthaug.methods.METHODS` (deterministic, temperature, mc-dropout, ensemble, "
            "bnn, laplace, ...)."
        ),
    )
    name: str = Field(
        default="",
        description="Label in tables; defaults to the key (give two entries of one key different names).",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Keyword hyper-parameters of the method (e.g. `epochs`, `n_members`); they override the "
            "study-wide `method_params`."
        ),
    )
    sizes: list[int] | None = Field(
        default=None,
        description=(
            "Run this method only at these sizes (images per class), e.g. an expensive method at the largest "
            "size only while the baseline draws the learning curves; default: every size."
        ),
    )

    @field_validator("sizes")
    @classmethod
    def _positive_sizes(cls, sizes: list[int] | None) -> list[int] | None:
        if sizes is not None and (not sizes or any(size <= 0 for size in sizes)):
            raise ValueError("must be a non-empty list of positive integers")
        return sizes

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("key"), str):
            return {**data, "name": data["key"]}
        return data


class BackboneSpec(Strict):
    """A backbone by registered name (`cnn`, or any torchvision model name)."""

    name: str = Field(description="Registered backbone name, e.g. `cnn` or `resnet50`.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for the backbone (e.g. `weights_path`, `freeze: true`).",
    )


class OODSpec(Strict):
    """An out-of-distribution set: another dataset, or real classes held out of training."""

    name: str = Field(min_length=1, description="Label in tables (`digits`, `holdout`).")
    data: str | None = Field(
        default=None,
        description="A dataset spec (image folder or built-in name such as `digits`).",
    )
    holdout_classes: list[str] | None = Field(
        default=None,
        description=(
            "Or: real classes removed from every training, validation and test set; their test images become "
            "this OOD set (novel-class detection)."
        ),
    )

    @model_validator(mode="after")
    def _data_or_holdout(self) -> OODSpec:
        if (self.data is None) == (self.holdout_classes is None):
            raise ValueError("give exactly one of `data` or `holdout_classes`")
        if self.holdout_classes is not None and not self.holdout_classes:
            raise ValueError("holdout_classes: name at least one class")
        return self


# The corruptions of `synthaug.data.shift.CORRUPTIONS` (a test checks the two lists agree;
# named here so that reading a config does not import the image code).
Corruption = Literal["gaussian_noise", "blur", "contrast", "brightness", "rotation", "translation"]


class ShiftSpec(Strict):
    """Corrupted copies of the real test set that every model is evaluated on as well
    (accuracy, ECE, NLL and Brier under dataset shift; Ovadia et al. 2019)."""

    corruptions: list[Corruption] = Field(
        default_factory=lambda: ["gaussian_noise", "blur", "contrast", "brightness", "rotation", "translation"],
        min_length=1,
        description="Corruptions (MNIST-C / ImageNet-C recipe, generated in code); default: all six.",
    )
    severities: list[Literal[1, 2, 3, 4, 5]] = Field(
        default_factory=lambda: [1, 2, 3, 4, 5], min_length=1,
        description="Severities from 1 (mild) to 5 (severe); default: all five.",
    )
    seed: int = Field(default=0, description="Seeds the random parts (noise, rotation signs, translation directions).")

    @field_validator("corruptions", "severities")
    @classmethod
    def _distinct(cls, value: list[Any]) -> list[Any]:
        if len(set(value)) != len(value):
            raise ValueError("list each entry once")
        return value


class RayExecution(Strict):
    """Where and with what each unit runs on a Ray cluster."""

    address: str = Field(
        default="auto",
        description=(
            "The cluster: `auto` (the one `ray start` joined this machine to), `local` (a private one started "
            "here), `HOST:PORT` of the head node or `ray://HOST:10001` (Ray Client)."
        ),
    )
    num_cpus: float = Field(
        default=1.0, gt=0,
        description="CPU cores each unit reserves (torch threads follow the study's `threads`).",
    )
    num_gpus: float = Field(
        default=0.0, ge=0,
        description="GPUs each unit reserves; a fraction shares one GPU (0.25: four small models at a time).",
    )
    storage: str | None = Field(
        default=None,
        description=(
            "Where units keep trained models when the workers do not write the run folder themselves: "
            "`s3://bucket/prefix`, `gs://...` or a path every node mounts (read with pyarrow.fs). With it, "
            "predictions and metrics come back through Ray's object store and the driver writes them; without "
            "it, the workers must see the run folder (a shared file system, checked before any unit runs), or, "
            "where they do not, models come back through the object store too."
        ),
    )


class Execution(Strict):
    """Where the units run. Not part of the study's identity: the results are the same
    whatever runs them, so a run folder can be resumed with other settings here."""

    workers: int | None = Field(
        default=None, ge=1,
        description=(
            "Local worker processes; `synthaug study` defaults to one per core, `run_study` from Python to 1 "
            "(everything in the calling process). Ignored when `ray` is set."
        ),
    )
    ray: RayExecution | None = Field(
        default=None,
        description="Run the units on a Ray cluster instead (needs `pip install 'synthaug[ray]'`).",
    )


class MLflowTracking(Strict):
    """Where `synthaug study --track mlflow` logs (see `synthaug.tracking.mlflow`)."""

    uri: str | None = Field(
        default=None,
        description=(
            "Tracking URI; default: $MLFLOW_TRACKING_URI, else a SQLite store in `mlruns/` beside the run "
            "folder."
        ),
    )
    experiment: str | None = Field(default=None, description="Experiment name; default: `synthaug`.")


class Tracking(Strict):
    """Experiment tracking. Not part of the study's identity (like `execution`): a run folder
    can be resumed with tracking switched on or off."""

    mlflow: MLflowTracking | None = Field(
        default=None,
        description=(
            "Log the study to MLflow (needs `pip install 'synthaug[mlflow]'`): one run per unit, nested under "
            "one run for the study."
        ),
    )
