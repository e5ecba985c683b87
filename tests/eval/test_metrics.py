import numpy as np
import pytest

from lgdk.eval.metrics import (
    boundary_map,
    decay_bins,
    disk,
    f_measure,
    jaccard,
    statistics,
    tolerance_radius,
)


def square(h=40, w=50, top=10, left=10, size=10):
    m = np.zeros((h, w), bool)
    m[top : top + size, left : left + size] = True
    return m


def test_jaccard_known_values():
    a, b = square(), square(left=15)  # 10x10 squares overlapping 10x5
    assert jaccard(a, b) == pytest.approx(50 / 150)
    assert jaccard(a, a) == 1.0
    empty = np.zeros_like(a)
    assert jaccard(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0


def test_jaccard_ignores_void_pixels():
    a, b = square(), square(left=15)
    void = np.zeros_like(a)
    void[:, :15] = True  # hides the part only a covers
    assert jaccard(a, b, void) == pytest.approx(50 / 100)


def test_boundary_map_rules():
    m = square(h=6, w=6, top=1, left=1, size=3)
    b = boundary_map(m)
    # a pixel is boundary where it differs from its right, bottom or bottom-right neighbour
    expected = np.zeros_like(m)
    expected[0, 0] = True  # bottom-right neighbour (1, 1) is object
    expected[0, 1:4] = True  # bottom neighbours are object
    expected[1:4, 0] = True  # right neighbours are object
    expected[1:4, 3] = True  # object pixels whose right neighbour is background
    expected[3, 1:4] = True  # object pixels whose bottom neighbour is background
    assert np.array_equal(b, expected)


def test_boundary_last_row_column_and_corner():
    m = np.zeros((4, 4), bool)
    m[3, 2:] = True  # object touching the bottom edge
    b = boundary_map(m)
    assert b[3, 1]  # last row: differs from its right neighbour
    assert not b[3, 3]  # the corner is never boundary
    full = np.ones((4, 4), bool)
    assert not boundary_map(full).any()


def test_tolerance_radius_is_8_at_480p():
    assert tolerance_radius((480, 854)) == 8
    assert disk(1).sum() == 5 and disk(2).sum() == 13


def test_f_empty_cases():
    empty, a = np.zeros((20, 20), bool), square(20, 20, 5, 5, 5)
    assert f_measure(empty, empty) == 1.0
    assert f_measure(a, empty) == 0.0
    assert f_measure(empty, a) == 0.0
    assert f_measure(a, a) == 1.0


def test_f_one_pixel_shift_is_within_tolerance_but_not_outside():
    a = square(h=480, w=854, top=100, left=100, size=200)
    shifted = square(h=480, w=854, top=100, left=101, size=200)
    assert f_measure(a, shifted) == 1.0
    far = square(h=480, w=854, top=100, left=109, size=200)  # 9 > 8 pixels away
    assert f_measure(a, far) < 1.0
    assert f_measure(a, far, bound_th=9) == 1.0  # bound_th >= 1 is a radius in pixels


def test_f_boundary_exactly_at_the_tolerance_radius():
    r = tolerance_radius((480, 854))
    a = np.zeros((480, 854), bool)
    a[:, :400] = True
    at = np.zeros_like(a)
    at[:, : 400 + r] = True  # boundary columns 399 and 399 + r: distance r, matched
    beyond = np.zeros_like(a)
    beyond[:, : 400 + r + 1] = True  # distance r + 1: no boundary pixel matched
    assert f_measure(at, a) == 1.0
    assert f_measure(beyond, a) == 0.0


def test_statistics_mean_recall_decay_on_a_known_series():
    values = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(0.6)
    assert recall == pytest.approx(5 / 9)  # strictly above 0.5
    # ids = round(linspace(1, 9, 5)) - 1 = [0, 2, 4, 6, 8]: bins [0..2], [6..8]
    assert decay_bins(9) == [(0, 3), (2, 5), (4, 7), (6, 9)]
    assert decay == pytest.approx(np.mean([1.0, 0.9, 0.8]) - np.mean([0.4, 0.3, 0.2]))
