"""``python -m deepnets.train``: train a network with BP, FRFB or URFB (Sections 3-4) on CIFAR.

The flags are parsed into a :class:`deepnets.config.TrainConfig` (:mod:`deepnets.runconfig`)
and trained by :func:`deepnets.trainer.run`, which documents the run folder and the log.
``--resume`` continues a killed run and ends in the same state (bit-identical on the CPU) as
an uninterrupted one.

Figure 9's deepnet_s protocol ("train tied, freeze the first layer, retrain the rest untied
from scratch", Section 4.1) is two runs::

    python -m deepnets.train --arch deepnet_s --method urfb ... --out tied
    python -m deepnets.train --from tied --copy 0 --freeze 0 --untie 1-6 ... --out untied

``--from RUN_DIR`` builds the new network from ``--seed`` (fresh W, R, biases and masks for
every layer), then replaces the layers listed in ``--copy`` (default: all) by the earlier run's
trained layers -- W, R, bias and connectivity masks, exactly. A copied layer that the new run
unties (``--untie``) receives the conv's W and R at every location (``deepnets.engine.untie``);
an uncopied untied layer is a fresh locally connected layer. ``--freeze`` layers are never
updated (they still pass feedback down). The architecture (default: the earlier run's) and
the data's shape and classes must match the earlier run; the method may differ only for
layers that are not copied (a ``bp`` layer has no R to copy).
"""

from __future__ import annotations

import sys

import torch

from deepnets.capture import CaptureError
from deepnets.config import ConfigError
from deepnets.data import DataError
from deepnets.rundir import RunError
from deepnets.runconfig import parse_run
from deepnets.trainer import NonFiniteState, RunInterrupted, run
from urfb_common import OutputPathError, command_line

PROG = "deepnets.train"


@command_line("deepnets.train")
def main(argv: list[str] | None = None) -> int:
    """The CLI: 0 on success, 1 when training diverged, 2 on a bad argument or data, 130 on
    Ctrl-C. Every error is one line on stderr."""
    try:
        cfg, out, resume, quiet, force_data = parse_run(argv)
        run(cfg, out, resume=resume, quiet=quiet, force_data=force_data)
    except (ConfigError, DataError, RunError, OutputPathError, CaptureError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteState as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 130
    except (MemoryError, torch.OutOfMemoryError) as exc:
        print(f"{PROG}: error: out of memory: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
