"""The "New service" page: provision a VPS for a client from the console, without a billing system.

GET lists the enabled products with their live stock; choosing one (``?product=<id>``, a plain link,
so the page works without JavaScript) shows the form with that product's operating systems. The POST
goes through :func:`~vpsbridge.services.admin_console.provision.create_from_console`, which calls the
same ``create_service`` as the billing bridge, the JSON API and the CLI, with the operator as the
audited actor, and then redirects to the new service's page where its deploy job can be followed.

Each rendering of the form carries a one-time key: a second POST of the same form (a double click, a
reload of the answer) does not create a second server but leads to the service the first one made.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import Response

from vpsbridge.services.admin_console import provision
from vpsbridge.services.errors import Invalid, ServiceError
from vpsbridge.web.admin.deps import PREFIX, Operator, Signed, int_param, see_other
from vpsbridge.web.admin.forms import integer, lines, text
from vpsbridge.web.admin.wording import AdminRoute, error_text
from vpsbridge.web.deps import get_ctx
from vpsbridge.web.ui import UiError, _, render

router = APIRouter(route_class=AdminRoute, include_in_schema=False)

PATH = f"{PREFIX}/services/new"
#: How long a submitted form's key is remembered (and leads to the service it created).
FORM_KEY_SECONDS = 3600.0
FIELDS = ("client_id", "client_name", "client_email", "hostname", "os", "ssh_keys")


def _guard_key(form_key: str) -> str:
    return f"admin:new-service:{form_key}"


def _done_key(form_key: str) -> str:
    return f"admin:new-service:done:{form_key}"


async def _page(
    request: Request,
    operator: Operator,
    product_id: int | None,
    *,
    values: dict[str, str] | None = None,
    error: ServiceError | None = None,
    status: int = 200,
) -> Response:
    """The page: product list, and the form for ``product_id`` unless it is out of stock.

    ``values`` (a refused POST) keep the form on the page even for a product that has just run out,
    so nothing typed is lost while the operator frees capacity.
    """
    ctx = get_ctx(request)
    choices = await provision.product_choices(ctx)
    chosen = next((c for c in choices if c.id == product_id), None)
    gallery: dict[str, list[provision.OsChoice]] = {}
    gallery_error: str | None = None
    if chosen is not None and (values or not chosen.out_of_stock):
        try:
            gallery = await provision.product_gallery(ctx, chosen.id)
        except ServiceError as exc:
            gallery_error = error_text(request, exc)
    return render(
        request,
        "admin/new_service.html",
        {
            "op": operator,
            "nav": "services",
            "choices": choices,
            "chosen": chosen,
            "gallery": gallery,
            "gallery_error": gallery_error,
            "values": values or {},
            "error": error,
            "error_message": error_text(request, error) if error is not None else None,
            "error_field": getattr(error, "field", None),
            "error_service": (error.details.get("service_id") if error is not None else None),
            "form_key": secrets.token_urlsafe(18),
            "numeric_types": provision.NUMERIC_CLIENT_IDS,
        },
        status=status,
    )


@router.get("/services/new")
async def new_service_page(request: Request, operator: Signed) -> Response:
    return await _page(request, operator, int_param(request, "product"))


@router.post("/services/new")
async def new_service_create(request: Request, operator: Signed) -> Response:
    ctx = get_ctx(request)
    form = await request.form()
    values = {name: text(form, name) for name in FIELDS}
    try:
        product_id = integer(form, "product")
    except Invalid:
        product_id = None
    form_key = text(form, "form_key")
    if product_id is None or not form_key or len(form_key) > 64:
        raise UiError(422, "The form is incomplete; open the New service page again.", code="invalid")

    if not await ctx.cache.debounce(_guard_key(form_key), FORM_KEY_SECONDS):
        created = await ctx.cache.get(_done_key(form_key))
        if isinstance(created, int) and created > 0:
            return see_other(
                f"{PREFIX}/services/{created}",
                flash=_(request, "This form was already sent; this is the service it created."),
            )
        if created == 0:
            raise UiError(
                409,
                "This form was already sent and refused; open the New service page again.",
                code="conflict",
            )
        raise UiError(
            409,
            "This form is being sent already; look for the new service in the services list.",
            code="conflict",
        )

    wanted = provision.NewService(
        product_id=product_id,
        client_id=values["client_id"],
        client_name=values["client_name"],
        client_email=values["client_email"],
        hostname=values["hostname"],
        os_template=values["os"] or None,
        ssh_keys=tuple(lines(form, "ssh_keys")),
    )
    try:
        out = await provision.create_from_console(ctx, wanted, operator.actor)
    except ServiceError as exc:
        # The answer is the form again, with a new key: the corrected form can be sent, this one not.
        await ctx.cache.set(_done_key(form_key), 0, FORM_KEY_SECONDS)
        return await _page(request, operator, product_id, values=values, error=exc, status=exc.http_status)
    await ctx.cache.set(_done_key(form_key), out.id, FORM_KEY_SECONDS)
    return see_other(
        f"{PREFIX}/services/{out.id}",
        flash=_(request, "Service created; the platform accepted the server and its deploy job is queued."),
        job=out.job_id,
    )
