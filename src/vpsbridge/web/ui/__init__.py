"""Shared web-UI infrastructure of the client portal and the operator console.

What an area (``web/portal``, ``web/admin``) uses:

* :func:`render` / :func:`add_template_dir` - the Jinja2 environment, ``ui/base.html`` layout and
  ``ui/macros.html`` (``templating``);
* :class:`UiRoute` / :class:`UiError` - HTML error pages for the area's routes (``errors``);
* :func:`session_guard`, :func:`start_session`, :func:`end_session`, :func:`current_session` -
  cookie sessions on the ``sessions`` table with CSRF and same-origin checks (``sessions``);
* :func:`enforce_rate_limit` / :class:`RateLimit`, :func:`require_same_origin`, :func:`page_csp`
  (``security``); translations in ``i18n``.
"""

from vpsbridge.web.ui.errors import UiError, UiRoute
from vpsbridge.web.ui.security import (
    RateLimit,
    enforce_rate_limit,
    page_csp,
    require_csrf,
    require_same_origin,
)
from vpsbridge.web.ui.sessions import (
    cookie_name,
    current_session,
    end_session,
    session_guard,
    start_session,
)
from vpsbridge.web.ui.templating import _, add_template_dir, language_of, render, render_error, static_url

__all__ = [
    "RateLimit",
    "UiError",
    "UiRoute",
    "_",
    "add_template_dir",
    "cookie_name",
    "current_session",
    "end_session",
    "enforce_rate_limit",
    "language_of",
    "page_csp",
    "render",
    "render_error",
    "require_csrf",
    "require_same_origin",
    "session_guard",
    "start_session",
    "static_url",
]
