"""Helpers for tests against a real API server: kubectl, waiting, the operator process."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOGS = ROOT / ".run" / "test-logs"
KUBECTL = os.environ.get("KUBECTL", "kubectl")
T = TypeVar("T")


def kubectl(
    *args: str, input: str | None = None, check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [KUBECTL, *args], input=input, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def apply(manifest: dict[str, Any] | str, namespace: str) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    kubectl("apply", "-n", namespace, "-f", "-", input=text)


def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def items(kind: str, namespace: str, selector: str | None = None) -> list[dict[str, Any]]:
    args = ["get", kind, "-n", namespace, "-o", "json"]
    if selector:
        args += ["-l", selector]
    return json.loads(kubectl(*args).stdout)["items"]  # type: ignore[no-any-return]


def wait_for(
    what: str, check: Callable[[], T | None], timeout: float = 60, interval: float = 0.25
) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def unit_phase(
    name: str, namespace: str, phases: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        unit = get("workunit", name, namespace)
        phase = ((unit or {}).get("status") or {}).get("phase")
        return unit if phase in phases else None

    return wait_for(f"WorkUnit {namespace}/{name} to reach {phases}", check, timeout)


def unit_jobs(name: str, namespace: str) -> list[dict[str, Any]]:
    unit = get("workunit", name, namespace)
    if unit is None:
        return []
    uid = unit["metadata"]["uid"]
    jobs = items("jobs", namespace, f"workunits.io/unit-uid={uid}")
    return sorted(jobs, key=lambda j: int(j["metadata"]["labels"]["workunits.io/attempt"]))


def workunit(
    name: str,
    spec: dict[str, Any] | None = None,
    pod_labels: dict[str, str] | None = None,
    pod_annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A unit whose pod the local control plane scripts through labels/annotations."""
    body: dict[str, Any] = {
        "apiVersion": "workunits.io/v1alpha1",
        "kind": "WorkUnit",
        "metadata": {"name": name},
        "spec": dict(spec or {}),
    }
    if pod_labels or pod_annotations:
        body["spec"]["template"] = {
            "metadata": {"labels": pod_labels or {}, "annotations": pod_annotations or {}},
            "spec": {"containers": [{"name": "work", "image": "busybox"}]},
        }
    else:
        body["spec"].setdefault("image", "busybox")
    return body


def new_namespace(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    return name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Operator:
    """The operator as a real process, as users run it: ``workunits run``."""

    def __init__(
        self, *args: str, name: str = "operator", env: dict[str, str] | None = None
    ) -> None:
        self.args = args
        self.name = name
        self.env = env  # extra environment variables, such as another KUBECONFIG
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"{name}-{uuid.uuid4().hex[:6]}.log"

    def start(self) -> Operator:
        command = [
            sys.executable,
            "-m",
            "workunits.cli.main",
            "run",
            "--health-port",
            str(self.port),
            *self.args,
        ]
        with self.log.open("ab") as out:
            env = {**os.environ, **self.env} if self.env else None
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        wait_for(f"{self.name} to be healthy", self._healthy, timeout=60)
        return self

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running(*args: str, name: str = "operator") -> Iterator[Operator]:
    operator = Operator(*args, name=name).start()
    try:
        yield operator
    finally:
        operator.stop()
