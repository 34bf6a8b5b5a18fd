"""Relative Source Variance (RSV) of the units of a representation (Kleinman, Achille & Soatto,
CVPR 2023, Section 3, eqs. 4-5).

Definition. For unit i of a representation f(a, b) of two sources A (input a) and B (input b),

    SV_i(A, b) = Var_a f(a, b)_i   (b fixed),      SV_i(B, a) = Var_b f(a, b)_i   (a fixed),

    RSV_i = (SV_i(A) − SV_i(B)) / (SV_i(A) + SV_i(B)) ∈ [−1, 1],

with SV_i(A) the average of SV_i(A, b) over many fixed b (likewise B). RSV = +1: the unit
responds only to source A; −1: only to B; 0: equally to both.

Which distribution a is drawn from. Eq. (4) writes SV_i(A, b) = Var(f(A, B)_i | B = b), but the
procedure the paper states is: "we fix a sample b, and vary the inputs a, sampling from
a ~ p(a)" — the marginal of a, independent of the fixed b (with images split into halves, the
only thing one can do: there is no sample of p(a | b) for a given right half b). This module
follows the procedure: ``sampling="marginal"`` (default). ``sampling="conditional"`` draws
a ~ p(a | b) instead, eq. (4) read literally; it needs a generative model of the inputs
(Gaussian :class:`~dlnfusion.stats.Stats`).

Population formula for linear fusion networks (any depth L, fusion layer L_f, widths; units of
any layer). The activity of unit i of layer l is h_i = r_Aᵢ·a + r_Bᵢ·b, r_Aᵢ, r_Bᵢ the rows of
the per-branch partial products up to layer l (:func:`unit_maps`): before fusion
(l < L_f) a unit of branch A has r_B = 0 (RSV = +1 exactly) and a unit of branch B r_A = 0
(RSV = −1); from the fusion layer on r_m = rows of W^l ⋯ W^{L_f+1} W_m^{L_f} ⋯ W_m^1. For
zero-mean inputs with covariance Σ = [[Σ_AA, Σ_AB], [Σ_BA, Σ_BB]]:

* marginal (a ~ p(a), independent of b): h_i − E_a h_i = r_Aᵢ·(a − 0), so
  SV_i(A, b) = r_Aᵢᵀ Σ_AA r_Aᵢ for every b. Needs only second moments, any distribution.
* conditional (a ~ p(a | b)): for jointly Gaussian inputs a | b ~ N(Σ_AB Σ_BB⁺ b,
  Σ_AA − Σ_AB Σ_BB⁺ Σ_BA) (Schur complement; Σ_BB⁺ the pseudo-inverse, so a singular Σ_BB, e.g.
  a source with redundant coordinates, is handled: b has no component along Σ_BB's null space
  and there the mean gets none), and r_Bᵢ·b is a constant given b, so
  SV_i(A, b) = r_Aᵢᵀ (Σ_AA − Σ_AB Σ_BB⁺ Σ_BA) r_Aᵢ, again independent of b. For non-Gaussian
  inputs this is the average over b of Var(h_i | b) only when E[a | b] is linear in b.

Derivation of both (by hand): with h = r_A·a + c, c = r_B·b fixed, Var(h | ·) = r_Aᵀ Cov(a | ·)
r_A, and Cov(a | ·) is Σ_AA (marginal) or the Gaussian conditional covariance (the Schur
complement, from completing the square in the joint density's exponent). Σ here is the toolkit's
Stats.sigma = ⟨x xᵀ⟩: it is the covariance for zero-mean inputs (Stats.sample draws zero-mean
data), which these formulas assume.

Symbol → argument: a, b = the inputs of modalities 0 and 1 (``stats.names`` A and B); l =
``layer`` (1 … L, counting weight matrices from the input; layer L is the output); r = rows of
:func:`unit_maps`; n_b = ``n_b`` fixed values, n_a = ``n_a`` varied values per fixed one
(:func:`rsv_sampled`). A unit with SV(A) + SV(B) = 0 (no activity) has RSV NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..networks import CrossReconstruction, FusionMLP, NetworkSpec, Params
from ..precision import float64
from ..stats import Dataset, Stats
from ..training.observables import Record

__all__ = ["SAMPLINGS", "unit_maps", "source_covariances", "source_variances",
           "rsv_from_variances", "rsv_population", "layer_activity", "RSVSample",
           "rsv_sampled", "rsv_mc_std", "rsv_histogram", "rsv_observable"]

#: How the varied source is drawn: "marginal" a ~ p(a) (the paper's procedure), "conditional"
#: a ~ p(a | b) (eq. 4 read literally).
SAMPLINGS = ("marginal", "conditional")
#: Eigenvalues of Σ_BB (Σ_AA) below this fraction of the largest are treated as zero in the
#: pseudo-inverse: a singular block built in float64 has eigenvalues ~1e-16 of its scale,
#: genuine variances are many orders larger.
PINV_RTOL = 1e-10


# ---------------------------------------------------------------------- layers and rows
def _layer(layer, depth: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) \
            or not 1 <= layer <= depth:
        raise ValueError(f"unknown layer {layer!r}: layers are numbered 1 … {depth} (weight "
                         "matrices from the input; the last is the output)")
    return int(layer)


def _structure(params: Params) -> tuple[int, int]:
    depths = {len(b) for b in params.branches}
    if len(depths) != 1:
        raise ValueError("RSV needs branches of equal depth (one fusion layer L_f), got depths "
                         f"{[len(b) for b in params.branches]}")
    if len(params.branches) != 2:
        raise ValueError(f"RSV compares two sources; the network has {len(params.branches)} "
                         "branches")
    Lf = depths.pop()
    return Lf, Lf + len(params.post)


def _rows(params: Params, layer: int):
    """(R_A, R_B), each (..., units, d_m), for already validated params (jnp, traceable)."""
    Lf, L = _structure(params)
    layer = _layer(layer, L)
    prods = []
    for layers in params.branches:
        P = layers[0]
        for W in layers[1:min(layer, Lf)]:
            P = jnp.matmul(W, P)
        prods.append(P)
    if layer < Lf:                      # before fusion: each branch has units of its own
        (PA, PB) = prods
        batch = jnp.shape(PA)[:-2]
        zA = jnp.zeros(batch + (PB.shape[-2], PA.shape[-1]), PA.dtype)
        zB = jnp.zeros(batch + (PA.shape[-2], PB.shape[-1]), PB.dtype)
        return (jnp.concatenate([PA, zA], axis=-2), jnp.concatenate([zB, PB], axis=-2))
    out = []
    for P in prods:
        for W in params.post[:layer - Lf]:
            P = jnp.matmul(W, P)
        out.append(P)
    return tuple(out)


def _check_network(spec: NetworkSpec, params: Params, batched: bool = True):
    if not isinstance(spec, NetworkSpec):
        raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if spec.n_modalities != 2:
        raise ValueError(f"RSV compares two sources; the network has {spec.n_modalities}")
    if not isinstance(params, Params):
        raise ValueError("params must be a dlnfusion Params")
    mats = params.matrices()
    if len(mats) != spec.n_layers or len(params.branches) != spec.n_modalities:
        raise ValueError(f"params has {len(mats)} matrices, the network {spec.n_layers}")
    batch = None
    for W, shape, label in zip(mats, spec.layer_shapes, spec.layer_labels):
        sh = tuple(np.shape(W))
        if sh[-2:] != shape or (not batched and len(sh) != 2):
            raise ValueError(f"{label} has shape {sh}, the network needs "
                             f"{'(..., ) + ' if batched else ''}{shape}")
        if batch is None:
            batch = sh[:-2]
        elif sh[:-2] != batch:
            raise ValueError(f"{label} has batch shape {sh[:-2]}, other matrices {batch}")
    spec.fusion_layer           # raises for unequal branch depths


def unit_maps(spec: NetworkSpec, params: Params, layer: int) -> tuple:
    """(R_A, R_B): rows of the partial products from each source to the units of ``layer``,
    shapes (..., units, d_A) and (..., units, d_B) (``params`` may carry leading batch axes).

    Before fusion (layer < L_f) the units are branch A's then branch B's and R_B (R_A) is zero
    on A's (B's) units; from the fusion layer on R_m = W^l ⋯ W^{L_f+1} W_m^{L_f} ⋯ W_m^1.
    For a linear network h = R_A a + R_B b.
    """
    _check_network(spec, params)
    _layer(layer, spec.depth)
    return tuple(np.asarray(r) for r in _rows(params, layer))


def _pinv(S):
    return np.linalg.pinv(S, rcond=PINV_RTOL, hermitian=True)


def source_covariances(stats: Stats, sampling: str = "marginal") -> tuple:
    """(C_A, C_B): the covariance of the varied source, Σ_AA and Σ_BB ("marginal") or the Schur
    complements Σ_AA − Σ_AB Σ_BB⁺ Σ_BA and Σ_BB − Σ_BA Σ_AA⁺ Σ_AB ("conditional")."""
    if not isinstance(stats, Stats):
        raise ValueError(f"stats must be a Stats, got {type(stats).__name__}")
    if stats.n_modalities != 2:
        raise ValueError(f"RSV compares two sources; stats has {stats.n_modalities}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    A, B, AB = stats.block(0, 0), stats.block(1, 1), stats.block(0, 1)
    if sampling == "marginal":
        return np.array(A), np.array(B)
    CA, CB = A - AB @ _pinv(B) @ AB.T, B - AB.T @ _pinv(A) @ AB
    return 0.5 * (CA + CA.T), 0.5 * (CB + CB.T)


def _quad(R, C):
    # r_iᵀ C r_i per unit; a conditional covariance of collinear sources is 0 up to rounding,
    # where the quadratic form may come out −1e-17: clipped to its true sign.
    return jnp.maximum(jnp.einsum("...ij,jk,...ik->...i", R, C, R), 0.0)


def _rsv(sa, sb):
    tot = sa + sb
    return jnp.where(tot > 0, (sa - sb) / jnp.where(tot > 0, tot, 1.0), jnp.nan)


def rsv_from_variances(sv_a, sv_b) -> np.ndarray:
    """RSV = (SV_A − SV_B)/(SV_A + SV_B) (eq. 5); NaN where both vanish."""
    sa, sb = np.asarray(sv_a, dtype=float), np.asarray(sv_b, dtype=float)
    if sa.shape != sb.shape:
        raise ValueError(f"sv_a has shape {sa.shape}, sv_b {sb.shape}")
    if np.any(sa < 0) or np.any(sb < 0):
        raise ValueError("source variances must be >= 0")
    tot = sa + sb
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, (sa - sb) / np.where(tot > 0, tot, 1.0), np.nan)


def _check_stats(spec, stats):
    if not isinstance(stats, Stats):
        raise ValueError(f"stats must be a Stats, got {type(stats).__name__}")
    if tuple(stats.dims) != tuple(spec.input_dims):
        raise ValueError(f"stats has source dimensions {stats.dims}, the network "
                         f"{spec.input_dims}")


def source_variances(spec: NetworkSpec, params: Params, stats: Stats, layer: int,
                     sampling: str = "marginal") -> tuple:
    """(SV_A, SV_B) of every unit of ``layer`` of a linear fusion network at population level,
    SV_A = r_Aᵀ C_A r_A (module docstring; C from :func:`source_covariances`). Shapes
    (..., units)."""
    _check_network(spec, params)
    if not spec.is_linear:
        raise ValueError("the population formula is exact for linear networks only; use "
                         "rsv_sampled with layer_activity for a nonlinear one")
    _check_stats(spec, stats)
    _layer(layer, spec.depth)
    CA, CB = source_covariances(stats, sampling)
    with float64():
        RA, RB = _rows(jax.tree_util.tree_map(lambda w: jnp.asarray(w, jnp.float64), params),
                       layer)
        return np.asarray(_quad(RA, jnp.asarray(CA))), np.asarray(_quad(RB, jnp.asarray(CB)))


def rsv_population(spec: NetworkSpec, params: Params, stats: Stats, layer: int,
                   sampling: str = "marginal") -> np.ndarray:
    """Exact RSV of every unit of ``layer`` of a linear fusion network, (..., units).

    ``sampling="marginal"`` (default) is the paper's procedure (a drawn from p(a) with b
    fixed): SV_A = r_Aᵀ Σ_AA r_A. ``"conditional"``: a ~ p(a | b), SV_A = r_Aᵀ(Σ_AA −
    Σ_AB Σ_BB⁺ Σ_BA) r_A (Gaussian inputs). See the module docstring for the derivation.
    """
    return rsv_from_variances(*source_variances(spec, params, stats, layer, sampling))


# ---------------------------------------------------------------------- any network
def _check_xs(xs, dims):
    if not isinstance(xs, (tuple, list)) or len(xs) != len(dims):
        raise ValueError(f"xs must be a tuple of {len(dims)} arrays (P, d_m)")
    P = None
    for m, (x, d) in enumerate(zip(xs, dims)):
        sh = tuple(np.shape(x))
        if len(sh) < 2 or int(np.prod(sh[1:])) != d or (P is not None and sh[0] != P):
            raise ValueError(f"xs[{m}] has shape {sh}, expected (P, {d}) with one P for all")
        P = sh[0]


def layer_activity(model, params, layer: int) -> Callable:
    """f(xs) → (P, units): the activity of the units of ``layer`` for inputs ``xs`` (a tuple of
    (P, d_m) arrays), for a :class:`NetworkSpec` with :class:`Params` (one run, no batch axis;
    any activation) or a :class:`~dlnfusion.networks.FusionMLP` (or a
    :class:`~dlnfusion.networks.CrossReconstruction` around one) with its parameters.

    Units are those of :func:`dlnfusion.forward` truncated after layer l: before fusion branch
    A's units then branch B's; the activation follows every hidden layer (as in forward: the
    fused sum is activated before the next layer), the output layer (l = L) has none. For a
    FusionMLP the biases are included.
    """
    if isinstance(model, CrossReconstruction):
        model, params = model.base, params["net"]
    if isinstance(model, FusionMLP):
        spec = model.spec
        if len(model.input_dims) != 2:
            raise ValueError("RSV compares two sources; the FusionMLP has "
                             f"{len(model.input_dims)}")
        Lf, L = spec.fusion_layer, spec.depth
        layer = _layer(layer, L)
        act = _mlp_act(model)

        def f_mlp(xs):
            _check_xs(xs, model.input_dims)
            hs = []
            for x, layers in zip(xs, params["branches"]):
                h = jnp.reshape(x, (x.shape[0], -1))
                for W, b in layers[:min(layer, Lf - 1)]:
                    h = act(h @ W.T + b)
                hs.append(h)
            if layer < Lf:
                return jnp.concatenate(hs, axis=-1)
            z = params["fused_b"] + sum(h @ Wf.T for h, Wf in zip(hs, params["fused"]))
            for W, b in params["post"][:layer - Lf]:
                z = act(z) @ W.T + b
            return act(z) if layer < L else z

        return f_mlp
    if not isinstance(model, NetworkSpec):
        raise ValueError(f"model must be a NetworkSpec or a FusionMLP, got {type(model).__name__}")
    _check_network(model, params, batched=False)
    spec = model
    Lf, L = spec.fusion_layer, spec.depth
    layer = _layer(layer, L)
    act = spec.act or (lambda h: h)

    def f(xs):
        _check_xs(xs, spec.input_dims)
        hs = []
        for x, layers in zip(xs, params.branches):
            h = x
            for k, W in enumerate(layers[:min(layer, Lf)]):
                h = h @ W.T
                if k < Lf - 1:
                    h = act(h)
            hs.append(h)
        if layer < Lf:
            return jnp.concatenate(hs, axis=-1)
        z = hs[0] + hs[1]
        for W in params.post[:layer - Lf]:
            z = act(z) @ W.T
        return act(z) if layer < L else z

    return f


def _mlp_act(model):
    a = model.activation
    if callable(a):
        return a
    from ..networks.spec import ACTIVATIONS
    return ACTIVATIONS[a] or (lambda h: h)


class RSVSample(NamedTuple):
    """RSV estimated by the paper's sampling procedure.

    ``rsv`` (units,) from the averaged variances; ``sv_a``, ``sv_b`` (units,) the averages;
    ``sv_a_given`` (n_b, units) SV_i(A, b_j) for each fixed b_j and ``sv_b_given`` (n_b, units)
    SV_i(B, a_j) for each fixed a_j; ``rsv_pairs`` (n_b, units) the paper's per-example
    RSV_i(a_j, b_j) (eq. 5 with SV_i(A, b_j) and SV_i(B, a_j)), whose histogram over units and
    examples is the paper's; ``n_a``, ``n_b``, ``sampling``.
    """

    rsv: np.ndarray
    sv_a: np.ndarray
    sv_b: np.ndarray
    sv_a_given: np.ndarray
    sv_b_given: np.ndarray
    rsv_pairs: np.ndarray
    n_a: int
    n_b: int
    sampling: str


def _root(S):
    w, v = np.linalg.eigh(0.5 * (S + S.T))
    return v * np.sqrt(np.clip(w, 0.0, None))          # S = root rootᵀ (PSD, maybe singular)


def _count(name, value, lo):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def rsv_sampled(f: Callable, data, n_a: int = 256, n_b: int = 256, seed: int = 0,
                sampling: str = "marginal") -> RSVSample:
    """RSV of the units of any representation ``f`` by the paper's sampling procedure (Sec. 3).

    ``f(xs)`` maps a tuple (x_A (P, d_A), x_B (P, d_B)) to unit activities (P, units) and must
    be traceable by JAX (e.g. :func:`layer_activity`). ``data`` gives p(a, b): a
    :class:`Stats` (zero-mean Gaussian with these moments) or a :class:`Dataset` (its rows,
    drawn uniformly with replacement: the empirical distribution).

    Procedure: draw n_b fixed values b_j; for each, n_a values a_{j,k} from p(a) ("marginal",
    the paper) or p(a | b_j) ("conditional", Stats only); SV_i(A, b_j) is the unbiased variance
    over k of f(a_{j,k}, b_j)_i, and SV_i(A) its mean over j. SV_i(B) likewise with n_b fixed
    a_j and n_a values of b each, drawn independently of the first set. Everything is one
    vmapped call of f per source; the draws come from numpy's ``default_rng(seed)``, so a seed
    gives the same estimate on every platform. For Gaussian unit activity
    (a linear network) the estimate's standard deviation is :func:`rsv_mc_std`.
    """
    n_a, n_b = _count("n_a", n_a, 2), _count("n_b", n_b, 1)
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if not callable(f):
        raise ValueError("f must be a function of a tuple of input batches")
    if isinstance(data, Stats):
        dims = tuple(data.dims)
    elif isinstance(data, Dataset):
        dims = tuple(data.dims)
        if sampling == "conditional":
            raise ValueError("sampling='conditional' needs p(a | b); a Dataset gives only the "
                             "empirical joint distribution (pass Stats for the Gaussian model)")
    else:
        raise ValueError(f"data must be a Stats or a Dataset, got {type(data).__name__}")
    if len(dims) != 2:
        raise ValueError(f"RSV compares two sources; data has {len(dims)}")
    with float64():
        probe = jax.eval_shape(f, tuple(jax.ShapeDtypeStruct((2, d), jnp.float64)
                                        for d in dims))
        if len(getattr(probe, "shape", ())) != 2 or probe.shape[0] != 2:
            raise ValueError("f must return unit activities of shape (P, units) for P inputs, "
                             f"got shape {getattr(probe, 'shape', None)} for P = 2")

        # Draws with numpy (seeded Generator; no compilation), evaluation as one vmapped call
        # of f per source (op by op: XLA caches every primitive per shape across calls, so
        # repeated calls with the same budget do not compile again).
        rng = np.random.default_rng(int(seed))
        fixed_b, vary_a = _draw(data, 1, 0, rng, n_a, n_b, sampling)
        fixed_a, vary_b = _draw(data, 0, 1, rng, n_a, n_b, sampling)
        ev = jax.vmap(lambda xa, xb: f((xa, xb)))
        rep = lambda x: np.broadcast_to(x[:, None, :], (n_b, n_a, x.shape[-1]))  # noqa: E731
        ha = ev(jnp.asarray(vary_a), jnp.asarray(rep(fixed_b)))      # (n_b, n_a, units)
        hb = ev(jnp.asarray(rep(fixed_a)), jnp.asarray(vary_b))
        sva = np.asarray(jnp.var(ha, axis=1, ddof=1), dtype=float)
        svb = np.asarray(jnp.var(hb, axis=1, ddof=1), dtype=float)
    sa, sb = sva.mean(axis=0), svb.mean(axis=0)
    return RSVSample(rsv_from_variances(sa, sb), sa, sb, sva, svb,
                     rsv_from_variances(sva, svb), n_a, n_b, sampling)


def _draw(data, fixed: int, varied: int, rng, n_a, n_b, sampling):
    """n_b fixed values of source ``fixed`` and, per fixed value, n_a of source ``varied``
    (numpy arrays (n_b, d_f) and (n_b, n_a, d_v))."""
    if isinstance(data, Dataset):
        P = data.n_samples
        i_fix = rng.integers(0, P, size=n_b)
        i_var = rng.integers(0, P, size=(n_b, n_a))
        return np.asarray(data.xs[fixed])[i_fix], np.asarray(data.xs[varied])[i_var]
    Sff, Svv = data.block(fixed, fixed), data.block(varied, varied)
    Svf = data.block(varied, fixed)
    df, dv = Sff.shape[0], Svv.shape[0]
    xf = rng.standard_normal((n_b, df)) @ _root(Sff).T
    z = rng.standard_normal((n_b, n_a, dv))
    if sampling == "marginal":
        return xf, z @ _root(Svv).T
    K = Svf @ _pinv(Sff)                                  # E[x_v | x_f] = K x_f
    schur = Svv - K @ Svf.T
    return xf, (xf @ K.T)[:, None, :] + z @ _root(schur).T


def rsv_mc_std(rsv, n_a: int, n_b: int) -> np.ndarray:
    """Standard deviation of :func:`rsv_sampled`'s RSV around the population value for
    Gaussian unit activity (a linear network), to first order (delta method):

        sd = (1 − RSV²)/√((n_a − 1) n_b).

    Each SV estimate is a mean of n_b unbiased variances of n_a Gaussians: relative standard
    deviation ε = √(2/((n_a − 1) n_b)), independent for A and B; ∂RSV/∂ln SV_A = −∂RSV/∂ln SV_B
    = (1 − RSV²)/2, so sd = (1 − RSV²)/2 · √2 ε.
    """
    n_a, n_b = _count("n_a", n_a, 2), _count("n_b", n_b, 1)
    r = np.asarray(rsv, dtype=float)
    return (1.0 - r ** 2) / np.sqrt((n_a - 1) * n_b)


def rsv_histogram(rsv, bins: int = 20, normalize: bool = True) -> tuple:
    """(values, edges) of the RSV distribution over units (and examples: any array shape is
    flattened), ``bins`` equal bins on [−1, 1] (+1 falls in the last bin); NaN (inactive units)
    are left out. ``normalize``: fractions summing to 1 (all zeros when nothing is left),
    otherwise counts."""
    bins = _count("bins", bins, 1)
    r = np.asarray(rsv, dtype=float).ravel()
    r = r[~np.isnan(r)]
    if np.any(np.abs(r) > 1 + 1e-12):
        raise ValueError("RSV values must lie in [-1, 1]")
    counts, edges = np.histogram(np.clip(r, -1.0, 1.0), bins=bins, range=(-1.0, 1.0))
    if normalize:
        return counts / max(r.size, 1), edges
    return counts, edges


# ---------------------------------------------------------------------- during training
@dataclass(frozen=True)
class _RSVRecord:
    """The observable's function: RSV of the units of ``layer`` from a Snapshot's weights.
    A frozen dataclass, equal for equal layers, so that a new observable for the same layer
    does not recompile the training loop."""

    layer: int

    def __call__(self, snap, data):
        CA, CB = data
        RA, RB = _rows(snap.params, self.layer)
        return _rsv(_quad(RA, CA), _quad(RB, CB))


def rsv_observable(stats: Stats, layer: int, sampling: str = "marginal",
                   spec: NetworkSpec | None = None) -> Record:
    """A :class:`~dlnfusion.training.Record` of the population RSV of every unit of ``layer``
    (:func:`rsv_population` on the current weights, linear networks), for
    ``train(..., observe={"rsv": rsv_observable(stats, layer=...)})``; recorded as
    (*batch, T, units). ``stats`` are the statistics the RSV is measured under (the normal
    data, also while a deficit is in force); pass ``spec`` to validate ``layer`` now rather
    than when the loop is traced."""
    CA, CB = source_covariances(stats, sampling)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer < 1:
        raise ValueError(f"unknown layer {layer!r}: layers are numbered from 1")
    if spec is not None:
        if not isinstance(spec, NetworkSpec):
            raise ValueError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
        if not spec.is_linear:
            raise ValueError("rsv_observable uses the population formula: linear networks only")
        _check_stats(spec, stats)
        _layer(layer, spec.depth)
    return Record(_RSVRecord(int(layer)), (CA, CB))
