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
from theory.rules import decay, eps_r, rule_checks, rule_field


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
