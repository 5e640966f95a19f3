"""TrainConfig: the one description of a training run (Sections 3-4), and its ``config.json``.

The training CLI parses its flags into a :class:`TrainConfig`; the suite builds them directly and
calls :func:`deepnets.training.trainer.run`. ``config.json`` is the config's serialisation
(:meth:`TrainConfig.to_json_dict`) with a schema version, plus what the run learnt from its data
(``train_size`` resolved to the images actually trained on, the data's fingerprint, class names)
and the network's own description (``net``, used to rebuild it). A hand-edited ``config.json`` is
checked on reading: missing keys, wrong types and out-of-range values are one-line errors. Older
schemas are read too (:func:`_upgrade`), so old runs resume.

Every value check names the command-line flag of the field (``--batch-size`` for ``batch_size``).
"""

from __future__ import annotations

import math
import numbers
import re
import types
import typing
from collections.abc import Collection, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from deepnets.nn.arch import WEIGHT_KINDS, ArchError, parse_arch
from deepnets.nn.layers import UNTIED_INITS
from deepnets.nn.losses import LOSSES
from deepnets.nn.models import MODELS, n_weight_layers
from deepnets.rules import METHODS, RULES, Rule, resolved_params, rules_with_param
from deepnets.training.capture import CUDA_GRAPH_MODES
from deepnets.training.data import KINDS
from deepnets.training.engine import UPDATE_ORDERS
from deepnets.training.optim import DEFAULT_MOMENTUM, OPTIMIZERS, is_plain
from deepnets.training.rundir import with_current_keys
from urfb_common import clipped

__all__ = ["LAYER_INDEX_MAX", "PRECISIONS", "PRECISION_CHOICES", "SCHEMA_VERSION", "SEED_MAX",
           "SHOWN_MAX", "ConfigError", "TrainConfig", "clipped", "flag_of", "shown"]

#: Version of ``config.json``'s layout; 1 was the first landing's (no ``schema_version`` key);
#: 3 renamed ``untie``/``freeze`` to ``untied``/``frozen``, added ``bias`` and made the paper's
#: protocol (sequential order, no biases) the default; 4 added ``untied_init`` (replicated by
#: default, as the author's code starts untied layers).
SCHEMA_VERSION = 4
#: ``bf16``: bfloat16 compute with float32 master copies of W, R, b and float32 updates
#: (:data:`deepnets.nn.policy.COMPUTE_DTYPES`).
PRECISIONS = ("fp32", "bf16")
#: What ``--precision`` takes: a precision, or ``auto`` (bf16 where the hardware runs it faster:
#: :func:`deepnets.nn.policy.auto_precision`), which the trainer resolves before ``config.json`` is
#: written, so that a run records the precision it computed in.
PRECISION_CHOICES = (*PRECISIONS, "auto")
OUTPUT_FEEDBACKS = ("closed-form", "circuit")
#: Seeds are 63-bit: torch's generators take at most 2**63 - 1.
SEED_MAX = 2**63 - 1
#: Rule parameters with a flag and a ``config.json`` key of their own instead of a place in
#: ``rule_params`` (urfb's epsilon, the paper's): None for a rule that does not take them.
OWN_FLAG_PARAMS = ("epsilon",)
#: Keys of ``config.json`` written by the trainer beside the config's own fields
#: (``data_dir_from_run``: ``data_dir`` relative to the run folder,
#: :mod:`deepnets.training.rundir`).
DERIVED_KEYS = ("schema_version", "net", "weight_layer_names", "classes", "data_dir_from_run")
#: Largest weight-layer index a layer list (``untie``, ``freeze``, ``copy``) may name: far above
#: any network's depth, and checked before a range like ``0-99999999`` is expanded.
LAYER_INDEX_MAX = 9999
#: Fields that list epochs rather than weight layers (the step schedule's), and their largest.
EPOCH_LISTS = ("lr_steps",)
EPOCH_MAX = 10**9
#: Longest text of a user's value that an error message repeats.
SHOWN_MAX = 60


class ConfigError(ValueError):
    """A bad configuration value; the message names the command-line flag."""


#: Config fields whose flag is not their name with dashes.
_FLAGS = {"from_run": "--from", "sigma_prime_down": "--no-sigma-prime-down"}


def flag_of(name: str) -> str:
    """The command-line flag of a config field (``from_run`` is ``--from``,
    ``sigma_prime_down`` ``--no-sigma-prime-down``)."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


def shown(value: Any, limit: int = SHOWN_MAX) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters (an error stays
    one short line whatever the input)."""
    text = repr(value) if not isinstance(value, str) or len(value) <= limit else repr(value[:limit])
    if len(text) <= limit + 2:
        return text
    return f"{text[:limit]}... ({len(str(value))} characters)"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; see ``python -m deepnets.train --help``.

    ``epsilon`` is URFB's Delta R = epsilon Delta W^t (None for the other methods);
    ``rule_params`` the other rules' parameters (kp's ``decay``, usf's ``scale``; see
    :mod:`deepnets.rules`), their defaults filled in. ``arch`` is an architecture string, a
    preset or a named model of :data:`deepnets.nn.models.MODELS` (trained through ``convert``).
    ``seed`` draws W, R, masks, data order and dropout; ``split_seed`` draws the held-out
    validation images, the same for every seed so that runs of several seeds are paired.
    ``train_size``: None trains on every image left after ``val_size`` are held out; after
    the data is read it is the number of images actually trained on.
    ``data_fingerprint``: the data's image count and hash
    (:func:`deepnets.training.data.fingerprint`), filled in when the run starts; a resumed run
    refuses other data.
    ``untied``: conv weight layers built untied (locally connected, Section 4.1); ``frozen``:
    weight layers never updated (Figure 9) -- the names the network's own config uses.
    ``probe_size``: validation images of the alignment probe (0: no probe).
    ``precision``: the training step's arithmetic (``auto`` until the trainer resolves it);
    ``eval_precision``: that of validation, the alignment probe and scoring (None: the same as
    ``precision``; a ``config.json`` written before this key: fp32, as those runs evaluated).
    ``cuda_graph``: how the GPU runs the step
    (:data:`deepnets.training.capture.CUDA_GRAPH_MODES`); like ``device`` it is not part of the
    run's identity.
    ``deterministic``: torch's deterministic algorithms (meant to make a rerun on one GPU give
    the same bits, where cuDNN's and cuBLAS's default kernels may sum in another order; the
    CPU's repeat already); like ``device`` not part of the run's identity. Left out of
    ``config.json`` when False.
    ``update_order`` and ``bias`` default to the paper's protocol: the sequential order of
    Remark 1 read literally (a layer's W and R are updated before its feedback goes down; the
    author's code of the paper's era was in effect simultaneous: ``docs/results.md``) and no
    biases (eq. (1)). A ``config.json`` written before these defaults (schema 1-2)
    keeps the settings it was trained with (:func:`_upgrade`): its stored order, and biases.
    ``bias`` applies to architecture strings; a named model keeps its own biases
    (:mod:`deepnets.nn.convert`).
    ``untied_init``: how untied layers start (:class:`deepnets.nn.layers.FeedbackUntied2d`):
    ``replicated`` (the author's code: one conv filter bank at every location) or
    ``independent``; a ``config.json`` of schema 1-3 with untied layers drew them independently
    and keeps doing so.
    ``sigma_prime_down``: hidden layers send the error down as R delta (eq. (2); default) or,
    False, as R g without their sigma' (the author's code after April 2019:
    :class:`deepnets.nn.layers.LayerOptions`); architecture strings only, not dfa. Left out of
    ``config.json`` when True (its absence means True, as for runs made before it).
    ``shared_masks``: with ``connectivity`` < 1, R's mask is W's instead of drawn separately
    (:class:`deepnets.nn.layers.LayerOptions`); architecture strings and methods with an R only.
    Left out of ``config.json`` when False.
    ``optimizer``, ``momentum``, ``weight_decay``, ``lr_steps``, ``lr_gamma``: a torch optimizer
    and step schedule (:mod:`deepnets.training.optim`); the defaults are the paper's plain SGD.
    """

    epochs: int
    data_dir: str
    arch: str = "simpnet"
    method: str = "urfb"
    epsilon: float | None = None
    loss: str = "hinge"
    mu: float | None = None
    output_feedback: str = "closed-form"
    connectivity: float = 1.0
    update_order: str = "sequential"
    bias: bool = False
    sigma_prime_down: bool = True
    shared_masks: bool = False
    sat_scale: float = 0.5
    symmetric_init: bool = False
    lr: float = 0.1
    batch_size: int = 500
    seed: int = 0
    split_seed: int = 0
    precision: str = "fp32"
    eval_precision: str | None = None
    data: str = "cifar10"
    dataset_label: str | None = None
    val_size: int = 5000
    train_size: int | None = None
    data_fingerprint: str | None = None
    untied: tuple[int, ...] = ()
    untied_init: str = "replicated"
    frozen: tuple[int, ...] = ()
    copy: tuple[int, ...] | None = None
    from_run: str | None = None
    probe_size: int = 500
    device: str = "auto"
    cuda_graph: str = "auto"
    deterministic: bool = False
    rule_params: dict[str, float] = field(default_factory=dict)
    optimizer: str = "sgd"
    momentum: float | None = None
    weight_decay: float = 0.0
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = 0.1

    def __post_init__(self) -> None:
        self._check_types()
        for name in ("untied", "frozen", "copy"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(sorted(set(value))))  # ints: _check_types
        object.__setattr__(self, "lr_steps", tuple(sorted(set(self.lr_steps))))
        if self.optimizer == "momentum" and self.momentum is None:
            object.__setattr__(self, "momentum", DEFAULT_MOMENTUM)
        rule = RULES.get(self.method)
        for name in OWN_FLAG_PARAMS:  # the rule's default where it takes the parameter
            if getattr(self, name) is None and rule is not None and name in rule.parameters:
                object.__setattr__(self, name, rule.parameters[name].default)
        if rule is not None and not set(OWN_FLAG_PARAMS) & set(self.rule_params):
            try:
                params = resolved_params(self.method, self.rule_params)
            except ValueError as exc:
                raise ConfigError(f"--rule-param: {exc}") from None
            for name in OWN_FLAG_PARAMS:
                params.pop(name, None)
            object.__setattr__(self, "rule_params", params)
        if self.eval_precision is None and self.precision in PRECISIONS:
            object.__setattr__(self, "eval_precision", self.precision)
        if self.dataset_label is None:
            label = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(self.data)
            object.__setattr__(self, "dataset_label", label or f"image folder {self.data_dir}")
        self._check()

    # ------------------------------------------------------------------ checks
    def _check_types(self) -> None:
        """Every field has its annotated type (numpy integers and floats count as such, and are
        stored as Python's); a bool is not an int, a string not a layer list."""
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _checked_type(value, hints[f.name], f.name))

    def _check(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{flag_of(name)} {shown(getattr(self, name))}: {why}")

        for name in ("lr", "sat_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1e6):
                raise bad(name, "must be positive and at most 1e6")
        for name, low in (("epochs", 1), ("batch_size", 1), ("val_size", 0), ("probe_size", 0)):
            if getattr(self, name) < low:
                raise bad(name, f"must be >= {low}")
        for name in ("seed", "split_seed"):
            if not 0 <= getattr(self, name) <= SEED_MAX:
                raise bad(name, f"must be in 0..{SEED_MAX} (2**63 - 1)")
        if self.train_size is not None and self.train_size < 1:
            raise bad("train_size", "must be >= 1")
        choices = (("method", METHODS), ("loss", LOSSES), ("update_order", UPDATE_ORDERS),
                   ("precision", PRECISION_CHOICES), ("data", KINDS),
                   ("output_feedback", OUTPUT_FEEDBACKS), ("cuda_graph", CUDA_GRAPH_MODES),
                   ("untied_init", UNTIED_INITS))
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise bad(name, f"must be one of {', '.join(allowed)}")
        if self.eval_precision not in (None, *PRECISIONS):
            raise bad("eval_precision", f"must be one of {', '.join(PRECISIONS)}")
        if not 0.0 < self.connectivity <= 1.0:
            raise bad("connectivity", "must be in (0, 1]")
        for name in OWN_FLAG_PARAMS:
            self._check_own_flag_param(name)
        if self.mu is not None and not 0 <= self.mu <= 1:  # NaN fails too
            raise bad("mu", "must be in [0, 1] (Appendix 1: mu <= 1; default 1/(classes - 1))")
        if self.loss != "hinge" and (self.mu is not None or self.output_feedback != "closed-form"):
            raise ConfigError("--mu and --output-feedback apply to --loss hinge only")
        if self.cuda_graph == "on" and self.output_feedback == "circuit":
            raise ConfigError("--cuda-graph on: --output-feedback circuit reads the logits on the "
                              "host, which a CUDA graph cannot hold; use --cuda-graph auto or off")
        if self.bias and self.arch in MODELS:
            raise ConfigError(f"--bias: --arch {self.arch} is a converted model; it keeps its own "
                              "biases (deepnets.convert)")
        if not self.sigma_prime_down and self.arch in MODELS:
            raise ConfigError(f"--no-sigma-prime-down: --arch {self.arch} is a converted model, "
                              "whose activations apply their own derivative (deepnets.convert)")
        rule = RULES.get(self.method)
        if not self.sigma_prime_down and rule is not None and rule.error_path == "direct":
            raise ConfigError(f"--no-sigma-prime-down: --method {self.method} sends the output "
                              "error to each layer directly; no error goes down")
        if self.shared_masks:
            self._check_shared_masks(RULES[self.method])
        self._check_optimizer()
        if self.copy is not None and self.from_run is None:
            raise ConfigError("--copy needs --from RUN_DIR")
        if not self.data_dir:
            raise ConfigError("--data-dir is required (the folder or archive holding the data)")
        self._check_layers()

    def _check_shared_masks(self, rule: type[Rule]) -> None:
        """``shared_masks`` needs an architecture string, masks to share, an R to mask and no
        ``symmetric_init`` (:class:`LayerOptions`)."""
        if self.arch in MODELS:
            raise ConfigError(f"--shared-masks: --arch {self.arch} is a converted model; "
                              "architecture strings only")
        if self.connectivity >= 1.0:
            raise ConfigError("--shared-masks gives R W's connectivity mask: it needs "
                              "--connectivity < 1 (at 1 nothing is masked)")
        if rule.error_path != "R":
            raise ConfigError(f"--shared-masks: --method {self.method} has no feedback matrix R "
                              "to mask")
        if self.symmetric_init:
            raise ConfigError("--shared-masks: --symmetric-init gives R W's mask already")

    @property
    def plain_sgd(self) -> bool:
        """Whether the run takes the paper's plain SGD step (no torch optimizer)."""
        return is_plain(self.optimizer, self.weight_decay, self.lr_steps)

    def _check_optimizer(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r}: must be one of "
                              f"{', '.join(OPTIMIZERS)}")
        if self.momentum is not None:
            if self.optimizer != "momentum":
                raise ConfigError(f"--momentum {self.momentum!r}: applies to --optimizer "
                                  "momentum only")
            if not (math.isfinite(self.momentum) and 0 <= self.momentum < 1):
                raise ConfigError(f"--momentum {self.momentum!r}: must be in [0, 1)")
        if not (math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1e3):
            raise ConfigError(f"--weight-decay {self.weight_decay!r}: must be >= 0 and at most 1e3")
        if any(step < 1 for step in self.lr_steps):
            raise ConfigError(f"--lr-steps {list(self.lr_steps)}: epochs must be >= 1")
        if not (math.isfinite(self.lr_gamma) and 0 < self.lr_gamma <= 1):
            raise ConfigError(f"--lr-gamma {self.lr_gamma!r}: must be in (0, 1]")
        if not self.plain_sgd:
            if self.update_order != "simultaneous":
                raise ConfigError("--optimizer, --weight-decay and --lr-steps need --update-order "
                                  "simultaneous (a torch optimizer steps all layers at once)")
            if self.cuda_graph == "on":
                raise ConfigError("--cuda-graph on: a torch optimizer or schedule runs eagerly; "
                                  "use --cuda-graph auto or off")

    def _check_own_flag_param(self, name: str) -> None:
        """A rule parameter with its own flag: only for the rules that take it, in its range."""
        value, takers = getattr(self, name), rules_with_param(name)
        if name in self.rule_params:
            raise ConfigError(f"--rule-param {name}: give {name} with {flag_of(name)}")
        if value is None:
            return
        flag = f"{flag_of(name)} {value!r}"
        if self.method not in takers:
            raise ConfigError(f"{flag}: applies to --method {' or '.join(takers)} only")
        spec = RULES[self.method].parameters[name]
        if not (math.isfinite(value) and spec.low <= value <= spec.high):
            raise ConfigError(f"{flag}: must be in [{spec.low:g}, {_short(spec.high)}] "
                              f"({spec.meaning})")

    def _check_layers(self) -> None:
        if self.arch in MODELS:
            if self.untied:
                raise ConfigError(f"--untied: --arch {self.arch} is a converted model; it has no "
                                  "untied layers")
            if self.from_run is not None:
                raise ConfigError(f"--from: not supported for --arch {self.arch}")
            n = n_weight_layers(self.arch)
            over = [i for i in self.frozen if not 0 <= i < n]
            if over:
                raise ConfigError(f"--frozen {shown(over)}: the network has weight layers "
                                  f"0..{n - 1}")
            if len(self.frozen) == n:
                raise ConfigError(f"--frozen {list(self.frozen)} freezes every weight layer: "
                                  "nothing would train")
            return
        try:
            kinds = [s.kind for s in parse_arch(self.arch) if s.kind in WEIGHT_KINDS]
        except ArchError as exc:
            raise ConfigError(f"--arch {shown(self.arch)}: {clipped(str(exc))}") from None
        n = len(kinds)
        for name in ("untied", "frozen", "copy"):
            over = [i for i in getattr(self, name) or () if not 0 <= i < n]
            if over:
                raise ConfigError(f"{flag_of(name)} {shown(over)}: the network has weight layers "
                                  f"0..{n - 1}")
        if n and len(self.frozen) == n:
            raise ConfigError(f"--frozen {list(self.frozen)} freezes every weight layer: "
                              "nothing would train")
        not_conv = [i for i in self.untied if kinds[i] not in ("conv", "untied")]
        if not_conv:
            convs = [i for i, k in enumerate(kinds) if k in ("conv", "untied")]
            raise ConfigError(f"--untied {shown(not_conv)}: not conv layers (the conv layers are "
                              f"{shown(convs)})")

    # ------------------------------------------------------------------ (de)serialisation
    def to_json_dict(self) -> dict[str, Any]:
        """The config as ``config.json`` stores it (tuples as lists, a schema version).
        ``eval_precision`` fp32, ``sigma_prime_down`` True, ``shared_masks`` and
        ``deterministic`` False are left out: their absence means those values (:func:`_upgrade`,
        the field's default), so that code from before the keys still reads and resumes such a
        run."""
        out = asdict(self)
        if out["eval_precision"] == "fp32":
            del out["eval_precision"]
        if out["sigma_prime_down"]:
            del out["sigma_prime_down"]
        for name in ("shared_masks", "deterministic"):
            if not out[name]:
                del out[name]
        for name in ("untied", "frozen", "copy"):
            if out[name] is not None:
                out[name] = list(out[name])
        out["lr_steps"] = list(out["lr_steps"])
        return {"schema_version": SCHEMA_VERSION, **out}

    def settings_dict(self) -> dict[str, Any]:
        """:meth:`to_json_dict` with the values it leaves out put back (``eval_precision`` fp32,
        ``sigma_prime_down`` True, ``shared_masks`` and ``deterministic`` False): every setting,
        for comparing a run's with a request's."""
        return {**self.to_json_dict(), "eval_precision": self.eval_precision,
                "sigma_prime_down": self.sigma_prime_down, "shared_masks": self.shared_masks,
                "deterministic": self.deterministic}

    @classmethod
    def from_json_dict(cls, data: Any, where: str = "config.json") -> TrainConfig:
        """Rebuild a config from ``config.json``'s dict; raises :class:`ConfigError` naming the
        key for a missing key, a value of the wrong type or an out-of-range value."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, found {type(data).__name__}")
        version = data.get("schema_version", 1)
        if not (isinstance(version, int) and not isinstance(version, bool)
                and 1 <= version <= SCHEMA_VERSION):
            raise ConfigError(f"{where}: key 'schema_version' must be an integer in "
                              f"1..{SCHEMA_VERSION}, found {version!r}")
        data = _upgrade(dict(data))
        unknown = sorted(set(data) - {f.name for f in fields(cls)} - set(DERIVED_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} (not a TrainConfig field)")
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise ConfigError(f"{where}: missing key {f.name!r}")
                continue
            kwargs[f.name] = _typed(data[f.name], hints[f.name], f"{where}: key {f.name!r}")
        if kwargs.get("precision", "fp32") not in PRECISIONS:  # a run records the one it used
            raise ConfigError(f"{where}: key 'precision' must be one of {', '.join(PRECISIONS)}, "
                              f"found {kwargs['precision']!r}")
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {_as_keys(str(exc))}") from None

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (and checked)."""
        return replace(self, **changes)

    # ------------------------------------------------------------------ identity
    def resuming(self, stored: TrainConfig) -> TrainConfig:
        """This config, asked of the stored run ``stored``, with the run's precisions where it
        leaves them open: ``auto`` takes the precision the run was trained in (on any hardware),
        and an evaluation precision that only follows the training precision takes the run's
        own (runs from before ``eval_precision`` evaluated in fp32 whatever they trained in). A
        different precision asked stays, for the identity check to report."""
        if self.precision not in ("auto", stored.precision):
            return self
        follows = self.eval_precision in (None, self.precision)
        return self.replace(precision=stored.precision,
                            eval_precision=stored.eval_precision if follows
                            else self.eval_precision)

    def identity(self) -> dict[str, Any]:
        """The fields that make two configs the same run: all but epochs, device, cuda_graph,
        deterministic, data_dir, dataset_label and the fingerprint (which are checked
        separately), and ``untied_init`` for a network without untied layers (it changes nothing
        there)."""
        skip = {"epochs", "device", "cuda_graph", "deterministic", "data_dir", "dataset_label",
                "data_fingerprint"}
        stored = self.settings_dict()
        if not _has_untied(stored):
            skip.add("untied_init")
        return {k: v for k, v in stored.items() if k not in skip}


#: A command-line flag in a message.
_FLAG = re.compile(r"--[a-z][a-z0-9-]*")


def _as_keys(message: str) -> str:
    """``message`` with each flag of a config field named as its ``config.json`` key
    (``--lr`` -> ``key 'lr'``): said of a stored run, the flag is not what the user can fix."""
    keys = {flag_of(f.name): f.name for f in fields(TrainConfig)} | {"--rule-param": "rule_params"}
    return _FLAG.sub(lambda m: f"key {keys[m.group()]!r}" if m.group() in keys else m.group(),
                     message)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "True or False"}


def _checked_type(value: Any, hint: Any, name: str) -> Any:
    """``value`` of the field ``name`` checked against its hint (``X | None``, int, float, str,
    bool, ``tuple[int, ...]``, ``dict[str, float]``) and normalised to Python's types; raises a
    one-line :class:`ConfigError` naming the field, its flag and the expected type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"TrainConfig field {name} ({flag_of(name)}) must be {expected}, "
                           f"found {shown(value)} ({type(value).__name__})")

    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _checked_type(value, inner, name)
    if origin is tuple:
        most = EPOCH_MAX if name in EPOCH_LISTS else LAYER_INDEX_MAX
        expected = (f"a list of epochs (integers up to {EPOCH_MAX})" if name in EPOCH_LISTS else
                    f"a list of weight-layer indices (integers 0..{LAYER_INDEX_MAX})")
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Collection):
            raise wrong(expected)
        if len(value) > most + 1 or not all(_is_integer(i) for i in value):
            raise wrong(expected)
        if any(int(i) > most for i in value):
            raise wrong(expected)
        return tuple(int(i) for i in value)
    if origin is dict:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and _is_real(v) for k, v in value.items()
        ):
            raise wrong("a dict of names to numbers")
        return {k: float(v) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong(_TYPE_NAMES[bool])
        return value
    if hint is int:
        if not _is_integer(value):
            raise wrong(_TYPE_NAMES[int])
        return int(value)
    if hint is float:
        if not _is_real(value):
            raise wrong(_TYPE_NAMES[float])
        return float(value)
    if hint is str and not isinstance(value, str):
        raise wrong(_TYPE_NAMES[str])
    return value


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """An older ``config.json`` in today's layout, with the settings it was trained with.

    Schema 1 (the first landing) -> 2: ``train_subset`` became ``train_size``, the split had the
    run's own seed, and epsilon was stored for every method. Schema 1-2 -> 3: ``untie``/``freeze``
    became ``untied``/``frozen``, the network's own names
    (:func:`deepnets.training.rundir.with_current_keys`), and the defaults became the paper's
    protocol; an older run had biases on every layer of an architecture string (a named model: its
    own) and keeps its stored order (``simultaneous`` if none is stored). A config without
    ``eval_precision`` (any schema) evaluated in fp32 whatever its ``precision``, and keeps
    doing so. Schema 1-3 -> 4: untied layers had drawn every location's filters
    independently (``untied_init``; a run without untied layers takes today's default, which
    changes nothing for it)."""
    data.setdefault("eval_precision", "fp32")
    version = data.get("schema_version", 1)
    if version < 4:
        data.setdefault("untied_init", "independent" if _has_untied(data) else "replicated")
    if version < 2:
        if "train_subset" in data:
            sub = data.pop("train_subset")
            data.setdefault("train_size", sub)
        data.setdefault("split_seed", data.get("seed", 0))
        rule = RULES.get(data.get("method"))
        for name in OWN_FLAG_PARAMS:
            if rule is not None and name not in rule.parameters:
                data[name] = None
    if version >= 3:
        return data
    data = with_current_keys(data)
    data.setdefault("update_order", "simultaneous")
    data.setdefault("bias", data.get("arch") not in MODELS)
    return data


def _has_untied(data: Mapping[str, Any]) -> bool:
    """Whether a stored config's network has untied layers (``untied``/``untie``, or an
    ``untied`` item of its architecture string)."""
    if data.get("untied") or data.get("untie"):
        return True
    try:
        return any(s.kind == "untied" for s in parse_arch(str(data.get("arch", "simpnet"))))
    except ArchError:  # a named model, or an arch the config's own check reports
        return False


def _short(x: float) -> str:
    """A number as the messages write it: 1e6, not 1e+06."""
    return f"{x:g}".replace("e+0", "e").replace("e+", "e")


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against a simple type hint (str, int, float, bool, X | None, tuple[int,
    ...], dict[str, float]); ints are accepted for floats."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(value, inner, where)
    if origin is tuple:
        if not isinstance(value, list) or not all(_is(v, int) for v in value):
            raise ConfigError(f"{where} must be a list of integers, found {value!r}")
        return tuple(value)
    if origin is dict:
        if not isinstance(value, dict) or not all(_is(v, float) for v in value.values()):
            raise ConfigError(f"{where} must be an object of numbers, found {value!r}")
        return {str(k): float(v) for k, v in value.items()}
    if not _is(value, hint):
        raise ConfigError(f"{where} must be {hint.__name__}, found {value!r}")
    return float(value) if hint is float else value


def _is(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
