"""results/cifar10-paper/run.sh's clean-up of runs whose checkpoint went with an earlier machine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).parents[1]
QUEUE = "results/cifar10-paper/run.sh"

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("sh") is None,
                                reason="needs git and sh")


def _run(root: Path, name: str, epochs: int, *files: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}\n")
    (folder / "log.jsonl").write_text("".join(f'{{"epoch": {e}}}\n' for e in range(1, epochs + 1)))
    for f in files:
        (folder / f).write_bytes(b"x")
    return folder


def test_clear_lost_removes_only_uncommitted_runs_that_cannot_resume(tmp_path: Path) -> None:
    """A run folder of the queue that git does not track, with epochs logged but no
    checkpoint, and short of its budget (no test.json, or one of an earlier epoch; a rerun of
    step 10 under 50 epochs) is removed; a committed run (or one with any committed file), a
    run with its checkpoint, one at its budget, one with no epoch yet, a run seen through a link
    and a run outside the queue's folders are kept."""
    queue = tmp_path / QUEUE
    queue.parent.mkdir(parents=True)
    shutil.copy(REPO / QUEUE, queue)
    (tmp_path / ".gitignore").write_text("checkpoint.pt\n")
    runs = tmp_path / "results" / "cifar10-paper" / "runs"
    rerun = tmp_path / "results" / "cifar10-paper" / "homogeneity-rerun"
    committed = _run(runs, "committed", 3)
    half_committed = _run(runs, "half-committed", 3)
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "rm", "-q", "--cached", str(half_committed / "log.jsonl")], check=True)
    subprocess.run([*git, "commit", "-qm", "runs"], check=True)
    lost = _run(runs, "lost", 5)
    resumable = _run(runs, "resumable", 5, "checkpoint.pt")
    at_budget = _run(runs, "at-budget", 5)
    (at_budget / "test.json").write_text('{\n  "best": {},\n  "epochs_done": 5,\n  "split": "test"\n}')
    scored_before = _run(runs, "scored-before", 7)  # scored at 5, trained on, then lost
    (scored_before / "test.json").write_text('{"epochs_done": 5, "split": "test"}')
    unreadable_score = _run(runs, "unreadable-score", 5, "test.json")
    elsewhere = _run(tmp_path / "results" / "cifar10-paper-h200" / "fp32", "gpu-run", 5)
    fresh = _run(runs, "fresh", 0)
    rerun_done = _run(rerun, "done", 50)
    rerun_lost = _run(rerun, "lost", 49)
    (tmp_path / "results" / "link").symlink_to(committed, target_is_directory=True)
    done = subprocess.run(["sh", str(queue), "clear-lost"], capture_output=True, text=True,
                          check=True)
    assert not lost.exists() and not rerun_lost.exists() and not scored_before.exists()
    for kept in (committed, half_committed, resumable, at_budget, unreadable_score, fresh,
                 rerun_done, elsewhere):
        assert (kept / "log.jsonl").is_file(), kept.name
    assert done.stderr.count("it starts again") == 3
    assert "runs/lost lost its checkpoint after 5 epochs" in done.stderr
