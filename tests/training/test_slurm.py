"""The cluster path: sweeps with hydra/launcher=slurm, preemption and requeue, a failing job.

The tests marked ``slurm`` run real jobs through a running SLURM (``make slurm`` starts a one-node one on this machine,
``make slurm-test`` runs them) and read SLURM's own records of how each job ended (JobCompType=jobcomp/filetxt); they
are skipped, with the reason, where no cluster answers. The tests above them check the launcher config and the
requeue logic without a cluster, in the default run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.training.resume import requeued_checkpoint
from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, job_folder

ROOT = Path(__file__).resolve().parents[2]


def tensorboard_steps(run: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()  # honours the purge a resumed run writes: what TensorBoard draws
    return [e.step for e in events.Scalars(tag)]


# ---- without a cluster -------------------------------------------------------------------------------------------


def test_the_slurm_launcher_asks_slurm_for_what_the_trainer_needs(make_cfg) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="optional extra: pip install -e '.[slurm]'")

    def launcher(*overrides: str) -> tuple[dict, dict]:
        cfg = make_cfg("hydra/launcher=slurm", *overrides)
        return OmegaConf.to_container(cfg.hydra.launcher, resolve=True), OmegaConf.to_container(
            cfg.trainer, resolve=True
        )

    job, trainer = launcher()  # a sweep job: one process on one node, no GPU for the CPU trainer
    assert (job["tasks_per_node"], job["nodes"], job["gpus_per_node"]) == (trainer["devices"], 1, None) == (1, 1, None)
    assert job["additional_parameters"]["signal"] == f"USR1@{job['signal_delay_s']}"  # Lightning's requeue signal
    assert job["_target_"].endswith("SlurmLauncher") and job["partition"] is None
    assert launcher("trainer=gpu")[0]["gpus_per_node"] == 1
    # trainer=ddp: SLURM starts one task per device on each node, and Lightning's SLURM environment checks just that.
    job, trainer = launcher("trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=4", "trainer.num_nodes=2")
    assert job["tasks_per_node"] == trainer["devices"] == 4 and job["nodes"] == trainer["num_nodes"] == 2
    assert job["gpus_per_node"] == 4


def test_a_requeued_slurm_job_goes_on_from_the_newest_checkpoint_in_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checkpoints").mkdir()
    last, hpc = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt"
    for age, path in enumerate([last, hpc]):  # last.ckpt (SIGTERM) is written after hpc_ckpt_1 (the requeue signal)
        path.write_bytes(b"")
        os.utime(path, (1e9 - age, 1e9 - age))
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeued_checkpoint(tmp_path) is None  # a first start: only the run's own ckpt_path counts
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_checkpoint(tmp_path) == last
    os.utime(hpc, (2e9, 2e9))  # killed before SIGTERM could save: Lightning's checkpoint is the newest
    assert requeued_checkpoint(tmp_path) == hpc
    assert requeued_checkpoint(tmp_path / "nothing_saved") is None


class SigtermInEpochOne(Callback):
    """What SLURM's SIGTERM does to a run: Lightning's handler sets the flag and the loop stops at the next batch."""

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            trainer._signal_connector.received_sigterm = True


def test_a_run_stopped_mid_epoch_and_resumed_draws_every_epoch_once_lr_included(make_cfg, tmp_path: Path) -> None:
    overrides = [*SMALL_CNN, "trainer.max_epochs=2", "test=false"]
    with pytest.raises(SIGTERMException):
        train(make_cfg(*overrides, f"+callbacks.sigterm._target_={__name__}.SigtermInEpochOne"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 1
    train(make_cfg(*overrides, f"ckpt_path={last}"))
    for tag in ("val/acc", "train/loss", "train/lr"):  # Lightning skips on_train_epoch_start on a mid-epoch resume
        assert tensorboard_steps(tmp_path / "run", tag) == [1, 2], tag


# ---- through a running SLURM cluster -----------------------------------------------------------------------------

# Tiny jobs: one CPU each, so two run at once on a 2-core node. TINY is what every job trains.
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=2",
    "hydra.launcher.timeout_min=15",
    f"hydra.launcher.name=fer-test-{os.getpid()}",
]
TINY = [
    "data=synthetic",
    "data.synthetic.train=60",
    "data.synthetic.val=20",
    "data.synthetic.test=20",
    *SMALL_CNN,
    "data.batch_size=32",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "report.saliency_per_class=0",
    "report.misclassified_per_class=2",
]
JOB_MINUTES = 15  # the longest any of these may take on a shared 2-core machine (a minute or two when idle)


@dataclass
class Cluster:
    jobcomp: Path  # JobCompLoc: one line per job end (and per requeue), "Key=Value" fields
    offset: int  # its size when these tests began: older lines are other runs' (job ids restart with a new cluster)

    def records(self, job: str) -> list[dict[str, str]]:
        """SLURM's records of one job ("<array job>_<task>" or "<job>"), oldest first."""
        with self.jobcomp.open() as f:
            f.seek(self.offset)
            lines = f.read().splitlines()
        records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]
        return [
            r
            for r in records
            if (f"{r['ArrayJobId']}_{r['ArrayTaskId']}" if "ArrayJobId" in r else r.get("JobId")) == job
        ]

    def final_records(self, job: str, timeout: float = 120) -> list[dict[str, str]]:
        """The records once the job has ended (its record comes a moment after the sweep has its result)."""
        deadline = time.monotonic() + timeout
        while not (records := self.records(job)) or records[-1]["JobState"] in ("PENDING", "REQUEUED"):
            assert time.monotonic() < deadline, f"no end record for job {job} in {self.jobcomp}: {records}"
            time.sleep(1)
        return records


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="optional extra: pip install -e '.[slurm]'")
    if not shutil.which("sinfo"):
        pytest.skip("no SLURM here (no sinfo): `make slurm` starts a one-node cluster on this machine")
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    if states.returncode or not re.search(r"^(idle|mix|alloc)", states.stdout, re.M):
        pytest.skip(
            f"no SLURM node up ({(states.stdout + states.stderr).strip() or 'no nodes'}): `make slurm` starts one"
        )
    config = dict(
        re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", subprocess.check_output(["scontrol", "show", "config"], text=True), re.M)
    )
    if config.get("JobCompType") != "jobcomp/filetxt":
        pytest.skip(
            "these tests read job end states from JobCompType=jobcomp/filetxt; "
            f"this cluster has {config.get('JobCompType')}"
        )
    jobcomp = Path(config["JobCompLoc"])
    return Cluster(jobcomp, jobcomp.stat().st_size if jobcomp.exists() else 0)


def submit(sweep_dir: Path, *overrides: str) -> subprocess.Popen:
    """``python -m fer_lightning.train -m hydra/launcher=slurm ...`` as a user runs it; it returns when every job has.
    The jobs get this process's environment (sbatch exports it): the same interpreter (submitit runs sys.executable)
    and this checkout first on PYTHONPATH."""
    sweep_dir.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    keys = {o.split("=", 1)[0] for o in overrides}
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "-m",
        *LAUNCHER,
        *(o for o in TINY if o.split("=", 1)[0] not in keys),
        f"hydra.sweep.dir={sweep_dir}",
        f"paths.root={sweep_dir.parent / 'outputs'}",
        *overrides,
    ]
    return subprocess.Popen(
        command,
        cwd=sweep_dir.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, sweep_dir: Path) -> str:
    """The sweep's output once it has ended (rc 0 asserted); the jobs' logs if it failed or hangs."""
    try:
        output = process.communicate(timeout=JOB_MINUTES * 60)[0]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        output = process.communicate()[0]
    assert process.returncode == 0, f"{output[-4000:]}\n{job_logs(sweep_dir)[-6000:]}"
    return output


def job_logs(sweep_dir: Path) -> str:
    """Every job's stdout and stderr (submitit's files, appended to by each start of a requeued job)."""
    return "".join(f"\n== {p}\n{p.read_text()}" for p in sorted(sweep_dir.glob(".submitit/*/*_log.*")))


def job_id(run: Path) -> str:
    """The SLURM job a sweep job ran as ("<array job>_<task>", or "<job>" alone): hydra.job.id, set by the launcher."""
    return str(yaml.safe_load((run / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"])


# The preempted job trains long enough for the signal to land mid-training, with a DataLoader worker (which gets the
# signal too); the other sweeps need no timing.
SWEEPS = {
    "preempted": ["trainer.max_epochs=3", "data.synthetic.train=150", "data.batch_size=16", "data.num_workers=1"],
    "sweep": ["model.lr=1e-3,3e-4"],
    "failing": ["model.lr=1e-3,-1"],
}


@pytest.fixture(scope="module")
def sweeps(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.Popen, Path]]:
    """The three sweeps, submitted at once so that their jobs share the node (the preempted one first, it takes
    longest); each test waits for its own. Whatever is still queued or running at the end is cancelled."""
    base = tmp_path_factory.mktemp("slurm")
    started = {}
    for name, overrides in SWEEPS.items():
        started[name] = (submit(base / name, *overrides), base / name)
        deadline = time.monotonic() + 120
        while name == "preempted" and not list((base / name).glob(".submitit/*/*_submission.sh")):
            assert time.monotonic() < deadline and started[name][0].poll() is None, started[name][0].communicate()[0]
            time.sleep(0.2)
    yield started
    for process, _ in started.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    subprocess.run(["scancel", "--name", LAUNCHER[-1].split("=", 1)[1]], check=False)


@pytest.mark.slurm
def test_a_preempted_job_is_requeued_by_lightning_and_goes_on_where_it_stopped(cluster: Cluster, sweeps) -> None:
    process, sweep_dir = sweeps["preempted"]
    deadline = time.monotonic() + JOB_MINUTES * 60
    while not list(sweep_dir.glob("0*/checkpoints/last.ckpt")):  # epoch 0 done: two epochs left to interrupt
        assert process.poll() is None and time.monotonic() < deadline, f"epoch 0 never ended\n{job_logs(sweep_dir)}"
        time.sleep(0.1)
    run = job_folder(sweep_dir, 0)
    job = job_id(run)
    # What SLURM sends signal_delay_s before the time limit (--signal=USR1@<s>: every process of the job's steps).
    subprocess.run(["scancel", "--signal=USR1", job], check=True)
    finish(process, sweep_dir)

    records = cluster.final_records(job)
    # A requeue is recorded as the job went back to the queue (PENDING; REQUEUED in some versions), then its end.
    assert [r["JobState"] for r in records] in (["PENDING", "COMPLETED"], ["REQUEUED", "COMPLETED"]), records
    assert records[-1]["ExitCode"] == "0:0" and records[-1]["DerivedExitCode"].startswith("143:"), (
        records
    )  # 143: SIGTERM
    restarts = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    if restarts:  # while slurmctld still holds the job (MinJobAge)
        assert "Restarts=1 " in restarts, restarts

    logs = job_logs(sweep_dir)
    assert logs.count("Handling auto-requeue signal") == 1, logs  # the main process's, not the worker's too
    assert re.search(r"Requeued SLURM job: \d+", logs) and "DUE TO JOB REQUEUE" in logs, logs
    assert re.search(r"Interrupted at epoch \d+, step \d+: saved .*last\.ckpt", logs), logs
    assert "Exited with exit code 143" in logs, logs
    assert re.search(
        rf"SLURM requeued job \d+ \(restart 1\): going on from {re.escape(str(run))}/checkpoints/last\.ckpt", logs
    ), logs
    assert [p.name for p in run.glob("hpc_ckpt_*.ckpt")] == ["hpc_ckpt_1.ckpt"]

    result = yaml.safe_load((run / "metrics.json").read_text())
    assert result["status"] == "completed" and result["epochs"] == 3
    # Each start logged its own epochs (csv/version_<n>: one per start): none twice, none missing.
    logged = [pd.read_csv(f) for f in sorted(run.glob("csv/version_*/metrics.csv"))]
    epochs = [set(t.loc[t["val/acc"].notna() | t["train/loss"].notna(), "step"].astype(int)) for t in logged]
    assert len(epochs) == 2 and not epochs[0] & epochs[1] and epochs[0] | epochs[1] == {1, 2, 3}, epochs
    for tag in ("val/acc", "train/loss", "train/lr"):
        assert tensorboard_steps(run, tag) == [1, 2, 3], tag
    board = pd.read_csv(sweep_dir / "leaderboard.csv")
    assert list(board["status"]) == ["completed"]


@pytest.mark.slurm
def test_a_sweep_runs_one_slurm_job_per_point(cluster: Cluster, sweeps) -> None:
    process, sweep_dir = sweeps["sweep"]
    output = finish(process, sweep_dir)
    assert "Leaderboard of 2 jobs (0 failed)" in output, output[-3000:]
    runs = [job_folder(sweep_dir, 0), job_folder(sweep_dir, 1)]
    for run in runs:
        assert yaml.safe_load((run / "metrics.json").read_text())["status"] == "completed"
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "report" / "test" / "metrics.json").is_file()
        records = cluster.final_records(job_id(run))
        assert [(r["JobState"], r["ExitCode"]) for r in records] == [("COMPLETED", "0:0")], records
    board = pd.read_csv(sweep_dir / "leaderboard.csv").set_index("job")
    assert sorted(board.index) == [0, 1] and set(board["status"]) == {"completed"}
    assert sorted(board["lr"]) == [3e-4, 1e-3]
    script = next(sweep_dir.glob(".submitit/*/*_submission.sh")).read_text()  # what the launcher asked SLURM for
    for flag in (
        "--cpus-per-task=1",
        "--mem=2GB",
        "--ntasks-per-node=1",
        "--nodes=1",
        "--time=15",
        "--signal=USR1@120",
        "--requeue",
    ):
        assert f"#SBATCH {flag}\n" in script, script
    assert "--gpus-per-node" not in script


@pytest.mark.slurm
def test_a_failing_job_is_reported_and_listed_in_the_leaderboard(cluster: Cluster, sweeps) -> None:
    process, sweep_dir = sweeps["failing"]
    output = finish(process, sweep_dir)  # the sweep goes on and ends normally: one job failed, not all
    assert "Leaderboard of 2 jobs (1 failed)" in output, output[-3000:]
    board = pd.read_csv(sweep_dir / "leaderboard.csv").set_index("job")
    assert board.loc[0, "status"] == "completed"
    assert board.loc[1, "status"] == "failed" and "model.lr=-1" in board.loc[1, "error"], board.loc[1].to_dict()
    assert "model.lr=-1" in (sweep_dir / "leaderboard.md").read_text()
    assert "Job failed:" in job_logs(sweep_dir) and "model.lr=-1: expected a value in (0, inf)" in job_logs(sweep_dir)
    # The job's Python returned (a failed sweep job is recorded, not raised, so the sweep and its leaderboard go on):
    # SLURM records it as COMPLETED; the leaderboard and metrics.json say it failed.
    records = cluster.final_records(job_id(job_folder(sweep_dir, 1)))
    assert [r["JobState"] for r in records] == ["COMPLETED"], records
