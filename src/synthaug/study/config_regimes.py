"""A study's regimes: the ways of building a training set, each with its own section.

A regime says which data it draws (``real``, ``synthetic``, ``mixed``) at which sizes; a
``mixed`` regime says how the synthetic images join the real ones in ``mix``
(:class:`Mixing`), a targeted regime how it spends its budget in ``targeted``
(:class:`Targeting`), a filtered regime what it drops in ``filter`` (:class:`RegimeFilter`).
Each section's defaults are written once, here, and a regime's own rules are its model
validators (checks that need the rest of the study are in :mod:`synthaug.study.config`).

Configs written before the sections existed give their keys on the regime itself
(``synthetic_per_class: 100``, ``budget: 400, method: ensemble``); :class:`Regime` moves them
into their section as it reads them, so those files load unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from synthaug.study.config_sections import Strict

__all__ = ["AUGMENT_FIELD", "ClipFilter", "Mixing", "Regime", "RegimeFilter", "Targeting", "augment_label"]

AUGMENT_FIELD = (
    "Classical augmentation of the training images, the methods' `augment` parameter "
    "(`synthaug.data.augment`): `none`, a policy name (`flip-crop`, `randaugment`, `trivialaugment`, "
    "`autoaugment`, `augmix`, `mixup`, `cutmix`), `{name: POLICY, option: value}` or a list of those. "
    "Nothing is on by default (a flip is wrong for digits); the report states every regime's policy."
)


def augment_label(augment: Any) -> str:
    """The readable name of an ``augment`` value, as tables and group keys show it:
    ``"none"``, ``"trivialaugment"``, ``"flip-crop+mixup(alpha=0.4)"``.

    Pure string work (no torch): the config is read before anything is trained. The value is
    checked by :func:`synthaug.data.augment.parse_augment` at config validation.
    """
    entries = augment if isinstance(augment, (list, tuple)) else [augment]
    names = []
    for entry in entries:
        if entry is None:
            continue
        if isinstance(entry, dict):
            options = ",".join(f"{key}={value}" for key, value in sorted(entry.items()) if key != "name")
            name = str(entry.get("name", "?")).strip().lower()
            names.append(f"{name}({options})" if options else name)
        else:
            names.append(str(entry).strip().lower())
    names = [name for name in names if name != "none"]
    return "+".join(names) or "none"


class ClipFilter(Strict):
    """CLIP rules of a regime filter (:mod:`synthaug.audit.clip`; the standard filter of
    generated training data)."""

    model: str = Field(
        min_length=1,
        description="A local CLIP model folder (written by CLIPModel and CLIPProcessor save_pretrained).",
    )
    min_score: float | None = Field(
        default=None, ge=0.0, le=100.0,
        description="Drop images whose CLIPScore against their prompt (100 x cosine, 0..100) is below this.",
    )
    class_agreement: bool = Field(
        default=False,
        description="Drop images whose zero-shot CLIP class is not their label.",
    )

    @model_validator(mode="after")
    def _one_rule(self) -> ClipFilter:
        if self.min_score is None and not self.class_agreement:
            raise ValueError("say what CLIP drops: min_score or class_agreement")
        return self


class RegimeFilter(Strict):
    """Which images of the synthetic source a filtered regime leaves out, by the study's audit
    of that source (the options of :func:`synthaug.audit.drop_reasons`)."""

    drop_top: float | int | None = Field(
        default=None,
        description=(
            "Drop the images with the highest combined audit score: a fraction in (0, 1) of the source (0.1 = "
            "the top 10 %) or a count (>= 1)."
        ),
    )
    threshold: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="Or drop every image whose combined audit score (in (0, 1]) is at least this.",
    )
    drop_label_issues: bool = Field(
        default=False,
        description="Drop the images confident learning flags as label issues.",
    )
    drop_duplicates: bool = Field(
        default=False,
        description="Drop copies of earlier images of the source and copies of real training images.",
    )
    drop_leakage: bool = Field(
        default=True,
        description="Drop copies of real test images (leakage); on by default, as in `synthaug filter`.",
    )
    per_class: bool = Field(
        default=False,
        description=(
            "Apply drop_top within each class (the top 10 % of every class), keeping the classes balanced: "
            "suspects cluster in the classes the generator confuses."
        ),
    )
    clip: ClipFilter | None = Field(
        default=None,
        description="Also drop what a CLIP model marks (`{model: DIR, min_score: 25}` or `class_agreement: true`).",
    )

    @field_validator("drop_top")
    @classmethod
    def _fraction_or_count(cls, value: float | int | None) -> float | int | None:
        if value is None:
            return None
        if isinstance(value, bool) or (isinstance(value, float) and not 0.0 < value < 1.0) or value <= 0:
            raise ValueError("must be a fraction in (0, 1) such as 0.1, or a count >= 1")
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> RegimeFilter:
        if self.drop_top is not None and self.threshold is not None:
            raise ValueError("give drop_top or threshold, not both")
        if (self.drop_top is None and self.threshold is None and self.clip is None
                and not (self.drop_label_issues or self.drop_duplicates)):
            raise ValueError("say what to drop: drop_top, threshold, drop_label_issues, drop_duplicates or clip")
        if self.per_class and self.drop_top is None:
            raise ValueError("per_class applies to drop_top; give drop_top")
        return self

    def describe(self) -> str:
        """``"filtered: top 10 % by audit score"``."""
        rules = []
        scope = " of each class" if self.per_class else ""
        if isinstance(self.drop_top, float):
            rules.append(f"top {100 * self.drop_top:g} %{scope} by audit score")
        elif self.drop_top is not None:
            rules.append(f"top {self.drop_top}{scope} by audit score")
        if self.threshold is not None:
            rules.append(f"audit score ≥ {self.threshold:g}")
        if self.drop_label_issues:
            rules.append("label issues")
        if self.drop_duplicates:
            rules.append("duplicates")
        if self.clip is not None and self.clip.min_score is not None:
            rules.append(f"CLIP score < {self.clip.min_score:g}")
        if self.clip is not None and self.clip.class_agreement:
            rules.append("CLIP class disagrees")
        return "filtered: " + " + ".join(rules)


class Mixing(Strict):
    """How a ``mixed`` regime adds synthetic images to its real ones."""

    synthetic_per_class: int | None = Field(
        default=None, gt=0,
        description="Synthetic images per class added to the `sizes` real ones.",
    )
    synthetic_weight: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description=(
            "Share of synthetic images in the training stream (0..1); by default each image counts once, "
            "whatever its origin."
        ),
    )
    synthetic_probability: float | None = Field(
        default=None, gt=0.0, lt=1.0,
        description=(
            "Instead of `synthetic_weight`: each training example is drawn from the synthetic images with "
            "this probability and from the real ones otherwise (with replacement, per batch), as DA-Fusion "
            "mixes them (Trabucco et al. 2024: 0.5)."
        ),
    )

    @model_validator(mode="after")
    def _one_share(self) -> Mixing:
        if self.synthetic_weight is not None and self.synthetic_probability is not None:
            raise ValueError("synthetic_probability: give it or synthetic_weight, not both")
        return self


class Targeting(Strict):
    """Uncertainty-targeted generation (`synthaug.study.targeted`): the regime spends a budget of
    synthetic images in rounds, each where the last round's model was unsure."""

    budget: int = Field(
        gt=0,
        description=(
            "Synthetic images added in total over the rounds, on top of `sizes` images per class (real for "
            "`mixed`, synthetic for `synthetic`), generated by the source's backend as the rounds ask for "
            "them."
        ),
    )
    rounds: int = Field(
        default=4, ge=1,
        description=(
            "Rounds the budget is spent in; each round trains `method`, scores every class on the real "
            "validation set and spends the next 1/rounds of the budget."
        ),
    )
    allocate: Literal["epistemic", "error", "uniform"] = Field(
        default="epistemic",
        description=(
            "What a class's share follows: `epistemic` (mean mutual information of its validation images), "
            "`error` (its validation error rate) or `uniform` (the control)."
        ),
    )
    floor: float = Field(
        default=0.2, ge=0.0, le=1.0,
        description=(
            "Share of each round's images spread evenly over the classes before the rest follows the scores, "
            "so that no class is starved (0..1; 1 = uniform)."
        ),
    )
    method: str = Field(
        min_length=1,
        description=(
            "Name of the study method trained and scored in every round (an ensemble, MC dropout or BNN gives "
            "the mutual information); the regime runs this method only."
        ),
    )

    @model_validator(mode="after")
    def _budget_fills_the_rounds(self) -> Targeting:
        if self.budget < self.rounds:
            raise ValueError(f"budget: {self.budget} images cannot be spent in {self.rounds} rounds; "
                             "raise the budget or lower `rounds`")
        return self


# Keys of the sub-sections that configs written before them gave on the regime itself.
_FLAT_KEYS = {"mix": tuple(Mixing.model_fields), "targeted": tuple(Targeting.model_fields)}


class Regime(Strict):
    """A way of building the training set, at one or more sizes."""

    name: str = Field(min_length=1, description="Label used in tables and plots; unique within the study.")
    data: Literal["real", "synthetic", "mixed"] = Field(
        description=(
            "`real`: n real images per class; `synthetic`: n synthetic images per class; `mixed`: n real "
            "images per class plus `mix.synthetic_per_class` synthetic ones."
        ),
    )
    sizes: list[int] = Field(
        min_length=1,
        description="Images per class (real for `real`/`mixed`, synthetic for `synthetic`); one run per size.",
    )
    source: str | None = Field(
        default=None,
        description="Synthetic source name (required when the study has more than one source).",
    )
    mix: Mixing | None = Field(default=None, description="`mixed` only: how the synthetic images join the real ones.")
    methods: list[str] | None = Field(
        default=None,
        description=(
            "Names of the study's methods to run in this regime (default: all of them). Learning curves "
            "usually need only the cheap baseline at many sizes."
        ),
    )
    filter: RegimeFilter | None = Field(
        default=None,
        description=(
            "Synthetic or mixed only: draw the synthetic images from the source without the images the "
            "study's audit marks (e.g. `{drop_top: 0.1}`); sizes count the images kept."
        ),
    )
    weights: Literal["audit"] | None = Field(
        default=None,
        description=(
            "Synthetic or mixed only: `audit` weights each synthetic image's loss by the out-of-sample "
            "probability of its label in the study's audit (`synthaug.audit.audit_weights`)."
        ),
    )
    method_params: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Hyper-parameters of every method in this regime, over the study's `method_params` and each "
            "method's own: a robust loss is `{loss: generalized_cross_entropy}` or `{label_smoothing: 0.1}`. "
            "(None rather than {} when absent, so that run folders written before this key existed still "
            "match their config and resume.)"
        ),
    )
    augment: Any = Field(
        default=None,
        description=AUGMENT_FIELD + " Default: the study's `augment`.",
    )
    targeted: Targeting | None = Field(
        default=None,
        description=(
            "Synthetic or mixed only: spend a budget of generated images where the model is unsure (`{budget: "
            "400, method: ensemble}`); see `synthaug.study.targeted`."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_keys_into_sections(cls, data: Any) -> Any:
        """Configs written before the sections existed give their keys on the regime itself
        (``synthetic_per_class: 100``, ``budget: 400``); they go into ``mix`` / ``targeted``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for section, keys in _FLAT_KEYS.items():
            flat = {key: data.pop(key) for key in keys if key in data}
            if not flat:
                continue
            if data.get(section) is not None:
                raise ValueError(f"{next(iter(flat))}: give it inside `{section}`, not beside it")
            data[section] = flat
        return data

    @model_validator(mode="after")
    def _keys_of_the_mode(self) -> Regime:
        """The sections and keys each kind of regime takes (checks that need the other
        sections of the study are in :func:`_check_references`)."""
        if self.data == "real":
            for key in ("source", "mix", "filter", "weights", "targeted"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only a synthetic or mixed regime takes it")
        if self.data == "synthetic" and self.mix is not None:
            raise ValueError("mix: only a mixed regime takes it (a synthetic regime uses `sizes`)")
        if self.targeted is not None:
            for key in ("mix", "filter", "weights", "methods"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: a targeted regime does not take it (its `budget` sets the synthetic "
                                     "images, its `method` the one method)")
        elif self.data == "mixed" and (self.mix is None or self.mix.synthetic_per_class is None):
            raise ValueError("mix.synthetic_per_class: missing; a mixed regime needs it")
        return self

    @property
    def synthetic_per_class(self) -> int | None:
        """Synthetic images per class a plain mixed regime adds (``None`` otherwise)."""
        return self.mix.synthetic_per_class if self.mix is not None else None

    @property
    def treatment(self) -> str | None:
        """What this regime does beyond drawing images (filter, weights, method settings), as
        the tables show it; ``None`` for a plain regime."""
        parts = [self.filter.describe()] if self.filter is not None else []
        if self.targeted:
            targeted = self.targeted
            parts.append(f"targeted ({targeted.allocate}): {targeted.budget} images in {targeted.rounds} rounds")
        if self.weights == "audit":
            parts.append("audit-weighted")
        parts += [f"{key}={value}" for key, value in sorted((self.method_params or {}).items())]
        return ", ".join(parts) or None

    @field_validator("sizes")
    @classmethod
    def _positive_unique_sizes(cls, sizes: list[int]) -> list[int]:
        if any(size <= 0 for size in sizes) or len(set(sizes)) != len(sizes):
            raise ValueError("must be a list of distinct positive integers")
        return sorted(sizes)
