"""The embedded class-conditional diffusion generator that synthaug trains itself.

- :class:`DiffusionGenerator` loads a generator directory (default: the Fashion-MNIST one
  shipped in the package) and samples ``(label, seed)`` pairs with DPM-Solver++(2M) or DDIM and
  classifier-free guidance.
- :func:`train_generator` trains one on any labelled :class:`~synthaug.data.ImageDataset`,
  resumably (the ``synthaug train-generator`` command).
- The ``ddpm`` generator backend (:mod:`synthaug.generate.backends.ddpm`) serves it to
  ``synthaug generate``.

References:
    Ho, Jain & Abbeel (2020), "Denoising Diffusion Probabilistic Models".
    Song, Meng & Ermon (2021), "Denoising Diffusion Implicit Models".
    Lu, Zhou, Bao, Chen, Li & Zhu (2022), "DPM-Solver++: Fast Solver for Guided Sampling of
    Diffusion Probabilistic Models".
    Ho & Salimans (2022), "Classifier-Free Diffusion Guidance".
"""

from synthaug.generate.ddpm.pipeline import DiffusionGenerator, default_generator_dir
from synthaug.generate.ddpm.schedule import DiffusionSchedule, ScheduleConfig
from synthaug.generate.ddpm.train import GeneratorTrainingConfig, TrainingResult, train_generator
from synthaug.generate.ddpm.unet import ClassConditionalUNet, UNetConfig

__all__ = [
    "ClassConditionalUNet",
    "DiffusionGenerator",
    "DiffusionSchedule",
    "ScheduleConfig",
    "GeneratorTrainingConfig",
    "TrainingResult",
    "UNetConfig",
    "default_generator_dir",
    "train_generator",
]
