"""Turning caller input into validated models, with errors that name the field.

Services accept either their pydantic input model (the web layer already parsed the body) or a plain
mapping (CLI, billing bridge, demo seeding). Either way a bad value becomes one :class:`Invalid`
whose ``field`` is the dotted path of the first offending input, so every front end can point at it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vpsbridge.services.errors import Invalid

T = TypeVar("T", bound=BaseModel)


def parse_input(model: type[T], data: T | Mapping[str, Any]) -> T:
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]} for err in exc.errors()
        ]
        raise Invalid(
            f"{field}: {message}" if field else message, field=field, details={"errors": problems}
        ) from None


def changes(model: BaseModel) -> dict[str, Any]:
    """The fields a caller explicitly set on an update model."""
    return model.model_dump(exclude_unset=True)
