"""deepnets.experiments.launch: ``--launcher local --jobs N`` and ``--launcher slurm`` (submitit),
with retraining runs started only after their source run, skip-if-done and one-line errors."""

from __future__ import annotations

import concurrent.futures as cf
import json
import pickle
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from deepnets import suite
from deepnets.experiments import grid as suite_grid
from deepnets.experiments import launch, runs
from deepnets.training import trainer
from deepnets.training.checkpoint import load_network
from deepnets.training.config import ConfigError
from deepnets.training.minidata import tiny_cifar_folder
from deepnets.training.rundir import read_log

needs_submitit = pytest.mark.skipif(
    not launch.have_submitit(),
    reason="submitit is not installed (it is in the dev and cluster extras: pip install -e '.[dev]')",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cifar_folder(tmp_path_factory.mktemp("data"))  # 10 classes x 4 images


def argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["10", "--data", "imagefolder", "--data-dir", str(data), "--out", str(out),
            "--epochs", "1", "--train-size", "20", "--val-size", "10", "--batch-size", "10",
            "--device", "cpu", "--estimate-steps", "0", "--probe-size", "4", "--quiet", *extra]


def settings(data: Path) -> runs.Settings:
    return runs.Settings({"cifar10": data}, "imagefolder", 10, 0.1, 10, 20, "cpu", None, True,
                          probe_size=4)


def pretrain_and_retrain(data: Path, out: Path) -> list[launch.Job]:
    """A cheap Section-4.1 pair on simpnet, the retraining listed first: it takes (and freezes)
    the first layer of ``pre``, so it must start after ``pre`` has finished."""
    pre = suite_grid.RunSpec("pre", "simpnet", "urfb", "cifar10", 1)
    re = suite_grid.RunSpec("re", "simpnet", "urfb", "cifar10", 1, frozen=(0,), from_run="pre")
    return [launch.Job(sp.name, runs.train_config(sp, out, settings(data)), out / sp.name,
                       after=out / sp.from_run if sp.from_run else None) for sp in (re, pre)]


def check_first_layer_taken(out: Path) -> None:
    pre, re = load_network(out / "pre"), load_network(out / "re")
    assert torch.equal(pre.weight_layers[0].weight, re.weight_layers[0].weight)
    assert re.weight_layers[0].frozen


@pytest.mark.parametrize(("extra", "message"), [
    (("--jobs", "0"), "argument --jobs: must be >= 1"),
    (("--slurm-partition", "gpu"), "argument --slurm-partition: needs --launcher slurm"),
    (("--slurm-wait",), "argument --slurm-wait: needs --launcher slurm"),
    (("--launcher", "slurm"), "argument --slurm-time: required with --launcher slurm"),
    (("--launcher", "slurm", "--slurm-time", "0"), "argument --slurm-time: must be >= 1"),
    (("--launcher", "slurm", "--slurm-time", "9", "--jobs", "2"), "argument --jobs: applies to"),
    (("--launcher", "slurm", "--slurm-time", "9", "--slurm-gpus-per-job", "-1"),
     "argument --slurm-gpus-per-job: must be >= 0"),
    (("--launcher", "slurm", "--slurm-time", "9", "--slurm-cpus-per-job", "0"),
     "argument --slurm-cpus-per-job: must be >= 1"),
    (("--launcher", "slurm", "--slurm-time", "9", "--slurm-mem-gb", "nan"),
     "argument --slurm-mem-gb: must be > 0 and finite"),
    (("--launcher", "slurm", "--slurm-time", "9", "--slurm-folder", __file__),
     "argument --slurm-folder"),
    (("--launcher", "slurm", "--slurm-time", "9", "--device", "gpu7"),
     "argument --device 'gpu7' is not a torch device"),
    (("--launcher", "pbs"), "argument --launcher: invalid choice"),
])
def test_bad_launcher_flags_are_one_line_errors(tmp_path: Path, capsys, extra, message) -> None:
    with pytest.raises(SystemExit) as exc:
        suite.main(["10", "--dry-run", "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err.splitlines()[-1], err


def test_slurm_without_submitit_says_how_to_install_it(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(launch, "have_submitit", lambda: False)
    with pytest.raises(SystemExit):
        suite.main(["10", "--dry-run", "--out", str(tmp_path), "--launcher", "slurm",
                    "--slurm-time", "60"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith("argument --launcher slurm: needs submitit; pip install 'urfb[cluster]' "
                         "(or pip install submitit)")


@needs_submitit
@pytest.mark.skipif(shutil.which("srun") is not None, reason="this machine is a SLURM cluster")
def test_slurm_off_a_cluster_is_a_one_line_error(data: Path, tmp_path: Path, capsys) -> None:
    assert suite.main(argv(data, tmp_path, "--launcher", "slurm", "--slurm-time", "5")) == 2
    err = capsys.readouterr().err
    assert err == ('python -m deepnets.suite: error: --launcher slurm: Could not detect "srun", '
                   "are you indeed on a slurm cluster?\n")
    assert not list(tmp_path.rglob("config.json"))


def test_jobs_2_trains_runs_at_once_and_a_rerun_skips_them(data: Path, tmp_path: Path,
                                                             capsys) -> None:
    """Two spawned workers (cores // 2 threads each); a rerun trains nothing."""
    out = tmp_path / "grid"
    assert suite.main(argv(data, out, "--protocols", "urfb", "frfb", "--jobs", "2")) == 0
    assert "trained 2 runs in" in capsys.readouterr().out
    runs = [out / f"simpnet-cifar10-{p}-s0" for p in ("urfb", "frfb")]
    assert [len(read_log(r)) for r in runs] == [1, 1]
    assert suite.main(argv(data, out, "--protocols", "urfb", "frfb", "--jobs", "2")) == 0
    said = capsys.readouterr().out
    assert "simpnet-cifar10-frfb-s0: 1 epochs, done" in said and "nothing to train" in said


def test_local_jobs_start_a_retraining_after_its_source(data: Path, tmp_path: Path) -> None:
    """The scheduling of --jobs, in threads here (spawned workers would cost a torch import)."""
    jobs = pretrain_and_retrain(data, tmp_path)
    outcomes = launch.run_local(jobs, 2, progress=False, pool=cf.ThreadPoolExecutor(2))
    assert [(o.folder.name, o.status) for o in outcomes] == [("re", "ok"), ("pre", "ok")]
    check_first_layer_taken(tmp_path)


@needs_submitit
def test_submitit_debug_executor_runs_the_grid_and_a_rerun_skips_it(
        data: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(launch, "CLUSTER", "debug")  # submitit's in-process executor
    slurm = ("--launcher", "slurm", "--slurm-time", "5", "--slurm-partition", "any",
             "--slurm-cpus-per-job", "1", "--slurm-mem-gb", "1.5")
    out = tmp_path / "runs"
    assert suite.main(argv(data, out, "--protocols", "urfb", *slurm)) == 0
    said = capsys.readouterr().out
    assert "simpnet-cifar10-urfb-s0: job DEBUG_" in said and "trained 1 runs in" in said
    assert len(read_log(out / "simpnet-cifar10-urfb-s0")) == 1
    assert list((out / "slurm").glob("*_log.out"))  # submitit's logs, default <out>/slurm
    assert suite.main(argv(data, out, "--protocols", "urfb", *slurm)) == 0
    said = capsys.readouterr().out
    assert "simpnet-cifar10-urfb-s0: 1 epochs, done" in said and "nothing to train" in said
    assert "job DEBUG_" not in said


@needs_submitit
def test_submitit_waves_start_a_retraining_after_its_source(data: Path, tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(launch, "CLUSTER", "debug")
    jobs = pretrain_and_retrain(data, tmp_path)
    lost = launch.Job("lost", jobs[0].config, tmp_path / "lost", after=tmp_path / "none")
    said: list[str] = []
    outcomes = launch.submit_slurm([*jobs, lost], launch.SlurmOptions(tmp_path / "slurm", 5),
                                   say=said.append)
    assert outcomes is not None
    assert [(o.folder.name, o.status) for o in outcomes] == [("re", "ok"), ("pre", "ok"),
                                                             ("lost", "skipped")]
    assert "holds no run" in outcomes[2].message and not (tmp_path / "lost").exists()
    assert said[0].startswith("  pre: job")  # wave 1: pre and lost; wave 2: re
    check_first_layer_taken(tmp_path)


class FakeSlurm:
    """Records what would be sent to sbatch."""

    cluster = "slurm"

    def __init__(self) -> None:
        self.params: dict = {}
        self.sent: list[tuple[str, dict, launch.TrainJob]] = []

    def update_parameters(self, **kw: object) -> None:
        self.params.update(kw)

    def submit(self, fn: launch.TrainJob) -> SimpleNamespace:
        job_id = str(100 + len(self.sent))
        self.sent.append((job_id, dict(self.params), fn))
        return SimpleNamespace(job_id=job_id)


@needs_submitit
def test_slurm_jobs_depend_on_their_source_and_queued_runs_are_not_resubmitted(
        tmp_path: Path, capsys, monkeypatch) -> None:
    fake = FakeSlurm()
    monkeypatch.setattr(launch, "make_executor", lambda opts: fake)
    monkeypatch.setattr(launch, "job_state", lambda folder, job_id: "UNKNOWN")
    out = tmp_path / "runs"
    cmd = ["11", "--protocols", "urfb", "--data-dir", str(tmp_path), "--out", str(out),
           "--epochs", "4", "--estimate-steps", "0", "--launcher", "slurm", "--slurm-time", "60",
           "--slurm-gpus-per-job", "1", "--device", "cuda"]  # no GPU here: resolved on the nodes
    assert suite.main(cmd) == 0
    said = capsys.readouterr().out
    (pre_id, pre_params, _), (re_id, re_params, re_job) = fake.sent
    assert pre_params["name"] == "deepnet_s-cifar10-urfb-pre-s0"
    assert pre_params["slurm_additional_parameters"] == {}
    assert re_params["slurm_additional_parameters"] == {"dependency": f"afterok:{pre_id}",
                                                        "kill_on_invalid_dep": "yes"}
    assert re_job.job.after == out / "deepnet_s-cifar10-urfb-pre-s0"
    assert re_job.job.config.device == "cuda" and re_job.job.config.epochs == 4
    assert f"submitted 2 jobs to SLURM (logs and jobs.json in {out / 'slurm'})" in said
    record = json.loads((out / "slurm" / "jobs.json").read_text())
    assert record == {str(out / "deepnet_s-cifar10-urfb-pre-s0"): pre_id,
                      str(out / "deepnet_s-cifar10-urfb-untied-s0"): re_id}
    # picklable, and requeued as itself when SLURM's time limit stops it
    again = pickle.loads(pickle.dumps(re_job))
    assert again.job == re_job.job
    assert type(re_job.checkpoint().function) is launch.TrainJob

    # rerun while the pretraining is still running: only the retraining is sent again, after it
    monkeypatch.setattr(launch, "job_state",
                        lambda folder, job_id: "RUNNING" if job_id == pre_id else "FAILED")
    assert suite.main(cmd) == 0
    said = capsys.readouterr().out
    assert f"deepnet_s-cifar10-urfb-pre-s0: already queued as job {pre_id} (RUNNING)" in said
    [(new_id, params, _)] = fake.sent[2:]
    assert params["slurm_additional_parameters"]["dependency"] == f"afterok:{pre_id}"
    assert json.loads((out / "slurm" / "jobs.json").read_text())[
        str(out / "deepnet_s-cifar10-urfb-untied-s0")] == new_id


def test_a_diverged_or_refused_run_is_reported_and_the_others_go_on(
        tmp_path: Path, capsys, monkeypatch) -> None:
    def fake_run(cfg, out, *, resume=False, quiet=False, force_data=False):
        if out.name == "bad":
            raise trainer.NonFiniteState("non-finite training loss in epoch 3")
        if out.name == "odd":
            raise ConfigError("--val-size 9 must be in 0..8")

    monkeypatch.setattr(trainer, "run", fake_run)
    cfg = runs.train_config(suite_grid.RunSpec("x", "simpnet", "urfb", "cifar10", 1), tmp_path,
                             settings(tmp_path))
    outcomes = [launch.run_job(launch.Job(n, cfg, tmp_path / n)) for n in ("ok", "bad")]
    assert [o.status for o in outcomes] == ["ok", "diverged"]
    assert launch.report(outcomes, tmp_path) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [(f"python -m deepnets.suite: run {tmp_path / 'bad'} diverged: non-finite "
                    "training loss in epoch 3"), "1 of 2 runs did not finish (1 diverged: bad)"]
    outcomes.append(launch.run_job(launch.Job("odd", cfg, tmp_path / "odd")))
    assert outcomes[-1].status == "error" and launch.report(outcomes, tmp_path) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "2 of 3 runs did not finish (1 diverged: bad; 1 failed: odd)")
