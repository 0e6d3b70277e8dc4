"""The `workunits` CLI against the local control plane and the shared operator."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from tests.kube import ROOT, apply, get, kubectl, unit_phase, wait_for, workunit

FAIL = {"sim.workunits.io/outcome": "fail"}
HANG = {"sim.workunits.io/outcome": "hang"}
ONE_ATTEMPT = {"retry": {"maxAttempts": 1}}


def cli(*args: str, timeout: float = 90, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "workunits.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def in_terminal(*args: str, timeout: float = 90) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal, as a person would; return its exit code and output."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, with the terminal as its stdout
        os.environ.update({"COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"})
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "workunits.cli.main", *args])
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_watch_exits_0_when_the_unit_succeeds(ns: str) -> None:
    apply(workunit("fine"), ns)
    result = cli("watch", "fine", "-n", ns, "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert "workunit/fine Succeeded" in result.stdout.splitlines()[-1]


def test_watch_exits_1_when_the_unit_fails(ns: str) -> None:
    apply(workunit("broken", ONE_ATTEMPT, pod_labels=FAIL), ns)
    result = cli("watch", "wu/broken", "-n", ns, "--timeout", "60")
    assert result.returncode == 1, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("workunit/broken Failed (Error)"), last


def test_watch_draws_a_live_progress_bar_on_a_terminal(ns: str) -> None:
    # A unit that runs until its attempt times out: long enough for frames drawn while
    # it runs, however slowly the terminal starts; then it fails, and watch says so.
    spec = {"attemptTimeoutSeconds": 12, "retry": {"maxAttempts": 1}}
    apply(workunit("slow", spec, pod_labels=HANG), ns)
    code, output = in_terminal("watch", "slow", "-n", ns, "--interval", "0.3", "--timeout", "90")
    assert code == 1, output
    assert "\x1b[" in output  # drawn with colours and cursor moves, not printed as lines
    assert "workunit/slow" in output
    assert "━" in output  # the bar
    assert "running 1" in output  # a frame drawn while the attempt ran
    assert "workunit/slow Failed (DeadlineExceeded) after" in output


def test_submit_creates_and_watches(ns: str, tmp_path: Any) -> None:
    manifest = tmp_path / "unit.yaml"
    manifest.write_text(json.dumps(workunit("submitted")))
    result = cli("submit", str(manifest), "-n", ns, "--watch", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "workunit/submitted created"
    assert "workunit/submitted Succeeded" in result.stdout


def test_get_and_describe_show_attempts_and_reasons(ns: str) -> None:
    apply(
        workunit(
            "twice",
            {"retry": {"maxAttempts": 2, "backoff": {"initialDelaySeconds": 0}}},
            pod_labels=FAIL,
        ),
        ns,
    )
    unit_phase("twice", ns, ("Failed",))

    listed = cli("get", "wu", "-n", ns)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()[:2]
    assert header.split() == ["NAME", "PHASE", "ATTEMPTS", "REASON", "AGE"]
    assert row.split()[:4] == ["twice", "Failed", "2", "Error"]

    described = cli("describe", "twice", "-n", ns)
    assert described.returncode == 0, described.stderr
    text = described.stdout
    assert "Phase:          Failed" in text
    assert "Attempts:       2 (at most 2)" in text
    history = text.split("History:\n")[1].split("Conditions:")[0].splitlines()
    assert [line.split()[:5] for line in history[1:]] == [
        ["1", history[1].split()[1], "Failed", "1", "Error"],
        ["2", history[2].split()[1], "Failed", "1", "Error"],
    ]
    assert "Retry" in history[1] and "Fail (no attempts left)" in history[2]
    assert "Events:" in text and "AttemptStarted" in text


def test_cancel_stops_a_running_unit(ns: str) -> None:
    apply(workunit("forever", pod_labels=HANG), ns)
    unit_phase("forever", ns, ("Running",))
    result = cli("cancel", "forever", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "workunit/forever cancelled"
    unit_phase("forever", ns, ("Cancelled",))
    assert cli("watch", "forever", "-n", ns, "--timeout", "30").returncode == 1


def test_suspend_holds_the_next_attempt_and_resume_releases_it(ns: str) -> None:
    spec = {"retry": {"maxAttempts": 3, "backoff": {"initialDelaySeconds": 15, "jitter": 0}}}
    apply(workunit("later", spec, pod_labels={"sim.workunits.io/succeed-on-attempt": "2"}), ns)
    backing = unit_phase("later", ns, ("BackingOff",))
    due = datetime.fromisoformat(backing["status"]["nextAttemptAt"].replace("Z", "+00:00"))

    assert cli("suspend", "wu/later", "-n", ns).returncode == 0
    assert datetime.now(UTC) < due, "suspended too late to tell anything"
    assert (get("workunit", "later", ns) or {})["spec"]["suspend"] is True
    # Past the time the second attempt was due: it must not have started.
    time.sleep(max((due - datetime.now(UTC)).total_seconds(), 0) + 3)
    unit = get("workunit", "later", ns) or {}
    assert unit["status"]["attempts"] == 1, unit["status"]

    result = cli("resume", "wu/later", "-n", ns)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "workunit/later resumed"
    done = unit_phase("later", ns, ("Succeeded",))
    assert done["status"]["attempts"] == 2


def test_a_wrong_name_is_a_usage_error(ns: str) -> None:
    result = cli("describe", "nope", "-n", ns)
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f'error: no workjob or workunit named "nope" in namespace "{ns}"'
    )
    result = cli("rerun", "wu/nope", "-n", ns)
    assert result.returncode == 2
    assert "this command takes a workjob" in result.stderr


def test_logs_of_an_attempt_out_of_range_is_a_usage_error(ns: str) -> None:
    apply(workunit("once"), ns)
    unit_phase("once", ns, ("Succeeded",))
    result = cli("logs", "once", "-n", ns, "--attempt", "3")
    assert result.returncode == 2
    assert "has attempts 1 to 1, not 3" in result.stderr


def test_no_reachable_cluster_is_one_clear_line(tmp_path: Any) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    result = cli("get", "--kubeconfig", str(config), timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot reach the cluster at https://127.0.0.1:1"
    ), result.stderr


def _kwok_serves_logs() -> bool:
    found = kubectl("get", "crd", "logs.kwok.x-k8s.io", check=False)
    return found.returncode == 0


def test_logs_shows_the_pod_log(ns: str, tmp_path: Any) -> None:
    if not _kwok_serves_logs():
        pytest.fail(
            "kwok serves pod logs only with its Logs CRD enabled (kwokctl --enable-crds Logs); "
            "this cluster was created without it: `hack/cluster.sh up` makes it again"
        )
    # kwok serves a pod's log from a file in the container runtime's (CRI) format.
    lines = ["reading input", "42 rows written"]
    log_file = tmp_path / "work.log"
    log_file.write_text(
        "".join(
            f"2026-01-01T00:00:0{n}.000000000Z stdout F {line}\n" for n, line in enumerate(lines)
        )
    )
    apply(workunit("talky", pod_labels={}), ns)
    done = unit_phase("talky", ns, ("Succeeded",))
    job = done["status"]["jobName"]
    pod = wait_for(
        "the unit's pod",
        lambda: json.loads(
            kubectl(
                "get", "pods", "-n", ns, "-l", f"batch.kubernetes.io/job-name={job}", "-o", "json"
            ).stdout
        )["items"],
    )[0]["metadata"]["name"]
    apply(
        {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": pod},
            "spec": {"logs": [{"containers": ["work"], "logsFile": str(log_file)}]},
        },
        ns,
    )

    def read() -> str | None:
        result = cli("logs", "talky", "-n", ns, "--attempt", "1")
        return result.stdout if result.returncode == 0 and result.stdout else None

    assert wait_for("the log through the CLI", read, timeout=30) == "".join(
        f"{line}\n" for line in lines
    )


def test_a_metrics_port_that_is_taken_stops_the_operator_with_a_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = ["run", "--namespace", "wu-it-none", "--metrics-port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", "workunits.cli.main", *command],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=ROOT,
        )
    assert result.returncode != 0
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stdout + result.stderr


def test_output_cut_short_ends_the_command_quietly() -> None:
    # `workunits get | head -1`: the reader goes away before the command writes.
    process = subprocess.Popen(
        [sys.executable, "-m", "workunits.cli.main", "get", "-A"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    with process.stderr:
        process.stdout.close()
        errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == -13  # SIGPIPE, as other tools end
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
