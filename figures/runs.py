"""Reading the training runs behind Figures 4-11 (Section 4) from a runs folder.

A run is a folder holding ``config.json`` and ``log.jsonl`` as written by ``deepnets.train``.
Runs are recognised by what their config says (architecture, method, loss, connectivity,
number of classes, untied and frozen layers), never by their folder name, so runs started by
hand are found as well as the ones ``deepnets.suite`` starts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from deepnets.arch import PRESETS, parse_arch
from deepnets.suite import PROTOCOLS  # Section 4's protocol names -> (method, loss, connectivity)


class MissingDataError(LookupError):
    """A figure cannot be drawn: the runs it needs are absent. The message says which."""


#: Legend labels in the paper's spelling (Figure 5).
PROTOCOL_LABELS: dict[str, str] = {
    "bp": "BP", "bp-h": "BP-H", "urfb": "URFB", "frfb": "FRFB",
    "urfb-50": "URFB 50%", "frfb-50": "FRFB 50%",
}


@dataclass(frozen=True)
class Run:
    """One training run: its folder, its config and its per-epoch log rows."""

    path: Path
    config: dict
    log: list[dict]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def arch(self) -> str:
        """The preset name (``simpnet``, ``deepnet_s`` ...) when the architecture is one, else its string."""
        return arch_name(str(self.config.get("arch", "")))

    @property
    def protocol(self) -> str | None:
        """The Section 4 protocol name (``bp``, ``bp-h``, ``urfb-50`` ...), or None for another setting."""
        method = self.config.get("method")
        loss = self.config.get("loss", "softmax" if method == "bp" else "hinge")
        conn = float(self.config.get("connectivity", 1.0))
        eps = float(self.config.get("epsilon", 1.0))
        if method == "urfb" and eps != 1.0:
            return None
        for name, (m, lo, c) in PROTOCOLS.items():
            if (m, lo) == (method, loss) and abs(c - conn) < 1e-9:
                return name
        return None

    @property
    def n_classes(self) -> int:
        net = self.config.get("net", {})
        return int(net.get("n_classes", self.config.get("n_classes", 10)))

    @property
    def untied(self) -> bool:
        """Untied (locally connected, Section 4.1) layers: converted, built so, or in the arch string."""
        net = self.config.get("net", {})
        return bool(self.config.get("untie") or net.get("untied")
                    or "untied" in str(self.config.get("arch", "")).lower())

    @property
    def frozen(self) -> tuple[int, ...]:
        return tuple(int(i) for i in (self.config.get("freeze") or ()))

    @property
    def epochs_done(self) -> int:
        return int(self.log[-1]["epoch"]) if self.log else 0

    @property
    def finished(self) -> bool:
        """Contract: a run is finished when its log's last epoch equals the config's ``epochs``."""
        return self.epochs_done == int(self.config.get("epochs", -1))

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of one logged quantity (``train_error``, ``val_error`` ...)."""
        rows = [r for r in self.log if r.get(key) is not None]
        return [int(r["epoch"]) for r in rows], [float(r[key]) for r in rows]

    def final(self, key: str) -> float:
        """The value of ``key`` at the last logged epoch."""
        return float(self.log[-1][key])


def arch_name(arch: str) -> str:
    """Map an architecture string back to its preset name where it is one (Section 4's nets)."""
    key = arch.strip().lower()
    if key in PRESETS:
        return key
    try:  # an untied layer has the connectivity of the conv it replaces (Section 4.1)
        specs = [replace(s, kind="conv") if s.kind == "untied" else s for s in parse_arch(arch)]
    except ValueError:
        return arch
    for name, text in PRESETS.items():
        if parse_arch(text) == specs:
            return name
    return arch


def load_run(path: str | Path) -> Run | None:
    """The run in ``path``, or None when the folder holds no ``config.json`` or no logged epoch.

    A folder whose files are not a ``deepnets.train`` run's (unreadable JSON, a config without
    ``method``, log lines without ``epoch``) is skipped with a one-line warning on stderr.
    """
    path = Path(path)
    cfg_file, log_file = path / "config.json", path / "log.jsonl"
    if not cfg_file.is_file() or not log_file.is_file():
        return None
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
        rows = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        print(f"figures: skipping {path}: unreadable run files ({exc})", file=sys.stderr)
        return None
    if not (isinstance(config, dict) and "method" in config
            and all(isinstance(r, dict) and "epoch" in r for r in rows)):
        print(f"figures: skipping {path}: not a deepnets.train run folder", file=sys.stderr)
        return None
    return Run(path, config, rows) if rows else None


def find_runs(runs_dir: str | Path) -> list[Run]:
    """Every run with at least one logged epoch below ``runs_dir`` (any depth), sorted by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = (load_run(cfg.parent) for cfg in sorted(root.rglob("config.json")))
    return [r for r in runs if r is not None]


def select(runs: Iterable[Run], *, arch: str, protocol: str | None = None, n_classes: int = 10,
           untied: bool = False, frozen: tuple[int, ...] = (), method: str | None = None) -> Run | None:
    """The run matching the description; among several, the one with most logged epochs."""
    matches = [r for r in runs
               if r.arch == arch and r.n_classes == n_classes and r.untied == untied
               and r.frozen == frozen
               and (protocol is None or r.protocol == protocol)
               and (method is None or r.config.get("method") == method)]
    return max(matches, key=lambda r: (r.epochs_done, r.name), default=None)


def train_size(run: Run) -> str:
    """The training-set size of a run as its config records it (Section 4: 45,000 of CIFAR's 50,000)."""
    cfg = run.config
    for key in ("n_train", "train_size"):
        if cfg.get(key) is not None:
            return str(cfg[key])
    val = cfg.get("val_size", 5000)
    sub = cfg.get("train_subset")
    return f"{sub} (subset)" if sub else f"full training split less {val} held out"


def scale_lines(runs: Iterable[Run]) -> list[str]:
    """One line per run stating the scale it was made at: epochs, training-set size, dataset copy."""
    lines = []
    for r in runs:
        cfg = r.config
        data = cfg.get("dataset_label") or cfg.get("data", "?")
        lines.append(
            f"- {r.name}: {r.arch}, {r.protocol or cfg.get('method')}"
            f"{', untied ' + str(cfg.get('untie')) if r.untied else ''}"
            f"{', frozen ' + str(list(r.frozen)) if r.frozen else ''}; "
            f"epochs {r.epochs_done}/{cfg.get('epochs', '?')}; train {train_size(r)}; "
            f"val {cfg.get('val_size', '?')}; batch {cfg.get('batch_size', '?')}; "
            f"lr {cfg.get('lr', '?')}; seed {cfg.get('seed', '?')}; data {data}"
            f" ({cfg.get('data_dir', '?')}); device {cfg.get('device', '?')}")
    return lines
