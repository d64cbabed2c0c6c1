"""What a run shows in TensorBoard beyond scalar curves: the HPARAMS entry, the Custom Scalars layout, the
confusion matrices, the misclassified faces and the per-class PR curves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.figures import class_rows_figure, confusion_matrix_figure, plt, write_png
from fer_lightning.core.overrides import is_location, parse_override
from fer_lightning.evaluation.reports import confusion_counts

Knob = bool | int | float | str


def tensorboard_writers(loggers: Iterable[Logger]) -> list[SummaryWriter]:
    """The SummaryWriter of each TensorBoard logger among a run's loggers (none, one, or several)."""
    return [logger.experiment for logger in loggers if isinstance(logger, TensorBoardLogger)]


def custom_scalars_layout() -> dict:
    """Train against val on one chart for loss, accuracy and macro F1 (where overfitting shows), and val F1 on one
    chart per class (seven lines per run on one chart cannot be read in a sweep), in TensorBoard's Custom Scalars
    tab."""

    def pair(name: str) -> list:
        return ["Multiline", [f"^train/{name}$", f"^val/{name}$"]]

    return {
        "train vs val": {"loss": pair("loss"), "accuracy": pair("acc"), "macro F1": pair("f1")},
        "val F1 per class": {f"F1 {e}": ["Multiline", [f"^val/f1_{e}$"]] for e in EMOTIONS},
    }


def log_layout(loggers: Iterable[Logger]) -> None:
    for writer in tensorboard_writers(loggers):
        writer.add_custom_scalars(custom_scalars_layout())


def log_confusion_matrix(loggers: Iterable[Logger], split: str, collected: tuple[Tensor, Tensor], step: int) -> None:
    """The confusion matrix of ``collected`` (probabilities, labels) as an image, titled with its accuracy."""
    probabilities, labels = collected
    if not len(labels):
        return
    predicted = probabilities.argmax(1)
    counts = confusion_counts(labels.numpy(), predicted.numpy())
    accuracy = float((predicted == labels).float().mean())
    for writer in tensorboard_writers(loggers):
        figure = confusion_matrix_figure(counts, EMOTIONS, title=f"{split}, epoch {step}: accuracy {accuracy:.1%}")
        writer.add_figure(f"{split}/confusion_matrix", figure, step)
        plt.close(figure)


def misclassified_figure(images: np.ndarray, true: np.ndarray, probabilities: np.ndarray, per_class: int) -> plt.Figure:
    """A row per true class: its most confidently wrong faces, each titled with the predicted class and probability."""
    predicted = probabilities.argmax(1)
    figure, axes = class_rows_figure(
        per_class, (1.25, 1.45), "Misclassified test faces: true class per row; predicted class and its probability"
    )
    for label, row in enumerate(axes):
        wrong = np.flatnonzero((true == label) & (predicted != label))
        wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:per_class]
        for ax, index in zip(row, wrong, strict=False):
            ax.imshow(images[index], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{EMOTIONS[predicted[index]]} {probabilities[index, predicted[index]]:.2f}", fontsize=7)
    return figure


def log_test_figures(
    loggers: Iterable[Logger],
    images: np.ndarray,
    true: np.ndarray,
    probabilities: np.ndarray,
    per_class: int,
    step: int,
) -> None:
    """The misclassified faces and one precision-recall curve per class."""
    for writer in tensorboard_writers(loggers):
        figure = misclassified_figure(images, true, probabilities, per_class)
        writer.add_figure("test/misclassified", figure, step)
        plt.close(figure)
        for index, emotion in enumerate(EMOTIONS):
            writer.add_pr_curve(f"test/pr_{emotion}", true == index, probabilities[:, index], step)


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    content = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(
        value=[
            Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=content), tensor=TensorProto(dtype="DT_FLOAT"))
        ]
    )


def hparams_summaries(
    knobs: Mapping[str, Knob], metrics: Iterable[str], varying: Iterable[str], group: str
) -> list[Summary]:
    """TensorBoard's HPARAMS records for one run, with each knob's real type (bool, number, str) and the knobs a
    sweep varies marked ``differs``, which TensorBoard shows by default. torch's own ``hparams()`` writes bools as
    numbers and marks nothing; the swept knob could then be hidden among the first five ticked alphabetically."""
    varying = set(varying)
    kinds = {bool: api_pb2.DATA_TYPE_BOOL, str: api_pb2.DATA_TYPE_STRING}
    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=name, type=kinds.get(type(value), api_pb2.DATA_TYPE_FLOAT64), differs=name in varying
            )
            for name, value in knobs.items()
        ],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metrics],
    )
    start = plugin_data_pb2.SessionStartInfo(group_name=group)
    for name, value in knobs.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    version = metadata.PLUGIN_DATA_VERSION
    return [
        _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment, version=version)),
        _summary(
            metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start, version=version),
        ),
        _summary(
            metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end, version=version)
        ),
    ]


def log_hparams(
    loggers: Iterable[Logger],
    knobs: Mapping[str, Knob],
    metrics: Mapping[str, float],
    varying: Iterable[str],
    group: str,
    config_yaml: str,
) -> None:
    """One HPARAMS entry per run with its final metrics (as hp/<metric> scalars), and the whole config as text."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment
            for summary in hparams_summaries(knobs, metrics, varying, group):
                writer._get_file_writer().add_summary(summary)  # created on first use, as torch's add_hparams does
            for name, value in metrics.items():
                writer.add_scalar(name, value, 0)
            writer.add_text("config", f"```yaml\n{config_yaml}\n```")
            logger.hparams.update(knobs)  # tensorboard/hparams.yaml
        else:
            logger.log_hyperparams(dict(knobs))
        logger.save()


def run_label(run_dir: Path, overrides: Iterable[str], varying: Iterable[str]) -> str:
    """The run's name in TensorBoard's HPARAMS table (its Trial ID): the overrides that tell it from the other runs
    (a sweep's swept keys; all of a single run's), shortened to their last part, then its folder."""
    varying = set(varying)
    parsed = [parse_override(o) for o in overrides]
    chosen = [o for o in parsed if o.key in varying] or parsed
    parts = [f"{o.key.split('.')[-1]}={o.value}" for o in chosen if o.value is not None and not is_location(o.key)]
    where = "/".join(run_dir.parts[-2:]) if run_dir.parent.name.isdigit() or run_dir.name.isdigit() else run_dir.name
    return f"{' '.join(parts) or 'defaults'} · {where}"


def write_figure(figure: plt.Figure, path: Path, loggers: Iterable[Logger], tag: str, step: int) -> None:
    """A figure as a PNG (written whole or not at all) and as a TensorBoard image; then closed."""
    write_png(figure, path)
    for writer in tensorboard_writers(loggers):
        writer.add_figure(tag, figure, step, close=False)
    plt.close(figure)
