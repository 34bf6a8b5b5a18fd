"""Second-order statistics of multimodal regression data.

Under the squared loss, the gradient dynamics of a linear network depend on the data only
through the input correlation Σ = ⟨x xᵀ⟩, the input-output correlation Σ_yx = ⟨y xᵀ⟩ and the
output correlation Σ_yy = ⟨y yᵀ⟩ (Zhang, Latham & Saxe 2024, eq. 1; ⟨y²⟩ = tr Σ_yy for scalar
outputs). :class:`Stats` holds exactly these moments, split into modalities, and is the central
value of the toolkit: simulators, theory and comparisons all take it.

Conventions
-----------
* Inputs are stacked modality by modality, x = [x_A, x_B, ...]; ``dims`` gives each
  modality's dimension and ``names`` its label.
* Σ_yx has shape (d_out, D) and total maps W^tot have the same shape.
* All moments are stored as float64 numpy arrays (read-only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.stats import invwishart

from . import checks

__all__ = ["Stats", "Dataset", "modality_slices", "split_modalities"]

# Relative tolerance on |Σ - Σᵀ| (in units of max|Σ|) above which Σ is called asymmetric.
_SYM_RTOL = 1e-10
# Relative eigenvalue threshold (in units of the largest eigenvalue) below which Σ is treated
# as singular; only used when ``allow_singular`` is set.
_SINGULAR_RTOL = 1e-10


def _as_array(name: str, value) -> np.ndarray:
    try:
        return np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {value!r}") from exc


def _as_matrix(name: str, value, ndim: int = 2) -> np.ndarray:
    arr = _as_array(name, value)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return arr


def _default_names(n: int) -> tuple[str, ...]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return tuple(letters[i] if i < 26 else f"M{i}" for i in range(n))


def _check_dims(dims, total: int) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in dims)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"dims must be a sequence of positive integers, got {dims!r}") from exc
    if len(dims) < 1 or any(d < 1 for d in dims):
        raise ValueError(f"dims must be a non-empty sequence of positive integers, got {dims!r}")
    if sum(dims) != total:
        raise ValueError(f"dims {dims} sum to {sum(dims)} but sigma is {total}x{total}")
    return dims


def modality_slices(dims) -> tuple[slice, ...]:
    """Index range of each modality inside the stacked input x = [x_A, x_B, ...]."""
    out, start = [], 0
    for d in dims:
        out.append(slice(start, start + int(d)))
        start += int(d)
    return tuple(out)


def split_modalities(W, dims) -> tuple:
    """Split the last axis of a total map (..., D) into one block per modality."""
    return tuple(W[..., s] for s in modality_slices(dims))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class Stats:
    """Moments of a multimodal regression dataset.

    Parameters
    ----------
    sigma : (D, D) array
        Input correlation Σ = ⟨x xᵀ⟩ (paper eq. 1a). Symmetric, positive definite (positive
        semi-definite with ``allow_singular=True``, e.g. collinear modalities, Figure 8).
    sigma_yx : (d_out, D) array
        Input-output correlation Σ_yx = ⟨y xᵀ⟩ (eq. 1b).
    sigma_yy : (d_out, d_out) array
        Output correlation ⟨y yᵀ⟩; its trace is ⟨‖y‖²⟩, which fixes the value of the loss.
    dims : sequence of int
        Input dimension of each modality, in the order they are stacked in x.
    names : sequence of str, optional
        Modality labels, default "A", "B", ...
    allow_singular : bool
        Accept a singular Σ. The moments must still be realizable: Σ_yx must lie in the row
        space of Σ and the joint second-moment matrix must be positive semi-definite.

    Raises
    ------
    ValueError
        On wrong shapes, NaN/inf entries, an asymmetric Σ, a Σ that is not positive definite
        (or not semi-definite with ``allow_singular``), or moments that no dataset can have.
    """

    sigma: np.ndarray
    sigma_yx: np.ndarray
    sigma_yy: np.ndarray
    dims: tuple[int, ...]
    names: tuple[str, ...] = field(default=())
    allow_singular: bool = False

    def __post_init__(self):
        sigma = _as_matrix("sigma", self.sigma)
        if sigma.shape[0] != sigma.shape[1]:
            raise ValueError(f"sigma must be square, got shape {sigma.shape}")
        D = sigma.shape[0]
        sigma_yx = _as_array("sigma_yx", self.sigma_yx)
        if sigma_yx.ndim == 1:
            sigma_yx = sigma_yx[None, :]
        sigma_yx = _as_matrix("sigma_yx", sigma_yx)
        if sigma_yx.shape[1] != D:
            raise ValueError(
                f"sigma_yx must have shape (d_out, {D}) to match sigma, got {sigma_yx.shape}")
        d_out = sigma_yx.shape[0]
        sigma_yy = _as_array("sigma_yy", self.sigma_yy)
        if sigma_yy.ndim == 0:
            sigma_yy = sigma_yy.reshape(1, 1)
        sigma_yy = _as_matrix("sigma_yy", sigma_yy)
        if sigma_yy.shape != (d_out, d_out):
            raise ValueError(f"sigma_yy must have shape ({d_out}, {d_out}), got {sigma_yy.shape}")
        dims = _check_dims(self.dims, D)
        names = tuple(self.names) if self.names else _default_names(len(dims))
        if len(names) != len(dims) or len(set(names)) != len(names):
            raise ValueError(f"names must be {len(dims)} distinct labels, got {names!r}")

        scale = max(np.max(np.abs(sigma)), 1e-300)
        asym = np.max(np.abs(sigma - sigma.T))
        if asym > _SYM_RTOL * scale:
            raise ValueError(f"sigma must be symmetric; max |sigma - sigma^T| = {asym:.3g}")
        sigma = 0.5 * (sigma + sigma.T)
        asym_yy = np.max(np.abs(sigma_yy - sigma_yy.T))
        if asym_yy > _SYM_RTOL * max(np.max(np.abs(sigma_yy)), 1e-300):
            raise ValueError(f"sigma_yy must be symmetric; max asymmetry = {asym_yy:.3g}")
        sigma_yy = 0.5 * (sigma_yy + sigma_yy.T)
        eig = np.linalg.eigvalsh(sigma)
        tol = _SINGULAR_RTOL * max(eig[-1], 1e-300)
        if self.allow_singular:
            if eig[0] < -tol:
                raise ValueError(
                    f"sigma must be positive semi-definite; smallest eigenvalue = {eig[0]:.3g}")
            # Realizability: Σ_yx = W Σ for some W, i.e. Σ_yx is orthogonal to the null space.
            w, v = np.linalg.eigh(sigma)
            null = v[:, w <= tol]
            leak = np.max(np.abs(sigma_yx @ null)) if null.size else 0.0
            if leak > 1e-8 * max(np.max(np.abs(sigma_yx)), 1.0):
                raise ValueError(
                    "sigma_yx has a component along a null direction of sigma; no dataset has "
                    "these moments")
        elif eig[0] <= tol:
            raise ValueError(
                f"sigma must be positive definite; smallest eigenvalue = {eig[0]:.3g} "
                "(pass allow_singular=True for collinear modalities)")
        joint = np.block([[sigma, sigma_yx.T], [sigma_yx, sigma_yy]])
        jeig = np.linalg.eigvalsh(joint)
        if jeig[0] < -1e-8 * max(jeig[-1], 1.0):
            raise ValueError(
                "the joint moment matrix [[sigma, sigma_yx^T], [sigma_yx, sigma_yy]] is not "
                f"positive semi-definite (smallest eigenvalue {jeig[0]:.3g}); sigma_yy is too "
                "small for the given sigma_yx")

        object.__setattr__(self, "sigma", _readonly(sigma))
        object.__setattr__(self, "sigma_yx", _readonly(sigma_yx))
        object.__setattr__(self, "sigma_yy", _readonly(sigma_yy))
        object.__setattr__(self, "dims", dims)
        object.__setattr__(self, "names", names)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def scalar_toy(cls, sigma_a: float = 1.0, sigma_b: float = 1.0, rho: float = 0.0,
                   w_a: float = 1.0, w_b: float = 1.0, noise_var: float = 0.0) -> "Stats":
        """The paper's two scalar modalities (Section 3, Appendix J).

        Σ = [[σ_A², ρσ_Aσ_B], [ρσ_Aσ_B, σ_B²]] and y = w_A x_A + w_B x_B + ε with
        ⟨ε²⟩ = ``noise_var``. ``sigma_a`` and ``sigma_b`` are standard deviations (the paper
        calls them variances but writes σ² on the diagonal). |ρ| < 1 is required; build
        collinear data with :meth:`from_teacher` and ``allow_singular=True``.
        """
        sa = checks.positive("sigma_a", sigma_a)
        sb = checks.positive("sigma_b", sigma_b)
        r = checks.real("rho", rho)
        if abs(r) >= 1:
            raise ValueError(f"rho must satisfy |rho| < 1, got {rho!r}")
        sigma = np.array([[sa * sa, r * sa * sb], [r * sa * sb, sb * sb]])
        teacher = [[checks.real("w_a", w_a), checks.real("w_b", w_b)]]
        return cls.from_teacher(sigma, teacher, dims=(1, 1), noise_var=noise_var)

    @classmethod
    def from_teacher(cls, sigma, teacher, dims: Sequence[int], noise_var: float = 0.0,
                     names: Sequence[str] = (), allow_singular: bool = False) -> "Stats":
        """Moments of y = W* x + ε for inputs with correlation Σ.

        Σ_yx = W* Σ and Σ_yy = W* Σ W*ᵀ + noise_var · I. ``teacher`` is W* with shape
        (d_out, D) (a 1-d array is one output). ``noise_var`` ≥ 0 is the variance of each
        output's independent noise.
        """
        sigma = _as_matrix("sigma", sigma)
        t = _as_array("teacher", teacher)
        if t.ndim == 1:
            t = t[None, :]
        t = _as_matrix("teacher", t)
        if t.shape[1] != sigma.shape[0]:
            raise ValueError(
                f"teacher must have shape (d_out, {sigma.shape[0]}) to match sigma, got {t.shape}")
        nv = checks.real("noise_var", noise_var)
        if nv < 0:
            raise ValueError(f"noise_var must be >= 0, got {noise_var!r}")
        sym = 0.5 * (sigma + sigma.T)
        sigma_yy = t @ sym @ t.T + nv * np.eye(t.shape[0])
        return cls(sigma, t @ sigma, sigma_yy, tuple(dims), tuple(names), allow_singular)

    @classmethod
    def from_samples(cls, xs: Sequence[np.ndarray], y, names: Sequence[str] = (),
                     allow_singular: bool = False) -> "Stats":
        """Empirical moments ⟨x xᵀ⟩, ⟨y xᵀ⟩, ⟨y yᵀ⟩ of a dataset (no centering).

        ``xs`` holds one (P, d_m) array per modality (a 1-d array is one feature) and ``y`` is
        (P,) or (P, d_out). Full-batch gradient descent on the dataset with the squared loss is
        exactly population-level gradient descent on these moments.
        """
        if isinstance(xs, np.ndarray) or not isinstance(xs, (list, tuple)):
            raise ValueError("xs must be a list or tuple with one (P, d_m) array per modality")
        mats = []
        for i, x in enumerate(xs):
            a = _as_array(f"xs[{i}]", x)
            if a.ndim == 1:
                a = a[:, None]
            mats.append(_as_matrix(f"xs[{i}]", a))
        yy = _as_array("y", y)
        if yy.ndim == 1:
            yy = yy[:, None]
        yy = _as_matrix("y", yy)
        P = yy.shape[0]
        for i, a in enumerate(mats):
            if a.shape[0] != P:
                raise ValueError(f"xs[{i}] has {a.shape[0]} samples but y has {P}")
        if P < 1:
            raise ValueError("need at least one sample")
        X = np.concatenate(mats, axis=1)
        return cls(X.T @ X / P, yy.T @ X / P, yy.T @ yy / P, tuple(a.shape[1] for a in mats),
                   tuple(names), allow_singular)

    @classmethod
    def random(cls, dim: int = 20, seed: int = 0, df: float | None = None,
               scale_factor: float = 2.0, dims: Sequence[int] | None = None,
               noise_var: float = 0.0) -> "Stats":
        """A random covariance with a random teacher, as in the paper's random sweep.

        Σ ~ inverse-Wishart(df, Ψ) with df = dim + 2 by default and Ψ = I whose first half of
        rows (modality A) is multiplied by ``scale_factor`` (default 2, the convention of the
        authors' implementation, so that the time ratio is not trivially 1). Teacher weights
        are uniform in [-1, 1]. The input is split into two halves unless ``dims`` is given.
        """
        if not isinstance(dim, (int, np.integer)) or dim < 2:
            raise ValueError(f"dim must be an integer >= 2, got {dim!r}")
        dims = (dim // 2, dim - dim // 2) if dims is None else tuple(int(d) for d in dims)
        df = float(dim + 2) if df is None else float(df)
        if df <= dim - 1:
            raise ValueError(f"df must exceed dim - 1 = {dim - 1} for an inverse-Wishart, got {df}")
        sf = checks.positive("scale_factor", scale_factor)
        rng = np.random.default_rng(seed)
        psi = np.eye(dim)
        psi[: dims[0]] *= sf
        sigma = np.atleast_2d(invwishart.rvs(df=df, scale=psi, random_state=rng))
        sigma = 0.5 * (sigma + sigma.T)
        teacher = rng.uniform(-1.0, 1.0, size=(1, dim))
        return cls.from_teacher(sigma, teacher, dims, noise_var=noise_var)

    # ------------------------------------------------------------------ structure
    @property
    def n_modalities(self) -> int:
        return len(self.dims)

    @property
    def input_dim(self) -> int:
        return int(sum(self.dims))

    @property
    def output_dim(self) -> int:
        return int(self.sigma_yx.shape[0])

    @property
    def slices(self) -> tuple[slice, ...]:
        """Index range of each modality inside x."""
        return modality_slices(self.dims)

    def index(self, modality) -> int:
        """Position of a modality given by name or integer index."""
        if isinstance(modality, (int, np.integer)):
            if not 0 <= modality < self.n_modalities:
                raise ValueError(
                    f"modality index must be in [0, {self.n_modalities}), got {modality}")
            return int(modality)
        if modality in self.names:
            return self.names.index(modality)
        raise ValueError(f"unknown modality {modality!r}; known: {self.names}")

    def block(self, i, j) -> np.ndarray:
        """Σ_ij = ⟨x_i x_jᵀ⟩."""
        si, sj = self.slices[self.index(i)], self.slices[self.index(j)]
        return self.sigma[si, sj]

    def sigma_m(self, m) -> np.ndarray:
        """Σ_m = ⟨x_m x_mᵀ⟩ of one modality."""
        return self.block(m, m)

    def sigma_yx_m(self, m) -> np.ndarray:
        """Σ_yx_m = ⟨y x_mᵀ⟩, shape (d_out, d_m)."""
        return self.sigma_yx[:, self.slices[self.index(m)]]

    def split(self, W) -> tuple[np.ndarray, ...]:
        """Split a (d_out, D) total map into its per-modality blocks."""
        return split_modalities(np.asarray(W), self.dims)

    @property
    def is_singular(self) -> bool:
        eig = np.linalg.eigvalsh(self.sigma)
        return bool(eig[0] <= _SINGULAR_RTOL * eig[-1])

    @property
    def mean_sq_output(self) -> float:
        """⟨‖y‖²⟩ = tr Σ_yy."""
        return float(np.trace(self.sigma_yy))

    def modes(self, m=0) -> tuple:
        """U, s, V of modality m's block Σ_yx_m = U diag(s) Vᵀ (thin SVD, s descending): the
        modes α of the task, with output direction U[:, α] and input direction V[:, α]. For
        repeated singular values the basis is numpy's (deterministic) choice; mode strengths
        (Uᵀ W V)_{αα}, aligned initializations and mode lesions all use this one basis."""
        U, sv, Vt = np.linalg.svd(self.sigma_yx_m(m), full_matrices=False)
        return U, sv, Vt.T

    def repeated(self, n: int, names: Sequence[str] = ()) -> "Stats":
        """The same input seen ``n`` times: x' = [x, x, ..., x] (Σ' = 11ᵀ ⊗ Σ, Σ'_yx =
        [Σ_yx, ..., Σ_yx], singular for n > 1). A late-fusion network on it is n parallel
        pathways whose outputs are summed (:meth:`dlnfusion.NetworkSpec.pathways`); its
        population loss is that of the summed map, L(Σ_p Ω_p)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if self.n_modalities != 1:
            raise ValueError("repeated needs statistics with one input modality")
        n = int(n)
        return Stats(np.kron(np.ones((n, n)), self.sigma), np.tile(self.sigma_yx, (1, n)),
                     self.sigma_yy, (self.input_dim,) * n, tuple(names),
                     allow_singular=n > 1 or self.allow_singular)

    # ------------------------------------------------------------------ solutions
    def global_solution(self) -> np.ndarray:
        """W* = Σ_yx Σ^{-1} (pseudo-inverse for singular Σ: the minimum-norm minimizer)."""
        if self.allow_singular:
            return self.sigma_yx @ np.linalg.pinv(self.sigma, hermitian=True)
        return np.linalg.solve(self.sigma, self.sigma_yx.T).T

    def unimodal_solution(self, m) -> np.ndarray:
        """Σ_yx_m Σ_m^{-1}: the best map using modality m alone (the saddle M_m, eq. 7)."""
        s = self.sigma_m(m)
        return np.linalg.lstsq(s, self.sigma_yx_m(m).T, rcond=None)[0].T

    def loss(self, W) -> float:
        """Population loss ½⟨‖y − W x‖²⟩ = ½ tr(Σ_yy − 2 W Σ_xy + W Σ Wᵀ) of a total map W
        (evaluated as :func:`dlnfusion.losses.squared_moments`)."""
        from .losses import squared_moments

        W = np.asarray(W, dtype=np.float64).reshape(self.output_dim, self.input_dim)
        return float(squared_moments(W, self.sigma, self.global_solution(),
                                     max(self.min_loss(), 0.0)))

    def min_loss(self) -> float:
        """Loss at the global solution, ½(tr Σ_yy − tr Σ_yx Σ^{-1} Σ_xy): the noise floor."""
        W = self.global_solution()
        return float(0.5 * (np.trace(self.sigma_yy) - np.trace(W @ self.sigma_yx.T)))

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0, exact: bool = False) -> "Dataset":
        """Draw a finite dataset (x, y) jointly Gaussian with these moments.

        With ``exact=True`` the samples are transformed so that their empirical moments equal
        these moments to rounding (requires n ≥ D + d_out); otherwise they fluctuate by
        O(1/√n).
        """
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        D, d_out = self.input_dim, self.output_dim
        joint = np.block([[self.sigma, self.sigma_yx.T], [self.sigma_yx, self.sigma_yy]])
        w, v = np.linalg.eigh(joint)
        w = np.clip(w, 0.0, None)
        root = v * np.sqrt(w)  # joint = root rootᵀ
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, D + d_out))
        if exact:
            if n < D + d_out:
                raise ValueError(f"exact sampling needs n >= {D + d_out}, got {n}")
            # Make the empirical second moment of z exactly the identity.
            q, r = np.linalg.qr(z)
            z = q * np.sqrt(n) * np.sign(np.diag(r))
        samples = z @ root.T
        x, y = samples[:, :D], samples[:, D:]
        return Dataset(tuple(x[:, s] for s in self.slices), y, self.names)

    def __repr__(self) -> str:
        return (f"Stats(dims={self.dims}, names={self.names}, d_out={self.output_dim}, "
                f"sigma_yx={np.array2string(self.sigma_yx, precision=4)})")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A finite multimodal dataset: one (P, d_m) array per modality and targets (P, d_out)."""

    xs: tuple[np.ndarray, ...]
    y: np.ndarray
    names: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.xs, (list, tuple)) or len(self.xs) < 1:
            raise ValueError("xs must be a non-empty tuple of (P, d_m) arrays")
        xs = []
        for i, x in enumerate(self.xs):
            a = _as_array(f"xs[{i}]", x)
            if a.ndim == 1:
                a = a[:, None]
            xs.append(_readonly(_as_matrix(f"xs[{i}]", a)))
        y = _as_array("y", self.y)
        if y.ndim == 1:
            y = y[:, None]
        y = _readonly(_as_matrix("y", y))
        for i, a in enumerate(xs):
            if a.shape[0] != y.shape[0]:
                raise ValueError(f"xs[{i}] has {a.shape[0]} samples but y has {y.shape[0]}")
        names = tuple(self.names) if self.names else _default_names(len(xs))
        if len(names) != len(xs):
            raise ValueError(f"names must have {len(xs)} entries, got {names!r}")
        object.__setattr__(self, "xs", tuple(xs))
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "names", names)

    @property
    def n_samples(self) -> int:
        return int(self.y.shape[0])

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(x.shape[1] for x in self.xs)

    def stats(self, allow_singular: bool = True) -> Stats:
        """Empirical moments of this dataset (see :meth:`Stats.from_samples`)."""
        return Stats.from_samples(list(self.xs), self.y, self.names, allow_singular)
