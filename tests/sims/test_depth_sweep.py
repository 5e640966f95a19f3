"""sims.depth (the depth sweep) and its parts: the exact reduction (sims.subspace), the
stop-at-threshold loop (sims.until), the plateau measure, the verdict, the CSV, the figure and
the CLI (sims.depth_sweep)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from sims.depth import DepthConfig, Row, plateau_fraction, plateau_start, rows_csv, verdict
from sims.depth_stats import collect, paired_ratios, quartiles
from sims.depth_sweep import main
from sims.initial import random_matrices, random_target, zero_weights
from sims.linear import feedback_field, integrate, make_problem
from sims.subspace import reduce_feedback, reduced_system, reduced_weights
from sims.until import full_system, run_until

WIDTHS = (7, 6, 6, 5, 3)
TINY = ["--depths", "2", "3", "--seeds", "2", "--n-in", "6", "--hidden", "5", "--n-out", "3",
        "--quiet"]


def data(seed: int = 0, widths: tuple[int, ...] = WIDTHS):
    rng = np.random.default_rng(seed)
    return random_target(widths, rng, 0.5), random_matrices(widths, rng, 0.4, transpose=True)


def test_reduced_field_is_the_full_field_in_the_frames():
    """Ṁ of the reduction equals Q_iᵗ Ẇ_i Q_{i-1} of (9) at a lifted state (R = R(0) + εWᵗ)."""
    T, R0 = data()
    red = reduce_feedback(T[None], [r[None] for r in R0])
    n, k = 3, len(R0)
    M = np.random.default_rng(1).standard_normal((1, k, n, n)) * 0.5
    W = reduced_weights(red, M.reshape(1, -1))
    dW, _ = feedback_field(T[None], W, [r[None] + 0.7 * np.swapaxes(w, -1, -2)
                                         for r, w in zip(R0, W)], np.array([0.7]))
    dM = reduced_system(red, 0.7).rhs(0.0, M.ravel()).reshape(1, k, n, n)
    Q = red.frames
    for i in range(k):
        np.testing.assert_allclose(np.swapaxes(Q[i + 1], -1, -2) @ dW[i] @ Q[i], dM[:, i],
                                   atol=1e-12)
        # and Ẇ has no component outside the frames (the subspace is invariant)
        lifted = Q[i + 1] @ dM[:, i] @ np.swapaxes(Q[i], -1, -2)
        np.testing.assert_allclose(dW[i], lifted, atol=1e-12)


def test_reduced_run_matches_the_full_matrices():
    """Time to 1e-3·e(0) from the reduction; the full (9) (W and R integrated) agrees there."""
    T, R0 = data(2)
    tight = {"rtol": 1e-10, "atol": 1e-12}
    red = reduce_feedback(T[None], [r[None] for r in R0])
    run = run_until(reduced_system(red, 0.5), 1e-3, 100.0, **tight)
    assert np.isfinite(run.t_reach[0])
    full = integrate(make_problem("feedback", T, zero_weights(WIDTHS), R0, 0.5),
                     [0.0, run.t_reach[0]], keep_states=True, **tight)
    np.testing.assert_allclose(full.error[0], [run.error0[0], 1e-3 * run.error0[0]], rtol=1e-6)
    for w_full, w_red in zip(full.weights, reduced_weights(red, run.states)):
        np.testing.assert_allclose(w_full[0, -1], w_red[0], atol=1e-7)


def test_run_until_stops_at_the_threshold_per_member_and_keeps_their_states():
    rng = np.random.default_rng(3)
    widths = (5, 4, 3)
    T = np.stack([random_target(widths, rng, 0.5) for _ in range(3)])
    W0 = [np.stack(m) for m in zip(*[random_matrices(widths, rng, 0.6) for _ in range(3)])]
    problem = make_problem("bp", T, W0)
    run = run_until(full_system(problem), 1e-2, 200.0)
    assert np.all(np.isfinite(run.t_reach)) and run.t_reach.max() < 200.0
    assert len(set(np.round(run.t_reach, 6))) == 3                     # members cross apart
    np.testing.assert_allclose(run.error_end / run.error0, 1e-2, rtol=1e-6)
    alone = run_until(full_system(make_problem("bp", T[1], [w[1] for w in W0])), 1e-2, 200.0)
    assert alone.t_reach[0] == pytest.approx(run.t_reach[1], rel=1e-4)
    short = run_until(full_system(problem), 1e-2, 0.01)              # horizon too short
    assert np.all(np.isnan(short.t_reach)) and np.all(short.t_end == 0.01)
    assert np.all(short.error_end > 1e-2 * short.error0)


def test_plateau_fraction_measures_the_longest_flat_stretch():
    t = np.linspace(0.0, 10.0, 1001)
    flat_then_drop = np.where(t < 6.0, 1.0, np.exp(-5.0 * (t - 6.0)))
    assert plateau_fraction(t, flat_then_drop, 10.0, 2.0) == pytest.approx(0.6, abs=0.02)
    steady = np.exp(-3.0 * t)                               # halves every 0.23 time units
    assert plateau_fraction(t, steady, 10.0, 2.0) == pytest.approx(np.log(2) / 30, abs=0.01)
    noisy = flat_then_drop * (1 + 0.3 * (np.arange(t.size) % 2))   # up-and-down wiggles
    assert plateau_fraction(t, noisy, 10.0, 2.0) == pytest.approx(0.6, abs=0.02)


def _rows(ratio_by_depth: dict[int, float], seeds: int = 6) -> list[Row]:
    rows = []
    for k, r in ratio_by_depth.items():
        for s in range(seeds):
            t1 = 1.0 + 0.01 * s
            rows += [Row(k, "feedback", 1.0, s, t1, 1e-6, 0.1, False, (0.5,) * k),
                     Row(k, "feedback", 0.0, s, r * t1 * (1 + 0.001 * s), 1e-6, 0.1, False,
                         (0.1,) * k)]
    return rows


@pytest.mark.parametrize("ratios, answer", [
    ({2: 1.1, 3: 1.3, 4: 1.6, 5: 2.0, 6: 2.5, 7: 3.0}, "VERDICT: YES: "),
    ({2: 1.1, 3: 1.3, 4: 1.4, 5: 1.4, 6: 1.4, 7: 1.4}, "VERDICT: YES, THEN IT LEVELS OFF"),
    ({2: 2.0, 3: 1.8, 4: 1.6, 5: 1.4, 6: 1.3, 7: 1.2}, "VERDICT: NO: "),
])
def test_verdict_reads_the_trend(ratios, answer):
    cfg = DepthConfig(depths=tuple(ratios), eps=(0.0, 1.0), bp=False)
    assert answer in verdict(_rows(ratios), cfg)


def test_a_rise_then_a_plateau_is_named_where_the_numbers_flatten():
    """The default run's medians (docs/linear.md): a rise over depths 2-4, then flat at
    1.32-1.34; the sentence names depth 4, not the largest median's depth 6."""
    ratios = {2: 1.15, 3: 1.26, 4: 1.32, 5: 1.33, 6: 1.34, 7: 1.33, 8: 1.32}
    assert plateau_start(ratios) == 4
    assert plateau_start({2: 1.0, 3: 1.1, 4: 1.2}) == 4  # no plateau: the deepest depth
    cfg = DepthConfig(depths=tuple(ratios), eps=(0.0, 1.0), bp=False)
    text = verdict(_rows(ratios), cfg)
    assert ("grows from depth 2 to 4 (median ratio 1.15 -> 1.32) and is flat at 1.32-1.34 over "
            "depths 4..8") in text


def test_ratios_pair_seeds_and_keep_unreached_runs_as_inf():
    times = collect([(2, "feedback", 1.0, 0, 2.0), (2, "feedback", 0.0, 0, 3.0),
                     (2, "feedback", 1.0, 1, 1.0), (2, "feedback", 0.0, 1, float("nan")),
                     (2, "feedback", 1.0, 2, float("nan")), (2, "feedback", 0.0, 2, 1.0)])
    r = paired_ratios(times, 2, ("feedback", 0.0), ("feedback", 1.0))
    assert list(r) == [1.5, np.inf]                       # seed 2: URFB never reached, dropped
    assert quartiles(np.array([1.0, 2.0, 3.0, np.inf]))[1] == 2.0


def test_csv_has_one_corr_column_per_layer_of_the_deepest_net():
    rows = _rows({2: 1.2, 4: 1.3}, seeds=1)
    rows.append(Row(4, "bp", float("nan"), 0, float("nan"), 0.5, 0.9, True, (np.nan,) * 4))
    lines = list(csv.DictReader(rows_csv(rows).splitlines()))
    assert list(lines[0])[:10] == ["depth", "method", "epsilon", "seed", "t_threshold",
                                   "reached", "corr_1", "corr_2", "corr_3", "corr_4"]
    assert lines[0]["corr_3"] == "" and lines[-1]["reached"] == "false"
    assert lines[-1]["t_threshold"] == "" and lines[-1]["epsilon"] == ""


def test_cli_writes_csv_figure_and_verdict(tmp_path: Path, capsys) -> None:
    out = tmp_path / "depth"
    assert main(TINY + ["--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["depth.pdf", "depth.png",
                                                     "depth_sweep.csv", "verdict.txt"]
    rows = list(csv.DictReader((out / "depth_sweep.csv").read_text().splitlines()))
    assert len(rows) == 2 * 2 * 5                      # depths x seeds x (BP + 4 eps)
    fb = [r for r in rows if r["method"] == "feedback" and r["reached"] == "true"]
    assert fb and all(-1 <= float(r["corr_1"]) <= 1 for r in fb)
    assert {r["epsilon"] for r in fb} == {"0.0", "0.25", "0.5", "1.0"}
    printed = capsys.readouterr().out
    assert "VERDICT" in printed and printed.strip().splitlines()[0] in (out / "verdict.txt").read_text()
    assert (out / "depth.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, flag", [
    (["--depths", "1"], "--depths"),
    (["--eps", "0.5", "1"], "--eps"),
    (["--seeds", "0"], "--seeds"),
    (["--hidden", "2"], "--hidden"),
    (["--threshold", "1.5"], "--threshold"),
    (["--horizon", "-1"], "--horizon"),
    (["--plateau-factor", "1"], "--plateau-factor"),
    (["--bp-batch", "0"], "--bp-batch"),
    (["--target", "other"], "--target"),
    (["--eps", "0", "nan"], "--eps: values must lie in [0, "),
    (["--depths", "400", "--n-in", "2", "--hidden", "2", "--n-out", "1"],
     "--depths: at depth 400"),
    (["--seeds", "100000000000"], "--seeds"),
    (["--n-in", "100000", "--hidden", "100000"], "GiB of memory"),
])
def test_cli_bad_arguments_exit_2_naming_the_flag(args, flag, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(TINY + args + ["--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert flag in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_out_under_a_file_fails_before_any_computation(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(SystemExit) as exc:
        main(TINY + ["--out", str(f / "sub")])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_cli_output_name_taken_by_a_folder_fails_before_any_computation(tmp_path: Path,
                                                                          capsys) -> None:
    (tmp_path / "verdict.txt").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(TINY + ["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--out" in err and "verdict.txt" in err
    assert not (tmp_path / "depth_sweep.csv").exists()
