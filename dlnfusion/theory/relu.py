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

The factor 2 of the weights does not need the pairing: relu(u) − relu(−u) = u gives
f(x) − f(−x) = V A x for any two-layer ReLU network f, so every network that computes the
linear target exactly (zero excess loss) has V A = 2 W*.

Early fusion (one hidden layer on the stacked input) is the same argument with a vector
input: item 1 holds for every unit, so the first phase is the linear early-fusion network at
η/2 from w0/2 (:func:`predict_times_early_relu`). The units that grow are those with a
positive (a ∝ +ê) or a negative (a ∝ −ê) seed, ê = Σ_yx/‖Σ_yx‖; with P and N the two groups'
shares of the growing mode the function is ½(P + N) ê·x + ½(P − N)|ê·x|. The even part is
orthogonal to every linear function and is what the prediction neglects.

What that neglect costs, early and late fusion alike: relu(ê·x) and relu(−ê·x) have disjoint
supports, so the two groups grow as two separate linear networks from seeds P and N, and the
half-way point of their sum is where each is at its own half-way point shifted
symmetrically, i.e. it is set by the geometric mean √(PN) of the seeds, not by the arithmetic
mean (P + N)/2 that w0 holds. The ReLU network is later than predicted by
ln[(P + N)/(2√(PN))]/(2 ln(1 + ηs/2)) steps: at width 100, P/N between 0.5 and 2.3 over five
seeds, 0.005 to 0.55 steps, ≤ 0.23 % of t_A (Figure 11, which this formula accounts for to 10 %).

How much slower is "about two times"? In the linear phase the linear network needs
ln(W/w0)/(2 ln(1 + ηs)) steps to reach a total weight W, the ReLU network, which must reach
twice that weight at half the rate, ln(2W/w0)/(2 ln(1 + ηs/2)). The slow-down is therefore

    [ln(1 + ηs)/ln(1 + ηs/2)] · [1 + ln 2/ln(W/w0)],

below 2 by the first factor (gradient descent: 1.93 at ηs = 0.16) and above it by the second
(1.02 at w0 ~ 1e-17): 2 only for gradient flow from an infinitesimal initialization.
"""
from __future__ import annotations

from .saxe import predict_times_early
from .timescales import TimePrediction, predict_times

__all__ = ["RELU_WEIGHT_FACTOR", "RELU_RATE_FACTOR", "predict_times_relu",
           "predict_times_early_relu", "relu_and_linear_times"]

#: The total weight V A of a two-layer ReLU network converges to this multiple of the linear
#: network's (item 2 of the module docstring).
RELU_WEIGHT_FACTOR = 2.0
#: Every growth rate of the first phase is this multiple of the linear network's (item 1).
RELU_RATE_FACTOR = 0.5


def predict_times_relu(stats, lr: float, init, method: str = "gd") -> TimePrediction:
    """t_A, t_B (steps) of a two-layer late-fusion ReLU network on a linear task.

    ``init`` is the initial growing-mode value of each modality computed from the ReLU run's
    weights exactly as for a linear network (:func:`~.saxe.effective_init`), or
    :func:`~.saxe.typical_effective_init` for a theory curve. t_A is the first time modality
    A's total weight reaches half of its ReLU plateau 2U_A, t_B the time B reaches half of its
    final 2W*_B. Equals :func:`predict_times` at learning rate ``lr``/2 from ``init``/2 (module
    docstring); the same caveats apply, plus the neglected nonlinearity of A's function while
    B grows.
    """
    import numpy as np

    init = np.asarray(init, dtype=float)
    p = predict_times(stats, RELU_RATE_FACTOR * float(lr), init / RELU_WEIGHT_FACTOR,
                      method=method)
    caveats = p.caveats + ("two-layer ReLU network: assumes the first modality's function is "
                           "linear (its units paired) while the second grows",)
    return TimePrediction(p.t_A, p.t_B, p.first, p.second, p.valid, caveats)


def predict_times_early_relu(stats, lr: float, w0: float) -> TimePrediction:
    """Half-way times (steps) of each modality in a two-layer early-fusion ReLU network on a
    linear task, gradient descent with step ``lr``.

    t_m is the first time the ReLU network's total weight V A of modality m reaches half of
    its final 2W*_m (progress 1 toward W*). ``w0`` is the initial growing-mode value computed
    from the ReLU run's weights exactly as for a linear network
    (:func:`~.saxe.effective_init_early`). Equals :func:`~.saxe.predict_times_early` at
    learning rate ``lr``/2 from ``w0``/2 (module docstring); neglects the even part
    ½(P − N)|ê·x| of the function that unequal shares of positive and negative units create.
    """
    p = predict_times_early(stats, RELU_RATE_FACTOR * float(lr), float(w0) / RELU_WEIGHT_FACTOR)
    caveats = p.caveats + ("two-layer ReLU network: neglects the even part of the function "
                           "(unequal shares of positive and negative units)",)
    return TimePrediction(p.t_A, p.t_B, p.first, p.second, p.valid, caveats)


def relu_and_linear_times(stats, lr: float, spec, params) -> dict:
    """The predicted half-way times of a two-layer ReLU fusion network and of the linear network
    trained from the same initial weights, gradient descent with step ``lr``.

    ``spec`` is the two-layer network (early fusion, L_f = 1, or late fusion, L_f = 2) whose
    layout the weights ``params`` of one run have (a batch of one). Late fusion:
    :func:`~.timescales.predict_times` and :func:`predict_times_relu` from the branches' growing
    modes (:func:`~.saxe.effective_init` along :func:`~.timescales.phase_directions`); early
    fusion: :func:`~.saxe.predict_times_early` and :func:`predict_times_early_relu` from the
    growing mode of the stacked input (:func:`~.saxe.effective_init_early`).

    Returns ``{"w0": ..., "linear": ..., "relu": ...}``: the initial growing modes (an array,
    one per modality in late fusion, one value in early fusion) and the two
    :class:`~.timescales.TimePrediction`.
    """
    import numpy as np

    from .saxe import effective_init, effective_init_early
    from .timescales import phase_directions

    if spec.depth != 2:
        raise ValueError(f"relu_and_linear_times needs a two-layer network, got depth "
                         f"{spec.depth}")
    if spec.fusion_layer == 2:
        w0 = effective_init(spec, params, phase_directions(stats))[0]
        linear, relu = predict_times(stats, lr, w0), predict_times_relu(stats, lr, w0)
    else:
        w0 = effective_init_early(spec, params, stats)[0]
        linear, relu = predict_times_early(stats, lr, w0), predict_times_early_relu(stats, lr, w0)
    return {"w0": np.atleast_1d(np.asarray(w0, dtype=float)), "linear": linear, "relu": relu}
