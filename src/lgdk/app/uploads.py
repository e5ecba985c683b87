"""Uploads to `lgdk app`: the request's file streamed straight into the session's folder,
refused before anything is stored when its announced size passes the upload limit or the
disk budget (and as it arrives, when its size was not announced); then loaded as a video
or a zip of frames."""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from pathlib import Path

from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from lgdk.app.limits import AppSettings, DiskBudget
from lgdk.app.session import Session
from lgdk.data.layouts import natural_key
from lgdk.errors import UserError
from lgdk.video.video_io import VIDEO_EXTS, VideoError, open_frames

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
RECHECK = 16 << 20  # bytes of an unannounced upload between two disk checks
DRAIN_LIMIT = 4 << 30  # of a refused upload, read (and dropped) at most this much
HEADER_LIMIT = 16 << 10  # bytes of one form part's headers


class TooLarge(UserError):
    pass


class Receiver:
    """Writes the multipart form's `file` part to `target` as python-multipart parses it;
    a form of more than `max_parts` parts, or a part's headers over HEADER_LIMIT bytes, is
    refused as it arrives."""

    def __init__(self, target: Path, limit_mb: int, disk: DiskBudget, announced: int,
                 max_parts: int) -> None:
        self.target, self.limit_mb, self.disk = target, limit_mb, disk
        self.max_parts, self.parts, self.header_bytes = max_parts, 0, 0
        self.size, self.checked = 0, max(announced, 0)
        self.name: str | None = None
        self.out = None
        self.header: list[bytes] = [b"", b""]
        self.headers: dict[bytes, bytes] = {}
        self.parser = None

    def start(self, boundary: bytes) -> None:
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._part_begin, "on_header_field": self._field,
            "on_header_value": self._value, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done, "on_part_data": self._data,
            "on_part_end": self._part_end})

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise TooLarge(f"the upload's form has over {self.max_parts} parts, this app's "
                           "limit (--max-upload-parts); send the video as the one field "
                           "'file'")
        self.headers, self.header = {}, [b"", b""]
        self.header_bytes = 0

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header[0] += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header[1] += data[start:end]

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > HEADER_LIMIT:
            raise TooLarge(f"a part of the upload's form has over {HEADER_LIMIT >> 10} KB of "
                           "headers; send the video as a plain form field 'file'")

    def _header_end(self) -> None:
        self.headers[self.header[0].lower()] = self.header[1]
        self.header = [b"", b""]

    def _headers_done(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        if options.get(b"name") == b"file" and self.out is None and self.name is None:
            self.name = options.get(b"filename", b"").decode("utf-8", "replace")
            self.out = open(self.target, "wb")  # noqa: SIM115 - closed at the part's end

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.out is None:
            return  # another form field
        self.size += end - start
        if self.size > self.limit_mb << 20:
            raise too_large(self.limit_mb)
        if self.size > self.checked:  # more than was announced and checked
            ahead = min(RECHECK, (self.limit_mb << 20) - self.size)
            self.disk.check(ahead)
            self.checked = self.size + ahead
        self.out.write(data[start:end])

    def _part_end(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None

    def close(self) -> None:
        self._part_end()


def too_large(limit_mb: int) -> TooLarge:
    return TooLarge(f"the upload is over {limit_mb} MB, this app's limit; cut the video "
                    "shorter (or start the app with a larger --max-upload-mb)")


async def receive_upload(request, folder: Path, settings: AppSettings,
                         disk: DiskBudget) -> tuple[Path, str]:
    """Stream the request's form field `file` to folder/upload.bin; (path, client's name).
    On any error nothing stays in `folder`, and the rest of the request is read and
    dropped, so that the client (a browser still sending) gets the error."""
    chunks = request.stream().__aiter__()
    try:
        return await _receive(request, chunks, folder, settings, disk)
    except UserError:
        await _drain(chunks)
        raise


async def _receive(request, chunks, folder: Path, settings: AppSettings, disk: DiskBudget):
    limit_mb = settings.max_upload_mb
    try:
        announced = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise UserError("the upload's Content-Length is not a number") from None
    if announced > (limit_mb << 20) + (64 << 10):  # the form's own bytes besides the file
        raise too_large(limit_mb)
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UserError("send the video as the form field 'file' (multipart/form-data)")
    disk.check(announced)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    receiver = Receiver(folder / "upload.bin", limit_mb, disk, announced,
                        settings.max_upload_parts)
    try:
        receiver.start(options[b"boundary"])
        try:
            async for chunk in chunks:
                receiver.parser.write(chunk)
            receiver.parser.finalize()
        except FormParserError as exc:
            raise UserError(f"the upload is not a well-formed multipart form ({exc}); send "
                            "the video as the form field 'file' of multipart/form-data"
                            ) from None
        receiver.close()
        if receiver.name is None:
            raise UserError("the upload has no file: send it as the form field 'file'")
    except BaseException:
        receiver.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return receiver.target, receiver.name


async def _drain(chunks) -> None:
    """Read what the client still sends, storing nothing, up to DRAIN_LIMIT bytes."""
    read = 0
    try:
        async for chunk in chunks:
            read += len(chunk)
            if read > DRAIN_LIMIT:
                break
    except Exception:  # the client went away: nothing left to answer
        pass


def load_upload(session: Session, upload: Path, name: str) -> None:
    """A video file, or a zip of frames (image files, any folders inside ignored). Errors
    name the client's file, not the server's folders."""
    try:
        _load_upload(session, upload, name)
    except VideoError as exc:
        text = re.sub(r"\S*upload-\d+(\.\w+)?", name, str(exc))
        raise VideoError(text.replace(str(session.folder), "the upload")) from None


def _load_upload(session: Session, upload: Path, name: str) -> None:
    """The file (or the zip's frames) goes to the session's source/ folder, where it stays
    as the video the model reads."""
    suffix = Path(name).suffix.lower()
    if suffix != ".zip" and suffix not in VIDEO_EXTS:
        raise VideoError(f"{name}: give a video ({', '.join(VIDEO_EXTS)}) or a zip of frames")
    (session.folder / "source").mkdir(parents=True, exist_ok=True)
    target = session.folder / "source" / f"upload-{time.monotonic_ns()}{suffix}"
    try:
        if suffix == ".zip":
            target = _unzip(upload, name, session.disk, target.with_suffix(""))
        else:
            upload.rename(target)
        session.load_source(open_frames(target))
    except BaseException:
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(
            missing_ok=True)
        raise


def _unzip(upload: Path, name: str, disk: DiskBudget | None, folder: Path) -> Path:
    """The zip's image files into `folder`, named by their natural order."""
    folder.mkdir()
    try:
        with zipfile.ZipFile(upload) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()
                       and Path(m.filename).suffix.lower() in IMAGE_EXTS]
            if not members:
                raise VideoError(f"{name} holds no frames ({', '.join(IMAGE_EXTS)})")
            unpacked = sum(m.file_size for m in members)
            if unpacked > 4 * upload.stat().st_size + (64 << 20):
                raise VideoError(f"{name} unpacks to far more than its size; give the "
                                 "frames as a plain zip of images")
            if disk is not None:
                disk.check(unpacked, f"unpacking {name}")
            for i, member in enumerate(sorted(members, key=lambda m: natural_key(
                    Path(m.filename)))):  # only the name's last part is used
                target = folder / f"{i:05d}{Path(member.filename).suffix.lower()}"
                target.write_bytes(archive.read(member))
    except zipfile.BadZipFile:
        raise VideoError(f"{name} is not a readable zip file") from None
    return folder
