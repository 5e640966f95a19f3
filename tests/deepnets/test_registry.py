"""The rule registry (deepnets.rules.RULES): every rule's declaration checked, unknown names and
bad parameters refused in one line, and the package loading without torch or the layers."""

from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.colors import is_color_like

from deepnets.rules import ERROR_PATHS, METHODS, RULES, make, rules_with_param
from deepnets.rules.base import Rule

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deepnets" / "rules"


@pytest.mark.parametrize("method", METHODS)
def test_each_rule_declares_what_the_toolkit_reads(method: str) -> None:
    rule = RULES[method]
    assert issubclass(rule, Rule) and rule.name == method
    assert rule.label and rule.summary and rule.source
    assert is_color_like(rule.color)
    assert rule.error_path in ERROR_PATHS
    assert rule.learns_feedback <= (rule.error_path == "R")  # only a kept R can learn
    built = make(method)
    assert dict(built.params) == {k: s.default for k, s in rule.parameters.items()}
    assert make(method, **built.params) == built and hash(make(method)) == hash(built)


@pytest.mark.parametrize("method", METHODS)
def test_each_parameter_has_a_default_in_its_range_and_refuses_values_outside(method: str) -> None:
    for name, spec in RULES[method].parameters.items():
        assert spec.meaning
        assert spec.check(method, name, spec.default) == spec.default
        assert getattr(make(method, **{name: spec.default}), name) == spec.default
        below = spec.low if spec.low_open else spec.low - 1.0
        for bad in (below, spec.high * 2 + 1, math.nan, "x"):
            with pytest.raises(ValueError, match=f"^method '{method}': {name} must be") as err:
                make(method, **{name: bad})
            assert "\n" not in str(err.value)


def test_unknown_rules_and_parameters_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"^method must be one of \('bp', ") as err:
        make("nope")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="^method 'frfb' takes no parameter decay$"):
        make("frfb", decay=1.0)
    taker = rules_with_param("decay")[0]
    with pytest.raises(ValueError, match=rf"^method '{taker}' takes no parameter nope \(its "):
        make(taker, nope=1.0)


def test_a_rule_is_an_immutable_value() -> None:
    rule = make(METHODS[0])
    with pytest.raises(AttributeError):
        rule.anything = 1  # type: ignore[attr-defined]
    assert make("urfb", epsilon=0.5) != make("urfb") and make("urfb") == make("urfb")


def test_the_cli_refuses_an_unknown_rule_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "deepnets.train", "--method", "nope", "--epochs", "1",
         "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --method: invalid choice: 'nope'" in done.stderr


def test_rules_protocols_and_the_figure_style_load_without_torch() -> None:
    code = ("import sys, deepnets.rules, deepnets.experiments.protocols, figures.style; "
            "bad = [m for m in ('torch', 'deepnets.nn.layers') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr


def test_rule_modules_never_import_layers_or_torch_at_the_top() -> None:
    for path in sorted(RULES_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level (function-level torch imports are lazy on purpose)
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(
                    ("torch", "deepnets.nn.layers", "deepnets.nn.network")), (
                    f"{path.name} imports {name}")
        text = path.read_text()
        assert "deepnets.nn.layers" not in text.replace(
            "deepnets.nn.layers.link_direct_feedback", "")
