"""A correction changes the objects edited on its frame, and no others."""

import numpy as np

from lgdk.app.vouched import merged, unchanged, vouched_mask
from lgdk.infer.doubt import ObjectMeasure
from lgdk.video.job import Result


def test_objects_not_edited_are_void_in_the_given_mask():
    mask = np.array([[0, 1, 2, 3]], np.uint8)
    assert vouched_mask(mask, {1}).tolist() == [[0, 1, 255, 255]]
    assert vouched_mask(mask, None).tolist() == [[0, 1, 2, 3]]


def test_the_edited_objects_are_new_and_the_others_as_they_were():
    old = np.array([[1, 1, 2, 2, 0, 0]], np.uint8)
    new = np.array([[0, 1, 1, 0, 2, 2]], np.uint8)
    result = Result(3, "00003", None, new, None, [1, 2],
                    [ObjectMeasure(1, 0.5, 0.1), ObjectMeasure(2, 0.4, 0.1)])
    labels, measures = merged(old, result, [ObjectMeasure(1, 0.9, 0.2),
                                            ObjectMeasure(2, 0.8, 0.2)], {1})
    assert labels.tolist() == [[0, 1, 1, 2, 0, 0]]  # 1 moved, took a pixel of 2; 2 stayed
    assert sorted((m.object_id, m.certainty) for m in measures) == [(1, 0.5), (2, 0.8)]
    labels, _ = merged(None, result, [], {1})  # nothing before: all new
    assert labels.tolist() == new.tolist()


def test_unchanged_compares_the_edited_objects_only():
    old = np.array([[1, 1, 2, 2]], np.uint8)
    assert unchanged(old, np.array([[1, 1, 0, 0]], np.uint8), {1})
    assert not unchanged(old, np.array([[1, 1, 0, 0]], np.uint8), None)
    assert not unchanged(None, old, {1})
