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
    from deepnets.training.engine import evaluate

    assert deepnets.evaluate_net is evaluate


def _entries_without_help(help_text: str) -> tuple[list[str], list[str]]:
    """(every argument listed in a ``--help`` text, those listed without a description)."""
    lines = help_text.splitlines()
    entries, bare = [], []
    section = False
    for i, line in enumerate(lines):
        if line in ("options:", "optional arguments:", "positional arguments:"):
            section = True
            continue
        if section and line and not line.startswith(" "):
            section = False
        if not (section and line.startswith("  ") and not line.startswith("   ")):
            continue
        name = line.split()[0].rstrip(",")
        if name == "-h":
            continue
        entries.append(name)
        same_line = len([p for p in line.strip().split("  ") if p.strip()]) > 1
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not same_line and not (nxt.startswith("   ") and nxt.strip()):
            bare.append(name)
    return entries, bare


@pytest.mark.parametrize("module",
                         ["deepnets.training.runconfig", "deepnets.evaluate", "deepnets.suite"])
def test_every_cli_flag_has_help(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    text = importlib.import_module(module).build_parser().format_help()
    entries, bare = _entries_without_help(text)
    assert len(entries) >= 4 and "--device" in entries
    assert bare == []


def test_the_help_check_catches_a_flag_without_help() -> None:
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--documented", help="says what it does")
    parser.add_argument("--silent-flag-with-a-long-name", metavar="VALUE")
    parser.add_argument("--silent")
    entries, bare = _entries_without_help(parser.format_help())
    assert entries == ["--documented", "--silent-flag-with-a-long-name", "--silent"]
    assert bare == ["--silent-flag-with-a-long-name", "--silent"]
