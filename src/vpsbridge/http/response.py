"""The successful answer of an upstream request, detached from the HTTP library."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A 2xx answer (or a status the caller declared acceptable).

    ``data`` is the parsed JSON body (``None`` when the body is empty or JSON was not requested);
    ``text`` is the raw body, for the few APIs that answer in plain text.
    """

    status: int
    headers: dict[str, str]
    data: Any
    text: str
    url: str
    elapsed_ms: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())
