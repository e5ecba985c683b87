"""The routes of `lgdk app` (FastAPI). Every error a user can cause is a JSON
`{"error": message}` with status 400 (413 for a too-large upload); anything else is
logged here and answered with a short 500, never a stack trace."""

from __future__ import annotations

import logging
import shutil
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel

from lgdk.app.server import Sessions, check_colour, load_upload, mask_png, static_file
from lgdk.errors import UserError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


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


class TooLarge(UserError):
    pass


def info(sid: str, session) -> dict:
    height, width = session.size
    return {"session": sid, "frames": len(session.frames), "width": width, "height": height,
            "fps": session.fps, "objects": session.object_ids()}


def build(sessions: Sessions) -> FastAPI:
    """The app: its page, then the routes of a session's life (create, upload, prompt,
    propagate, download), each group added by its own function."""
    @asynccontextmanager
    async def lifespan(app):
        yield
        sessions.shutdown()

    app = FastAPI(title="lgdk", lifespan=lifespan, docs_url=None, redoc_url=None)
    add_error_handlers(app)
    add_page_routes(app)
    add_session_routes(app, sessions)
    add_prompt_routes(app, sessions)
    add_result_routes(app, sessions)
    return app


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return JSONResponse({"error": str(exc)}, status_code=413 if isinstance(
            exc, TooLarge) else 400)

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


def add_session_routes(app: FastAPI, sessions: Sessions) -> None:
    limit = sessions.settings.max_upload_mb << 20

    @app.post("/api/session")
    def new_session():
        sid, session = sessions.create()
        return info(sid, session)

    @app.post("/api/{sid}/close")  # navigator.sendBeacon when the page goes away
    def end_session(sid: str):
        sessions.close(sid)
        return {"closed": sid}

    @app.post("/api/{sid}/upload")
    async def upload(sid: str, file: Annotated[UploadFile, File()]):
        session = sessions.get(sid)
        folder = session.folder / "upload"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        target, size = folder / "upload.bin", 0
        with open(target, "wb") as out:
            while chunk := await file.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    out.close()
                    shutil.rmtree(folder, ignore_errors=True)
                    raise TooLarge(f"the upload is over {sessions.settings.max_upload_mb} "
                                   "MB, this app's limit; cut the video shorter")
                out.write(chunk)
        try:
            await run_in_threadpool(load_upload, session, target, file.filename or "")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return info(sid, session)

    @app.get("/api/{sid}/frame/{index}.jpg")
    def frame(sid: str, index: int):
        session = sessions.get(sid)
        session.frame(index)  # checks the index
        return FileResponse(session.frames[index], media_type="image/jpeg")

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
    def propagate(sid: str):
        sessions.get(sid).propagate()
        return {"started": True}

    @app.post("/api/{sid}/cancel")
    def cancel(sid: str):
        sessions.get(sid).cancel()
        return {"cancelling": True}

    @app.get("/api/{sid}/progress")
    def progress(sid: str):
        return vars(sessions.get(sid).progress)

    @app.get("/api/{sid}/download/{kind}")
    def download(sid: str, kind: str, background: str | None = None):
        session = sessions.get(sid)
        if session.progress.running:
            raise UserError("propagation is running: wait for it (or cancel) before "
                            "downloading")
        if kind == "masks":
            path = session.masks_zip()
        else:
            path = session.video(kind, check_colour(background))
        return FileResponse(path, filename=path.name)
