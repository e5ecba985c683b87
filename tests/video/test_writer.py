"""What editors import: cut-outs as ProRes 4444 with alpha (.mov) and WebM VP9 with alpha,
overlays as H.264; each at the source's exact frame rate (29.97 stays 30000/1001) and
with the source's sound. Every output is decoded and checked."""

from fractions import Fraction

import numpy as np
import pytest

from lgdk.video.cutout import CutoutWriter, read_rgba_video
from lgdk.video.sinks import OverlayWriter
from lgdk.video.video_io import open_frames
from lgdk.video.writer import VideoWriter, exact_rate

RATE = Fraction(30000, 1001)


def source_with_sound(path, frames=24, sound=True):
    """An H.264 mp4 at 29.97 frames/s with a 440 Hz tone (AAC, stereo)."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=44100) if sound else None
        if audio is not None:
            audio.layout = "stereo"
        for i in range(frames):
            image = np.full((48, 64, 3), 8 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        if audio is not None:
            samples = int(44100 * frames / RATE)
            t = np.arange(samples) / 44100
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.stack([tone[start:start + 1024]] * 2)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp",
                                                   layout="stereo")
                frame.sample_rate = 44100
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode(None):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def probe(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        out = {"codec": video.codec_context.name, "pix_fmt": video.codec_context.pix_fmt,
               "rate": video.average_rate, "frames": frames}
    with av.open(str(path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            sound = [f.to_ndarray() for f in container.decode(stream)]
            samples = np.concatenate(sound, axis=-1)
            out.update(audio=stream.codec_context.name, seconds=samples.shape[-1] /
                       stream.rate, loudness=float(np.abs(samples).mean()))
    return out


def labels_for(frame_count):
    labels = np.zeros((48, 64), np.uint8)
    labels[10:30, 20:44] = 1
    return [labels] * frame_count


@pytest.mark.parametrize("name, codec, pix_fmt, sound", [
    ("cut.mov", "prores", "yuva444p10le", "aac"),
    ("cut.webm", "vp9", "yuv420p", "opus"),  # alpha rides in a side stream
])
def test_a_cutout_keeps_alpha_rate_and_sound(tmp_path, name, codec, pix_fmt, sound):
    src = source_with_sound(tmp_path / "src.mp4")
    source = open_frames(src)
    frames = [f for _, f in source]
    writer = CutoutWriter.open(tmp_path / name, source.fps, audio=src)
    for frame, labels in zip(frames, labels_for(len(frames))):
        writer.write(frame, labels)
    writer.close()
    info = probe(tmp_path / name)
    assert info["codec"] == codec and info["pix_fmt"][:7] == pix_fmt[:7]  # 10 or 12 bits
    assert info["frames"] == 24 and info["rate"] == RATE
    assert info["audio"] == sound and abs(info["seconds"] - 24 / RATE) < 0.1
    assert info["loudness"] > 0.05  # the tone, not silence
    if name.endswith(".webm"):
        alpha = np.stack([f[..., 3] for f in read_rgba_video(tmp_path / name)])
    else:
        alpha = np.stack(prores_alpha(tmp_path / name))
    assert alpha.shape[0] == 24
    assert alpha[:, 15, 30].min() > 200 and alpha[:, 2, 2].max() < 50


def prores_alpha(path):
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgba")[..., 3] for f in container.decode(video=0)]


def test_an_overlay_keeps_rate_and_sound_and_a_silent_source_gives_none(tmp_path):
    src = source_with_sound(tmp_path / "src.mp4")
    writer = OverlayWriter(tmp_path / "over.mp4", open_frames(src).fps, audio=src)
    for _, frame in open_frames(src):
        writer.write(frame, labels_for(1)[0])
    writer.close()
    info = probe(tmp_path / "over.mp4")
    assert info["frames"] == 24 and info["rate"] == RATE and info["audio"] == "aac"
    silent = source_with_sound(tmp_path / "silent.mp4", sound=False)
    video = VideoWriter(tmp_path / "quiet.mp4", 24, audio=silent)
    video.write(np.zeros((48, 64, 3), np.uint8))
    video.close()
    assert "audio" not in probe(tmp_path / "quiet.mp4")


def test_rates_are_kept_exact():
    assert exact_rate(29.97002997) == RATE and exact_rate(25.0) == 25
    assert exact_rate(23.976023976) == Fraction(24000, 1001)


def test_decoded_frames_are_pyav_s_own_rgb_conversion(tmp_path):
    """One conversion context for the whole video gives the frames that PyAV's
    per-frame `to_ndarray(format="rgb24")` gives."""
    import av

    rng = np.random.default_rng(0)
    path = tmp_path / "clip.mp4"
    writer = VideoWriter(path, 25)
    for _ in range(4):
        writer.write(rng.integers(0, 255, (48, 70, 3), dtype=np.uint8))
    writer.close()
    with av.open(str(path)) as container:
        expected = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    got = [frame for _, frame in open_frames(path)]
    assert len(got) == len(expected) == 4
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
