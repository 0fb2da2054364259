"""Bridge request handlers: what each WHMCS module function, hook and client action does here.

The PHP module is deliberately dumb: it strips the ``model`` object from WHMCS's ``$params``, adds a
few facts only WHMCS's database knows (the product row, an order's services, the cart), signs the
JSON and forwards it. Everything that decides anything happens here, then the answer goes back in a
shape the PHP maps one-to-one onto WHMCS's return conventions:

* lifecycle functions answer ``{"ok": true, "message": ...}`` or fail with the error envelope,
  whose message WHMCS shows to staff (and to clients for ChangePassword);
* hooks answer data the PHP writes into WHMCS (stock quantities, an order to accept, checkout errors);
* every call that names a product upserts that product from the module settings it carries.

Lifecycle calls go through :mod:`.idempotency`, so a WHMCS retry of a call that already succeeded
replays the first answer instead of acting twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vpsbridge import __version__
from vpsbridge.billing.whmcs import credit, idempotency, lifecycle, report
from vpsbridge.billing.whmcs.options import MODULE_SETTINGS, merge_into, parse_module_settings
from vpsbridge.logs import get_logger
from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import Conflict, Invalid, NotFound
from vpsbridge.services.products import get_product_by_billing_id, upsert_product_from_billing

if TYPE_CHECKING:
    from vpsbridge.services.context import AppContext

log = get_logger(__name__)

#: Importing the bridge registers the listeners that report job outcomes back to WHMCS.
report.register()
credit.register()

#: The custom fields the module creates on every product and reads at CreateAccount.
OS_FIELD = "Initial Operating System"
SSH_KEY_FIELD = "Initial SSH Key"


def _norm(name: str) -> str:
    """Custom-field names compared without display part, case and spaces ("Initial SSH Key|Key")."""
    return "".join(name.split("|", 1)[0].split()).casefold()


@dataclass
class BridgeCall:
    """One signed request from the PHP bridge."""

    kind: str
    name: str
    params: dict[str, Any]
    #: The ``tblproducts`` row the PHP read for this call: id, name, stockcontrol, qty.
    product: dict[str, Any]
    #: Call-specific facts (an order's services, the cart, the client-area request ...).
    extra: dict[str, Any]
    ip: str | None = None
    actor: Actor = field(init=False)

    def __post_init__(self) -> None:
        self.actor = Actor(type="bridge", id="whmcs", ip=self.ip)

    @classmethod
    def from_payload(cls, kind: str, name: str, payload: Mapping[str, Any], *, ip: str | None) -> BridgeCall:
        def obj(key: str) -> dict[str, Any]:
            value = payload.get(key)
            return dict(value) if isinstance(value, Mapping) else {}

        return cls(
            kind=kind, name=name, params=obj("params"), product=obj("product"), extra=obj("extra"), ip=ip
        )

    # --- what the params say ----------------------------------------------------------------------

    @property
    def service_id(self) -> str:
        value = self.params.get("serviceid") or self.params.get("accountid")
        if not value:
            raise Invalid("the call carries no service id (serviceid)")
        return str(value)

    @property
    def client_id(self) -> str:
        value = self.params.get("userid") or self.params.get("clientid")
        if not value:
            raise Invalid("the call carries no client id (userid)")
        return str(value)

    @property
    def product_id(self) -> str | None:
        value = self.params.get("pid") or self.params.get("packageid") or self.product.get("id")
        return str(value) if value else None

    def custom_field(self, name: str) -> str:
        fields = self.params.get("customfields")
        if not isinstance(fields, Mapping):
            return ""
        wanted = _norm(name)
        for key, value in fields.items():
            if _norm(str(key)) == wanted:
                return "" if value is None else str(value).strip()
        return ""

    def config_options(self) -> dict[str, Any]:
        options = self.params.get("configoptions")
        return dict(options) if isinstance(options, Mapping) else {}

    def client_details(self) -> dict[str, str]:
        details = self.params.get("clientsdetails")
        if not isinstance(details, Mapping):
            return {"name": "", "email": ""}
        name = " ".join(str(details.get(k) or "").strip() for k in ("firstname", "lastname")).strip()
        return {
            "name": name or str(details.get("companyname") or ""),
            "email": str(details.get("email") or ""),
        }


Handler = Callable[["AppContext", BridgeCall], Awaitable[dict[str, Any]]]
_MODULE: dict[str, Handler] = {}
_HOOK: dict[str, Handler] = {}
_CLIENT: dict[str, Handler] = {}


def _module(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _MODULE[name] = fn
        return fn

    return register


def _hook(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HOOK[name] = fn
        return fn

    return register


def _client(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _CLIENT[name] = fn
        return fn

    return register


async def handle(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Run the handler for ``call``; unknown names are a readable 404."""
    table = {"module": _MODULE, "hook": _HOOK, "client": _CLIENT}[call.kind]
    handler = table.get(call.name)
    if handler is None:
        raise NotFound(f"this vpsbridge does not know the {call.kind} call {call.name!r}; upgrade one side")
    return await handler(ctx, call)


# --- products ---------------------------------------------------------------------------------------


async def sync_product(ctx: AppContext, call: BridgeCall) -> str:
    """Upsert the call's product from its module settings; returns its billing id (for ``billing:``)."""
    pid = call.product_id
    if pid is None:
        raise Invalid("the call carries no product id (pid)")
    settings = parse_module_settings(call.params)
    name = str(call.product.get("name") or f"WHMCS product {pid}")
    stock_control = str(call.product.get("stockcontrol") or "0") in ("1", "on", "true")
    fields = settings.product_fields(name=name, stock_control=stock_control)
    fields = merge_into(await get_product_by_billing_id(ctx, pid), fields)
    await upsert_product_from_billing(ctx, pid, fields, call.actor)
    return pid


async def _once(
    ctx: AppContext,
    call: BridgeCall,
    operation: str,
    material: Any,
    action: Callable[[], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    try:
        answer, replayed = await idempotency.run_once(
            ctx.cache,
            f"whmcs:{call.service_id}",
            operation,
            material,
            action,
            succeeded=lambda a: bool(a.get("ok")),
        )
    except idempotency.OperationBusy as exc:
        raise Conflict(str(exc)) from None
    if replayed:
        log.info("bridge_replayed", operation=operation, service=call.service_id)
        return {**answer, "replayed": True}
    return answer


# --- module functions -------------------------------------------------------------------------------


@_module("TestConnection")
async def test_connection(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Reaching this handler proves URL, TLS and the shared secret; list what the service can serve."""
    platforms = await lifecycle.platform_choices(ctx)
    if not platforms:
        return {
            "ok": False,
            "error": "connected, but vpsbridge has no platform yet: add one with `vpsbridge platform add`",
        }
    return {"ok": True, "version": __version__, "platforms": platforms}


@_module("ConfigOptions")
async def config_options(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Choices for the product's module settings, loaded from the platforms vpsbridge knows."""
    platform = (
        str(call.params.get("configoption1") or call.extra.get("platform") or "").split("|", 1)[0].strip()
    )
    return {
        "ok": True,
        "settings": [{"position": p, "key": k, "label": label} for p, k, label in MODULE_SETTINGS],
        "platforms": await lifecycle.platform_choices(ctx),
        **(await lifecycle.placement_choices(ctx, platform) if platform else {"groups": {}, "packages": {}}),
    }


@_module("CreateAccount")
async def create_account(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Record the service, reserve its addresses, have the platform accept the create; build later."""
    service_id, client_id = call.service_id, call.client_id
    product = await sync_product(ctx, call)
    os_template = call.custom_field(OS_FIELD)
    if not os_template:
        raise Invalid(
            f"no operating system was chosen for service {service_id}: fill the custom field "
            f"'{OS_FIELD}' (the order form's OS gallery does this) and run Create again",
            field=OS_FIELD,
        )
    ssh_key = call.custom_field(SSH_KEY_FIELD)
    request = {
        "billing_service_id": service_id,
        "client_id": client_id,
        "client": call.client_details(),
        "product": f"billing:{product}",
        "options": call.config_options(),
        "os_template": os_template,
        "hostname": lifecycle.hostname_from(str(call.params.get("domain") or "")),
        "ssh_keys": [ssh_key] if ssh_key else [],
    }
    return await _once(ctx, call, "CreateAccount", {}, lambda: lifecycle.create(ctx, request, call.actor))


@_module("SuspendAccount")
async def suspend_account(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    await sync_product(ctx, call)
    return await _once(
        ctx, call, "SuspendAccount", {}, lambda: lifecycle.suspend(ctx, call.service_id, call.actor)
    )


@_module("UnsuspendAccount")
async def unsuspend_account(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    await sync_product(ctx, call)
    return await _once(
        ctx, call, "UnsuspendAccount", {}, lambda: lifecycle.unsuspend(ctx, call.service_id, call.actor)
    )


@_module("TerminateAccount")
async def terminate_account(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    await sync_product(ctx, call)
    return await _once(
        ctx, call, "TerminateAccount", {}, lambda: lifecycle.terminate(ctx, call.service_id, call.actor)
    )


@_module("ChangePackage")
async def change_package(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    product = await sync_product(ctx, call)
    options = call.config_options()
    material = {"product": product, "options": options}
    return await _once(
        ctx,
        call,
        "ChangePackage",
        material,
        lambda: lifecycle.change_package(ctx, call.service_id, f"billing:{product}", options, call.actor),
    )


@_module("ChangePassword")
async def change_password(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    password = str(call.params.get("password") or "")
    if not password:
        raise Invalid("no new password was given")
    material = idempotency.fingerprint(password)
    return await _once(
        ctx,
        call,
        "ChangePassword",
        material,
        lambda: lifecycle.change_password(ctx, call.service_id, password, call.actor),
    )


@_module("Renew")
async def renew(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """A paid renewal: nothing to do on the platform beyond making sure the service exists."""
    await sync_product(ctx, call)
    service = await lifecycle.find(ctx, call.service_id)
    if service is None:
        raise NotFound(f"vpsbridge has no service {call.service_id}; run Create first")
    return {"ok": True, "message": "renewed"}


@_module("UsageUpdate")
async def usage_update(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Disk and bandwidth usage/limits (MB) per billing service, for the PHP to write into tblhosting."""
    return {"ok": True, "services": await lifecycle.usage(ctx)}


@_module("ListAccounts")
async def list_accounts(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "accounts": await lifecycle.accounts(ctx)}


@_module("AdminServicesTabFields")
async def admin_tab_fields(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, **(await lifecycle.admin_view(ctx, call.service_id))}


@_module("AdminServicesTabFieldsSave")
async def admin_tab_save(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    server = str(call.extra.get("server_id") or "").strip()
    await lifecycle.link_server(ctx, call.service_id, server or None, call.actor)
    await idempotency.forget(ctx.cache, f"whmcs:{call.service_id}")
    return {"ok": True}


@_module("updateServerObject")
async def update_server_object(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    await lifecycle.refresh(ctx, call.service_id)
    return {"ok": True, "message": "server object updated"}


@_module("validateConfig")
async def validate_config(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    product = await sync_product(ctx, call)
    problems = await lifecycle.validate(ctx, f"billing:{product}", call.client_id, call.config_options())
    if problems:
        return {"ok": False, "error": "; ".join(problems)}
    return {"ok": True, "message": "the platform accepts this configuration"}


def _public_base(ctx: AppContext) -> str:
    settings = ctx.settings
    return (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")


@_module("ServiceSingleSignOn")
async def service_sso(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """The client area's sign-on button opens our portal (one-time link), not the platform's panel."""
    from vpsbridge.services import portal
    from vpsbridge.services.provisioning import by_billing

    return {"ok": True, "redirect": await portal.sso_url(ctx, by_billing(call.service_id))}


@_module("AdminSingleSignOn")
async def admin_sso(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Staff open the operator console as the operator account named like their WHMCS admin user.

    The PHP sends the signed-in WHMCS admin's username; an unknown or disabled operator is refused
    (WHMCS access never silently becomes console access).
    """
    from vpsbridge.services.admin_auth import mint_admin_sso

    username = str(call.extra.get("admin_username") or "").strip()
    if not username:
        raise Invalid("WHMCS did not say which admin is signed in; sign in to the WHMCS admin area again")
    actor = Actor(type="bridge", id=f"whmcs-admin:{username}", ip=call.ip)
    token = await mint_admin_sso(ctx, username, actor)
    return {"ok": True, "redirect": _public_base(ctx) + token.path}


@_module("ClientArea")
async def client_area(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "vars": await lifecycle.client_view(ctx, call.service_id)}


def _power(action: str) -> Handler:
    async def run(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
        await lifecycle.power(ctx, call.service_id, action, call.actor)
        return {"ok": True, "message": f"{action} requested"}

    return run


for _verb, _action in (
    ("boot", "start"),
    ("reboot", "restart"),
    ("shutdown", "shutdown"),
    ("poweroff", "stop"),
):
    _MODULE[_verb] = _power(_action)


# --- hooks ------------------------------------------------------------------------------------------


@_hook("AfterModuleCreate")
async def after_module_create(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Accept the order only once *every* service of this module in it has a server.

    WHMCS 9 stops its batch acceptance as soon as the order leaves Pending, so accepting after the
    first of three VPSes would strand the other two. The PHP sends the order's status and the
    service ids of this module in it; we answer whether to call ``AcceptOrder`` now.
    """
    order = call.extra.get("order") if isinstance(call.extra.get("order"), Mapping) else {}
    assert isinstance(order, Mapping)
    status = str(order.get("status") or "")
    services = [str(s) for s in order.get("services") or []]
    waiting = [s for s in services if not await lifecycle.has_server(ctx, s)]
    accept = status == "Pending" and bool(services) and not waiting
    reason = (
        "order is not pending"
        if status != "Pending"
        else f"waiting for {len(waiting)} more service(s): {', '.join(waiting)}"
        if waiting
        else "every service of the order has a server"
    )
    stock = await lifecycle.stock(ctx, call.extra.get("products"), "provision")
    return {"ok": True, "accept_order": accept, "reason": reason, "stock": stock}


@_hook("AfterModuleTerminate")
async def after_module_terminate(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "stock": await lifecycle.stock(ctx, call.extra.get("products"), "terminate")}


@_hook("AfterCronJob")
async def after_cron(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "stock": await lifecycle.stock(ctx, call.extra.get("products"), "cron")}


@_hook("DailyCronJob")
async def daily_cron(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "stock": await lifecycle.stock(ctx, call.extra.get("products"), "cron")}


@_hook("ClientAreaPageCart")
async def cart_page(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "stock": await lifecycle.stock(ctx, call.extra.get("products"), "cart")}


@_hook("InvoicePaid")
async def invoice_paid(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """A paid invoice: credit the panel if it is a self-service credit invoice vpsbridge raised."""
    invoice = call.extra.get("invoice") if isinstance(call.extra.get("invoice"), Mapping) else {}
    assert isinstance(invoice, Mapping)
    try:
        invoice_id = int(invoice.get("id") or 0)
    except (TypeError, ValueError):
        invoice_id = 0
    if invoice_id <= 0:
        raise Invalid("the InvoicePaid hook carries no invoice id")
    return {
        "ok": True,
        **(await credit.settle_invoice(ctx, invoice_id, status=str(invoice.get("status") or ""))),
    }


@_hook("ShoppingCartValidateCheckout")
async def validate_checkout(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Refuse a checkout whose VPS has no operating system chosen; one message per product line."""
    errors: list[str] = []
    items = call.extra.get("cart")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping):
            continue
        fields = item.get("customfields") if isinstance(item.get("customfields"), Mapping) else {}
        assert isinstance(fields, Mapping)
        chosen = next((str(v).strip() for k, v in fields.items() if _norm(str(k)) == _norm(OS_FIELD)), "")
        if not chosen:
            name = str(item.get("name") or f"product {item.get('pid')}")
            errors.append(f"Please choose an operating system for {name}.")
    return {"ok": True, "errors": errors}


@_hook("ClientAreaFooterOutput")
async def footer_output(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Data for the order form's OS gallery, SSH-key picker and sliders (the PHP renders it)."""
    pid = call.product_id
    if pid is None:
        return {"ok": True, "templates": [], "ssh_keys": []}
    await sync_product(ctx, call)
    client = str(call.extra.get("client_id") or "")
    return {
        "ok": True,
        "templates": await lifecycle.os_templates(ctx, f"billing:{pid}"),
        "ssh_keys": await lifecycle.ssh_keys(ctx, f"billing:{pid}", client) if client else [],
    }


@_hook("UpgradeDiskChoices")
async def upgrade_disk_choices(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """The upgrade page: current disk sizes and which disk choices to disable (never shrink).

    The PHP sends the service id and the product's configurable options with their choices
    (``extra.options``); the answer lists, per disk option, the allowed and disabled choice ids.
    """
    from vpsbridge.services.provisioning.disk_choices import upgrade_disk_choices as choices
    from vpsbridge.services.provisioning.records import by_billing

    options = call.extra.get("options")
    rows = [o for o in options if isinstance(o, Mapping)] if isinstance(options, list) else []
    return {"ok": True, **(await choices(ctx, by_billing(call.service_id), rows))}


# --- client area (client.php) -----------------------------------------------------------------------


@_client("power")
async def client_power(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    action = str(call.extra.get("action") or "")
    if action not in ("start", "restart", "shutdown", "stop"):
        raise Invalid(f"unknown power action {action!r}", field="action")
    await lifecycle.power(ctx, call.service_id, action, Actor(type="client", id=call.client_id, ip=call.ip))
    return {"ok": True, "message": f"{action} requested"}


@_client("credit")
async def client_credit(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Self-service credit asked for in the client area: an invoice to pay, credited once paid."""
    try:
        amount = float(str(call.extra.get("amount") or "").strip())
    except ValueError:
        raise Invalid("the credit amount must be a number", field="amount") from None
    raised = await credit.request_credit(ctx, call.service_id, amount, source="client")
    return {
        "ok": True,
        **raised.as_dict(),
        "message": f"Invoice #{raised.invoice_id} was created; the credit is added once it is paid.",
    }


@_client("status")
async def client_status(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    return {"ok": True, "vars": await lifecycle.client_view(ctx, call.service_id)}


@_client("portal")
async def client_portal(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """Our client portal, signed in with a one-time link (same as the sign-on button)."""
    return await service_sso(ctx, call)


@_client("panel")
async def client_panel(ctx: AppContext, call: BridgeCall) -> dict[str, Any]:
    """The platform's own panel (VirtFusion), for platforms that have one."""
    return {"ok": True, "redirect": await lifecycle.sso_url(ctx, call.service_id, admin=False)}
