"""The learned prompt network: windows and maps, its training samples, training, files."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from lgdk.eval.metrics import jaccard
from lgdk.models.checkpoint import read_tagged_metadata
from lgdk.prompts import masks_from_prompts
from lgdk.prompts.crop import box_window, crop, paste_back, prompt_maps
from lgdk.prompts.learned import FORMAT, PromptNetError, load_prompt_net, save_prompt_net
from lgdk.prompts.net import PromptNet, PromptNetConfig
from lgdk.prompts.spec import Box, Click
from lgdk.train.prompt_net import PromptTrainer, PromptTraining, batch_iou, mask_loss
from lgdk.train.prompt_samples import (
    PromptDataset,
    PromptSampling,
    correcting_click,
    list_objects,
)
from tests.prompts.test_prompts import scene

SMALL = PromptNetConfig(size=64, widths=(16, 16, 8))


def test_window_grows_the_box_and_limits_its_aspect():
    window = box_window(Box(10, 20, 30, 120), expand=1.5, max_aspect=2.0)
    assert window.height == pytest.approx(150) and window.width == pytest.approx(75)
    assert (window.x0 + window.x1) / 2 == pytest.approx(20)
    assert (window.y0 + window.y1) / 2 == pytest.approx(70)


@pytest.mark.parametrize("box", [Box(25, 35, 76, 86), Box(0, 0, 40, 30), Box(130, 90, 160, 120)])
def test_crop_then_paste_back_returns_the_mask(box):
    _, disc, _ = scene()
    window = box_window(box, 1.5, 2.0)  # the last two reach outside the frame
    seen = crop(disc.astype(np.uint8) * 255, window, 128).astype(np.float32) / 255
    back = paste_back(seen, window, *disc.shape) >= 0.5
    inside = np.zeros_like(disc)
    inside[max(0, int(window.y0)):int(window.y1), max(0, int(window.x0)):int(window.x1)] = True
    assert jaccard(back, disc & inside) > 0.95
    assert not back[~inside].any()


def test_prompt_maps_draw_the_box_and_the_clicks():
    window = box_window(Box(20, 20, 60, 60), 2.0, 2.0)  # frame 0..80 -> input 0..64
    maps = prompt_maps(window, 64, Box(20, 20, 60, 60), [Click(40, 40, True), Click(5, 5, False)],
                       others=[Box(60, 0, 100, 20)])
    assert maps.shape == (4, 64, 64)
    assert maps[3, :16, 48:].all() and maps[3].sum() == 16 * 16  # clipped to the window
    assert maps[0, 16:48, 16:48].all() and maps[0].sum() == 32 * 32
    assert maps[1, 32, 32] == 1 and maps[1].sum() < 30 and maps[2, 4, 4] == 1
    assert not maps[1, 4, 4] and not maps[2, 32, 32]


def test_correcting_click_goes_to_the_largest_miss():
    truth = np.zeros((40, 40), bool)
    truth[5:35, 5:35] = True
    pred = truth.copy()
    pred[5:35, 5:15] = False  # a 30x10 miss on the left
    pred[0:3, 0:3] = True  # a small false positive
    click = correcting_click(pred, truth)
    assert click.positive and 8 <= click.x < 12 and 5 <= click.y < 35  # its middle column
    assert correcting_click(truth, truth) is None


@pytest.fixture
def stills(tmp_path):
    """Four stills with a disc and a square each (instance ids 1 and 2)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for seed in range(4):
        frame, disc, square = scene(seed=seed)
        Image.fromarray(frame).save(tmp_path / "images" / f"s{seed}.png")
        ids = disc.astype(np.uint8) + 2 * square.astype(np.uint8)
        Image.fromarray(ids).save(tmp_path / "masks" / f"s{seed}.png")
    return tmp_path


def test_samples_show_the_object_inside_its_box(stills):
    objects = list_objects([stills])
    assert len(objects) == 8 and {o.object_id for o in objects} == {1, 2}
    plain = PromptDataset(objects, SMALL, augment=False)
    image, maps, target = plain[0]
    assert image.shape == (3, 64, 64) and maps.shape == (4, 64, 64)
    assert target.shape == (1, 64, 64) and 0.2 < target.mean() < 0.6
    assert (maps[0] >= target[0]).all()  # a tight box holds the whole object
    jittered = PromptDataset(objects, SMALL, PromptSampling(clicks_only=1.0))
    _, maps, target = jittered[1]
    assert maps[0].sum() == 0 and (maps[1] * target[0]).sum() > 0  # a click on the object


def test_training_learns_the_objects_and_every_head_parameter_gets_a_gradient(stills, tmp_path):
    trainer = PromptTrainer(list_objects([stills]) * 4, tmp_path / "run", SMALL,
                            PromptTraining(iterations=30, batch=8, lr=3e-3, warmup=3, workers=0,
                                           seed=2),
                            PromptSampling(held_out=0.0, paste=0.0, small=0.0))
    plain = PromptDataset(list_objects([stills]), SMALL, augment=False)
    images, maps, target = next(iter(torch.utils.data.DataLoader(plain, batch_size=8)))
    trainer.net.train()
    mask_loss(trainer.net(images, maps), target).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in trainer.net.head.parameters())
    assert all(p.grad is None for p in trainer.net.backbone.parameters())
    trainer.net.zero_grad()
    with torch.no_grad():
        before = np.mean(batch_iou(trainer.net.eval()(images, maps), target))
    path = trainer.run(log=lambda _: None)
    with torch.no_grad():
        after = trainer.net.eval()(images, maps)
    assert before < 0.5 and np.mean(batch_iou(after, target)) > 0.85
    loaded = load_prompt_net(path)  # float16 weights: nearly the same logits
    with torch.no_grad():
        assert torch.allclose(loaded(images, maps), after, atol=0.05)


def test_a_head_with_fewer_prompt_maps_loads_and_computes_what_it_did():
    old = PromptNet(PromptNetConfig(size=64, widths=(16, 16, 8), prompt_channels=3),
                    pretrained_backbone=False).eval()
    new = PromptNet(SMALL, pretrained_backbone=False).eval()
    new.backbone = old.backbone  # the same (random) features
    assert new.head.load_widened(old.head.state_dict()) == 1
    images, maps = torch.rand(2, 3, 64, 64), torch.rand(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.allclose(new(images, maps), old(images, maps), atol=1e-5)
        assert not torch.allclose(old(images, maps), old(images, maps * 0.5))  # maps matter
    # a file written before the map of other boxes has no prompt_channels in its config
    assert PromptNetConfig.from_dict({"size": 64}).prompt_channels == 3


def test_tuned_stages_learn_with_the_head_and_travel_in_the_file(stills, tmp_path):
    cfg = PromptNetConfig(size=64, widths=(16, 16, 8), tuned_stages=2)
    trainer = PromptTrainer(list_objects([stills]) * 2, tmp_path / "run", cfg,
                            PromptTraining(iterations=4, batch=4, warmup=1, workers=0),
                            PromptSampling(held_out=0.0, paste=0.0, small=0.0))
    net = trainer.net
    tuned = {id(p) for stage in net.tuned_stages() for p in stage.parameters()}
    assert len(net.tuned_stages()) == 2 and tuned
    before = {k: v.clone() for k, v in net.backbone.named_parameters()}
    images, maps = torch.rand(2, 3, 64, 64), torch.rand(2, 4, 64, 64)
    net.train()
    net(images, maps).sum().backward()
    for p in net.backbone.parameters():  # gradients reach the tuned stages only
        assert (p.grad is not None) == (id(p) in tuned)
    net.zero_grad(set_to_none=True)
    path = trainer.run(log=lambda _: None)
    changed = {k for k, v in net.backbone.named_parameters() if not torch.equal(v, before[k])}
    assert changed and changed == {k for k, v in net.backbone.named_parameters()
                                   if id(v) in tuned}
    loaded = load_prompt_net(path)  # the tuned stages come back from the file
    with torch.no_grad():
        assert torch.allclose(loaded(images, maps), net.eval()(images, maps), atol=0.05)
    untuned = PromptTrainer(list_objects([stills]), tmp_path / "other", cfg,
                            PromptTraining(iterations=1, workers=0))
    untuned.start_from(path)  # starting from a file takes its stages (float16 in the file)
    assert all(torch.allclose(a, b, rtol=2e-3, atol=1e-4) for a, b in
               zip(untuned.net.backbone.parameters(), net.backbone.parameters()))
    more = PromptTrainer(list_objects([stills]), tmp_path / "more",
                         PromptNetConfig(size=64, widths=(16, 16, 8), tuned_stages=3),
                         PromptTraining(iterations=1, workers=0))
    imagenet = {k: v.clone() for k, v in more.net.backbone.named_parameters()}
    more.start_from(path)  # tunes one stage more: it starts as it was
    first = more.net.tuned_stages()[0]
    assert all(torch.equal(v, imagenet[k]) for k, v in more.net.backbone.named_parameters()
               if any(v is q for q in first.parameters()))
    assert all(torch.allclose(a, b, rtol=2e-3, atol=1e-4) for a, b in
               zip(more.net.backbone.parameters(), net.backbone.parameters()))


def test_a_file_without_the_tuned_stages_its_config_names_is_refused(tmp_path):
    net = PromptNet(PromptNetConfig(size=64, widths=(16, 16, 8), tuned_stages=1),
                    pretrained_backbone=False)
    save_prompt_net(tmp_path / "p.safetensors", net)
    state = {k: v for k, v in load_file(str(tmp_path / "p.safetensors")).items()
             if not k.startswith("backbone.")}
    metadata = read_tagged_metadata(tmp_path / "p.safetensors", FORMAT, PromptNetError, "", "")
    save_file(state, str(tmp_path / "cut.safetensors"), metadata)
    with pytest.raises(PromptNetError, match="does not match its own config"):
        load_prompt_net(tmp_path / "cut.safetensors")


def test_a_file_that_is_not_a_prompt_network_is_refused(tmp_path, tiny_checkpoint):
    with pytest.raises(PromptNetError, match="not a prompt network file"):
        load_prompt_net(tiny_checkpoint)
    (tmp_path / "junk.safetensors").write_text("junk")
    with pytest.raises(PromptNetError, match="not a prompt network file"):
        load_prompt_net(tmp_path / "junk.safetensors")


def test_saving_writes_nothing_half_done(tmp_path):
    net = PromptNet(SMALL, pretrained_backbone=False)
    save_prompt_net(tmp_path / "p.safetensors", net)
    assert [p.name for p in tmp_path.iterdir()] == ["p.safetensors"]


def test_shipped_network_finds_two_objects_from_boxes_and_one_from_a_click():
    frame, disc, square = scene()
    ids = masks_from_prompts(frame, boxes=[(25, 35, 76, 86), (100, 30, 140, 90)])
    assert jaccard(ids == 1, disc) > 0.85 and jaccard(ids == 2, square) > 0.85
    clicked = masks_from_prompts(frame, points=[(50, 60)])
    assert jaccard(clicked == 1, disc) > 0.7


def test_a_positive_click_on_one_object_is_a_negative_click_for_the_others(monkeypatch):
    import lgdk.prompts.learned as learned

    seen = {}

    def fake(net, frame, prompt, others=()):
        seen[prompt.object_id] = list(prompt.clicks)
        half = np.zeros(frame.shape[:2], np.float32)
        half[:, :80] = 0.9  # object 1 on the left, object 2 on the right
        return half if prompt.object_id == 1 else 0.9 - half

    monkeypatch.setattr(learned, "learned_probability", fake)
    frame, _, _ = scene()
    masks_from_prompts(frame, boxes=[(25, 35, 76, 86), (20, 30, 140, 90)],
                       points=[(50, 60, True, 1), (120, 50, False, 2)], method="learned",
                       prompt_net=object())
    assert seen[1] == [Click(50, 60, True)]  # a negative click of object 2 stays its own
    assert seen[2] == [Click(120, 50, False), Click(50, 60, False)]


def test_the_network_made_ready_for_inference_computes_the_same_logits():
    from lgdk.models.fused_activation import ConvActivation, fusion_available

    net = PromptNet(SMALL, pretrained_backbone=False).eval()
    with torch.no_grad():
        for p in net.head.parameters():
            p.normal_(0, 0.1)  # a head whose output depends on every input
        images, maps = torch.rand(2, 3, 64, 64), torch.rand(2, 4, 64, 64)
        before = net(images, maps)
        assert net.for_inference() is net and not net.training and net.channels_last
        after = net(images, maps)
    assert torch.allclose(after, before, atol=1e-5) and before.abs().max() > 0.1
    assert not any(p.requires_grad for p in net.parameters())
    fused = [m for m in net.backbone.modules() if isinstance(m, ConvActivation)]
    assert bool(fused) == fusion_available()
