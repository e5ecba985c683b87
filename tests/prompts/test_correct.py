"""Clicks on a propagated mask change it where they are and nowhere else."""

import numpy as np

from lgdk.prompts.correct import box_around, local_edit
from lgdk.prompts.spec import Click


def disc(y, x, radius, shape=(60, 80)):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2


def square(y, x, size=10, shape=(60, 80)):
    mask = np.zeros(shape, bool)
    mask[y:y + size, x:x + size] = True
    return mask


def test_a_positive_click_adds_the_proposals_piece_that_holds_it():
    a, b = square(5, 5), square(40, 60)
    out = local_edit(a, a | b, [Click(65, 45, True)], radius=3)
    assert np.array_equal(out, a | b)


def test_a_positive_click_the_proposal_misses_adds_a_disc():
    a = square(5, 5)
    out = local_edit(a, a, [Click(50.5, 40.5, True)], radius=3)
    assert np.array_equal(out, a | disc(40.5, 50.5, 3))


def test_a_negative_click_removes_the_piece_the_proposal_leaves_out():
    a, b = square(5, 5), square(40, 60)
    out = local_edit(a | b, a, [Click(65, 45, False)], radius=3)
    assert np.array_equal(out, a)


def test_a_negative_click_inside_the_proposal_removes_a_disc_only():
    a = square(5, 5, size=20)
    out = local_edit(a, a, [Click(15.5, 15.5, False)], radius=2)
    assert np.array_equal(out, a & ~disc(15.5, 15.5, 2)) and not out[15, 15]


def test_the_box_holds_the_mask_and_the_positive_clicks():
    box = box_around(square(5, 5), [Click(50, 40, True), Click(70, 55, False)], grow=0.0)
    assert (box.x0, box.y0, box.x1, box.y1) == (5, 5, 51, 41)
    assert box_around(np.zeros((4, 4), bool), []) is None


def test_a_click_far_from_the_mask_is_far_and_one_beside_it_is_not():
    from lgdk.prompts.correct import far_from

    a = square(5, 5)  # 10x10: its size is 10
    assert not far_from(a, Click(20, 10, True))  # 5 pixels beside it
    assert far_from(a, Click(70, 50, True))
    assert far_from(np.zeros((60, 80), bool), Click(1, 1, True))
