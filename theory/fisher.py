"""The trace of a branch's Fisher information in a linear fusion network (Huang et al.,
CVPR 2025, eq. 7: Tr F_m = E‖∇_{θ_m} ℓ‖²), from the per-sample loss ℓ = ½‖y − ŷ‖².

Derived here, independently of the library's formula:

1. ``derive_fisher_gaussian``: the expectation of the squared per-sample gradient norm by
   brute force: symbolic weights, inputs x = C z and target y = T x + n ε written in standard
   normals (z, ε), the gradient by sympy differentiation of ℓ, its squared norm expanded as a
   polynomial in (z, ε) and every monomial replaced by its Gaussian moment (E z^k = (k − 1)!!).
   It equals the closed form tr(AᵀΣ_ee A) tr(BΣBᵀ) + 2‖AᵀΣ_ex Bᵀ‖² (Isserlis' theorem on the
   outer-product gradient −(Aᵀe)(Bx)ᵀ) for a two-layer late-fusion network of width 2 and for
   a three-layer network with a post-fusion layer and a vector output.
2. ``derive_batch_mean``: for a batch of b = 2 independent samples, E‖ḡ‖² = ‖Eg‖² +
   (E‖g‖² − ‖Eg‖²)/b, by the same brute-force expectation over both samples.
3. ``derive_two_layer_map``: a two-layer branch u, vᵀ with scalar input and output: the
   per-sample ‖∇ℓ‖² over both layers is e² x_m² (‖u‖² + ‖v‖²), and one gradient-descent step
   maps (w, p) = (u·v, ‖u‖² + ‖v‖²) to (w + ηpg + η²wg², p + 4ηwg + η²pg²) exactly.
4. ``derive_balanced_chain``: a balanced aligned chain W_1 = a r_1, W_l = a r_l r_{l−1}ᵀ,
   W_L = a r_{L−1}ᵀ (L = 3, 4): each layer's gradient is a^{L−1} g r_l r_{l−1}ᵀ (the structure
   is kept, a → a + η a^{L−1} g) and Σ_l ‖A_l‖²‖B_l‖² = L a^{2(L−1)}.
"""
import itertools

import numpy as np
import sympy as sp

from _checks import close_each, close_max, gauss_expect, random_params

# float64 evaluation of the same closed form on both sides.
RTOL_FLOAT = 1e-11


def _network(dims, widths_branch, post_dims, name):
    """Symbolic weights: branches (one list of matrices per modality) and post matrices."""
    branches = []
    for m, chain in enumerate(widths_branch):
        layers = []
        for l, (i, o) in enumerate(zip(chain[:-1], chain[1:])):
            layers.append(sp.Matrix(o, i, lambda r, c, m=m, l=l:
                                    sp.Symbol(f"{name}{m}_{l}_{r}{c}", real=True)))
        branches.append(layers)
    post = [sp.Matrix(o, i, lambda r, c, j=j: sp.Symbol(f"{name}p{j}_{r}{c}", real=True))
            for j, (i, o) in enumerate(zip(post_dims[:-1], post_dims[1:]))]
    return branches, post


def _chain(mats, n):
    P = sp.eye(n)
    for M in mats:
        P = M * P
    return P


def _forward(branches, post, xs, h_f):
    z = sp.zeros(h_f, 1)
    for layers, x in zip(branches, xs):
        z += _chain(layers, x.shape[0]) * x
    return _chain(post, h_f) * z


def _closed_form(branches, post, Sigma, Syx, Syy, dims):
    """The library's formula, written again from its definition (per weight matrix)."""
    D = sum(dims)
    offs = np.concatenate([[0], np.cumsum(dims)])
    h_f = branches[0][-1].shape[0]
    P = _chain(post, h_f)
    F = sp.Matrix.hstack(*[_chain(layers, d) for layers, d in zip(branches, dims)])
    W = P * F
    S_ee = Syy - W * Syx.T - Syx * W.T + W * Sigma * W.T
    S_ex = Syx - W * Sigma
    out = []

    def pair(A, B):
        M = A.T * S_ex * B.T
        return (A.T * S_ee * A).trace() * (B * Sigma * B.T).trace() + 2 * sum(v ** 2 for v in M)

    for m, layers in enumerate(branches):
        for l in range(len(layers)):
            A = P * _chain(layers[l + 1:], layers[l].shape[0])
            below = _chain(layers[:l], dims[m])
            B = sp.zeros(below.shape[0], D)
            B[:, int(offs[m]):int(offs[m + 1])] = below
            out.append(pair(A, B))
    d_out = W.shape[0]
    for j in range(len(post)):
        A = _chain(post[j + 1:], post[j].shape[0]) if j + 1 < len(post) else sp.eye(d_out)
        out.append(pair(A, _chain(post[:j], h_f) * F))
    return out, W


def _case(kind):
    """(dims, branch chains, post chain, d_out) of the two test networks."""
    if kind == "late":
        return (1, 1), [(1, 2, 1), (1, 2, 1)], (1,), 1
    return (1, 1), [(1, 1, 1), (1, 1, 1)], (1, 2), 2   # depth 3, L_f = 2, vector output


def _moments_symbols(dims, d_out):
    """x = C z (C lower triangular), y = T x + N ε; returns the symbols and the moments."""
    D = sum(dims)
    z = sp.symbols(f"z0:{D}", real=True)
    eps = sp.symbols(f"e0:{d_out}", real=True)
    C = sp.Matrix(D, D, lambda r, c: sp.Symbol(f"c{r}{c}", real=True) if c <= r else 0)
    T = sp.Matrix(d_out, D, lambda r, c: sp.Symbol(f"t{r}{c}", real=True))
    N = sp.Matrix(d_out, d_out, lambda r, c: sp.Symbol(f"n{r}{c}", real=True) if c <= r else 0)
    Sigma = C * C.T
    Syx = T * Sigma
    Syy = T * Sigma * T.T + N * N.T
    return z, eps, C, T, N, Sigma, Syx, Syy


def _per_sample(branches, post, dims, C, T, N, z, eps):
    x = C * sp.Matrix(z)
    y = T * x + N * sp.Matrix(eps)
    offs = np.concatenate([[0], np.cumsum(dims)])
    xs = [x[int(offs[m]):int(offs[m + 1]), :] for m in range(len(dims))]
    yhat = _forward(branches, post, xs, branches[0][-1].shape[0])
    r = y - yhat
    loss = sp.Rational(1, 2) * sum(v ** 2 for v in r)
    mats = [W for layers in branches for W in layers] + list(post)
    return [sum(sp.diff(loss, v) ** 2 for v in W) for W in mats], mats, loss


def derive_fisher_gaussian():
    """The brute-force Gaussian expectation of ‖∇_{W_l} ℓ‖² equals the closed form, layer by
    layer, for a two-layer late-fusion network (width 2) and a three-layer network with a
    post-fusion layer and two outputs. Checked against the library by check_fisher_gaussian."""
    for kind in ("late", "post"):
        dims, chains, post_dims, d_out = _case(kind)
        branches, post = _network(dims, chains, post_dims, "w")
        z, eps, C, T, N, Sigma, Syx, Syy = _moments_symbols(dims, d_out)
        sq, _, _ = _per_sample(branches, post, dims, C, T, N, z, eps)
        closed, _ = _closed_form(branches, post, Sigma, Syx, Syy, dims)
        for l, (a, b) in enumerate(zip(sq, closed)):
            brute = gauss_expect(a, list(z) + list(eps))
            assert sp.expand(brute - b) == 0, f"{kind} network, layer {l}: closed form differs"
    return True


def derive_batch_mean():
    """Two independent samples: E‖(g₁ + g₂)/2‖² = ‖Eg‖² + (E‖g‖² − ‖Eg‖²)/2 for every layer of
    a two-layer late-fusion network with one hidden unit per branch. Checked against the
    library by check_batch_mean."""
    dims, chains, post_dims, d_out = (1, 1), [(1, 1, 1), (1, 1, 1)], (1,), 1
    branches, post = _network(dims, chains, post_dims, "w")
    z1, e1, C, T, N, Sigma, Syx, Syy = _moments_symbols(dims, d_out)
    z2 = sp.symbols(f"q0:{sum(dims)}", real=True)
    e2 = sp.symbols(f"f0:{d_out}", real=True)
    mats = [W for layers in branches for W in layers]
    grads = []
    for z, e in ((z1, e1), (z2, e2)):
        _, _, loss = _per_sample(branches, post, dims, C, T, N, z, e)
        grads.append([[sp.diff(loss, v) for v in W] for W in mats])
    allvars = list(z1) + list(e1) + list(z2) + list(e2)
    for l in range(len(mats)):
        mean_sq = sum(((a + b) / 2) ** 2 for a, b in zip(grads[0][l], grads[1][l]))
        brute = gauss_expect(mean_sq, allvars)
        full = gauss_expect(sum(a ** 2 for a in grads[0][l]), list(z1) + list(e1))
        mean = sum(gauss_expect(a, list(z1) + list(e1)) ** 2 for a in grads[0][l])
        assert sp.expand(brute - (mean + (full - mean) / 2)) == 0, f"layer {l}"
    return True


def derive_two_layer_map():
    """The two-layer branch: ‖∇ℓ‖² = e²x²(‖u‖² + ‖v‖²) per sample, and the exact
    gradient-descent map of (w, p). Checked against the library by check_two_layer_map."""
    h = 3
    u = sp.Matrix(sp.symbols(f"u0:{h}", real=True))
    v = sp.Matrix(sp.symbols(f"v0:{h}", real=True))
    x, y, eta = sp.symbols("x y eta", real=True)
    other = sp.Symbol("o", real=True)                 # the other branch's output
    e = y - (v.T * u)[0] * x - other
    loss = e ** 2 / 2
    sq = sum(sp.diff(loss, s) ** 2 for s in list(u) + list(v))
    w, p = (u.T * v)[0], (u.T * u)[0] + (v.T * v)[0]
    assert sp.expand(sq - e ** 2 * x ** 2 * p) == 0
    # A population step: the gradient is −g v (for u) and −g u (for v), g = E[x e] (scalar).
    g = sp.Symbol("g", real=True)
    u1, v1 = u + eta * g * v, v + eta * g * u
    w1, p1 = (u1.T * v1)[0], (u1.T * u1)[0] + (v1.T * v1)[0]
    assert sp.expand(w1 - (w + eta * p * g + eta ** 2 * w * g ** 2)) == 0
    assert sp.expand(p1 - (p + 4 * eta * w * g + eta ** 2 * p * g ** 2)) == 0
    # And E[e² x²] = E[e²]E[x²] + 2E[xe]² for a jointly Gaussian pair (x = σz₁, e = αz₁ + βz₂).
    sig, al, be = sp.symbols("sigma alpha beta", positive=True)
    z1, z2 = sp.symbols("z1 z2", real=True)
    xx, ee = sig * z1, al * z1 + be * z2
    lhs = gauss_expect(ee ** 2 * xx ** 2, [z1, z2])
    rhs = gauss_expect(ee ** 2, [z1, z2]) * sig ** 2 + 2 * gauss_expect(xx * ee, [z1, z2]) ** 2
    assert sp.expand(lhs - rhs) == 0
    return True


def _orthonormal(h, k, seed):
    """k orthonormal rational vectors of length h (exact): Gram-Schmidt on integer vectors
    gives orthogonal rational vectors; normalizing them keeps square roots, which sympy
    handles exactly."""
    rng = np.random.default_rng(seed)
    vecs = []
    for _ in range(k):
        v = sp.Matrix([int(a) for a in rng.integers(-3, 4, size=h)])
        for q in vecs:
            v = v - (q.T * v)[0] * q
        vecs.append(v / sp.sqrt((v.T * v)[0]))
    return vecs


def derive_balanced_chain():
    """Balanced aligned chains of depth 3 and 4: the gradient of every layer is
    a^{L−1} g r_l r_{l−1}ᵀ and Σ_l ‖A_l‖²‖B_l‖² = L a^{2(L−1)}. Checked against the library by
    check_balanced_chain."""
    a, g = sp.symbols("a g", positive=True)
    for L in (3, 4):
        r = [sp.Matrix([1])] + _orthonormal(3, L - 1, L) + [sp.Matrix([1])]
        mats = [a * r[l + 1] * r[l].T for l in range(L)]
        total = 0
        for l in range(L):
            A = _chain(mats[l + 1:], mats[l].shape[0])
            B = _chain(mats[:l], 1)
            # Population gradient of ½E(y − w x)² w.r.t. W_l is −Aᵀ g Bᵀ (g = E[x e]).
            grad = A.T * g * B.T
            assert sp.simplify(grad - a ** (L - 1) * g * r[l + 1] * r[l].T) == sp.zeros(
                *grad.shape)
            total += sp.simplify(sum(v ** 2 for v in A) * sum(v ** 2 for v in B))
        assert sp.simplify(total - L * a ** (2 * (L - 1))) == 0
        w = _chain(mats, 1)[0]
        assert sp.simplify(w - a ** L) == 0
    return True


# ---------------------------------------------------------------------- checks
def _numeric_case(kind, seed):
    import dlnfusion as dln

    dims, chains, post_dims, d_out = _case(kind)
    depth = len(chains[0]) - 1 + len(post_dims) - 1
    spec = (dln.NetworkSpec.fusion(2, 2, width=2) if kind == "late"
            else dln.NetworkSpec.fusion(3, 2, width=1, output_dim=2))
    assert spec.depth == depth
    rng = np.random.default_rng(seed)
    C = np.tril(rng.normal(size=(2, 2))) + 2 * np.eye(2)
    T = rng.normal(size=(d_out, 2))
    N = np.tril(rng.normal(size=(d_out, d_out))) * 0.3
    Sigma = C @ C.T
    stats = dln.Stats(Sigma, T @ Sigma, T @ Sigma @ T.T + N @ N.T, dims=dims)
    params = random_params(spec, seed, 0.7)
    return spec, stats, params, (C, T, N)


def _terms(params, stats):
    """rules.fisher_terms of the first run of ``params``, in float64."""
    import dlnfusion as dln
    import jax.numpy as jnp
    from dlnfusion import rules

    with dln.float64():
        one = dln.Params(tuple(tuple(jnp.asarray(np.asarray(W)[0]) for W in b)
                               for b in params.branches),
                         tuple(jnp.asarray(np.asarray(W)[0]) for W in params.post))
        full, mean = rules.fisher_terms(one, jnp.asarray(stats.sigma),
                                        jnp.asarray(rules.noise_covariance(stats)),
                                     jnp.asarray(stats.global_solution()))
        return np.asarray(full), np.asarray(mean)


def check_fisher_gaussian():
    """rules.fisher_trace (by layer and by branch) against the brute-force expectation of
    derive_fisher_gaussian, lambdified, at random weights and moments."""
    from dlnfusion import rules

    for kind, seed in itertools.product(("late", "post"), (0, 1)):
        spec, stats, params, (C, T, N) = _numeric_case(kind, seed)
        dims, chains, post_dims, d_out = _case(kind)
        branches, post = _network(dims, chains, post_dims, "w")
        z, eps, Cs, Ts, Ns, Sigma, Syx, Syy = _moments_symbols(dims, d_out)
        sq, mats, _ = _per_sample(branches, post, dims, Cs, Ts, Ns, z, eps)
        subs = {}
        for Msym, Mnum in zip(mats, params.matrices()):
            for (i, j), v in np.ndenumerate(np.asarray(Mnum)[0]):
                subs[Msym[i, j]] = float(v)
        for Msym, Mnum in ((Cs, C), (Ts, T), (Ns, N)):
            for (i, j), v in np.ndenumerate(Mnum):
                if Msym[i, j] != 0:
                    subs[Msym[i, j]] = float(v)
        want = [float(gauss_expect(a.subs(subs), list(z) + list(eps))) for a in sq]
        got = rules.fisher_trace(spec, params, stats, by="layer")[0]
        close_each(got, want, RTOL_FLOAT, f"fisher_trace by layer ({kind})")
        depths = spec.branch_depths
        br = [sum(want[:depths[0]]), sum(want[depths[0]:depths[0] + depths[1]])]
        close_each(rules.fisher_trace(spec, params, stats)[0], br, RTOL_FLOAT,
                   f"fisher_trace by branch ({kind})")
        # The noise covariance is N Nᵀ by construction.
        # (float64 rounding of Σ_yy − W*ΣW*ᵀ relative to its largest entry)
        close_max(rules.noise_covariance(stats), N @ N.T, 1e-9, "noise_covariance")
        full, mean = _terms(params, stats)
        close_each(np.asarray(full), want, RTOL_FLOAT, f"fisher_terms ({kind})")
        assert np.all(np.asarray(mean) <= np.asarray(full) * (1 + 1e-12))
    return True


def check_batch_mean():
    """rules.fisher_trace with batch_size b against ‖Eg‖² + (E‖g‖² − ‖Eg‖²)/b built from the
    derivation's two terms (b = 2: the brute force of derive_batch_mean; b = 7 by the same
    formula) at random weights."""
    from dlnfusion import rules

    spec, stats, params, _ = _numeric_case("post", 3)
    full = rules.fisher_trace(spec, params, stats, by="layer")[0]
    _, mean = _terms(params, stats)
    for b in (2, 7):
        got = rules.fisher_trace(spec, params, stats, by="layer", batch_size=b)[0]
        close_each(got, np.asarray(mean) + (full - np.asarray(mean)) / b, RTOL_FLOAT,
                   f"fisher_trace batch_size={b}")
    return True


def check_two_layer_map():
    """reduced.fisher_late_fusion at depth 2: its first steps against the (w, p) map iterated
    in numpy, and Tr F against E[e²]Σ_mm + 2g² times p."""
    import dlnfusion as dln
    from dlnfusion import reduced as rd

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.5)
    S = np.asarray(stats.sigma)
    s = np.asarray(stats.sigma_yx).reshape(-1)
    eta, w, p = 0.04, np.array([1e-3, 2e-3]), np.array([5e-3, 4e-3])
    res = rd.fisher_late_fusion(stats, 2, eta, w, 5, init_norms=p)
    for k in range(6):
        g = s - S @ w
        ee = float(stats.sigma_yy[0, 0]) - 2 * s @ w + w @ S @ w
        close_each(res.w[k], w, RTOL_FLOAT, f"w at step {k}")
        close_each(res.trace[k], (ee * np.diag(S) + 2 * g ** 2) * p, 1e-9,
                   f"trace at step {k}")
        w, p = w + eta * p * g + eta ** 2 * w * g ** 2, p + 4 * eta * w * g + eta ** 2 * p * g ** 2
    return True


def check_balanced_chain():
    """theory.fisher.balanced_chain_params builds the chain of derive_balanced_chain (product w0,
    every layer of norm w0^{1/L}, balanced), and reduced.fisher_late_fusion's first steps
    follow a → a + η a^{L−1} g with Tr F = E[e²x²] L a^{2(L−1)}; rules.fisher_trace on the
    chain's weights gives the same Tr F at t = 0."""
    import dlnfusion as dln
    from dlnfusion import reduced as rd, rules, theory as th

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.3)
    S = np.asarray(stats.sigma)
    s = np.asarray(stats.sigma_yx).reshape(-1)
    for L in (3, 4):
        spec = dln.NetworkSpec.fusion(L, L, width=5)
        w0 = np.array([0.02, 0.01])
        params = th.fisher.balanced_chain_params(spec, w0, seeds=[4])
        maps = dln.networks.total_maps(spec, dln.Params.from_matrices(
            spec, [np.asarray(W)[0] for W in params.matrices()]))
        close_each([float(np.asarray(mp).reshape(())) for mp in maps], w0, RTOL_FLOAT,
                   "balanced_chain_params product")
        for W, m in zip(params.matrices(), np.repeat([0, 1], L)):
            close_each(np.linalg.norm(np.asarray(W)[0]), w0[m] ** (1 / L), RTOL_FLOAT,
                       "layer norm")
        res = rd.fisher_late_fusion(stats, L, 0.05, w0, 3)
        a = w0 ** (1 / L)
        for k in range(4):
            w = a ** L
            g = s - S @ w
            ee = float(stats.sigma_yy[0, 0]) - 2 * s @ w + w @ S @ w
            close_each(res.w[k], w, RTOL_FLOAT, f"chain w at step {k} (L={L})")
            close_each(res.trace[k], (ee * np.diag(S) + 2 * g ** 2) * L * a ** (2 * (L - 1)),
                       1e-9, f"chain trace at step {k}")
            a = a + 0.05 * a ** (L - 1) * g
        close_each(rules.fisher_trace(spec, params, stats)[0], res.trace[0], 1e-9,
                   "fisher_trace on the chain")
    return True


def derive_all():
    return all([derive_fisher_gaussian(), derive_batch_mean(), derive_two_layer_map(),
                derive_balanced_chain()])


def check_all():
    return all([check_fisher_gaussian(), check_batch_mean(), check_two_layer_map(),
                check_balanced_chain()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():
        print("fisher:", derive_all(), "checked against dlnfusion:", check_all())
