"""theory.rules: the rows of the engine's other rules detect wrong claims, and the symbolic field
they are derived from is the numeric field of sims.rules."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

from sims.rules import LinearRule
from sims.rules import rule_field as numeric_field
from theory.evaluate import run_check
from theory.rules import decay, eps_r, eta_m, lr, rule_checks, rule_field, sigma


def _row(cid: str):
    return next(c for c in rule_checks() if c.id == cid)


def test_wrong_kp_rate_is_an_erratum() -> None:
    row = _row("rules.kp.decay")
    wrong = dataclasses.replace(row, printed=-row.printed)            # +λ(W − Rᵗ)
    assert run_check(wrong).status == "erratum"


def test_urfb_invariant_fails_under_decay() -> None:
    row = _row("rules.decay.invariant")
    wrong = dataclasses.replace(row, printed=sp.zeros(*row.derived.shape))
    assert run_check(wrong).status == "erratum"


def test_usf_does_not_align_exactly() -> None:
    row = _row("rules.usf.cos")
    assert run_check(dataclasses.replace(row, printed=sp.Integer(1))).status == "erratum"


def test_kp_time_formula_detects_a_wrong_factor() -> None:
    row = _row("rules.kp.time")
    assert run_check(dataclasses.replace(row, printed=2 * row.printed)).status == "erratum"


@pytest.mark.parametrize("name,kind", [("bp", "bp"), ("kp", "feedback"), ("urfb", "feedback"),
                                       ("dfa", "direct")])
def test_symbolic_field_is_the_sims_field(name: str, kind: str) -> None:
    """At whitened data (Σ_xx = I, Σ_yx = T) the sympy field equals sims.rules' numeric one."""
    rng = np.random.default_rng(0)
    n = (3, 4, 4, 2)
    T = rng.standard_normal((n[-1], n[0]))
    W = [rng.standard_normal((n[i], n[i - 1])) for i in range(1, 4)]
    R = [rng.standard_normal((n[i - 1], n[i])) for i in range(1, 4)]
    B = [rng.standard_normal((n[i - 1], n[-1])) for i in range(1, 4)]
    params = {"kp": {"decay": 0.3}, "urfb": {"epsilon": 0.6}}.get(name, {})
    rule = LinearRule.make(name, **params)
    eps = rule.epsilon if rule.kind == "state" else 0
    dW, dR = rule_field(kind, [sp.Matrix(w) for w in W], [sp.Matrix(r) for r in R],
                        sp.eye(n[0]), sp.Matrix(T), eps_r, decay,
                        [sp.Matrix(b) for b in B])
    subs = {eps_r: eps, decay: rule.decay}
    nW, nR = numeric_field(rule, T[None], [w[None] for w in W],
                           [r[None] for r in R] if rule.kind == "state" else [],
                           [b[None] for b in B] if rule.kind == "direct" else [])
    for a, b in zip(dW, nW):
        np.testing.assert_allclose(np.array(a.subs(subs), dtype=float), b[0], rtol=1e-10)
    for a, b in zip(dR, nR):
        np.testing.assert_allclose(np.array(a.subs(subs), dtype=float), b[0], rtol=1e-10)


def test_wm_mirror_mean_detects_sigma_for_sigma_squared() -> None:
    row = _row("rules.wm.mirror-mean")
    wrong = dataclasses.replace(row, printed=row.printed / sigma)       # σWᵗ
    assert run_check(wrong).status == "erratum"


def test_wm_relaxation_detects_a_missing_lr() -> None:
    row = _row("rules.wm.relaxation")
    wrong = dataclasses.replace(row, printed=row.printed.subs(lr, 1))    # e^{−λt}
    assert run_check(wrong).status == "erratum"


def test_wm_fixed_point_zeroes_the_sims_field() -> None:
    """The row's R* = (ησ²/λ)Wᵗ, evaluated, is where sims.rules' wm has Ṙ = 0 (and the row's
    R depends on the parameters as the sims rule's does)."""
    values = {eta_m: 1.5, sigma: 0.2, decay: 0.03, lr: 0.05}
    rule = LinearRule.make("wm", mirror_lr=1.5, noise=0.2, decay=0.03, lr=0.05)
    rng = np.random.default_rng(1)
    W = rng.standard_normal((2, 2))
    row = _row("rules.wm.fixed-point")
    w_syms = sorted((s for s in row.printed.free_symbols if s.name.startswith("w_")),
                    key=lambda s: s.name)
    subs = {**values, **{s: W[int(s.name[2]), int(s.name[3])] for s in w_syms}}
    R_star = np.array(row.printed.subs(subs), dtype=float)
    T = rng.standard_normal((2, 2))
    _, dR = numeric_field(rule, T[None], [W[None], W[None]], [R_star[None], R_star[None]], [])
    np.testing.assert_allclose(dR[0][0], 0.0, atol=1e-12)
    _, dR = numeric_field(rule, T[None], [W[None], W[None]], [W.T[None], W.T[None]], [])
    assert np.abs(dR[0][0]).max() > 1e-3                             # Wᵗ is not R* here
