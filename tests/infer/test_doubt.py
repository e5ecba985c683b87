"""Where to correct next: each object's certainty and area from its probabilities, each
frame's doubt (unsure, a sudden area change, an object gone), and `lgdk segment --report`."""

import numpy as np
import pytest
import torch

from lgdk.infer.doubt import ObjectMeasure, frame_doubts, measure, worst_frames


def probs_of(*objects):
    """(1+N, 10, 10) from each object's (10, 10) probability."""
    stack = torch.stack([torch.as_tensor(o, dtype=torch.float32) for o in objects])
    return torch.cat([(1 - stack.sum(0)).clamp(0, 1)[None], stack])


def test_a_crisp_object_is_certain_and_a_blurred_one_is_not():
    crisp = np.zeros((10, 10))
    crisp[2:6, 2:6] = 1.0
    blurred = np.zeros((10, 10))
    blurred[5:9, 5:9] = 0.6  # may be the object, never surely
    blurred[6:8, 6:8] = 0.95
    one, two = measure(probs_of(crisp, blurred * 0.99), [3, 7])
    assert one == ObjectMeasure(3, 1.0, 0.16)
    assert two.object_id == 7 and two.certainty == pytest.approx(4 / 16)
    assert two.area == pytest.approx(0.16)


def test_an_absent_object_is_sure_and_covers_nothing():
    (m,) = measure(probs_of(np.zeros((10, 10))), [1])
    assert m.certainty == 1.0 and m.area == 0.0


def test_frame_doubts_name_the_least_certain_object_and_why():
    a = [ObjectMeasure(1, 0.95, 0.10), ObjectMeasure(2, 0.90, 0.05)]
    b = [ObjectMeasure(1, 0.95, 0.10), ObjectMeasure(2, 0.60, 0.05)]  # 2 unsure
    c = [ObjectMeasure(1, 0.95, 0.40), ObjectMeasure(2, 0.90, 0.05)]  # 1 grew x4
    d = [ObjectMeasure(1, 0.95, 0.40), ObjectMeasure(2, 1.0, 0.0)]  # 2 gone
    doubts = frame_doubts([a, b, c, d, None])
    assert [(x.object_id, x.why) for x in doubts] == [
        (2, "unsure"), (2, "unsure"), (1, "area jump"), (2, "vanished"), (None, "")]
    assert doubts[1].doubt == pytest.approx(0.4)
    assert doubts[2].doubt == pytest.approx(1.0)
    assert doubts[3].doubt == 1.0 and doubts[4].doubt == 0.0


def test_a_given_frame_is_sure_and_the_worst_come_first():
    m = [[ObjectMeasure(1, c, 0.1)] for c in (0.5, 0.9, 0.7, 0.2)]
    doubts = frame_doubts(m, given={3})
    assert doubts[3].why == "given" and doubts[3].doubt == 0.0
    assert [d.frame for d in worst_frames(doubts, 2)] == [0, 2]


def test_the_memory_gate_keeps_a_doubtful_frame_out_of_memory(tiny_model):
    """With `memory_gate`, a frame due to become a memory frame whose least certain object
    is past the gate waits (it is still the previous frame); given frames always go in."""
    from lgdk.config import InferenceConfig
    from lgdk.data.procedural import generate_clip
    from lgdk.errors import UserError
    from lgdk.infer.predictor import Predictor

    clip = generate_clip(np.random.default_rng(0), 64, 96, 6, 2)
    kept, doubts = {}, {}
    for gate in (0.0, 0.05):
        p = Predictor(tiny_model, InferenceConfig(size=0, mem_every=1, memory_gate=gate))
        measures = []
        for t, frame in enumerate(clip.frames):
            probs = p.step(frame, clip.labels[0] if t == 0 else None)
            measures.append(measure(probs, p.object_ids))
        kept[gate] = [e.frame_index for e in p.bank.entries]
        doubts[gate] = [d.doubt for d in frame_doubts(measures, {0})]
    assert kept[0.0] == [0, 1, 2, 3, 4, 5]
    expected = [t for t in range(6) if doubts[0.05][t] <= 0.05]
    assert kept[0.05] == expected and 0 in expected and len(expected) < 6
    with pytest.raises(UserError, match="--memory-gate must be a doubt in 0-1"):
        InferenceConfig(memory_gate=2.0)
