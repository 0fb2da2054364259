"""The WHMCS API client: vpsbridge calling ``includes/api.php`` to report back to billing.

After a create finishes in the background, vpsbridge writes the service's IPs, username and
password (``UpdateClientProduct``), sends the welcome e-mail with the real credentials
(``SendEmail``), accepts orders (``AcceptOrder`` with ``autosetup=0`` - the module already ran) and
leaves a trail in the activity log (``LogActivity``).

WHMCS quirks handled here, in one place:

* authentication by API credential (``identifier`` + ``secret``) and/or the ``accesskey`` that
  replaces the IP allow-list;
* PHP-style form encoding, booleans as ``1``/``0`` (see :mod:`.encoding`);
* success is decided by the body's ``result`` - WHMCS answers 403 with a JSON ``{"result": "error"}``
  for a wrong IP or credential, and 200 with ``result=error`` for a refused action;
* non-JSON answers (an HTML error page, a login redirect) are "unknown", never success.

Read actions (Get*) are retried on transport failures; actions that change WHMCS are sent once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2

from vpsbridge.billing.whmcs.encoding import php_form, serialized_b64, unwrap_list
from vpsbridge.http import UpstreamClient, UpstreamMalformed, UpstreamRejected
from vpsbridge.http.errors import UpstreamAuthError
from vpsbridge.http.record import Recorder

API_PATH = "includes/api.php"
#: Statuses whose body we read ourselves: WHMCS puts its verdict in ``result``, not in the status.
_BODY_STATUSES = frozenset({400, 401, 403, 404, 405, 409, 422})
#: Read-only actions, safe to repeat after a timeout.
READ_ACTIONS = frozenset({"GetOrders", "GetClientsProducts", "GetClientsDetails", "GetProducts"})
_AUTH_HINTS = ("authentication failed", "invalid ip", "invalid or missing credentials", "access denied")


class WhmcsApiError(UpstreamRejected):
    """WHMCS answered ``result=error``; ``str()`` carries its ``message``."""


class WhmcsAuthError(UpstreamAuthError):
    """WHMCS refused our credentials or our IP address."""


@dataclass(frozen=True, slots=True)
class WhmcsCredentials:
    """What ``includes/api.php`` needs to let us in; give identifier+secret, an access key, or both."""

    url: str
    identifier: str | None = None
    secret: str | None = None
    access_key: str | None = None
    verify_tls: bool = True

    def auth_fields(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        if self.identifier and self.secret:
            fields["identifier"] = self.identifier
            fields["secret"] = self.secret
        if self.access_key:
            fields["accesskey"] = self.access_key
        return fields


class WhmcsClient(UpstreamClient):
    """Typed WHMCS API actions on top of the shared ``_request()`` choke point."""

    def __init__(
        self,
        credentials: WhmcsCredentials,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        recorder: Recorder | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
    ) -> None:
        if not credentials.auth_fields():
            raise ValueError("WHMCS API needs an identifier and secret, or an access key")
        self.credentials = credentials
        base = credentials.url.rstrip("/") + "/"
        super().__init__(
            base,
            name="whmcs",
            verify=credentials.verify_tls,
            transport=transport,
            recorder=recorder,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            secrets=[s for s in (credentials.secret, credentials.access_key) if s],
        )

    async def call(self, action: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one API action; return the decoded body when ``result`` is ``success``."""
        fields: dict[str, Any] = {"action": action, "responsetype": "json"}
        fields.update(params or {})
        form = [*php_form(fields), *self.credentials.auth_fields().items()]
        response = await self._request(
            "POST",
            API_PATH,
            content=urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=action in READ_ACTIONS,
            expect_json=False,
            ok_statuses=_BODY_STATUSES,
        )
        try:
            body = json.loads(response.text)
        except ValueError:
            raise UpstreamMalformed(
                f"whmcs: {action} answered {response.status} with a body that is not JSON "
                "(check the WHMCS URL: it must point at the WHMCS root, where includes/api.php lives)",
                client=self.name,
                method="POST",
                url=response.url,
                status=response.status,
            ) from None
        if not isinstance(body, dict):
            raise UpstreamMalformed(
                f"whmcs: {action} answered with JSON that is not an object",
                client=self.name,
                method="POST",
                url=response.url,
                status=response.status,
            )
        if body.get("result") == "success":
            return body
        message = str(body.get("message") or body.get("error") or "no message")
        text = f"whmcs: {action} failed: {message}"
        if response.status in (401, 403) or message.lower().startswith(_AUTH_HINTS):
            raise WhmcsAuthError(
                text + " (check the API credential, its role, and the API IP allow-list or access key)",
                client=self.name,
                method="POST",
                url=response.url,
                status=response.status,
            )
        raise WhmcsApiError(text, client=self.name, method="POST", url=response.url, status=response.status)

    # --- orders -----------------------------------------------------------------------------------

    async def accept_order(self, order_id: int, *, autosetup: bool = False, send_email: bool = True) -> None:
        """Accept an order whose services vpsbridge already created (so ``autosetup`` defaults off)."""
        await self.call("AcceptOrder", {"orderid": order_id, "autosetup": autosetup, "sendemail": send_email})

    async def get_orders(self, **filters: Any) -> list[dict[str, Any]]:
        """``GetOrders`` (``id``, ``userid``, ``status``, ``limitstart``, ``limitnum``)."""
        return unwrap_list(await self.call("GetOrders", filters), "orders", "order")

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        orders = await self.get_orders(id=order_id)
        return orders[0] if orders else None

    # --- services and clients -----------------------------------------------------------------

    async def get_clients_products(self, *, page_size: int = 100, **filters: Any) -> list[dict[str, Any]]:
        """Every matching service, following ``limitstart`` pages until WHMCS returns none."""
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            body = await self.call(
                "GetClientsProducts", {**filters, "limitstart": start, "limitnum": page_size}
            )
            page = unwrap_list(body, "products", "product")
            out.extend(page)
            total = _int(body.get("totalresults"))
            start += len(page)
            if not page or (total is not None and start >= total):
                return out

    async def get_client_product(self, service_id: int) -> dict[str, Any] | None:
        products = await self.get_clients_products(serviceid=service_id)
        return products[0] if products else None

    async def update_client_product(
        self,
        service_id: int,
        *,
        custom_fields: Mapping[int, Any] | None = None,
        config_options: Mapping[int, Any] | None = None,
        **fields: Any,
    ) -> None:
        """``UpdateClientProduct``: ``dedicatedip``, ``assignedips``, ``serviceusername``,
        ``servicepassword``, ``diskusage``/``disklimit``/``bwusage``/``bwlimit`` (MB), ``status`` ...

        ``custom_fields`` / ``config_options`` are keyed by WHMCS field / option id and sent the way
        WHMCS decodes them (base64 of PHP ``serialize``).
        """
        params: dict[str, Any] = {"serviceid": service_id, **fields}
        if custom_fields:
            params["customfields"] = serialized_b64(custom_fields)
        if config_options:
            params["configoptions"] = serialized_b64(config_options)
        await self.call("UpdateClientProduct", params)

    async def get_clients_details(self, client_id: int, *, stats: bool = False) -> dict[str, Any]:
        body = await self.call("GetClientsDetails", {"clientid": client_id, "stats": stats})
        client = body.get("client")
        return dict(client) if isinstance(client, Mapping) else dict(body)

    # --- messages, invoices, log ----------------------------------------------------------------

    async def send_email(
        self,
        *,
        related_id: int,
        message_name: str | None = None,
        custom_type: str | None = None,
        custom_subject: str | None = None,
        custom_message: str | None = None,
        custom_vars: Mapping[str, Any] | None = None,
    ) -> None:
        """``SendEmail`` of a named template (e.g. the product's welcome e-mail) about ``related_id``.

        ``custom_vars`` become ``base64(serialize())`` merge fields such as the real root password.
        """
        params: dict[str, Any] = {
            "id": related_id,
            "messagename": message_name,
            "customtype": custom_type,
            "customsubject": custom_subject,
            "custommessage": custom_message,
        }
        if custom_vars:
            params["customvars"] = serialized_b64(custom_vars)
        await self.call("SendEmail", params)

    async def create_invoice(
        self,
        client_id: int,
        items: list[tuple[str, float]],
        *,
        send_invoice: bool = True,
        payment_method: str | None = None,
        due_date: str | None = None,
    ) -> int:
        """``CreateInvoice`` with ``itemdescriptionN``/``itemamountN`` lines; returns the invoice id."""
        params: dict[str, Any] = {
            "userid": client_id,
            "sendinvoice": send_invoice,
            "paymentmethod": payment_method,
            "duedate": due_date,
        }
        for number, (description, amount) in enumerate(items, start=1):
            params[f"itemdescription{number}"] = description
            params[f"itemamount{number}"] = f"{amount:.2f}"
            params[f"itemtaxed{number}"] = False
        body = await self.call("CreateInvoice", params)
        invoice_id = _int(body.get("invoiceid"))
        if invoice_id is None:
            raise UpstreamMalformed("whmcs: CreateInvoice succeeded without an invoice id", client=self.name)
        return invoice_id

    async def apply_credit(self, invoice_id: int, amount: float, *, send_email: bool = False) -> bool:
        """``ApplyCredit``: pay ``amount`` of ``invoice_id`` from the client's credit balance.

        Returns whether WHMCS reports the invoice paid in full by it (``invoicepaid``). Fails with
        :class:`WhmcsApiError` when the balance does not cover the amount.
        """
        body = await self.call(
            "ApplyCredit", {"invoiceid": invoice_id, "amount": f"{amount:.2f}", "noemail": not send_email}
        )
        return str(body.get("invoicepaid") or "").lower() in ("true", "1")

    async def log_activity(self, description: str, *, client_id: int | None = None) -> None:
        await self.call("LogActivity", {"description": description, "clientid": client_id})


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
