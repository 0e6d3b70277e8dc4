"""Operator settings, from flags or WORKUNITS_* environment variables."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _env_list(environ: Mapping[str, str], name: str) -> list[str]:
    return [part.strip() for part in environ.get(name, "").split(",") if part.strip()]


def namespace_patterns(namespaces: list[str]) -> list[str]:
    """The namespaces to serve as kopf's patterns: names and globs are alternatives,
    and a name or glob after ``!`` is left out of all of them. kopf reads a list as
    alternatives and a comma inside one pattern as a sequence, so ``team-*`` and
    ``!team-x`` become ``team-*,!team-x``; on their own, ``!team-x`` would match
    every other namespace, ``team-x``'s neighbours outside ``team-*`` included."""
    include = [n for n in namespaces if not n.startswith("!")]
    exclude = [n for n in namespaces if n.startswith("!")]
    if not exclude:
        return include
    if not include:
        return [",".join(exclude)]  # kopf: a leading exclusion implies "*"
    return [",".join([n, *exclude]) for n in include]


def exact_namespaces(namespaces: list[str]) -> bool:
    """Whether the watched namespaces are all plain names (no glob, no negation)."""
    return bool(namespaces) and not any(set(n) & set("*?!,[]") for n in namespaces)


# The environment's settings: variable, field, and how its text is read.
_BOOLEANS = {
    **dict.fromkeys(("1", "true", "yes", "on"), True),
    **dict.fromkeys(("0", "false", "no", "off"), False),
}
_ENVIRONMENT = (
    ("WORKUNITS_WORKERS", "workers", "int"),
    ("WORKUNITS_API_THREADS", "api_threads", "int"),
    ("WORKUNITS_LOG_FORMAT", "log_format", "str"),
    ("WORKUNITS_METRICS_PORT", "metrics_port", "int"),
    ("WORKUNITS_HEALTH_PORT", "health_port", "int"),
    ("WORKUNITS_BIND_ADDRESS", "bind_address", "str"),
    ("WORKUNITS_EVENTS", "events", "bool"),
    ("WORKUNITS_VERBOSE", "verbose", "bool"),
    ("WORKUNITS_LEADER_ELECT", "leader_elect", "bool"),
    ("WORKUNITS_LEASE_NAME", "lease_name", "str"),
    ("WORKUNITS_LEASE_NAMESPACE", "lease_namespace", "str"),
    ("WORKUNITS_LEASE_DURATION", "lease_duration", "float"),
    ("WORKUNITS_RUNNING_DELAY", "running_delay", "float"),
)
# A host name's labels; the last one is not all digits, so 999.1.1.1 is no host name.
_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$",
    re.IGNORECASE,
)


def _parse(text: str, how: str) -> Any:
    """The value of a variable's text, or ValueError saying what it should have been."""
    if how == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be a whole number") from None
    if how == "float":
        try:
            number = float(text)
        except ValueError:
            raise ValueError("must be a number") from None
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        return number
    if how == "bool":
        try:
            return _BOOLEANS[text.lower()]
        except KeyError:
            raise ValueError("must be true or false (or 1, 0, yes, no, on, off)") from None
    return text


@dataclass
class Settings:
    """What the operator runs with; defaults here, the environment read by
    :meth:`from_environment`, flags set over both by the CLI."""

    namespaces: list[str] = field(default_factory=list)
    workers: int = 64
    api_threads: int = 64
    log_format: str = "text"
    metrics_port: int = 0
    health_port: int = 0
    bind_address: str = "127.0.0.1"
    events: bool = True
    verbose: bool = False
    leader_elect: bool = False
    lease_name: str = "workunits-operator"
    lease_namespace: str = "default"
    lease_duration: float = 15.0
    # Seconds a new attempt goes unreported as Running (see core.unit.running_report_due).
    running_delay: float = 2.0

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None
    ) -> tuple[Settings, list[str]]:
        """The settings the WORKUNITS_* variables give, and a problem for each variable
        whose value cannot be read (that setting keeps its default). An empty variable
        is an unset one."""
        env = os.environ if environ is None else environ
        settings = cls(namespaces=_env_list(env, "WORKUNITS_NAMESPACES"))
        if env.get("POD_NAMESPACE"):
            settings.lease_namespace = env["POD_NAMESPACE"]
        problems = []
        for name, attribute, how in _ENVIRONMENT:
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                setattr(settings, attribute, _parse(text, how))
            except ValueError as exc:
                problems.append(f"{name} {exc}, not {text!r}")
        return settings, problems

    def problems(self) -> list[str]:
        """What is wrong with these settings, each naming its flag and variable."""
        found = []
        for flag, env, value, least in (
            ("--workers", "WORKUNITS_WORKERS", self.workers, 1),
            ("--api-threads", "WORKUNITS_API_THREADS", self.api_threads, 1),
            ("--running-delay", "WORKUNITS_RUNNING_DELAY", self.running_delay, 0),
            ("--lease-duration", "WORKUNITS_LEASE_DURATION", self.lease_duration, 1),
        ):
            if value < least:
                found.append(f"{flag} ({env}) must be at least {least}, not {value}")
        # Both are added to dates and clocks: an hour is far past any sensible value.
        for flag, env, value, most in (
            ("--running-delay", "WORKUNITS_RUNNING_DELAY", self.running_delay, 3600),
            ("--lease-duration", "WORKUNITS_LEASE_DURATION", self.lease_duration, 3600),
        ):
            if not value <= most:  # not <=, so that nan is refused too
                found.append(f"{flag} ({env}) must be at most {most}, not {value}")
        for flag, env, port in (
            ("--metrics-port", "WORKUNITS_METRICS_PORT", self.metrics_port),
            ("--health-port", "WORKUNITS_HEALTH_PORT", self.health_port),
        ):
            if not 0 <= port <= 65535:
                found.append(f"{flag} ({env}) must be a port from 0 (off) to 65535, not {port}")
        if self.metrics_port and self.metrics_port == self.health_port:
            found.append("--metrics-port and --health-port must differ")
        if self.log_format not in ("text", "json"):
            found.append(
                f"--log-format (WORKUNITS_LOG_FORMAT) must be text or json, not {self.log_format!r}"
            )
        if not _is_address(self.bind_address):
            found.append(
                "--bind-address (WORKUNITS_BIND_ADDRESS) must be an IP address (such as "
                f"127.0.0.1, 0.0.0.0 or ::) or a host name, not {self.bind_address!r}"
            )
        elif self.metrics_port or self.health_port:
            found += _unbindable(self.bind_address)
        return found


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return bool(_HOST_NAME.match(text))
    return True


def _unbindable(address: str) -> list[str]:
    """Whether the servers can listen on the address: bound on a free port and let go,
    so that an address of another host is refused before the operator starts."""
    try:
        infos = socket.getaddrinfo(address, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, where = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(where)
    except OSError as exc:
        why = exc.strerror or str(exc)
        return [f"--bind-address (WORKUNITS_BIND_ADDRESS) {address!r} cannot be listened on: {why}"]
    return []
