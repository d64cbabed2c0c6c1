"""What TensorBoard shows of a run (training/dashboards.py): the Custom Scalars layout, the HPARAMS knobs."""

from __future__ import annotations

from pathlib import Path

from tensorboard.plugins.hparams import api_pb2
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.training.dashboards import custom_scalars_layout, hparams_summaries
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
            for summary in hparams_summaries(knobs, ["batch_size"], name):
                writer._get_file_writer().add_summary(summary)
            writer.add_scalar("val/acc_best", 0.5, 0)
    types = {i.name: (api_pb2.DataType.Name(i.type), i.differs) for i in tensorboard_hparams(tmp_path).hparam_infos}
    assert types == {
        "batch_size": ("DATA_TYPE_STRING", False),
        "dropout": ("DATA_TYPE_FLOAT64", True),
        "augment": ("DATA_TYPE_BOOL", False),
        "model": ("DATA_TYPE_STRING", False),
    }
