"""The fastest correct numeric precision for the machine (the resolver ``${fastest_precision:<accelerator>}``)."""

from __future__ import annotations

import torch


def fastest_precision(accelerator: str) -> str:
    """bf16 autocast where the hardware computes bf16 fast, else what is.

    GPUs: bf16-mixed from Ampere on, 16-mixed before. CPUs: bf16-mixed where oneDNN has bf16 kernels
    (AVX-512 and newer: 2.2-2.6x faster than fp32 on this project's models), else full fp32.
    """
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "32-true"

