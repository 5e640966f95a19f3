"""figures.fig12: Figure 12 from a curves.csv."""

from pathlib import Path

import pytest

from figures.fig12 import plot_figure12


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
