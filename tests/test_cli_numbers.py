"""Every numeric flag of every CLI refuses NaN, inf, a huge value, -1 and a 100,000-character
string with one short error line and exit status 2, before any work (issue 19, the next sweep:
``--momentum nan``, ``--lr-gamma 0``, ``--pack 10**9``, ``--target-sd 1e308`` and the like).

The flags are found by walking each CLI's parser (an option that takes a value and whose
``type`` converts it to a number), so a flag added later is tried too. Each CLI is called
in-process with arguments that would otherwise make a tiny, valid run."""

from __future__ import annotations

import argparse
import contextlib
import io
import traceback
from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

#: CLI module -> (its parser's builder, arguments of a tiny valid run given the test's inputs).
Base = Callable[[dict[str, Path]], list[str]]
TRAIN = ["--epochs", "1", "--batch-size", "10", "--val-size", "10", "--probe-size", "0",
         "--device", "cpu", "--quiet"]
CLIS: dict[str, tuple[str, Base]] = {
    "deepnets.train": ("deepnets.training.runconfig:build_parser", lambda p: [
        "--data-dir", str(p["cifar"]), *TRAIN, "--out", str(p["tmp"] / "train")]),
    "deepnets.suite": ("deepnets.suite:build_parser", lambda p: [
        "4", "--archs", "simpnet", "--protocols", "urfb", "--data-dir", str(p["cifar"]), *TRAIN,
        "--estimate-steps", "0", "--dry-run", "--out", str(p["tmp"] / "suite")]),
    "deepnets.evaluate": ("deepnets.evaluate:build_parser", lambda p: [
        "--run", str(p["tmp"] / "no-run"), "--device", "cpu"]),
    "deepnets.rulebench": ("deepnets.rulebench:build_parser", lambda p: [
        "run", "--data-dir", str(p["cifar"]), "--rules", "urfb", "--models", "simpnet",
        "--seeds", "0", "--train-size", "20", *TRAIN, "--estimate-steps", "0", "--dry-run",
        "--out", str(p["tmp"] / "rulebench")]),
    "sims.epsilon_sweep": ("sims.epsilon_sweep:_parser", lambda p: [
        "--eps", "0", "1", "--widths", "4", "3", "2", "--runs", "1", "--points", "11", "--quiet",
        "--out", str(p["tmp"] / "sweep")]),
    "sims.depth_sweep": ("sims.depth_sweep:_parser", lambda p: [
        "--depths", "2", "--seeds", "1", "--n-in", "4", "--hidden", "4", "--n-out", "2", "--eps",
        "0", "1", "--no-bp", "--quiet", "--out", str(p["tmp"] / "depth")]),
    "sims.circuits.__main__": ("sims.circuits.__main__:build_parser", lambda p: [
        "--samples", "0", "--S", "1", "--mu", "0.5", "--M", "4", "--K", "1", "--quiet"]),
    "theory.__main__": ("theory.__main__:build_parser", lambda p: ["--only", "eq10", "--quiet"]),
}
BAD = {"nan": "nan", "inf": "inf", "huge": "1e308", "-1": "-1", "long": "7" * 100_000}
#: Flags whose negative values mean something (a threshold planted below zero).
NEGATIVE_OK = {("sims.circuits.__main__", "--sigma-t-upper"),
               ("sims.circuits.__main__", "--sigma-t-lower")}


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield action


def _numeric_flags(builder: str) -> list[str]:
    """The options of the parser that take a value and convert it to a number (not a path,
    not a string, not a choice)."""
    module, name = builder.split(":")
    flags = []
    for a in _actions(getattr(import_module(module), name)()):
        kind = a.type
        if (a.option_strings and a.nargs != 0 and a.choices is None and kind is not None
                and getattr(kind, "__name__", "") not in ("path_arg", "str", "Path")
                and a.option_strings[-1] not in flags):
            flags.append(a.option_strings[-1])
    return flags


CASES = [(cli, flag) for cli, (builder, _) in CLIS.items() for flag in _numeric_flags(builder)]


def _run(module: str, argv: list[str]) -> dict[str, Any]:
    err = io.StringIO()
    result: dict[str, Any] = {"traceback": None}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            result["code"] = import_module(module).main(argv)
        except SystemExit as exc:
            result["code"] = exc.code
        except Exception:  # noqa: BLE001 (the traceback is what the test reports)
            result["code"], result["traceback"] = None, traceback.format_exc()
    return {**result, "err": err.getvalue()}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from deepnets.training.minidata import write_cifar10

    root = tmp_path_factory.mktemp("numbers")
    write_cifar10(root / "cifar", n=8)
    return {"cifar": root / "cifar", "tmp": root}


def test_the_walk_finds_the_numeric_flags() -> None:
    found = set(CASES)
    for case in [("deepnets.train", "--momentum"), ("deepnets.train", "--lr-gamma"),
                 ("deepnets.suite", "--pack"), ("deepnets.suite", "--lr-steps"),
                 ("sims.epsilon_sweep", "--target-sd"), ("sims.circuits.__main__", "--samples"),
                 ("theory.__main__", "--n-outside"), ("deepnets.evaluate", "--batch-size")]:
        assert case in found
    assert len(CASES) > 80


@pytest.mark.parametrize(("cli", "flag"), CASES,
                         ids=[f"{c.removesuffix('.__main__')} {f}" for c, f in CASES])
def test_every_numeric_flag_refuses_nan_inf_huge_negative_and_long_values(
        inputs: dict[str, Path], cli: str, flag: str) -> None:
    base = CLIS[cli][1](inputs)
    for label, value in BAD.items():
        if label == "-1" and (cli, flag) in NEGATIVE_OK:
            continue
        result = _run(cli, [*base, f"{flag}={value}"])
        assert result["traceback"] is None, (label, result["traceback"])
        assert result["code"] == 2, (label, result["code"], result["err"][-300:])
        last = result["err"].strip().splitlines()[-1]
        assert "error:" in last and len(last) < 400, (label, last[:500])
