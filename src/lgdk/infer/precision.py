"""The arithmetic a model runs in, decided once when it is loaded (`InferenceConfig.precision`).

What is fast depends on the CPU (experiments/performance-log.md, 2-core machines, 2 threads):
- Intel CPUs with AMX (Xeon Sapphire Rapids and later) multiply bfloat16 matrices in tile
  units: a 2048^2 matrix product at 1,890 GFLOP/s in bfloat16 against 290 in float32, a
  dilated 3x3 convolution 512->64 at 30x54 in 0.67 against 3.2 ms.
- AMD CPUs with AVX-512 BF16 (Zen 4 and later) run bfloat16 convolutions about twice as
  fast as float32 (the backbone's widest depthwise one 1.18 against 2.69 ms), the matrix
  product at 888 against 220 GFLOP/s.
- Intel CPUs with AVX-512 BF16 and no AMX ran bfloat16 convolutions 1.5-2x *slower* than
  float32, as does every CPU without bfloat16 instructions.
- CPUs with VNNI (8-bit dot products: Intel Cascade Lake and later, AMD Zen 4 and later)
  run int8 convolutions 2.5-4x faster than float32 (`lgdk.models.int8`); on an AVX2 CPU
  without VNNI the decoder's convolutions were 1.1-1.6x faster in int8, and with oneDNN
  held to AVX2 on the AVX-512 CPU a 480p frame took 80.9 against 103.3 ms.

So "auto" is bfloat16 where bfloat16 is fast (AMX, or AMD's AVX-512 BF16); else int8 on
an x86 CPU with AVX2 or VNNI (the decoder's and memory encoder's convolutions and the query's value
projection, `LGDK.use_int8`; the backbone stays float32: its depthwise convolutions are
slower in int8); else float32, which is also what a GPU and `--adapt` (fine-tuning needs
float32 weights) get. `--precision` forces any of them on a CPU.

Only the convolutional parts change; the memory keeps float32 keys and values, and the
read's softmax weights are float32 affinities. Below float32 on a CPU with oneDNN's int8
product, the read's top k positions are *chosen* by an int8 product
(`LGDK.use_int8_read`, `lgdk.models.memory_int8`), its affinities then computed in
float32.
"""

from __future__ import annotations

import functools

import torch

from lgdk.config import InferenceConfig
from lgdk.errors import UserError
from lgdk.models.int8 import cpu_has_int8_products, int8_available
from lgdk.models.network import LGDK
from lgdk.runtime import cpu_flags

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
INT8 = "int8"  # int8 convolutions with float32 between them (`LGDK.use_int8`)


@functools.lru_cache(maxsize=1)
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles with bfloat16 that the OS lets PyTorch use."""
    try:
        return bool(torch._C._cpu._init_amx())  # asks Linux for the tile state, as oneDNN does
    except (AttributeError, RuntimeError):
        pass
    return {"amx_bf16", "amx_tile"} <= cpu_flags()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bfloat16() -> bool:
    """Whether bfloat16 convolutions beat float32 here: AMX, or an AMD CPU with AVX-512
    BF16 (measured on Zen 4; Intel's AVX-512 BF16 without AMX was slower)."""
    return cpu_has_amx() or {"AuthenticAMD", "avx512_bf16"} <= cpu_flags()


@functools.lru_cache(maxsize=1)
def cpu_has_bfloat16() -> bool:
    """Whether oneDNN has bfloat16 convolutions here at all (fast or not): AMX, AVX-512
    (BW, VL and DQ) or AVX-NE-CONVERT; an AVX2-only CPU has none."""
    flags = cpu_flags()
    return (cpu_has_amx() or {"avx512bw", "avx512vl", "avx512dq"} <= flags
            or "avx_ne_convert" in flags)


def resolve_precision(settings: InferenceConfig, device: str | torch.device) -> str:
    """The arithmetic of the convolutional parts for these settings on this device:
    "float32", "bfloat16" or "int8"."""
    on_cpu = torch.device(device).type == "cpu"
    if settings.precision == INT8 and not (on_cpu and int8_available()):
        raise UserError("--precision int8 runs on a CPU with PyTorch's oneDNN int8 "
                        "convolutions; leave it out (auto) or use --device cpu")
    if settings.precision == "bfloat16" and on_cpu and not cpu_has_bfloat16():
        raise UserError("--precision bfloat16 needs a CPU with bfloat16 convolutions "
                        "(AVX-512 or AVX-NE-CONVERT), which this one lacks; leave it out "
                        "(auto picks int8 or float32 here)")
    if settings.precision != "auto":
        return settings.precision
    if not on_cpu or settings.adapt_steps:
        return "float32"
    if cpu_has_fast_bfloat16():
        return "bfloat16"
    if cpu_has_int8_products() and int8_available():
        return INT8
    return "float32"


def apply_precision(model: LGDK, name: str, device: str | torch.device = "cpu") -> LGDK:
    """`model` with its convolutional parts in the precision `name` (in place); below
    float32 on a CPU, the memory read's top k is chosen by an int8 product as well."""
    if name == INT8:
        model.use_int8()
    else:
        model.use_dtype(DTYPES[name])
    if name != "float32" and torch.device(device).type == "cpu" and int8_available():
        model.use_int8_read()
    return model
