"""`lgdk app`: the local web page."""

from __future__ import annotations

import dataclasses
import socket

from lgdk.app.limits import add_app_flags, settings_from_args
from lgdk.cli.common import (
    add_checkpoint_flag,
    add_device_flag,
    add_setting_flags,
    load_models_and_settings,
)
from lgdk.errors import UserError
from lgdk.runtime import limit_malloc_arenas


def add(sub) -> None:
    p = sub.add_parser("app", help="a local web page to cut objects out of a video")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: this computer only; any other "
                        "address requires the token)")
    p.add_argument("--token", default=None,
                   help="the secret every request must carry, in the printed URL (default: "
                        "none on the loopback address, a new random one on any other)")
    add_checkpoint_flag(p)
    add_device_flag(p)
    add_setting_flags(p)
    add_app_flags(p)
    p.set_defaults(onnx=None)  # the app runs PyTorch models


def run(args) -> int:
    app_settings = settings_from_args(args)  # bad limits fail before anything loads
    try:
        import uvicorn

        from lgdk.app.access import is_loopback, new_token
        from lgdk.app.server import create_app
    except ImportError:
        raise UserError("lgdk app needs FastAPI and uvicorn: pip install 'lgdk[app]'") from None
    from lgdk.infer.loading import resolve_device
    from lgdk.infer.tta import make_predictor

    token = args.token
    if token == "" or (token and not token.isprintable()):
        raise UserError("--token must be printable text; leave it out for a random one")
    if token is None and not is_loopback(args.host):
        token = new_token()
    if not args.system_malloc:
        limit_malloc_arenas(2)  # before the server's threads start
    device = resolve_device(args.device)
    models, settings = load_models_and_settings(args, device)
    app_settings = dataclasses.replace(app_settings, max_objects=settings.max_objects)
    app = create_app(lambda: make_predictor(models, settings, device), app_settings, token)
    shown = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"lgdk app: open {url} in a browser (Ctrl+C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
