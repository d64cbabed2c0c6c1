"""The precision a machine trains and serves in: bf16 only where the CPU computes it natively."""

from __future__ import annotations

import pytest
import torch

from fer_lightning.core import hardware
from fer_lightning.core.hardware import fastest_precision, inference_autocast


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [(False, False, "32-true"), (False, True, "bf16-mixed"), (True, False, "bf16-mixed"), (True, True, "bf16-mixed")],
)
def test_a_cpu_trains_in_bf16_only_with_bf16_instructions(
    monkeypatch: pytest.MonkeyPatch, amx: bool, avx512_bf16: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    # oneDNN says yes on every AVX-512 CPU, emulating bf16 where the instructions are missing: not a reason.
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True, raising=False)
    assert fastest_precision("cpu") == expected == fastest_precision("auto")


@pytest.mark.parametrize("native", [False, True])
def test_the_composed_training_config_follows_the_hardware(
    make_cfg, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_hardware", lambda: (native, "patched"))
    assert make_cfg().trainer.precision == ("bf16-mixed" if native else "32-true")


@pytest.mark.parametrize("native", [False, True])
def test_inference_runs_bf16_only_for_a_bf16_net_on_bf16_hardware(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_hardware", lambda: (native, "patched"))
    weight = torch.randn(8, 8)
    x = torch.randn(4, 8)
    with inference_autocast("bf16-mixed", "cpu"):
        bf16_net = (x @ weight).dtype
    with inference_autocast("32-true", "cpu"):
        fp32_net = (x @ weight).dtype
    assert bf16_net == (torch.bfloat16 if native else torch.float32) and fp32_net == torch.float32
