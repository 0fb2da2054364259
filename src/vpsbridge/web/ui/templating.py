"""The Jinja2 environment and page rendering shared by the portal and the operator console.

One environment serves every UI template. Its loader searches the shared templates
(``web/ui/templates``: ``ui/base.html``, ``ui/macros.html``, ``ui/error.html``) and every directory
a UI package registers with :func:`add_template_dir` (the portal registers ``web/portal/templates``,
whose files live under ``portal/``). Autoescaping is always on, so anything a user or an upstream
API controls (hostnames, PTRs, OS names) is escaped wherever it is printed; ``|safe`` is not used
on such data.

:func:`render` builds the response of a page: it picks the language, creates the CSP nonce, exposes
the CSRF token of the signed-in session (``request.state.ui_session``, set by the area's sign-in
dependency) and sets the security headers - CSP, ``Cache-Control: no-store`` (pages show personal
data) and, unless told otherwise, a refusal to be framed.
"""

from __future__ import annotations

import datetime as dt
import gettext
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from markupsafe import Markup

from vpsbridge import __version__
from vpsbridge.logs import request_id_var
from vpsbridge.web.ui import i18n
from vpsbridge.web.ui.errors import UiError
from vpsbridge.web.ui.security import CSRF_FIELD, new_nonce, page_csp

UI_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR.parent / "static"
STATIC_URL = "/static"

_extra_dirs: list[Path] = []


def add_template_dir(path: Path) -> None:
    """Make the templates under ``path`` loadable (idempotent; call at import time of a UI package)."""
    resolved = path.resolve()
    if resolved not in _extra_dirs:
        _extra_dirs.append(resolved)
        environment.cache_clear()


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (rebuilt only when a template directory is added)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([TEMPLATE_DIR, *_extra_dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        enable_async=False,
    )
    env.filters.update(
        filesize=filesize,
        days_since=days_since,
        tojson_attr=tojson_attr,
        percent=percent,
    )
    env.globals.update(static=static_url, version=__version__, languages=i18n.LANGUAGES)
    return env


@lru_cache(maxsize=256)
def _asset_version(path: str) -> str:
    try:
        return str(int((STATIC_DIR / path).stat().st_mtime))
    except OSError:
        return __version__


def static_url(path: str) -> str:
    """URL of a file under ``web/static`` with a cache-busting version (file time of the asset)."""
    clean = path.lstrip("/")
    return f"{STATIC_URL}/{clean}?v={_asset_version(clean)}"


def filesize(value: float | int | None) -> str:
    """Bytes for people (binary units, as hosting panels show disk and traffic)."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


def days_since(value: dt.datetime | None, now: dt.datetime | None = None) -> int | None:
    if value is None:
        return None
    current = now or dt.datetime.now(dt.UTC)
    return max(0, (current - value).days)


def percent(used: float | int | None, total: float | int | None) -> int:
    if not used or not total:
        return 0
    return max(0, min(100, round(100 * float(used) / float(total))))


def tojson_attr(value: Any) -> str:
    """JSON for a ``data-*`` attribute (autoescaping then quotes it safely)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def language_of(request: Request) -> str:
    cached = getattr(request.state, "ui_lang", None)
    if isinstance(cached, str):
        return cached
    lang = i18n.pick_language(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))
    request.state.ui_lang = lang
    return lang


def translator(request: Request) -> gettext.NullTranslations:
    return i18n.translations(language_of(request))


def _(request: Request, message: str, **values: Any) -> str:
    """Translate a message in Python code (flash messages) and fill ``%(name)s`` placeholders."""
    text: str = translator(request).gettext(message)
    return text % values if values else text


def csrf_token_of(request: Request) -> str:
    session = getattr(request.state, "ui_session", None)
    token = getattr(session, "csrf_token", None)
    return str(token) if token else ""


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    connect_src: tuple[str, ...] = (),
    frame_ancestors: str = "'none'",
    form_action: tuple[str, ...] = (),
) -> HTMLResponse:
    """Render template ``name`` into a page response with the UI's security headers."""
    nonce = new_nonce()
    lang = language_of(request)
    trans = i18n.translations(lang)
    csrf = csrf_token_of(request)
    values: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "csp_nonce": nonce,
        "csrf_token": csrf,
        "csrf_field": Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, csrf),
        "session": getattr(request.state, "ui_session", None),
        "gettext": trans.gettext,
        "ngettext": trans.ngettext,
        "_": trans.gettext,
        # A word with two meanings gets a context: pgettext("hosting customer", "Client").
        "pgettext": trans.pgettext,
        "npgettext": trans.npgettext,
        "request_id": request_id_var.get(),
        "is_htmx": request.headers.get("hx-request") == "true",
    }
    if context:
        values.update(context)
    html = environment().get_template(name).render(values)
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = page_csp(
        nonce, connect_src=connect_src, frame_ancestors=frame_ancestors, form_action=form_action
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    # Same-origin requests keep their Origin header (forms, fetch); nothing leaks to other sites.
    response.headers["Referrer-Policy"] = "same-origin"
    if frame_ancestors == "'none'":
        response.headers["X-Frame-Options"] = "DENY"
    elif frame_ancestors == "'self'":
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


async def render_error(request: Request, error: UiError) -> Response:
    """The error page (full page, htmx fragment, or JSON envelope for ``fetch`` callers)."""
    lang = language_of(request)
    message = i18n.gettext_for(lang, error.message)
    if error.values:
        try:
            message = message % error.values
        except (KeyError, ValueError, TypeError):
            message = error.message % error.values
    action = i18n.gettext_for(lang, error.action) if error.action else None
    if wants_json(request):
        body = {
            "error": {
                "code": error.code,
                "message": message,
                "details": error.details or None,
                "action": action,
                "request_id": request_id_var.get(),
            }
        }
        headers = {**error.headers, "Cache-Control": "no-store"}
        return JSONResponse(body, status_code=error.status, headers=headers)
    template = "ui/error_fragment.html" if request.headers.get("hx-request") == "true" else "ui/error.html"
    return render(
        request,
        template,
        {"error": error, "message": message, "action": action},
        status=error.status,
        headers=error.headers,
    )
