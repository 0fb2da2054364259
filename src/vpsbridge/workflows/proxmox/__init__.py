"""Proxmox VE workflows: deploy, change package, terminate, suspend/unsuspend, power, password, rebuild.

Importing this package registers every one of them (workers do so through ``autodiscover``). Their
names are the constants of :mod:`vpsbridge.services.provisioning.proxmox`, which queues them.
"""

from vpsbridge.workflows.proxmox import actions, change_package, common, deploy, terminate

__all__ = ["actions", "change_package", "common", "deploy", "terminate"]
