"""Export the per-frame step and the memory encoder as ONNX graphs.

Two graphs, both made of the network's own steps (no second implementation):
  step:   frame (1, 3, H, W), memory keys (1, Ck, T, h, w), memory values (1, N, Cv, T, h, w),
          global and local object features (1, N, Cv)
          -> logits (1, N, H, W), query key (1, Ck, h, w), query f16 (1, C16, h, w)
  memory: frame (1, 3, H, W), query f16, masks (1, N, H, W)
          -> values (1, N, Cv, h, w), eq.-1 object features (1, N, Cv)
T and N are dynamic; H and W are fixed at export (TensorFlow-style "same" padding in the
EfficientNet backbones makes symbolic sizes explode), so a graph serves one processing
size. `lgdk.onnx.runtime.OnnxModel` runs them with ONNX Runtime behind the same
`Predictor` as the PyTorch model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from lgdk.config import InferenceConfig
from lgdk.errors import UserError
from lgdk.models.network import LGDK

STEP_INPUTS = ["frame", "memory_keys", "memory_values", "global_feature", "local_feature"]
STEP_OUTPUTS = ["logits", "key", "f16"]
MEMORY_INPUTS = ["frame", "f16", "masks"]
MEMORY_OUTPUTS = ["values", "features"]
SETTINGS_KEY = "lgdk_inference"  # metadata of the step graph: its InferenceConfig as JSON


class StepGraph(nn.Module):
    """encode_query + memory read + kernels + decoder, with the memory given as inputs
    (`model` made `exportable`)."""

    def __init__(self, model: LGDK) -> None:
        super().__init__()
        self.model = model

    def forward(self, frame, memory_keys, memory_values, global_feature, local_feature):
        query = self.model.encode_query(frame)
        readout = self.model.reader(query.key, memory_keys, memory_values)  # (1, N, Cv, h, w)
        logits = self.model.decode(query, readout, global_feature, local_feature,
                                   (frame.shape[-2], frame.shape[-1]))
        return logits, query.key, query.f16


class MemoryGraph(nn.Module):
    """The memory encoder and eq. 1: frame, the query's f16 and soft masks -> memory
    values and object features (for memory encoders that read only the query's f16)."""

    def __init__(self, model: LGDK) -> None:
        super().__init__()
        if model.memory_encoder.reads_frame:
            raise UserError(f"ONNX export supports memory encoders that reuse the query's "
                            f"features (light, fast: the default), not "
                            f"'{model.cfg.memory_encoder}', whose backbone reads the frame")
        self.model = model

    def forward(self, frame, f16, masks):
        value = self.model.memory_encoder(frame, f16, masks)
        return value, self.model.object_features(value, masks)


def memory_path(step_path: str | os.PathLike) -> Path:
    """Where the memory graph goes beside the step graph: out.onnx -> out.memory.onnx."""
    path = Path(step_path)
    return path.with_name(path.stem + ".memory.onnx")


def example_inputs(model: LGDK, height: int = 240, width: int = 320, frames: int = 2,
                   objects: int = 2) -> tuple[tuple, tuple]:
    """Inputs of the two graphs for a (height, width) frame (multiples of 16)."""
    h, w = height // 16, width // 16
    cfg = model.cfg
    c16 = model.query_encoder.backbone.channels.c16
    frame = torch.rand(1, 3, height, width)
    step = (frame, torch.randn(1, cfg.key_dim, frames, h, w),
            torch.randn(1, objects, cfg.value_dim, frames, h, w),
            torch.randn(1, objects, cfg.value_dim), torch.randn(1, objects, cfg.value_dim))
    memory = (frame, torch.randn(1, c16, h, w), torch.rand(1, objects, height, width))
    return step, memory


def _export(module: nn.Module, inputs: tuple, names: list[str], outputs: list[str],
            dynamic: dict, path: Path, metadata: dict[str, str]) -> None:
    tmp = path.with_name("." + path.name + ".partial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, inputs, dynamo=True, input_names=names, output_names=outputs,
            dynamic_shapes=dynamic, optimize=True, verbose=False,
        )
    program.model.metadata_props.update(metadata)
    program.save(str(tmp), external_data=False)
    os.replace(tmp, path)


def export_onnx(model: LGDK, path: str | os.PathLike, height: int, width: int,
                settings: InferenceConfig) -> tuple[Path, Path]:
    """Write the step graph for (height, width) frames (the processing size
    `settings.size`, padded to multiples of 16) to `path`, and the memory graph beside it.
    Returns both paths."""
    try:
        import onnxscript  # noqa: F401  (torch's ONNX exporter needs it)
    except ImportError:
        raise UserError("ONNX export needs onnxscript and onnx: pip install "
                        "'lgdk[export]'") from None
    path = Path(path)
    if path.suffix != ".onnx":
        raise UserError(f"{path}: the export file name must end in .onnx")
    if height % 16 or width % 16 or min(height, width) < 32:
        raise UserError(f"export size {width}x{height}: both sides must be multiples of 16 "
                        "and at least 32")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.exportable().eval().float().to(memory_format=torch.contiguous_format)
    step_inputs, memory_inputs = example_inputs(model, height, width)
    fixed = dataclasses.replace(settings, object_cells=0.0)  # a graph serves one size
    metadata = {SETTINGS_KEY: json.dumps(dataclasses.asdict(fixed))}
    frames, objects = torch.export.Dim("frames", min=1), torch.export.Dim("objects", min=1)
    step_dynamic = ({}, {2: frames}, {1: objects, 3: frames}, {1: objects}, {1: objects})
    memory_dynamic = ({}, {}, {1: objects})
    with torch.inference_mode(False), torch.no_grad():
        _export(StepGraph(model), step_inputs, STEP_INPUTS, STEP_OUTPUTS, step_dynamic, path,
                metadata)
        _export(MemoryGraph(model), memory_inputs, MEMORY_INPUTS, MEMORY_OUTPUTS,
                memory_dynamic, memory_path(path), {})
    return path, memory_path(path)
