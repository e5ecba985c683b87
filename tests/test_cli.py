import json

from lgdk.cli import main


def test_train_with_a_bad_override_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["train", "--config", "stage0", "--out", str(tmp_path), "--set", "train.x=1"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown config key(s) train.x" in err and "Traceback" not in err


def test_segment_needs_input_or_dataset(tmp_path, capsys):
    assert main(["segment", "--out", str(tmp_path / "o")]) == 2
    assert "give either INPUT" in capsys.readouterr().err


def test_bench_reports_speed_split_flops_and_memory(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "b.json"
    code = main(["bench", "--checkpoint", str(tiny_checkpoint), "--size", "32", "--frames",
                 "3", "--long", "60,90", "--adapt", "2", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["adaptation"]["steps"] == 2 and report["adaptation"]["seconds"] > 0
    assert report["fps"] > 0 and report["flops_per_frame"] > 0
    assert {"query encoder", "memory encoder", "memory read", "decoder", "kernels + head"} <= set(
        report["split_ms"])
    long = report["long_video"]
    assert long["60"]["bank_bytes"] == long["90"]["bank_bytes"]  # bounded memory
    first = report["first_mask"]  # a new process: imports, model, two frames, exit
    assert first["seconds"] > first["import_seconds"] > 0 and first["load_seconds"] > 0
    printed = capsys.readouterr().out
    assert "frames/s" in printed and "time to first mask" in printed
    assert "backend pytorch" in printed


def test_bench_with_several_objects_prints_each_objects_cost(tiny_checkpoint, capsys):
    code = main(["bench", "--checkpoint", str(tiny_checkpoint), "--size", "32", "--frames",
                 "3", "--objects", "3", "--long", "", "--no-first-mask"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "3 object(s)" in printed and "of one object's frames/s" in printed
    assert "each object beyond the first adds" in printed


def test_export_with_bad_arguments_is_one_line_and_exit_2(tmp_path, tiny_checkpoint, capsys):
    assert main(["export", "--onnx", str(tmp_path / "a.onnx"), "--frame-size", "85x"]) == 2
    assert "--frame-size must look like 854x480" in capsys.readouterr().err
    code = main(["export", "--onnx", str(tmp_path / "a.txt"), "--checkpoint",
                 str(tiny_checkpoint)])
    assert code == 2 and "must end in .onnx" in capsys.readouterr().err
    assert not list(tmp_path.glob("a.*"))


def test_flags_not_given_leave_the_checkpoints_own_settings(tmp_path, capsys):
    from lgdk.config import Config, InferenceConfig
    from lgdk.models.checkpoint import save_checkpoint
    from lgdk.models.network import build_model
    from tests.conftest import tiny_config

    cfg = Config(model=tiny_config(), inference=InferenceConfig(size=32, top_k=3))
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, build_model(cfg.model), cfg)
    common = ["bench", "--checkpoint", str(path), "--frames", "2", "--long", "",
              "--no-first-mask"]
    for flags, size in (([], 32), (["--size", "48"], 48)):
        assert main([*common, *flags, "--json", str(tmp_path / "b.json")]) == 0
        assert json.loads((tmp_path / "b.json").read_text())["size"] == size
    assert main([*common, "--top-k", "-1"]) == 2
    assert "--top-k must be 0 (every memory position) or more" in capsys.readouterr().err


def test_every_command_is_in_the_one_table():
    from lgdk.cli import COMMANDS, build_parser

    parser = build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert set(choices) == set(COMMANDS) == {"segment", "demo", "app", "eval", "train",
                                             "bench", "export"}


def test_adapt_flag_with_or_without_a_number_of_steps():
    from lgdk.cli import build_parser
    from lgdk.cli.common import ADAPT_STEPS, given_settings

    parser = build_parser()
    base = ["segment", "v.mp4", "--mask", "m.png", "--out", "o"]
    assert given_settings(parser.parse_args(base + ["--adapt"]))["adapt_steps"] == ADAPT_STEPS
    assert given_settings(parser.parse_args(base + ["--adapt", "7"]))["adapt_steps"] == 7
    assert given_settings(parser.parse_args(base))["adapt_steps"] is None  # the model's


def test_version_names_the_shipped_model_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from lgdk.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "shipped model lgdk-lite0-v1" in out and out.strip().endswith("False")


def test_the_shipped_files_metadata_tells_no_history():
    import re

    from lgdk.shipped import default_checkpoint, header_metadata

    for path in (default_checkpoint(), default_checkpoint().with_name("prompt.safetensors")):
        text = " ".join(header_metadata(path).values())
        assert not re.search(r"session", text, re.IGNORECASE), path


def test_every_setting_flag_says_the_shipped_default_and_the_shipped_file_agrees():
    import dataclasses

    from lgdk.cli import build_parser
    from lgdk.cli.common import setting_fields
    from lgdk.config import InferenceConfig
    from lgdk.models.checkpoint import read_config
    from lgdk.shipped import SHIPPED_SETTINGS, default_checkpoint

    shipped = InferenceConfig(**SHIPPED_SETTINGS)
    assert read_config(default_checkpoint()).inference == shipped
    parser = build_parser()
    args = parser.parse_args(["segment", "v.mp4", "--mask", "m.png", "--out", "o"])
    sub = next(a for a in parser._actions if a.dest == "command").choices["segment"]
    helps = {a.dest: a.help for a in sub._actions}
    for f in setting_fields():
        assert getattr(args, f.name) is None, f.name  # not given: the model's own applies
        value = getattr(shipped, f.name)
        shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
        assert f"the shipped model's: {shown})" in helps[f.name].replace("\n", " "), f.name
    assert {f.name for f in setting_fields()} <= {f.name for f in dataclasses.fields(
        InferenceConfig)}


def test_bad_input_is_answered_before_torch_is_imported(tmp_path):
    """A wrong path or prompt is reported without importing torch or loading a model."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    frames = tmp_path / "frames"
    frames.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(frames / "00000.jpg")
    cases = [
        (["segment", str(tmp_path / "missing.mp4"), "--mask", "m.png"], "not found"),
        (["segment", str(tmp_path), "--mask", str(tmp_path / "m.png")], "holds no jpg/png"),
        (["segment", str(video), "--mask", "m.png"], "is empty"),
        (["segment", str(frames), "--box", "1,2,3"], "--box must be"),
        (["segment", str(frames), "--mask", str(tmp_path / "m.png")], "mask"),
        (["segment", "--dataset", str(tmp_path / "none")], "is not a folder"),
    ]
    for argv, message in cases:
        code = ("import sys; from lgdk.cli import main\n"
                f"rc = main({argv + ['--out', str(tmp_path / 'out')]!r})\n"
                "print(rc, 'torch' in sys.modules)")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        assert run.stdout.split() == ["2", "False"], (argv, run.stdout, run.stderr)
        assert message in run.stderr, (argv, run.stderr)
        assert not (tmp_path / "out").exists()
