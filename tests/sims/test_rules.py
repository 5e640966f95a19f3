"""sims.rules: the rule-parameterised linear dynamics and their exact reductions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sims.linear import bp_field, feedback_field, make_problem
from sims.rules import (
    LinearRule,
    bp_angles,
    draw_fixed,
    feedback_mats,
    make_rule_problem,
    rule_field,
    rule_system,
)
from sims.subspace import reduce_feedback, reduced_system, reduced_weights
from sims.until import full_system, run_until

WIDTHS = (5, 6, 6, 3)
TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def _close(a, b, **kw) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, **kw)


def _draw(seed: int = 0, batch: int = 2):
    rng = np.random.default_rng(seed)
    n = WIDTHS
    T = rng.standard_normal((batch, n[-1], n[0]))
    W = [0.5 * rng.standard_normal((batch, n[i], n[i - 1])) for i in range(1, len(n))]
    R = [0.5 * rng.standard_normal((batch, n[i - 1], n[i])) for i in range(1, len(n))]
    B = [0.5 * rng.standard_normal((batch, n[i - 1], n[-1])) for i in range(1, len(n))]
    return rng, T, W, R, B


def test_bp_frfb_urfb_are_the_section5_fields() -> None:
    _, T, W, R, _ = _draw()
    _close(rule_field(LinearRule.make("bp"), T, W, [], [])[0], bp_field(T, W))
    for rule, eps in [(LinearRule.make("frfb"), 0.0), (LinearRule.make("urfb", epsilon=0.3), 0.3)]:
        dW, dR = rule_field(rule, T, W, R, [])
        fW, fR = feedback_field(T, W, R, np.full(2, eps))
        _close(dW, fW)
        _close(dR, fR)


def test_kp_without_decay_is_urfb_and_decay_shrinks_w_minus_rt() -> None:
    _, T, W, R, _ = _draw()
    kp0 = rule_field(LinearRule.make("kp", decay=0.0), T, W, R, [])
    urfb = rule_field(LinearRule.make("urfb"), T, W, R, [])
    _close(kp0[0], urfb[0])
    dW, dR = rule_field(LinearRule.make("kp", decay=0.2), T, W, R, [])
    for w, r, a, b in zip(W, R, dW, dR):
        np.testing.assert_allclose(a - np.swapaxes(b, -1, -2),
                                   -0.2 * (w - np.swapaxes(r, -1, -2)), atol=1e-12)


def test_dfa_at_two_layers_is_frfb_with_b_as_r() -> None:
    """With one hidden layer, DFA's B_2 plays FRFB's R_2 (Nøkland 2016)."""
    rng = np.random.default_rng(1)
    T = rng.standard_normal((1, 3, 5))
    W = [rng.standard_normal((1, 4, 5)), rng.standard_normal((1, 3, 4))]
    B = [rng.standard_normal((1, 5, 3)), rng.standard_normal((1, 4, 3))]
    dfa = rule_field(LinearRule.make("dfa"), T, W, [], B)[0]
    R = [rng.standard_normal((1, 5, 4)), B[1]]                 # R_1 never enters
    fa = rule_field(LinearRule.make("frfb"), T, W, R, [])[0]
    _close(dfa, fa)


def test_brsf_mean_field_is_usf_at_scale_sqrt3_over_2() -> None:
    rng, T, W, _, _ = _draw()
    brsf = LinearRule.make("brsf")
    usf = LinearRule.make("usf", scale=math.sqrt(3) / 2)
    a = rule_field(brsf, T, W, [], draw_fixed(brsf, WIDTHS, rng, 2))[0]
    b = rule_field(usf, T, W, [], draw_fixed(usf, WIDTHS, rng, 2))[0]
    _close(a, b)


def test_sign_rules_never_leave_zero() -> None:
    rng, T, W, _, _ = _draw()
    zero = [np.zeros_like(w) for w in W]
    for name in ("usf", "brsf", "frsf"):
        rule = LinearRule.make(name)
        dW, _ = rule_field(rule, T, zero, [], draw_fixed(rule, WIDTHS, rng, 2))
        assert all(np.all(d == 0) for d in dW), name


@pytest.mark.parametrize("name,params", [("kp", {"decay": 0.02}), ("dfa", {}),
                                          ("urfb", {"epsilon": 0.5})])
def test_reduction_matches_full_integration(name: str, params: dict) -> None:
    """From W(0) = 0 the reduced system reaches the threshold at the same time and state as the
    full one (W and R integrated on the full matrices)."""
    _, T, W, R, B = _draw(3)
    rule = LinearRule.make(name, **params)
    zero = [np.zeros_like(w) for w in W]
    direct = rule.kind == "direct"
    full = make_rule_problem(rule, T, zero, None if direct else R, B if direct else None)
    run_full = run_until(rule_system(full), 1e-2, 200.0, **TIGHT)
    red = reduce_feedback(T, B if direct else R, direct)
    run_red = run_until(reduced_system(red, 0.0 if direct else rule.epsilon, rule.decay),
                        1e-2, 200.0, **TIGHT)
    assert np.all(np.isfinite(run_full.t_reach))
    np.testing.assert_allclose(run_red.t_reach, run_full.t_reach, rtol=1e-6)
    Wf, _ = full.split(run_full.states)
    for a, b in zip(reduced_weights(red, run_red.states), Wf):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_reduction_of_kp_fails_without_its_decay() -> None:
    """The reduced KP field depends on the decay (else the test above could not fail for kp)."""
    _, T, _, R, _ = _draw(3)
    red = reduce_feedback(T, R)
    y = np.random.default_rng(0).standard_normal(2 * 3 * 9)
    a = reduced_system(red, 1.0, 0.3).rhs(0.5, y)
    b = reduced_system(red, 1.0, 0.0).rhs(0.5, y)
    assert np.abs(a - b).max() > 1e-3


def test_full_rule_system_agrees_with_sims_linear() -> None:
    _, T, W, R, _ = _draw()
    rule = LinearRule.make("urfb", epsilon=0.7)
    y = rule_system(make_rule_problem(rule, T, W, R))
    old = full_system(make_problem("feedback", T, W, R, eps=0.7))
    np.testing.assert_allclose(y.rhs(0.0, y.y0), old.rhs(0.0, old.y0))


def test_angles_zero_for_bp_and_exact_feedback() -> None:
    _, T, W, R, _ = _draw()
    bp = LinearRule.make("bp")
    assert np.allclose(bp_angles(bp, T, W, feedback_mats(bp, W, [], [])), 0, atol=1e-5)
    urfb = LinearRule.make("urfb")
    exact = [np.swapaxes(w, -1, -2) for w in W]
    assert np.allclose(bp_angles(urfb, T, W, exact), 0, atol=1e-5)
    angles = bp_angles(urfb, T, W, R)
    assert np.allclose(angles[:, -1], 0, atol=1e-5) and np.all(angles[:, :-1] > 1)


def test_wm_moves_w_as_frfb_and_r_to_its_mirror_fixed_point() -> None:
    """wm: W as frfb at the same R (no decay on W); Ṙ = (ησ²Wᵗ − λR)/lr, zero at
    R = (ησ²/λ)Wᵗ and proportional to 1/lr."""
    _, T, W, R, _ = _draw()
    wm = LinearRule.make("wm", mirror_lr=2.0, noise=0.3, decay=0.05, lr=0.2)
    dW, dR = rule_field(wm, T, W, R, [])
    _close(dW, rule_field(LinearRule.make("frfb"), T, W, R, [])[0], **TIGHT)
    for w, r, d in zip(W, R, dR):
        np.testing.assert_allclose(d, (2.0 * 0.09 * np.swapaxes(w, -1, -2) - 0.05 * r) / 0.2,
                                   **TIGHT)
    star = [2.0 * 0.09 / 0.05 * np.swapaxes(w, -1, -2) for w in W]
    _close(rule_field(wm, T, W, star, [])[1], [np.zeros_like(r) for r in R], atol=1e-12)
    slower = rule_field(LinearRule.make("wm", mirror_lr=2.0, noise=0.3, decay=0.05, lr=0.4),
                        T, W, R, [])[1]
    _close(slower, [d / 2 for d in dR], **TIGHT)
    assert wm.decay == 0.0


def test_bad_rules_and_problems_are_refused() -> None:
    with pytest.raises(ValueError, match="rule must be one of"):
        LinearRule.make("wrong")
    with pytest.raises(ValueError, match="takes no parameter"):
        LinearRule.make("usf", epsilon=1)
    with pytest.raises(ValueError, match="scale must be"):
        LinearRule.make("usf", scale=0)
    for bad in ({"noise": 0}, {"lr": 0}, {"decay": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be"):
            LinearRule.make("wm", **bad)
    _, T, W, R, B = _draw()
    with pytest.raises(ValueError, match="R0 is refused"):
        make_rule_problem(LinearRule.make("usf"), T, W, R, B)
    with pytest.raises(ValueError, match="fixed matrices are required"):
        make_rule_problem(LinearRule.make("dfa"), T, W)
