"""Operator settings, from flags or WORKUNITS_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env_list(name: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]


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


@dataclass
class Settings:
    namespaces: list[str] = field(default_factory=lambda: _env_list("WORKUNITS_NAMESPACES"))
    workers: int = int(os.environ.get("WORKUNITS_WORKERS", "64"))
    api_threads: int = int(os.environ.get("WORKUNITS_API_THREADS", "64"))
    log_format: str = os.environ.get("WORKUNITS_LOG_FORMAT", "text")
    metrics_port: int = int(os.environ.get("WORKUNITS_METRICS_PORT", "0"))
    health_port: int = int(os.environ.get("WORKUNITS_HEALTH_PORT", "0"))
    bind_address: str = os.environ.get("WORKUNITS_BIND_ADDRESS", "127.0.0.1")
    events: bool = os.environ.get("WORKUNITS_EVENTS", "true").lower() not in ("0", "false", "no")
    verbose: bool = os.environ.get("WORKUNITS_VERBOSE", "").lower() in ("1", "true", "yes")
    leader_elect: bool = os.environ.get("WORKUNITS_LEADER_ELECT", "").lower() in (
        "1",
        "true",
        "yes",
    )
    lease_name: str = os.environ.get("WORKUNITS_LEASE_NAME", "workunits-operator")
    lease_namespace: str = os.environ.get(
        "WORKUNITS_LEASE_NAMESPACE", os.environ.get("POD_NAMESPACE", "default")
    )
    lease_duration: float = float(os.environ.get("WORKUNITS_LEASE_DURATION", "15"))
    # Seconds a new attempt goes unreported as Running (see core.unit.running_report_due).
    running_delay: float = float(os.environ.get("WORKUNITS_RUNNING_DELAY", "2"))

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
        return found
