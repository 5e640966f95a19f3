"""figures.style: the paper's colour code (from deepnets.experiments.protocols) and atomic PNG/PDF
output."""

from pathlib import Path

import pytest

from deepnets.experiments.protocols import PROTOCOLS
from figures.style import epsilon_colors, method_color, new_figure, save_figure


def test_paper_colour_code() -> None:
    assert method_color("BP") == "tab:green"
    assert method_color("urfb") == "tab:blue"
    assert method_color("frfb") == "tab:red"
    with pytest.raises(ValueError, match="no colour for protocol 'sgd'"):
        method_color("sgd")


def test_every_protocol_is_drawn_in_its_own_colour() -> None:
    colours = {name: method_color(name) for name in PROTOCOLS}
    assert colours == {name: p.color for name, p in PROTOCOLS.items()}
    assert len(set(colours.values())) == len(PROTOCOLS)


def test_epsilon_colours_are_distinct() -> None:
    colours = epsilon_colors([0, 0.25, 0.5, 1])
    assert len(set(colours.values())) == 4


def test_save_figure_writes_valid_png_and_pdf(tmp_path: Path) -> None:
    fig, axes = new_figure(1, 2)
    axes[0, 0].plot([0, 1], [1, 0])
    png, pdf = save_figure(fig, tmp_path / "fig")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf", "fig.png"]
