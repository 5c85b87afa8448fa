#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fits the float coefficients of include/xfmr/simd/erf.hpp (ErfFloatCoefficients) and checks
the float-rounded result.

  python3 scripts/fit_erf_float.py     (needs mpmath and numpy; run with mpmath 1.3.0, numpy 2.4.6;
                                       ~1.5 min)

Two approximations, minimax in relative error (Lawson's iteratively reweighted least squares on a
dense grid, which converges to the minimax solution; Loeb's linearisation for the rational one):

  erf(x)  = x + x·A(x²),          |x| <= 0.5, A of degree 4 (no division); A(0) = 2/√π − 1, so
                                  the rounding of the constant term costs little
  erfc(y) = e^{−y²}·N(y)/(c·y·N(y) + M(y)),  0 <= y <= 10.5 (erfc(10.5) underflows in float),
                                  c = √π rounded to float, N and M of degree 4: a fit of
                                  1/erfcx(y) − c·y = M(y)/N(y), erfcx(y) = e^{y²}·erfc(y)
                                  ~ 1/(√π·y).
                                  For large y the denominator is c·y·N(y) to first order, so the
                                  rounding errors of N's Horner steps cancel in the quotient (a
                                  plain N/D of degrees 4/5 has ~2× the evaluation error: 6 ulp in
                                  erfc against 4)

The coefficients are then rounded to float one at a time, the remaining ones refitted after each
rounding (N first, then M with N fixed, A alone), and the rounded approximation's relative error is
measured against mpmath on a denser grid, in exact arithmetic and in emulated float with FMA.
Prints the C++ constants.
"""
import numpy as np
import mpmath as mp

mp.mp.dps = 40
F32 = np.float32
Y_MAX = 10.5  # kErfcZero<float>
X_SMALL = 0.5
M_DEG, N_DEG = 4, 4
A_DEG = 4
SQRT_PI_F = float(F32(np.sqrt(np.pi)))  # c


def erfcx(y):
    return mp.erfc(y) * mp.exp(y * y)


def lawson(V, g, scale=None, iters=800):
    """Coefficients c minimising max |V·c − g|/scale, scale = |g| by default."""
    scale = np.abs(g) if scale is None else scale
    w = np.full(len(g), 1.0 / len(g))
    best, best_c = np.inf, None
    for _ in range(iters):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(V * (sw / scale)[:, None], sw * g / scale, rcond=None)
        err = (V @ c - g) / scale
        e = np.abs(err).max()
        if e < best:
            best, best_c = e, c
        w = w * np.abs(err) + 1e-300
        w /= w.sum()
    return best_c, best


def fit_rational(ys, inv, g, iters=800):
    """M/N ≈ g with N(0) = 1, error |M/N − g| relative to inv = 1/erfcx (Loeb: weight by the
    previous N; Lawson weights)."""
    u = ys / Y_MAX  # the basis (y/Y_MAX)^j keeps the least-squares system well conditioned
    Vm = np.vander(u, M_DEG + 1, increasing=True)
    Vn = np.vander(u, N_DEG + 1, increasing=True)
    w = np.full(len(ys), 1.0 / len(ys))
    Np = np.ones_like(ys)
    best, best_c = np.inf, None
    for _ in range(iters):
        A = np.hstack([Vm, -g[:, None] * Vn[:, 1:]]) / (inv * Np)[:, None]
        rhs = g / (inv * Np)
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(A * sw[:, None], rhs * sw, rcond=None)
        Mv = Vm @ c[: M_DEG + 1]
        Nv = Vn[:, 0] + Vn[:, 1:] @ c[M_DEG + 1:]
        err = (Mv / Nv - g) / inv
        e = np.abs(err).max()
        if e < best:
            best = e
            best_c = (c[: M_DEG + 1] / Y_MAX ** np.arange(M_DEG + 1),
                      np.concatenate([[1.0], c[M_DEG + 1:] / Y_MAX ** np.arange(1, N_DEG + 1)]))
        w = w * np.abs(err) + 1e-300
        w /= w.sum()
        Np = Nv
    return best_c, best


def round_refit(V, g, c, scale=None):
    """Rounds c to float from the highest power down, refitting the lower ones after each step
    (minimax of the error relative to scale, |g| by default)."""
    scale = np.abs(g) if scale is None else scale
    c = np.array(c, dtype=np.float64)
    fixed = np.zeros(len(c), dtype=bool)
    for j in reversed(range(len(c))):
        c[j] = float(F32(c[j]))
        fixed[j] = True
        if fixed.all():
            break
        free = ~fixed
        rest = g - V[:, fixed] @ c[fixed]
        # relative minimax of the remaining part against g
        Vf = V[:, free] / scale[:, None]
        w = np.full(len(g), 1.0 / len(g))
        best, best_c = np.inf, None
        for _ in range(300):
            sw = np.sqrt(w)
            cf, *_ = np.linalg.lstsq(Vf * sw[:, None], sw * rest / scale, rcond=None)
            err = (Vf @ cf - rest / scale)
            e = np.abs(err).max()
            if e < best:
                best, best_c = e, cf
            w = w * np.abs(err) + 1e-300
            w /= w.sum()
        c[free] = best_c
    return c.astype(F32)


def fma32(a, b, c):
    # a·b is exact in double for float a, b; one rounding to double then one to float (a double
    # rounding, rare and at most one unit more than a true FMA)
    return F32(np.float64(a) * np.float64(b) + np.float64(c))


def horner32(coeffs_high_first, x):
    r = F32(coeffs_high_first[0])
    for c in coeffs_high_first[1:]:
        r = fma32(r, x, F32(c))
    return r


def main():
    # erfc: 1/erfcx(y) = c·y + M(y)/N(y) on [0, Y_MAX]
    ys = np.linspace(0.0, Y_MAX, 6000)
    inv = np.array([float(1 / erfcx(y)) for y in ys])
    g = inv - SQRT_PI_F * ys
    (m, n), e = fit_rational(ys, inv, g)
    print(f"// erfcx = N/(c*y*N + M), degrees {N_DEG}/{M_DEG} on [0, {Y_MAX}]: minimax relative "
          f"error {e:.3e} (double coefficients)")
    # round N (N(0) = 1 stays exact), then refit M ≈ g·N with N fixed (error relative to inv·N),
    # then round M
    n32 = np.array([F32(v) for v in n])
    Nv = np.polyval(n32.astype(np.float64)[::-1], ys)
    Vm = np.vander(ys, M_DEG + 1, increasing=True)
    m_fit, _ = lawson(Vm, g * Nv, scale=inv * Nv)
    m32 = round_refit(Vm, g * Nv, m_fit, scale=inv * Nv)
    assert (n32 > 0).all() and (m32 > 0).all(), "positive coefficients: Horner without cancellation"

    # check on a denser grid of floats, in exact arithmetic and in emulated float
    y32 = np.unique(np.linspace(0.0, Y_MAX, 60001).astype(F32))
    yd = y32.astype(np.float64)
    ref = np.array([float(erfcx(mp.mpf(v))) for v in yd])
    Ne = np.polyval(n32.astype(np.float64)[::-1], yd)
    Me = np.polyval(m32.astype(np.float64)[::-1], yd)
    e_exact = np.abs(Ne / (SQRT_PI_F * yd * Ne + Me) / ref - 1).max()
    ev = []
    for v in y32:
        nv, mv = horner32(n32[::-1], v), horner32(m32[::-1], v)
        den = fma32(F32(v * nv), F32(SQRT_PI_F), mv)
        ev.append(float(F32(np.float64(nv) / np.float64(den))))
    e_float = np.abs(np.array(ev) / ref - 1).max()
    print(f"// float-rounded: relative error {e_exact:.3e} exact ({e_exact / 2**-24:.2f} × 2^-24), "
          f"{e_float:.3e} in float with FMA and one division ({e_float / 2**-24:.2f} × 2^-24)")

    # erf: x·A(x²) on [0, X_SMALL]
    xs = np.linspace(1e-6, X_SMALL, 6000)
    g = np.array([float(mp.erf(x) / x) for x in xs])
    Va = np.vander(xs * xs, A_DEG + 1, increasing=True)
    a_fit, ea = lawson(Va, g - 1, scale=g)
    a32 = round_refit(Va, g - 1, a_fit, scale=g)
    xc = np.linspace(1e-6, X_SMALL, 40001).astype(F32)
    refa = np.array([float(mp.erf(mp.mpf(float(v))) / mp.mpf(float(v))) for v in xc])
    exa = 1 + np.polyval(a32.astype(np.float64)[::-1], xc.astype(np.float64) ** 2)
    # x + x·P(x²) in float: one FMA after Horner
    eva = np.array([np.float64(fma32(v, horner32(a32[::-1], F32(v * v)), v)) / np.float64(v)
                    for v in xc])
    print(f"// erf x + x*A(x^2) degree {A_DEG} on [0, {X_SMALL}]: {ea:.3e} (double), rounded "
          f"{np.abs(exa / refa - 1).max():.3e} exact, {np.abs(eva / refa - 1).max():.3e} in float "
          "(x² rounded)")

    def cpp(name, c):
        body = ", ".join(f"{float(v):.9e}f" for v in c[::-1])
        return f"  static constexpr float {name}[{len(c)}] = {{{body}}};"
    print(cpp("a", a32))
    print(cpp("n", n32))
    print(cpp("m", m32))
    print(f"  static constexpr float sqrt_pi = {SQRT_PI_F:.9e}f;")


if __name__ == "__main__":
    main()
