"""Crops batched by size (`lgdk.models.crop_batches`)."""

from __future__ import annotations

from lgdk.models.crop_batches import crop_batches


def test_crops_of_about_one_size_share_a_batch_of_one_size_that_holds_each_crop():
    grid = (30, 40)
    crops = [(0, 10, 0, 10), None, (5, 13, 20, 30), (28, 30, 38, 40), (2, 5, 2, 4)]
    batches = crop_batches(crops, grid)
    assert [objects for objects, _ in batches] == [[0, 2], [4, 3]]  # largest first
    for objects, cells in batches:
        sizes = {(r1 - r0, c1 - c0) for r0, r1, c0, c1 in cells}
        assert len(sizes) == 1
        for i, (r0, r1, c0, c1) in zip(objects, cells):
            o0, o1, p0, p1 = crops[i]
            assert r0 <= o0 and o1 <= r1 and c0 <= p0 and p1 <= c1
            assert 0 <= r0 and r1 <= grid[0] and 0 <= c0 and c1 <= grid[1]


def test_no_crops_no_batches():
    assert crop_batches([None, None], (4, 4)) == []
