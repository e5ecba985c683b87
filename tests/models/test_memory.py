import pytest
import torch

from lgdk.models.memory import (
    affinity,
    object_features,
    read_memory,
    softmax_weights,
    top_affinity,
)


def test_eq1_object_feature_matches_hand_computation():
    value = torch.tensor([[[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 10.0], [20.0, 30.0]]]]])
    mask = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    out = object_features(value, mask)
    # channel 0: (1*1 + 2*0.5) / 1.5; channel 1: (0*1 + 10*0.5) / 1.5
    assert torch.allclose(out, torch.tensor([[[2.0 / 1.5, 5.0 / 1.5]]]))


def test_eq1_empty_mask_gives_zeros_not_nan():
    out = object_features(torch.rand(2, 3, 8, 4, 4), torch.zeros(2, 3, 4, 4))
    assert torch.isfinite(out).all() and (out == 0).all()


def test_l2_affinity_ranks_nearest_memory_key_first():
    q = torch.tensor([[[1.0], [0.0]]])  # (1, 2, P=1)
    m = torch.tensor([[[1.0, 5.0, -1.0], [0.0, 0.0, 0.0]]])  # (1, 2, M=3)
    l2 = affinity(q, m, "l2")[0, 0]  # (M,) for the one query position
    dot = affinity(q, m, "dot")[0, 0]
    assert l2.argmax() == 0  # the identical key is closest
    assert dot.argmax() == 1  # dot product prefers the long key
    exact = -((m - q) ** 2).sum(1)[0] / 2**0.5
    assert torch.allclose(l2 - l2.max(), exact - exact.max())


def test_top_k_keeps_only_k_memory_positions():
    w = softmax_weights(torch.randn(1, 4, 10), top_k=3)  # (B, P, M)
    assert ((w > 0).sum(dim=2) == 3).all()
    assert torch.allclose(w.sum(dim=2), torch.ones(1, 4))


def test_read_memory_shapes_and_copies_values_of_matching_key():
    key = torch.zeros(1, 4, 2, 3)
    key[:, 0] = 10.0
    mem_key = torch.zeros(1, 4, 2, 2, 3)
    mem_key[:, 0, 1] = 10.0  # frame 1 matches the query everywhere
    mem_val = torch.zeros(1, 2, 5, 2, 2, 3)
    mem_val[:, :, :, 1] = 7.0
    out = read_memory(key, mem_key, mem_val, "l2")
    assert out.shape == (1, 2, 5, 2, 3)
    assert torch.allclose(out, torch.full_like(out, 7.0), atol=1e-3)


def test_top_k_read_equals_the_dense_read_with_top_k_weights():
    q, mk, mv = torch.randn(2, 8, 3, 4), torch.randn(2, 8, 3, 3, 4), torch.randn(2, 2, 5, 3, 3, 4)
    sparse = read_memory(q, mk, mv, "l2", top_k=7)
    weights = softmax_weights(affinity(q.flatten(2), mk.flatten(2), "l2"), top_k=7)
    values = mv.flatten(3).reshape(2, 10, 36)
    dense = torch.bmm(values, weights.transpose(1, 2)).view(2, 2, 5, 3, 4)
    assert torch.allclose(sparse, dense, atol=1e-5)
    full = read_memory(q, mk, mv, "l2", top_k=0)
    assert torch.allclose(read_memory(q, mk, mv, "l2", top_k=36), full, atol=1e-6)


def test_unknown_affinity_is_refused():
    with pytest.raises(ValueError, match="use 'l2' or 'dot'"):
        affinity(torch.randn(1, 4, 3), torch.randn(1, 4, 5), "cosine")


def test_each_object_reads_only_its_own_values():
    q, mk = torch.randn(1, 8, 3, 4), torch.randn(1, 8, 2, 3, 4)
    mv = torch.randn(1, 3, 5, 2, 3, 4)
    for top_k in (0, 5):
        together = read_memory(q, mk, mv, "l2", top_k)
        for obj in range(3):
            alone = read_memory(q, mk, mv[:, obj : obj + 1], "l2", top_k)
            assert torch.allclose(together[:, obj : obj + 1], alone, atol=1e-6)


def test_sparse_inference_read_equals_the_differentiable_gather():
    q, mk = torch.randn(2, 8, 3, 4), torch.randn(2, 8, 3, 3, 4)
    mv = torch.randn(2, 3, 5, 3, 3, 4, requires_grad=True)
    gathered = read_memory(q, mk, mv, "l2", top_k=7)  # gradients on: the gather form
    gathered.sum().backward()
    assert mv.grad is not None and mv.grad.abs().sum() > 0
    with torch.no_grad():  # inference: the sparse form
        sparse = read_memory(q, mk, mv, "l2", top_k=7, sparse=True)
    assert torch.allclose(sparse, gathered.detach(), atol=1e-5)


@pytest.mark.parametrize("kind", ["l2", "dot"])
@pytest.mark.parametrize("chunk", [1, 4, 64])
def test_top_affinity_in_blocks_equals_top_k_of_the_whole_affinity(kind, chunk):
    query = torch.randn(2, 8, 50, requires_grad=True)
    memory = torch.randn(2, 8, 70, requires_grad=True)
    full_values, full_index = affinity(query, memory, kind).topk(5, dim=2)
    # chunk 4: 70 columns padded to 72 (18 chunks); 2 * 72 * 3 elements per block: 3 query
    # rows a block, the last block shorter
    values, index = top_affinity(query, memory, kind, 5, block_elements=2 * 72 * 3,
                                 chunk=chunk)
    assert values.shape == index.shape == (2, 50, 5)
    assert torch.allclose(values, full_values, atol=1e-5)
    assert torch.equal(index, full_index)
    assert int(index.max()) < 70  # never a padding column
    values.sum().backward()  # training reads through the same function
    assert query.grad.abs().sum() > 0 and memory.grad.abs().sum() > 0
    assert torch.isfinite(memory.grad).all()


def test_the_affinity_block_follows_the_cache_within_its_bounds():
    from lgdk.models.memory import BLOCK_BYTES, MemoryReader, affinity_block_elements

    low, high = BLOCK_BYTES
    assert affinity_block_elements(0) == low // 4  # not reported: the low bound
    assert affinity_block_elements(1 << 20) == low // 4
    assert affinity_block_elements(16 << 20) == (16 << 20) // 4
    assert affinity_block_elements(1 << 30) == high // 4
    assert MemoryReader().block_elements in range(low // 4, high // 4 + 1)
