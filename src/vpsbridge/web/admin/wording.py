"""The console's sentences in the operator's language: service wordings, errors, states, route class.

The console services (:mod:`vpsbridge.services.admin_console`) hand over sentences as
:class:`~vpsbridge.services.admin_console.wording.Wording` (an English template and its values) and
raise errors that carry one. This module translates them for a request: the template first, then
the fields, so a German sentence keeps its own word order. A field named ``status`` holds a state
key (``running``, ``failed`` ...) and ``label`` a form label; both are shown in the page's words.

:class:`AdminRoute` is the route class of every console page: a service error with a wording becomes
an error page in the operator's language; everything else is left to the shared
:class:`~vpsbridge.web.ui.UiRoute`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from vpsbridge.services.admin_console.wording import Wording, wording_of
from vpsbridge.services.errors import ServiceError
from vpsbridge.web.ui import UiError, UiRoute
from vpsbridge.web.ui.templating import translator

#: The gettext context of state words (badges and ``status`` fields): "running" as a server state
#: is not the same entry as any other "running" in the merged catalogue.
STATE_CONTEXT = "state"
#: The context of the power actions' names on buttons and in messages.
POWER_CONTEXT = "power action"


def state_word(request: Request, key: str) -> str:
    """A state key (``active``, ``succeeded`` ...) in the page's language; unknown keys as they are."""
    return translator(request).pgettext(STATE_CONTEXT, key)


def power_word(request: Request, action: str) -> str:
    """A power action's name (``restart`` ...) in the page's language."""
    return translator(request).pgettext(POWER_CONTEXT, action)


def _value(request: Request, name: str, value: Any) -> Any:
    if isinstance(value, str) and name == "status":
        return state_word(request, value)
    if isinstance(value, str) and name == "label":
        return translator(request).gettext(value)
    return value


def _values(request: Request, values: Mapping[str, Any]) -> dict[str, Any]:
    """Field values for the page: ``status`` is a state key and ``label`` a catalogued label (both
    shown in the page's words); every other value is shown as it is (names, ids, a platform's text)."""
    return {name: _value(request, name, value) for name, value in values.items()}


def say(request: Request, wording: Wording) -> str:
    """A console service's sentence in the page's language (its fields filled after translation)."""
    text = translator(request).gettext(wording.template)
    if not wording.values:
        return text
    values = _values(request, wording.values)
    try:
        return text % values
    except (KeyError, ValueError, TypeError):
        # A translation that lost a field must not break the page: the English sentence instead.
        return wording.template % values


def error_text(request: Request, exc: ServiceError) -> str:
    """The sentence of a service error for the page: its wording translated, else its message
    (translated when the catalogue knows it, as a fixed sentence of another service may be)."""
    wording = wording_of(exc)
    if wording is not None:
        return say(request, wording)
    return translator(request).gettext(exc.message)


class _WordedErrors(APIRoute):
    """Turns a service error that carries a wording into a :class:`UiError` the error page translates."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                wording = wording_of(exc)
                if wording is None:
                    raise
                raise UiError(
                    exc.http_status,
                    wording.template,
                    code=exc.code,
                    details=exc.details,
                    values=_values(request, wording.values),
                ) from exc

        return wrapped


class AdminRoute(UiRoute, _WordedErrors):
    """The console's route class: worded service errors in the operator's language, then the shared
    HTML error pages (``UiRoute`` wraps ``_WordedErrors``, which wraps the endpoint)."""
