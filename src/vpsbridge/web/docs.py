"""The OpenAPI UI at ``/docs``, served entirely from this process.

Swagger UI comes from the ``swagger-ui-dist`` npm package, built into ``static/vendor/swagger-ui/`` by
the asset build and shipped in the wheel. FastAPI's default ``/docs`` loads it from a public CDN, which
leaks the operator's browsing to a third party and breaks on isolated networks, so it is disabled in
the app factory. When the built files are missing (a source checkout without the asset build) the page
says so with a 503 rather than silently falling back to a CDN.

The page's one inline script is allowed by a per-response CSP nonce, so the CSP needs neither
``'unsafe-inline'`` scripts nor any external origin.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER_DIR = STATIC_DIR / "vendor" / "swagger-ui"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
STATIC_URL = "/static"

router = APIRouter(include_in_schema=False)


def docs_csp(nonce: str) -> str:
    """Swagger UI needs inline styles and data: images; scripts only from here and the nonce."""
    return (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    )


def missing_assets(directory: Path | None = None) -> list[str]:
    """Names of the Swagger UI files not present (looked up at call time: the build can run later)."""
    where = directory if directory is not None else SWAGGER_DIR
    return [name for name in SWAGGER_FILES if not (where / name).is_file()]


@router.get("/docs")
async def swagger_ui(request: Request) -> Response:
    missing = missing_assets()
    if missing:
        return PlainTextResponse(
            "The API documentation page is unavailable: the Swagger UI assets were not built.\n"
            f"Missing in {SWAGGER_DIR}: {', '.join(missing)}.\n"
            "Run the front-end asset build (cd frontend && npm ci && npm run build), or install a "
            "built wheel of vpsbridge. The raw schema is still served at /openapi.json.\n",
            status_code=503,
        )
    openapi_url = request.app.openapi_url or "/openapi.json"
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - API",
        swagger_js_url=f"{STATIC_URL}/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_URL}/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_URL}/favicon.svg",
    )
    nonce = secrets.token_urlsafe(16)
    html = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
    html = html.replace("<script src=", f'<script nonce="{nonce}" src=')
    return HTMLResponse(html, headers={"Content-Security-Policy": docs_csp(nonce)})
