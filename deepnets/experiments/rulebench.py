"""The feedback-rule benchmark's grid and tables (docs/rules.md), run by
``python -m deepnets.rulebench``.

* :func:`grid`: every rule of the registry :data:`deepnets.rules.RULES`, each by its protocol
  of the same name (:data:`deepnets.experiments.protocols.PROTOCOLS`), x the models ``simpnet``
  (Section 4's architecture string) and ``resnet-mini`` (a plain torch ResNet-style model
  trained through :func:`deepnets.convert`, :mod:`deepnets.nn.models`), a run per seed, each
  run folder ``<model>-cifar10-<rule>-s<seed>``; trained by
  :func:`deepnets.experiments.runs.run_all`.
* :func:`tables`: docs/rules.md's markdown tables from the run folders' ``config.json`` and
  ``log.jsonl``: final validation error (mean +- sd over seeds, and each seed), the W-R^t
  correlation per layer and the alignment probe's angles (mean over layers, and per layer).
"""

from __future__ import annotations

import math
import re
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deepnets.experiments.grid import RunSpec
from deepnets.experiments.protocols import PROTOCOLS
from deepnets.rules import RULES
from deepnets.training.rundir import CONFIG, read_config, read_log

PROG = "python -m deepnets.rulebench"
#: The default grid: the protocol of every rule of the registry.
RULE_GRID = tuple(RULES)
MODELS = ("simpnet", "resnet-mini")


def grid(rules: Sequence[str], epochs: int, seeds: Sequence[int],
         resnet_seeds: Sequence[int], models: Sequence[str] = MODELS) -> list[RunSpec]:
    """The runs: every model x rule, simpnet for each of ``seeds``, resnet-mini for each of
    ``resnet_seeds``; seed-major (every model and rule of the first seed first), so that a grid
    cut short has one complete seed. A seed, rule or model given twice is one run (the first
    place it was given keeps its order)."""
    out = []
    for seed in dict.fromkeys([*seeds, *resnet_seeds]):
        for model in dict.fromkeys(models):
            if seed not in (seeds if model == "simpnet" else resnet_seeds):
                continue
            for rule in dict.fromkeys(rules):
                spec = RunSpec(f"{model}-cifar10-{rule}", model, rule, "cifar10", epochs)
                out.append(spec.with_seed(seed))
    return out


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _angles(record: dict[str, Any], key: str, skip_output: bool = False) -> list[float]:
    probe = record.get("alignment") or {}
    items = list(probe.items())[:-1] if skip_output else list(probe.items())
    return [float(m[key]) for _, m in items if m.get(key) is not None]


#: A run folder of :func:`grid`: ``<model>-cifar10-<rule>-s<seed>``.
RUN_NAME = re.compile(r"(?P<model>.+)-cifar10-(?P<protocol>.+)-s(?P<seed>\d+)")


class TableError(ValueError):
    """A folder that holds no run the tables can show; the message says why."""


def collect(runs: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(model, protocol) -> per seed: config, final record, epochs. Folders that are not run
    folders of :func:`grid` are left out with a note on stderr."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for folder in sorted(p for p in runs.iterdir() if (p / CONFIG).is_file()):
        match = RUN_NAME.fullmatch(folder.name)
        if match is None:
            print(f"{PROG}: note: {folder} left out: not named <model>-cifar10-<rule>-s<seed>",
                  file=sys.stderr)
            continue
        cfg, log = read_config(folder), read_log(folder)
        if not log:
            continue
        out.setdefault((match["model"], match["protocol"]), []).append(
            {"seed": cfg.get("seed"), "config": cfg, "final": log[-1], "epochs": len(log),
             "done": len(log) == cfg.get("epochs"), "log": log})
    for v in out.values():
        v.sort(key=lambda r: int(r["seed"] or 0))
    if not out:
        raise TableError(f"{runs} holds no run with a finished epoch "
                         "(python -m deepnets.rulebench run --out DIR trains them)")
    return out


def tables(runs: Path) -> str:
    data = collect(runs)
    lines: list[str] = []
    order = [p for p in (*RULE_GRID, *PROTOCOLS) if p in {k[1] for k in data}]
    order = list(dict.fromkeys(order))
    for model in MODELS:
        keys = [(model, p) for p in order if (model, p) in data]
        if not keys:
            continue
        any_run = data[keys[0]][0]
        names = any_run["config"].get("weight_layer_names") or []
        header = ("| rule | final val error (mean ± sd) | per seed | final train error | "
                  "W–Rᵗ corr (per layer) | Δ angle ° (mean over layers) | ΔW angle ° (mean) "
                  "| W–Rᵗ angle ° (mean) |")
        lines += [f"### {model}", "", header, "|---|---|---|---|---|---|---|---|"]
        for key in keys:
            rows = data[key]
            label = PROTOCOLS[key[1]].label if key[1] in PROTOCOLS else key[1]
            val = [r["final"]["val_error"] for r in rows if r["final"].get("val_error") is not None]
            train = [r["final"]["train_error"] for r in rows]
            seeds = ", ".join(f"s{r['seed']}: {_fmt(r['final'].get('val_error'), 3)}"
                              + ("" if r["done"] else f" (epoch {r['epochs']})") for r in rows)
            corr_layers = list(zip(*[r["final"].get("corr") or [] for r in rows]))
            corr = " / ".join(
                "-" if any(c is None for c in col) else f"{statistics.mean(col):.2f}"
                for col in corr_layers)
            angle = {k: [statistics.mean(a) for r in rows if (a := _angles(r["final"], k))]
                     for k in ("delta_angle", "update_angle", "weight_angle")}
            lines.append(f"| {label} | {_mean_sd(val)} | {seeds} | {_mean_sd(train)} | {corr} | "
                         + " | ".join(_fmt(statistics.mean(v)) if v else "-"
                                      for v in angle.values()) + " |")
        lines += ["", f"Layers: {', '.join(names)}.", ""]
        lines += [(f"Per-layer angles (°, final epoch, mean over seeds) for {model}: Δ angle / "
                   "ΔW angle / W–Rᵗ angle"), "",
                  "| rule | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for key in keys:
            rows = data[key]
            label = PROTOCOLS[key[1]].label if key[1] in PROTOCOLS else key[1]
            cells = []
            for name in names:
                parts = []
                for k in ("delta_angle", "update_angle", "weight_angle"):
                    vals = [r["final"]["alignment"][name][k] for r in rows
                            if r["final"].get("alignment", {}).get(name, {}).get(k) is not None]
                    parts.append(_fmt(statistics.mean(vals), 0) if vals else "-")
                cells.append(" / ".join(parts))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
