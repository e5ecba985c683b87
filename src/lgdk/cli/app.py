"""`lgdk app`: the local web page."""

from __future__ import annotations

from lgdk.cli.common import add_setting_flags, load_models_and_settings
from lgdk.errors import UserError


def add(sub) -> None:
    p = sub.add_parser("app", help="a local web page to cut objects out of a video")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this computer only)")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="model checkpoint (default: the shipped model)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    add_setting_flags(p)
    p.add_argument("--max-upload-mb", type=int, default=500)
    p.add_argument("--max-frames", type=int, default=3000,
                   help="longest video (in frames) a page may load")
    p.add_argument("--session-minutes", type=float, default=60,
                   help="an idle page's video and results are removed after this long")
    p.set_defaults(onnx=None)  # the app runs PyTorch models


def run(args) -> int:
    try:
        import uvicorn

        from lgdk.app.server import AppSettings, create_app
    except ImportError:
        raise UserError("lgdk app needs FastAPI and uvicorn: pip install 'lgdk[app]'") from None
    from lgdk.infer.loading import resolve_device
    from lgdk.infer.tta import make_predictor

    if min(args.max_upload_mb, args.max_frames) < 1 or args.session_minutes <= 0:
        raise UserError("--max-upload-mb, --max-frames and --session-minutes must be positive")
    device = resolve_device(args.device)
    models, settings = load_models_and_settings(args, device)
    app = create_app(lambda: make_predictor(models, settings, device),
                     AppSettings(args.max_upload_mb, args.max_frames, args.session_minutes * 60))
    print(f"lgdk app: open http://{args.host}:{args.port} in a browser (Ctrl+C stops it)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
