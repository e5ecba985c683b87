"""The exported graphs run by ONNX Runtime, behind the step interface.

`OnnxModel` is a `lgdk.infer.backend.StepModel` (`encode_query`, `step`, `memorize`) on
the same `MemoryBank`, so that the predictor, its memory policy and its wrappers (flip,
scales) are shared with the PyTorch model: only the arithmetic moves. ONNX Runtime runs
on the CPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from lgdk.config import InferenceConfig, from_dict
from lgdk.errors import UserError
from lgdk.models.memory_bank import MemoryBank
from lgdk.onnx.export import MEMORY_OUTPUTS, SETTINGS_KEY, STEP_INPUTS, STEP_OUTPUTS, memory_path


def _session(path: Path, threads: int):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("running ONNX graphs needs onnxruntime: pip install "
                        "'lgdk[export]'") from None
    if not path.is_file():
        raise UserError(f"{path}: no such ONNX file; make it with lgdk export --onnx")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


class GraphQuery(NamedTuple):
    """What the step graph returns of a frame's encoding: all the memory graph reads."""

    key: torch.Tensor  # (1, Ck, h, w)
    f16: torch.Tensor  # (1, C16, h, w)


class OnnxModel:
    """ONNX Runtime sessions for the step and memory graphs written by `export_onnx`;
    `settings` are the inference settings exported with them."""

    def __init__(self, step_path: str | os.PathLike, threads: int = 0) -> None:
        step_path = Path(step_path)
        self.step_session = _session(step_path, threads)
        self.memory_session = _session(memory_path(step_path), threads)
        inputs = self.step_session.get_inputs()
        self.frame_shape = tuple(inputs[0].shape[2:])  # (H, W), fixed at export
        self.key_dim, self.value_dim = inputs[1].shape[1], inputs[3].shape[2]
        saved = self.step_session.get_modelmeta().custom_metadata_map.get(SETTINGS_KEY)
        self.settings = from_dict(InferenceConfig, json.loads(saved)) if saved else \
            InferenceConfig()

    def _run_step(self, frame, keys, values, global_feature, local_feature):
        if tuple(frame.shape[2:]) != self.frame_shape:
            h, w = self.frame_shape
            raise UserError(
                f"this ONNX graph takes {w}x{h} inputs but the video is processed at "
                f"{frame.shape[3]}x{frame.shape[2]} (after --size and padding to 16); "
                "export one for these frames: lgdk export --onnx OUT.onnx --frame-size WxH "
                "--size S")
        tensors = (frame, keys, values, global_feature, local_feature)
        feeds = {name: _np(x) for name, x in zip(STEP_INPUTS, tensors)}
        out = dict(zip(STEP_OUTPUTS, self.step_session.run(STEP_OUTPUTS, feeds)))
        return {k: torch.from_numpy(v) for k, v in out.items()}

    def encode_query(self, frame: torch.Tensor) -> GraphQuery:
        """Key and f16 of a frame with no objects yet: a step against one empty memory frame
        (its logits are thrown away)."""
        h, w = frame.shape[-2] // 16, frame.shape[-1] // 16
        keys = torch.zeros(1, self.key_dim, 1, h, w)
        values = torch.zeros(1, 1, self.value_dim, 1, h, w)
        feature = torch.zeros(1, 1, self.value_dim)
        out = self._run_step(frame, keys, values, feature, feature)
        return GraphQuery(out["key"], out["f16"])

    def step(self, frame: torch.Tensor, bank: MemoryBank, query: GraphQuery | None = None,
             crops: list | None = None) -> tuple[torch.Tensor, GraphQuery]:
        """Logits (1, N, H, W) for a frame; objects that appeared on different frames read
        different memory, so each such group is one run of the step graph. The graph
        encodes the frame itself (a known `query` is not used) and decodes every object on
        the whole frame (`crops` are not used)."""
        parts, out = [], None
        for objects, keys, values in bank.per_group():
            index = torch.tensor(objects)
            out = self._run_step(frame, keys, values, bank.global_feature[:, index],
                                 bank.local_feature[:, index])
            parts.append(out["logits"])
        return torch.cat(parts, dim=1), GraphQuery(out["key"], out["f16"])

    def memorize(self, frame_index: int, frame: torch.Tensor, query: GraphQuery,
                 masks: torch.Tensor, bank: MemoryBank, as_memory: bool,
                 permanent: bool = False) -> None:
        feeds = {"frame": _np(frame), "f16": _np(query.f16), "masks": _np(masks)}
        values, features = (torch.from_numpy(v) for v in
                            self.memory_session.run(MEMORY_OUTPUTS, feeds))
        bank.update(frame_index, query.key, values, features, as_memory, permanent)
