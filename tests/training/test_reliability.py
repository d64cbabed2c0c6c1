"""Resume, determinism, interruption and divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, SMALL_RUN, event_scalars


def next_second() -> None:
    """Event files are named <unix second>.<host>.<pid>.<counter> and read in name order; a resumed run started
    within the same second by the same process (only a test does that) could sort ".10" before ".9"."""
    time.sleep(1.0)


def test_resume_continues_the_same_run_to_the_next_epoch(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=1", "test=false"))
    run = tmp_path / "run"
    first = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    next_second()
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    second = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert second["epoch"] > first["epoch"] == 0
    assert second["global_step"] == 2 * first["global_step"] > 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert second["optimizer_states"][0]["state"]  # the optimizer state came back and went on
    series = event_scalars(run).Scalars("val/acc")
    assert [e.step for e in series] == [1, 2]  # one series against the epoch (from 1), no restart
    assert len(list((run / "csv").glob("version_*/metrics.csv"))) == 2  # the first start's CSV is kept


def test_last_ckpt_is_the_last_epoch_even_when_val_did_not_improve(make_cfg, tmp_path: Path) -> None:
    # save_top_k=0: no epoch ever counts as the best, which is where Lightning's own save_last writes nothing
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", "test=false", "callbacks.model_checkpoint.save_top_k=0"))
    checkpoints = tmp_path / "run" / "checkpoints"
    assert [p.name for p in checkpoints.glob("*.ckpt")] == ["last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=True)
    # written at the end of each epoch (a run killed in the second one resumes from the first), not only once
    # training is over, which is where Lightning's save_last would write it here (its checkpoint says epoch 2)
    assert last["epoch"] == 1


def test_seeded_deterministic_runs_give_identical_metrics(make_cfg) -> None:
    runs = [
        train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", "trainer.deterministic=true", "seed=7")) for _ in range(2)
    ]
    assert runs[0] == runs[1]
    other = train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", "trainer.deterministic=true", "seed=8"))
    assert other != runs[0]


def test_a_diverging_loss_stops_with_a_clear_message(make_cfg) -> None:
    with pytest.raises(FloatingPointError, match="training diverged: the loss is (nan|inf)"):
        train(make_cfg(*SMALL_RUN, "trainer.max_epochs=3", "model.lr=1e30", "model.optimizer._target_=torch.optim.SGD"))


class SigtermAt(L.Callback):
    """Sends this process a real SIGTERM at the second batch of an epoch's training or at its first
    validation batch: the two places an interruption can land in."""

    def __init__(self, stage: str, epoch: int = 1) -> None:
        self.stage, self.epoch, self.sent = stage, epoch, False

    def _send(self, trainer: L.Trainer, stage: str, batch_idx: int) -> None:
        if (
            stage == self.stage
            and trainer.current_epoch == self.epoch
            and batch_idx == (1 if stage == "train" else 0)
            and not self.sent
        ):
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        self._send(trainer, "train", batch_idx)

    def on_validation_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.sanity_checking:
            self._send(trainer, "val", batch_idx)


@pytest.mark.parametrize(
    ("stage", "epoch", "path"),
    [("train", 1, "workers"), ("val", 1, "workers"), ("train", 0, "workers"), ("train", 1, "device")],
)
def test_interrupted_in_training_or_validation_resumes_with_every_epoch_validated_once(
    make_cfg, tmp_path: Path, stage: str, epoch: int, path: str
) -> None:
    run = tmp_path / "run"
    on_device = [f"data.on_device={path == 'device'}", "data.augment=true"]
    interrupt = [
        f"+callbacks.sigterm._target_={SigtermAt.__module__}.SigtermAt",
        f"+callbacks.sigterm.stage={stage}",
        f"+callbacks.sigterm.epoch={epoch}",
    ]
    with pytest.raises(SIGTERMException):
        train(make_cfg(*SMALL_RUN, *on_device, "trainer.max_epochs=5", "test=false", *interrupt))
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == epoch
    next_second()
    metrics = train(
        make_cfg(
            *SMALL_RUN,
            *on_device,
            "trainer.max_epochs=3",
            "test=false",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        )
    )
    assert "val/acc" in metrics and json.loads((run / "metrics.json").read_text())["epochs"] == 3
    # The resumed run goes on writing last.ckpt, not last-v1.ckpt beside it (which ckpt_path=last would not find)
    assert [p.name for p in (run / "checkpoints").glob("last*.ckpt")] == ["last.ckpt"]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] > saved["global_step"]
    events = event_scalars(run)
    validated = events.Scalars("val/acc")  # drawn against the epoch
    assert [e.step for e in validated] == [1, 2, 3]  # once per epoch, none skipped
    # One train/loss series too; an epoch whose training had ended when the run was interrupted has none.
    trained = [e.step for e in events.Scalars("train/loss")]
    assert trained == sorted(set(trained)) and set(trained) <= {e.step for e in validated}
    assert metrics["val/acc_best"] == pytest.approx(max(e.value for e in validated))  # epochs before the resume count


@pytest.mark.parametrize("limit", [2, 1])  # the batches trained before the interrupt (2) reach or pass the new length
def test_a_resume_with_fewer_batches_than_were_trained_ends_the_epoch_with_its_validation(
    make_cfg, tmp_path: Path, limit: int
) -> None:
    run = tmp_path / "run"
    interrupt = [f"+callbacks.sigterm._target_={SigtermAt.__module__}.SigtermAt", "+callbacks.sigterm.stage=train"]
    with pytest.raises(SIGTERMException):  # at the second batch of epoch 1: two of its batches trained
        train(make_cfg(*SMALL_RUN, "trainer.max_epochs=3", "test=false", *interrupt))
    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["completed"] == 2
    next_second()
    metrics = train(  # EarlyStopping (on val/acc) raised "val/acc which is not available" here
        make_cfg(
            *SMALL_RUN,
            "trainer.max_epochs=3",
            f"++trainer.limit_train_batches={limit}",
            "test=false",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        )
    )
    assert "val/acc" in metrics
    assert [e.step for e in event_scalars(run).Scalars("val/acc")] == [1, 2, 3]  # each epoch validated, once
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == saved["global_step"] + limit  # epoch 2's batches, none more in epoch 1


@pytest.mark.slow  # 40 s; the fast suite has the process-group SIGTERM and the SIGKILL + resume tests (test_faults.py)
def test_sigterm_mid_epoch_saves_and_resume_finishes_one_tensorboard_series(tmp_path: Path) -> None:
    args = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "data=synthetic",
        "data.synthetic.train=200",
        "data.batch_size=8",
        "data.num_workers=0",
        *SMALL_CNN,
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1",
        "test=false",
    ]
    process = subprocess.Popen(
        [*args, "trainer.max_epochs=50"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("outputs/train/runs/*/checkpoints/epoch*.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.5)  # let one epoch finish
    time.sleep(1.0)  # and get into the next one
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    [run] = tmp_path.glob("outputs/train/runs/*")
    checkpoints = run / "checkpoints"
    assert "saved" in output and (checkpoints / "last.ckpt").is_file(), output[-2000:]
    interrupted = torch.load(checkpoints / "last.ckpt", weights_only=True)
    resumed = subprocess.run(
        [*args, f"trainer.max_epochs={interrupted['epoch'] + 2}", "ckpt_path=last"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [p.name for p in tmp_path.glob("outputs/train/runs/*")] == [run.name]  # the same folder
    events = event_scalars(run)
    validated = [e.step for e in events.Scalars("val/acc")]
    assert validated == sorted(set(validated)) and len(validated) == interrupted["epoch"] + 2  # every epoch, once
    trained = [e.step for e in events.Scalars("train/loss")]  # none for an epoch whose training had ended at the signal
    assert trained == sorted(set(trained)) and set(trained) <= set(validated)


def test_ddp_on_cpu_with_two_processes_synchronises_metrics(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "fer_lightning.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "data=synthetic",
        "data.synthetic.train=20",
        "data.synthetic.test=8",
        "data.num_workers=0",
        *SMALL_CNN,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        "hydra.run.dir=run",
    ]
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=300)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    # test/acc is torchmetrics' value synchronised over both processes' halves of the 56 test faces; the
    # report's accuracy is computed by rank 0 alone over all of them: they agree only if the sync happened.
    report = pd.read_csv(tmp_path / "run" / "report" / "test" / "classification_report.csv", index_col=0)
    assert saved["test/acc"] == pytest.approx(report.loc["accuracy", "f1"], abs=1e-6)
    assert (tmp_path / "run" / "train_ddp_process_1.log").is_file()


def test_bad_config_and_resume_inputs_name_what_is_wrong(make_cfg, tmp_path: Path) -> None:
    from hydra.errors import ConfigCompositionException, MissingConfigException

    with pytest.raises(MissingConfigException, match="model/transformer"):
        make_cfg("model=transformer")
    with pytest.raises(ConfigCompositionException, match="model.learning_rate"):
        make_cfg("model.learning_rate=0.1")
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*missing.ckpt does not exist"):
        train(make_cfg(*SMALL_RUN, f"ckpt_path={tmp_path / 'missing.ckpt'}"))
    train(make_cfg(*SMALL_RUN, "test=false"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with pytest.raises(
        ValueError, match="holds a fer_lightning.models.cnn.scratch_cnn model, but this run builds .*resnet50"
    ):
        train(make_cfg("model=resnet50", "model.pretrained=false", f"ckpt_path={last}"))


def test_max_epochs_0_is_refused_instead_of_testing_an_untrained_net(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"trainer.max_epochs=0: expected at least 1 \(-1: no limit\)") as error:
        train(make_cfg(*SMALL_RUN, "trainer.max_epochs=0"))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "run" / "metrics.json").exists()


class LastSeen(L.Callback):
    """The epoch stored in last.ckpt at the start of every epoch (None: no file yet)."""

    seen: list[int | None] = []

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        LastSeen.seen = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        LastSeen.seen.append(torch.load(self.path, weights_only=True)["epoch"] if self.path.is_file() else None)


def test_last_ckpt_every_few_minutes_is_written_first_then_when_due_and_after_the_last_epoch(
    make_cfg, tmp_path: Path
) -> None:
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    probe = [f"+callbacks.last_seen._target_={LastSeen.__module__}.LastSeen", f"+callbacks.last_seen.path={last}"]
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=4", "callbacks.last_checkpoint.every_minutes=60", *probe))
    assert LastSeen.seen == [None, 0, 0, 0]  # epoch 0 written, epochs 1 and 2 not yet due
    assert torch.load(last, weights_only=True)["epoch"] == 3  # and always the last epoch


def test_a_run_whose_last_epoch_is_its_best_keeps_one_file_under_both_names(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=1", "test=false"))
    checkpoints = tmp_path / "run" / "checkpoints"
    [best] = checkpoints.glob("epoch*.ckpt")
    last = checkpoints / "last.ckpt"
    assert best.samefile(last)  # one file on disk, two names: the best for eval, last.ckpt for a resume
    kept = best.read_bytes()
    next_second()
    train(make_cfg(*SMALL_RUN, "trainer.max_epochs=2", "test=false", f"ckpt_path={last}"))
    assert torch.load(last, weights_only=True)["epoch"] == 1  # last.ckpt written anew by the resumed run ...
    if best.exists():  # ... and the first best, if still the best, left as it was
        assert best.read_bytes() == kept and not best.samefile(last)
