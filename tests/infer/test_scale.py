import numpy as np
import pytest
import torch

from lgdk.config import ConfigError, InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.infer.predictor import Predictor
from lgdk.infer.scale import ObjectScaled, size_for_objects
from lgdk.infer.tta import make_predictor


def square_mask(height, width, sides):
    """Objects 1..N as squares of the given sides along the top row."""
    mask = np.zeros((height, width), np.uint8)
    x = 0
    for i, side in enumerate(sides, start=1):
        mask[:side, x:x + side] = i
        x += side + 2
    return mask


def test_a_large_object_keeps_the_size():
    settings = InferenceConfig(size=384, object_cells=4, max_size=720)
    assert size_for_objects(square_mask(480, 854, [200]), settings) == 384


def test_the_smallest_object_decides_and_gets_its_cells():
    settings = InferenceConfig(size=384, object_cells=4, max_size=2000)
    mask = square_mask(240, 432, [120, 30])
    size = size_for_objects(mask, settings)
    assert size % 16 == 0
    # the 30-pixel object is at least 4 cells of 16 at the chosen size, and not 5
    assert 4 * 16 <= 30 * size / 240 < 5 * 16


def test_the_size_never_passes_max_size_nor_falls_below_size():
    mask = square_mask(480, 854, [8])
    assert size_for_objects(mask, InferenceConfig(size=384, object_cells=4,
                                                  max_size=600)) == 600
    assert size_for_objects(mask, InferenceConfig(size=480, object_cells=4,
                                                  max_size=400)) == 480


@pytest.mark.parametrize("settings", [InferenceConfig(size=384),  # off
                                      InferenceConfig(size=0, object_cells=4)])  # own size
def test_off_or_the_frames_own_size_changes_nothing(settings):
    assert size_for_objects(square_mask(480, 854, [8]), settings) == settings.size


def test_void_and_an_empty_mask_are_not_objects():
    settings = InferenceConfig(size=384, object_cells=4, max_size=720)
    mask = square_mask(480, 854, [200])
    mask[300:302, 300:302] = 255  # a void speck is not the smallest object
    assert size_for_objects(mask, settings) == 384
    assert size_for_objects(np.zeros((480, 854), np.uint8), settings) == 384


def test_negative_cells_and_a_tiny_max_size_are_refused():
    with pytest.raises(ConfigError, match="--object-cells"):
        InferenceConfig(object_cells=-1)
    with pytest.raises(ConfigError, match="--max-size"):
        InferenceConfig(max_size=8)


def test_the_pass_is_built_at_the_first_mask_at_the_size_it_needs(tiny_model):
    clip = generate_clip(np.random.default_rng(0), 64, 96, 4, 1)
    settings = InferenceConfig(size=32, object_cells=2, max_size=128)
    made = []

    def make(sized):
        made.append(sized)
        return Predictor(tiny_model, sized)

    p = ObjectScaled(make, settings)
    before = p.step(clip.frames[0])  # no object yet: background, nothing built
    assert made == [] and p.object_ids == [] and torch.all(before == 1)
    mask = square_mask(64, 96, [10])
    out = p.step(clip.frames[1], mask)
    assert [s.size for s in made] == [p.size] == [size_for_objects(mask, settings)]
    assert p.size > 32 and p.object_ids == [1]
    assert np.array_equal(p.labels(out), mask)  # the given mask, as the predictor says
    assert p.step(clip.frames[2]).shape == (2, 64, 96)
    assert len(made) == 1  # chosen once a pass


def test_make_predictor_follows_the_objects_only_without_fixed_scales(tiny_model):
    p = make_predictor([tiny_model], InferenceConfig(size=32, object_cells=2), "cpu")
    assert isinstance(p, ObjectScaled)
    p.step(np.zeros((64, 96, 3), np.uint8), square_mask(64, 96, [10]))
    assert isinstance(p.inner, Predictor)
    assert p.inner.settings.size == p.size and p.inner.settings.object_cells == 0
    fixed = make_predictor([tiny_model], InferenceConfig(scales=(32, 48), object_cells=2))
    assert not isinstance(fixed, ObjectScaled)


def test_memorising_objects_before_a_mask_is_refused(tiny_model):
    p = ObjectScaled(lambda s: Predictor(tiny_model, s), InferenceConfig(object_cells=2))
    with pytest.raises(RuntimeError, match="first mask"):
        p.memorize(torch.ones(2, 8, 8) / 2, given=True)


def test_every_predictor_says_the_side_it_processes_at(tiny_model):
    from lgdk.infer.adapt import Adapting
    from lgdk.infer.tta import Averaging, Flipped

    assert Predictor(tiny_model, InferenceConfig(size=48)).processing_side == 48
    assert Predictor(tiny_model, InferenceConfig(size=0)).processing_side == 0
    scaled = make_predictor([tiny_model], InferenceConfig(size=32, object_cells=2))
    assert scaled.processing_side is None  # not chosen before the first mask
    scaled.step(np.zeros((64, 96, 3), np.uint8), square_mask(64, 96, [10]))
    assert scaled.processing_side == scaled.size > 32
    both = Averaging([Predictor(tiny_model, InferenceConfig(size=s)) for s in (48, 32)])
    assert both.processing_side == 32 and Flipped(both).processing_side == 32
    assert Averaging([both, ObjectScaled(make_predictor, InferenceConfig())]).processing_side \
        is None
    assert Adapting(both, [], InferenceConfig()).processing_side == 32
