"""What every benchmark stands on: the API server, the operator process, the audit log.

The benchmarks talk to the API server with the official client under a user agent of
their own (``workunits-bench``), so the audit log tells their writes apart from the
operator's (``workunits-operator`` and kopf's ``kopf``). Objects are read as plain
dicts: deserialising thousands of typed models would make the benchmark, not the
operator, the bottleneck on a small machine.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from workunits import GROUP, VERSION, __version__

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOGS = ROOT / ".run" / "bench-logs"
BENCH_AGENT = f"workunits-bench/{__version__}"
OPERATOR_AGENTS = ("workunits-operator", "kopf")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy; raise naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# ---- the API server -----------------------------------------------------------------


class Cluster:
    """The cluster KUBECONFIG names, seen through a client of the benchmark's own."""

    def __init__(self, kubeconfig: str | None = None, audit_log: str | None = None) -> None:
        self.kubeconfig = kubeconfig or os.environ.get("KUBECONFIG", "")
        if not self.kubeconfig:
            raise RuntimeError("KUBECONFIG is not set: it must name the cluster to measure")
        configuration = client.Configuration()
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=self.kubeconfig, client_configuration=configuration
        )
        configuration.connection_pool_maxsize = 32
        self.api = client.ApiClient(configuration)
        self.api.user_agent = BENCH_AGENT
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.version = client.VersionApi(self.api)
        # The local control plane keeps its audit log next to its kubeconfig.
        default_log = pathlib.Path(self.kubeconfig).parent / "logs" / "audit.log"
        self.audit = Audit(pathlib.Path(audit_log) if audit_log else default_log)

    def components(self) -> dict[str, int]:
        """The control plane's processes (name -> pid): those run from the binaries
        directory next to the kubeconfig, as the local control plane starts them."""
        bin_dir = str(pathlib.Path(self.kubeconfig).parent / "bin") + "/"
        found: dict[str, int] = {}
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                program = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            if program.startswith(bin_dir):
                found[program[len(bin_dir) :]] = int(entry.name)
        return found

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds used so far by each control plane process."""
        usage = {}
        for name, pid in self.components().items():
            try:
                usage[name] = Usage.of(pid).cpu_seconds
            except OSError:
                continue
        return usage

    def install_crds(self) -> None:
        subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, "apply", "-f", str(ROOT / "crds")],
            check=True,
            capture_output=True,
        )
        for crd in ("workunits.workunits.io", "workjobs.workunits.io"):
            subprocess.run(
                [
                    "kubectl",
                    "--kubeconfig",
                    self.kubeconfig,
                    "wait",
                    "--for=condition=Established",
                    f"crd/{crd}",
                    "--timeout=60s",
                ],
                check=True,
                capture_output=True,
            )

    def server_version(self) -> str:
        return str(self.version.get_code().git_version)

    # -- namespaces --

    def new_namespace(self, prefix: str = "wu-bench") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace({"metadata": {"name": name}}, _preload_content=False)
        # Pods need the namespace's default ServiceAccount, which a controller adds.
        wait_for(f"the default ServiceAccount in {name}", lambda: self._has_sa(name), 30)
        return name

    def _has_sa(self, namespace: str) -> bool:
        try:
            self.core.read_namespaced_service_account("default", namespace, _preload_content=False)
        except ApiException:
            return False
        return True

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def await_namespace_gone(self, name: str, timeout: float = 300) -> None:
        """Wait until a deleted namespace, and so everything in it, is gone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.core.read_namespace(name, _preload_content=False)
            except ApiException as exc:
                if exc.status == 404:
                    return
            time.sleep(1)
        print(f"bench: namespace {name} still there after {timeout}s", file=sys.stderr)

    # -- objects --

    def create_many(
        self, bodies: Iterable[dict[str, Any]], namespace: str, threads: int = 16
    ) -> None:
        """Create WorkUnits, WorkJobs or Jobs (by kind) as fast as ``threads`` allow."""
        with ThreadPoolExecutor(threads, thread_name_prefix="create") as pool:
            for future in [pool.submit(self.create, b, namespace) for b in bodies]:
                future.result()

    def create(self, body: dict[str, Any], namespace: str) -> None:
        if body["kind"] == "Job":
            self.batch.create_namespaced_job(namespace, body, _preload_content=False)
        else:
            plural = body["kind"].lower() + "s"
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, body, _preload_content=False
            )

    def list(self, plural: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        """Every object of a kind in the namespace, in pages, as dicts."""
        found: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"limit": 2000, "_preload_content": False}
            if selector:
                kwargs["label_selector"] = selector
            if token:
                kwargs["_continue"] = token
            page = json.loads(self._lister(plural)(namespace, **kwargs).data)
            found += page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return found

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        response = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, _preload_content=False
        )
        return json.loads(response.data)  # type: ignore[no-any-return]

    def _lister(self, plural: str) -> Callable[..., Any]:
        if plural == "jobs":
            return self.batch.list_namespaced_job
        if plural == "pods":
            return self.core.list_namespaced_pod

        def custom(namespace: str, **kwargs: Any) -> Any:
            return self.custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, **kwargs
            )

        return custom


# ---- watching: when each object was first seen, and its state as it changes ----------


Summary = Callable[[dict[str, Any]], Any]


class Tracker:
    """A watch of one kind in one namespace, in a thread: first-seen times and states.

    ``summary`` maps an object to the little the benchmark needs (a phase, a flag);
    ``changed`` records when each object's summary last changed. Times are
    ``time.monotonic()`` at the moment the event arrived.
    """

    def __init__(
        self,
        cluster: Cluster,
        plural: str,
        namespace: str,
        summary: Summary,
        selector: str = "",
        on_first: Callable[[dict[str, Any]], Any] | None = None,
    ) -> None:
        self.cluster = cluster
        self.on_first = on_first  # called with each object when first seen (in the thread)
        self.plural = plural
        self.namespace = namespace
        self.summarise = summary
        self.selector = selector
        self.objects: dict[str, Any] = {}
        self.bodies: dict[str, dict[str, Any]] = {}
        self.first_seen: dict[str, float] = {}
        self.changes: list[tuple[float, str, Any]] = []  # (time, name, new summary)
        self.events = 0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{plural}", daemon=True)
        self.keep_bodies = False

    def __enter__(self) -> Tracker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        version = self._list()
        self._version = version
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            # shutdown(), not close(): it wakes the thread blocked reading the stream.
            response.shutdown()
        self._thread.join(timeout=5)

    def _list(self) -> str:
        lister = self.cluster._lister(self.plural)
        kwargs: dict[str, Any] = {"_preload_content": False}
        if self.selector:
            kwargs["label_selector"] = self.selector
        page = json.loads(lister(self.namespace, **kwargs).data)
        for item in page["items"]:
            self._see(item, time.monotonic())
        return str(page["metadata"]["resourceVersion"])

    def _run(self) -> None:
        lister = self.cluster._lister(self.plural)
        while not self._stop.is_set():
            kwargs: dict[str, Any] = {
                "watch": True,
                "resource_version": self._version,
                "allow_watch_bookmarks": True,
                "timeout_seconds": 600,
                "_preload_content": False,
            }
            if self.selector:
                kwargs["label_selector"] = self.selector
            try:
                self._response = lister(self.namespace, **kwargs)
                for line in iter_resp_lines(self._response):
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":  # expired: start over from a list
                        self._version = self._list()
                        break
                    self._version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(obj, time.monotonic())
            except Exception:
                if self._stop.is_set():
                    return
                time.sleep(0.2)

    def _see(self, obj: dict[str, Any], now: float) -> None:
        name = obj["metadata"]["name"]
        summary = self.summarise(obj)
        if self.on_first is not None and name not in self.first_seen:
            self.on_first(obj)
        with self._lock:
            self.events += 1
            self.first_seen.setdefault(name, now)
            if self.keep_bodies:
                self.bodies[name] = obj
            if self.objects.get(name, _MISSING) != summary:
                self.objects[name] = summary
                self.changes.append((now, name, summary))
            self._lock.notify_all()

    def count(self, predicate: Callable[[Any], bool]) -> int:
        with self._lock:
            return sum(1 for s in self.objects.values() if predicate(s))

    def names(self, predicate: Callable[[Any], bool]) -> set[str]:
        with self._lock:
            return {name for name, s in self.objects.items() if predicate(s)}

    def wait(self, what: str, check: Callable[[Tracker], bool], timeout: float) -> float:
        """Block until ``check(self)`` holds; return the time of the event that made it so."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not check(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
                self._lock.wait(min(left, 1.0))
            return self.changes[-1][0] if self.changes else time.monotonic()


_MISSING = object()


def unit_phase(obj: dict[str, Any]) -> Any:
    return (obj.get("status") or {}).get("phase")


def job_done(obj: dict[str, Any]) -> Any:
    """``Complete`` or ``Failed`` once the Job controller says so, else None."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


# ---- the operator as a process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Usage:
    """What /proc says of a process: peak and current resident memory, CPU seconds."""

    peak_rss_mb: float
    rss_mb: float
    cpu_seconds: float

    @classmethod
    def of(cls, pid: int) -> Usage:
        fields = {}
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        # /proc/<pid>/stat: the command may hold spaces; fields count from after ")".
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(stat[11]), int(stat[12])
        return cls(
            peak_rss_mb=int(fields["VmHWM"].split()[0]) / 1024,
            rss_mb=int(fields["VmRSS"].split()[0]) / 1024,
            cpu_seconds=(utime + stime) / CLOCK_TICKS,
        )


@dataclass
class Operator:
    """``workunits run`` on one namespace, as a process of its own.

    ``profile`` names a file: the operator then runs under py-spy, which samples the
    thread holding the interpreter and writes its folded stacks there (flamegraph.pl,
    speedscope) when the operator stops.
    """

    kubeconfig: str
    namespace: str
    events: bool = False
    args: tuple[str, ...] = ()
    profile: str | None = None
    name: str = "operator"
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)
    log: pathlib.Path = field(init=False)

    def __post_init__(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log = LOGS / f"{self.name}-{self.namespace}-{uuid.uuid4().hex[:4]}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60) -> Operator:
        command = [sys.executable, "-m", "workunits.cli.main", *self._run_args()]
        if self.profile:
            # py-spy starts the operator itself and samples the thread that holds the
            # interpreter: threads waiting on a socket are not the operator's CPU.
            command = [
                str(pathlib.Path(sys.executable).parent / "py-spy"),
                "record",
                "--gil",
                "-o",
                self.profile,
                "-f",
                "raw",
                "--",
                *command,
            ]
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env
            )
        wait_for(f"{self.name} to be healthy", self._healthy, timeout)
        return self

    def _run_args(self) -> list[str]:
        args = ["run", "--namespace", self.namespace, "--health-port", str(self.port)]
        args += list(self.args)
        return args if self.events else [*args, "--no-events"]

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited: {self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1):
                return True
        except OSError:
            return False

    def usage(self) -> Usage:
        return Usage.of(self._python_pid())

    def _python_pid(self) -> int:
        """The operator's own pid: under py-spy, py-spy's child."""
        if not self.profile:
            return self.pid
        children = pathlib.Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        return int(children.split()[0])

    def kill(self) -> None:
        """SIGKILL, as when a node dies: no cleanup of any kind."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self._python_pid(), signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if self.profile:
            # py-spy writes its profile when its child ends.
            os.kill(self._python_pid(), signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
                return
            except subprocess.TimeoutExpired:
                pass
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Operator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# ---- the audit log: writes by verb, resource and client -----------------------------


def agent_of(user_agent: str) -> str:
    """Who wrote: ``operator``, ``bench``, or the component's own name."""
    name = user_agent.split("/")[0]
    if name in OPERATOR_AGENTS:
        return "operator"
    if name == BENCH_AGENT.split("/")[0]:
        return "bench"
    return name


@dataclass
class Audit:
    """The API server's audit log: one JSON line per write."""

    path: pathlib.Path

    @property
    def available(self) -> bool:
        return self.path.is_file()

    def offset(self) -> int:
        return self.path.stat().st_size if self.available else 0

    def entries(self, start: int, end: int | None = None) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as f:
            f.seek(start)
            data = f.read() if end is None else f.read(end - start)
        # The last line may be half written: only whole lines count.
        for line in data.split(b"\n"):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def writes(
        self, start: int, end: int | None = None, namespace: str | None = None
    ) -> Counter[tuple[str, str, str]]:
        """(agent, verb, resource[/subresource]) -> count, for writes that succeeded."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for entry in self.entries(start, end):
            ref = entry.get("objectRef") or {}
            if namespace is not None and ref.get("namespace") != namespace:
                continue
            if entry.get("stage") != "ResponseComplete":
                continue
            resource = ref.get("resource", "?")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            code = (entry.get("responseStatus") or {}).get("code", 200)
            verb = entry.get("verb", "?") + ("" if code < 400 else f" ({code})")
            counts[(agent_of(entry.get("userAgent", "")), verb, resource)] += 1
        return counts

    def settle(self, namespace: str, quiet: float = 2.0, timeout: float = 30.0) -> int:
        """Wait until the operator has written nothing in ``namespace`` for ``quiet``
        seconds; return the log's offset then."""
        deadline = time.monotonic() + timeout
        start = self.offset()
        last_change = time.monotonic()
        seen = 0
        while time.monotonic() < deadline:
            now = sum(
                n
                for (agent, _, _), n in self.writes(start, namespace=namespace).items()
                if agent == "operator"
            )
            if now != seen:
                seen, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet:
                break
            time.sleep(0.25)
        return self.offset()
