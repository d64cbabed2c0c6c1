"""Hydra overrides read one way: prefix, key and value."""

from __future__ import annotations

from fer_lightning.core.overrides import Override, is_location, override_keys, parse_override, swept_keys


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
