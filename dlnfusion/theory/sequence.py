"""The learning sequence of a two-layer late-fusion network with any number of modalities.

With M modalities, a network from small initialization does not learn everything at once
and does not stop after one unimodal phase: it passes a staircase of plateaus. On each plateau
a set S of modalities has been learned and sits at its *partial solution*

    W_S = Σ_yx,S Σ_SS⁻¹   (the other blocks zero),   loss ½(tr Σ_yy − tr W_S Σ_yx,Sᵀ),

the generalization of the saddle M_A (S = {A}) and of the global minimum (S = all). A
modality j outside S is driven by the error correlation that the plateau leaves,

    e_j(S) = Σ_yx,j − W_S Σ_S,j                               (eq. 31 for S = {A}),

and the next modality learned is the one whose growing mode reaches its share of the next
plateau first. On S ∪ {j}, j's block is e_j(S) Σ̃_j(S)⁻¹ with Σ̃_j(S) = Σ_jj − Σ_jS Σ_SS⁻¹ Σ_Sj
(a Schur complement).

Modes of a scalar branch (theory/sequence.py derives them). A branch with a scalar input,
first-layer column a = W¹ (h) and readout b = W²ᵀ (h), driven by a scalar error e, changes by
a ← a + ηe b, b ← b + ηe a in gradient descent; so v± = a ± b change *exactly* by (1 ± ηe)
per step and the total map is w = bᵀa = (‖v₊‖² − ‖v₋‖²)/4. Each branch therefore carries two
mode amplitudes w± = ‖v±‖²/4: when e > 0 the map grows through w₊ while w₋ decays, and when
the drive changes sign at a later plateau the mode that has to grow is the one that decayed
(the sign correction of eq. 9 is the two-modality case of this rule).

Leading order (gradient flow, u0 → 0). Write progress p± = ln(w±/w0)/ln(1/w0) (0 at the
start, 1 when the mode is of order one) and θ = η t/ln(1/w0)·2: on plateau S, dp±_j/dθ = ±e_j(S)
(scalar modalities; for vector modalities the mode along the drive grows at ‖e_j(S)‖ and keeps
its progress when the drive turns, unless it turns exactly around). The next modality is the
one with the smallest (1 − p_j)/|e_j(S)|.

Finite initialization, gradient descent (:func:`learning_sequence` ``times``). The same
bookkeeping with the actual amplitudes w± (from the weights, :func:`sequence_init`, or their
typical value ``typical_effective_init``) and the discrete growth factors (1 ± ηe)² per step;
each transition is the logistic map x ← x(1 + g(1 − x))², g = η|e_j(S)|, of a balanced mode
whose learned companions follow their conditional optimum (they are faster), from
x0 = w_j/|P_j| to the crossing of ½; while it runs, the drives of the other modalities move
linearly with x from e(S) to e(S ∪ {j}), and their growth is accumulated along it. This is
:func:`~.timescales.predict_times` extended to M modalities.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .saxe import typical_effective_init
from .timescales import Times, logistic_map_crossing

__all__ = ["Plateau", "LearningSequence", "partial_solution", "plateau_loss",
           "residual_drive", "learning_sequence", "sequence_init", "stage_one_integral",
           "departure", "sequence_arrays", "sequence_from_arrays", "SEQUENCE_DIMS", "SCHEMES",
           "budget_caveats", "sequence_record", "seed_sequence_init"]

#: A candidate that has grown to more than this fraction of its next plateau when another
#: modality crosses half of its own counts as overlapping (the transitions are not
#: separate); the same threshold as the two-modality random sweep.
SEPARATION = 0.1
#: Below this relative size a drive or a plateau weight counts as zero.
_ZERO_RTOL = 1e-9


def _subset(learned):
    return tuple(sorted(int(i) for i in learned))


def _columns(stats, learned):
    sl = stats.slices
    return np.concatenate([np.arange(sl[i].start, sl[i].stop) for i in learned]).astype(int) \
        if learned else np.zeros(0, int)


def partial_solution(stats, learned) -> np.ndarray:
    """The plateau on which the modalities ``learned`` (indices or names) are fitted and the
    others are zero: Σ_yx,S Σ_SS⁻¹ in S's blocks, shape (d_out, D)."""
    S = _subset(stats.index(m) for m in learned)
    W = np.zeros((stats.output_dim, stats.input_dim))
    if not S:
        return W
    c = _columns(stats, S)
    sig = stats.sigma[np.ix_(c, c)]
    W[:, c] = np.linalg.lstsq(sig, stats.sigma_yx[:, c].T, rcond=None)[0].T
    return W


def plateau_loss(stats, learned) -> float:
    """Training loss on the plateau of ``learned``: ½(tr Σ_yy − tr W_S Σ_yx,Sᵀ) (the ½ of the
    training loss; eq. 62 for S = {A})."""
    W = partial_solution(stats, learned)
    return float(0.5 * (np.trace(stats.sigma_yy) - np.trace(W @ stats.sigma_yx.T)))


def residual_drive(stats, learned, m) -> np.ndarray:
    """e_m(S) = Σ_yx,m − W_S Σ_S,m: the error correlation that drives modality ``m`` while the
    modalities ``learned`` sit on their plateau, shape (d_out, d_m)."""
    j = stats.index(m)
    W = partial_solution(stats, learned)
    return stats.sigma_yx_m(j) - W @ stats.sigma[:, stats.slices[j]]


@dataclass(frozen=True)
class Plateau:
    """One step of the staircase: the modalities learned so far, their partial solution, its
    loss, and each learned modality's mis-attribution there ((W_m(S) − W*_m)·W*_m/‖W*_m‖²;
    NaN where W*_m = 0)."""

    learned: tuple
    map: np.ndarray
    loss: float
    misattribution: tuple

    def to_dict(self, names=()) -> dict:
        nm = (lambda i: names[i]) if names else (lambda i: i)
        return {"learned": [nm(i) for i in self.learned], "loss": float(self.loss),
                "misattribution": {str(nm(i)): (float(v) if np.isfinite(v) else None)
                                   for i, v in zip(self.learned, self.misattribution)}}


@dataclass(frozen=True)
class LearningSequence(Times):
    """The predicted staircase. ``order`` lists modality indices, the first learned first;
    ``times[k]`` is when ``order[k]`` reaches half of its block of ``plateaus[k].map`` (steps);
    ``plateaus[k]`` is the plateau after k + 1 modalities (the last one is the global
    minimum). ``order_leading_order`` and ``times_leading_order`` are the u0 → 0 gradient-flow
    values; ``order_by_norm`` sorts the modalities by ‖Σ_yx,m‖.

    Two predictions, each with its own validity:

    * the finite-initialization ``order`` and ``times``: ``valid`` is False when an
      assumption fails or when the times are not derived for this network
      (``times_derived`` False: deep networks from balanced weights, vector modalities; the
      times are then NaN and ``order`` is the leading order's);
    * the leading order, ``order_leading_order`` and ``times_leading_order``:
      ``valid_leading_order`` is False only when one of its own assumptions fails, with the
      reasons in ``caveats_leading_order``.

    ``caveats`` are those of ``order`` and ``times`` (where the times are not derived,
    ``order`` is the leading order's and its caveats are listed there too).

    One of the :class:`~.timescales.Times` family, for M modalities: ``names`` (in modality
    order), ``times`` (steps), ``valid``, ``caveats`` and ``to_dict()``; for two modalities
    :class:`~.timescales.TimePrediction` says the same."""

    order: tuple
    times: tuple
    plateaus: tuple
    order_leading_order: tuple
    times_leading_order: tuple
    order_by_norm: tuple
    valid: bool = True
    caveats: tuple = field(default=())
    names: tuple = field(default=())
    valid_leading_order: bool = True
    caveats_leading_order: tuple = field(default=())
    times_derived: bool = True

    @property
    def follows_norm(self) -> bool:
        """Whether the modalities are learned in the order of ‖Σ_yx,m‖."""
        return tuple(self.order) == tuple(self.order_by_norm)

    def to_dict(self) -> dict:
        f = lambda v: float(v) if np.isfinite(v) else str(v)  # noqa: E731
        return {"order": list(self.order), "times": [f(t) for t in self.times],
                "order_names": [self.names[i] for i in self.order] if self.names else [],
                "order_leading_order": list(self.order_leading_order),
                "times_leading_order": [f(t) for t in self.times_leading_order],
                "order_by_norm": list(self.order_by_norm),
                "plateaus": [p.to_dict(self.names) for p in self.plateaus],
                "valid": bool(self.valid), "caveats": list(self.caveats),
                "times_derived": bool(self.times_derived),
                "valid_leading_order": bool(self.valid_leading_order),
                "caveats_leading_order": list(self.caveats_leading_order)}


def _plateaus(stats, order):
    Wstar = stats.global_solution()
    out, S = [], []
    for m in order:
        S = S + [m]
        W = partial_solution(stats, S)
        mis = []
        for i in _subset(S):
            sl = stats.slices[i]
            ws = Wstar[:, sl]
            n = float(np.sum(ws * ws))
            mis.append(float(np.sum((W[:, sl] - ws) * ws) / n) if n > 0 else float("nan"))
        out.append(Plateau(_subset(S), W, plateau_loss(stats, S), tuple(mis)))
    return tuple(out)


def _scale(stats):
    return max(float(np.max(np.abs(stats.sigma_yx))), 1e-300)


def _scalar_drives(stats, learned, rest):
    return np.array([float(residual_drive(stats, learned, j).ravel()[0]) for j in rest])


def _leading_order(stats):
    """Order and progress times θ (cumulative) at leading order in u0; the times follow from
    :func:`_leading_times`. The order does not depend on depth or fusion layer."""
    M = stats.n_modalities
    scalar = all(d == 1 for d in stats.dims) and stats.output_dim == 1
    p = np.zeros((M, 2))          # progress of the + and − modes (vector: [grown, reversed])
    direction = [None] * M        # vector modalities: the direction the grown mode points to
    S, theta, order, thetas, caveats = [], 0.0, [], [], []
    while len(S) < M:
        rest = [j for j in range(M) if j not in S]
        need, rate = [], []          # time to go; rate of p₊ (p₋ moves at −rate)
        for j in rest:
            e = residual_drive(stats, S, j)
            ne = float(np.linalg.norm(e))
            if ne <= _ZERO_RTOL * _scale(stats):
                need.append(np.inf), rate.append(0.0)
                continue
            if scalar:                                 # signed: the + mode grows if e > 0
                k = 0 if e.ravel()[0] > 0 else 1
                need.append((1 - p[j, k]) / ne), rate.append(float(e.ravel()[0]))
                continue
            u = (e / ne).ravel()
            if direction[j] is not None and float(u @ direction[j]) <= -1 + 1e-12:
                p[j] = p[j, ::-1]                      # the mode that must grow had decayed
            direction[j] = u
            need.append((1 - p[j, 0]) / ne), rate.append(ne)
        need = np.asarray(need)
        if not np.any(np.isfinite(need)):
            caveats.append("never learned: at leading order no drive is left on " + ", ".join(
                str(stats.names[j]) for j in rest))
            break
        i = int(np.argmin(need))
        dt = float(need[i])
        srt = np.sort(need)
        if srt.size > 1 and np.isfinite(srt[1]) and srt[1] - srt[0] <= 1e-9 * max(srt[1], 1e-300):
            caveats.append("tie: two modalities escape together at leading order")
        for j, r in zip(rest, rate):
            p[j, 0] += dt * r
            p[j, 1] -= dt * r
        theta += dt
        order.append(rest[i])
        thetas.append(theta)
        S.append(rest[i])
    return tuple(order), tuple(thetas), caveats


def _carried_caveats(stats, order, depth, fusion_layer, u0):
    """Intermediate fusion: once the post-fusion layers have grown, a branch that has not
    escaped still has the map u_j^{L_f} u(S)^{L−L_f}, with u_j from its progress (u0^{1−p} at
    L_f = 2, u0 (1 − p)^{−1/(L_f−2)} otherwise, leading order). Where that is already more
    than SEPARATION of its share of the next plateau, its transition is not separate."""
    out = []
    if depth == fusion_layer or not order:
        return out
    L, Lf = depth, fusion_layer
    scalar = all(d == 1 for d in stats.dims) and stats.output_dim == 1
    n1 = float(np.linalg.norm(stats.sigma_yx_m(order[0])))
    theta = 1.0 / n1
    # checked on the first plateau, where the carried maps are largest against the shares
    S = [order[0]]
    u = _post_norm(stats, S, L, Lf)
    for j in order[1:]:
        e = residual_drive(stats, S, j)
        block = partial_solution(stats, S + [j])[:, stats.slices[j]]
        share = float(np.linalg.norm(block))
        if float(np.sum(block * stats.sigma_yx_m(j))) <= 0:
            continue        # carried along Σ_yx,j, away from its share: not progress
        # progress of j's growing mode at the end of the first phase
        p = float(np.linalg.norm(stats.sigma_yx_m(j))) * theta
        if scalar and float(e.ravel()[0]) * float(stats.sigma_yx_m(j).ravel()[0]) < 0:
            p = -p
        if p >= 1:
            continue
        uj = u0 ** (1 - p) if Lf == 2 else u0 * (1 - p) ** (-1.0 / (Lf - 2))
        carried = uj ** Lf * u ** (L - Lf)
        if share > 0 and carried > SEPARATION * share:
            out.append(f"transitions overlap: {stats.names[j]}'s map is carried to "
                       f"{carried / share:.2g} of its share on the plateau of "
                       f"{', '.join(str(stats.names[i]) for i in S)} by the shared "
                       "post-fusion layers")
    return out


def stage_one_integral(depth: int, fusion_layer: int, ks) -> float:
    """I_M(L, L_f; k) of the first escape of a deep fusion network with M modalities: t_1 =
    τ u0^{2−L} I_M/‖s_1‖ (the first learned has the largest ‖Σ_yx‖; k_j = ‖s_j‖/‖s_1‖ ≤ 1 for
    the others). Every other branch follows u_j^{2−L_f} − u0^{2−L_f} = k_j(u_1^{2−L_f} −
    u0^{2−L_f}) (ln-form at L_f = 2), the post-fusion norm is u² = Σ_m u_m², and with y = u0/u_1

        I_M = ∫₀¹ y^{L−3} [1 + Σ_j y² (k_j y^{L_f−2} + 1 − k_j)^{−2/(L_f−2)}]^{(L_f−L)/2} dy,
        (L_f = 2:  y² (…)^{−2/(L_f−2)} → y^{2(1−k_j)}),

    which is I(L, L_f) of eq. (13) (eq. 58 at L_f = 2) for M = 2 and 1/(L − 2) for late fusion
    (theory/sequence.py derives it)."""
    from .deep import _check_depths, _quad01

    _check_depths(depth, fusion_layer)
    L, Lf = int(depth), int(fusion_layer)
    if L < 3 or Lf < 2:
        raise ValueError("stage_one_integral needs depth >= 3 and 2 <= fusion_layer <= depth, "
                         f"got depth={depth!r}, fusion_layer={fusion_layer!r}")
    ks = np.atleast_1d(np.asarray(ks, dtype=float))
    if ks.ndim != 1 or np.any(~np.isfinite(ks)) or np.any(ks < 0) or np.any(ks > 1):
        raise ValueError(f"ks must be ratios ||s_j||/||s_1|| in [0, 1], got {ks!r}")
    if Lf == L:
        return 1.0 / (L - 2)
    q = Lf - 2

    def ratio2(y, k):
        if Lf == 2:
            return y ** (2 * (1 - k))
        inner = k * y ** q + (1 - k)
        return y * y * inner ** (-2.0 / q) if inner > 0 else 1.0

    def f(y):
        return y ** (L - 3) * (1 + sum(ratio2(y, k) for k in ks)) ** ((Lf - L) / 2)

    br = sorted({(1 - k) ** (1.0 / q) for k in ks if 0 < k < 1}) if Lf > 2 else []
    return float(_quad01(f, breaks=br))


def _post_norm(stats, learned, depth, fusion_layer):
    """u(S): the norm of every post-fusion matrix on the plateau of S, from the balance
    u² = Σ_m u_m² and ‖W_m(S)‖ = u_m^{L_f} u^{L−L_f}: u^{2L/L_f} = Σ_{m∈S} ‖W_m(S)‖^{2/L_f}."""
    W = partial_solution(stats, learned)
    tot = sum(float(np.linalg.norm(W[:, stats.slices[m]])) ** (2.0 / fusion_layer)
              for m in learned)
    return tot ** (fusion_layer / (2.0 * depth))


def _leading_times(stats, order, thetas, depth, fusion_layer, lr, w0, u0):
    """Convert the progress times θ of :func:`_leading_order` to steps (τ = 1/lr).

    Two layers: t = θ ln(1/w0)/(2η). Depth L ≥ 3: the first escape is τ u0^{2−L} I_M/‖s_1‖;
    on the plateau S every remaining branch's z = u^{2−L_f} (ln u at L_f = 2) falls at
    (L_f − 2)‖e_j(S)‖u(S)^{L−L_f}/τ (‖e_j(S)‖u(S)^{L−2}/τ), so a stage of Δθ lasts
    τ Δθ u0^{2−L_f}/((L_f − 2) u(S)^{L−L_f}) (τ Δθ ln(1/u0)/u(S)^{L−2})."""
    if depth == 2:
        return tuple(t * np.log(1.0 / w0) / (2.0 * lr) for t in thetas)
    L, Lf, tau = int(depth), int(fusion_layer), 1.0 / lr
    if not order:
        return ()
    first = order[0]
    n1 = float(np.linalg.norm(stats.sigma_yx_m(first)))
    ks = [float(np.linalg.norm(stats.sigma_yx_m(j))) / n1 for j in range(stats.n_modalities)
          if j != first]
    times = [tau * u0 ** (2 - L) * stage_one_integral(L, Lf, ks) / n1]
    for k in range(1, len(order)):
        dth = thetas[k] - thetas[k - 1]
        u = _post_norm(stats, list(order[:k]), L, Lf)
        if Lf == 2:
            dt = tau * dth * np.log(1.0 / u0) / u ** (L - 2)
        else:
            dt = tau * dth * u0 ** (2 - Lf) / ((Lf - 2) * u ** (L - Lf))
        times.append(times[-1] + dt)
    return tuple(times)


def sequence_init(spec, params) -> np.ndarray:
    """The two mode amplitudes (w₊, w₋) = (‖W¹ + W²ᵀ‖²/4, ‖W¹ − W²ᵀ‖²/4) of every scalar
    two-layer branch, shape (*batch, M, 2): the initial values :func:`learning_sequence` needs
    to predict one run (``init=``)."""
    if any(d != 2 for d in spec.branch_depths) or spec.post_depth != 0 or spec.output_dim != 1:
        raise ValueError("sequence_init needs two-layer late-fusion branches with a scalar "
                         "output (NetworkSpec.fusion(2, 2, ...))")
    if any(d != 1 for d in spec.input_dims):
        raise ValueError("sequence_init needs scalar modalities (input_dims all 1), got "
                         f"{spec.input_dims}")
    out = []
    for W1, W2 in params.branches:
        a, b = np.asarray(W1)[..., :, 0], np.asarray(W2)[..., 0, :]
        out.append(np.stack([0.25 * np.sum((a + b) ** 2, -1), 0.25 * np.sum((a - b) ** 2, -1)],
                            -1))
    return np.stack(out, axis=-2)


def _deep_caveats(stats, order):
    """Where the deep leading order needs more than aligned weights: a scalar modality whose
    drive reverses sign on a later plateau must regrow from the mode along its reversed
    direction, which random weights contain at scale u0 but exactly aligned ones do not (the
    two-modality χ = −1 case of theory.deep)."""
    out = []
    if not all(d == 1 for d in stats.dims) or stats.output_dim != 1:
        return out
    for k in range(1, len(order)):
        for j in order[k:]:
            a = float(residual_drive(stats, list(order[:k - 1]), j).ravel()[0])
            b = float(residual_drive(stats, list(order[:k]), j).ravel()[0])
            if a * b < 0:
                out.append(f"reversed drive: {stats.names[j]}'s drive changes sign when "
                           f"{stats.names[order[k - 1]]} is learned; its growth then needs the "
                           "mode along the reversed direction, present at scale u0 in random "
                           "weights but not in exactly aligned ones")
    return out


def _check_args(stats, depth, fusion_layer, scale, width, lr, method, u0):
    if stats.n_modalities < 2:
        raise ValueError(f"learning_sequence needs at least two modalities, got "
                         f"{stats.n_modalities}")
    if not isinstance(depth, (int, np.integer)) or depth < 2:
        raise ValueError(f"depth must be an integer >= 2, got {depth!r}")
    lf = depth if fusion_layer is None else fusion_layer
    if not isinstance(lf, (int, np.integer)) or not 2 <= lf <= depth:
        raise ValueError(f"fusion_layer must be an integer in [2, depth] (None: late fusion, "
                         f"fusion_layer = depth); got {fusion_layer!r}. Early fusion "
                         "(fusion_layer = 1) learns all modalities in one transition: there "
                         "is no sequence")
    if depth > 2 and (u0 is None or not (np.isfinite(u0) and 0 < u0 < 1)):
        raise ValueError("a deep network (depth > 2) needs scale in (0, 1), the Frobenius norm "
                         f"u0 of its pre-fusion matrices at initialization; got {u0!r}")
    if method not in ("gd", "gf"):
        raise ValueError(f"method must be 'gd' or 'gf', got {method!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite, got {scale!r}")
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    if stats.is_singular:
        raise ValueError("learning_sequence needs a non-singular Σ (partial solutions must be "
                         "unique)")


SCHEMES = ("balanced", "frobenius")


def learning_sequence(stats, depth: int = 2, fusion_layer: int | None = None, *,
                      scale: float = 1e-9, width: int = 100, lr: float = 0.04,
                      method: str = "gd", init=None,
                      scheme: str = "balanced") -> LearningSequence:
    """Predict the order in which a fusion network learns its modalities, the time of every
    transition and the plateau after each (see the module docstring).

    ``depth`` L and ``fusion_layer`` L_f (None: late fusion, L_f = L; 2 ≤ L_f ≤ L). For a deep
    network (L ≥ 3) ``scale`` is u0, the Frobenius norm of the pre-fusion matrices at
    initialization (as ``scale`` of :func:`dlnfusion.simulate` with scheme "balanced" or
    "frobenius", and of :func:`~.deep.time_ratio_leading_order`), and only the leading order in
    u0 is derived: ``times_leading_order`` holds it (τ = 1/``lr``), ``times`` is NaN. The
    leading-order order is the same at every depth and fusion layer.

    Defaults are Figure 3c's: entry std ``scale`` = 1e-9, ``width`` 100, η = ``lr`` = 0.04,
    gradient descent (``method="gf"``: gradient flow with τ = 1/η). ``init`` (shape (M, 2), from
    :func:`sequence_init`) predicts one run from its own weights; without it every mode starts
    at the typical value of an i.i.d. normal initialization (typical_effective_init).

    ``scheme="frobenius"`` (deep networks): the random initialization of the paper's Figure 6
    (entries N(0, u0²/entries)). For four-layer fusion at L_f = 4 (late) or 3 (a shared last
    layer, whose norm grows with every escaping pathway) with scalar modalities ``times`` is
    then its closed form (:func:`~.deep.random_init_times` extended to M modalities): on each
    plateau every remaining pathway escapes, with its invariants, from the middle-pair mode it
    has reached, the first to reach half of its block is learned, and while it escapes the
    others' modes grow with their drives, which move linearly with its progress. ``init`` is
    then one run's (m0₊, m0₋, a, b) per modality (:func:`~.deep.alignment_seeds`); without it
    every pathway starts at the typical values (a = b = u0, m0 = u0/√(2·width)). Gradient flow
    with τ = 1/``lr``. ``width`` must then be an integer ≥ 2, as for
    :func:`~.deep.random_init_times`.

    ``times`` is the finite-initialization prediction for scalar modalities and a scalar
    output; for vector modalities, and deep networks outside the random-weight closed form, it
    is NaN (only the leading order is derived): ``times_derived`` is False, ``valid`` (the
    validity of ``times``) False and a caveat says so, while the leading order keeps its own
    ``valid_leading_order``. Outside the assumptions — overlapping transitions (a near tie), a
    learned modality whose weight changes sign at a later plateau (it is unlearned and
    relearned), a learning rate with η|e| ≥ 1 — ``valid`` is False and ``caveats`` say why;
    a failed assumption of the leading order (a tie, a modality never learned, for deep
    networks a reversed drive, a branch carried past its share by the post-fusion layers, or
    random weights, ``scheme="frobenius"``, which the aligned leading order does not describe)
    sets ``valid_leading_order`` False with the reason in ``caveats_leading_order``.
    """
    u0 = scale if depth > 2 else None
    _check_args(stats, depth, fusion_layer, scale, width, lr, method, u0)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "frobenius" and depth > 2:
        from .deep import _check_random_args

        # random weights: the arguments random_init_times accepts (width >= 2)
        _check_random_args(width, 0.5, scale=scale, lr=lr)
    depth = int(depth)
    fusion_layer = depth if fusion_layer is None else int(fusion_layer)
    M = stats.n_modalities
    w0 = typical_effective_init(scale, int(width))
    norms = [float(np.linalg.norm(stats.sigma_yx_m(m))) for m in range(M)]
    by_norm = tuple(int(i) for i in np.argsort(-np.asarray(norms), kind="stable"))
    order_lo, thetas, caveats = _leading_order(stats)     # a tie, a modality never learned
    times_lo = _leading_times(stats, order_lo, thetas, depth, fusion_layer, float(lr), w0, u0)
    lead = list(caveats)                               # the leading order's own caveats
    if depth > 2:
        lead += _deep_caveats(stats, order_lo) + _carried_caveats(
            stats, order_lo, depth, fusion_layer, u0)
        if scheme == "frobenius":
            lead.append(
                "random weights: times_leading_order is the leading order for balanced, "
                "aligned weights; random ones must align first, which delays the transitions "
                "(by a factor of about 5 in four-layer fusion at width 100, u0 = 0.1) and moves "
                "intermediate-fusion ratios by tens of percent (docs/deep_networks.md)")
    valid_lo = not lead and len(order_lo) == M
    lead = tuple(lead)
    scalar = all(d == 1 for d in stats.dims) and stats.output_dim == 1
    random_deep = (scheme == "frobenius" and depth == 4 and fusion_layer in (3, 4) and scalar)
    if depth > 2 and init is not None and not random_deep:
        raise ValueError("init (two-layer mode amplitudes) applies to depth 2, or to four-layer "
                         "fusion at L_f = 3, 4 with scheme='frobenius' (alignment_seeds); "
                         "otherwise a deep network's prediction is leading order in u0")
    if random_deep:
        from .deep import _check_seeds

        M = stats.n_modalities
        if init is None:            # typical norms; a shared last layer has √M·u0
            m0 = u0 / np.sqrt(2 * int(width))
            b = u0 * (np.sqrt(M) if fusion_layer == 3 else 1.0)
            seeds = np.tile([m0, m0, u0, b], (M, 1))
        else:
            seeds = _check_seeds(init, M)
        order, times, more = _random_deep(stats, seeds, 1.0 / float(lr), fusion_layer)
        # Judged by its own bookkeeping: random weights carry both modes of every pathway, so
        # the aligned leading order's reversed drives and carried branches do not apply.
        caveats = caveats + more
        valid = not caveats and len(order) == M
        return LearningSequence(tuple(order), tuple(times), _plateaus(stats, order), order_lo,
                                times_lo, by_norm, valid, tuple(caveats), stats.names,
                                valid_lo, lead, True)
    if depth > 2:
        missing = ("deep network: finite-initialization times are not derived (times are NaN); "
                   "times_leading_order holds the leading order in u0 (balanced, aligned "
                   "weights, gradient flow with tau = 1/lr)" + (
                       "; the random-initialization closed form covers four-layer fusion at "
                       "L_f = 3, 4 with scalar modalities" if scheme == "frobenius" else ""))
    else:
        missing = ("vector modalities: finite-initialization times are not derived (times "
                   "are NaN); times_leading_order holds the leading order")
    if depth > 2 or not scalar:
        order = order_lo
        return LearningSequence(order, tuple(np.nan for _ in order), _plateaus(stats, order),
                                order_lo, times_lo, by_norm, False, lead + (missing,),
                                stats.names, valid_lo, lead, False)
    if init is None:
        amp = np.full((M, 2), w0)
    else:
        amp = np.asarray(init, dtype=float)
        if amp.shape != (M, 2) or np.any(~np.isfinite(amp)) or np.any(amp <= 0):
            raise ValueError(f"init must hold two positive mode amplitudes per modality, shape "
                             f"({M}, 2), as sequence_init returns; got shape {amp.shape}")
    order, times, more = _finite(stats, np.log(amp), float(lr), method)
    caveats = caveats + more
    plateaus = _plateaus(stats, order)
    valid = not caveats and len(order) == M
    return LearningSequence(tuple(order), tuple(times), plateaus, order_lo, times_lo, by_norm,
                            valid, tuple(caveats), stats.names, valid_lo, lead, True)


def _growth(e, eta, method):
    """Log growth per step of the (+, −) mode amplitudes under drive(s) ``e``."""
    e = np.asarray(e, float)
    if method == "gf":
        return np.stack([2 * eta * e, -2 * eta * e], -1)
    with np.errstate(divide="ignore"):
        return np.stack([2 * np.log(np.abs(1 + eta * e)), 2 * np.log(np.abs(1 - eta * e))], -1)


def _finite(stats, ln_amp, eta, method):
    """Finite-initialization bookkeeping for scalar modalities (module docstring).

    Each stage starts when the previous modality crosses ½ of its share. The other modalities'
    growth during that transition is accumulated along its logistic path until it has
    saturated, with their drives moving linearly with its progress; their amplitudes are then
    carried back to the crossing time at the new plateau's rates, so that the next transition
    starts from the crossing (gradient flow: exactly the sharp switch of the leading order, the
    logistic being symmetric about its half time)."""
    M = stats.n_modalities
    scale = _scale(stats)
    h = 1.0 if method == "gd" else _DT
    S, n, order, times, caveats = [], 0.0, [], [], []
    ln_amp = ln_amp.copy()
    while len(S) < M:
        rest = [j for j in range(M) if j not in S]
        e = _scalar_drives(stats, S, rest)
        cand = []
        for j, ej in zip(rest, e):
            if abs(ej) <= _ZERO_RTOL * scale:
                cand.append((np.inf, j, 0.0, 0.0))
                continue
            target = abs(float(partial_solution(stats, S + [j])[0, j]))
            k = 0 if ej > 0 else 1
            x0 = np.exp(ln_amp[j, k]) / target
            g = eta * abs(ej)
            if method == "gd" and g >= 1:
                caveats.append(f"learning rate: lr*|e_{stats.names[j]}| = {g:.3g} >= 1, gradient "
                               "descent does not approach the plateau monotonically")
                cand.append((np.nan, j, x0, g))
                continue
            if x0 >= 0.5:
                caveats.append(f"transitions overlap: {stats.names[j]} is beyond half of its "
                               "share when the previous modality is learned")
                cand.append((0.0, j, x0, g))
                continue
            dt = (np.log(1 / x0 - 1) / (2 * g) if method == "gf"
                  else logistic_map_crossing(x0, g))
            cand.append((dt, j, x0, g))
        if any(np.isnan(c[0]) for c in cand):
            break
        live = [c for c in cand if np.isfinite(c[0])]
        if not live:
            caveats.append("never learned: no drive left on " + ", ".join(
                str(stats.names[j]) for j in rest))
            break
        dt, j, x0, g = min(live, key=lambda c: c[0])
        S_next = S + [j]
        others = [o for o in rest if o != j]
        if others:
            xs = _logistic_path(min(x0, 0.5), g, method)
            e0 = _scalar_drives(stats, S, others)
            e1 = _scalar_drives(stats, S_next, others)
            drives = e0[None, :] + (e1 - e0)[None, :] * xs[:, None]           # (N, K, 2)
            grown = np.sum(_growth(drives, eta, method), axis=0) * h
            tail = len(xs) * h - dt
            ln_amp[others] += grown - tail * _growth(e1, eta, method)
            for k, o in enumerate(others):
                if abs(e1[k]) <= _ZERO_RTOL * scale:
                    continue
                tgt = abs(float(partial_solution(stats, S_next + [o])[0, o]))
                xo = np.exp(ln_amp[o, 0 if e1[k] > 0 else 1]) / tgt
                if SEPARATION < xo < 0.5:
                    caveats.append(f"transitions overlap: {stats.names[o]} is at {xo:.2g} of "
                                   f"its share when {stats.names[j]} is learned (near tie)")
        _check_signs(stats, S, j, caveats)
        n += dt
        times.append(n)
        order.append(j)
        S = S_next
    return order, times, caveats


def _random_deep(stats, seeds, tau, fusion_layer=4, level=0.5):
    """The staircase of four-layer late (L_f = 4) or intermediate (L_f = 3) fusion from random
    weights (learning_sequence, scheme="frobenius"): the bookkeeping of the module docstring
    with each pathway's middle-pair modes m± instead of two-layer amplitudes and the aligning
    chain's escape (deep._chain_time) instead of the logistic. At L_f = 3 the last layer is
    shared: its norm X grows with every escaping pathway (X² − Σ m² is conserved), it is the
    gain of every other pathway's mode, and on each plateau it is set by the learned pathways'
    blocks (one root)."""
    from scipy import integrate, optimize

    from .deep import _chain_time, _level_point, mode_after

    M = stats.n_modalities
    scale = _scale(stats)
    shared = fusion_layer == 3
    ln_m = np.log(seeds[:, :2]).copy()
    a2, b2 = seeds[:, 2] ** 2, seeds[:, 3] ** 2
    X = float(seeds[0, 3])                      # the shared last layer's norm (L_f = 3)
    S, t, order, times, caveats, cols = [], 0.0, [], [], [], {}

    def quad_log(f, lo, hi):
        if not hi > lo:
            return 0.0
        return integrate.quad(lambda lm: f(np.exp(lm)) * np.exp(lm), np.log(lo), np.log(hi),
                              limit=400, epsrel=1e-10)[0]

    while len(S) < M:
        rest = [j for j in range(M) if j not in S]
        e = _scalar_drives(stats, S, rest)
        cand = []
        for j, ej in zip(rest, e):
            if abs(ej) <= _ZERO_RTOL * scale:
                continue
            P = abs(float(partial_solution(stats, S + [j])[0, j]))
            k = 0 if ej > 0 else 1
            m_s = float(np.exp(ln_m[j, k]))
            c1 = a2[j] - seeds[j, k] ** 2
            c4 = X * X - m_s * m_s if shared else b2[j] - seeds[j, k] ** 2
            x4 = (lambda c4: lambda m: np.sqrt(m * m + c4))(c4)
            rate = (lambda c1, x4: lambda m: np.sqrt(m * m + c1) * x4(m) * m)(c1, x4)
            w = (lambda r: lambda m: r(m) * m)(rate)
            sig2 = abs(ej) / P
            if w(m_s) >= level * P:
                caveats.append(f"transitions overlap: {stats.names[j]} is beyond half of its "
                               "share when the previous modality is learned")
                cand.append((0.0, j, k, m_s, m_s, m_s, rate, x4, abs(ej), sig2, P))
                continue
            m_half = _level_point(w, level * P, m_s, 1.0)
            dt = _chain_time(abs(ej), sig2, m_s, m_half, rate, tau)
            m_star = _level_point(w, P * (1 - 1e-12), m_half, 1.0)
            cand.append((dt, j, k, m_s, m_half, m_star, rate, x4, abs(ej), sig2, P))
        if not cand:
            caveats.append("never learned: no drive left on " + ", ".join(
                str(stats.names[j]) for j in rest))
            break
        dt, j, kj, m_s, m_half, m_star, rate, x4, ej, sig2, P = min(cand, key=lambda c: c[0])
        S_next = S + [j]
        cols[j] = kj
        others = [o for o in rest if o != j]
        if shared:                 # the plateau's shared norm: X² = b² + Σ_learned (m² − m0²)
            b0 = float(seeds[0, 3])
            blocks = np.abs(partial_solution(stats, S_next)[0])

            def excess(Xv):
                tot = b0 * b0 - Xv * Xv
                for i in S_next:
                    Pi = float(blocks[i])
                    ci = a2[i] - seeds[i, cols[i]] ** 2
                    mi = _level_point(lambda m: Xv * np.sqrt(m * m + ci) * m * m, Pi, 0.0, 1.0)
                    tot += mi * mi - seeds[i, cols[i]] ** 2
                return tot
            X_next = float(optimize.brentq(excess, b0, 1e3))
        if others:
            g = x4 if shared else (lambda m: 1.0)
            den = lambda m: (ej - sig2 * rate(m) * m) * rate(m)  # noqa: E731
            I0 = tau * quad_log(lambda m: g(m) / den(m), m_s, m_half)
            I1 = tau * quad_log(lambda m: rate(m) * m / P * g(m) / den(m), m_s, m_half)
            I_out = tau * quad_log(lambda m: g(m) / (sig2 * P * rate(m)), m_half, m_star)
            e0 = _scalar_drives(stats, S, others)
            e1 = _scalar_drives(stats, S_next, others)
            D = e0 * I0 + (e1 - e0) * I1 + (e0 - e1) * I_out
            for k, o in enumerate(others):
                for sgn, col in ((1, 0), (-1, 1)):   # the mode of each sign, in its potential
                    c1 = a2[o] - seeds[o, col] ** 2
                    c4 = None if shared else b2[o] - seeds[o, col] ** 2
                    m_new = mode_after(np.exp(ln_m[o, col]), sgn * D[k] / tau, c1, c4)
                    ln_m[o, col] = np.log(m_new) if np.isfinite(m_new) else np.log(1.0)
                if abs(e1[k]) <= _ZERO_RTOL * scale:
                    continue
                tgt = abs(float(partial_solution(stats, S_next + [o])[0, o]))
                col = 0 if e1[k] > 0 else 1
                mo = float(np.exp(ln_m[o, col]))
                c1 = a2[o] - seeds[o, col] ** 2
                outer = X_next if shared else np.sqrt(mo * mo + b2[o] - seeds[o, col] ** 2)
                share = np.sqrt(mo * mo + c1) * outer * mo * mo / tgt
                if share > SEPARATION:
                    caveats.append(f"transitions overlap: {stats.names[o]} is at {share:.2g} of "
                                   f"its share when {stats.names[j]} is learned (near tie)")
        if shared:
            X = X_next
        _check_signs(stats, S, j, caveats)
        t += dt
        times.append(t)
        order.append(j)
        S = S_next
    return order, times, caveats


#: Gradient flow: the logistic is sampled at this step (in units of 1/η·g⁰) for the
#: accumulation of the other modalities' growth (second-order accurate; the growth is linear
#: in x, so the sum is the exact integral up to O(_DT²)).
_DT = 0.05


def _logistic_path(x0, g, method):
    """Progress of one balanced mode from x0 until it has saturated (1 − x < 1e-13)."""
    out, x = [], x0
    if method == "gd":
        while x < 1 - 1e-13 and len(out) < 10 ** 7:
            out.append(x)
            x = x * (1 + g * (1 - x)) ** 2
        return np.asarray(out)
    # gradient flow: x(t) = 1/(1 + (1/x0 − 1) e^{−2 g t}), sampled every _DT (steps)
    t_end = (np.log(1 / x0 - 1) + np.log(1e13)) / (2 * g)
    t = np.arange(0.0, t_end, _DT) + 0.5 * _DT
    return 1.0 / (1.0 + (1.0 / x0 - 1.0) * np.exp(-2 * g * t))


def _check_signs(stats, S, j, caveats):
    """A learned modality whose weight changes sign when j joins must pass through zero,
    where its mode is slow: it is unlearned and relearned, outside this model."""
    if not S:
        return
    before = partial_solution(stats, S)
    after = partial_solution(stats, S + [j])
    for i in S:
        b, a = float(before[0, i]), float(after[0, i])
        if b * a <= 0:
            caveats.append(f"sign change: {stats.names[i]} changes sign when {stats.names[j]} "
                           f"is learned ({b:.3g} -> {a:.3g}); it is unlearned and relearned")


def departure(stats, seq) -> dict | None:
    """Where the predicted order ``seq.order`` first leaves the order of ‖Σ_yx,m‖, and why
    (None where it never does).

    At that stage the modality with the largest ‖Σ_yx‖ left (``overtaken``, i) loses the race
    to another (``overtaker``, j): at leading order each needs (1 − p)/|e(S)|, p its progress
    so far. The ``mechanism`` is "sign flip" when i's drive on the plateau reached so far
    points against Σ_yx,i (it must regrow from the mode that decayed), else "explained away"
    when the learned modalities took a larger share of i's drive than of j's
    (|e_i|/|Σ_yx,i| < |e_j|/|Σ_yx,j|, the ``drive_ratio_*`` entries), else "head start" (j
    had progressed more). Scalar modalities and a scalar output."""
    M = stats.n_modalities
    norms = [float(np.linalg.norm(stats.sigma_yx_m(m))) for m in range(M)]
    S = []
    for j in seq.order:
        i = max((m for m in range(M) if m not in S), key=lambda m: norms[m])
        if i != j:
            ei = float(residual_drive(stats, S, i)[0, 0])
            ej = float(residual_drive(stats, S, j)[0, 0])
            si, sj = float(stats.sigma_yx_m(i)[0, 0]), float(stats.sigma_yx_m(j)[0, 0])
            if ei * si < 0:
                mech = "sign flip"
            elif abs(ei) / abs(si) < abs(ej) / abs(sj):
                mech = "explained away"
            else:
                mech = "head start"
            return {"stage": len(S), "overtaken": i, "overtaker": j,
                    "drive_ratio_overtaken": abs(ei) / abs(si),
                    "drive_ratio_overtaker": abs(ej) / abs(sj), "mechanism": mech}
        S.append(j)
    return None


#: The entries of :func:`sequence_arrays` and their dimensions (a
#: :class:`~dlnfusion.sweep.Predict` sweep's ``dims``).
SEQUENCE_DIMS = {"order": ("transition",), "times": ("transition",),
                 "order_leading_order": ("transition",), "times_leading_order": ("transition",),
                 "order_by_norm": ("modality",), "plateau_loss": ("plateau",),
                 "plateau_map": ("plateau", "input"),
                 "plateau_misattribution": ("plateau", "modality")}


def sequence_arrays(seq) -> dict:
    """A :class:`LearningSequence` (scalar output) as float arrays (:data:`SEQUENCE_DIMS`):
    the orders and times, and per plateau its loss, its map and each learned modality's
    mis-attribution (NaN for the others). :func:`sequence_from_arrays` reads them back, also
    padded with NaN (as a sweep stores them)."""
    M = len(seq.order_by_norm)
    mis = np.full((len(seq.plateaus), M), np.nan)
    for k, p in enumerate(seq.plateaus):
        mis[k, list(p.learned)] = p.misattribution
    out = {k: np.array(getattr(seq, k), float) for k in
           ("order", "times", "order_leading_order", "times_leading_order", "order_by_norm")}
    return {**out, "plateau_misattribution": mis,
            "plateau_loss": np.array([p.loss for p in seq.plateaus], float),
            "plateau_map": np.array([np.ravel(p.map) for p in seq.plateaus], float)
            if seq.plateaus else np.zeros((0, M))}


def sequence_from_arrays(arrays, names, valid: bool = True, caveats=()) -> LearningSequence:
    """The :class:`LearningSequence` of :func:`sequence_arrays` (NaN padding dropped; scalar
    output; ``names`` the modalities', ``valid`` and ``caveats`` its verdict)."""
    a = {k: np.asarray(v, float) for k, v in arrays.items()}
    idx = lambda v: tuple(int(x) for x in v if np.isfinite(x))  # noqa: E731
    order, lo, maps = idx(a["order"]), idx(a["order_leading_order"]), a["plateau_map"]
    plateaus = tuple(Plateau(_subset(order[:k + 1]), maps[k][None, ~np.isnan(maps[k])],
                             float(a["plateau_loss"][k]),
                             tuple(float(a["plateau_misattribution"][k, i])
                                   for i in _subset(order[:k + 1]))) for k in range(len(order)))
    times = lambda v, n: tuple(float(x) for x in v[:n])  # noqa: E731
    return LearningSequence(order, times(a["times"], len(order)), plateaus, lo,
                            times(a["times_leading_order"], len(lo)), idx(a["order_by_norm"]),
                            bool(valid), tuple(caveats), tuple(names))


def budget_caveats(seq, max_steps: int, fraction: float = 0.9) -> list:
    """``seq``'s caveats, plus one where its last predicted transition comes after
    ``fraction`` of a budget of ``max_steps`` steps (a run of that length may not reach it):
    why, from the theory alone, a run lies outside the analysis."""
    reasons = list(seq.caveats)
    last = seq.times[-1] if seq.times else np.nan
    if np.isfinite(last) and last > fraction * max_steps:
        reasons.append(f"budget: the last transition is predicted at {last:.0f} steps, beyond "
                       f"{fraction:.0%} of {max_steps}")
    return reasons


def sequence_record(stats, depth: int = 2, fusion_layer: int | None = None, *,
                    max_steps: int | None = None, budget_fraction: float = 0.9,
                    with_departure: bool = False, **kwargs) -> dict:
    """:func:`learning_sequence` (``stats``, ``depth``, ``fusion_layer``, ``kwargs``) as one
    record of a :class:`~dlnfusion.sweep.Predict` sweep (``dims`` :data:`SEQUENCE_DIMS`): its
    :func:`sequence_arrays`, ``valid`` and ``caveats``; with ``max_steps`` the caveats are
    :func:`budget_caveats` and a predicted transition beyond the budget makes it invalid too.
    ``with_departure`` adds :func:`departure` (``mechanism`` "" where the order follows
    ‖Σ_yx,m‖)."""
    seq = learning_sequence(stats, depth, fusion_layer, **kwargs)
    caveats = (seq.caveats if max_steps is None else
               tuple(budget_caveats(seq, max_steps, budget_fraction)))
    out = {**sequence_arrays(seq), "valid": seq.valid and len(caveats) == len(seq.caveats),
           "caveats": caveats}
    if with_departure:
        out["departure"] = departure(stats, seq) or {"mechanism": ""}
    return out


def seed_sequence_init(spec, seed: int, scheme: str, scale: float) -> np.ndarray:
    """The ``init`` of :func:`learning_sequence` that predicts the run of ``seed``: the initial
    weights :func:`dlnfusion.init_batch` draws for it (``scheme``, ``scale``) as
    :func:`sequence_init` (two layers) or :func:`~.deep.alignment_seeds` (four layers) reads
    them."""
    from ..networks import init_batch
    from .deep import alignment_seeds

    params = init_batch(spec, [seed], scheme, scale)
    read = sequence_init if spec.depth == 2 else alignment_seeds
    return read(spec, params)[0]
