"""Two-layer ReLU fusion networks on a linear task (paper Section 5.1, Figure 11, Figure 3c-d
crosses): why they learn about two times slower and converge to total weights two times larger.

Setting: Gaussian inputs, a target y jointly Gaussian with them (y = w*·x + noise), squared
loss, two-layer networks ŷ = V relu(A x) (early fusion: one hidden layer on the stacked input;
late fusion: units of each branch see their own modality only). The "total weight" is V A,
the product of the weights that ignores the nonlinearity (the paper's convention).
theory/relu.py derives:

1. **Half the drive.** For any unit, E[y relu(a·x)] = ½ E[y a·x] and
   E[r 1{a·x > 0} x] = ½ E[r x] for any r linear in x (x ↦ −x symmetry). While the residual is
   linear — the whole first phase, where r ≈ y — every ReLU gradient is exactly half the
   gradient of the linear network with the same weights: gradient descent at learning rate η
   on the ReLU network is gradient descent at η/2 on the linear one. Each mode grows by
   1 + ηs/2 per step instead of 1 + ηs: about two times slower.
2. **Twice the weight.** The network's function is linear when its units come in pairs
   (a, v), (−a, −v): v relu(a·x) − v relu(−a·x) = v a·x, so ŷ = ½ V A x. On these pairs the
   ReLU network with weights (V, A) is the linear network with weights (V, A)/√2 trained at
   η/2; the linear total map W = ½ V A goes to W*, so the ReLU total weight V A goes to 2 W*.
   Training from small random weights ends on this subspace (a unit's sign pattern follows
   its growing mode).

Hence the prediction for a ReLU run (:func:`predict_times_relu`): the linear prediction at
η/2 from the halved initial mode value w0/2 (the mode of (V, A)/√2), with the half-way points
at half of the ReLU plateau (V A = U_A for modality A, = W*_B for B). The second phase
assumes that A's function is already linear (paired) when B grows; while A is still forming
its pairs, B sees a slightly nonlinear residual, which this prediction neglects.
"""
from __future__ import annotations

from .timescales import TimePrediction, predict_times

__all__ = ["RELU_WEIGHT_FACTOR", "RELU_RATE_FACTOR", "predict_times_relu"]

#: The total weight V A of a two-layer ReLU network converges to this multiple of the linear
#: network's (item 2 of the module docstring).
RELU_WEIGHT_FACTOR = 2.0
#: Every growth rate of the first phase is this multiple of the linear network's (item 1).
RELU_RATE_FACTOR = 0.5


def predict_times_relu(stats, lr: float, w0, method: str = "gd") -> TimePrediction:
    """t_A, t_B (steps) of a two-layer late-fusion ReLU network on a linear task.

    ``w0`` is the initial growing-mode value of each modality computed from the ReLU run's
    weights exactly as for a linear network (:func:`~.saxe.effective_init`), or
    :func:`~.saxe.typical_effective_init` for a theory curve. t_A is the first time modality
    A's total weight reaches half of its ReLU plateau 2U_A, t_B the time B reaches half of its
    final 2W*_B. Equals :func:`predict_times` at learning rate ``lr``/2 from ``w0``/2 (module
    docstring); the same caveats apply, plus the neglected nonlinearity of A's function while
    B grows.
    """
    import numpy as np

    w0 = np.asarray(w0, dtype=float)
    p = predict_times(stats, RELU_RATE_FACTOR * float(lr), w0 / RELU_WEIGHT_FACTOR,
                      method=method)
    caveats = p.caveats + ("two-layer ReLU network: assumes the first modality's function is "
                           "linear (its units paired) while the second grows",)
    return TimePrediction(p.t_a, p.t_b, p.first, p.second, p.valid, caveats)
