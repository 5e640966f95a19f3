"""Reading the training runs behind Figures 4-11 (Section 4) from a runs folder.

A run is a folder holding ``config.json`` and ``log.jsonl`` as written by ``deepnets.train``,
read with :mod:`deepnets.training.rundir` (the one reader of run folders). Runs are recognised by
what their config says (architecture, protocol, number of classes, untied and frozen layers), never
by their folder name, so runs started by hand are found as well as the ones ``deepnets.suite``
starts. Both layouts of ``config.json`` are read: schema 1 (``train_subset``, absolute
``data_dir``) and schema 2 (``train_size``, ``split_seed``, ``precision``, ``schema_version``).

Runs that differ only in their seed form one :class:`Seeds` group (:func:`select_seeds`): the
figures draw its mean over seeds with a min-max band, the tables its mean, sd and each seed.
Runs of the same description on other data (another training-set size or dataset copy) form
another group; :func:`choice_notes` names the group drawn and the runs left out.
"""

from __future__ import annotations

import atexit
import functools
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deepnets.experiments.protocols import PROTOCOLS, protocol_of
from deepnets.experiments.testresult import TEST, read_test
from deepnets.nn.arch import PRESETS, parse_arch
from deepnets.nn.models import MODELS
from deepnets.training.rundir import CONFIG, LOG, RunError, read_config, read_log
from urfb_common import NO_SPACE_ERRNOS, NoSpaceError

#: What a figure function reads runs from: a runs folder, or runs already read by :func:`find_runs`.
RunSource = str | os.PathLike[str] | Sequence["Run"]


class MissingDataError(LookupError):
    """A figure cannot be drawn: the runs it needs are absent. The message says which."""


@dataclass(frozen=True)
class Run:
    """One training run: its folder, config and per-epoch log rows, and what the config says.

    Build it with :meth:`read`, which checks that every value the figures use can be read.
    """

    path: Path
    config: dict[str, Any]
    log: list[dict[str, Any]]
    #: The preset name (``simpnet``, ``deepnet_s`` ...) when the architecture is one, else its string.
    arch: str
    #: The Section 4 protocol name (``bp``, ``bp-h``, ``urfb-50`` ...), or None for another setting.
    protocol: str | None
    n_classes: int
    #: Whether some layers are untied (locally connected, Section 4.1): the config's ``untied``
    #: list or ``net.untied`` (conv layers built untied), or ``untied N KxK`` layers of the
    #: parsed architecture -- never a substring of a name.
    untied: bool
    frozen: tuple[int, ...]
    #: The folder its files were read from, where not ``path``: a copy of the files as git's
    #: index holds them (:func:`committed_runs`).
    files: Path | None = None

    def test_result(self) -> dict[str, Any] | None:
        """The run's ``test.json`` (its test-split score), None when it was not scored."""
        return read_test(self.files or self.path)

    def homogeneity(self) -> dict[str, Any] | None:
        """Figure 8's numbers for the run's first untied layer, from its log (the trainer's
        ``homogeneity`` and ``homogeneity_start``, :mod:`deepnets.nn.homogeneity`)::

            {"epoch": E, "layer": name, "trained": t, "start": s, "chance": c,
             "untied_init": "replicated"}

        ``trained`` and ``chance`` after the last epoch that has them (E), ``start`` before the
        first update (None when epoch 1's record lacks it: a run begun before the trainer
        recorded it). None when no record has them; :class:`RunError` when they are not
        numbers."""
        rows = [r for r in self.log if r.get("homogeneity")]
        if not rows:
            return None
        last = rows[-1]
        layer = next(iter(last["homogeneity"]))
        start = (self.log[0].get("homogeneity_start") or {}).get(layer)
        try:
            now = last["homogeneity"][layer]
            numbers = {"trained": now["across_locations"], "chance": now["chance"],
                       **({} if start is None else {"start": start["across_locations"]})}
        except (KeyError, TypeError):
            numbers = {}
        if len(numbers) < 2 or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                   for v in numbers.values()):
            raise RunError(f"{self.path / LOG}: homogeneity of {layer} is not a number "
                           "(across_locations, chance, and the same before the first update)")
        return {"epoch": int(last["epoch"]), "layer": layer, "start": None, **numbers,
                "untied_init": self.config.get("untied_init") or "independent"}

    @classmethod
    def read(cls, path: str | Path) -> Run:
        """The run in ``path``; :class:`RunError` (naming the file) when it cannot be read as one."""
        path = Path(path)
        config, log = read_config(path), read_log(path)
        if "method" not in config:
            raise RunError(f"{path / CONFIG} has no 'method': not a deepnets.train run folder")
        seed = config.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise RunError(f"{path / CONFIG}: seed {seed!r:.40} is not a non-negative integer")
        names = config.get("weight_layer_names")
        if names is not None and not (isinstance(names, list)
                                      and all(isinstance(n, str) for n in names)):
            raise RunError(f"{path / CONFIG}: weight_layer_names is not a list of layer names")
        _check_log(path, log, None if names is None else len(names))
        net = config.get("net") or {}
        try:
            return cls(path, config, log, arch=arch_name(str(config.get("arch", ""))),
                       protocol=_protocol_name(config),
                       n_classes=int(net.get("n_classes", config.get("n_classes", 10))),
                       untied=bool(config.get("untied") or net.get("untied")
                                   or declares_untied(str(config.get("arch", "")))),
                       frozen=tuple(int(i) for i in (config.get("frozen") or ())))
        except (AttributeError, TypeError, ValueError) as exc:
            raise RunError(f"{path / CONFIG}: unreadable value ({exc})") from None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def key(self) -> tuple[str, str | None, int, bool, tuple[int, ...]]:
        """What a figure asks for: architecture, protocol, classes, untied, frozen layers."""
        return self.arch, self.protocol, self.n_classes, self.untied, self.frozen

    @property
    def seed(self) -> int:
        """The run's seed (``config.json``'s ``seed``; 0 where absent)."""
        return int(self.config.get("seed") or 0)

    @property
    def data_key(self) -> tuple[str, str, str]:
        """The data a run saw and how it learnt: training-set size, dataset copy and the
        protocol choices (:meth:`choices`). Runs of one :attr:`key` that differ here are not
        seeds of one experiment."""
        cfg = self.config
        return (train_size(self), str(cfg.get("dataset_label") or cfg.get("data") or "?"),
                self.choices())

    def choices(self) -> str:
        """``sequential order, no biases`` (the paper's protocol) or what the run did instead,
        for an untied run how its untied layers started (``replicated`` or ``independent``),
        whether the error went down without sigma' (``--no-sigma-prime-down``), and whether R's
        connectivity mask was W's (``--shared-masks``); a config written before these keys
        existed had the simultaneous order and biases, and untied layers drawn apart at every
        location."""
        cfg = self.config
        order = str(cfg.get("update_order") or "simultaneous")
        bias = cfg.get("bias")
        if bias is None:  # before config schema 3: an architecture string had biases
            bias = str(cfg.get("arch", "")) not in MODELS
        text = f"{order} order, {'biases' if bias else 'no biases'}"
        if self.untied:  # before config schema 4: every location drawn apart
            text += f", {cfg.get('untied_init') or 'independent'} untied start"
        if cfg.get("sigma_prime_down") is False:
            text += ", error sent down without sigma'"
        if cfg.get("shared_masks") is True:
            text += ", R masked as W"
        return text

    @property
    def epochs_done(self) -> int:
        return int(self.log[-1]["epoch"]) if self.log else 0

    @property
    def finished(self) -> bool:
        """Contract: a run is finished when its log's last epoch equals the config's ``epochs``."""
        return self.epochs_done == self.config.get("epochs")

    def describe(self) -> str:
        """``simpnet URFB, 10 classes, tied``: what :attr:`key` says, in words."""
        label = PROTOCOLS[self.protocol].label if self.protocol else self.config.get("method")
        frozen = f", frozen {list(self.frozen)}" if self.frozen else ""
        return (f"{self.arch} {label}, {self.n_classes} classes, "
                f"{'untied' if self.untied else 'tied'}{frozen}")

    def layer_names(self, n: int | None = None) -> list[str]:
        """The config's ``weight_layer_names``, input to output; with ``n``, exactly ``n`` names,
        ``layer i`` where the config names fewer."""
        names = [str(v) for v in self.config.get("weight_layer_names") or []]
        if n is None:
            return names
        return [names[i] if i < len(names) else f"layer {i}" for i in range(n)]

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """``(epochs, values)`` of one logged quantity (``train_error``, ``val_error`` ...)."""
        rows = [r for r in self.log if r.get(key) is not None]
        return [int(r["epoch"]) for r in rows], [float(r[key]) for r in rows]

    def final(self, key: str) -> float:
        """The value of ``key`` at the last logged epoch."""
        return float(self.log[-1][key])


def _protocol_name(config: dict[str, Any]) -> str | None:
    protocol = protocol_of(config)
    return None if protocol is None else protocol.name


#: Logged quantities the figures draw, each a finite number (or null) in every row that has it.
_NUMBERS = ("train_error", "val_error", "train_loss", "val_loss")


def _number(value: Any, low: float = -math.inf, high: float = math.inf) -> bool:
    """Whether ``value`` is null or a finite number (not a bool) in [low, high]."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and low <= value <= high)


def _row_problem(row: dict[str, Any], layers: int | None) -> str | None:
    """What is wrong with one log row where the figures read it (None: nothing): the errors
    and losses (finite), ``corr`` (in [-1, 1]), ``norm`` (one [|W|, |R|] pair of non-negative
    numbers per weight layer, ``layers`` of them when the config names the layers) and the
    per-layer ``saturated`` share (in [0, 1]) and ``preactivation`` size."""
    bad = [k for k in _NUMBERS if not _number(row.get(k))]
    if bad:
        return f"{bad[0]} is not a finite number"
    corr = row.get("corr")
    if corr is not None and not (isinstance(corr, list) and all(_number(v, -1, 1) for v in corr)):
        return "corr is not a list of correlations in [-1, 1]"
    norm = row.get("norm")
    if norm is not None:
        pairs = isinstance(norm, list) and all(
            isinstance(p, list) and len(p) == 2 and all(_number(v, 0) for v in p) for p in norm)
        if not pairs:
            return "norm is not a list of [|W|, |R|] pairs of non-negative numbers"
        if layers is not None and len(norm) != layers:
            return f"norm has {len(norm)} layers, the config names {layers}"
    for key, low, high in (("saturated", 0.0, 1.0), ("preactivation", 0.0, math.inf)):
        value = row.get(key)
        if value is not None and not (isinstance(value, dict)
                                      and all(_number(v, low, high) for v in value.values())):
            return f"{key} is not a mapping of layer names to numbers in [{low:g}, {high:g}]"
    return None


def _check_log(path: Path, log: list[dict[str, Any]], layers: int | None = None) -> None:
    """:class:`RunError` unless every row has an integer ``epoch`` >= 1, later than the row
    before, and numbers where figures read them (:func:`_row_problem`)."""
    last = 0
    for i, row in enumerate(log, start=1):
        epoch = row.get("epoch")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch <= last:
            raise RunError(f"{path / LOG} line {i}: epoch {epoch!r} is not an integer after the "
                           f"line before's ({last}): not a deepnets.train epoch record")
        last = epoch
        problem = _row_problem(row, layers)
        if problem:
            raise RunError(f"{path / LOG} line {i} (epoch {epoch}): {problem}")


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


def declares_untied(arch: str) -> bool:
    """Whether the architecture string, parsed, has an ``untied N KxK`` layer."""
    try:
        return any(s.kind == "untied" for s in parse_arch(arch))
    except ValueError:
        return False


def load_run(path: str | Path) -> Run | None:
    """The run in ``path``, or None when it has no ``config.json`` or no logged epoch yet.

    A folder that cannot be read as a ``deepnets.train`` run (truncated or corrupt files, a
    config without ``method``, log lines that are not epoch records) is skipped with a
    one-line warning on stderr.
    """
    if not (Path(path) / CONFIG).is_file():
        return None
    try:
        run = Run.read(path)
    except RunError as exc:
        print(f"figures: skipping {path}: {exc}", file=sys.stderr)
        return None
    return run if run.log else None


def run_folders(root: Path) -> list[Path]:
    """The folders below ``root`` (any depth, ``root`` included) holding a ``config.json``,
    following symlinked folders (``results/bf16-paired``'s fp32 runs are links into another
    grid; ``Path.rglob`` does not descend into them). A folder reached twice
    (through a link, or a link cycle) is read once, under the first path found in sorted order.
    A folder with a ``log.jsonl`` and no ``config.json`` is named on stderr, as :func:`load_run`
    names a folder it skips (its run cannot be told apart from another without its config)."""
    seen: set[Path] = set()
    found = []
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = Path(folder).resolve()
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        if CONFIG in files:
            found.append(Path(folder))
        elif LOG in files:
            print(f"figures: skipping {folder}: a {LOG} without a {CONFIG}", file=sys.stderr)
    return found


def find_runs(runs_dir: str | os.PathLike[str]) -> list[Run]:
    """Every run with at least one logged epoch below ``runs_dir`` (any depth, through symlinked
    folders, each run once), sorted by path."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    runs = (load_run(folder) for folder in sorted(run_folders(root)))
    return [r for r in runs if r is not None]


def readable_scores(runs: Iterable[Run]) -> list[Run]:
    """``runs`` less each whose ``test.json`` cannot be read (corrupt, or a value that is not a
    score), named on stderr as :func:`load_run` names a folder it skips: for the CLIs that draw
    or compare what there is (the figures, the paired comparisons)."""
    kept = []
    for run in runs:
        try:
            run.test_result()
        except RunError as exc:
            print(f"figures: skipping {run.path}: {exc}", file=sys.stderr)
            continue
        kept.append(run)
    return kept


def pretraining_runs(runs: list[Run]) -> set[str]:
    """Folder names of runs that another run names as its ``from_run`` (a pretraining stage,
    Section 4.1's deepnet_s protocol): not a result of their own."""
    return {Path(str(r.config["from_run"])).name for r in runs if r.config.get("from_run")}


def committed_runs(runs_dir: str | os.PathLike[str]) -> list[Run]:
    """The runs of :func:`find_runs` whose ``log.jsonl`` git tracks, read as git's index holds
    them: the report's tables come from committed (or staged) files only, so that runs still
    training in the working tree -- new ones, and committed ones trained on toward a later
    budget -- leave them as they are. A run whose ``config.json``, ``log.jsonl`` or ``test.json``
    differs from the index (or is not in it) is read from a copy of the index's files. Outside a
    git checkout, every run as it is."""
    runs = find_runs(runs_dir)
    index = _git_index(Path(runs_dir))
    if index is None:
        return runs
    top, tracked, changed = index
    out = []
    for run in runs:
        if (run.path / LOG).resolve() not in tracked:
            continue
        files = {name: (run.path / name).resolve() for name in RUN_FILES}
        if any(f in changed or (f.exists() and f not in tracked) for f in files.values()):
            try:
                run = _from_index(run, top, [f for f in files.values() if f in tracked])
            except RunError as exc:  # as load_run does with a folder it cannot read
                print(f"figures: skipping {run.path} as committed: {exc}", file=sys.stderr)
                continue
        out.append(run)
    return out


#: The files of a run folder the report reads.
RUN_FILES = (CONFIG, LOG, TEST)


def _git(top: Path | str, *args: str) -> str:
    return subprocess.run(["git", "-C", str(top), *args], capture_output=True, text=True,
                          check=True).stdout


def _git_index(folder: Path) -> tuple[Path, set[Path], set[Path]] | None:
    """The checkout holding ``folder``, the resolved paths of the files git tracks there and of
    those whose working-tree copy differs from the index; None when ``folder`` is in no git
    checkout (or git is missing)."""
    if not folder.is_dir():
        return Path(), set(), set()
    try:
        top = Path(_git(folder, "rev-parse", "--show-toplevel").strip())
        listed, changed = (_git(top, *cmd, "-z").split("\0")
                           for cmd in (("ls-files",), ("diff", "--name-only")))
    except (OSError, subprocess.CalledProcessError):
        return None
    return (top, {(top / n).resolve() for n in listed if n},
            {(top / n).resolve() for n in changed if n})


def _from_index(run: Run, top: Path, files: list[Path]) -> Run:
    """``run`` (at its own path) read from a copy of the index's version of ``files``, kept in
    a temporary folder that lives as long as this process; :class:`NoSpaceError` when the
    copy finds no room (a full disk, ``ulimit -f``)."""
    copy = Path(run.name)
    try:
        copy = _snapshots() / str(len(list(_snapshots().iterdir()))) / run.name
        copy.mkdir(parents=True)
        for f in files:
            (copy / f.name).write_text(_git(top, "show", f":{f.relative_to(top)}"),
                                       encoding="utf-8")
    except OSError as exc:
        if exc.errno not in NO_SPACE_ERRNOS:
            raise
        raise NoSpaceError(f"no space left on {copy}, the committed copy of {run.path} "
                           f"({os.strerror(exc.errno)})") from None
    return replace(Run.read(copy), path=run.path, files=copy)


@functools.cache
def _snapshots() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="figures-index-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def runs_of(source: RunSource) -> list[Run]:
    """The runs of a :data:`RunSource`: read from the folder, or the given runs."""
    if isinstance(source, (str, os.PathLike)):
        return find_runs(source)
    return list(source)


def _preference(run: Run) -> tuple[int, str]:
    """Among runs of one description the most logged epochs wins, then the last path."""
    return run.epochs_done, str(run.path)


def select(runs: Iterable[Run], *, arch: str, protocol: str, n_classes: int = 10,
           untied: bool = False, frozen: tuple[int, ...] = ()) -> Run | None:
    """One run matching the description (Figure 8 draws one trained layer): the most logged
    epochs, then the last path."""
    key = (arch, protocol, n_classes, untied, frozen)
    return max((r for r in runs if r.key == key), key=_preference, default=None)


@dataclass(frozen=True)
class Seeds:
    """The runs of one description and data that differ only in their seed, one run per seed,
    in seed order. Figures draw their mean with a min-max band; one seed is drawn as itself."""

    runs: tuple[Run, ...]

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("Seeds: no runs")
        if len({r.seed for r in self.runs}) != len(self.runs):
            raise ValueError("Seeds: two runs of one seed")

    @property
    def first(self) -> Run:
        return self.runs[0]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def protocol(self) -> str | None:
        return self.first.protocol

    def describe(self) -> str:
        """``simpnet URFB, 10 classes, tied: seeds 0, 1, 2 (mean, min-max band)``."""
        how = "one seed, drawn as itself" if self.n == 1 else "mean, band min-max over seeds"
        return (f"{self.first.describe()}: seed{'s' if self.n > 1 else ''} "
                f"{', '.join(map(str, self.seeds))} ({how}); epochs "
                f"{_span(r.epochs_done for r in self.runs)}; train {train_size(self.first)}")

    def layer_names(self) -> list[str]:
        """The weight layers, input to output, as the first run's probe (else its config) names
        them."""
        row = next((r for r in self.first.log if r.get("alignment")), None)
        if row is not None:
            return list(row["alignment"])
        return self.first.layer_names()

    def series(self, key: str) -> dict[int, dict[int, float]]:
        """``{seed: {epoch: value}}`` of one logged quantity (see :mod:`figures.stats`)."""
        return {r.seed: dict(zip(*r.series(key))) for r in self.runs}

    def layer_series(self, get: Callable[[dict[str, Any]], float | None]) -> dict[int, dict[int, float]]:
        """``{seed: {epoch: get(row)}}`` over the rows where ``get`` gives a number."""
        out: dict[int, dict[int, float]] = {}
        for r in self.runs:
            out[r.seed] = {}
            for row in r.log:
                v = get(row)
                if v is not None:
                    out[r.seed][int(row["epoch"])] = float(v)
        return out

    @property
    def common_epoch(self) -> int:
        """The last epoch every seed's run reached."""
        return min(r.epochs_done for r in self.runs)


def _span(values: Iterable[int]) -> str:
    v = sorted(set(values))
    return str(v[0]) if len(v) == 1 else f"{v[0]}-{v[-1]}"


def _setting_groups(runs: Iterable[Run]) -> dict[tuple, dict[tuple, dict[int, list[Run]]]]:
    """``{key: {data_key: {seed: [runs]}}}`` over the runs of a Section 4 protocol."""
    groups: dict[tuple, dict[tuple, dict[int, list[Run]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        if run.protocol is not None:
            groups[run.key][run.data_key][run.seed].append(run)
    return groups


def _choose(by_data: dict[tuple, dict[int, list[Run]]]) -> tuple[tuple, Seeds]:
    """The data setting with the most seeds (then most logged epochs, then last path), and per
    seed its run with the most logged epochs (then the last path)."""
    def weight(item: tuple[tuple, dict[int, list[Run]]]) -> tuple[int, int, str]:
        per_seed = item[1]
        best = [max(rs, key=_preference) for rs in per_seed.values()]
        return len(per_seed), sum(r.epochs_done for r in best), max(str(r.path) for r in best)

    data, per_seed = max(by_data.items(), key=weight)
    return data, Seeds(tuple(max(per_seed[s], key=_preference) for s in sorted(per_seed)))


def select_seeds(runs: Iterable[Run], *, arch: str, protocol: str, n_classes: int = 10,
                 untied: bool = False, frozen: tuple[int, ...] = ()) -> Seeds | None:
    """The runs matching the description that differ only in seed (the group
    :func:`choice_notes` names), or None."""
    key = (arch, protocol, n_classes, untied, frozen)
    by_data = _setting_groups(r for r in runs if r.key == key).get(key)
    return _choose(by_data)[1] if by_data else None


def choice_notes(runs: Iterable[Run]) -> list[str]:
    """One line per description (:attr:`Run.key`) whose runs are not simply one per seed: the
    runs the figures use and why, and the runs they leave out."""
    notes = []
    for by_data in _setting_groups(runs).values():
        data, used = _choose(by_data)
        chosen = {id(r) for r in used.runs}
        repeated = {seed: same for seed, same in sorted(by_data[data].items()) if len(same) > 1}
        if repeated:
            used_runs, left, tied = [], [], False
            for same in repeated.values():
                run = next(r for r in same if id(r) in chosen)
                others = [r for r in same if r is not run]
                tied |= any(r.epochs_done == run.epochs_done for r in others)
                used_runs.append(run)
                left += others
            seeds = ", ".join(map(str, repeated))
            why = f"most logged epochs{', then last path' if tied else ''}"
            notes.append(f"{used.first.describe()}: several runs of seed{'s' if len(repeated) > 1 else ''} "
                         f"{seeds}: using {', '.join(f'{r.path} ({r.epochs_done} epochs)' for r in used_runs)} "
                         f"({why}); not {', '.join(str(r.path) for r in left)}")
        for other, per_seed in by_data.items():
            if other == data:
                continue
            left = sorted(str(r.path) for rs in per_seed.values() for r in rs)
            notes.append(f"{used.first.describe()}: using the {used.n} seed(s) on train "
                         f"{data[0]}, {data[1]}, {data[2]}; not the runs on train {other[0]}, "
                         f"{other[1]}, {other[2]}: "
                         f"{', '.join(left)}")
    return notes


def train_size(run: Run) -> str:
    """The training-set size of a run as its config records it (Section 4: 45,000 of CIFAR's 50,000).

    Schema 2 stores ``train_size``, the number of images trained on; schema 1 stored
    ``train_subset`` (None: the whole training split less the ``val_size`` held out).
    """
    cfg = run.config
    if cfg.get("train_size") is not None:
        return str(cfg["train_size"])
    if cfg.get("train_subset"):
        return f"{cfg['train_subset']} (subset)"
    return f"full training split less {cfg.get('val_size', 5000)} held out"


def _seeds(cfg: dict[str, Any]) -> str:
    """``seed 0`` (schema 1: the split had the run's seed) or ``seed 0, split seed 3``."""
    split = cfg.get("split_seed")
    return f"seed {cfg.get('seed', '?')}" + ("" if split is None else f", split seed {split}")


def scale_line(run: Run) -> str:
    """The scale one run was made at: epochs, training-set size, protocol choices
    (:meth:`Run.choices`), seeds, dataset copy, device."""
    cfg = run.config
    untied = cfg.get("untied") or (cfg.get("net") or {}).get("untied")
    precision = f"; precision {cfg['precision']}" if cfg.get("precision") else ""
    return (f"- {run.name}: {run.arch}, {run.protocol or cfg.get('method')}"
            f"{f', untied {untied}' if run.untied else ''}"
            f"{f', frozen {list(run.frozen)}' if run.frozen else ''}; "
            f"epochs {run.epochs_done}/{cfg.get('epochs', '?')}; train {train_size(run)}; "
            f"val {cfg.get('val_size', '?')}; batch {cfg.get('batch_size', '?')}; "
            f"lr {cfg.get('lr', '?')}; {run.choices()}; {_seeds(cfg)}{precision}; "
            f"data {cfg.get('dataset_label') or cfg.get('data', '?')} ({cfg.get('data_dir', '?')}); "
            f"device {cfg.get('device', '?')}")
