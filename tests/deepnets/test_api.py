"""The public API of ``deepnets`` (its module docstring's example runs as documented)."""

import argparse
import doctest
import importlib

import pytest

import deepnets


def test_docstring_example_runs() -> None:
    result = doctest.testmod(deepnets, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0


def test_every_export_is_documented() -> None:
    for name in deepnets.__all__:
        obj = getattr(deepnets, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


def test_evaluate_net_survives_the_cli_module_import() -> None:
    importlib.import_module("deepnets.evaluate")  # rebinds the package attribute ``evaluate``
    from deepnets.engine import evaluate

    assert deepnets.evaluate_net is evaluate


@pytest.mark.parametrize("module", ["deepnets.runconfig", "deepnets.evaluate", "deepnets.suite"])
def test_every_cli_flag_has_help(module: str) -> None:
    parser: argparse.ArgumentParser = importlib.import_module(module).build_parser()
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert len(actions) >= 4
    assert all(a.help for a in actions), [a.dest for a in actions if not a.help]
