"""Space-time memory read (STM) and mask-pooled object features (paper eq. 1).

Shapes: B batch, N objects, T memory frames, Ck key channels, Cv value channels,
h, w the stride-16 grid, P = h*w query positions, M = T*h*w memory positions.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.config import ConfigError
from lgdk.models.memory_int8 import KeyPacks, int8_top_affinity

PAD_AFFINITY = -1e9  # affinity of the padding columns of `top_affinity`: never in a top k


def affinity(query_key: torch.Tensor, memory_key: torch.Tensor, kind: str) -> torch.Tensor:
    """Similarity of every memory position to every query position.

    query_key: (B, Ck, P); memory_key: (B, Ck, M) -> (B, P, M), scaled by 1/sqrt(Ck).
    "dot" is STM's dot product; "l2" is STCN's negative squared Euclidean distance
    (the |q|^2 term is constant over memory positions and dropped: softmax ignores it).
    Memory positions are the last, contiguous dimension: the product, the top-k and the
    softmax then all run along rows, which is 2-3 times faster on a CPU than (B, M, P).
    """
    rows, columns = _product_operands(query_key, memory_key, kind)
    return torch.bmm(rows, columns)


def _product_operands(query_key: torch.Tensor, memory_key: torch.Tensor, kind: str,
                      pad_to: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """The affinity as one plain matrix product, rows (B, P, Ck+1) x columns (B, Ck+1, M'):
    -|m - q|^2 = 2 q.m - |m|^2 - |q|^2, so query rows [2 q, 1] times memory columns
    [m; -|m|^2] (scaled) give it whole ("dot": [q, 1] x [m; 0]). The columns are padded
    to a multiple of `pad_to` with columns that score PAD_AFFINITY."""
    if kind not in ("l2", "dot"):
        raise ValueError(f"unknown affinity '{kind}'; use 'l2' or 'dot'")
    b, ck, m = memory_key.shape
    scale = ck**-0.5
    if kind == "l2":
        term = memory_key.pow(2).sum(dim=1, keepdim=True) * -scale  # (B, 1, M)
        query_key = query_key * (2 * scale)
    else:
        term = memory_key.new_zeros(b, 1, m)
        query_key = query_key * scale
    columns = torch.cat([memory_key, term], dim=1)
    pad = (-m) % pad_to
    if pad:
        filler = memory_key.new_zeros(b, ck + 1, pad)
        filler[:, ck] = PAD_AFFINITY
        columns = torch.cat([columns, filler], dim=2)
    rows = torch.cat([query_key, query_key.new_ones(b, 1, query_key.shape[2])], dim=1)
    return rows.transpose(1, 2).contiguous(), columns


CHUNK = 64  # column chunk of `_chunked_top`
BLOCK_BYTES = (8 << 20, 32 << 20)  # the affinity block's bounds (`affinity_block_elements`)
BLOCK_ELEMENTS = BLOCK_BYTES[0] // 4  # float32 elements of the smallest block: the default


def affinity_block_elements(cache: int | None = None) -> int:
    """Elements of one block of the top-k read's affinity: the CPU's last-level cache,
    within BLOCK_BYTES. Larger blocks are larger matrix products (more efficient) until
    the block no longer stays in the cache for its top-k. On a 2-core AMD EPYC (32 MB L3)
    the 480p read with 10 memory frames took 71.4 ms in 8 MB blocks and 59.9 ms in
    32 MB ones (experiments/performance-log.md)."""
    from lgdk.runtime import cache_bytes

    cache = cache_bytes(3) if cache is None else cache
    low, high = BLOCK_BYTES
    return min(max(cache or low, low), high) // 4  # float32 elements


def top_affinity(query_key: torch.Tensor, memory_key: torch.Tensor, kind: str, k: int,
                 block_elements: int = BLOCK_ELEMENTS, chunk: int = CHUNK
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest affinities of each query position and their memory positions.

    query_key: (B, Ck, P); memory_key: (B, Ck, M) -> values and indices, both (B, P, k).
    Computed a block of query positions at a time: a (rows, M) block of about
    `block_elements` (8 MB by default; `MemoryReader` sizes it to the CPU's cache) stays in
    the cache between the product and the top-k, instead of a (P, M) matrix of 100 MB at
    480p with 10 memory frames going to memory and back. Each block's top k is found
    through `chunk`-wide column chunks (`_chunked_top`; a graph export takes the plain
    top-k, whose shapes do not depend on M)."""
    if torch.compiler.is_exporting():
        chunk = 1
    rows, columns = _product_operands(query_key, memory_key, kind, pad_to=chunk)
    per_block = max(1, block_elements // (columns.shape[0] * columns.shape[2]))
    blocks = [
        _chunked_top(torch.bmm(rows[:, i:i + per_block], columns), k, chunk)
        for i in range(0, rows.shape[1], per_block)
    ]
    return torch.cat([v for v, _ in blocks], dim=1), torch.cat([i for _, i in blocks], dim=1)


def _chunked_top(sim: torch.Tensor, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`sim.topk(k, dim=2)` (B, R, M) -> (B, R, k), 2-4 times faster on a CPU for k << M.

    The k-th largest chunk maximum is a lower bound of the k-th largest value, so the top k
    lie in the k chunks with the largest maxima (up to ties, which only swap equal
    values): one top-k over M / chunk maxima and one over k * chunk candidates replace a
    top-k over M values."""
    b, r, m = sim.shape
    if chunk == 1 or m % chunk or m // chunk <= k:
        return sim.topk(k, dim=2)
    maxima = sim.view(b, r, m // chunk, chunk).amax(dim=3)  # (B, R, M/chunk)
    best = maxima.topk(k, dim=2).indices  # (B, R, k) chunk numbers
    offsets = torch.arange(chunk, device=sim.device)
    candidates = (best.unsqueeze(3) * chunk + offsets).flatten(2)  # (B, R, k*chunk)
    values, picked = sim.gather(2, candidates).topk(k, dim=2)
    return values, candidates.gather(2, picked)


def softmax_weights(sim: torch.Tensor, top_k: int = 0) -> torch.Tensor:
    """Softmax over memory positions (the last dim), optionally only over the top k.
    (B, P, M) -> (B, P, M); the dense form of what `read_memory` computes."""
    if top_k and top_k < sim.shape[-1]:
        values, indices = sim.topk(top_k, dim=-1)  # (B, P, k)
        weights = torch.softmax(values, dim=-1)
        return torch.zeros_like(sim).scatter_(-1, indices, weights)
    return torch.softmax(sim, dim=-1)


def read_memory(
    query_key: torch.Tensor,
    memory_key: torch.Tensor,
    memory_value: torch.Tensor,
    kind: str = "l2",
    top_k: int = 0,
    sparse: bool = False,
    chunk: int = CHUNK,
    block_elements: int = BLOCK_ELEMENTS,
    int8: bool = False,
    packs: KeyPacks | None = None,
) -> torch.Tensor:
    """Weighted sum of memory values for every query position.

    query_key: (B, Ck, h, w); memory_key: (B, Ck, T, h, w); memory_value: (B, N, Cv, T, h, w)
    -> (B, N, Cv, h, w). Keys are shared by all objects; values are per object. With
    top_k, only the k most similar memory positions are gathered (as rows of all the
    objects' value channels at once) and summed, so the readout costs k instead of M
    multiply-adds per value channel and query position: by a sparse (CSR) product with
    `sparse` (CPU inference, no gradients), else by gathering the rows (the same numbers).
    `chunk` and `block_elements` are `top_affinity`'s (chunk 1 for a graph export);
    `int8` chooses the top k by an int8 product (`lgdk.models.memory_int8`; batch 1),
    with `packs` keeping the keys' packing between calls.
    """
    b, ck, h, w = query_key.shape
    n, cv = memory_value.shape[1:3]
    queries, keys = query_key.flatten(2), memory_key.flatten(2)  # (B, Ck, P), (B, Ck, M)
    p, m = queries.shape[2], keys.shape[2]
    values = memory_value.flatten(3).reshape(b, n * cv, m)  # (B, N*Cv, M); a view when
    # the values are position-major (`MemoryBank.stacked`): then `rows` below is contiguous
    if top_k and top_k < m:
        if int8 and b == 1:
            top, index = int8_top_affinity(queries, keys, kind, top_k, block_elements,
                                           chunk, _chunked_top, packs)  # (B, P, k)
        else:
            top, index = top_affinity(queries, keys, kind, top_k, block_elements, chunk)
        weights = torch.softmax(top, dim=2)
        rows = values.transpose(1, 2)  # (B, M, N*Cv)
        if sparse:
            out = _sparse_sum(weights, index, rows)
        else:
            offset = torch.arange(b, device=index.device).view(b, 1, 1) * m
            picked = rows.reshape(b * m, n * cv).index_select(0, (index + offset).flatten())
            picked = picked.view(b * p, top_k, n * cv)  # (B*P, k, N*Cv)
            out = torch.bmm(weights.view(b * p, 1, top_k), picked)  # (B*P, 1, N*Cv)
            out = out.view(b, p, n * cv)
        # position-major like the memory: with one object, a channels-last map
        return out.view(b, h, w, n, cv).permute(0, 3, 4, 1, 2)
    sim = affinity(queries, keys, kind)  # (B, P, M)
    out = torch.bmm(values, torch.softmax(sim, dim=2).transpose(1, 2))  # (B, N*Cv, P)
    return out.reshape(b, n, cv, h, w)


def _sparse_sum(weights: torch.Tensor, index: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Top-k weights (B, P, k) at memory positions `index` (B, P, k) times value rows
    (B, M, C) -> (B, P, C), as a sparse (CSR) x dense product: no (P*k, C) copy of the
    picked rows, which makes several objects (large C) 2.5x cheaper on a CPU."""
    b, p, k = weights.shape
    crow = torch.arange(0, p * k + 1, k, device=weights.device)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        for i in range(b):
            sparse = torch.sparse_csr_tensor(crow, index[i].flatten(), weights[i].flatten(),
                                             size=(p, rows.shape[1]), check_invariants=False)
            out.append(torch.sparse.mm(sparse, rows[i].contiguous()))
    return torch.stack(out)


def object_features(value: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 1: the mask-weighted mean of the memory features, per object.

    value: (B, N, Cv, h, w); mask: (B, N, h, w) soft mask in 0..1 -> (B, N, Cv).
    An empty mask gives a zero vector (no NaN or Inf).
    """
    weighted = torch.einsum("bnchw,bnhw->bnc", value, mask)
    area = mask.sum(dim=(2, 3)).unsqueeze(-1)  # (B, N, 1)
    return weighted / area.clamp_min(eps) * (area > eps)


def downsample_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, N, H, W) -> (B, N, h, w) by area averaging (exact fractions of coverage)."""
    height, width = int(mask.shape[-2]), int(mask.shape[-1])
    if (height, width) == tuple(size):
        return mask
    if height % size[0] == 0 and width % size[1] == 0:  # the usual case: plain pooling
        return F.avg_pool2d(mask, (height // size[0], width // size[1]))
    return F.adaptive_avg_pool2d(mask, size)


class MemoryReader(nn.Module):
    """`read_memory` as a module (no parameters), so that it can be hooked and timed. How it
    reads is decided here, once: `top_k` (0: every memory position), `sparse` (the CSR form
    of the top-k read: CPU inference only, it has no gradient), `chunk` (1 for a graph
    export), the affinity's block (`affinity_block_elements`: this CPU's cache) and
    `int8` (the top k chosen by an int8 product: `lgdk.models.memory_int8`)."""

    def __init__(self, kind: str = "l2", top_k: int = 0, sparse: bool = False,
                 chunk: int = CHUNK, int8: bool = False) -> None:
        super().__init__()
        if kind not in ("l2", "dot"):
            raise ConfigError(f"unknown affinity '{kind}'; use 'l2' or 'dot'")
        self.kind, self.top_k, self.sparse, self.chunk = kind, top_k, sparse, chunk
        self.int8 = int8
        self.packs = KeyPacks()  # the int8 read's last packed keys
        self.block_elements = affinity_block_elements()

    def forward(self, query_key, memory_key, memory_value) -> torch.Tensor:
        """Always in float32, also under autocast: the L2 affinity's -|m|^2 term is large,
        and bfloat16's 8-bit mantissa would move the softmax's logits by about 0.5."""
        with torch.autocast(query_key.device.type, enabled=False):
            return read_memory(query_key.float(), memory_key.float(), memory_value.float(),
                               self.kind, self.top_k, self.sparse, self.chunk,
                               self.block_elements, self.int8, self.packs)
