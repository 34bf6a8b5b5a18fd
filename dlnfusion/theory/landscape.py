"""Fixed points, saddles and modality preference of fusion networks.

Setting the gradients of eqs. (3)–(5) to zero gives, for any depth and any fusion layer
2 ≤ L_f ≤ L (Zhang et al. 2024, eqs. 6, 7, 19, 20):

* M_0 = {W = 0}: all total maps zero (a saddle of the loss: unstable);
* M_* = {W^tot = Σ_yx Σ^{-1}}: the global minimum (stable);
* M_m = {W_m^tot = Σ_yx_m Σ_m^{-1}, W_n^tot = 0 for n ≠ m}: modality m alone learned — a saddle
  that exists only when fusion is not early (L_f ≥ 2).

Early fusion (L_f = 1) has only M_0 and M_* (Appendix C). Losses on the manifolds use the
training loss ½⟨‖y − ŷ‖²⟩. Note on eq. (62): the paper writes ⟨(y − ŷ)²⟩ there, without the
factor ½ of the training loss; the comparison in eq. (61) is unaffected, but the plateau value
of the training loss on M_m is ½(⟨y²⟩ − Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import Prediction

__all__ = ["Manifold", "fixed_points", "saddle_loss", "superficial_preference",
           "preference_regions"]


@dataclass(frozen=True)
class Manifold:
    """One manifold of fixed points: its name, total map, loss and stability."""

    name: str
    total_map: np.ndarray  # (d_out, D), all modalities
    loss: float
    stable: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "total_map": self.total_map.tolist(), "loss": self.loss,
                "stable": self.stable}


def saddle_loss(stats, m) -> float:
    """Training loss on M_m: ½(tr Σ_yy − tr Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ) (eq. 62 with the ½)."""
    i = stats.index(m)
    U = stats.unimodal_solution(i)
    return float(0.5 * (np.trace(stats.sigma_yy) - np.trace(U @ stats.sigma_yx_m(i).T)))


def fixed_points(stats, fusion_layer: int = 2) -> dict:
    """The manifolds M_0, M_*, and (for L_f ≥ 2) one saddle M_m per modality.

    Returns a dict name → :class:`Manifold`, names "M_0", "M_*" and "M_A", "M_B", ....
    """
    if not isinstance(fusion_layer, (int, np.integer)) or fusion_layer < 1:
        raise ValueError(f"fusion_layer must be a positive integer, got {fusion_layer!r}")
    D, d_out = stats.input_dim, stats.output_dim
    out = {
        "M_0": Manifold("M_0", np.zeros((d_out, D)), 0.5 * stats.mean_sq_output, False),
        "M_*": Manifold("M_*", stats.global_solution(), stats.min_loss(), True),
    }
    if fusion_layer >= 2:
        for i, name in enumerate(stats.names):
            W = np.zeros((d_out, D))
            W[:, stats.slices[i]] = stats.unimodal_solution(i)
            out[f"M_{name}"] = Manifold(f"M_{name}", W, saddle_loss(stats, i), False)
    return out


def superficial_preference(stats) -> dict:
    """Which modality a late/intermediate fusion network learns first, and whether it is the
    one that reduces the loss more (Section 3.4, eqs. 10–11).

    The first-learned modality is the one with the larger ‖Σ_yx_m‖ (eq. 28); its contribution
    is Σ_yx_m Σ_m^{-1} Σ_yx_mᵀ, the loss drop of visiting M_m (eq. 62). The preference is
    *superficial* when these disagree (eqs. 10a and 10b hold with the roles of A and B chosen
    by the speeds). Returns a dict with the speeds, contributions, plateau losses, the name of
    the first modality, the name of the larger contributor and the flag ``superficial``.
    Requires exactly two modalities; a tie in speed is reported as ``first = None``.
    """
    if stats.n_modalities != 2:
        raise ValueError("superficial_preference compares exactly two modalities")
    speed = [float(np.linalg.norm(stats.sigma_yx_m(m))) for m in range(2)]
    contrib = [float(np.trace(stats.unimodal_solution(m) @ stats.sigma_yx_m(m).T))
               for m in range(2)]
    tie = np.isclose(speed[0], speed[1], rtol=1e-9, atol=0)
    first = None if tie else stats.names[int(np.argmax(speed))]
    ctie = np.isclose(contrib[0], contrib[1], rtol=1e-9, atol=0)
    more = None if ctie else stats.names[int(np.argmax(contrib))]
    return {
        "speed": dict(zip(stats.names, speed)),
        "contribution": dict(zip(stats.names, contrib)),
        "plateau_loss": {n: saddle_loss(stats, i) for i, n in enumerate(stats.names)},
        "first": first,
        "larger_contribution": more,
        "superficial": bool(first is not None and more is not None and first != more),
    }


def preference_regions(sigma_b_over_a, wa_over_wb):
    """Regions of the (σ_B/σ_A, w_A*/w_B*) plane for uncorrelated scalar modalities (eq. 11).

    With y = w_A* x_A + w_B* x_B and both teacher weights positive, A is learned first iff
    w_A*/w_B* > (σ_B/σ_A)² (eq. 10a) and A contributes more iff w_A*/w_B* > σ_B/σ_A (eq. 10b
    reversed). Returns an integer array: 1 = A first and A contributes more (region I of
    Figure 4c), 2 = B first but A contributes more (region II), 3 = A first but B contributes
    more (region III, eq. 11), 4 = B first and B contributes more. Regions 2 and 3 are the
    superficial ones.
    """
    r = np.asarray(sigma_b_over_a, dtype=float)
    q = np.asarray(wa_over_wb, dtype=float)
    if np.any(r <= 0) or np.any(q <= 0):
        raise ValueError("preference_regions needs positive sigma ratios and positive teacher "
                         "weight ratios (eq. 11 assumes w_A*, w_B* > 0)")
    a_first = q > r ** 2
    a_more = q > r
    return np.where(a_first, np.where(a_more, 1, 3), np.where(a_more, 2, 4))
