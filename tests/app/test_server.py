"""The HTTP API of `lgdk app` on a live server (tiny model): sessions kept apart, bad
input as a readable JSON error (never a stack trace), upload limits."""

import io
import json
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest
from PIL import Image

from lgdk.app.limits import AppSettings
from lgdk.app.server import create_app
from tests.app.conftest import clip, serve


@pytest.fixture
def server(make_tiny_predictor):
    url, stop = serve(create_app(make_tiny_predictor, AppSettings(
        max_upload_mb=1, demo_frames=4, prompt_method="grabcut")))
    yield url
    stop()


def call(url, path, body=None, data=None, headers=None, method=None):
    if body is not None:
        data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
    request = urllib.request.Request(url + path, data=data, headers=headers or {},
                                     method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def upload(url, sid, name, payload):
    boundary = "lgdkboundary"
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename="
            f"\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + \
        payload + f"\r\n--{boundary}--\r\n".encode()
    return call(url, f"/api/{sid}/upload", data=data,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def test_page_sessions_and_masks_stay_apart(server):
    status, page = call(server, "/")
    assert status == 200 and b"lgdk" in page
    a = json.loads(call(server, "/api/session", data=b"")[1])
    b = json.loads(call(server, "/api/session", data=b"")[1])
    assert a["session"] != b["session"] and a["frames"] == 4
    status, _ = call(server, f"/api/{a['session']}/paint",
                     {"frame": 0, "object": 1, "points": [[100, 100]], "radius": 30})
    assert status == 200
    masks = {}
    for s in (a, b):
        status, png = call(server, f"/api/{s['session']}/mask/0.png")
        assert status == 200
        masks[s["session"]] = np.array(Image.open(__import__("io").BytesIO(png)))
    assert masks[a["session"]][100, 100, 3] > 0 and masks[b["session"]][..., 3].max() == 0
    assert call(server, f"/api/{b['session']}/propagate", data=b"")[0] == 400
    status, _ = call(server, f"/api/{a['session']}/close", data=b"")
    assert status == 200
    status, body = call(server, f"/api/{a['session']}/mask/0.png")
    assert status == 400 and b"reload the page" in body


@pytest.mark.parametrize("name, payload, code, message", [
    ("notes.txt", b"hello", 400, b"give a video"),
    ("clip.mp4", b"not a video at all", 400, b"clip.mp4"),
    ("big.mp4", b"0" * (1 << 20) + b"1", 413, b"over 1 MB"),
])
def test_bad_uploads_are_readable_errors(server, name, payload, code, message):
    sid = json.loads(call(server, "/api/session", data=b"")[1])["session"]
    status, body = upload(server, sid, name, payload)
    assert status == code
    error = json.loads(body)["error"]
    assert message.decode() in error and "Traceback" not in error
    assert call(server, "/")[0] == 200  # still serving


def test_an_upload_is_streamed_and_checked_before_it_is_stored(tmp_path, make_tiny_predictor):
    url, stop = serve(create_app(make_tiny_predictor, AppSettings(
        max_upload_mb=10, disk_budget_mb=8, demo_frames=4, prompt_method="grabcut",
        root=tmp_path)))
    try:
        sid = json.loads(call(url, "/api/session", data=b"")[1])["session"]
        frames = io.BytesIO()
        with zipfile.ZipFile(frames, "w") as archive:
            for i, frame in enumerate(clip(frames=3).frames):
                png = io.BytesIO()
                Image.fromarray(frame).save(png, format="PNG")
                archive.writestr(f"f{i}.png", png.getvalue())
        status, body = upload(url, sid, "frames.zip", frames.getvalue())
        assert status == 200 and json.loads(body)["frames"] == 3, body
        status, body = upload(url, sid, "big.mp4", b"0" * (6 << 20))  # under 10 MB
        assert status == 413 and "--disk-budget-mb" in json.loads(body)["error"]
        assert not list(tmp_path.glob("lgdk-app-*/*/upload"))  # nothing of it stored
        assert len(list(tmp_path.glob(f"lgdk-app-*/{sid}/source/*"))) == 1  # the zip's frames

    finally:
        stop()


def test_an_upload_of_unannounced_size_is_stopped_at_the_limit(server):
    sid = json.loads(call(server, "/api/session", data=b"")[1])["session"]

    def chunks():  # no Content-Length: the limit holds as it arrives
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.mp4\""
        yield b"\r\n\r\n"
        for _ in range(3):
            yield b"1" * (1 << 19)
    status, body = call(server, f"/api/{sid}/upload", data=chunks(), headers={
        "Content-Type": "multipart/form-data; boundary=b"})
    assert status == 413 and "over 1 MB" in json.loads(body)["error"]
    assert call(server, "/")[0] == 200


def test_when_every_page_is_propagating_a_new_one_gets_503(tmp_path, tiny_model):
    from tests.app.test_limits import Gate

    gate = Gate(tiny_model)
    url, stop = serve(create_app(gate, AppSettings(
        max_sessions=1, demo_frames=3, prompt_method="grabcut", root=tmp_path)))
    try:
        sid = json.loads(call(url, "/api/session", data=b"")[1])["session"]
        call(url, f"/api/{sid}/paint", {"frame": 0, "object": 1, "points": [[50, 50]],
                                        "radius": 20})
        assert call(url, f"/api/{sid}/propagate", data=b"")[0] == 200
        status, body = call(url, "/api/session", data=b"")
        assert status == 503 and "busy" in json.loads(body)["error"]
        gate.open.set()
    finally:
        stop()


def test_with_a_token_nothing_answers_without_it(tmp_path, make_tiny_predictor):
    url, stop = serve(create_app(make_tiny_predictor, AppSettings(
        demo_frames=2, prompt_method="grabcut", root=tmp_path), token="s3cret"))
    try:
        for path, data in (("/", None), ("/app.js", None), ("/api/session", b""),
                           ("/?token=wrong", None), ("/api/session?token=s3cr", b"")):
            status, body = call(url, path, data=data)
            assert status == 403 and "token" in json.loads(body)["error"], path
        assert {p.name for p in tmp_path.glob("lgdk-app-*/*")} == {".lock", "demo"}  # no page
        request = urllib.request.Request(url + "/?token=s3cret")
        with urllib.request.urlopen(request) as response:
            cookie = response.headers["set-cookie"].split(";")[0]
            assert response.status == 200 and "HttpOnly" in response.headers["set-cookie"]
        status, body = call(url, "/api/session", data=b"", headers={"Cookie": cookie})
        assert status == 200 and json.loads(body)["frames"] == 2
        status, _ = call(url, "/app.js", headers={"X-LGDK-Token": "s3cret"})
        assert status == 200
    finally:
        stop()


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("0.0.0.0", False),
                                            ("192.168.1.5", False), ("myhost", False)])
def test_which_addresses_need_a_token(host, loopback):
    from lgdk.app.access import is_loopback

    assert is_loopback(host) is loopback


def test_app_flags_come_from_the_settings():
    import dataclasses

    from lgdk.cli import build_parser

    args = build_parser().parse_args(["app"])
    for field in dataclasses.fields(AppSettings):
        if field.metadata["flag"]:
            assert getattr(args, field.name) == field.default, field.name
    args = build_parser().parse_args(["app", "--max-sessions", "5", "--max-running", "2"])
    from lgdk.app.limits import settings_from_args

    assert settings_from_args(args).max_sessions == 5
    assert settings_from_args(args).max_running == 2


@pytest.mark.parametrize("body", [b"{", b'{"frame": "x", "object": 1, "box": [1, 2]}'])
def test_a_malformed_request_is_a_readable_error(server, body):
    sid = json.loads(call(server, "/api/session", data=b"")[1])["session"]
    status, answer = call(server, f"/api/{sid}/box", data=body,
                          headers={"Content-Type": "application/json"})
    assert status == 400 and "not what this app expects" in json.loads(answer)["error"]


def test_the_doubt_strip_has_every_frame_after_a_propagation(server):
    import time

    sid = json.loads(call(server, "/api/session", data=b"")[1])["session"]
    status, body = call(server, f"/api/{sid}/doubt")
    assert status == 200 and json.loads(body)["worst"] == []  # nothing propagated yet
    call(server, f"/api/{sid}/paint", {"frame": 0, "object": 1, "points": [[100, 100]],
                                       "radius": 30})
    assert call(server, f"/api/{sid}/propagate", data=b"")[0] == 200
    deadline = time.time() + 120
    while json.loads(call(server, f"/api/{sid}/progress")[1])["running"]:
        assert time.time() < deadline
        time.sleep(0.2)
    doubt = json.loads(call(server, f"/api/{sid}/doubt")[1])
    assert [f["frame"] for f in doubt["frames"]] == [0, 1, 2, 3]
    assert doubt["frames"][0]["why"] == "given"
    assert all(f["object"] == 1 for f in doubt["frames"][1:])
    assert set(doubt["worst"]) <= {1, 2, 3}
