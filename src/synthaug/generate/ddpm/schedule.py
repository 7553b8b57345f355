"""The diffusion process: DDPM training loss and DDIM sampling with classifier-free guidance.

Written here rather than taken from ``diffusers`` so the offline default generator needs
nothing beyond torch (``diffusers`` is an optional extra); the whole process is a few
tensor formulas.

Conventions: images live in ``[-1, 1]``; ``alpha_bar[t]`` is the cumulative product of
``1 - beta`` for integer timesteps ``t = 0 .. T-1``;
``x_t = sqrt(alpha_bar[t]) x_0 + sqrt(1 - alpha_bar[t]) eps``.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models" (training objective).
    Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models" (sampler).
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
    """Forward noising, the training loss and the DDIM sampler for one schedule.

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
        if self.config.prediction_type == "epsilon":
            target = noise
        else:
            target = signal * noise - sigma * images
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

    @torch.inference_mode()
    def sample(
        self,
        model: nn.Module,
        noise: torch.Tensor,
        labels: torch.Tensor,
        steps: int,
        guidance_scale: float | torch.Tensor,
        null_class: int,
    ) -> torch.Tensor:
        """Deterministic DDIM sampling (eta = 0) with classifier-free guidance.

        The conditional and unconditional predictions come from one forward pass over the
        doubled batch; when every guidance scale is 1 the unconditional half is skipped. The
        predicted clean image is clipped to ``[-1, 1]`` at every step, which keeps
        few-step sampling stable. Every operation acts on each image independently, so an
        image depends only on its own noise and label, not on the rest of the batch.

        Args:
            model: ``model(x_t, t, labels) -> (B, C, H, W)``.
            noise: Starting noise ``(B, C, H, W)``, standard normal.
            labels: Class indices ``(B,)``.
            steps: Number of DDIM steps.
            guidance_scale: ``s`` in ``pred = pred_uncond + s (pred_cond - pred_uncond)``;
                1 means no guidance. A number, or one per image ``(B,)``.
            null_class: Label index meaning "no class".

        Returns:
            Images ``(B, C, H, W)`` in ``[-1, 1]``.
        """
        x = noise
        batch = x.shape[0]
        scale = torch.as_tensor(guidance_scale, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        guided = bool((scale != 1).any())
        model_labels = torch.cat([labels, torch.full_like(labels, null_class)]) if guided else labels
        timesteps = self.sampling_timesteps(steps)
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

            alpha_bar = self.alpha_bar[t]
            signal, sigma = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
            if self.config.prediction_type == "epsilon":
                clean = (x - sigma * prediction) / signal
            else:
                clean = signal * x - sigma * prediction
            clean = clean.clamp(-1, 1)
            noise_estimate = (x - signal * clean) / sigma

            next_t = timesteps[position + 1] if position + 1 < len(timesteps) else None
            next_alpha_bar = self.alpha_bar[next_t] if next_t is not None else torch.tensor(1.0)
            x = next_alpha_bar.sqrt() * clean + (1 - next_alpha_bar).sqrt() * noise_estimate
        return x
