"""The learned prompt network: a box and clicks on a frame -> that object's mask.

An ImageNet backbone gives features at strides 4, 8 and 16 of the object's window
(`lgdk.prompts.crop`); its last `tuned_stages` stages may be trained with the head (the
file then holds them too; the rest stays as trained on ImageNet);
a small decoder reads them together with the prompt maps at every scale, with dilated
blocks at stride 16 so that each position sees the whole window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lgdk.models.backbones import Backbone, BackboneChannels
from lgdk.models.fused_activation import fuse_conv_activations
from lgdk.prompts.crop import PROMPT_CHANNELS


@dataclass(frozen=True)
class PromptNetConfig:
    backbone: str = "tf_efficientnet_lite0"
    size: int = 256  # side of the square input the object's window is resized to
    expand: float = 1.5  # the window is the box grown this many times
    max_aspect: float = 2.0  # ... its shorter side at least 1/max_aspect of its longer
    widths: tuple[int, int, int] = (128, 64, 32)  # decoder channels at strides 16, 8, 4
    prompt_channels: int = PROMPT_CHANNELS  # the first this many of the prompt maps are read
    tuned_stages: int = 0  # the backbone's last this many stages are trained with the head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PromptNetConfig:
        values = dict(values)
        values["widths"] = tuple(values.get("widths", cls.widths))
        values.setdefault("prompt_channels", 3)  # files from before the other-boxes map
        return cls(**values)


def _conv(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation),
                         nn.GroupNorm(8, cout), nn.ReLU(inplace=True))


class DilatedBlock(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.conv = _conv(channels, channels, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class PromptHead(nn.Module):
    """Backbone features + prompt maps -> mask logits at stride 4."""

    def __init__(self, channels: BackboneChannels, widths: tuple[int, int, int],
                 prompt_channels: int = PROMPT_CHANNELS) -> None:
        super().__init__()
        w16, w8, w4 = widths
        p = self.prompt_channels = prompt_channels
        self.enter16 = _conv(channels.c16 + p, w16)
        self.context = nn.Sequential(DilatedBlock(w16, 2), DilatedBlock(w16, 4))
        self.fuse8 = nn.Sequential(_conv(w16 + channels.c8 + p, w8), _conv(w8, w8))
        self.fuse4 = nn.Sequential(_conv(w8 + channels.c4 + p, w4), _conv(w4, w4))
        self.out = nn.Conv2d(w4, 1, 1)

    def reading_maps(self) -> list[nn.Conv2d]:
        """The convolutions whose last `prompt_channels` inputs are the prompt maps."""
        return [self.enter16[0], self.fuse8[0][0], self.fuse4[0][0]]

    def load_widened(self, state: dict[str, torch.Tensor]) -> int:
        """Load a head trained with fewer prompt maps: the maps it lacks get zero weights,
        so the head computes what it computed before until it is trained on them. Returns
        how many maps were added."""
        state, own = dict(state), self.state_dict()
        added = 0
        for conv in self.reading_maps():
            name = next(k for k, v in self.named_parameters() if v is conv.weight)
            old = state[name]  # (Cout, Cin_old, 3, 3)
            added = conv.weight.shape[1] - old.shape[1]
            pad = old.new_zeros(old.shape[0], added, *old.shape[2:])
            state[name] = torch.cat([old, pad], 1)
        self.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
        return added

    @staticmethod
    def _at(maps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(maps, like.shape[-2:])

    def forward(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor,
                maps: torch.Tensor) -> torch.Tensor:
        """f4/f8/f16: (B, C, S/s, S/s); maps: (B, PROMPT_CHANNELS, S, S) -> (B, 1, S/4, S/4)"""
        maps = maps[:, :self.prompt_channels]
        x = self.context(self.enter16(torch.cat([f16, self._at(maps, f16)], 1)))
        x = F.interpolate(x, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse8(torch.cat([x, f8, self._at(maps, f8)], 1))
        x = F.interpolate(x, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        x = self.fuse4(torch.cat([x, f4, self._at(maps, f4)], 1))
        return self.out(x)


class PromptNet(nn.Module):
    def __init__(self, cfg: PromptNetConfig, pretrained_backbone: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels_last = False  # inputs made channels-last (`for_inference` on a CPU)
        self.backbone = Backbone(cfg.backbone, pretrained=pretrained_backbone)
        self.backbone.eval()
        self.backbone.optimize_for_inference()  # BatchNorm folded: its statistics stay
        self.backbone.requires_grad_(False)  # after folding, whose biases are new
        for stage in self.tuned_stages():
            stage.requires_grad_(True)
        self.head = PromptHead(self.backbone.channels, cfg.widths, cfg.prompt_channels)

    def tuned_stages(self) -> list[nn.Module]:
        """The backbone's stages trained with the head (the last `cfg.tuned_stages` of those
        with parameters)."""
        if self.cfg.tuned_stages <= 0:
            return []
        stages = [m for m in self.backbone.model.children() if any(True for _ in m.parameters())]
        if self.cfg.tuned_stages > len(stages):
            raise ValueError(f"tuned_stages {self.cfg.tuned_stages}: the backbone has "
                             f"{len(stages)} stages")
        return stages[-self.cfg.tuned_stages:]

    def tuned_parameters(self) -> dict[str, nn.Parameter]:
        """The tuned stages' parameters by their names in the backbone."""
        tuned = {id(p) for stage in self.tuned_stages() for p in stage.parameters()}
        return {k: v for k, v in self.backbone.named_parameters() if id(v) in tuned}

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What a prompt network file holds: the head's tensors under their own names, the
        tuned backbone stages' under `backbone.`."""
        state = dict(self.head.state_dict())
        state.update({f"backbone.{k}": v.detach() for k, v in self.tuned_parameters().items()})
        return state

    def load_trained_state(self, state: dict[str, torch.Tensor]) -> int:
        """The inverse of `trained_state` (a head with fewer prompt maps is widened);
        returns how many prompt maps were added."""
        backbone = {k[len("backbone."):]: v for k, v in state.items()
                    if k.startswith("backbone.")}
        own = self.tuned_parameters()
        if set(backbone) != set(own):
            raise ValueError(f"the file holds {len(backbone)} backbone tensors, this "
                             f"network tunes {len(own)}")
        with torch.no_grad():
            for key, value in backbone.items():
                own[key].copy_(value.to(own[key].dtype))
        return self.head.load_widened({k: v for k, v in state.items()
                                       if not k.startswith("backbone.")})

    def train(self, mode: bool = True) -> PromptNet:
        super().train(mode)
        self.backbone.eval()  # ImageNet statistics stay as they are
        return self

    @torch.no_grad()
    def for_inference(self) -> PromptNet:
        """Inference only, in place, decided once: on a CPU the backbone's activations
        applied inside its convolutions (`lgdk.models.fused_activation`) and channels-last
        tensors (oneDNN's own layout; `forward` makes its inputs so). The same masks in
        about half the time; it stays float32, since in bfloat16 its masks were worse
        (experiments/log.md)."""
        self.eval().requires_grad_(False)
        if next(self.parameters()).is_cpu:
            fuse_conv_activations(self.backbone)
            self.to(memory_format=torch.channels_last)
            self.channels_last = True
        return self

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """images: (B, 3, S, S) RGB in 0..1 -> (f4, f8, f16); with a gradient through the
        tuned stages only."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.cfg.tuned_stages > 0):
            return self.backbone(images)

    def forward(self, images: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, S, S) in 0..1, maps: (B, PROMPT_CHANNELS, S, S) -> logits
        (B, 1, S, S)"""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        logits = self.head(*self.features(images), maps)  # (B, 1, S/4, S/4)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear",
                             align_corners=False)
