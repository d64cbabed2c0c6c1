"""What TensorBoard shows of a run (training/dashboards.py): the Custom Scalars layout, the HPARAMS knobs."""

from __future__ import annotations

from pathlib import Path

from tensorboard.plugins.hparams import api_pb2
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.training.dashboards import HparamsEntry, custom_scalars_layout, hparams_summaries, trial_name
from tests.conftest import tensorboard_hparams


def test_per_class_f1_is_one_chart_per_class() -> None:
    per_class = custom_scalars_layout()["val F1 per class"]
    assert list(per_class) == [f"F1 {e}" for e in EMOTIONS]
    assert all(chart == ["Multiline", [f"^val/f1_{e}$"]] for e, chart in zip(EMOTIONS, per_class.values(), strict=True))


def test_hparams_keep_one_type_per_knob_and_whole_numbers_read_as_such(tmp_path: Path) -> None:
    """Two runs of a sweep over dropout 0 (an int on the command line) and 0.3: TensorBoard's own backend gives the
    column one numeric type, and the batch size reads 64, not 64.000."""
    for name, dropout in (("a", 0), ("b", 0.3)):
        with SummaryWriter(str(tmp_path / name)) as writer:
            knobs = {"batch_size": 64, "dropout": dropout, "augment": True, "model": "cnn"}
            entry = HparamsEntry(knobs, list(knobs), {"dropout"}, {"batch_size"}, ["val/acc_best"], name)
            for summary in hparams_summaries(entry):
                writer.file_writer.add_summary(summary)
            writer.add_scalar("val/acc_best", 0.5, 0)
    types = {i.name: (api_pb2.DataType.Name(i.type), i.differs) for i in tensorboard_hparams(tmp_path).hparam_infos}
    assert types == {
        "batch_size": ("DATA_TYPE_STRING", False),
        "dropout": ("DATA_TYPE_FLOAT64", True),
        "augment": ("DATA_TYPE_BOOL", False),
        "model": ("DATA_TYPE_STRING", False),
    }


def test_trial_names_lead_with_what_tells_runs_apart() -> None:
    """TensorBoard's HPARAMS cuts the Trial ID at about 16 characters: the job number and the time come first."""
    sweep = Path("outputs/train/multiruns/2026-12-06_22-41-25_817688")
    assert trial_name(sweep / "0_lr-0.001_batch_size-32", 0) == "#0 12-06 22:41:25"
    assert trial_name(sweep / "3_lr-0.0003_batch_size-64", 3) == "#3 12-06 22:41:25"
    run = Path("outputs/train/runs/2026-12-06_22-36-51_058064_lr-0.002")
    assert trial_name(run, None) == "12-06 22:36:51 lr-0.002"
    assert trial_name(Path("outputs/train/released/scratch_best_120"), None) == "scratch_best_120"
