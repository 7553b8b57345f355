"""Device choice, shared by every part that touches torch.

(Seeding lives where the randomness is drawn: :func:`synthaug.methods.training.seeded` forks
torch's generators for one block, and every other random draw takes an explicit seed.)
"""

from __future__ import annotations

import torch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` if given, else CUDA when available, else Apple MPS, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
