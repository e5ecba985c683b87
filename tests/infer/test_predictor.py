import numpy as np
import pytest
import torch

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.infer.predictor import Predictor, Resolution, labels_from_probs
from lgdk.infer.tta import Averaging, Flipped, make_predictor


def clip(frames=5, h=64, w=96, objects=2, seed=0):
    return generate_clip(np.random.default_rng(seed), h, w, frames, objects)


def test_streaming_predictor_equals_the_training_forward(tiny_model):
    c = clip(frames=3)
    x = torch.stack([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in c.frames])
    first = torch.stack([torch.from_numpy(c.labels[0] == i).float() for i in (1, 2)])
    with torch.no_grad():
        ref = tiny_model(x[None], first[None]).exp()[0]  # (T-1, 1+N, H, W)
    p = Predictor(tiny_model, InferenceConfig(size=0, mem_every=1, max_memory=0))
    outs = [p.step(c.frames[0], c.labels[0])] + [p.step(f) for f in c.frames[1:]]
    for t in (1, 2):
        assert torch.allclose(outs[t], ref[t - 1], atol=1e-5)


def test_outputs_have_the_input_size_and_sum_to_one(tiny_model):
    c = clip(h=50, w=70)  # not multiples of 16, resized to size 40
    p = Predictor(tiny_model, InferenceConfig(size=40))
    probs = p.step(c.frames[0], c.labels[0])
    probs = p.step(c.frames[1])
    assert probs.shape == (3, 50, 70)
    assert torch.allclose(probs.sum(0), torch.ones(50, 70), atol=1e-4)
    assert p.labels(probs).shape == (50, 70)


def test_given_mask_is_reproduced_with_user_ids(tiny_model):
    c = clip()
    labels = c.labels[0].copy()
    labels[labels == 2] = 7  # user ids need not be 1..N
    p = Predictor(tiny_model, InferenceConfig(size=0))
    probs = p.step(c.frames[0], labels)
    assert p.object_ids == [1, 7]
    assert np.array_equal(p.labels(probs), labels)


def test_object_introduced_at_frame_k_appears_from_k_on(tiny_model):
    c = clip(frames=6)
    first = np.where(c.labels[0] == 1, 1, 0).astype(np.uint8)
    later = np.where(c.labels[3] == 2, 2, 0).astype(np.uint8)
    p = Predictor(tiny_model, InferenceConfig(size=0))
    channels = []
    for t, frame in enumerate(c.frames):
        mask = first if t == 0 else later if t == 3 else None
        probs = p.step(frame, mask)
        channels.append(probs.shape[0])
        if t == 3:
            assert (p.labels(probs)[later == 2] == 2).all()
    assert channels == [2, 2, 2, 3, 3, 3]
    assert p.bank.object_start == [0, 3]


def test_memory_stays_bounded_over_a_long_clip(tiny_model):
    frame = np.zeros((32, 48, 3), np.uint8)
    mask = np.zeros((32, 48), np.uint8)
    mask[8:20, 10:30] = 1
    p = Predictor(tiny_model, InferenceConfig(size=0, mem_every=2, max_memory=3))
    p.step(frame, mask)
    sizes = []
    for _ in range(60):
        p.step(frame)
        sizes.append((len(p.bank.entries), p.bank.nbytes()))
    assert max(n for n, _ in sizes) == 4  # the first frame + 3
    plateau = max(b for _, b in sizes[10:30])
    assert max(b for _, b in sizes[30:]) <= plateau  # flat after filling up
    assert p.bank.entries[0].frame_index == 0  # the given mask's frame is never dropped


def test_encode_every_skips_the_memory_encoder_between_refreshes(tiny_model):
    c = clip(frames=8)
    calls = []
    hook = tiny_model.memory_encoder.register_forward_hook(lambda *_: calls.append(1))
    p = Predictor(tiny_model, InferenceConfig(size=0, mem_every=5, encode_every=3))
    try:
        for t, frame in enumerate(c.frames):
            p.step(frame, c.labels[0] if t == 0 else None)
            if t == 4:
                assert p.bank.previous.frame_index == 3  # frame 4 was not encoded
    finally:
        hook.remove()
    # encoded: 0 (given), 3 (every 3), 5 (memory frame), 6 (every 3); not 1, 2, 4, 7
    assert len(calls) == 4
    assert [e.frame_index for e in p.bank.entries] == [0, 5]
    assert p.bank.previous.frame_index == 6
    assert [e.frame_index for e in p.bank.readable()] == [0, 5, 6]


def test_a_frame_read_again_is_not_encoded_again(tiny_model):
    """A prompt's refinement memorises a frame and predicts it: one query encoding. Another
    array, or the same one changed, is encoded afresh."""
    c = clip(frames=2)
    calls = []
    hook = tiny_model.query_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        p = Predictor(tiny_model, InferenceConfig(size=0))
        p.step(c.frames[0], c.labels[0])
        again = p.predict(c.frames[0])
        assert len(calls) == 1
        fresh = Predictor(tiny_model, InferenceConfig(size=0))
        fresh.step(c.frames[0], c.labels[0])
        assert torch.equal(again, fresh.predict(c.frames[0].copy()))  # the same numbers
        assert len(calls) == 3
        frame = c.frames[0].copy()
        p.predict(frame)
        frame[:8] = 0  # changed in place: not the frame read
        p.predict(frame)
        assert len(calls) == 5
    finally:
        hook.remove()


@pytest.mark.parametrize("every, encoded, readable", [
    (None, 5, [0, 5, 6]),  # the default, 2: frames 0, 2, 4, 5 (memory) and 6
    (0, 2, [0, 5]),  # memory frames only: 0 and 5
    (1, 8, [0, 5, 7]),  # every frame
])
def test_which_frames_the_memory_encoder_sees(tiny_model, every, encoded, readable):
    c = clip(frames=8)
    calls = []
    hook = tiny_model.memory_encoder.register_forward_hook(lambda *_: calls.append(1))
    options = InferenceConfig(size=0, mem_every=5)
    if every is not None:
        options = InferenceConfig(size=0, mem_every=5, encode_every=every)
    p = Predictor(tiny_model, options)
    try:
        for t, frame in enumerate(c.frames):
            p.step(frame, c.labels[0] if t == 0 else None)
    finally:
        hook.remove()
    assert len(calls) == encoded
    assert [e.frame_index for e in p.bank.readable()] == readable


def test_negative_or_zero_refresh_intervals_are_refused():
    with pytest.raises(UserError, match="--encode-every must be 0"):
        InferenceConfig(encode_every=-1)
    with pytest.raises(UserError, match="--mem-every must be at least 1"):
        InferenceConfig(mem_every=-2)


def test_flip_of_a_symmetric_clip_is_symmetric(tiny_model):
    rng = np.random.default_rng(0)
    half = rng.integers(0, 255, size=(48, 32, 3), dtype=np.uint8)
    frame = np.concatenate([half, half[:, ::-1]], axis=1)
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:44] = 1  # symmetric about the vertical axis
    p = make_predictor([tiny_model], InferenceConfig(size=0, flip=True), "cpu")
    assert isinstance(p, Averaging) and len(p.predictors) == 2
    assert isinstance(p.predictors[1], Flipped)
    p.step(frame, mask)
    probs = p.step(frame)
    assert torch.allclose(probs, probs.flip(-1), atol=1e-5)


def test_a_flipped_predictor_sees_the_mirrored_video(tiny_model):
    c = clip(frames=3)
    plain = Predictor(tiny_model, InferenceConfig(size=40))
    flipped = Flipped(Predictor(tiny_model, InferenceConfig(size=40)))
    for t, frame in enumerate(c.frames):
        mask = c.labels[0] if t == 0 else None
        mirrored = plain.step(frame[:, ::-1].copy(), None if mask is None else
                              mask[:, ::-1].copy())
        assert torch.allclose(flipped.step(frame, mask), mirrored.flip(-1), atol=1e-5)


def test_scales_and_ensemble_make_one_member_each(tiny_model):
    settings = InferenceConfig(flip=True, scales=(32, 48))
    p = make_predictor([tiny_model, tiny_model], settings, "cpu")
    assert len(p.predictors) == 8
    c = clip()
    p.step(c.frames[0], c.labels[0])
    probs = p.step(c.frames[1])
    assert probs.shape == (3, 64, 96)
    assert torch.allclose(probs.sum(0), torch.ones(64, 96), atol=1e-4)


def test_memorising_as_predicted_equals_the_trip_through_the_frame_size(tiny_model):
    """`Predictor.step` memorises its probabilities at the model's resolution; through
    `predict` + `memorize` (what wrappers call) they go to the frame's size and back. With
    no resize (size 0) both are the same numbers."""
    c = clip(frames=4, h=50, w=70)  # padded to 64x80: the padding is zero either way
    fast = Predictor(tiny_model, InferenceConfig(size=0, mem_every=1))
    halves = Averaging([Predictor(tiny_model, InferenceConfig(size=0, mem_every=1))])
    for t, frame in enumerate(c.frames):
        mask = c.labels[0] if t == 0 else None
        assert torch.allclose(fast.step(frame, mask), halves.step(frame, mask), atol=1e-5)


def test_labels_take_the_most_probable_channel_as_the_users_ids():
    probs = torch.tensor([[[0.6, 0.1, 0.2, 0.4]],   # background
                          [[0.3, 0.8, 0.2, 0.4]],   # object id 3
                          [[0.1, 0.1, 0.6, 0.2]]])  # object id 7; (1+N, H, W) = (3, 1, 4)
    labels = labels_from_probs(probs, [3, 7])
    assert labels.dtype == np.uint8
    # a tie (last pixel: background 0.4 = object 0.4) goes to the first channel, as argmax
    assert labels.tolist() == [[0, 3, 7, 0]]


def test_settings_are_the_checkpoints_own_with_the_given_values_on_top(tmp_path):
    from lgdk.config import Config
    from lgdk.infer.loading import load_models
    from lgdk.models.checkpoint import save_checkpoint
    from lgdk.models.network import build_model
    from tests.conftest import tiny_config

    cfg = Config(model=tiny_config(), inference=InferenceConfig(size=96, top_k=5))
    save_checkpoint(tmp_path / "m.safetensors", build_model(cfg.model), cfg)
    models, settings = load_models([str(tmp_path / "m.safetensors")], "cpu")
    assert (settings.size, settings.top_k) == (96, 5)
    assert models[0].reader.top_k == 5 and models[0].reader.sparse  # CPU inference
    models, settings = load_models([str(tmp_path / "m.safetensors")], "cpu", size=48,
                                   top_k=None, flip=True)
    assert (settings.size, settings.top_k, settings.flip) == (48, 5, True)
    with pytest.raises(UserError, match="--top-k must be 0"):
        load_models([str(tmp_path / "m.safetensors")], "cpu", top_k=-1)


def test_checkpoints_from_before_the_inference_section_keep_their_settings():
    import json

    from lgdk.config import Config, config_from_json, config_to_json

    data = json.loads(config_to_json(Config()))
    del data["inference"]
    data["model"].update(top_k=20, inference_size=384)
    data["train"]["val_size"] = 480
    cfg = config_from_json(json.dumps(data))
    assert (cfg.inference.size, cfg.inference.top_k) == (384, 20)


def test_a_given_object_is_where_its_mask_says_and_nowhere_else():
    import torch

    from lgdk.infer.predictor import merge_given_mask

    probs = torch.zeros(3, 4, 4)
    probs[1, :, :2] = 1.0  # object 1 predicted on the left half
    probs[2, :, 2:] = 1.0  # object 2 on the right half
    probs[0] = 1 - probs[1:].sum(0)
    mask = np.zeros((4, 4), np.uint8)
    mask[0, 3] = 1  # the user says: object 1 is here only
    ids = [1, 2]
    out = merge_given_mask(probs, mask, ids, max_objects=8)
    assert out[1].sum() == 1 and out[1, 0, 3] == 1
    assert out[2, 0, 3] == 0 and out[2, 1:, 2:].min() == 1  # object 2 keeps the rest
    assert torch.allclose(out.sum(0), torch.ones(4, 4))


@pytest.mark.parametrize("frame_size, size", [((48, 80), 0), ((50, 70), 0), ((90, 150), 40)])
def test_the_model_input_is_the_scaled_frame_edge_padded_to_multiples_of_16(frame_size, size):
    frame = np.random.default_rng(0).integers(0, 256, (*frame_size, 3), dtype=np.uint8)
    resolution = Resolution.of(*frame_size, size)
    x = resolution.image(frame, torch.device("cpu"))
    (h, w), (ph, pw) = resolution.model, resolution.padded
    expected = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    if resolution.model != resolution.frame:
        expected = torch.nn.functional.interpolate(expected, size=(h, w), mode="bilinear",
                                                   antialias=True)
    expected = torch.nn.functional.pad(expected, (0, pw - w, 0, ph - h), mode="replicate")
    assert x.shape == (1, 3, ph, pw) and ph % 16 == 0 and pw % 16 == 0
    assert x.is_contiguous(memory_format=torch.channels_last)
    resized = resolution.model != resolution.frame  # resized as uint8: within 1 of 255
    assert torch.allclose(x, expected, atol=1e-6 + resized / 255)
