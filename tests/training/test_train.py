"""Training end to end through the real entry point and configs, on synthetic data."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_lightning.training.run import train
from tests.conftest import SMALL_CNN, TINY_CLI, TRAIN_COMMAND, event_scalars, final_run, job_folder, tensorboard_hparams


@pytest.mark.parametrize("model", ["cnn", "vgg16", "resnet50"])
def test_fast_dev_run_trains_validates_and_tests_every_model(make_cfg, model: str) -> None:
    cfg = make_cfg(
        f"model={model}",
        "data.augment=true",
        "trainer.fast_dev_run=true",
        "data.batch_size=8",
        *(SMALL_CNN if model == "cnn" else ["model.pretrained=false"]),
    )
    metrics = train(cfg)
    for name in ("train/loss", "val/acc", "test/acc", "test/f1", "test/f1_disgust"):
        assert name in metrics


def test_short_run_learns_synthetic_faces_and_writes_the_run(
    make_cfg, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = make_cfg(
        "data.synthetic.train=150",
        "data.synthetic.val=30",
        "data.synthetic.test=30",
        "data.batch_size=32",
        "trainer.max_epochs=6",
        "model.lr=3e-3",
        "model.net.channels=[16,32,64]",
        "model.net.dense=[64]",
        "model.dropout=0.2",
        "callbacks.time_to_accuracy.thresholds=[0.6,1.01]",
    )
    with caplog.at_level(logging.INFO):
        metrics = train(cfg)
    assert metrics["val/acc_best"] >= 0.8, metrics
    assert metrics["test/acc"] >= 0.7, metrics

    run = tmp_path / "run"
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["metrics"]["val/acc_best"] == pytest.approx(metrics["val/acc_best"])
    assert Path(saved["best_checkpoint"]).is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert 0 < saved["minutes_to_val_acc_0.6"] < saved["fit_seconds"] / 60 and "minutes_to_val_acc_1.01" not in saved

    events = event_scalars(run)
    scalars = set(events.Tags()["scalars"])
    for stage in ("train", "val"):
        assert {f"{stage}/{m}" for m in ("acc", "precision", "recall", "f1", "loss")} <= scalars
    # One run: test's numbers are single points at the last epoch's step, beside the curves, in TensorBoard's group
    # "~test", which sorts after train and val (TensorBoard opens its first two groups).
    tested = [tag for tag in scalars if tag.startswith("~test/")]
    assert tested and all([e.step for e in events.Scalars(tag)] == [6] for tag in tested)
    assert not any(tag.startswith("test/") for tag in scalars)
    assert "val/f1_fear" in scalars and "train/lr" in scalars and "train/lr_backbone" not in scalars  # one rate
    assert not any(tag.startswith(("hp/", "lr/")) for tag in scalars)  # no group of single points leads the tab
    assert [e.step for e in events.Scalars("val/acc")] == list(range(1, 7))  # against the epoch, counted from 1
    first = next(e.step for e in events.Scalars("val/acc") if e.value >= 0.6)  # time to accuracy: that epoch's value
    assert (
        f"val/acc reached 60.00% after {saved['minutes_to_val_acc_0.6']:.1f} minutes of fitting (epoch {first})"
        in caplog.text
    )
    images = events.Tags()["images"]
    assert {"~test/confusion_matrix", "val/confusion_matrix", "~test/misclassified", "~test/gradcam"} <= set(images)
    assert (run / "report" / "test" / "gradcam.png").is_file()
    assert {f"~test/pr_{e}" for e in ("angry", "neutral")} <= set(events.Tags()["tensors"]) | set(
        events.PluginTagToContent("pr_curves")
    )
    # The final numbers, each under its own name at the last epoch, and the HPARAMS session: in the curves' run.
    final, start = final_run(run)
    for name in ("test/acc", "test/precision", "test/recall", "test/f1", "val/acc_best"):
        point = final.Scalars(name.replace("test/", "~test/"))[-1]  # val/acc_best: a curve ending at the best
        assert point.value == pytest.approx(metrics[name]) and point.step == 6, name
        # HPARAMS' metric column: the same number in percent, as the console and the leaderboard give it.
        column = final.Scalars(f"~hparams/{name}")
        assert [(p.step, p.value) for p in column] == [(6, pytest.approx(100 * metrics[name], rel=1e-6))], name
    hparams = start.hparams
    assert {"batch_size", "dropout", "lr", "max_epochs"} <= set(hparams) and "seed" not in hparams  # the overridden
    assert hparams["batch_size"].string_value == "32" and hparams["lr"].number_value == 3e-3  # 32, not 32.000


def test_multirun_gives_a_named_folder_and_tensorboard_run_per_job_and_a_leaderboard_with_the_failed_job(
    tmp_path: Path,
) -> None:
    command = [
        *TRAIN_COMMAND,
        "-m",
        "model.lr=1e-3,3e-4,-1",  # a negative lr fails its job
        *TINY_CLI,
        "data.batch_size=16",
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={tmp_path}",
    ]
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True, timeout=300)
    jobs = [job_folder(tmp_path, n) for n in (0, 1, 2)]
    assert [p.name for p in jobs] == [
        "0_lr-0.001",
        "1_lr-0.0003",
        "2_lr--1",
    ]  # TensorBoard names its runs by these folders; no = or , (they paste back into an override unquoted)
    events = event_scalars(jobs[0])
    # HPARAMS as TensorBoard's own backend computes it for --logdir: the swept knob alone, the final numbers as its
    # metric columns (not every curve), the run named by its sweep and job number.
    experiment = tensorboard_hparams(tmp_path)
    assert [(info.name, info.differs) for info in experiment.hparam_infos] == [("lr", True)]
    assert {(info.name.tag, info.display_name) for info in experiment.metric_infos} == {
        ("~hparams/val/acc_best", "val/acc_best %"),
        ("~hparams/test/acc", "test/acc %"),
        ("~hparams/test/precision", "test/precision %"),
        ("~hparams/test/recall", "test/recall %"),
        ("~hparams/test/f1", "test/f1 %"),
    }
    assert final_run(jobs[0])[1].group_name == f"#0 {tmp_path.name}"  # the job first: the Trial ID column is narrow
    assert "config" in {tag.split("/")[0] for tag in events.Tags()["tensors"]}  # the whole config as a text card
    assert json.loads((jobs[0] / "metrics.json").read_text())["status"] == "completed"
    board = pd.read_csv(tmp_path / "leaderboard.csv").set_index("job")
    assert list(board["status"].sort_index()) == ["completed", "completed", "failed"]
    assert "model.lr=-1: expected a value" in board.loc[2, "error"]
    assert board.loc[0, "lr"] == 1e-3 and board.loc[1, "lr"] == 3e-4
    assert (tmp_path / "leaderboard.md").read_text().count("| completed |") == 2
    # The same table again from the command line, for a sweep folder alone.
    (tmp_path / "leaderboard.csv").unlink()
    out = subprocess.run(
        [sys.executable, "-m", "fer_lightning.leaderboard", f"sweep_dir={tmp_path}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "leaderboard.csv").set_index("job"), board)
    assert "completed" in out.stdout and "failed" in out.stdout


@pytest.mark.slow  # 35 s, an optional extra
def test_optuna_search_runs_trials_and_reports_the_best(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="optional extra: pip install -e '.[optuna]'")
    command = [
        *TRAIN_COMMAND,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        *TINY_CLI,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={tmp_path}",
    ]
    subprocess.run(command, check=True, cwd=tmp_path, capture_output=True, timeout=300)
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert len(board) == 2 and set(board["status"]) == {"completed"}
    assert set(board["batch_size"]) <= {32, 64, 128} and board["lr"].between(1e-4, 3e-3).all()
    assert "best_value" in (tmp_path / "optimization_results.yaml").read_text()
