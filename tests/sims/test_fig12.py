"""figures.fig12: Figure 12 from a curves.csv."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from figures.fig12 import NOISE_FACTOR, draw_figure12, noise_floor, plot_figure12


def write_curves(path: Path) -> None:
    lines = ["run,method,epsilon,t,error,corr_1,corr_2"]
    for run in (1, 2):
        for j in range(5):
            lines.append(f"{run},bp,,{0.1 * j},{10.0 ** -j},,")
            for eps in (0.0, 1.0):
                corr = "" if j == 0 else f"{0.2 * j}"
                lines.append(f"{run},feedback,{eps},{0.1 * j},{10.0 ** (-j * (1 + eps))},"
                             f"{corr},{corr}")
    path.write_text("\n".join(lines) + "\n")


def test_plot_figure12_writes_png_and_pdf(tmp_path: Path) -> None:
    curves = tmp_path / "curves.csv"
    write_curves(curves)
    paths = plot_figure12(curves, tmp_path / "fig12")
    assert [p.name for p in paths] == ["fig12.png", "fig12.pdf"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG"


def test_plot_figure12_rejects_a_file_without_the_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks columns"):
        plot_figure12(bad, tmp_path / "fig")
    assert not (tmp_path / "fig.png").exists()


def test_layout_is_the_papers_rows_and_columns(tmp_path: Path) -> None:
    """Top row log10 e, one curve per algorithm; rows below corr(W_l, R_lᵗ), l = k..1; a column per run."""
    curves = tmp_path / "curves.csv"
    write_curves(curves)
    fig = draw_figure12(curves)
    axes = np.array(fig.axes).reshape(3, 2)                  # 1 + k rows (k = 2), 2 runs
    assert [ax.get_title() for ax in axes[0]] == ["run 1", "run 2"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["log10 error", "corr(W2, R2ᵗ)",
                                                       "corr(W1, R1ᵗ)"]
    for ax in axes[0]:
        curves = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        assert len(curves) == 3                               # BP, ε = 0, ε = 1
        np.testing.assert_allclose(curves[0].get_ydata(), -np.arange(5.0))   # log10 of 10^-j
    assert all(len(ax.get_lines()) == 2 for ax in axes[1:].ravel())   # one curve per ε, no BP
    plt.close(fig)


def test_error_under_the_solver_noise_floor_is_marked_not_drawn_as_dynamics(tmp_path: Path) -> None:
    """e(t) falls to 1e-20·e(0): solid only while above NOISE_FACTOR·rtol²·e(0), dotted after,
    and a dashed grey line marks the floor."""
    lines = ["run,method,epsilon,t,error,corr_1,corr_2"]
    for j in range(11):
        lines.append(f"1,feedback,1.0,{j},{10.0 ** (-2 * j)},0.5,0.5")
    curves = tmp_path / "curves.csv"
    curves.write_text("\n".join(lines) + "\n")
    fig = draw_figure12(curves, rtol=1e-7)
    top = fig.axes[0]
    floor = noise_floor(1.0, 1e-7)
    assert floor == pytest.approx(NOISE_FACTOR * 1e-14)
    solid, dotted, marker = top.get_lines()
    assert solid.get_linestyle() == "-" and min(solid.get_ydata()) >= np.log10(floor)
    assert dotted.get_linestyle() == ":" and min(dotted.get_ydata()) == -20
    assert marker.get_linestyle() == "--" and marker.get_ydata()[0] == pytest.approx(np.log10(floor))
    looser = draw_figure12(curves, rtol=1e-3)                 # a looser solver: an earlier cut
    assert max(looser.axes[0].get_lines()[0].get_xdata()) < max(solid.get_xdata())
    plt.close(fig)
    plt.close(looser)
