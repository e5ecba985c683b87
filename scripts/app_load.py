"""Load on a running `lgdk app`, measured from outside it, as a user's scripts would:

1. N sessions opened and never closed: the growth of the app's temporary files, and the
   page still served;
2. K clients at once, each uploading a real clip (an mp4 made from a DAVIS sequence's
   frames), drawing the object's tight box on frame 0, propagating and downloading the
   masks: each client's mean J over the clip, its wall time, and the server's peak
   resident memory over that before;
3. the abuse list of `scripts/app_abuse.py` (the one the tests send): each request must
   be answered 4xx with a JSON error within 5 s, the server serving after them;
4. a second server on a non-loopback address answers 403 without its token.

    python scripts/app_load.py --sequence ../shared/data/davis2016/dev-val/*/cows \
        [--pages 200] [--clients 6] [--frames 49] [--app-flag=--max-running=2]

Prints one table; `--json` keeps it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from app_abuse import abuse_cases  # beside this script
from PIL import Image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sequence", required=True,
                   help="a DAVIS sequence: its JPEGImages folder (Annotations beside it)")
    p.add_argument("--pages", type=int, default=200, help="sessions to open and never close")
    p.add_argument("--clients", type=int, default=6)
    p.add_argument("--frames", type=int, default=49)
    p.add_argument("--app-flag", action="append", default=[],
                   help="a flag for `lgdk app`, e.g. --app-flag=--max-running=2")
    p.add_argument("--lgdk-flag", action="append", default=[],
                   help="a flag for `lgdk` before `app`, e.g. --lgdk-flag=--system-malloc")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    frames_dir = Path(args.sequence)
    truth = truth_masks(frames_dir, args.frames)
    work = Path(tempfile.mkdtemp(prefix="app-load-"))
    video = work / "clip.mp4"
    write_mp4(video, sorted(frames_dir.glob("*.jpg"))[:args.frames])
    report = {"sequence": frames_dir.name, "frames": args.frames,
              "flags": args.lgdk_flag + ["app"] + args.app_flag}
    temp = work / "tmp"
    temp.mkdir()
    server = Server(temp, args.app_flag, args.lgdk_flag)
    try:
        report["sessions"] = open_sessions(server, temp, args.pages)
        report["clients"] = clients(server, video, truth, args.clients)
        report["bad_requests"] = bad_requests(server)
    finally:
        server.stop()
    report["leftover_temp_mb"] = folder_mb(temp)
    gated = Server(temp, ["--host", "0.0.0.0"])
    try:
        report["token"] = token_check(gated)
    finally:
        gated.stop()
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


class Server:
    """`lgdk app` on a free port with TMPDIR set to `temp`."""

    def __init__(self, temp: Path, flags: list[str], before: tuple[str, ...] = ()) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        lgdk = Path(sys.executable).with_name("lgdk")
        self.process = subprocess.Popen(
            [str(lgdk), *before, "app", "--port", str(port), *flags], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, "TMPDIR": str(temp)})
        printed = self.process.stdout.readline()
        match = re.search(r"http://\S+:\d+/(\S*)", printed)
        if not match:
            raise SystemExit(printed + self.process.stdout.read())
        self.base, self.query = f"http://127.0.0.1:{port}", match.group(1)
        for _ in range(600):
            try:
                urllib.request.urlopen(self.base + "/" + self.query, timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("the app did not start")

    def rss_mb(self) -> float:
        text = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024

    def call(self, path, body=None, data=None, headers=None, method=None, timeout=1800):
        if body is not None:
            data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {},
                                         method=method or ("POST" if data is not None
                                                           else "GET"))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except OSError as error:  # no answer in time, or the connection dropped
            return 0, str(error).encode()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def open_sessions(server: Server, temp: Path, count: int) -> dict:
    before, rss = folder_mb(temp), server.rss_mb()
    began = time.perf_counter()
    codes = [server.call("/api/session", data=b"")[0] for _ in range(count)]
    return {"opened": count, "ok": codes.count(200), "seconds": time.perf_counter() - began,
            "temp_mb_before": before, "temp_mb_after": folder_mb(temp),
            "rss_mb_before": rss, "rss_mb_after": server.rss_mb(),
            "page_still_served": server.call("/")[0] == 200}


def clients(server: Server, video: Path, truth: list[np.ndarray], count: int) -> dict:
    peak, stop = [server.rss_mb()], threading.Event()
    before = peak[0]

    def sample():
        while not stop.is_set():
            peak.append(server.rss_mb())
            time.sleep(0.2)

    results: list[dict] = [{} for _ in range(count)]
    threads = [threading.Thread(target=one_client, args=(server, video, truth, results[i]))
               for i in range(count)]
    sampler = threading.Thread(target=sample)
    sampler.start()
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    sampler.join()
    return {"count": count, "wall_seconds": time.perf_counter() - began,
            "rss_mb_before": before, "rss_mb_peak": max(peak),
            "rss_growth_mb": max(peak) - before, "each": results}


def one_client(server: Server, video: Path, truth: list[np.ndarray], out: dict) -> None:
    began = time.perf_counter()
    status, body = server.call("/api/session", data=b"")
    sid = json.loads(body)["session"]
    status, body = upload(server, sid, video)
    out["upload"] = status
    ys, xs = np.nonzero(truth[0])
    box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
    out["box"] = server.call(f"/api/{sid}/box", {"frame": 0, "object": 1, "box": box})[0]
    out["propagate"] = server.call(f"/api/{sid}/propagate", data=b"")[0]
    most_queued = 0
    while True:
        progress = json.loads(server.call(f"/api/{sid}/progress")[1])
        most_queued = max(most_queued, progress.get("queued", 0))
        if not progress["running"]:
            break
        time.sleep(0.3)
    out["queued_at_most"], out["error"] = most_queued, progress["error"]
    status, body = server.call(f"/api/{sid}/download/masks")
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        names = sorted(archive.namelist())
        masks = [np.array(Image.open(io.BytesIO(archive.read(n)))) for n in names]
    scores = [jaccard(m == 1, t) for m, t in zip(masks[1:], truth[1:])]
    out["mean_j"], out["seconds"] = float(np.mean(scores)), time.perf_counter() - began


def upload(server: Server, sid: str, path: Path, name: str | None = None):
    boundary = "lgdkloadboundary"
    data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename="
            f"\"{name or path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    return server.call(f"/api/{sid}/upload", data=data,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def bad_requests(server: Server) -> dict:
    """The abuse list (`scripts/app_abuse.py`, as the tests send it): each answer's status,
    whether it is a JSON error, and its seconds; then whether the page is still served."""
    sid = json.loads(server.call("/api/session", data=b"")[1])["session"]
    answers = {}
    for case in abuse_cases():
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        began = time.perf_counter()
        status, body = server.call(case.path.format(sid=sid), data=case.body,
                                   headers=headers, method=case.method, timeout=60)
        try:
            has_error = bool(json.loads(body).get("error"))
        except (ValueError, AttributeError):
            has_error = False
        answers[case.name] = {"status": status, "json_error": has_error,
                              "seconds": round(time.perf_counter() - began, 3)}
    answers["all 4xx with a JSON error within 5 s"] = all(
        400 <= a["status"] < 500 and a["json_error"] and a["seconds"] < 5
        for a in answers.values())
    answers["still serving"] = server.call("/")[0] == 200
    return answers


def token_check(server: Server) -> dict:
    return {"printed_url_has_token": "token=" in server.query,
            "page_without_token": server.call("/")[0],
            "session_without_token": server.call("/api/session", data=b"")[0],
            "page_with_token": server.call("/" + server.query)[0]}


def truth_masks(frames_dir: Path, count: int) -> list[np.ndarray]:
    annotations = frames_dir.parent.parent / "Annotations" / frames_dir.name
    return [np.array(Image.open(p)) > 0 for p in sorted(annotations.glob("*.png"))[:count]]


def write_mp4(path: Path, frames: list[Path], fps: int = 24) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        first = Image.open(frames[0])
        stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
        stream.options = {"crf": "18"}
        for f in frames:
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.open(f).convert("RGB")),
                                               format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / (1 << 20)


if __name__ == "__main__":
    main()
