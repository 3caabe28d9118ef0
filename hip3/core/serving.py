"""What our two HTTP servers (the simulator, the dashboard) share: the loopback-only rule and Hypercorn's
settings. Values only: binding is the servers' business."""

from __future__ import annotations

import ipaddress
import logging

import hypercorn.config


class BindRefused(ValueError):
    """A non-loopback bind address without explicit permission."""


def check_bind_host(host: str, *, allow_remote: bool, what: str, permission: str) -> None:
    """Refuse a non-loopback `host` unless `allow_remote`; `what` and `permission` name the server and the
    option that allows it, for the error."""
    if allow_remote or host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise BindRefused(f"refusing to bind {what} to {host}: it serves loopback only unless {permission}")


def hypercorn_config(host: str, port: int) -> hypercorn.config.Config:
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through our formatter, not a handler of its own
    config.loglevel = "WARNING"
    return config
