import pytest

from lgdk.config import ConfigError, config_from_json, config_to_json, load_config, preset_names


def test_every_preset_loads_and_round_trips_through_json():
    names = preset_names()
    for stage in ("stage0", "stage1", "stage2"):
        for backbone in ("lite0", "swinb", "wrn50", "resnest101", "seresnet152", "resnet50"):
            assert f"{backbone}-{stage}" in names
    for name in names:
        cfg = load_config(name)
        assert config_from_json(config_to_json(cfg)) == cfg


def test_paper_recipe_values():
    s0, s2 = load_config("stage0"), load_config("swinb-stage2")
    assert (s0.train.batch_size, s0.data.crop) == (8, 384)
    assert (s2.train.batch_size, s2.data.youtube_weight / s2.data.video_weight) == (4, 10)
    assert s2.model.backbone == "swin_base_patch4_window12_384"
    assert s2.model.memory_encoder == "full"


def test_overrides_are_typed_and_unknown_keys_refused():
    cfg = load_config("stage0", ["train.lr=0.5", "model.aspp=false", "data.static_roots=[a,b]"])
    assert cfg.train.lr == 0.5 and cfg.model.aspp is False
    assert cfg.data.static_roots == ("a", "b")
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config("stage0", ["train.lrr=1"])
    with pytest.raises(ConfigError, match="no preset named"):
        load_config("nope")
    with pytest.raises(ConfigError, match="must look like"):
        load_config("stage0", ["lr=1"])


def test_experiment_presets_load_from_the_checkout_and_the_package_names_no_local_data():
    from pathlib import Path

    from lgdk.config import _find_preset

    experiments = Path(__file__).parents[1] / "experiments" / "presets"
    for path in sorted(experiments.glob("*.yaml")):
        cfg = load_config(str(path))  # its base found beside it
        assert config_from_json(config_to_json(cfg)) == cfg
    for name in preset_names():
        assert "../shared" not in _find_preset(name, None).read_text(), name
    assert not {p.stem for p in experiments.glob("*.yaml")} & set(preset_names())
