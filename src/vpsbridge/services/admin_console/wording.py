"""The console services' sentences: English templates with named fields, translated by the console.

This package is read only by the operator console, whose pages speak the operator's language. A
sentence built here with an f-string would reach the page as finished English that no catalogue
can match, so every sentence is kept as a template (``%(name)s`` fields, so a translation may put
the fields in its own order) plus its values, and the web layer translates the template before it
fills the fields. ``str()`` of a :class:`Wording` is the English sentence, for logs and tests.

Templates are marked with :func:`N_` where they are written; the console's catalogue tool collects
them from this package (``python -m vpsbridge.web.ui.extract admin``). Values stay as given: a
platform's own error text passed as a field is shown in the platform's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vpsbridge.services.errors import Conflict, Invalid, NotFound, UpstreamError


def N_(template: str) -> str:
    """Mark a template for the console's catalogue (the console translates it when it shows it)."""
    return template


def fill(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with its ``%(name)s`` fields filled (a template without values stays as it is)."""
    return template % dict(values) if values else template


@dataclass(frozen=True)
class Wording:
    """A sentence for an operator: its English template and the values of its fields."""

    template: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return fill(self.template, self.values)


class WordedInvalid(Invalid):
    """:class:`Invalid` whose sentence the console can translate (``wording``)."""

    def __init__(self, template: str, *, field: str | None = None, **values: Any) -> None:
        self.wording = Wording(template, values)
        super().__init__(str(self.wording), field=field)


class WordedConflict(Conflict):
    """:class:`Conflict` whose sentence the console can translate (``wording``)."""

    def __init__(self, template: str, *, details: dict[str, Any] | None = None, **values: Any) -> None:
        self.wording = Wording(template, values)
        super().__init__(str(self.wording), details=details)


class WordedNotFound(NotFound):
    """:class:`NotFound` whose sentence the console can translate (``wording``)."""

    def __init__(self, template: str, **values: Any) -> None:
        self.wording = Wording(template, values)
        super().__init__(str(self.wording))


class WordedUpstreamError(UpstreamError):
    """:class:`UpstreamError` whose sentence the console can translate; the platform's own reason
    travels as a field value and stays in the platform's words."""

    def __init__(self, template: str, **values: Any) -> None:
        self.wording = Wording(template, values)
        super().__init__(str(self.wording))


def wording_of(exc: BaseException) -> Wording | None:
    """The translatable sentence of an error raised by this package (``None`` for any other error)."""
    found = getattr(exc, "wording", None)
    return found if isinstance(found, Wording) else None
