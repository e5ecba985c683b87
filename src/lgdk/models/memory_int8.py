"""The top-k memory read's affinity product in int8 (`MemoryReader(int8=True)`: CPU
inference below float32, `LGDK.use_int8_read`).

At 480p with ten memory frames the float32 product of 1,620 query positions by 16,200
memory positions took about 20 of the read's 38 ms on a 2-core AMD EPYC with AVX-512
VNNI; oneDNN's int8 matrix product (`torch.ops.onednn.qlinear_pointwise`) takes about 4,
and returns float32, so the top-k selection runs as before (experiments/performance-log.md).

The int8 product only *chooses* the k positions: each memory position's key is quantized
to int8 with a scale of its own, the query per tensor to uint8, and the L2 term -|m|^2 is
added exactly, as the product's float bias. The keys are first centred on their mean c,
which changes no query row's ranking (L2: -|q - m|^2 is the same for q - c and m - c;
dot: q.m = q.(m - c) + q.c, where q.c is constant along the row) and leaves the 8 bits
for what tells positions apart. The k chosen affinities are then computed
again in float32 from the keys, so the softmax weights are exact; only a position whose
affinity is within the quantization error of the k-th may be swapped for its neighbour
in rank.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lgdk.models.int8 import activation_max, quantize_input

PAD_BIAS = -1e9  # affinity of the padding positions: never in a top k


class PackedKeys(NamedTuple):
    """A memory's keys (Ck, M) ready for the int8 product and for the exact affinities."""

    packed: torch.Tensor  # oneDNN's int8 copy of the centred keys as rows (M', Ck)
    scale: torch.Tensor  # (M',) per row; M' = M padded to a multiple of the chunk
    bias: torch.Tensor  # (M',) the centred term; padding rows PAD_BIAS
    zeros: torch.Tensor  # (M',) the rows' zero points
    centre: torch.Tensor  # (Ck,) the keys' mean
    rows: torch.Tensor  # (M, Ck) the float32 keys, contiguous rows: gathered 1.7x faster
    term: torch.Tensor  # (M,) the float32 term


def pack_keys(memory_key: torch.Tensor, kind: str, pad_to: int) -> PackedKeys:
    """memory_key (Ck, M) -> `PackedKeys`, its rows padded to a multiple of `pad_to`."""
    ck, m = memory_key.shape
    centre = memory_key.mean(dim=1)  # (Ck,)
    centred = memory_key - centre[:, None]
    pad = (-m) % pad_to
    rows = torch.cat([centred.t(), centred.new_zeros(pad, ck)])  # (M', Ck)
    scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127
    q = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    bias = torch.full((m + pad,), PAD_BIAS)
    bias[:m] = _term(centred, kind)
    packed = torch.ops.onednn.qlinear_prepack(q, None)
    return PackedKeys(packed, scale, bias, torch.zeros(m + pad, dtype=torch.long), centre,
                      memory_key.t().contiguous(), _term(memory_key, kind))


class KeyPacks:
    """The last keys packed, made again only for other keys: a view of the same storage
    with the same shape and strides, as `MemoryBank.stacked` returns while the memory
    does not change (a new copy otherwise; nothing writes into it). One entry; safe to
    share between threads (the worst is a packing made twice)."""

    def __init__(self) -> None:
        self.held: tuple[torch.Tensor, tuple, PackedKeys] | None = None

    def __deepcopy__(self, memo: dict) -> KeyPacks:
        return KeyPacks()  # a copied model starts empty (oneDNN's packing is not copied)

    def get(self, memory_key: torch.Tensor, kind: str, pad_to: int) -> PackedKeys:
        """memory_key (Ck, M) -> its `PackedKeys`."""
        held = self.held
        if held is not None and held[1] == _identity(memory_key, kind, pad_to):
            return held[2]
        packed = pack_keys(memory_key, kind, pad_to)
        self.held = (memory_key, _identity(memory_key, kind, pad_to), packed)
        return packed


def _identity(t: torch.Tensor, *settings) -> tuple:
    """What makes `t` the same tensor while a reference to it is held (inference tensors
    keep no version counter)."""
    return t.data_ptr(), tuple(t.shape), t.stride(), settings


def _term(memory_key: torch.Tensor, kind: str) -> torch.Tensor:
    """The affinity's per-memory-position term: -|m|^2 / sqrt(Ck) for "l2", 0 for "dot"."""
    if kind == "l2":
        return memory_key.pow(2).sum(dim=0) * -(memory_key.shape[0] ** -0.5)
    return memory_key.new_zeros(memory_key.shape[1])


def _query_factor(kind: str, ck: int) -> float:
    """The query's factor in the affinity: 2/sqrt(Ck) ("l2": 2 q.m - |m|^2), 1/sqrt(Ck)."""
    return (2.0 if kind == "l2" else 1.0) * ck**-0.5


def int8_top_affinity(query_key: torch.Tensor, memory_key: torch.Tensor, kind: str,
                      k: int, block_elements: int, chunk: int, top_of,
                      packs: KeyPacks | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`top_affinity` with an int8 product choosing the positions and their affinities
    then computed in float32. query_key (1, Ck, P); memory_key (1, Ck, M) -> values and
    indices (1, P, k). `top_of(sim (1, R, M'), k, chunk)` is the float32 top-k; `packs`
    keeps the keys' packing between calls."""
    ck = memory_key.shape[1]
    keys = packs.get(memory_key[0], kind, chunk) if packs else pack_keys(memory_key[0],
                                                                         kind, chunk)
    queries = query_key[0].t() * _query_factor(kind, ck)  # (P, Ck)
    shifted = queries - keys.centre * _query_factor(kind, ck) if kind == "l2" else queries
    q, q_scale, q_zero = quantize_input(shifted.contiguous(), activation_max())
    per_block = max(1, block_elements // keys.scale.shape[0])
    indices = []
    for i in range(0, q.shape[0], per_block):
        sim = torch.ops.onednn.qlinear_pointwise(
            q[i:i + per_block], q_scale, q_zero, keys.packed, keys.scale, keys.zeros,
            keys.bias, 1.0, 0, torch.float32, "none", [], "")  # (R, M')
        indices.append(top_of(sim.unsqueeze(0), k, chunk)[1])
    index = torch.cat(indices, dim=1)  # (1, P, k)
    return exact_affinities(queries, keys.rows, keys.term, index), index


def exact_affinities(queries: torch.Tensor, rows: torch.Tensor, term: torch.Tensor,
                     index: torch.Tensor) -> torch.Tensor:
    """The float32 affinities of the chosen positions: queries (P, Ck) already scaled,
    memory keys as rows (M, Ck), term (M,), index (1, P, k) -> (1, P, k)."""
    p, k = index.shape[1:]
    flat = index.reshape(-1)
    picked = rows.index_select(0, flat).view(p, k, -1)  # (P, k, Ck)
    dots = torch.bmm(picked, queries.unsqueeze(2)).view(1, p, k)
    return dots + term.index_select(0, flat).view(1, p, k)
