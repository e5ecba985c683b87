"""Objects decoded on crops, batched: crops of about the same size grown to one size, so
that their objects go through the decoder together (one call of each layer for the batch,
not one per object: at 480x640 a crop of 12x14 stride-16 cells alone took 6.3 ms, about a
third of an object decoded with nine others on the whole frame, in int8 on a 2-core CPU).
"""

from __future__ import annotations

Cells = tuple[int, int, int, int]  # (r0, r1, c0, c1): rows and columns of the stride-16 grid
JOIN = 0.5  # a crop joins a batch whose largest crop is at most 1 / JOIN times its area


def _area(cells: Cells) -> int:
    r0, r1, c0, c1 = cells
    return (r1 - r0) * (c1 - c0)


def _grown(cells: Cells, rows: int, cols: int, grid: tuple[int, int]) -> Cells:
    """`cells` grown to rows x cols about its centre, moved inside the grid (rows, cols
    at most the grid's)."""
    r0, r1, c0, c1 = cells
    top = min(max(0, r0 - (rows - (r1 - r0)) // 2), grid[0] - rows)
    left = min(max(0, c0 - (cols - (c1 - c0)) // 2), grid[1] - cols)
    return top, top + rows, left, left + cols


def crop_batches(crops: list[Cells | None], grid: tuple[int, int]
                 ) -> list[tuple[list[int], list[Cells]]]:
    """The objects with a crop, in batches of one crop size: [(object indices, their
    cells, each the batch's size and holding the object's own crop)]. Largest first; a
    crop joins the current batch when its area is at least JOIN of the batch's first."""
    order = sorted((i for i, c in enumerate(crops) if c is not None),
                   key=lambda i: -_area(crops[i]))
    groups: list[list[int]] = []
    for i in order:
        if groups and _area(crops[i]) >= JOIN * _area(crops[groups[-1][0]]):
            groups[-1].append(i)
        else:
            groups.append([i])
    batches = []
    for members in groups:
        rows = max(crops[i][1] - crops[i][0] for i in members)
        cols = max(crops[i][3] - crops[i][2] for i in members)
        batches.append((members, [_grown(crops[i], rows, cols, grid) for i in members]))
    return batches
