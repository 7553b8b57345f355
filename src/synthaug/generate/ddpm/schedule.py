"""The diffusion process: DDPM training loss, DDIM and DPM-Solver++(2M) sampling with guidance.

Written here rather than taken from ``diffusers`` so the offline default generator needs
nothing beyond torch (``diffusers`` is an optional extra); the whole process is a few
tensor formulas.

Conventions: images live in ``[-1, 1]``; ``alpha_bar[t]`` is the cumulative product of
``1 - beta`` for integer timesteps ``t = 0 .. T-1``;
``x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) eps``.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models" (training objective).
    Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models" (first-order sampler).
    Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models" (second-order multistep sampler).
    Nichol & Dhariwal (2021), "Improved Denoising Diffusion Probabilistic Models" (cosine schedule).
    Salimans & Ho (2022), "Progressive Distillation for Fast Sampling of Diffusion Models"
    (v-prediction).
    Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".
    Hang et al. (2023), "Efficient Diffusion Training via Min-SNR Weighting Strategy".
    Lin et al. (2024), "Common Diffusion Noise Schedules and Sample Steps are Flawed"
    (trailing timestep spacing).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
from torch import nn

from synthaug.errors import ConfigError

PredictionType = Literal["epsilon", "v_prediction"]
Solver = Literal["ddim", "dpm-solver++2m"]
SOLVERS: tuple[str, ...] = ("ddim", "dpm-solver++2m")


@dataclass(frozen=True)
class ScheduleConfig:
    """The noise schedule and what the network predicts; saved in ``config.json``."""

    # Number of discrete diffusion timesteps T used in training.
    num_train_timesteps: int = 1000
    # "cosine" (Nichol & Dhariwal 2021) or "linear" (Ho et al. 2020, beta 1e-4 .. 0.02).
    beta_schedule: Literal["cosine", "linear"] = "cosine"
    # Network target: the noise ("epsilon", Ho et al. 2020) or the velocity
    # sqrt(a) eps - sqrt(1-a) x_0 ("v_prediction"), which stays well-behaved at the
    # high-noise end and so suits few-step sampling.
    prediction_type: PredictionType = "v_prediction"
    # Min-SNR-gamma loss weighting (Hang et al. 2023); None weighs every timestep equally.
    min_snr_gamma: float | None = 5.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ScheduleConfig:
        return cls(**values)


def _alpha_bar(config: ScheduleConfig) -> torch.Tensor:
    steps = config.num_train_timesteps
    if config.beta_schedule == "linear":
        betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
    elif config.beta_schedule == "cosine":
        offset = 0.008

        def f(t: torch.Tensor) -> torch.Tensor:
            return torch.cos((t / steps + offset) / (1 + offset) * math.pi / 2) ** 2

        t = torch.arange(steps + 1, dtype=torch.float64)
        betas = (1 - f(t[1:]) / f(t[:-1])).clamp(max=0.999)
    else:
        raise ConfigError(
            f"beta_schedule {config.beta_schedule!r} is unknown; use 'cosine' or 'linear'"
        )
    return torch.cumprod(1 - betas, dim=0)


class DiffusionSchedule:
    """Forward noising, the training loss and the samplers for one schedule.

    Args:
        config: Schedule and prediction type.
    """

    def __init__(self, config: ScheduleConfig) -> None:
        if config.prediction_type not in ("epsilon", "v_prediction"):
            raise ConfigError(
                f"prediction_type {config.prediction_type!r} is unknown; "
                "use 'epsilon' or 'v_prediction'"
            )
        self.config = config
        self.alpha_bar = _alpha_bar(config).float()

    def _coefficients(self, timesteps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha_bar = self.alpha_bar.to(timesteps.device)[timesteps][:, None, None, None]
        return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()

    def training_loss(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        generator: torch.Generator,
        class_dropout: float,
        null_class: int,
    ) -> torch.Tensor:
        """The DDPM denoising loss on one batch (Ho et al. 2020, "L_simple").

        A timestep and a noise image are drawn per example from ``generator``; with
        probability ``class_dropout`` the label is replaced by ``null_class`` so the same
        network also learns the unconditional model that guidance needs.

        Args:
            model: ``model(x_t, t, labels) -> (B, C, H, W)``.
            images: Clean images ``(B, C, H, W)`` in ``[-1, 1]``.
            labels: Class indices ``(B,)``.
            generator: Source of all randomness of the step (CPU generator).
            class_dropout: Probability of dropping the label.
            null_class: Label index meaning "no class".

        Returns:
            Scalar loss.
        """
        batch = images.shape[0]
        device = images.device
        timesteps = torch.randint(0, self.config.num_train_timesteps, (batch,), generator=generator)
        noise = torch.randn(images.shape, generator=generator)
        dropped = torch.rand(batch, generator=generator) < class_dropout
        timesteps, noise, dropped = timesteps.to(device), noise.to(device), dropped.to(device)
        labels = torch.where(dropped, torch.full_like(labels, null_class), labels)

        signal, sigma = self._coefficients(timesteps)
        noisy = signal * images + sigma * noise
        # epsilon: predict the noise; v: predict signal * noise - sigma * images (Salimans & Ho 2022).
        target = noise if self.config.prediction_type == "epsilon" else signal * noise - sigma * images
        squared_error = (model(noisy, timesteps, labels) - target).pow(2).mean(dim=(1, 2, 3))

        if self.config.min_snr_gamma is not None:
            snr = (signal / sigma).pow(2).flatten()
            clipped = snr.clamp(max=self.config.min_snr_gamma)
            # The x_0-space weight min(SNR, gamma) expressed for this network target.
            weight = clipped / snr if self.config.prediction_type == "epsilon" else clipped / (snr + 1)
            squared_error = squared_error * weight
        return squared_error.mean()

    def sampling_timesteps(self, steps: int) -> list[int]:
        """``steps`` decreasing timesteps with trailing spacing (Lin et al. 2024).

        The first is always ``T - 1`` so sampling starts from (almost) pure noise.
        """
        total = self.config.num_train_timesteps
        if not 1 <= steps <= total:
            raise ConfigError(f"steps must be between 1 and {total}, got {steps}")
        spaced = torch.linspace(total, 0, steps + 1, dtype=torch.float64)[:-1].round().long() - 1
        return spaced.tolist()

    def _scales(self, t: int | None) -> tuple[float, float]:
        """``(alpha_t, sigma_t)`` of ``x_t = alpha_t x_0 + sigma_t eps``; ``t = None`` is the clean image."""
        if t is None:
            return 1.0, 0.0
        alpha_bar = float(self.alpha_bar[t])
        return math.sqrt(alpha_bar), math.sqrt(1.0 - alpha_bar)

    @torch.inference_mode()
    def sample(
        self,
        model: nn.Module,
        noise: torch.Tensor,
        labels: torch.Tensor,
        steps: int,
        guidance_scale: float | torch.Tensor,
        null_class: int,
        timesteps: list[int] | None = None,
        solver: Solver = "ddim",
    ) -> torch.Tensor:
        """Deterministic sampling with classifier-free guidance: DDIM or DPM-Solver++(2M).

        Both solvers integrate the probability-flow ODE written in the clean-image
        prediction ``x_0(x_t)``. With ``alpha_t, sigma_t`` the scales of
        ``x_t = alpha_t x_0 + sigma_t eps`` and ``lambda_t = log(alpha_t / sigma_t)``, a step
        from ``t`` to ``s`` is

            ``x_s = sigma_s / sigma_t * x_t + alpha_s * (1 - exp(-h)) * D``,  ``h = lambda_s - lambda_t``,

        with ``D = x_0(x_t)`` for ``"ddim"`` (DDIM with eta = 0 is exactly this first-order
        step) and, for ``"dpm-solver++2m"``, the multistep second-order estimate
        ``D = (1 + 1 / 2r) x_0(x_t) - 1 / 2r x_0(x_prev)``, ``r = h_prev / h``, which reuses the
        previous step's prediction at no extra network call (Lu et al. 2022, Algorithm 2).
        The first step (no previous prediction) and the last one (to ``sigma = 0``, where
        ``h`` is infinite) are first-order, as in the reference implementation.

        The conditional and unconditional predictions come from one forward pass over the
        doubled batch; when every guidance scale is 1 the unconditional half is skipped. The
        predicted clean image is clipped to ``[-1, 1]`` at every step, which keeps
        few-step sampling stable. Every operation acts on each image independently, so an
        image depends only on its own noise and label, not on the rest of the batch.

        Args:
            model: ``model(x_t, t, labels) -> (B, C, H, W)``.
            noise: Starting noise ``(B, C, H, W)``, standard normal.
            labels: Class indices ``(B,)``.
            steps: Number of solver steps (network evaluations of the batch).
            guidance_scale: ``s`` in ``pred = pred_uncond + s (pred_cond - pred_uncond)``;
                1 means no guidance. A number, or one per image ``(B,)``.
            null_class: Label index meaning "no class".
            timesteps: Decreasing timesteps to visit, the first being the timestep ``noise``
                is at (SDEdit starts below ``T - 1`` from a noised real image);
                default :meth:`sampling_timesteps` of ``steps``.
            solver: ``"ddim"`` or ``"dpm-solver++2m"``.

        Returns:
            Images ``(B, C, H, W)`` in ``[-1, 1]``.

        References:
            Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models".
            Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided
            Sampling of Diffusion Probabilistic Models".
        """
        if solver not in SOLVERS:
            raise ConfigError(f"solver {solver!r} is unknown; use one of {', '.join(SOLVERS)}")
        x = noise
        batch = x.shape[0]
        scale = torch.as_tensor(guidance_scale, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        guided = bool((scale != 1).any())
        model_labels = torch.cat([labels, torch.full_like(labels, null_class)]) if guided else labels
        timesteps = self.sampling_timesteps(steps) if timesteps is None else timesteps
        previous: tuple[torch.Tensor, float] | None = None  # (x_0 prediction, h) of the last step
        for position, t in enumerate(timesteps):
            t_batch = torch.full((model_labels.shape[0],), t, dtype=torch.long, device=x.device)
            model_input = torch.cat([x, x]) if guided else x
            prediction = model(model_input, t_batch, model_labels)
            if guided:
                conditional, unconditional = prediction[:batch], prediction[batch:]
                guided_prediction = unconditional + scale * (conditional - unconditional)
                # Exactly the conditional prediction at scale 1, as in an unguided batch, so
                # an image never depends on its batch-mates' scales.
                prediction = torch.where(scale == 1, conditional, guided_prediction)

            alpha, sigma = self._scales(t)
            if self.config.prediction_type == "epsilon":
                clean = (x - sigma * prediction) / alpha
            else:
                clean = alpha * x - sigma * prediction
            clean = clean.clamp(-1, 1)

            next_t = timesteps[position + 1] if position + 1 < len(timesteps) else None
            next_alpha, next_sigma = self._scales(next_t)
            if next_t is None:
                x = clean  # sigma = 0: every solver ends on its clean-image prediction
                break
            h = math.log(next_alpha / next_sigma) - math.log(alpha / sigma)
            estimate = clean
            if solver == "dpm-solver++2m" and previous is not None:
                previous_clean, previous_h = previous
                half_inverse_ratio = h / (2.0 * previous_h)  # 1 / 2r
                estimate = (1.0 + half_inverse_ratio) * clean - half_inverse_ratio * previous_clean
            x = (next_sigma / sigma) * x + (next_alpha * -math.expm1(-h)) * estimate
            previous = (clean, h)
        return x
