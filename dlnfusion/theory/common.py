"""Shared value types of the theory modules."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Prediction"]


@dataclass(frozen=True)
class Prediction:
    """A theoretical value together with the status of the assumptions behind it.

    ``valid`` is False when an assumption of the formula fails for the given input; ``caveats``
    says which, in words. ``value`` may be ``inf`` (e.g. the second modality is never learned)
    or ``nan`` (the quantity is undefined).
    """

    value: float
    valid: bool = True
    caveats: tuple = field(default=())

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        v = float(self.value)
        return {"value": v if np.isfinite(v) else str(v), "valid": bool(self.valid),
                "caveats": list(self.caveats)}
