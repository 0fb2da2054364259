"""How WHMCS's ``includes/api.php`` wants its parameters, and how it answers lists.

WHMCS is PHP: it reads form fields through ``$_POST``, so arrays must be spelt ``pid[0]=1`` and
``pricing[1][monthly]=5.00``; ``true`` must arrive as ``1`` (PHP's ``(bool)"False"`` is true);
custom fields and configurable options are ``base64_encode(serialize($array))``. Answers wrap lists
(``{"products": {"product": [...]}}``), use strings for numbers and send ``""`` or a scalar where
a list is empty. These helpers are the whole translation, kept apart so they can be tested on their
own.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any


def scalar(value: Any) -> str:
    """One form value: booleans as ``1``/``0``, everything else as its string."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def php_form(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Flatten nested mappings/lists into PHP-style form pairs; ``None`` values are left out."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, scalar(value)))

    for key, value in params.items():
        if isinstance(value, (Mapping, list, tuple)):
            walk(str(key), value)
        elif value is not None:
            pairs.append((str(key), scalar(value)))
    return pairs


def php_serialize(value: Any) -> str:
    """PHP's ``serialize()`` for the types WHMCS expects (str, int, float, bool, None, lists, dicts).

    String lengths are in UTF-8 bytes, as PHP counts them.
    """
    if value is None:
        return "N;"
    if isinstance(value, bool):
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, float):
        return f"d:{value!r};"
    if isinstance(value, str):
        return f's:{len(value.encode())}:"{value}";'
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(enumerate(value))
    else:
        raise TypeError(f"cannot PHP-serialize {type(value).__name__}")
    body = "".join(php_serialize(_php_key(k)) + php_serialize(v) for k, v in items)
    return f"a:{len(items)}:{{{body}}}"


def _php_key(key: Any) -> int | str:
    """PHP turns numeric-string array keys into integers; do the same so WHMCS sees field ids."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    text = str(key)
    if text.isdigit() and (text == "0" or not text.startswith("0")):
        return int(text)
    return text


def serialized_b64(value: Mapping[Any, Any]) -> str:
    """``base64_encode(serialize($value))`` as ``UpdateClientProduct``'s ``customfields`` wants it."""
    return base64.b64encode(php_serialize(value).encode()).decode()


def unwrap_list(body: Any, outer: str, inner: str) -> list[dict[str, Any]]:
    """``body[outer][inner]`` as a list of dicts; missing, empty or scalar wrappers give ``[]``."""
    if not isinstance(body, Mapping):
        return []
    wrapper = body.get(outer)
    if not isinstance(wrapper, Mapping):
        return []
    items = wrapper.get(inner)
    if isinstance(items, Mapping):
        return [dict(items)]
    if not isinstance(items, list):
        return []
    return [dict(item) for item in items if isinstance(item, Mapping)]
