"""The fastest correct numeric precision for the machine (the resolver ``${fastest_precision:<accelerator>}``).

One rule for training, evaluation, prediction and the Python API: bf16 autocast only where the hardware computes
bf16 natively. oneDNN reports bf16 support on every AVX-512 CPU (``torch.ops.mkldnn._is_mkldnn_bf16_supported()``)
and emulates it where the AVX512_BF16 and AMX instructions are missing, at a third of fp32's speed or worse.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch


def cpu_bf16_hardware() -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, why), from the instructions torch sees."""
    if torch.cpu._is_amx_tile_supported():
        return True, "the CPU has AMX tiles"
    if torch.cpu._is_avx512_bf16_supported():
        return True, "the CPU has AVX512_BF16"
    return False, "the CPU has neither AVX512_BF16 nor AMX (oneDNN would emulate bf16, slower than fp32)"


def precision_choice(accelerator: str) -> tuple[str, str]:
    """(Lightning precision, why): bf16-mixed where bf16 is native, 16-mixed on pre-Ampere GPUs, else 32-true."""
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", "the GPU computes bf16"
        return "16-mixed", "the GPU has no bf16 (before Ampere): fp16 autocast"
    native, why = cpu_bf16_hardware()
    return ("bf16-mixed" if native else "32-true"), why


def fastest_precision(accelerator: str) -> str:
    """The precision of ``precision_choice`` (conf/trainer/default.yaml resolves it)."""
    return precision_choice(accelerator)[0]


def inference_autocast(trained_precision: str, device: torch.device | str) -> AbstractContextManager:
    """bf16 autocast for a net trained in bf16 where ``device`` computes bf16 natively (the logged numbers are
    reproduced, at speed); fp32 everywhere else, as export runs it."""
    kind = torch.device(device).type
    if not str(trained_precision).startswith("bf16"):
        return nullcontext()
    native = torch.cuda.is_bf16_supported() if kind == "cuda" else kind == "cpu" and cpu_bf16_hardware()[0]
    return torch.autocast(kind, dtype=torch.bfloat16) if native else nullcontext()
