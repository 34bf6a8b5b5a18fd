"""Balancing methods in a two-layer late-fusion branch: the exact Gram-matrix map of joint
training, OGM and InfoReg (with added unimodal losses), OGM-GE's noise in mean field and its
exact law on the Gram entries, and InfoReg's leading-order slowdown.

1. ``derive_gram_map``: with u' = u + η(c g v − a(u − u_p)), v' = v + η(c g u − a(v − v_p))
   and u_p, v_p fixed, the Gram matrix G of [u, v, u_p, v_p] maps to T G Tᵀ with
   T = [[1 − ηa, ηcg, ηa, 0], [ηcg, 1 − ηa, 0, ηa], [0, 0, 1, 0], [0, 0, 0, 1]]; the gradient of
   ½E(y − Σ w_n x_n)² + (a/2)(‖u − u_p‖² + ‖v − v_p‖²) with respect to (u, v), scaled by c on
   the loss part, is (−c g v + a(u − u_p), −c g u + a(v − v_p)) (g = E[x_m e]): the update is
   gradient descent on that objective, which is what the transforms do. Added unimodal losses
   λ·½E(y − w_m x_m)² add −λ(s_m − Σ_mm w_m) v to the gradient: the drive becomes
   g + λ(s_m − Σ_mm w_m).
3. ``derive_ge_noise``: GE adds to the gradient g v of u (h entries) noise ξ with E ξ = 0,
   E ξξᵀ = σ² I, σ² = g²(|v|²/h − v̄²) (the tensor's own variance), and independent noise ζ to
   v's: the expected Gram matrix after the step is T G Tᵀ plus η²hσ² = η²g²(|v|² − h v̄²) in
   G_uu, the same with u and v swapped in G_vv, and nothing else.
3b. ``derive_ge_law``: the exact law of that noisy step on the Gram entries x = (|u|², u·v,
   |v|², e·u, e·v), e = 1/√h the all-ones direction (reduced.ogm_ge_two_layer). With
   p = u + kv, q = v + ku, the Gram-Schmidt coordinates e = (1, 0, 0), p = (e·p, l22, 0),
   q = (e·q, l32, l33), l22 = √(|p|² − (e·p)²), l32 = (p·q − (e·p)(e·q))/l22,
   l33 = √(|q|² − (e·q)² − l32²), reproduce their Gram entries; the noise vectors σ_u z, σ_v y
   (z, y standard normal in R^h, rotated with that basis: still standard normal) then give
   the new entries from their first three coordinates and the 2 × 2 matrix R of the squared
   norms and inner product of the rest, R ~ Wishart_2(h − 3, I) (Bartlett: R = AᵀA with
   A = [[a, b], [0, c]], a² ~ χ²_{h−3}, c² ~ χ²_{h−4}, b ~ N(0, 1)). The one-step moments
   E|u'|² = |p|² + hσ_u², Var|u'|² = 4σ_u²|p|² + 2hσ_u⁴, E u'·v' = p·q,
   Var u'·v' = σ_v²|p|² + σ_u²|q|² + hσ_u²σ_v², E e·u' = e·p follow by Isserlis.
4. ``derive_slowdown``: the linear recursion a_{k+1} = (1 + η(s − α)) a_k + ηα a_p from a_0 =
   a_p gives a_E = a_p (s r^E − α)/(s − α), r = 1 + η(s − α); α → 0 gives (1 + ηs)^E.
5. ``derive_deep_chain``: a deep branch of balanced aligned rank-one layers keeps its
   structure under every method, with one norm per branch (reduced.balancing_deep).
6. ``derive_shared_chain``: with shared layers fed along one fusion direction, the shared
   layer's gradient is the sum of the branches' drives along its own direction, so one more
   norm, for the shared chain, closes the reduction (intermediate fusion; with one-layer
   branches, L_f = 1, early fusion: the branch chain's length does not enter).
"""
import numpy as np
import sympy as sp

from _checks import close_each, close_max, gauss_expect

RTOL_FLOAT = 1e-12


def derive_gram_map():
    """T G Tᵀ is the Gram matrix after the step, and the step is gradient descent on the
    regulated objective. Checked against the library by check_gram_map."""
    h = 3
    vec = lambda n: sp.Matrix(sp.symbols(f"{n}0:{h}", real=True))  # noqa: E731
    u, v, up, vp = vec("u"), vec("v"), vec("p"), vec("q")
    eta, a, c, g = sp.symbols("eta a c g", real=True)
    u1 = u + eta * (c * g * v - a * (u - up))
    v1 = v + eta * (c * g * u - a * (v - vp))
    X = sp.Matrix.hstack(u, v, up, vp).T
    X1 = sp.Matrix.hstack(u1, v1, up, vp).T
    T = sp.Matrix([[1 - eta * a, eta * c * g, eta * a, 0], [eta * c * g, 1 - eta * a, 0, eta * a],
                   [0, 0, 1, 0], [0, 0, 0, 1]])
    assert sp.expand(X1 * X1.T - T * (X * X.T) * T.T) == sp.zeros(4, 4)
    # gradient of the scaled loss + proximal term: the drive g = s − Σ w (scalar toy, one
    # branch here, the other branch's output folded into s) is −∂L/∂w
    s_, S = sp.symbols("s Sigma", positive=True)
    w = (u.T * v)[0]
    L = c * (-s_ * w + S * w ** 2 / 2) + a / 2 * ((u - up).T * (u - up) + (v - vp).T * (v - vp))[0]
    gval = s_ - S * w
    for vecs, other, prev in ((u, v, up), (v, u, vp)):
        grad = sp.Matrix([sp.diff(L, x) for x in vecs])
        assert sp.expand(grad - (-c * gval * other + a * (vecs - prev))) == sp.zeros(h, 1)
    # an added unimodal loss λ·½E(y − w x_m)² = λ(½σ_yy − s_m w + ½Σ_mm w²) (its own s_m, Σ_mm;
    # the fused drive g kept symbolic, as the other branch enters it)
    lam, s_m, S_m = sp.symbols("lambda s_m Sigma_m", positive=True)
    L_uni = lam * (-s_m * w + S_m * w ** 2 / 2)
    for vecs, other in ((u, v), (v, u)):
        grad = sp.Matrix([sp.diff(L_uni, x) for x in vecs])
        assert sp.expand(grad + lam * (s_m - S_m * w) * other) == sp.zeros(h, 1)
    return True


def derive_ge_noise():
    """The expected Gram matrix after a noisy step (GE): the noise adds η²g²(|v|² − h v̄²) to
    G_uu and η²g²(|u|² − h ū²) to G_vv only. Checked against the library by check_ge_noise."""
    h = 3
    vec = lambda n: sp.Matrix(sp.symbols(f"{n}0:{h}", real=True))  # noqa: E731
    u, v, xi, zeta = vec("u"), vec("v"), vec("x"), vec("z")
    eta, k, g = sp.symbols("eta k g", real=True)
    var_u = g ** 2 * ((v.T * v)[0] / h - (sum(v) / h) ** 2)   # the variance of g v's entries
    var_v = g ** 2 * ((u.T * u)[0] / h - (sum(u) / h) ** 2)
    u1 = u + k * v + eta * xi                                 # k = η c g
    v1 = v + k * u + eta * zeta

    def expect(expr):
        """E over independent zero-mean ξ (variance var_u) and ζ (variance var_v) of a
        polynomial of degree ≤ 2 in them."""
        expr = sp.expand(expr)
        poly = sp.Poly(expr, *xi, *zeta)
        out = 0
        for monom, coef in poly.terms():
            powers = dict(zip(list(xi) + list(zeta), monom))
            nz = [x for x, p in powers.items() if p]
            if not nz:
                out += coef
            elif len(nz) == 1 and powers[nz[0]] == 2:
                out += coef * (var_u if nz[0] in xi else var_v)
        return out

    mean_u, mean_v = u + k * v, v + k * u
    assert sp.expand(expect((u1.T * u1)[0]) - (mean_u.T * mean_u)[0]
                     - eta ** 2 * g ** 2 * ((v.T * v)[0] - h * (sum(v) / h) ** 2)) == 0
    assert sp.expand(expect((v1.T * v1)[0]) - (mean_v.T * mean_v)[0]
                     - eta ** 2 * g ** 2 * ((u.T * u)[0] - h * (sum(u) / h) ** 2)) == 0
    assert sp.expand(expect((u1.T * v1)[0]) - (mean_u.T * mean_v)[0]) == 0
    return True


def derive_ge_law():
    """The reduced draw of OGM-GE's noisy step and its one-step moments (module docstring,
    3b). Checked against the library by check_ge_law."""
    # Gram-Schmidt coordinates of e, p, q reproduce their Gram entries
    ep, eq, pp, qq, pq = sp.symbols("ep eq pp qq pq", real=True)
    l22 = sp.sqrt(pp - ep ** 2)
    l32 = (pq - ep * eq) / l22
    l33 = sp.sqrt(qq - eq ** 2 - l32 ** 2)
    E3 = sp.Matrix([[1, 0, 0], [ep, l22, 0], [eq, l32, l33]])
    gram = sp.simplify(E3 * E3.T)
    assert sp.simplify(gram - sp.Matrix([[1, ep, eq], [ep, pp, pq], [eq, pq, qq]])) \
        == sp.zeros(3, 3)
    # the new entries from the first three noise coordinates and the rest's Gram R (the
    # rest written with two coordinates here; the identity is linear in R)
    su, sv = sp.symbols("sigma_u sigma_v", positive=True)
    z = sp.symbols("z1:6", real=True)
    y = sp.symbols("y1:6", real=True)
    a, b, c = sp.symbols("a b c", real=True)
    e = sp.Matrix([1, 0, 0, 0, 0])
    pv = sp.Matrix([ep, l22, 0, 0, 0])
    qv = sp.Matrix([eq, l32, l33, 0, 0])
    u1 = pv + su * sp.Matrix(z)
    v1 = qv + sv * sp.Matrix(y)
    r11 = z[3] ** 2 + z[4] ** 2
    r12 = z[3] * y[3] + z[4] * y[4]
    r22 = y[3] ** 2 + y[4] ** 2
    pz, qz = ep * z[0] + l22 * z[1], eq * z[0] + l32 * z[1] + l33 * z[2]
    py, qy = ep * y[0] + l22 * y[1], eq * y[0] + l32 * y[1] + l33 * y[2]
    lib = [pp + 2 * su * pz + su ** 2 * (z[0] ** 2 + z[1] ** 2 + z[2] ** 2 + r11),
           pq + sv * py + su * qz + su * sv * (z[0] * y[0] + z[1] * y[1] + z[2] * y[2] + r12),
           qq + 2 * sv * qy + sv ** 2 * (y[0] ** 2 + y[1] ** 2 + y[2] ** 2 + r22),
           ep + su * z[0], eq + sv * y[0]]
    direct = [(u1.T * u1)[0], (u1.T * v1)[0], (v1.T * v1)[0], (e.T * u1)[0], (e.T * v1)[0]]
    for got, want in zip(lib, direct):
        assert sp.simplify(got - want) == 0
    # Bartlett: AᵀA with A = [[a, b], [0, c]] has entries (a², ab, b² + c²)
    A = sp.Matrix([[a, b], [0, c]])
    assert sp.expand(A.T * A - sp.Matrix([[a ** 2, a * b], [a * b, b ** 2 + c ** 2]])) \
        == sp.zeros(2, 2)
    # one-step moments by Isserlis, in R^h with h = 4 (p, q general vectors)
    h = 4
    P = sp.Matrix(sp.symbols("P0:4", real=True))
    Q = sp.Matrix(sp.symbols("Q0:4", real=True))
    Z = sp.Matrix(sp.symbols("Z0:4", real=True))
    Y = sp.Matrix(sp.symbols("Y0:4", real=True))
    normals = list(Z) + list(Y)
    U, V = P + su * Z, Q + sv * Y
    PP, QQ, PQ = (P.T * P)[0], (Q.T * Q)[0], (P.T * Q)[0]
    uu, uv = (U.T * U)[0], (U.T * V)[0]
    assert sp.expand(gauss_expect(uu, normals) - (PP + h * su ** 2)) == 0
    assert sp.expand(gauss_expect(uu ** 2, normals) - (PP + h * su ** 2) ** 2
                     - (4 * su ** 2 * PP + 2 * h * su ** 4)) == 0
    assert sp.expand(gauss_expect(uv, normals) - PQ) == 0
    assert sp.expand(gauss_expect(uv ** 2, normals) - PQ ** 2
                     - (sv ** 2 * PP + su ** 2 * QQ + h * su ** 2 * sv ** 2)) == 0
    return True


def derive_slowdown():
    """The epoch factor F of InfoReg's proximal recursion and its α → 0 limit. Checked against
    the library by check_slowdown."""
    a_p, eta, s, al = sp.symbols("a_p eta s alpha", positive=True)
    k = sp.Symbol("k", integer=True, nonnegative=True)
    r = 1 + eta * (s - al)
    closed = a_p * (s * r ** k - al) / (s - al)
    assert sp.simplify(closed.subs(k, 0) - a_p) == 0
    step = r * closed + eta * al * a_p
    assert sp.simplify(step - closed.subs(k, k + 1)) == 0
    assert sp.simplify(sp.limit(closed, al, 0) - a_p * (1 + eta * s) ** k) == 0
    return True


def _gaps(sc):
    """Δ_m of InfoReg (Huang et al. 2025, eqs. 9-10) in numpy, written here from the paper so
    that the checks do not use the library's rule: the mean of s_m − s_n over the modalities
    n with s_n < s_m, 0 when there is none."""
    sc = np.asarray(sc, float)
    out = np.zeros(sc.size)
    for m in range(sc.size):
        below = [sc[m] - sc[n] for n in range(sc.size) if sc[n] < sc[m]]
        out[m] = np.mean(below) if below else 0.0
    return out


def check_gram_map():
    """theory.initial_gram and reduced.balancing_two_layer against the vector updates iterated
    in numpy (OGM's coefficient and InfoReg's proximal term written here from the papers, with
    the numpy gaps of _gaps), for a few steps of every method."""
    import dlnfusion as dln
    from dlnfusion import reduced as rd, theory as th

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
    S = np.asarray(stats.sigma)
    s = np.asarray(stats.sigma_yx).reshape(-1)
    spec = dln.NetworkSpec.fusion(2, 2, width=5)
    p = dln.init_batch(spec, [2], scale=0.3)
    G = th.initial_gram(spec, p)[0]
    us = [np.asarray(p.branches[m][0])[0, :, 0] for m in range(2)]
    vs = [np.asarray(p.branches[m][1])[0, 0, :] for m in range(2)]
    close_each(G[0, 0, 1], us[0] @ vs[0], RTOL_FLOAT, "initial_gram w_A")
    eta, steps = 0.05, 7
    for method in ("joint", "ogm", "inforeg"):
        kw = dict(epoch=3, window="always") if method == "inforeg" else {}
        res = rd.balancing_two_layer(stats, eta, G, steps, balancing=method, **kw)
        u, v = [x.copy() for x in us], [x.copy() for x in vs]
        up, vp = [x.copy() for x in u], [x.copy() for x in v]
        for n in range(steps):
            w = np.array([u[m] @ v[m] for m in range(2)])
            close_each(res.w[n], w, 1e-10, f"{method} w at step {n}")
            g = s - S @ w
            sc = s * w - 0.5 * np.diag(S) * w ** 2
            c, a = np.ones(2), np.zeros(2)
            if method == "ogm":
                for m in range(2):
                    if sc[m] > 0 and sc[1 - m] > 0 and sc[m] / sc[1 - m] > 1:
                        c[m] = 1 - np.tanh(0.8 * sc[m] / sc[1 - m])
                    elif sc[m] > 0 and sc[1 - m] <= 0:
                        c[m] = 0.0
            if method == "inforeg":
                if n % 3 == 0:
                    up, vp = [x.copy() for x in u], [x.copy() for x in v]
                gaps = _gaps(sc)
                a = np.where(gaps > 0, np.exp(0.9 * np.tanh(gaps)), 0.0)
            u, v = ([u[m] + eta * (c[m] * g[m] * v[m] - a[m] * (u[m] - up[m])) for m in range(2)],
                    [v[m] + eta * (c[m] * g[m] * u[m] - a[m] * (v[m] - vp[m])) for m in range(2)])
    return True


def check_ge_noise():
    """reduced.balancing_two_layer with method "ogm_ge" and with ``unimodal`` against the Gram
    map iterated in numpy: T G Tᵀ with the drive g + λ(s − diag(Σ) w) and OGM's coefficient,
    plus η²d²(G_vv, G_uu) on the diagonal while the modulation is on (entry means neglected,
    as the library states)."""
    import dlnfusion as dln
    from dlnfusion import reduced as rd, theory as th

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
    S = np.asarray(stats.sigma)
    s = np.asarray(stats.sigma_yx).reshape(-1)
    spec = dln.NetworkSpec.fusion(2, 2, width=5)
    G0 = th.initial_gram(spec, dln.init_batch(spec, [4], scale=0.3))[0]
    eta, steps = 0.05, 9
    for method, lam in (("ogm_ge", 0.0), ("ogm_ge", 0.7), ("joint", 0.7)):
        res = rd.balancing_two_layer(stats, eta, G0, steps, balancing=method, unimodal=lam)
        G = np.array(G0[:, :2, :2])
        for n in range(steps):
            w = G[:, 0, 1]
            close_each(res.w[n], w, 1e-10, f"{method} (λ = {lam}) w at step {n}")
            d = s - S @ w + lam * (s - np.diag(S) * w)
            sc = s * w - 0.5 * np.diag(S) * w ** 2
            c = np.ones(2)
            if method == "ogm_ge":
                for m in range(2):
                    if sc[m] > 0 and sc[1 - m] > 0 and sc[m] / sc[1 - m] > 1:
                        c[m] = 1 - np.tanh(0.8 * sc[m] / sc[1 - m])
                    elif sc[m] > 0 and sc[1 - m] <= 0:
                        c[m] = 0.0
            new = np.empty_like(G)
            for m in range(2):
                T = np.array([[1.0, eta * c[m] * d[m]], [eta * c[m] * d[m], 1.0]])
                new[m] = T @ G[m] @ T.T
                if method == "ogm_ge" and np.any(c < 1):
                    new[m] += eta ** 2 * d[m] ** 2 * np.diag([G[m, 1, 1], G[m, 0, 0]])
            G = new
    return True


def check_ge_law():
    """theory.noise_gram and the reduced draw of reduced.ogm_ge_two_layer against the
    h-dimensional noisy step drawn in numpy (2·10⁵ draws each: means, standard deviations and
    the correlations of the five entries within five standard errors) and against the
    one-step moments of derive_ge_law. Then reduced.ogm_ge_two_layer where the modulation is
    off: two identical branches on symmetric statistics keep equal scores, OGM's coefficient
    stays 1 and GE adds nothing, so every path must follow joint training's Gram map
    (reduced.balancing_two_layer) to round-off. (Against the noisy network itself:
    tests/test_transforms.py.)"""
    import jax
    import jax.numpy as jnp

    import dlnfusion as dln
    from dlnfusion import reduced as rd, theory as th
    from dlnfusion.reduced.balancing import _ge_gram_step

    spec = dln.NetworkSpec.fusion(2, 2, width=7)
    params = dln.init_batch(spec, [3], scale=0.4)
    x0 = th.noise_gram(spec, params)[0]                       # (2, 5)
    u = np.asarray(params.branches[0][0])[0, :, 0]
    v = np.asarray(params.branches[0][1])[0, 0, :]
    h = u.size
    e = np.ones(h) / np.sqrt(h)
    close_each(x0[0], [u @ u, u @ v, v @ v, e @ u, e @ v], RTOL_FLOAT, "noise_gram")
    k, su, sv, N = 0.3, 0.2, 0.35, 200_000
    rng = np.random.default_rng(0)
    p_, q_ = u + k * v, v + k * u
    U = p_ + su * rng.normal(size=(N, h))
    V = q_ + sv * rng.normal(size=(N, h))
    direct = np.stack([np.sum(U * U, 1), np.sum(U * V, 1), np.sum(V * V, 1), U @ e, V @ e], 1)
    with dln.float64():
        X = jnp.broadcast_to(jnp.asarray(x0[0]), (N, 5))
        reduced = np.asarray(_ge_gram_step(X, k, su, sv, jax.random.PRNGKey(1), h))
    for i in range(5):
        for name, fn in (("mean", np.mean), ("sd", np.std)):
            a, b = fn(reduced[:, i]), fn(direct[:, i])
            sd = direct[:, i].std()
            # standard errors: sd/√N for a mean, ≈ sd·√((κ − 1)/4N) for an sd (κ the kurtosis)
            kurt = np.mean((direct[:, i] - direct[:, i].mean()) ** 4) / sd ** 4
            se = sd / np.sqrt(N) if name == "mean" else sd * np.sqrt((kurt - 1) / (4 * N))
            assert abs(a - b) < 5 * np.sqrt(2) * se, f"entry {i} {name}: {a} vs {b} (se {se})"
    cr, cd = np.corrcoef(reduced.T), np.corrcoef(direct.T)
    assert np.max(np.abs(cr - cd)) < 5 * np.sqrt(2) / np.sqrt(N) * 2, (cr, cd)
    pp, qq, pq = p_ @ p_, q_ @ q_, p_ @ q_
    for i, (mean, var) in enumerate([(pp + h * su ** 2, 4 * su ** 2 * pp + 2 * h * su ** 4),
                                     (pq, sv ** 2 * pp + su ** 2 * qq + h * su ** 2 * sv ** 2)]):
        sd = np.sqrt(var)
        assert abs(reduced[:, i].mean() - mean) < 5 * sd / np.sqrt(N), (i, mean)
        assert abs(reduced[:, i].std() / sd - 1) < 5 * 2 / np.sqrt(N), (i, var)
    # one step of the chain: OGM's coefficient from the scores, the drive, GE's scales
    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.3)
    S, s = np.asarray(stats.sigma), np.asarray(stats.sigma_yx).reshape(-1)
    vecs = [(0.5 + 0.1 * rng.normal(size=h), 0.6 + 0.1 * rng.normal(size=h)),
            (0.2 + 0.1 * rng.normal(size=h), 0.25 + 0.1 * rng.normal(size=h))]
    x = np.array([[a @ a, a @ b, b @ b, e @ a, e @ b] for a, b in vecs])
    eta, P = 0.05, 40_000
    law = rd.ogm_ge_two_layer(stats, eta, x, h, 1, paths=P, record_every=1, stop_loss=None)
    w = x[:, 1]
    sc = s * w - 0.5 * np.diag(S) * w ** 2
    lead = int(np.argmax(sc))
    assert np.all(sc > 0) and sc[lead] > sc[1 - lead]
    c = np.ones(2)
    c[lead] = 1 - np.tanh(0.8 * sc[lead] / sc[1 - lead])
    d = s - S @ w
    for m, (a, b) in enumerate(vecs):
        k = eta * c[m] * d[m]
        su = eta * abs(d[m]) * np.std(b)                     # GE: the gradient's own sd
        sv = eta * abs(d[m]) * np.std(a)
        p_, q_ = a + k * b, b + k * a
        mean, var = p_ @ q_, sv ** 2 * (p_ @ p_) + su ** 2 * (q_ @ q_) + h * su ** 2 * sv ** 2
        close_each(law.w_mean[0, m], w[m], RTOL_FLOAT, "ogm_ge_two_layer w at step 0")
        assert abs(law.w_mean[1, m] - mean) < 5 * np.sqrt(var / P), (m, law.w_mean[1], mean)
        # the sd of a sample sd: ≈ sd·√((κ − 1)/4P), κ ≤ 5 here
        assert abs(law.w_sd[1, m] / np.sqrt(var) - 1) < 5 * np.sqrt(4 / (4 * P)), m
    return True


def check_slowdown():
    """theory.inforeg_slowdown against ln(F)/(E ln(1 + ηs)) with F from the recursion iterated
    in numpy."""
    from dlnfusion import theory as th

    for s, eta, al, E in ((4.0, 0.04, 1.0, 10), (2.5, 0.01, 0.3, 25), (1.0, 0.05, 2.0, 5)):
        a = 1.0
        for _ in range(E):
            a = (1 + eta * (s - al)) * a + eta * al * 1.0
        want = np.log(a) / (E * np.log1p(eta * s))
        close_each(th.inforeg_slowdown(s, eta, al, E).value, want, 1e-12, "inforeg_slowdown")
    return True


def derive_deep_chain():
    """A deep branch (L = 3) of exactly balanced, aligned rank-one layers W_l = a r_l r_{l−1}ᵀ
    (unit vectors; scalar input and output): the gradient of every layer of
    c·(½E(y − ŷ)²) + (α/2)Σ_l‖W_l − W_l^p‖² (aligned W_l^p = a_p r_l r_{l−1}ᵀ) is a multiple of
    its own direction r_l r_{l−1}ᵀ, the same multiple −(c d a^{L−1} − α(a − a_p)) for every
    layer, so a step keeps balance and alignment and moves a by η(c d a^{L−1} − α(a − a_p))
    (balancing_deep, with d the drive of the branch's map w = a^L); and the per-sample
    gradients' squared norms sum to e² x² L a^{2(L−1)}, so Tr F = E[e² x²] L a^{2(L−1)} with
    E[e² x²] = E[e²]Σ_mm + 2g² for jointly Gaussian (e, x) (Isserlis). Checked against the
    library by check_deep_chain."""
    a, ap, alpha, x, y = sp.symbols("a a_p alpha x y", real=True)
    r0 = sp.Matrix([1])
    r1 = sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])
    r2 = sp.Matrix([sp.Rational(5, 13), sp.Rational(12, 13)])
    r3 = sp.Matrix([1])
    dirs = [r1 * r0.T, r2 * r1.T, r3 * r2.T]
    syms = [sp.Matrix(D.shape[0], D.shape[1], lambda i, j, l=l: sp.Symbol(f"W{l}_{i}{j}"))
            for l, D in enumerate(dirs)]
    yhat = (syms[2] * syms[1] * syms[0] * sp.Matrix([x]))[0]
    loss = sp.Rational(1, 2) * (y - yhat) ** 2
    at = {sym: a * D[i, j] for W, D in zip(syms, dirs) for (i, j), sym in np.ndenumerate(
        np.array(W.tolist(), dtype=object))}
    L = 3
    total = 0
    for W, D in zip(syms, dirs):
        grad = sp.Matrix(W.shape[0], W.shape[1], lambda i, j: sp.diff(loss, W[i, j])).subs(at)
        # e = y − ŷ at the aligned weights; the per-sample gradient is −e x a^{L−1} D
        err = y - a ** L * x
        assert sp.simplify(grad + err * x * a ** (L - 1) * D) == sp.zeros(*D.shape)
        total += sum(g ** 2 for g in grad)
        # the proximal term's gradient α(W_l − W_l^p) = α(a − a_p) D points along D too, and
        # ‖D‖ = 1, so the step of the layer's scale is η(c E[e x] a^{L−1} − α(a − a_p))
        W_p = ap * D
        prox = alpha * (a * D - W_p)
        assert sp.simplify(prox - alpha * (a - ap) * D) == sp.zeros(*D.shape)
        assert sp.simplify(sum(v ** 2 for v in D) - 1) == 0
    assert sp.simplify(total - (y - a ** L * x) ** 2 * x ** 2 * L * a ** (2 * (L - 1))) == 0
    # Isserlis for a zero-mean Gaussian pair: E[e²x²] = E[e²]E[x²] + 2E[ex]²
    se, sx, rho = sp.symbols("sigma_e sigma_x rho", positive=True)
    z1, z2 = sp.symbols("z1 z2", real=True)
    pdf = sp.exp(-(z1 ** 2 + z2 ** 2) / 2) / (2 * sp.pi)
    ee = se * z1
    xx = sx * (rho * z1 + sp.sqrt(1 - rho ** 2) * z2)
    m4 = sp.integrate(sp.integrate(sp.expand(ee ** 2 * xx ** 2) * pdf, (z1, -sp.oo, sp.oo)),
                      (z2, -sp.oo, sp.oo))
    assert sp.simplify(m4 - (se ** 2 * sx ** 2 + 2 * (rho * se * sx) ** 2)) == 0
    return True


def derive_shared_chain():
    """Intermediate fusion (two scalar branches of L_f = 2 layers, P = 1 shared layer, all
    balanced and aligned: W_m^1 = a_m r_m, W_m^2 = a_m f r_mᵀ, W^3 = X fᵀ with a common
    fusion direction f): with the loss Σ_m c_m-scaled on the branches' gradients, every branch
    layer's gradient is −d_m a_m^{L_f−1} X^P times its own direction and the shared layer's is
    −Σ_m d_m a_m^{L_f} X^{P−1} times its own (d_m = E[x_m e], the drive; w_m = a_m^{L_f} X^P),
    so a step keeps the structure and moves (a_A, a_B, X) as balancing_deep states. Its
    library counterpart, balancing_deep with fusion_layer < depth, is checked by
    check_deep_chain."""
    aA, aB, X, xA, xB, y = sp.symbols("a_A a_B X x_A x_B y", real=True)
    rA = sp.Matrix([sp.Rational(3, 5), sp.Rational(4, 5)])
    rB = sp.Matrix([sp.Rational(-4, 5), sp.Rational(3, 5)])
    f = sp.Matrix([sp.Rational(5, 13), sp.Rational(12, 13)])
    dirs = {"A1": rA, "A2": f * rA.T, "B1": rB, "B2": f * rB.T, "S": f.T}
    W = {k: sp.Matrix(D.shape[0], D.shape[1], lambda i, j, k=k: sp.Symbol(f"W{k}_{i}{j}"))
         for k, D in dirs.items()}
    hidden = W["A2"] * W["A1"] * xA + W["B2"] * W["B1"] * xB
    yhat = (W["S"] * hidden)[0]
    loss = sp.Rational(1, 2) * (y - yhat) ** 2
    scale = {"A1": aA, "A2": aA, "B1": aB, "B2": aB, "S": X}
    at = {}
    for k, D in dirs.items():
        for i in range(D.shape[0]):
            for j in range(D.shape[1]):
                at[W[k][i, j]] = scale[k] * D[i, j]
    e = y - (aA ** 2 * X * xA + aB ** 2 * X * xB)
    assert sp.simplify(yhat.subs(at) - (y - e)) == 0
    want = {"A1": e * xA * aA * X, "A2": e * xA * aA * X, "B1": e * xB * aB * X,
            "B2": e * xB * aB * X, "S": e * (xA * aA ** 2 + xB * aB ** 2)}
    for k, D in dirs.items():
        grad = sp.Matrix(D.shape[0], D.shape[1], lambda i, j: sp.diff(loss, W[k][i, j])).subs(at)
        assert sp.simplify(grad + want[k] * D) == sp.zeros(*D.shape), k
        assert sp.simplify(sum(v ** 2 for v in D) - 1) == 0
    return True


def _reference_coefficients(method, n, sc, Ws, prev):
    """OGM's scale and InfoReg's proximal coefficient (epoch 3, always inside the window) of
    the numpy references in check_deep_chain, from the scores ``sc``; InfoReg refreshes the
    epoch-start weights ``prev`` every third step. Returns (c, a, prev)."""
    c, a = np.ones(2), np.zeros(2)
    if method == "ogm":
        lead = int(np.argmax(sc))
        if sc[lead] > 0 and sc[1 - lead] > 0:
            c[lead] = 1 - np.tanh(0.8 * sc[lead] / sc[1 - lead])
    if method == "inforeg":
        if n % 3 == 0:
            prev = [[W.copy() for W in br] for br in Ws]
        gaps = _gaps(sc)
        a = np.where(gaps > 0, np.exp(0.9 * np.tanh(gaps)), 0.0)
    return c, a, prev


def check_deep_chain():
    """reduced.balancing_deep against the full weight matrices of width-3, three-layer late and
    intermediate (L_f = 2) fusion networks iterated in numpy (joint, OGM and InfoReg, with and
    without unimodal losses), and its recorded Tr F against dlnfusion.rules.fisher_trace of
    those weights."""
    import dlnfusion as dln
    from dlnfusion import reduced as rd, rules

    stats = dln.Stats.scalar_toy(2.0, 1.0, 0.4)
    S = np.asarray(stats.sigma)
    s = np.asarray(stats.sigma_yx).reshape(-1)
    spec = dln.NetworkSpec.fusion(3, 3, width=3)
    p = dln.init_batch(spec, [1], scheme="balanced", scale=0.4, stats=stats)
    eta, steps = 0.05, 7
    for method, lam in (("joint", 0.0), ("ogm", 0.0), ("inforeg", 0.0), ("inforeg", 0.5)):
        kw = dict(epoch=3, window="always") if method == "inforeg" else {}
        res = rd.balancing_deep(stats, 3, eta, 0.4, steps, balancing=method, unimodal=lam, **kw)
        Ws = [[np.asarray(W)[0].copy() for W in br] for br in p.branches]
        prev = [[W.copy() for W in br] for br in Ws]
        for n in range(steps):
            maps = [br[2] @ br[1] @ br[0] for br in Ws]
            w = np.array([float(m[0, 0]) for m in maps])
            close_each(res.w[n], w, 1e-10, f"{method} w at step {n}")
            params = dln.Params(tuple(tuple(np.asarray(W)[None] for W in br) for br in Ws), ())
            tr = np.asarray(rules.fisher_trace(spec, params, stats)).reshape(-1)
            close_each(res.trace[n], tr, 1e-9, f"{method} trace at step {n}")
            g = s - S @ w
            d = g + lam * (s - np.diag(S) * w)
            sc = s * w - 0.5 * np.diag(S) * w ** 2
            c, a, prev = _reference_coefficients(method, n, sc, Ws, prev)
            new = []
            for m, br in enumerate(Ws):
                W1, W2, W3 = br
                grads = [(W3 @ W2).T * d[m], W3.T @ W1.T * d[m], (W2 @ W1).T * d[m]]
                new.append([W + eta * (c[m] * G - a[m] * (W - P))
                            for W, G, P in zip(br, grads, prev[m])])
            Ws = new
    # intermediate fusion: two-layer branches and one shared layer (depth 3, L_f = 2); the
    # methods act on the branches, the shared layer follows the (unmodulated) drives
    spec = dln.NetworkSpec.fusion(3, 2, width=3)
    p = dln.init_batch(spec, [2], scheme="balanced", scale=0.4, stats=stats)
    for method, lam in (("joint", 0.0), ("ogm", 0.0), ("inforeg", 0.5)):
        kw = dict(epoch=3, window="always") if method == "inforeg" else {}
        res = rd.balancing_deep(stats, 3, eta, 0.4, steps, balancing=method, unimodal=lam,
                                fusion_layer=2, **kw)
        Ws = [[np.asarray(W)[0].copy() for W in br] for br in p.branches]
        V = np.asarray(p.post[0])[0].copy()
        prev = [[W.copy() for W in br] for br in Ws]
        for n in range(steps):
            w = np.array([float((V @ br[1] @ br[0])[0, 0]) for br in Ws])
            close_each(res.w[n], w, 1e-10, f"intermediate {method} w at step {n}")
            params = dln.Params(tuple(tuple(np.asarray(W)[None] for W in br) for br in Ws),
                                (V[None],))
            tr = np.asarray(rules.fisher_trace(spec, params, stats)).reshape(-1)
            close_each(res.trace[n], tr, 1e-9, f"intermediate {method} trace at step {n}")
            d = s - S @ w + lam * (s - np.diag(S) * w)
            sc = s * w - 0.5 * np.diag(S) * w ** 2
            c, a, prev = _reference_coefficients(method, n, sc, Ws, prev)
            gV = sum(d[m] * (br[1] @ br[0]).T for m, br in enumerate(Ws))
            new = []
            for m, (W1, W2) in enumerate(Ws):
                grads = [(V @ W2).T * d[m], V.T @ W1.T * d[m]]
                new.append([W + eta * (c[m] * G - a[m] * (W - P))
                            for W, G, P in zip((W1, W2), grads, prev[m])])
            Ws, V = new, V + eta * gV
    return True


def derive_all():
    return all([derive_gram_map(), derive_ge_noise(), derive_ge_law(), derive_slowdown(),
                derive_deep_chain(), derive_shared_chain()])


def check_all():
    return all([check_gram_map(), check_ge_noise(), check_ge_law(), check_slowdown(),
                check_deep_chain()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():
        print("balancing:", derive_all(), "checked against dlnfusion:", check_all())
