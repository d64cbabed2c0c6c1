"""Hydra overrides read one way: prefix, key and value."""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import OmegaConf

from fer_lightning.core.overrides import (
    Override,
    folder_name,
    is_location,
    job_number,
    override_keys,
    parse_override,
    sweep_keys,
    swept_keys,
)


def test_an_override_parses_into_prefix_key_and_value_and_back() -> None:
    for text, parsed in [
        ("model.lr=1e-3", Override("", "model.lr", "1e-3")),
        ("+callbacks.ema.decay=0.9", Override("+", "callbacks.ema.decay", "0.9")),
        ("++trainer.x=a=b", Override("++", "trainer.x", "a=b")),
        ("~callbacks.early_stopping", Override("~", "callbacks.early_stopping", None)),
        ("model/optimizer=sgd", Override("", "model/optimizer", "sgd")),
    ]:
        assert parse_override(text) == parsed and str(parsed) == text


def test_keys_locations_and_swept_keys() -> None:
    assert override_keys(["model.lr=1", "~callbacks.ema", "+data.root=x"]) == {"model.lr", "data.root"}
    assert [is_location(k) for k in ("data.root", "hydra.sweep.dir", "paths.root", "ckpt_path", "model.lr")] == [
        True,
        True,
        True,
        True,
        False,
    ]
    assert swept_keys(["-m", "model.lr=1e-3,3e-4", "data.batch_size=64", "model/optimizer=adamw,sgd"]) == {
        "model.lr",
        "model/optimizer",
    }
    assert swept_keys(["model.lr=[unclosed"]) == set()  # not Hydra's grammar: none


def test_a_sweep_job_folder_is_named_by_its_swept_values_and_a_run_by_its_overrides(tmp_path: Path) -> None:
    job = ["model.lr=0.001", "data.batch_size=64", "model/optimizer=sgd", "trainer.max_epochs=2", "data.root=../a/b"]
    assert folder_name(3, job, ["model.lr", "model/optimizer"]) == "3_lr-0.001_optimizer-sgd"
    assert folder_name(3, job, []) == "3"  # a multirun of one point
    assert folder_name("t", job) == "t_lr-0.001_batch_size-64_optimizer-sgd_max_epochs-2"  # locations left out
    assert folder_name("t", ["model.net.channels=[16,32]", "+x.y=a/b c"]) == "t_channels-16-32_y-a-b-c"
    long = folder_name("t", [f"model.k{i}=1234567890" for i in range(20)])  # whole parts, then how many were left
    assert long == "t_" + "_".join(f"k{i}-1234567890" for i in range(7)) + "_+13"
    optuna = ["model.lr=0.00012709381746178345", "model.weight_decay=1.5432117865643212e-05", "data.batch_size=128"]
    assert folder_name(7, optuna) == "7_lr-0.0001271_weight_decay-1.543e-05_batch_size-128"  # short, never cut
    # As Hydra hands them over while it builds the folder: a list node, its interpolations left as written.
    node = OmegaConf.create({"task": ["model.lr=1e-3", "+callbacks.x.dirpath=${hydra:runtime.output_dir}/x"]}).task
    assert folder_name("t", node) == "t_lr-0.001_dirpath---hydra-runtime.output_dir--x"
    assert [job_number(name) for name in ("3_lr-0.001", "12", "2026-11-29_19-00")] == [3, 12, "2026-11-29_19-00"]


def test_a_job_knows_its_sweeps_keys_from_the_saved_command_line_and_the_search_space(tmp_path: Path) -> None:
    assert sweep_keys(tmp_path, None) == set()  # nothing saved yet
    saved = {"hydra": {"overrides": {"task": ["model.lr=1e-3,3e-4", "data.batch_size=64", "data.root=x"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    assert sweep_keys(tmp_path, None) == {"model.lr"}
    assert sweep_keys(tmp_path, {"+model.dropout": "interval(0.1, 0.5)"}) == {"model.lr", "model.dropout"}
