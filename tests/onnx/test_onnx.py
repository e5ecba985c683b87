import numpy as np
import pytest
import torch

from lgdk.config import InferenceConfig
from lgdk.data.procedural import generate_clip
from lgdk.errors import UserError
from lgdk.infer.predictor import Predictor
from lgdk.models.network import build_model
from tests.conftest import tiny_config

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from lgdk.onnx.export import export_onnx, memory_path  # noqa: E402
from lgdk.onnx.runtime import OnnxModel  # noqa: E402

SETTINGS = InferenceConfig(size=0, top_k=6, mem_every=2, max_memory=2)


@pytest.fixture(scope="module", params=["fast"])  # the contract test exports every variant
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(tiny_config(memory_encoder=request.param), top_k=6).eval()
    path = tmp_path_factory.mktemp("onnx") / "step.onnx"
    export_onnx(model, path, height=64, width=96, settings=SETTINGS)
    return model, path


def run(model, clip, late_mask):
    """Segment the clip; object 2 is given on frame 2 only (a second memory group)."""
    predictor = Predictor(model, SETTINGS)
    first = np.where(clip.labels[0] == 2, 0, clip.labels[0]).astype(np.uint8)
    out = []
    for t, frame in enumerate(clip.frames):
        mask = first if t == 0 else late_mask if t == 2 else None
        out.append(predictor.step(frame, mask))
    return out, predictor


def test_onnx_runtime_gives_the_masks_of_pytorch(exported):
    model, path = exported
    assert path.is_file() and memory_path(path).is_file()
    clip = generate_clip(np.random.default_rng(3), 64, 96, 7, 2)
    late = clip.labels[2].copy()
    torch_probs, torch_pred = run(model, clip, late)
    onnx_probs, onnx_pred = run(OnnxModel(path), clip, late)
    assert onnx_pred.object_ids == torch_pred.object_ids == [1, 2]
    for a, b in zip(torch_probs, onnx_probs):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4)
        # labels agree wherever the two most probable channels are not tied (to 1e-4)
        top2 = a.topk(2, dim=0).values
        clear = (top2[0] - top2[1] > 1e-4).numpy()
        assert clear.mean() > 0.5  # (a random model ties two objects in places)
        assert (torch_pred.labels(a) == onnx_pred.labels(b))[clear].all()


def test_export_refuses_a_size_that_is_not_a_multiple_of_16(exported, tmp_path):
    model, _ = exported
    with pytest.raises(UserError, match="multiples of 16"):
        export_onnx(model, tmp_path / "x.onnx", height=50, width=96, settings=SETTINGS)


def test_missing_graph_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="lgdk export --onnx"):
        OnnxModel(tmp_path / "nothing.onnx")


def test_export_segment_and_bench_from_the_command_line(tmp_path, tiny_checkpoint, capsys):
    from PIL import Image

    from lgdk.cli import main
    from tests.conftest import write_clip

    write_clip(tmp_path / "clip", num_frames=5, height=64, width=96)
    graph = tmp_path / "tiny.onnx"
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--onnx", str(graph),
                 "--frame-size", "96x64", "--size", "64"]) == 0
    assert "96x64 inputs" in capsys.readouterr().out
    assert OnnxModel(graph).settings.size == 64  # the graph carries its settings
    # a graph serves one size: the size that follows the objects is off inside it
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--onnx",
                 str(tmp_path / "c.onnx"), "--frame-size", "96x64", "--size", "64",
                 "--object-cells", "4"]) == 0
    assert OnnxModel(tmp_path / "c.onnx").settings.object_cells == 0
    common = [str(tmp_path / "clip/frames"), "--mask", str(tmp_path / "clip/gt/00000.png"),
              "--size", "64", "--no-progress"]
    assert main(["segment", *common, "--out", str(tmp_path / "pt"),  # the graph's arithmetic
                 "--checkpoint", str(tiny_checkpoint), "--precision", "float32"]) == 0
    assert main(["segment", *common, "--out", str(tmp_path / "ort"), "--onnx", str(graph)]) == 0
    names = sorted(p.name for p in (tmp_path / "pt").glob("*.png"))
    assert len(names) == 5
    for name in names:
        a = np.array(Image.open(tmp_path / "pt" / name))
        b = np.array(Image.open(tmp_path / "ort" / name))
        assert (a == b).mean() > 0.999
    capsys.readouterr()
    # another processing size than the graph's: one clear line, exit 2, nothing written
    assert main(["segment", *common[:-3], "--size", "48", "--no-progress", "--out",
                 str(tmp_path / "bad"), "--onnx", str(graph)]) == 2
    assert "export one for these frames" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["segment", *common, "--object-cells", "4", "--out", str(tmp_path / "bad"),
                 "--onnx", str(graph)]) == 2
    assert "leave out --object-cells" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["segment", *common, "--precision", "bfloat16", "--out",
                 str(tmp_path / "bad"), "--onnx", str(graph)]) == 2
    assert "in float32: leave out --precision bfloat16" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # the benchmark's clip is 854x480
    assert main(["export", "--checkpoint", str(tiny_checkpoint), "--onnx",
                 str(tmp_path / "b.onnx"), "--size", "32"]) == 0
    assert main(["bench", "--onnx", str(tmp_path / "b.onnx"), "--frames", "2"]) == 0
    assert "onnxruntime" in capsys.readouterr().out
