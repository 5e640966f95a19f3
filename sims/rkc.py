"""A Runge–Kutta–Chebyshev solver for the mildly stiff linear-network dynamics of Section 5.

Near convergence the feedback systems (9) at depth k are stiff: with W(0) = 0 the conserved
quantities (16) make the layers unbalanced, and the relaxation rate of the smallest layer grows
like the squared product of the others (about 6·10⁷ against a time to threshold of 10⁻³ at
depth 8 in the default depth sweep), so an explicit Runge–Kutta method is held to tiny steps by
stability. The Jacobian's large eigenvalues lie close to the negative real axis (measured:
imaginary parts below 6 % of the modulus), which is the case the second-order RKC method of
Sommeijer, Shampine & Verwer (J. Comput. Appl. Math. 88, 1998) is built for: an s-stage step is
stable for h·ρ <= 0.65 s², so the work per unit time grows like √ρ instead of ρ.

:class:`RKC` follows the stepping interface of ``scipy.integrate.OdeSolver`` that
:func:`sims.until.run_until` uses (``step``, ``t``, ``y``, ``status``, ``nfev``,
``dense_output``), with the same error norm (RMS of the error over atol + rtol·|y|). The spectral
radius ρ of the Jacobian is estimated by a nonlinear power iteration on differences of f.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

#: damping of the Chebyshev polynomials (the RKC code's ε = 2/13)
DAMPING = 2.0 / 13.0
#: stability bound h·ρ <= STABILITY·(s² − 1) of an s-stage step
STABILITY = 0.65
MAX_STAGES = 1000
#: power-iteration refresh period (accepted steps) and safety factor on the estimate
RHO_EVERY = 25
RHO_SAFETY = 1.2


@cache
def coefficients(s: int) -> tuple[np.ndarray, ...]:
    """(μ̃, μ, ν, γ̃, c) of the s-stage damped RKC method (Sommeijer et al. 1998, Section 2);
    c[j] is the time of stage j as a fraction of the step."""
    w0 = 1.0 + DAMPING / s**2
    T, dT, ddT = np.zeros(s + 1), np.zeros(s + 1), np.zeros(s + 1)
    T[0], T[1], dT[1] = 1.0, w0, 1.0
    for j in range(2, s + 1):
        T[j] = 2 * w0 * T[j - 1] - T[j - 2]
        dT[j] = 2 * T[j - 1] + 2 * w0 * dT[j - 1] - dT[j - 2]
        ddT[j] = 4 * dT[j - 1] + 2 * w0 * ddT[j - 1] - ddT[j - 2]
    w1 = dT[s] / ddT[s]
    b = np.empty(s + 1)
    b[2:] = ddT[2:] / dT[2:] ** 2
    b[:2] = b[2]
    a = 1.0 - b * T
    mu_t, mu, nu, gam = (np.zeros(s + 1) for _ in range(4))
    mu_t[1] = b[1] * w1
    j = np.arange(2, s + 1)
    mu[2:] = 2 * b[j] * w0 / b[j - 1]
    nu[2:] = -b[j] / b[j - 2]
    mu_t[2:] = 2 * b[j] * w1 / b[j - 1]
    gam[2:] = -a[j - 1] * mu_t[2:]
    c = np.zeros(s + 1)
    c[2:] = w1 * ddT[2:] / dT[2:]
    c[1], c[s] = c[2] / dT[2], 1.0
    return mu_t, mu, nu, gam, c


def stages_for(h_rho: float) -> int:
    """The fewest stages (>= 2) whose stability interval covers h·ρ."""
    return max(2, 1 + int(np.sqrt(1.0 + h_rho / STABILITY)))


class RKC:
    """Second-order Runge–Kutta–Chebyshev integration of y' = f(t, y) from t0 to t_bound."""

    def __init__(self, fun: Callable[[float, np.ndarray], np.ndarray], t0: float,
                 y0: np.ndarray, t_bound: float, *, rtol: float = 1e-7, atol: float = 1e-9):
        self.fun, self.t, self.t_bound = fun, float(t0), float(t_bound)
        self.y = np.array(y0, dtype=float)
        self.rtol, self.atol = rtol, atol
        self.nfev, self.status = 0, "running"
        self.f = self._f(self.t, self.y)
        self._direction: np.ndarray | None = None
        self.rho = self._spectral_radius()
        self._since_rho = 0
        self.h = self._first_step()
        self._old: tuple[float, np.ndarray, np.ndarray] | None = None

    def _f(self, t: float, y: np.ndarray) -> np.ndarray:
        self.nfev += 1
        return self.fun(t, y)

    def _norm(self, err: np.ndarray, y_new: np.ndarray) -> float:
        scale = self.atol + self.rtol * np.maximum(np.abs(self.y), np.abs(y_new))
        return float(np.sqrt(np.mean((err / scale) ** 2)))

    def _spectral_radius(self) -> float:
        """Largest |eigenvalue| of ∂f/∂y at (t, y) by a nonlinear power iteration (RKC's rkcrho)."""
        v = self.f if self._direction is None else self._direction
        ynorm, vnorm = np.linalg.norm(self.y), np.linalg.norm(v)
        if vnorm == 0:
            v, vnorm = np.ones_like(self.y), np.sqrt(self.y.size)
        dy = np.sqrt(np.finfo(float).eps) * max(ynorm, 1.0)
        z, sigma = self.y + v * (dy / vnorm), 0.0
        for _ in range(50):
            diff = self._f(self.t, z) - self.f
            dnorm = np.linalg.norm(diff)
            old, sigma = sigma, dnorm / dy
            if dnorm == 0:
                break
            z = self.y + diff * (dy / dnorm)
            if abs(sigma - old) <= 0.01 * sigma:
                break
        self._direction = z - self.y
        return RHO_SAFETY * sigma

    def _first_step(self) -> float:
        """A first step from the size of f and of its change over a trial Euler step."""
        span = self.t_bound - self.t
        h = span if self.rho * span <= 1 else 1.0 / self.rho
        y1 = self.y + h * self.f
        est = h * self._norm(self._f(self.t + h, y1) - self.f, y1)
        if est > 0 and 0.1 * h < span * np.sqrt(est):
            h = max(0.1 * h / np.sqrt(est), 1e-12 * span)
        return min(h, span)

    def _attempt(self, h: float) -> np.ndarray:
        """One s-stage RKC step of size h from (t, y)."""
        s = stages_for(h * self.rho)
        mu_t, mu, nu, gam, c = coefficients(s)
        y0, f0 = self.y, self.f
        prev2, prev = y0, y0 + mu_t[1] * h * f0
        for j in range(2, s + 1):
            fj = self._f(self.t + c[j - 1] * h, prev)
            new = ((1 - mu[j] - nu[j]) * y0 + mu[j] * prev + nu[j] * prev2
                   + mu_t[j] * h * fj + gam[j] * h * f0)
            prev2, prev = prev, new
        return prev

    def step(self) -> str | None:
        """Advance by one accepted step; returns None, or a message when the solver fails."""
        if self.status != "running":
            raise RuntimeError("step() called on a finished or failed RKC solver")
        if self._since_rho >= RHO_EVERY:
            self.rho, self._since_rho = self._spectral_radius(), 0
        while True:
            h = min(self.h, self.t_bound - self.t, STABILITY * (MAX_STAGES**2 - 1) / self.rho
                    if self.rho > 0 else np.inf)
            if h <= 1e-14 * max(abs(self.t), 1.0):
                self.status = "failed"
                return f"step size {h:.1e} too small at t = {self.t:.6g}"
            y_new = self._attempt(h)
            f_new = self._f(self.t + h, y_new)
            est = (12.0 * (self.y - y_new) + 6.0 * h * (self.f + f_new)) / 15.0
            err = self._norm(est, y_new)
            if not np.isfinite(err):
                self.h = 0.1 * h
                continue
            fac = 0.8 * max(err, 1e-10) ** (-1.0 / 3.0)
            if err <= 1.0:
                break
            self.h = h * max(0.1, fac)
            self.rho, self._since_rho = self._spectral_radius(), 0
        self._old = (self.t, self.y, self.f)
        self.t, self.y, self.f = self.t + h, y_new, f_new
        self.h = h * min(10.0, max(0.1, fac))
        self._since_rho += 1
        if self.t >= self.t_bound:
            self.status = "finished"
        return None

    def dense_output(self) -> Callable[[float], np.ndarray]:
        """Cubic Hermite interpolant of the last step (from y and f at both ends)."""
        if self._old is None:
            raise RuntimeError("dense_output() needs at least one step")
        t0, y0, f0 = self._old
        t1, y1, f1 = self.t, self.y, self.f
        h = t1 - t0

        def interp(t: float) -> np.ndarray:
            x = (t - t0) / h
            return ((2 * x**3 - 3 * x**2 + 1) * y0 + (x**3 - 2 * x**2 + x) * h * f0
                    + (-2 * x**3 + 3 * x**2) * y1 + (x**3 - x**2) * h * f1)

        return interp
