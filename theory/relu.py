"""Two-layer ReLU networks on Gaussian inputs (dlnfusion.losses.relu_gram,
relu_two_layer_moments; dlnfusion.training.objectives' ReLU objectives;
dlnfusion.theory.predict_times_relu, predict_times_early_relu).

1. For a scalar x: relu(w x) = relu(w) relu(x) + relu(−w) relu(−x) (four sign cases).
2. For centered jointly Gaussian (y, u): E[y relu(u)] = ½ E[y u] (write y = βu + ε with ε
   independent of u; E[u relu(u)] = ½E[u²]); and for r linear in x and any a,
   E[r 1{a·x > 0} x] = ½ E[r x] (x ↦ −x maps the half-space onto its complement).
3. E[relu(u) relu(u')] = (p sin θ + (π − θ) c)/2π, cos θ = c/p (c the covariance, p the
   product of the standard deviations): the integral in polar coordinates; its derivatives
   dK/dc = (π − θ)/2π and dK/dp = sin θ/2π are finite (the library's custom derivative).
4. Paired units (a, v), (−a, −v) make the function linear, ½ V A x, and on such networks the
   ReLU loss and its gradient equal the linear ones at weights (V, A)/√2 with the gradient
   halved: gradient descent at η on the ReLU network is gradient descent at η/2 on the linear
   one, whose total map ½ V A goes to W*; the ReLU total weight V A goes to 2W*.
5. Without pairing: relu(u) − relu(−u) = u, so f(x) − f(−x) = V A x for every two-layer ReLU
   network f; one that computes the target w*·x exactly has V A = 2w*.
6. Early fusion (vector input, one hidden layer): at small weights the residual is the
   linear target, and every gradient of the ReLU network is half the linear network's
   (item 2 for each unit): its first phase is linear early fusion at η/2
   (theory.relu.predict_times_early_relu).
"""
import numpy as np
import sympy as sp

from _checks import close_max as _close


def derive_scalar_decomposition():
    """relu(w x) = relu(w) relu(x) + relu(−w) relu(−x) in all four sign cases. Its library
    counterpart, the four-feature objective, is checked by check_relu_objectives."""
    w, x = sp.symbols("w x", real=True)
    relu = lambda z: sp.Max(z, 0)  # noqa: E731
    lhs, rhs = relu(w * x), relu(w) * relu(x) + relu(-w) * relu(-x)
    for sw in (1, -1):
        for sx in (1, -1):
            a, b = sp.symbols("a b", positive=True)
            sub = {w: sw * a, x: sx * b}
            assert sp.simplify(lhs.subs(sub) - rhs.subs(sub)) == 0
    return True


def derive_half_drive():
    """E[u relu(u)] = ½E[u²] for u ~ N(0, s²); with y = βu + ε (ε ⟂ u) this is
    E[y relu(u)] = ½E[yu]. The indicator form: E[u² 1{u > 0}] = ½E[u²], E[u v 1{u>0}] = ½E[uv]
    for independent v, which give E[r 1{a·x > 0} x] = ½E[r x] in a basis where a·x = u. Its
    library counterpart (the cross term of relu_two_layer_moments) is checked by
    check_relu_objectives."""
    u = sp.Symbol("u", real=True)
    s = sp.Symbol("s", positive=True)
    pdf = sp.exp(-u ** 2 / (2 * s ** 2)) / (sp.sqrt(2 * sp.pi) * s)
    half = sp.integrate(u * u * pdf, (u, 0, sp.oo))
    full = sp.integrate(u * u * pdf, (u, -sp.oo, sp.oo))
    assert sp.simplify(half - full / 2) == 0 and sp.simplify(full - s ** 2) == 0
    # An independent coordinate v: E[u v 1{u>0}] = E[v] E[u 1{u>0}] = 0 = ½E[uv];
    # E[v² 1{u>0}] = ½E[v²] (P(u > 0) = ½).
    assert sp.simplify(sp.integrate(pdf, (u, 0, sp.oo)) - sp.Rational(1, 2)) == 0
    return True


def _kernel_expression():
    c, p = sp.symbols("c p", positive=True)
    theta = sp.acos(c / p)
    return c, p, theta, (p * sp.sin(theta) + (sp.pi - theta) * c) / (2 * sp.pi)


def derive_arccos_kernel():
    """The kernel's limits (θ = 0: E relu(u)² = p/2; θ = π/2: p/2π) and its derivatives."""
    c, p, theta, K = _kernel_expression()
    assert sp.simplify(K.subs(c, p) - p / 2) == 0
    assert sp.simplify(K.subs(c, 0) - p / (2 * sp.pi)) == 0
    assert sp.simplify(sp.diff(K, c) - (sp.pi - theta) / (2 * sp.pi)) == 0
    assert sp.simplify(sp.diff(K, p) - sp.sqrt(1 - c ** 2 / p ** 2) / (2 * sp.pi)) == 0
    return True


def derive_paired_units():
    """Two paired units on a scalar input x ~ N(0, σ²): the ReLU loss equals the linear loss
    at weights (v, a)/√2, and its gradients are half of the linear gradients there."""
    a, v, sig, s, yy = sp.symbols("a v sigma s yy", positive=True)
    # ŷ = v relu(a x) − v relu(−a x) = v a x; E[relu(ax)²] = a²σ²/2, E[relu(ax)relu(−ax)] = 0,
    # E[y relu(±a x)] = ±a s/2 (item 2).
    G = sp.Matrix([[a ** 2 * sig ** 2 / 2, 0], [0, a ** 2 * sig ** 2 / 2]])
    V = sp.Matrix([[v, -v]])
    cross = sp.Matrix([[a * s / 2, -a * s / 2]])
    relu_loss = sp.Rational(1, 2) * (yy - 2 * (V * cross.T)[0] + (V * G * V.T)[0])
    vt, at = v / sp.sqrt(2), a / sp.sqrt(2)
    W = 2 * vt * at        # the linear network with both units: total map Σ ṽ ã = v a
    lin_loss = sp.Rational(1, 2) * (yy - 2 * W * s + W ** 2 * sig ** 2)
    assert sp.simplify(relu_loss - lin_loss) == 0
    # ReLU total weight V A = v a − v(−a) = 2 v a, twice the linear total map.
    # Gradients: d/dv of the ReLU loss vs the linear gradient w.r.t. ṽ, mapped back.
    vv, aa = sp.symbols("vt at", positive=True)
    lin = sp.Rational(1, 2) * (yy - 2 * (2 * vv * aa) * s + (2 * vv * aa) ** 2 * sig ** 2)
    # In (ṽ, ã) coordinates the ReLU flow is dṽ/dt = (1/√2) dv/dt = −(1/√2) ∂L/∂v.
    relu_flow = -sp.diff(relu_loss, v) / sp.sqrt(2)
    lin_flow = -sp.diff(lin, vv).subs({vv: vt, aa: at})
    assert sp.simplify(relu_flow - lin_flow / 2) == 0
    return True


def check_arccos_kernel():
    """dlnfusion.losses.relu_gram against a quadrature of E[relu(u) relu(u')] in polar
    coordinates (mpmath, 20 digits), for acute, obtuse and equal directions; float64
    evaluation (1e-12)."""
    import mpmath as mp
    import jax.numpy as jnp

    from dlnfusion.losses import relu_gram

    S = np.array([[2.0, 0.6], [0.6, 1.0]])
    A = np.array([[1.0, 0.3], [-0.4, 1.2], [0.5, -2.0], [1.0, 0.3]])
    G = np.asarray(relu_gram(jnp.asarray(A), jnp.asarray(S)))
    L = np.linalg.cholesky(S)
    with mp.workdps(20):
        for j in range(len(A)):
            for k in range(j, len(A)):
                aj, ak = L.T @ A[j], L.T @ A[k]          # a·x = (Lᵀa)·z, z standard
                # Polar coordinates: ∫₀^∞ r³ e^{−r²/2} dr = 2, so the expectation is
                # (1/π)∫ relu(a_j·e_t) relu(a_k·e_t) dt, split where either factor vanishes.
                kinks = sorted({float(np.mod(np.arctan2(-a[0], a[1]) + q * np.pi, 2 * np.pi))
                                for a in (aj, ak) for q in (0, 1)} | {0.0, 2 * np.pi})
                g = lambda t: (max(aj[0] * mp.cos(t) + aj[1] * mp.sin(t), 0)  # noqa: E731
                               * max(ak[0] * mp.cos(t) + ak[1] * mp.sin(t), 0))
                ref = mp.quad(g, kinks) / mp.pi
                _close(G[j, k], float(ref), 1e-12, f"relu_gram[{j}, {k}]")
    return True


def check_relu_objectives():
    """The four-feature objective against the kernel objective (two independent routes to the
    same expectation; float64) and both against the sample mean over 400,000 draws (the
    Monte Carlo standard error, ~0.3 % here, sets that tolerance: 1.5 %)."""
    import jax
    import dlnfusion as dln
    from dlnfusion.training import objectives as ob

    for st in (dln.Stats.scalar_toy(2.0, 1.0, 0.5), dln.Stats.scalar_toy(1.0, 1.5, -0.8)):
        spec = dln.NetworkSpec.fusion(2, 2, width=6, activation="relu")
        p = dln.init_params(spec, jax.random.PRNGKey(0), "normal", 0.7)
        mo = ob.Moments.of(st)
        a = float(ob._population_relu_features(spec, p, mo)[0])
        b = float(ob._population_relu_kernel(spec, p, mo)[0])
        _close(a, b, 1e-12, "four-feature vs kernel objective")
        ga = jax.grad(lambda q: ob._population_relu_features(spec, q, mo)[0])(p)
        gb = jax.grad(lambda q: ob._population_relu_kernel(spec, q, mo)[0])(p)
        for x, y in zip(jax.tree_util.tree_leaves(ga), jax.tree_util.tree_leaves(gb)):
            _close(x, y, 1e-11, "gradients of the two objectives")
        ds = st.sample(400_000, seed=1)
        mc = float(ob._samples_squared(spec, p, ob.Samples.of(ds))[0])
        _close(a, mc, 0.015, "four-feature objective vs samples")
    return True


def check_paired_units():
    """predict_times_relu equals predict_times at half the learning rate from half the initial
    mode value (item 4), and the ReLU constants are the derived ones."""
    import dlnfusion as dln
    from dlnfusion import theory as th

    assert th.relu.RELU_WEIGHT_FACTOR == 2 and th.relu.RELU_RATE_FACTOR == 0.5
    st = dln.Stats.scalar_toy(2.0, 1.0, 0.3)
    a = th.predict_times_relu(st, 0.04, [1e-16, 3e-16])
    b = th.predict_times(st, 0.02, [0.5e-16, 1.5e-16])
    _close([a.t_A, a.t_B], [b.t_A, b.t_B], 1e-12, "predict_times_relu")
    return True


def derive_odd_part():
    """relu(u) − relu(−u) = u for both signs of u; hence f(x) − f(−x) = Σ_j v_j a_j·x = V A x
    for f(x) = Σ_j v_j relu(a_j·x), and f = w*·x forces V A = 2w* (item 5). Its library
    counterpart is the constant RELU_WEIGHT_FACTOR, asserted by check_paired_units."""
    relu = lambda z: sp.Max(z, 0)  # noqa: E731
    b = sp.Symbol("b", positive=True)
    for u in (b, -b):
        assert sp.simplify(relu(u) - relu(-u) - u) == 0
    # Two units on a two-dimensional input, symbolic weights: the odd part is V A x.
    x = sp.Matrix(sp.symbols("x0 x1", real=True))
    A = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"a_{i}{j}", real=True))
    V = sp.Matrix([sp.symbols("v0 v1", real=True)]).T
    odd = sum(V[j] * ((A[j, :] * x)[0] - (-(A[j, :] * x)[0])) / 2 for j in range(2))
    assert sp.expand(2 * odd - 2 * (V.T * A * x)[0]) == 0
    return True


def derive_early_fusion_half_drive():
    """Item 6: for a unit with pre-activation u = a·x and a residual r = c·x linear in x, the
    ReLU gradients E[r relu(u)] (output weight) and v E[r 1{u>0} x] (input weights) are half
    the linear ones, E[r u] and v E[r x]. In a basis x = (u, z) with z independent of u
    (Gaussian), r = c₁u + c₂z and every expectation factorizes into moments of u over the
    half line or the whole line times moments of z. Checked against the library's
    early-fusion objective by check_early_fusion_half_drive."""
    u, z = sp.symbols("u z", real=True)
    su, sz, c1, c2 = sp.symbols("sigma_u sigma_z c1 c2", positive=True)
    pu = sp.exp(-u ** 2 / (2 * su ** 2)) / (sp.sqrt(2 * sp.pi) * su)
    pz = sp.exp(-z ** 2 / (2 * sz ** 2)) / (sp.sqrt(2 * sp.pi) * sz)
    U = {(k, lo): sp.integrate(u ** k * pu, (u, lo, sp.oo)) for k in range(3)
         for lo in (0, -sp.oo)}
    Z = {k: sp.integrate(z ** k * pz, (z, -sp.oo, sp.oo)) for k in range(3)}
    # E[u^i z^j 1{u > lo}] = U[i, lo] Z[j]; r·u = c₁u² + c₂uz, r·z = c₁uz + c₂z².
    E = lambda terms, lo: sum(c * U[i, lo] * Z[j] for c, i, j in terms)  # noqa: E731
    for terms in ([(c1, 2, 0), (c2, 1, 1)],      # r u: E[r relu(u)] and the u-component
                  [(c1, 1, 1), (c2, 0, 2)]):     # r z: the z-component of E[r 1{u>0} x]
        assert sp.simplify(E(terms, 0) - E(terms, -sp.oo) / 2) == 0
    return True


def check_early_fusion_half_drive():
    """The library's early-fusion ReLU objective (arc-cosine kernel) has half the gradient of
    the linear network's at the same small weights, for correlated vector modalities; and
    predict_times_early_relu is predict_times_early at η/2 from w0/2. The neglected output
    ŷ ~ h ε² of weights of size ε = 1e-6 makes the residual linear to ~1e-11 (tolerance
    1e-9); the second comparison evaluates the same map (1e-12)."""
    import jax
    import dlnfusion as dln
    from dlnfusion import theory as th
    from dlnfusion.training import objectives as ob

    st = dln.Stats.from_teacher([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]],
                                [1.0, -0.5, 2.0], dims=(2, 1))
    mo = ob.Moments.of(st)
    relu = dln.NetworkSpec.fusion(2, 1, width=5, input_dims=(2, 1), activation="relu")
    lin = dln.NetworkSpec.fusion(2, 1, width=5, input_dims=(2, 1))
    p = dln.init_params(relu, jax.random.PRNGKey(4), "normal", 1e-6)
    gr = jax.jit(jax.grad(lambda q: ob._population_relu_kernel(relu, q, mo)[0]))(p)
    gl = jax.jit(jax.grad(lambda q: ob._population_squared(lin, q, mo)[0]))(p)
    for x, y in zip(jax.tree_util.tree_leaves(gr), jax.tree_util.tree_leaves(gl)):
        _close(x, 0.5 * np.asarray(y), 1e-9, "ReLU gradient vs half the linear gradient")
    toy = dln.Stats.scalar_toy(2.0, 1.0, 0.0)
    a = th.relu.predict_times_early_relu(toy, 0.04, 3e-17)
    b = th.predict_times_early(toy, 0.02, 1.5e-17)
    _close([a.t_A, a.t_B], [b.t_A, b.t_B], 1e-12, "predict_times_early_relu")
    return True


def derive_all():
    return all([derive_scalar_decomposition(), derive_half_drive(), derive_arccos_kernel(),
                derive_paired_units(), derive_odd_part(), derive_early_fusion_half_drive()])


def check_all():
    return all([check_arccos_kernel(), check_relu_objectives(), check_paired_units(),
                check_early_fusion_half_drive()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():  # JAX functions called directly compute in the caller's precision
        print("relu:", derive_all(), "checked against dlnfusion:", check_all())
