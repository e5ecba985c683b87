"""The bad requests `lgdk app` must refuse: each is to be answered with a 4xx and a JSON
`{"error": ...}` within seconds, and the server must keep serving after them. One list for
the load script (`scripts/app_load.py`) and the test suite (tests/app/test_abuse.py).

A case is raw HTTP: a method, a path (`{sid}` stands for a live session), a body and its
content type, so that each client sends exactly the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BOUNDARY = "lgdkabuse"
TRUNCATED_MP4 = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00" * 2000


@dataclass(frozen=True)
class Abuse:
    name: str
    method: str
    path: str  # "{sid}" is replaced by a live session's id
    body: bytes | None = None
    content_type: str | None = None


def as_json(value) -> bytes:
    return json.dumps(value).encode()  # NaN and Infinity kept as JavaScript writes them


def form(*parts: tuple[str, str | None, bytes], extra_header: str = "") -> bytes:
    """A multipart/form-data body: (field name, file name or None, content) each."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                      if filename else "")
        out += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra_header}"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
JSON = "application/json"


def _json(name: str, route: str, value) -> Abuse:
    return Abuse(name, "POST", "/api/{sid}/" + route, as_json(value), JSON)


def _upload(name: str, body: bytes, content_type: str = MULTIPART) -> Abuse:
    return Abuse(name, "POST", "/api/{sid}/upload", body, content_type)


def abuse_cases() -> list[Abuse]:
    """Every bad request, each named by what is wrong with it."""
    paint = {"frame": 0, "object": 1, "radius": 8}
    return [
        Abuse("unknown session", "GET", "/api/nope/frame/0.jpg"),
        Abuse("frame out of range", "GET", "/api/{sid}/frame/999.jpg"),
        Abuse("negative frame", "GET", "/api/{sid}/mask/-1.png"),
        Abuse("frame not a number", "GET", "/api/{sid}/frame/first.jpg"),
        Abuse("huge frame number", "GET", "/api/{sid}/mask/" + "9" * 400 + ".png"),
        _json("box off the frame", "box", {"frame": 0, "object": 1,
                                            "box": [5000, 5000, 6000, 6000]}),
        _json("box of NaN", "box", {"frame": 0, "object": 1, "box": [float("nan"), 0, 10, 10]}),
        _json("box of infinity", "box", {"frame": 0, "object": 1,
                                          "box": [0, 0, float("inf"), 10]}),
        _json("box of object 1000", "box", {"frame": 0, "object": 1000, "box": [0, 0, 10, 10]}),
        _json("click of object 0", "click", {"frame": 0, "object": 0, "x": 5, "y": 5}),
        _json("click at NaN", "click", {"frame": 0, "object": 1, "x": float("nan"), "y": 5}),
        _json("click on frame -1", "click", {"frame": -1, "object": 1, "x": 5, "y": 5}),
        _json("paint 200,000 points", "paint",
              {**paint, "points": [[i % 300, i % 200] for i in range(200_000)]}),
        _json("paint 6,000 points", "paint",
              {**paint, "points": [[i % 300, i % 200] for i in range(6_000)]}),
        _json("paint radius 1e9", "paint", {**paint, "points": [[10, 10]], "radius": 1e9}),
        _json("paint radius 0", "paint", {**paint, "points": [[10, 10]], "radius": 0}),
        _json("paint radius NaN", "paint", {**paint, "points": [[10, 10]],
                                             "radius": float("nan")}),
        _json("paint far off the frame", "paint", {**paint, "points": [[0, 0], [1e12, 1e12]]}),
        _json("paint no points", "paint", {**paint, "points": []}),
        _json("paint object 300", "paint", {**paint, "object": 300, "points": [[10, 10]]}),
        _json("paint points not pairs", "paint", {**paint, "points": [[1, 2, 3], "x"]}),
        _json("clear frame 10^9", "clear", {"frame": 10 ** 9}),
        _json("wrong types", "box", {"frame": "zero", "object": [], "box": "all"}),
        _json("body over the limit", "clear", {"frame": 0, "pad": "x" * (2 << 20)}),
        Abuse("malformed json", "POST", "/api/{sid}/box", b"{", JSON),
        Abuse("json nested 100,000 deep", "POST", "/api/{sid}/box",
              b"[" * 100_000 + b"]" * 100_000, JSON),
        Abuse("json as text/plain", "POST", "/api/{sid}/box", b'{"frame": 0}', "text/plain"),
        _upload("upload not multipart", b"no multipart here", "text/plain"),
        _upload("multipart that is not", b"no multipart here", "multipart/form-data; "
                "boundary=xyz"),
        _upload("multipart without boundary", form(("file", "a.mp4", b"x")),
                "multipart/form-data"),
        _upload("multipart cut short", form(("file", "a.mp4", b"x" * 100))[:-30]),
        _upload("upload of 50 parts", form(*[(f"f{i}", None, b"x") for i in range(50)])),
        _upload("upload header of 100 KB", form(("file", "a.mp4", b"x"),
                                                extra_header=f"X-Pad: {'x' * 100_000}\r\n")),
        _upload("upload with no file field", form(("other", None, b"x"))),
        _upload("text as a video", form(("file", "notes.txt", b"not a video"))),
        _upload("truncated mp4", form(("file", "clip.mp4", TRUNCATED_MP4))),
        _upload("broken zip", form(("file", "frames.zip", b"PK\x03\x04 not a zip"))),
        _upload("zip of no frames", form(("file", "frames.zip", _zip_of_text()))),
        Abuse("propagate with no object", "POST", "/api/{sid}/propagate", b""),
        Abuse("propagate sideways", "POST", "/api/{sid}/propagate?direction=sideways", b""),
        Abuse("unknown download", "GET", "/api/{sid}/download/nothing"),
        Abuse("background not a colour", "GET",
              "/api/{sid}/download/cutout?background=chartreuse-ish"),
    ]


def _zip_of_text() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "no frames here")
    return buffer.getvalue()
