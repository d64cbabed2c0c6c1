"""What a run shows in TensorBoard beyond scalar curves and the report's figures (evaluation/figures.py): the HPARAMS
entry, the Custom Scalars layout, the val confusion matrix of each new best epoch."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams.summary_v2 import hparams_pb
from torch import Tensor
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.core.classes import EMOTIONS
from fer_lightning.core.figures import confusion_matrix_figure, plt
from fer_lightning.core.overrides import is_location, override_keys, sweep_keys
from fer_lightning.core.units import in_percent
from fer_lightning.evaluation.figures import tensorboard_tag
from fer_lightning.evaluation.reports import confusion_counts

Knob = bool | int | float | str


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger with test's numbers under TensorBoard's "~test" group (evaluation/figures.py
    ``tensorboard_tag``): the learning curves' groups, train and val, come first and open expanded."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics({tensorboard_tag(name): value for name, value in metrics.items()}, step)


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


@dataclass(frozen=True)
class HparamsEntry:
    """A run's row in TensorBoard's HPARAMS table (conf/train.yaml: hparams, hparams_tab, hparams_whole,
    hparam_metrics)."""

    values: dict[str, Knob]  # every knob, with its real type: metrics.json's "hparams", hparams.yaml, the session
    shown: list[str]  # the table's knob columns: those that tell this run apart first (hparams_tab=all: then the rest)
    varied: set[str]  # those that tell it apart: in a sweep the swept ones, in a single run the overridden ones
    whole: set[str]  # whole numbers shown as such (TensorBoard prints every number with five digits: 64.000)
    metrics: list[str]  # the metric columns, the ranking one first
    trial: str  # the run's name in the table (its Trial ID)


def hparams_entry(cfg: DictConfig, run_dir: Path) -> HparamsEntry:
    """The HPARAMS knobs (``cfg.hparams``, plus any other overridden key or group, by its full name) with their real
    types; which of them tell this run apart; the columns shown (``hparams_tab``) and the metric columns."""
    hydra = HydraConfig.get()
    sweep = hydra.mode == RunMode.MULTIRUN
    sources = {
        name: str(value)[2:-1].removeprefix("hydra:runtime.choices.")
        for name, value in OmegaConf.to_container(cfg.hparams, resolve=False).items()
        if isinstance(value, str) and value.startswith("${")
    }
    values = dict(OmegaConf.to_container(cfg.hparams, resolve=True))
    overridden = override_keys(list(hydra.overrides.task))
    for key in sorted(overridden - set(sources.values())):
        if is_location(key):  # a location says where things are, not what was trained
            continue
        value = hydra.runtime.choices.get(key) or OmegaConf.select(cfg, key.replace("/", "."), default=None)
        if value is not None:
            values[key] = value
    swept = sweep_keys(hydra.sweep.dir, hydra.sweeper.get("params")) if sweep else set()
    varied = {name for name in values if sources.get(name, name) in (swept or overridden)}
    typed = {
        name: value
        if isinstance(value, (bool, int, float, str))
        else str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
        for name, value in values.items()
    }
    shown = [name for name in typed if name in varied]
    if cfg.hparams_tab == "all":
        shown += [name for name in typed if name not in varied]
    metrics = list(dict.fromkeys([cfg.optimized_metric, *cfg.hparam_metrics]))
    trial = trial_name(run_dir, hydra.job.num if sweep else None)
    return HparamsEntry(typed, shown, varied, set(cfg.hparams_whole), metrics, trial)


def hparams_summaries(entry: HparamsEntry) -> list[Summary]:
    """TensorBoard's HPARAMS entry of one run: the session (the shown knobs' values, the run's name) through
    TensorBoard's own ``summary_v2``, and the table's columns (those knobs, the ones that tell the run apart marked so
    TensorBoard ticks them first; the metric columns, so the table does not take every curve for one). Whole numbers go
    as text; the choice is per knob, not per value, so a sweep's column keeps one type (dropout 0 and 0.3 numbers)."""
    values = {name: str(entry.values[name]) if name in entry.whole else entry.values[name] for name in entry.shown}
    kinds = {bool: api_pb2.DATA_TYPE_BOOL, str: api_pb2.DATA_TYPE_STRING}
    experiment = api_pb2.Experiment(
        hparam_infos=[
            api_pb2.HParamInfo(
                name=name, type=kinds.get(type(values[name]), api_pb2.DATA_TYPE_FLOAT64), differs=name in entry.varied
            )
            for name in entry.shown
        ],
        metric_infos=[
            api_pb2.MetricInfo(
                name=api_pb2.MetricName(tag=hparams_tag(m)), display_name=f"{m} %" if in_percent(m) else m
            )
            for m in entry.metrics
        ],
    )
    content = plugin_data_pb2.HParamsPluginData(experiment=experiment, version=metadata.PLUGIN_DATA_VERSION)
    columns = Summary.Value(
        tag=metadata.EXPERIMENT_TAG,
        metadata=metadata.create_summary_metadata(content),
        tensor=TensorProto(dtype="DT_FLOAT"),
    )
    return [Summary(value=[columns]), hparams_pb(values, trial_id=entry.trial)]


HPARAMS_SUFFIX = ".hparams"  # the events file of a run's HPARAMS entry, beside its curves
# The table's metric columns are scalars of the run: copies of the final numbers, in percent where a fraction
# (core/units.py) as the console and the leaderboard show them, under a group that sorts after train and val.
HPARAMS_GROUP = "~hparams"


def hparams_tag(metric: str) -> str:
    """The scalar behind a metric column of the HPARAMS table: ``val/acc_best`` -> ``~hparams/val/acc_best``."""
    return f"{HPARAMS_GROUP}/{metric}"


def log_hparams(loggers: Iterable[Logger], entry: HparamsEntry, metrics: Mapping[str, float], step: int) -> None:
    """The run's HPARAMS entry in the folder of its curves (one run in TensorBoard's list), in an events file of its
    own: a resumed run replaces it (TensorBoard keeps a run's first entry). Its metric columns, written at ``step``:
    the run's final numbers, fractions in percent. Every knob also goes to hparams.yaml (and to the other loggers)."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            folder = Path(logger.log_dir)
            logger.experiment.flush()  # the curves' file is complete before the entry's file follows it
            for old in folder.glob(f"events.out.tfevents.*{HPARAMS_SUFFIX}"):
                old.unlink()
            with SummaryWriter(str(folder), filename_suffix=HPARAMS_SUFFIX) as writer:
                for summary in hparams_summaries(entry):
                    writer.file_writer.add_summary(summary, step)
                for name in entry.metrics:
                    if name in metrics:
                        writer.add_scalar(hparams_tag(name), metrics[name] * (100 if in_percent(name) else 1), step)
            # tensorboard/hparams.yaml: written here, as the logger's save() leaves a file it wrote once as it is.
            save_hparams_to_yaml(folder / TensorBoardLogger.NAME_HPARAMS_FILE, dict(entry.values))
        else:
            logger.log_hyperparams(dict(entry.values))
            logger.save()


def log_config(loggers: Iterable[Logger], config_yaml: str, step: int) -> None:
    """The run's whole config as a text card (TensorBoard's Text tab)."""
    for writer in tensorboard_writers(loggers):
        writer.add_text("config", f"```yaml\n{config_yaml}\n```", step)


# A run folder's time stamp (conf/hydra/default.yaml): 2026-12-06_20-25-31_512345, overrides after it.
STAMP = re.compile(r"^\d{4}-(\d\d-\d\d)_(\d\d)-(\d\d)-(\d\d)(?:_\d+)?_?")


def trial_name(run_dir: Path, job: int | None) -> str:
    """The run's name in TensorBoard's HPARAMS table (its Trial ID, a narrow column that cuts at about 16 characters):
    what tells it apart first. A sweep job's ``#<job> <sweep's time>`` (``#0 12-06 20:25:31``), a single run's time and
    overrides (``12-06 20:25:31 lr-0.002``); a folder named otherwise, by its name."""

    def short(name: str) -> str:
        stamp = STAMP.match(name)
        return f"{stamp[1]} {stamp[2]}:{stamp[3]}:{stamp[4]} {name[stamp.end() :]}".strip() if stamp else name

    return f"#{job} {short(run_dir.parent.name)}" if job is not None else short(run_dir.name)
