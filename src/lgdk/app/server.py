"""The HTTP side of `lgdk app`: one page (static/) and a small JSON API over the
`Sessions` of `lgdk.app.registry`.

Each page load creates its own session (several tabs or users never share a video). The
client names frames by number, never by path. Every error a user can cause is a JSON
`{"error": message}` with a 4xx status (413 for a body or upload over a limit, 503 when
every session is busy, 403 without the token); anything else is logged here and answered
with a short 500, never a stack trace. Each limit (`AppSettings`) is checked before the
work it bounds starts.
"""

from __future__ import annotations

import io
import logging
import shutil
from contextlib import asynccontextmanager
from importlib import resources

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from PIL import Image
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lgdk.app.access import TokenGate
from lgdk.app.bodies import BodyLimit
from lgdk.app.limits import AppSettings, DiskFull
from lgdk.app.registry import AppBusy, Sessions
from lgdk.app.uploads import TooLarge, load_upload, receive_upload
from lgdk.errors import UserError
from lgdk.infer.doubt import worst_frames
from lgdk.video.cutout import parse_colour
from lgdk.video.report import WORST
from lgdk.video.sinks import overlay

log = logging.getLogger(__name__)
STATUS = {TooLarge: 413, DiskFull: 413, AppBusy: 503}  # other user errors: 400


class BoxIn(BaseModel):
    frame: int
    object: int
    box: tuple[float, float, float, float]


class ClickIn(BaseModel):
    frame: int
    object: int
    x: float
    y: float
    positive: bool = True


class PaintIn(BaseModel):
    frame: int
    object: int
    points: list[tuple[float, float]]
    radius: float = 8.0
    erase: bool = False


class FrameIn(BaseModel):
    frame: int


def create_app(make_predictor, settings: AppSettings | None = None,
               token: str | None = None) -> FastAPI:
    """The app: its page, then the routes of a session's life (create, upload, prompt,
    propagate, download), each group added by its own function. With a `token`, every
    request must carry it (`lgdk.app.access`)."""
    settings = settings or AppSettings()
    sessions = Sessions(make_predictor, settings)

    @asynccontextmanager
    async def lifespan(app):
        yield
        sessions.shutdown()

    app = FastAPI(title="lgdk", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sessions = sessions
    app.add_middleware(BodyLimit, limit=settings.max_body_kb << 10)
    if token:  # added last, so checked first: no body is read without the token
        app.add_middleware(TokenGate, token=token)
    add_error_handlers(app)
    add_page_routes(app)
    add_session_routes(app, sessions)
    add_prompt_routes(app, sessions)
    add_result_routes(app, sessions)
    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: "
                             f"{e.get('msg', 'invalid')}" for e in exc.errors()[:3])
        return JSONResponse({"error": f"the request is not what this app expects "
                             f"({problems})"}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        """FastAPI's own refusals (no such route, a body it cannot parse) as our errors."""
        text = {404: f"no such page or API call: {request.method} {request.url.path}",
                405: f"{request.method} is not how {request.url.path} is called"}.get(
            exc.status_code, str(exc.detail))
        return JSONResponse({"error": text}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.exception("lgdk app: %s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); the server "
                             "keeps running, see its log"}, status_code=500)


def add_page_routes(app: FastAPI) -> None:
    @app.get("/", response_class=HTMLResponse)
    def page():
        return HTMLResponse(static_file("index.html"))

    @app.get("/favicon.ico")
    def favicon():
        return Response(status_code=204)

    @app.get("/app.js")
    def script():
        return Response(static_file("app.js"), media_type="text/javascript")


def info(sid: str, session) -> dict:
    height, width = session.size
    return {"session": sid, "frames": len(session.frames), "width": width, "height": height,
            "fps": session.fps, "objects": session.object_ids(),
            "video": session.store.version}  # in frame URLs: a new video, new URLs


def add_session_routes(app: FastAPI, sessions: Sessions) -> None:
    @app.post("/api/session")
    def new_session():
        sid, session = sessions.create()
        return info(sid, session)

    @app.post("/api/{sid}/close")  # navigator.sendBeacon when the page goes away
    def end_session(sid: str):
        sessions.close(sid)
        return {"closed": sid}

    @app.post("/api/{sid}/upload")
    async def upload(sid: str, request: Request):
        session = sessions.get(sid)
        folder = session.folder / "upload"
        target, name = await receive_upload(request, folder, sessions.settings, sessions.disk)
        try:
            await run_in_threadpool(load_upload, session, target, name)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return info(sid, session)

    @app.get("/api/{sid}/frame/{index}.jpg")
    def frame(sid: str, index: int):
        session = sessions.get(sid)
        session.frame(index)  # checks the index
        return FileResponse(session.frames[index], media_type="image/jpeg",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/api/{sid}/mask/{index}.png")
    def mask(sid: str, index: int):
        session = sessions.get(sid)
        return Response(mask_png(session.labels(index), session.size), media_type="image/png",
                        headers={"Cache-Control": "no-store"})


def add_prompt_routes(app: FastAPI, sessions: Sessions) -> None:
    @app.post("/api/{sid}/object")
    def new_object(sid: str):
        return {"object": sessions.get(sid).new_object_id()}

    @app.post("/api/{sid}/box")
    def box(sid: str, body: BoxIn):
        session = sessions.get(sid)
        session.box(body.frame, body.object, body.box)
        return info(sid, session)

    @app.post("/api/{sid}/click")
    def click(sid: str, body: ClickIn):
        session = sessions.get(sid)
        session.click(body.frame, body.object, body.x, body.y, body.positive)
        return info(sid, session)

    @app.post("/api/{sid}/paint")
    def paint(sid: str, body: PaintIn):
        session = sessions.get(sid)
        session.paint(body.frame, body.object, body.points, body.radius, body.erase)
        return info(sid, session)

    @app.post("/api/{sid}/clear")
    def clear(sid: str, body: FrameIn):
        session = sessions.get(sid)
        session.clear(body.frame)
        return info(sid, session)


def add_result_routes(app: FastAPI, sessions: Sessions) -> None:
    @app.post("/api/{sid}/propagate")
    def propagate(sid: str, direction: str | None = None):
        sessions.get(sid).propagate(direction)
        return {"started": True}

    @app.post("/api/{sid}/cancel")
    def cancel(sid: str):
        sessions.get(sid).cancel()
        return {"cancelling": True}

    @app.get("/api/{sid}/progress")
    def progress(sid: str):
        return sessions.get(sid).status()

    @app.get("/api/{sid}/doubt")  # where to correct next: the strip under the timeline
    def doubt(sid: str):
        doubts = sessions.get(sid).doubts()
        return {"frames": [d.to_dict() for d in doubts],
                "worst": [d.frame for d in worst_frames(doubts, WORST)]}

    @app.get("/api/{sid}/download/{kind}")
    def download(sid: str, kind: str, background: str | None = None):
        session = sessions.get(sid)
        if session.progress.running:
            raise UserError("propagation is running: wait for it (or cancel) before "
                            "downloading")
        if kind == "masks":
            path = session.masks_zip()
        else:
            path = session.video(kind, parse_colour(background) if background else None)
        return FileResponse(path, filename=path.name)


def mask_png(labels: np.ndarray | None, size: tuple[int, int]) -> bytes:
    """The mask as a colour layer (RGBA PNG) for the page's canvas: each object in its
    DAVIS colour (brightened), half transparent inside, opaque along its outline."""
    if labels is None:
        labels = np.zeros(size, np.uint8)
    colours = overlay(np.zeros((*labels.shape, 3), np.uint8), labels, alpha=1.0)
    colours = np.minimum(colours.astype(np.int32) * 2, 255).astype(np.uint8)
    edge = np.zeros(labels.shape, bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, 1:] != labels[:, :-1]
    alpha = np.where(labels > 0, np.where(edge, 255, 120), 0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([colours, alpha])).save(buffer, format="PNG")
    return buffer.getvalue()


def static_file(name: str) -> bytes:
    return (resources.files("lgdk") / "app" / "static" / name).read_bytes()
