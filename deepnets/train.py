"""``python -m deepnets.train``: train a network with BP, FRFB or URFB (Sections 3-4) on CIFAR.

The flags are parsed into a :class:`deepnets.training.config.TrainConfig`
(:mod:`deepnets.training.runconfig`) and trained by :func:`deepnets.training.trainer.run`, which
documents the run folder and the log. ``--resume`` continues a killed run and ends in the same state
(bit-identical on the CPU) as an uninterrupted one.

The defaults are the paper's protocol: the sequential update order of Remark 1
(``--update-order sequential``) and no biases (eq. (1); ``--bias`` adds them), and untied layers
start as the author's code starts them: the conv filter bank a tied network of the same seed
draws, repeated at every location (``--untied-init independent``: each location drawn
separately). A run folder written before these defaults resumes with the settings it was trained
with. ``--no-sigma-prime-down`` sends the error down as the author's code after April 2019 does,
R g instead of eq. (2)'s R (sigma' g) (``docs/results.md``). With ``--connectivity`` < 1,
``--shared-masks`` gives R W's connectivity mask (Section 4 draws them separately).

Figure 9's deepnet_s protocol ("train tied, freeze the first layer, retrain the rest untied
from scratch", Section 4.1) is two runs::

    python -m deepnets.train --arch deepnet_s --method urfb ... --out tied
    python -m deepnets.train --from tied --copy 0 --frozen 0 --untied 1-6 ... --out untied

``--from RUN_DIR`` builds the new network from ``--seed`` (fresh W, R, biases if any and
masks for every layer), then replaces the layers listed in ``--copy`` (default: all) by the
earlier run's trained layers -- W, R, bias and connectivity masks, exactly (both runs must agree
on ``--bias``). A copied layer that the new run
unties (``--untied``) receives the conv's W and R at every location
(``deepnets.training.engine.untie``); an uncopied untied layer is a fresh locally connected
layer, started as ``--untied-init`` says.
``--frozen`` layers are never updated (they still pass feedback down). The architecture (default:
the earlier run's) and the data's shape and classes must match the earlier run; the method may
differ only for layers that are not copied (a ``bp`` layer has no R to copy).
"""

from __future__ import annotations

import sys

from deepnets.training.capture import CaptureError
from deepnets.training.config import ConfigError
from deepnets.training.data import DataError
from deepnets.training.runconfig import parse_run
from deepnets.training.rundir import RunError, read_log
from deepnets.training.stops import out_of_memory, sigterm_as_interrupt
from deepnets.training.trainer import NonFiniteState, RunInterrupted, RunResult, run
from urfb_common import OutputPathError, command_line, report_error

PROG = "deepnets.train"


@command_line("deepnets.train")
def main(argv: list[str] | None = None) -> int:
    """The CLI: 0 on success (one summary line on stdout), 1 when training diverged, 2 on a bad
    argument or data or when memory runs out, 130 on Ctrl-C and 143 on SIGTERM (the last
    checkpoint kept). Every error is one line on stderr."""
    with sigterm_as_interrupt() as stop:
        try:
            cfg, out, resume, quiet, force_data = parse_run(argv)
            result = run(cfg, out, resume=resume, quiet=quiet, force_data=force_data)
        except (ConfigError, DataError, RunError, OutputPathError, CaptureError) as exc:
            report_error(PROG, exc)
            return 2
        except NonFiniteState as exc:
            report_error(PROG, exc)
            return 1
        except RunInterrupted as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return stop.exit_status()
        except (MemoryError, RuntimeError) as exc:
            report_error(PROG, out_of_memory(exc))
            return 2
    print(summary_line(result))
    return 0


def summary_line(result: RunResult) -> str:
    """One line saying what the run did and where it ended (printed even with ``--quiet``)."""
    last = read_log(result.out)[-1:] or [{}]
    val = last[0].get("val_error")
    score = f", val_error {val:.4f}" if isinstance(val, float) else ""
    return (f"{result.out}: trained {result.trained} epochs, {result.epochs_done} of "
            f"{result.config.epochs} done{score}")


if __name__ == "__main__":
    sys.exit(main())
