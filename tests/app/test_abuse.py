"""Bad requests against a live `lgdk app` (tiny model): every case of the abuse list that
`scripts/app_load.py` runs, and random bodies sent to every route, are answered below 500,
with a JSON error when refused, within a time limit that catches a request that holds the
server; the server serves the page after them."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request

import pytest
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripts.app_abuse import BOUNDARY, JSON, MULTIPART, abuse_cases, as_json, form

from lgdk.app.limits import AppSettings
from lgdk.app.server import create_app
from lgdk.config import InferenceConfig
from lgdk.infer.predictor import Predictor
from lgdk.models.network import build_model
from tests.app.conftest import serve
from tests.conftest import tiny_config

ANSWER_SECONDS = 5.0  # a refusal comes before any work: far sooner than this
APP = AppSettings(demo_frames=4, prompt_method="grabcut", max_upload_mb=2, max_sessions=64)


@pytest.fixture(scope="module")
def live():
    model = build_model(tiny_config()).eval()
    app = create_app(lambda: Predictor(model, InferenceConfig(size=0)), APP)
    url, stop = serve(app)
    sid = json.loads(send(url, "POST", "/api/session", b"")[1])["session"]
    yield url, sid, app
    stop()


def send(url, method, path, body=None, content_type=None):
    """(status, body bytes, seconds) of one request; a timeout fails the test."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url + path, data=body, headers=headers, method=method)
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=ANSWER_SECONDS) as response:
            status, data = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, data = error.code, error.read()
    return status, data, time.perf_counter() - began


def json_error(data: bytes) -> str | None:
    try:
        return json.loads(data).get("error")
    except (ValueError, AttributeError):
        return None


@pytest.mark.parametrize("case", abuse_cases(), ids=lambda c: c.name)
def test_each_bad_request_is_refused_with_a_json_error(live, case):
    url, sid, _ = live
    status, data, seconds = send(url, case.method, case.path.format(sid=sid), case.body,
                                 case.content_type)
    assert 400 <= status < 500, (status, data[:300])
    assert json_error(data), data[:300]
    assert "Traceback" not in json_error(data)
    assert seconds < ANSWER_SECONDS
    assert send(url, "GET", "/")[0] == 200


def test_limits_name_the_flag_to_raise(live):
    url, sid, _ = live
    by_name = {c.name: c for c in abuse_cases()}
    for name, flag, code in [("paint 200,000 points", "--max-body-kb", 413),
                             ("paint 6,000 points", "--max-points", 400),
                             ("paint radius 1e9", "--max-radius", 400),
                             ("upload of 50 parts", "--max-upload-parts", 413)]:
        case = by_name[name]
        status, data, _ = send(url, case.method, case.path.format(sid=sid), case.body,
                               case.content_type)
        assert (status, flag in json_error(data)) == (code, True), (name, data[:300])


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10 ** 12, 10 ** 12)
FIELDS = {
    "frame": st.integers(-3, 6) | st.integers(-10 ** 30, 10 ** 30) | st.text(max_size=4),
    "object": st.integers(-2, 300) | st.just(None),
    "box": st.lists(FLOATS | st.integers(0, 640), min_size=0, max_size=5),
    "points": st.lists(st.lists(FLOATS | st.integers(0, 640), min_size=1, max_size=3),
                       max_size=40),
    "radius": FLOATS | st.integers(1, 50),
    "x": FLOATS, "y": FLOATS, "positive": st.booleans() | st.integers(),
    "erase": st.booleans(),
}
JSON_BODY = st.fixed_dictionaries({}, optional=FIELDS).map(as_json)
ANY_JSON = st.recursive(st.none() | st.booleans() | FLOATS | st.text(max_size=10),
                        lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                        max_leaves=20).map(as_json)
UPLOAD = st.tuples(st.sampled_from(["a.mp4", "a.zip", "a.txt", "", 'a".mov']),
                   st.binary(max_size=300)).map(lambda f: form(("file", *f)))
BODY = st.tuples(JSON_BODY, st.just(JSON)) | st.tuples(ANY_JSON, st.just(JSON)) | st.tuples(
    UPLOAD, st.just(MULTIPART)) | st.tuples(st.binary(max_size=300), st.sampled_from(
        [JSON, MULTIPART, "multipart/form-data", "text/plain", f"multipart/x; boundary="
         f"{BOUNDARY}"])) | st.just((None, None))
PARAMS = {"sid": st.sampled_from(["{sid}", "nope", "..", "%00"]),
          "index": st.integers(-2, 5).map(str) | st.sampled_from(["x", "1e3", "9" * 30]),
          "kind": st.sampled_from(["masks", "overlay", "cutout", "cutout_png", "zip", ""])}


def routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every API route of the app."""
    return sorted((method, r.path) for r in app.routes if isinstance(r, APIRoute)
                  for method in r.methods if method in ("GET", "POST"))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_bodies_to_every_route_stay_below_500(live, data):
    url, _, app = live
    sid = json.loads(send(url, "POST", "/api/session", b"")[1])["session"]  # one an example
    method, template = data.draw(st.sampled_from(routes(app)))
    path = template.format(**{k: data.draw(v) for k, v in PARAMS.items()
                              if "{" + k + "}" in template}).replace("{sid}", sid)
    body, content_type = data.draw(BODY)
    if method == "GET":
        body = None
    elif body is None:
        body = b""
    status, answer, seconds = send(url, method, path, body, content_type)
    assert status < 500, (method, path, body[:200] if body else body, answer[:300])
    if status >= 400:
        assert json_error(answer), answer[:300]
    assert seconds < ANSWER_SECONDS and math.isfinite(seconds)


def test_the_server_serves_after_the_abuse(live):
    url, _, _ = live
    assert send(url, "GET", "/")[0] == 200
    sid = json.loads(send(url, "POST", "/api/session", b"")[1])["session"]
    status, data, _ = send(url, "POST", f"/api/{sid}/paint", as_json(
        {"frame": 0, "object": 1, "points": [[20, 20], [60, 40]], "radius": 6}), JSON)
    assert status == 200 and json.loads(data)["objects"] == [1]
