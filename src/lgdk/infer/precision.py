"""The arithmetic a model runs in, decided once when it is loaded (`InferenceConfig.precision`).

Intel CPUs with AMX (Advanced Matrix Extensions: Xeon Sapphire Rapids and later) multiply
bfloat16 matrices in dedicated tile units: on a 2-core Xeon with AMX, a 2048^2 matrix
product ran at 1,890 GFLOP/s in bfloat16 against 290 in float32, a dilated 3x3 convolution
512->64 at 30x54 in 0.67 against 3.2 ms (docs/performance.md). Elsewhere (AVX2 or AVX-512
without AMX) bfloat16 convolutions were 1.5-2x *slower* than float32. CPUs with VNNI
(8-bit dot products) but no AMX run int8 convolutions 2.5-4x faster than float32
(`lgdk.models.int8`): there the decoder, the memory encoder and the query's value
projection run in int8 (`LGDK.use_int8`); the backbone stays float32 (its depthwise
convolutions are slower in int8, and its error would reach the keys). So "auto" is
bfloat16 on a CPU with AMX, int8 on a CPU with VNNI and without AMX, and float32 on
every other device; `--precision` forces any of them on a CPU.

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
from lgdk.errors import UserError
from lgdk.models.int8 import cpu_has_vnni, int8_available
from lgdk.models.network import LGDK

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
INT8 = "int8"  # int8 convolutions with float32 between them (`LGDK.use_int8`)


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


def resolve_precision(settings: InferenceConfig, device: str | torch.device) -> str:
    """The arithmetic of the convolutional parts for these settings on this device:
    "float32", "bfloat16" or "int8"."""
    on_cpu = torch.device(device).type == "cpu"
    if settings.precision == INT8 and not (on_cpu and int8_available()):
        raise UserError("--precision int8 runs on a CPU with PyTorch's oneDNN int8 "
                        "convolutions; leave it out (auto) or use --device cpu")
    if settings.precision != "auto":
        return settings.precision
    if not on_cpu or settings.adapt_steps:
        return "float32"
    if cpu_has_amx():
        return "bfloat16"
    if cpu_has_vnni() and int8_available():
        return INT8
    return "float32"


def apply_precision(model: LGDK, name: str) -> LGDK:
    """`model` with its convolutional parts in the precision `name` (in place)."""
    return model.use_int8() if name == INT8 else model.use_dtype(DTYPES[name])
