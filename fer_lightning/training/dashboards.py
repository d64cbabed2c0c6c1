"""What a run shows in TensorBoard beyond scalar curves: the HPARAMS entry, the Custom Scalars layout, the
confusion matrices, the misclassified faces and the per-class PR curves."""

from __future__ import annotations

import shutil
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


def hparams_summaries(knobs: Mapping[str, Knob], whole: Iterable[str], group: str) -> list[Summary]:
    """TensorBoard's HPARAMS session of one run: its knobs and its name in the table (``group``).

    No experiment record is written: TensorBoard then builds the table from every run it shows, marks the knobs
    whose values differ between those runs, and takes for metrics the scalars of the session's own folder (the
    final numbers beside it, not the curves). One run's experiment record would stand for all runs, whatever they
    varied. Bools stay bools and numbers numbers, except the knobs in ``whole`` (batch size, epochs), written as
    text: TensorBoard prints every number with five significant digits (a batch size of 64.000). The choice is
    per knob, not per value, so a sweep's column keeps one type (dropout 0 and 0.3 both numbers)."""
    whole = set(whole)
    start = plugin_data_pb2.SessionStartInfo(group_name=group)
    for name, value in knobs.items():
        if isinstance(value, bool):
            start.hparams[name].bool_value = value
        elif isinstance(value, (int, float)) and name not in whole:
            start.hparams[name].number_value = value
        else:
            start.hparams[name].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    version = metadata.PLUGIN_DATA_VERSION
    return [
        _summary(
            metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start, version=version),
        ),
        _summary(
            metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end, version=version)
        ),
    ]


FINAL_RUN = "final"  # <run>/tensorboard/final: the HPARAMS session and the run's final numbers


def log_hparams(
    loggers: Iterable[Logger],
    knobs: Mapping[str, Knob],
    shown: Iterable[str],
    whole: Iterable[str],
    metrics: Mapping[str, float],
    step: int,
    group: str,
    config_yaml: str,
) -> None:
    """The run's final ``metrics`` (each under its own name, at ``step``) and the knobs in ``shown`` as TensorBoard's
    HPARAMS session, in a folder of their own beside the curves: the single points then neither lead the Scalars
    tab as a group of their own nor make every curve an HPARAMS column. A resumed run's folder is written anew
    (TensorBoard would keep the first session's knobs). Every knob goes to hparams.yaml (and to the other loggers);
    the whole config as a text card."""
    shown = set(shown)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text("config", f"```yaml\n{config_yaml}\n```")
            final = Path(logger.log_dir) / FINAL_RUN
            shutil.rmtree(final, ignore_errors=True)
            with SummaryWriter(str(final)) as writer:
                for summary in hparams_summaries({k: v for k, v in knobs.items() if k in shown}, whole, group):
                    writer._get_file_writer().add_summary(summary)  # created on first use, as torch's add_hparams does
                for name, value in metrics.items():
                    writer.add_scalar(name, value, step)
            logger.hparams.update(knobs)  # tensorboard/hparams.yaml
        else:
            logger.log_hyperparams(dict(knobs))
        logger.save()


def trial_name(run_dir: Path, job: int | None) -> str:
    """The run's name in TensorBoard's HPARAMS table (its Trial ID), short beside the knobs' own columns: a sweep
    job's ``<sweep folder>/<job number>``, a single run's folder."""
    return f"{run_dir.parent.name}/{job}" if job is not None else run_dir.name


def write_figure(figure: plt.Figure, path: Path, loggers: Iterable[Logger], tag: str, step: int) -> None:
    """A figure as a PNG (written whole or not at all) and as a TensorBoard image; then closed."""
    write_png(figure, path)
    for writer in tensorboard_writers(loggers):
        writer.add_figure(tag, figure, step, close=False)
    plt.close(figure)
