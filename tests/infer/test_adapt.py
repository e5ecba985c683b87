"""`--adapt`: a copy of the model fine-tuned on each given mask, the original untouched."""

import dataclasses

import numpy as np
import pytest
import torch

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.eval.metrics import jaccard
from lgdk.infer.adapt import Adapting
from lgdk.infer.tta import make_predictor

SETTINGS = InferenceConfig(size=0, adapt_steps=3, adapt_crop=48, adapt_lr=1e-3, adapt_batch=1)


def clip(frames=4, seed=0, h=64, w=96):
    return generate_clip(np.random.default_rng(seed), h, w, frames, 2)


def run(predictor, c):
    return [predictor.step(f, c.labels[0] if t == 0 else None) for t, f in enumerate(c.frames)]


@pytest.mark.parametrize("part, changed", [("head", ("kernel_head.",)),
                                           ("decoder", ("decoder.", "kernel_head."))])
def test_only_the_copy_and_only_the_chosen_part_changes(tiny_model, part, changed):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    p = make_predictor([tiny_model], dataclasses.replace(SETTINGS, adapt_part=part))
    assert isinstance(p, Adapting)
    run(p, clip())
    assert all(torch.equal(v, before[k]) for k, v in tiny_model.state_dict().items())
    moved = {k for k, v in p.models[0].state_dict().items() if not torch.equal(v, before[k])}
    assert moved and all(k.startswith(changed) for k in moved)
    assert p.seconds > 0 and len(p.examples) == 1


def test_adaptation_is_deterministic_and_a_later_mask_adapts_again(tiny_model):
    c = clip(frames=5)
    outputs = []
    for _ in range(2):
        p = make_predictor([tiny_model], SETTINGS)
        probs = []
        for t, frame in enumerate(c.frames):
            mask = c.labels[0] if t == 0 else c.labels[3] if t == 3 else None
            probs.append(p.step(frame, mask))
        assert len(p.examples) == 2
        outputs.append(probs)
    assert all(torch.equal(a, b) for a, b in zip(*outputs))


def test_a_frame_read_before_its_mask_is_encoded_again_after_adapting(tiny_model):
    """The predictor keeps the encoding of the frame it last read; with the whole model
    adapted on the mask given on that frame, the frame is encoded again."""
    c = clip()
    p = make_predictor([tiny_model], dataclasses.replace(SETTINGS, adapt_part="all"))
    model, known = p.models[0], []
    step = model.step

    def recording_step(frame, bank, query=None, crops=None):
        known.append(query is not None)
        return step(frame, bank, query, crops)

    model.step = recording_step
    p.step(c.frames[0], c.labels[0])
    p.predict(c.frames[1])
    p.step(c.frames[1], c.labels[1])
    assert known and not any(known)  # every read encodes its frame itself


def test_onnx_models_cannot_adapt():
    with pytest.raises(UserError, match="leave out --onnx"):
        make_predictor([object()], SETTINGS)


def test_two_objects_keep_their_identities_after_adapting():
    """The shipped model, adapted on a generated two-object clip's first mask."""
    from lgdk.infer.loading import load_models

    models, settings = load_models(None, "cpu", size=0)
    c = clip(frames=8, seed=4, h=240, w=320)
    adapted = dataclasses.replace(settings, adapt_steps=6, adapt_crop=160)
    for s in (settings, adapted):
        p = make_predictor(models, s)
        labels = [p.labels(probs) for probs in run(p, c)]
        for obj, other in ((1, 2), (2, 1)):
            own = np.mean([jaccard(lbl == obj, t == obj) for lbl, t in zip(labels[1:],
                                                                            c.labels[1:])])
            swapped = max(jaccard(lbl == obj, t == other) for lbl, t in zip(labels[1:],
                                                                             c.labels[1:]))
            assert own > 0.6 and swapped < 0.1, (s.adapt_steps, obj, own, swapped)


def test_adapting_everything_reaches_the_backbone_of_an_optimized_model(tiny_model):
    """A loaded model's convolutions carry their activations inside (oneDNN, no gradient):
    the copy that adapts has plain ones, so `--adapt-part all` moves the backbone too."""
    from lgdk.models.fused_activation import ConvActivation, fusion_available

    if not fusion_available():
        pytest.skip("PyTorch without oneDNN")
    tiny_model.optimize_for_inference()
    fused = [n for n, m in tiny_model.named_modules() if isinstance(m, ConvActivation)]
    assert any(n.startswith("query_encoder.backbone") for n in fused)
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    p = make_predictor([tiny_model], dataclasses.replace(SETTINGS, adapt_part="all"))
    run(p, clip())
    assert not any(isinstance(m, ConvActivation) for m in p.models[0].modules())
    after = p.models[0].state_dict()
    moved = {k for k, v in after.items() if k in before and not torch.equal(v, before[k])}
    assert any(k.startswith("query_encoder.backbone") for k in moved)


@pytest.mark.parametrize("part, adaptations", [("decoder", 1), ("all", 3)])
def test_a_run_of_given_frames_adapts_once_unless_the_encoders_change(
        tiny_model, monkeypatch, part, adaptations):
    """A pass starts with several given frames in memory (`lgdk.video.job`): adapting on
    them together, once, before the first frame it predicts; with `all`, the memory
    encoder changes, so each given frame is memorised by the model adapted on it."""
    import lgdk.infer.adapt as adapt

    calls = []
    real = adapt.adapt_model
    monkeypatch.setattr(adapt, "adapt_model", lambda model, examples, *a, **k: (
        calls.append(len(examples)), real(model, examples, *a, **k))[1])
    c = clip(frames=5)
    p = make_predictor([tiny_model], dataclasses.replace(SETTINGS, adapt_part=part))
    for t in range(3):
        p.step(c.frames[t], c.labels[t])
    assert len(calls) == (0 if part == "decoder" else 3)
    p.step(c.frames[3])
    p.step(c.frames[4])
    assert len(calls) == adaptations and calls[-1] == 3  # on all three masks
