"""Configuration: frozen dataclasses, YAML presets, and (de)serialisation.

A `Config` is saved inside every checkpoint (as JSON in the safetensors metadata), so a
checkpoint alone rebuilds the exact model it was trained as.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from lgdk.errors import UserError


class ConfigError(UserError):
    """A configuration value or file is invalid; the message says which and how to fix it."""


@dataclass(frozen=True)
class ModelConfig:
    """The network. Backbone channel counts are read from timm's feature_info, never set here."""

    backbone: str = "tf_efficientnet_lite0"
    pretrained: bool = True  # use the offline ImageNet weights where the project knows them
    weights_file: str | None = None  # a local backbone weights file (overrides `pretrained`)
    # "full": a second backbone on frame + mask (the paper's); "light": a small CNN on the
    # masks fused with the frame's own features (STCN / XMem); "fast": cheaper still (the
    # shipped model's; presets name theirs)
    memory_encoder: str = "light"
    key_dim: int = 64  # channels of the memory-read keys
    value_dim: int = 256  # channels of the memory values (per object)
    decoder_dim: int = 128  # channels of the stride-16 decoder stage (halved at each upsampling)
    affinity: str = "l2"  # "l2": negative squared L2 (STCN); "dot": dot product (STM)
    local_kernel: bool = True  # kernel from the previous frame's object feature
    global_kernel: bool = True  # kernel from the mean object feature over all past frames
    aspp: bool = True  # ASPP before the decoder
    # ASPP's branches on a 1x1 reduction of its input to this many channels (0: on the
    # whole input, the paper's; 128 costs a third of it)
    aspp_reduce: int = 0
    kernel_size: int = 3  # spatial size of the dynamic convolution
    kernel_hidden: int = 256  # width of the FC layers that generate the kernel
    # each object's decoder also sees the other objects' readouts (their maximum, through
    # a 1x1 convolution that starts at zero), to tell an object from look-alikes near it
    others_readout: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Where training clips come from. Sources are weighted by `*_weight` when mixed."""

    procedural_weight: float = 1.0  # synthetic clips (no data set needed)
    static_roots: tuple[str, ...] = ()  # image+mask folders or DAVIS layouts used as stills
    static_weight: float = 0.0
    video_roots: tuple[str, ...] = ()  # DAVIS / YouTube-VOS layouts used as videos
    video_weight: float = 0.0
    youtube_roots: tuple[str, ...] = ()  # YouTube-VOS train layouts (mixed 1:10 with DAVIS)
    youtube_weight: float = 0.0
    bl30k_roots: tuple[str, ...] = ()
    bl30k_weight: float = 0.0
    paste_roots: tuple[str, ...] = ()  # stills whose objects are pasted onto other stills
    paste_background_roots: tuple[str, ...] = ()  # more backgrounds (e.g. DAVIS frames)
    paste_weight: float = 0.0  # multi-object clips composed from stills (lgdk.data.paste)
    # real crowds (lgdk.data.crowd): MOTSChallenge as ../shared/data/mots/prepare.py writes
    # it; only the training sequences below are read, the others measure crowds
    crowd_roots: tuple[str, ...] = ()
    crowd_sequences: tuple[str, ...] = ("mots-0002", "mots-0011")
    crowd_weight: float = 0.0
    crowd_tracks: tuple[int, ...] = (2, 6)  # people of a clip: a touching group of this many
    paste_objects: int = 3  # at most this many pasted objects a clip (at least 1)
    # a pasted object's longer side at the clip's start, as shares of the crop (uniform)
    paste_size: tuple[float, ...] = (0.25, 0.7)
    crop: int = 384  # square crop side
    crop_scale: tuple[float, ...] = (0.36, 1.0)  # crop area as a fraction of the frame's
    num_frames: int = 3
    max_objects: int = 2
    max_gap_schedule: tuple[int, ...] = (10, 15, 20, 25, 5)  # STCN's curriculum
    max_gap_milestones: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.8)  # fractions of training
    workers: int = 2


@dataclass(frozen=True)
class TrainConfig:
    stage: int = 0
    iterations: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    backbone_lr_scale: float = 1.0  # the backbone's learning rate is lr times this
    weight_decay: float = 1e-7
    warmup: int = 100
    schedule: str = "cosine"  # "cosine" or "step"
    lr_steps: tuple[float, ...] = (0.8,)  # fractions of training, for the step schedule
    grad_clip: float = 3.0
    bootstrap_start: int = 2000  # all pixels before; then the hardest fraction shrinks ...
    bootstrap_end: int = 7000  # ... linearly to `bootstrap_top` at this iteration
    bootstrap_top: float = 0.15
    dice_weight: float = 0.0
    amp: bool = True  # bf16 autocast on GPU (ignored on CPU)
    freeze_bn: bool = True
    # the parts that train, as prefixes of parameter names (e.g. "decoder", "kernel_head");
    # empty: all of them
    trainable: tuple[str, ...] = ()
    checkpoint_every: int = 250
    keep_every: int = 0  # keep a float16 copy every N iterations (a multiple of
    # checkpoint_every; 0: none), to measure milestones along the way
    log_every: int = 10
    init_from: str | None = None  # checkpoint to start from (the previous stage)
    init_matching_only: bool = False  # load only init_from's tensors that fit (new parts fresh)
    val_root: str | None = None  # DAVIS-layout folder to validate on
    val_every: int = 0  # validation runs at the config's `inference` settings
    seed: int = 0


ADAPT_PARTS = ("head", "decoder", "all")
PRECISIONS = ("auto", "float32", "bfloat16", "int8")  # `InferenceConfig.precision`
MAX_OBJECTS = 32  # objects a video may have, unless a model's settings say otherwise


def _setting(default, text: str):
    """An inference setting with a flag of `lgdk segment`, `app` and `bench`: its help
    text lives here, once, and the flag is made from it (`lgdk.cli.common`)."""
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class InferenceConfig:
    """How a model runs on videos. Saved in every checkpoint beside the model (as timm's
    `pretrained_cfg` travels with a model): a model comes with the settings it was measured
    at; the command line's flags, when given, override them (`with_overrides`). The
    defaults are a new model's (the paper's exact memory read, no window); the shipped
    model's settings are the named set `lgdk.shipped.SHIPPED_SETTINGS`, inside its file."""

    size: int = _setting(480, "processing shorter side in pixels, 0 for the frames' own")
    cpu_float32_size: int = _setting(
        0, "the processing size instead of --size where the model runs in float32 on a CPU "
           "(no fast bfloat16 or int8 arithmetic there, or --precision float32), unless "
           "--size is given; 0: --size everywhere")
    top_k: int = _setting(0, "memory read over the k best memory positions of each query "
                              "position, 0 for all")
    mem_every: int = _setting(5, "a new memory frame every N frames (the given masks are "
                                 "always kept)")
    max_memory: int = _setting(8, "memory frames kept besides the given masks: memory "
                                  "stays flat on any length")
    encode_every: int = _setting(
        2, "also encode every N-th frame as the local (previous-frame) memory and O_{t-1}; "
           "1: every frame (STM's temporary memory, the paper's local kernel, slower); 0: "
           "memory frames only (fastest; objects may swap identities)")
    object_cells: float = _setting(
        0.0, "processing size that follows the objects (lgdk.infer.scale): raise --size "
             "until the smallest object of the first mask is this many stride-16 cells "
             "across, up to --max-size; 0 for off")
    max_size: int = _setting(720, "the largest processing size --object-cells may choose")
    max_objects: int = _setting(MAX_OBJECTS, "at most this many objects")
    window: float = _setting(
        0.0, "motion window (lgdk.infer.window): an object's mask fades beyond this many "
             "object sizes from its box in the previous frame; 0 for off")
    window_near: float = _setting(
        0.0, "the motion window, in object sizes, where the window of another object of "
             "about the same size lies (lgdk.infer.window): an object may move into free "
             "space further than onto a look-alike; 0: --window everywhere")
    crop_share: float = _setting(
        0.0, "decode an object only on a crop around its motion window when that crop is "
             "under this share of the frame (lgdk.infer.window.object_crops; with "
             "--window); 0 for every object on the whole frame")
    crop_margin: float = _setting(
        2.0, "with --crop-share, the reaches of the motion window a crop holds beyond the "
             "window (the window's penalty there: 8 logits a reach)")
    memory_gate: float = _setting(
        0.0, "a frame due to become a memory frame waits while its least certain object's "
             "doubt (lgdk.infer.doubt: unsure, a sudden change of area, gone) is above "
             "this; 0 for off")
    flip: bool = _setting(False, "also process the mirrored frames and average")
    scales: tuple[int, ...] = _setting((), "shorter-side sizes to average, e.g. 480,600")
    amp: bool = _setting(False, "mixed precision (GPU)")
    precision: str = _setting(
        "auto", "arithmetic of the encoders and the decoder (the memory read's weights stay "
                "float32): auto (bfloat16 on a CPU with AMX or AMD's AVX-512 BF16, where it "
                "is faster; else int8 convolutions in the decoder and memory encoder on an "
                "x86 CPU with AVX2 or VNNI; float32 elsewhere and with --adapt; below "
                "float32 the read's top k is chosen by an int8 product), float32, bfloat16 "
                "or int8")
    adapt_steps: int = _setting(0, "fine-tune a copy of the model on each given mask first "
                                   "(slower, for accuracy); 0: off")
    adapt_part: str = _setting("decoder", "what --adapt trains: the kernel head, the "
                                          "decoder (and head) or all")
    adapt_lr: float = _setting(1e-4, "--adapt's learning rate")
    adapt_batch: int = 2  # pseudo-clips a step
    adapt_crop: int = 384  # side of the pseudo-clips' square frames

    def __post_init__(self) -> None:
        checks = (
            (self.size >= 0, f"--size must be a positive shorter side in pixels (or 0 for "
                             f"the frames' own size), not {self.size}"),
            (self.cpu_float32_size >= 0, f"--cpu-float32-size must be 0 (off) or a "
                                         f"shorter side in pixels, not "
                                         f"{self.cpu_float32_size}"),
            (self.object_cells >= 0, f"--object-cells must be 0 (off) or a positive "
                                     f"number of cells, not {self.object_cells}"),
            (self.max_size >= 16, f"--max-size must be a shorter side of 16 pixels or "
                                  f"more, not {self.max_size}"),
            (self.top_k >= 0, f"--top-k must be 0 (every memory position) or more, not "
                              f"{self.top_k}"),
            (self.mem_every >= 1, f"--mem-every must be at least 1, not {self.mem_every}"),
            (self.max_memory >= 0, f"--max-memory must be 0 or more, not {self.max_memory}"),
            (self.encode_every >= 0, f"--encode-every must be 0 (memory frames only) or "
                                     f"more, not {self.encode_every}"),
            (self.window_near >= 0, f"--window-near must be 0 (off) or a positive number "
                                    f"of object sizes, not {self.window_near}"),
            (self.window >= 0, f"--window must be 0 (off) or a positive number of object "
                               f"sizes, not {self.window}"),
            (0 <= self.crop_share <= 1, f"--crop-share must be a share of the frame in "
                                        f"0-1 (0: off), not {self.crop_share}"),
            (self.crop_margin >= 0, f"--crop-margin must be 0 or more reaches of the "
                                    f"window, not {self.crop_margin}"),
            (0 <= self.memory_gate <= 1, f"--memory-gate must be a doubt in 0-1 (0: "
                                         f"off), not {self.memory_gate}"),
            (self.max_objects >= 1, f"--max-objects must be at least 1, not "
                                    f"{self.max_objects}"),
            (all(s >= 16 for s in self.scales), f"--scales must be shorter sides of 16 "
                                                f"pixels or more, like 480,600, not "
                                                f"{','.join(map(str, self.scales))}"),
            (self.adapt_steps >= 0, f"--adapt must be 0 or more steps, not "
                                    f"{self.adapt_steps}"),
            (self.adapt_part in ADAPT_PARTS, f"--adapt-part must be one of "
                                             f"{', '.join(ADAPT_PARTS)}, not "
                                             f"'{self.adapt_part}'"),
            (self.precision in PRECISIONS, f"--precision must be one of "
                                           f"{', '.join(PRECISIONS)}, not "
                                           f"'{self.precision}'"),
            (not (self.adapt_steps and self.precision in ("bfloat16", "int8")),
             f"--adapt fine-tunes in float32: leave out --precision {self.precision} "
             "(auto runs float32 with --adapt)"),
            (self.adapt_lr > 0 and self.adapt_batch >= 1 and self.adapt_crop >= 32,
             "adapt_lr must be positive, adapt_batch at least 1 and adapt_crop at least 32"),
        )
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def with_overrides(self, **given: Any) -> InferenceConfig:
        """These settings with the values that were given (None: not given, keep)."""
        return replace(self, **{k: v for k, v in given.items() if v is not None})


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _coerce(tp: Any, value: Any, where: str) -> Any:
    if is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config section '{where}' must be a mapping, got {value!r}")
        return from_dict(tp, value, where)
    text = str(tp)
    if text.startswith("tuple"):
        if isinstance(value, (str, int, float)):
            value = [value]
        inner = float if "float" in text else int if "int" in text else str
        return tuple(inner(v) for v in value)
    if value is None:
        return None
    if "bool" in text and not isinstance(value, bool):
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"'{where}' must be true or false, got {value!r}")
    for name, caster in (("int", int), ("float", float), ("str", str)):
        if text.startswith(name):
            try:
                return caster(value)
            except (TypeError, ValueError):
                raise ConfigError(f"'{where}' must be {name}, got {value!r}") from None
    return value


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
            f"valid keys: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def config_to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), sort_keys=True)


# Keys of checkpoints written before the inference settings had their own section.
LEGACY_KEYS = {("model", "top_k"): "top_k", ("model", "inference_size"): "size",
               ("train", "val_size"): None}


def config_from_json(text: str) -> Config:
    data = json.loads(text)
    for (section, key), new in LEGACY_KEYS.items():
        value = data.get(section, {}).pop(key, None)
        if new is not None and value is not None:
            data.setdefault("inference", {}).setdefault(new, value)
    return from_dict(Config, data)


def preset_names() -> list[str]:
    """The package's presets (the paper's recipes)."""
    folder = resources.files("lgdk") / "configs"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(path_or_preset: str, beside: Path | None = None) -> dict[str, Any]:
    """A YAML file, or a preset by name: beside the file that names it as its `base`, or
    in the package (the paper's recipes)."""
    path = Path(path_or_preset)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; give a YAML file or a preset name")
    else:
        path = _find_preset(path_or_preset, beside)
    data = yaml.safe_load(path.read_text()) or {}
    base = data.pop("base", None)
    if base:
        merged = _read_yaml(base, path.parent)
        _deep_update(merged, data)
        return merged
    return data


def _find_preset(name: str, beside: Path | None) -> Path:
    places = [beside / f"{name}.yaml"] if beside is not None else []
    places.append(Path(str(resources.files("lgdk") / "configs" / f"{name}.yaml")))
    for place in places:
        if place.is_file():
            return place
    raise ConfigError(f"no preset named '{name}'; presets: {', '.join(preset_names())}; or "
                      "give a YAML file's path (a checkout's experiments keep theirs in "
                      "experiments/presets/NAME.yaml)")


def _deep_update(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` strings (values parsed as YAML scalars)."""
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = yaml.safe_load(raw)
    return data


def load_config(path_or_preset: str | None = None, overrides: list[str] | None = None) -> Config:
    data = _read_yaml(path_or_preset) if path_or_preset else {}
    apply_overrides(data, overrides or [])
    return from_dict(Config, data)


__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "InferenceConfig",
    "ModelConfig",
    "TrainConfig",
    "config_from_json",
    "config_to_json",
    "load_config",
    "preset_names",
]
