"""Inputs and outputs of the provisioning services (service lifecycle), shared by API, CLI and bridge.

Input models forbid unknown fields so a typo in a request is an error naming the field, not a
silently ignored setting. Outputs never carry a secret: the root password is only returned by the
explicit credential hand-off (:class:`CredentialsOut`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ServiceStatus = Literal[
    "pending",  # recorded; the platform has not (yet) accepted the create
    "provisioning",  # the platform accepted the create; build and follow-ups run in a job
    "active",
    "suspended",
    "terminating",  # billing was told "done"; the terminate job is running or waiting its delay
    "terminated",
    "failed",  # create refused or build failed; a new create may be tried
    "unknown",  # the create's outcome is unknown: an operator must confirm before anything else
    "error_terminate",  # terminating failed; addresses stay allocated, an operator decides
]

PowerActionName = Literal["start", "stop", "shutdown", "restart", "reset"]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClientInfo(_Input):
    """The billing client, for platforms that keep their own users (created on first use)."""

    name: str = ""
    email: str = ""


class ServiceCreate(_Input):
    """Create (or, for the same ``billing_service_id``, return) a service and its server."""

    #: The billing system's service id; the idempotency key of create (one server per value).
    billing_service_id: str | None = Field(default=None, max_length=64)
    client_id: str = Field(min_length=1, max_length=64)
    client: ClientInfo = Field(default_factory=ClientInfo)
    #: Product id, name, or ``billing:<billing product id>``.
    product: int | str
    #: Configurable options as billing sends them (``{"Memory": "4|4 GB"}``).
    options: dict[str, Any] = Field(default_factory=dict)
    os_template: str | None = None
    hostname: str | None = Field(default=None, max_length=253)
    name: str | None = Field(default=None, max_length=100)
    #: Key ids known to the platform or pasted public keys.
    ssh_keys: list[str] = Field(default_factory=list)


class ChangePackageRequest(_Input):
    """Move a service to another product and/or other configurable options."""

    product: int | str | None = None
    options: dict[str, Any] | None = None


class ServerOut(BaseModel):
    id: int
    platform_id: int
    external_id: str | None
    node: str | None
    hostname: str | None
    name: str | None
    state: str
    ipv4: list[str] = Field(default_factory=list)
    ipv6: list[str] = Field(default_factory=list)
    has_credentials: bool = False


class ServiceOut(BaseModel):
    id: int
    billing_service_id: str | None
    client_id: str
    product_id: int | None
    product_name: str | None
    platform_id: int | None
    platform_name: str | None
    platform_type: str | None
    status: str
    options: dict[str, Any]
    last_error: str | None
    #: Warnings from the last change (e.g. the platform's ``info[]`` after a package change).
    warnings: list[str] = Field(default_factory=list)
    #: The most recent lifecycle job (deploy, terminate ...) of this service, if any.
    job_id: int | None = None
    server: ServerOut | None
    created_at: dt.datetime
    updated_at: dt.datetime


class ActionOut(BaseModel):
    """The answer to a lifecycle action: the service afterwards, what was done, and any warnings."""

    service: ServiceOut
    action: str
    #: ``done`` = completed or accepted by the platform; ``unchanged`` = already in that state.
    outcome: Literal["done", "accepted", "unchanged", "queued"]
    warnings: list[str] = Field(default_factory=list)
    job_id: int | None = None
    message: str = ""


class CredentialsOut(BaseModel):
    """The server's login, for the billing hand-off (welcome e-mail) and the operator; never logged."""

    service_id: int
    username: str
    password: str
    ipv4: list[str] = Field(default_factory=list)
    ipv6: list[str] = Field(default_factory=list)
    hostname: str | None = None
    updated_at: dt.datetime | None = None
