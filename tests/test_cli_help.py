"""Every flag of every CLI has ``--help`` text, and every CLI's parser is the shared
:class:`urfb_common.OneLineParser` (issue 19: ``rulebench run --help`` had 10 flags without
help; only train's parser cut long error lines). The parsers are found by running each CLI's
``main`` until it parses its arguments, so a CLI that builds its parser inside ``main`` is
walked too."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Iterator
from importlib import import_module
from pathlib import Path
from types import ModuleType

import pytest

import urfb_common

ROOT = Path(__file__).resolve().parents[1]
MODULES = ("deepnets.train", "deepnets.suite", "deepnets.evaluate", "deepnets.rulebench",
           "sims.epsilon_sweep", "sims.depth_sweep", "sims.circuits.__main__", "theory.__main__",
           "figures.__main__", "figures.report", "figures.summary")
SCRIPTS = tuple(sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")
                       if "def main(" in p.read_text(encoding="utf-8")))


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def _script(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"_bench_{name[:-3]}", ROOT / "benchmarks" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parser_of(target: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``main`` of ``target`` (a module, or a benchmarks/ script) parses with."""
    def caught(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", caught)
    monkeypatch.setattr(sys, "argv", [target])
    module = _script(target, monkeypatch) if target.endswith(".py") else import_module(target)
    with pytest.raises(_Parsed) as parsed:
        module.main() if target.endswith(".py") else module.main([])
    return parsed.value.parser


def _actions(parser: argparse.ArgumentParser, where: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        else:
            yield where, action


@pytest.mark.parametrize("target", MODULES + SCRIPTS)
def test_every_flag_of_every_cli_has_help_text(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser_of(target, monkeypatch)
    actions = list(_actions(parser, target))
    assert len(actions) > 1, "the parser was not found"  # --help and a flag at least
    missing = [f"{where} {'/'.join(a.option_strings) or a.dest}" for where, a in actions
               if a.help != argparse.SUPPRESS and not (a.help or "").strip()]
    assert missing == []


@pytest.mark.parametrize("target", MODULES + SCRIPTS)
def test_every_cli_cuts_its_error_line(target: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A 100,000-character bad value gives one short error line (exit 2)."""
    parser = _parser_of(target, monkeypatch)
    monkeypatch.undo()
    assert isinstance(parser, urfb_common.OneLineParser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--no-such-flag-" + "x" * 100_000])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and len(last) < 400, last[:500]


@pytest.mark.parametrize("target", MODULES)
def test_every_package_cli_main_is_wrapped_by_command_line(target: str) -> None:
    """``urfb_common.command_line`` gives a CLI its one-line "no space left" error and streams
    that print any character; a helper defined between the decorator and ``main`` once took the
    decorator from the suite's ``main``."""
    main = import_module(target).main
    assert main.__code__.co_name == "entry", f"{target}.main is not decorated by command_line"
    assert Path(main.__code__.co_filename).resolve() == Path(urfb_common.__file__).resolve()
