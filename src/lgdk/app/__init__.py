"""`lgdk app`: a local web page to cut objects out of a video (session logic in
`session`, the HTTP server in `server`, the page in `static/`)."""
