"""The client portal (``/portal``): single sign-on, the server overview and self-service panels."""

from pathlib import Path

from vpsbridge.web.ui import add_template_dir

add_template_dir(Path(__file__).resolve().parent / "templates")

from vpsbridge.web.portal.routes import router  # noqa: E402 - templates are registered first

__all__ = ["router"]
