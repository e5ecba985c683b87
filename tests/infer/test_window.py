import numpy as np
import pytest
import torch

from lgdk.config import ConfigError, InferenceConfig
from lgdk.infer.predictor import Predictor
from lgdk.infer.window import SLOPE, object_boxes, window_penalty


def boxed(height=100, width=200, box=(40, 60, 50, 70), objects=1):
    """(1, objects, H, W) probabilities: object 0 fills rows y0:y1, columns x0:x1."""
    probs = torch.zeros(1, objects, height, width)
    y0, y1, x0, x1 = box
    probs[0, 0, y0:y1, x0:x1] = 1.0
    return probs


def penalty_of(probs, window):
    return window_penalty(object_boxes(probs), tuple(probs.shape[-2:]), window)


def test_penalty_is_zero_within_the_reach_and_falls_beyond_it():
    penalty = penalty_of(boxed(), window=1.0)[0, 0]  # box 20x20, reach = 200/8 = 25
    assert penalty.shape == (100, 200)
    assert penalty[40:60, 50:70].abs().max() == 0  # the box
    assert penalty[50, 69 + 25] == 0 and penalty[50, 50 - 25] == 0  # its reach
    assert penalty[50, 69 + 26] < 0
    row = penalty[50, 95:]
    assert torch.all(row[1:] <= row[:-1])  # falls with the distance
    assert penalty[50, 69 + 50] == pytest.approx(-SLOPE, rel=1e-4)  # one more reach


def test_reach_grows_with_the_object_and_the_window():
    small = penalty_of(boxed(box=(40, 60, 50, 70)), window=1.0)[0, 0]
    large = penalty_of(boxed(box=(20, 80, 40, 100)), window=1.0)[0, 0]  # side 59
    assert small[50, 150] < large[50, 150] == 0
    wide = penalty_of(boxed(), window=2.0)[0, 0]
    assert small[50, 110] < wide[50, 110] == 0


def test_the_reach_keeps_the_objects_side_in_its_given_mask():
    shrunk = boxed(box=(40, 60, 50, 70))  # a part of a 60-pixel object missed
    given_side = torch.tensor([[59.0]])
    plain = window_penalty(object_boxes(shrunk), (100, 200), 1.0)[0, 0]
    kept = window_penalty(object_boxes(shrunk), (100, 200), 1.0, given_side)[0, 0]
    assert plain[50, 69 + 50] < 0 and kept[50, 69 + 50] == 0


def test_an_object_absent_from_the_previous_frame_has_no_window():
    probs = boxed(objects=2)  # object 1 empty: hidden or lost
    penalty = penalty_of(probs, window=1.0)
    assert penalty[0, 1].abs().max() == 0
    assert penalty[0, 0].min() < 0


def two_objects(gap=40):
    """(1, 2, 100, 300) probabilities: two 20x20 boxes, `gap` pixels apart along x."""
    probs = boxed(height=100, width=300, box=(40, 60, 50, 70), objects=2)
    probs[0, 1, 40:60, 70 + gap:90 + gap] = 1.0
    return probs


def test_the_near_window_is_tighter_only_where_another_object_is():
    probs = two_objects(gap=40)  # reach 300/8 * 1.0 = 37.5; object 1 at columns 110-129
    last, size = object_boxes(probs), (100, 300)
    loose = window_penalty(last, size, 1.0)
    near = window_penalty(last, size, 1.0, near=0.25)  # reach 9.4 near the other object
    assert near[0, 0, 50, 69 + 30] < 0 == loose[0, 0, 50, 69 + 30]  # towards the other
    assert near[0, 0, 50, 50 - 30] == 0 == loose[0, 0, 50, 50 - 30]  # into free space
    assert near[0, 0, 50, 69 + 9] == 0  # within the near reach: untouched
    assert torch.equal(near[0, 0, :, :30], loose[0, 0, :, :30])
    assert near[0, 1, 50, 110 - 30] < 0 == near[0, 1, 50, 129 + 30]  # the same for both


def test_one_object_or_no_near_window_is_the_plain_window():
    one = boxed(height=100, width=300)
    last = object_boxes(one)
    assert torch.equal(window_penalty(last, (100, 300), 0.5, near=0.25),
                       window_penalty(last, (100, 300), 0.5))
    pair = object_boxes(two_objects())
    assert torch.equal(window_penalty(pair, (100, 300), 0.5, near=0.0),
                       window_penalty(pair, (100, 300), 0.5))


def test_only_a_neighbour_of_about_the_same_size_tightens_the_window():
    probs = two_objects(gap=40)
    probs[0, 1, 10:90, 110:190] = 1.0  # object 1 now 80 pixels: four times object 0
    last = object_boxes(probs)
    near = window_penalty(last, (100, 300), 1.0, near=0.25)
    loose = window_penalty(last, (100, 300), 1.0)
    assert torch.equal(near, loose)


def test_an_absent_neighbour_does_not_tighten_the_window():
    probs = two_objects()
    probs[0, 1] = 0  # the other object hidden
    last = object_boxes(probs)
    assert torch.equal(window_penalty(last, (100, 300), 1.0, near=0.25),
                       window_penalty(last, (100, 300), 1.0))


class RedEverywhere:
    """A step model whose object is whatever is red, wherever it is: the failure the
    window is for (a memory read that matches a look-alike far away)."""

    def __init__(self, model):
        self.model = model

    def encode_query(self, frame):
        return self.model.encode_query(frame)

    def step(self, frame, bank, query=None, crops=None):
        red = (frame[:, :1] > 0.5) & (frame[:, 1:2] < 0.5)  # (1, 1, H, W)
        logits = torch.where(red, 4.0, -4.0).expand(1, bank.num_objects, -1, -1)
        return logits, query if query is not None else self.model.encode_query(frame)

    def memorize(self, *args, **kwargs):
        self.model.memorize(*args, **kwargs)


def two_red_squares(height=64, width=160):
    frame = np.zeros((height, width, 3), np.uint8)
    frame[24:40, 10:26, 0] = 255
    frame[24:40, 130:146, 0] = 255
    mask = np.zeros((height, width), np.uint8)
    mask[24:40, 10:26] = 1  # only the left square is the object
    return frame, mask


@pytest.mark.parametrize("window, right_square", [(0.0, 1), (1.0, 0)])
def test_the_window_keeps_a_look_alike_far_away_out_of_the_mask(tiny_model, window,
                                                                  right_square):
    frame, mask = two_red_squares()
    predictor = Predictor(RedEverywhere(tiny_model), InferenceConfig(size=0, window=window))
    predictor.step(frame, mask)
    for _ in range(3):
        labels = predictor.labels(predictor.step(frame))
    assert (labels[24:40, 10:26] == 1).all()  # the object itself is kept either way
    assert (labels[24:40, 130:146] == right_square).all()


def two_red_neighbours(height=64, width=160):
    """Two look-alike red squares 14 pixels apart, each its own object."""
    frame = np.zeros((height, width, 3), np.uint8)
    frame[24:40, 10:26, 0] = 255
    frame[24:40, 40:56, 0] = 255
    mask = np.zeros((height, width), np.uint8)
    mask[24:40, 10:26] = 1
    mask[24:40, 40:56] = 2
    return frame, mask


@pytest.mark.parametrize("near", [0.0, 0.25])
def test_the_near_window_keeps_neighbouring_look_alikes_apart(tiny_model, near):
    frame, mask = two_red_neighbours()  # each object's window (reach 20) covers the other
    settings = InferenceConfig(size=0, window=1.0, window_near=near)
    predictor = Predictor(RedEverywhere(tiny_model), settings)
    predictor.step(frame, mask)
    for _ in range(3):
        labels = predictor.labels(predictor.step(frame))
    apart = (labels[24:40, 10:26] == 1).all() and (labels[24:40, 40:56] == 2).all()
    assert apart == bool(near)


def test_a_negative_window_is_refused():
    with pytest.raises(ConfigError, match="--window"):
        InferenceConfig(window=-1)
    with pytest.raises(ConfigError, match="--window-near"):
        InferenceConfig(window_near=-0.5)
