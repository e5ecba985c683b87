"""The arithmetic a model runs in, decided once when it is loaded (`InferenceConfig.precision`).

Intel CPUs with AMX (Advanced Matrix Extensions: Xeon Sapphire Rapids and later) multiply
bfloat16 matrices in dedicated tile units: on a 2-core Xeon with AMX, a 2048^2 matrix
product ran at 1,890 GFLOP/s in bfloat16 against 290 in float32, a dilated 3x3 convolution
512->64 at 30x54 in 0.67 against 3.2 ms (docs/performance.md). Elsewhere (AVX2 or AVX-512
without AMX) bfloat16 convolutions were 1.5-2x *slower* than float32. So "auto" is
bfloat16 on a CPU with AMX and float32 on every other device; `--precision` forces either.

Only the convolutional parts (query and memory encoders, decoder, kernel head) change
(`LGDK.use_dtype`); the memory keeps float32 keys and values and the read (affinity, top-k,
softmax) runs in float32, so the choice of memory positions does not suffer from
bfloat16's 8-bit mantissa. Fine-tuning (`--adapt`) needs float32 weights: "auto" is float32
there.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from lgdk.config import InferenceConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles with bfloat16 that the OS lets PyTorch use."""
    try:
        return bool(torch._C._cpu._init_amx())  # asks Linux for the tile state, as oneDNN does
    except (AttributeError, RuntimeError):
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags and "amx_tile" in flags


def resolve_dtype(settings: InferenceConfig, device: str | torch.device) -> torch.dtype:
    """The dtype of the convolutional parts for these settings on this device."""
    if settings.precision != "auto":
        return DTYPES[settings.precision]
    on_cpu = torch.device(device).type == "cpu"
    if on_cpu and not settings.adapt_steps and cpu_has_amx():
        return torch.bfloat16
    return torch.float32


def precision_name(dtype: torch.dtype) -> str:
    return {v: k for k, v in DTYPES.items()}[dtype]
