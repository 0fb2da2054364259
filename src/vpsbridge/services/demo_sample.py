"""The demo's sample client: one person owning a service on each simulated platform, ready to manage.

The first journey of an evaluating operator ends in the client portal: open it as a client through
single sign-on, power the server, open its console, rebuild it, set its reverse DNS, terminate it.
Without a service there is nothing to open, so the demo keeps a sample client, Ada Example, with one
service per simulated platform. Each simulator contribution registers what it offers with
:meth:`~vpsbridge.services.demo.DemoContext.add_sample_service`; :func:`provision_samples` runs after
every ``start`` hook, when the simulators already answer.

The services are created by :func:`vpsbridge.services.provisioning.create_service`, the path the JSON
API and the billing bridge use, so their deploy jobs run in the demo's worker against the simulators
and are visible step by step in the operator console. ``create_service`` is idempotent per billing
service id, which is what makes a second start with the same data directory create nothing new.

The simulators keep their servers in memory while the demo database survives restarts. On a second
start, every service on a simulated platform whose server the simulator no longer holds is
terminated through the normal lifecycle (the platform confirms the server missing, so the job ends
at once and releases the addresses), and only then are the sample services created again under the
same billing service ids: the same service rows, fresh servers. Waiting for those terminations
happens in the background so the demo's banner is not held up by the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vpsbridge.services.audit import Actor
from vpsbridge.services.errors import ServiceError

if TYPE_CHECKING:
    from vpsbridge.services.demo import DemoContext
    from vpsbridge.services.portal import PortalLink
    from vpsbridge.services.provisioning import ServiceOut

log = logging.getLogger(__name__)

#: A billing client id as WHMCS has them (VirtFusion links its users to a numeric id).
SAMPLE_CLIENT_ID = "1001"
SAMPLE_CLIENT_NAME = "Ada Example"
SAMPLE_CLIENT_EMAIL = "ada@example.net"
#: The banner label of the single sign-on link (tests and docs find the link by it).
PORTAL_LINK_LABEL = "Portal (sample client)"
#: How long the background waits for the previous run's services to finish terminating.
RETIRE_TIMEOUT_SECONDS = 120.0
_FINAL = ("terminated", "error_terminate")
#: Statuses that leave nothing to retire: already ending, or an unresolved create an operator owns.
_LEAVE_ALONE = ("terminated", "terminating", "pending", "unknown")


@dataclass(frozen=True)
class SampleService:
    """A service the demo keeps provisioned for the sample client on one simulated platform."""

    #: The idempotency key of the create; stays the same across restarts.
    billing_service_id: str
    #: The product's billing product id.
    product: str
    #: The platform's name; services on it whose server the simulator lost are retired on start.
    platform: str
    hostname: str
    #: What the banner calls it ("VirtFusion").
    label: str
    #: Whether the simulator holds a server with this external id right now.
    server_exists: Callable[[str], bool]
    os_template: str | None = None


@dataclass
class SampleOutcome:
    """What :func:`provision_samples` did; ``pending`` finishes the creates that had to wait."""

    services: dict[str, ServiceOut] = field(default_factory=dict)
    retired: list[int] = field(default_factory=list)
    link: PortalLink | None = None
    pending: asyncio.Task[None] | None = None
    problems: list[str] = field(default_factory=list)


async def provision_samples(demo: DemoContext) -> SampleOutcome:
    """Make sure the sample client owns one live service per registered sample; print how to reach it.

    Never waits for a deploy: the creates return once the platform accepted them. Problems are
    reported in the banner rather than raised, so a simulator that misbehaves does not stop the demo.
    """
    outcome = SampleOutcome()
    if not demo.samples:
        return outcome
    actor = Actor.system("demo")
    waiting: dict[str, list[int]] = {}
    for platform in dict.fromkeys(s.platform for s in demo.samples):
        exists = next(s.server_exists for s in demo.samples if s.platform == platform)
        retired, ending = await _retire_lost_servers(demo, platform, exists, actor, outcome)
        outcome.retired += retired
        if retired or ending:
            waiting[platform] = retired + ending

    later = [s for s in demo.samples if s.platform in waiting]
    for sample in demo.samples:
        if sample.platform not in waiting:
            await _create(demo, sample, actor, outcome)
    if later:
        ids = [i for p in waiting.values() for i in p]
        outcome.pending = demo.spawn(_create_after(demo, ids, later, actor, outcome), name="demo-samples")

    await _portal_link(demo, actor, outcome)
    _describe(demo, outcome)
    return outcome


async def _retire_lost_servers(
    demo: DemoContext, platform: str, exists: Callable[[str], bool], actor: Actor, outcome: SampleOutcome
) -> tuple[list[int], list[int]]:
    """Terminate services on ``platform`` whose server the simulator does not hold.

    Returns the ids terminated now and the ids that were already terminating (from the previous
    run); the samples on this platform are created once all of them have ended, because a fresh
    simulator hands out the same server ids again and an old terminate must not meet a new server.
    """
    from vpsbridge.services.provisioning import list_services, terminate_service

    retired: list[int] = []
    ending: list[int] = []
    offset = 0
    while True:
        page = await list_services(demo.app, limit=200, offset=offset)
        for service in page:
            if service.platform_name != platform or service.server is None:
                continue
            external_id = service.server.external_id
            if service.status == "terminating":
                ending.append(service.id)
                continue
            if service.status in _LEAVE_ALONE or not external_id or exists(external_id):
                continue
            try:
                await terminate_service(demo.app, service.id, actor, delay_seconds=0)
            except ServiceError as exc:
                outcome.problems.append(f"service {service.id} could not be retired: {exc.message}")
            else:
                retired.append(service.id)
        if len(page) < 200:
            return retired, ending
        offset += 200


async def _create(demo: DemoContext, sample: SampleService, actor: Actor, outcome: SampleOutcome) -> None:
    from vpsbridge.services.provisioning import create_service

    data = {
        "billing_service_id": sample.billing_service_id,
        "client_id": SAMPLE_CLIENT_ID,
        "client": {"name": SAMPLE_CLIENT_NAME, "email": SAMPLE_CLIENT_EMAIL},
        "product": f"billing:{sample.product}",
        "hostname": sample.hostname,
        "os_template": sample.os_template,
    }
    try:
        outcome.services[sample.billing_service_id] = await create_service(demo.app, data, actor)
    except ServiceError as exc:
        message = f"sample {sample.label} service not created: {exc.message}"
        outcome.problems.append(message)
        log.warning("demo: %s", message)


async def _create_after(
    demo: DemoContext,
    ids: Sequence[int],
    samples: Sequence[SampleService],
    actor: Actor,
    outcome: SampleOutcome,
) -> None:
    """Wait (in the background) until the previous run's services have ended, then create the samples."""
    from vpsbridge.services.provisioning import get_service

    deadline = asyncio.get_running_loop().time() + demo.app.settings.scaled(RETIRE_TIMEOUT_SECONDS)
    remaining = set(ids)
    while remaining and asyncio.get_running_loop().time() < deadline:
        for service_id in sorted(remaining):
            with contextlib.suppress(ServiceError):
                if (await get_service(demo.app, service_id)).status in _FINAL:
                    remaining.discard(service_id)
        if remaining:
            await asyncio.sleep(0.3)
    if remaining:
        message = (
            f"services {', '.join(map(str, sorted(remaining)))} did not finish terminating; "
            "the sample services were not created again (see the jobs in the operator console)"
        )
        outcome.problems.append(message)
        log.warning("demo: %s", message)
        return
    for sample in samples:
        await _create(demo, sample, actor, outcome)


async def _portal_link(demo: DemoContext, actor: Actor, outcome: SampleOutcome) -> None:
    """A fresh single sign-on link to the first sample service (the later ones are a click away)."""
    from vpsbridge.services.portal import mint_portal_link

    for sample in demo.samples:
        try:
            outcome.link = await mint_portal_link(
                demo.app, f"billing:{sample.billing_service_id}", actor, base_url=demo.web_url
            )
        except ServiceError:
            continue
        return


def _describe(demo: DemoContext, outcome: SampleOutcome) -> None:
    services = ", ".join(f"{s.label} ({s.hostname})" for s in demo.samples)
    demo.add_line(
        f"Sample client: {SAMPLE_CLIENT_NAME} (client {SAMPLE_CLIENT_ID}) owns {services}; "
        "their deploy jobs run now (operator console > Jobs) and finish within seconds."
    )
    if outcome.retired:
        demo.add_line(
            "The simulators start empty: services from the previous run whose servers they no longer "
            f"hold are being terminated ({', '.join(map(str, outcome.retired))}), then the samples "
            "are provisioned again."
        )
    link = outcome.link
    if link is not None:
        demo.add_link(PORTAL_LINK_LABEL, link.url)
        data_dir = demo.app.settings.data_dir
        demo.add_line(
            "The portal link works once, for 2 minutes. Later: 'Open the portal as this client' on the "
            f"service's page in the operator console ({demo.web_url}/admin/services/{link.service_id}), "
            f"or VPSBRIDGE_DATA_DIR={data_dir} vpsbridge portal link {link.service_id} "
            f"--base-url {demo.web_url}"
        )
    for problem in outcome.problems:
        demo.add_line(f"Sample client: {problem}")
