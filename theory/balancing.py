"""Balancing methods in a two-layer late-fusion branch: the exact Gram-matrix map of joint
training, OGM and InfoReg, and InfoReg's leading-order slowdown.

1. ``derive_gram_map``: with u' = u + η(c g v − a(u − u_p)), v' = v + η(c g u − a(v − v_p))
   and u_p, v_p fixed, the Gram matrix G of [u, v, u_p, v_p] maps to T G Tᵀ with
   T = [[1 − ηa, ηcg, ηa, 0], [ηcg, 1 − ηa, 0, ηa], [0, 0, 1, 0], [0, 0, 0, 1]]; the gradient of
   ½E(y − Σ w_n x_n)² + (a/2)(‖u − u_p‖² + ‖v − v_p‖²) with respect to (u, v), scaled by c on
   the loss part, is (−c g v + a(u − u_p), −c g u + a(v − v_p)) (g = E[x_m e]): the update is
   gradient descent on that objective, which is what the transforms do.
2. ``derive_slowdown``: the linear recursion a_{k+1} = (1 + η(s − α)) a_k + ηα a_p from a_0 =
   a_p gives a_E = a_p (s r^E − α)/(s − α), r = 1 + η(s − α); α → 0 gives (1 + ηs)^E.
"""
import numpy as np
import sympy as sp

from _checks import close_each

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


def check_gram_map():
    """theory.initial_gram and theory.balancing_two_layer against the vector updates iterated
    in numpy (OGM coefficient and InfoReg's proximal term from the transforms' formulas, with
    theory.score_gaps), for a few steps of every method."""
    import dlnfusion as dln
    from dlnfusion import theory as th

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
        res = th.balancing_two_layer(stats, eta, G, steps, method=method, **kw)
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
                gaps = np.asarray(th.score_gaps(sc))
                a = np.where(gaps > 0, np.exp(0.9 * np.tanh(gaps)), 0.0)
            u, v = ([u[m] + eta * (c[m] * g[m] * v[m] - a[m] * (u[m] - up[m])) for m in range(2)],
                    [v[m] + eta * (c[m] * g[m] * u[m] - a[m] * (v[m] - vp[m])) for m in range(2)])
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


def derive_all():
    return all([derive_gram_map(), derive_slowdown()])


def check_all():
    return all([check_gram_map(), check_slowdown()])


if __name__ == "__main__":
    import dlnfusion

    with dlnfusion.float64():
        print("balancing:", derive_all(), "checked against dlnfusion:", check_all())
