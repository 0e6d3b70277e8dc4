"""``python -m bench``: run the benchmarks on the cluster KUBECONFIG names.

Each benchmark runs ``--repeat`` times, each time in a fresh namespace with a fresh
operator; the namespace is deleted (and its deletion awaited) before the next one,
so one run's garbage collection does not slow the next. Results go to a JSON file
and to the generated block of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys
import traceback
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException

from bench import report, scenarios
from bench.harness import ROOT, Cluster

HERE = pathlib.Path(__file__).resolve().parent
ORDER = ("writes", "latency", "overhead", "recovery", "fanout")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--only", help=f"comma-separated subset of {','.join(ORDER)}")
    p.add_argument("--repeat", type=int, default=3, help="runs of each benchmark (3)")
    p.add_argument("--n", type=int, default=1000, help="overhead: units and Jobs (1000)")
    p.add_argument("--writes-n", type=int, default=20, help="writes: units per case (20)")
    p.add_argument("--fanout-n", type=int, default=10000, help="fan-out: units (10000)")
    p.add_argument("--parallelism", type=int, default=500, help="fan-out: parallelism (500)")
    p.add_argument("--rate", type=float, default=50, help="latency: units per second (50)")
    p.add_argument("--seconds", type=float, default=30, help="latency: duration (30)")
    p.add_argument("--recovery-n", type=int, default=1000, help="recovery: units (1000)")
    p.add_argument("--duration-ms", type=int, default=3000, help="recovery: pod run time")
    p.add_argument(
        "--fanout-timeout", type=float, default=1800, help="fan-out: give up after (1800 s)"
    )
    p.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        help="extra argument for `workunits run` (repeat), e.g. --operator-arg=--workers=16",
    )
    p.add_argument("--profile-dir", help="run the operator under py-spy; flame graphs here")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the other benchmarks' results already in --out (run a subset again)",
    )
    p.add_argument("--out", default=str(HERE / "results.json"), help="raw results (JSON)")
    p.add_argument(
        "--markdown", default=str(HERE / "RESULTS.md"), help="results page ('' for none)"
    )
    return p


def recorded_command(argv: list[str]) -> str:
    """The command as RESULTS.md shows it: what was measured, not where the figures
    were written (``--out``, ``--markdown``), and no path of the machine it ran on."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--out", "--markdown"):
            skip = True
        elif not arg.startswith(("--out=", "--markdown=")):
            kept.append(arg.replace(f"{ROOT}/", ""))
    return shlex.join(["python", "-m", "bench", *kept])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",")] if args.only else list(ORDER)
    unknown = set(chosen) - set(ORDER)
    if unknown:
        print(f"unknown benchmarks: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2

    cluster = Cluster()
    cluster.install_crds()
    runners: dict[str, Callable[[scenarios.Env, int], dict[str, Any]]] = {
        "overhead": lambda env, i: scenarios.overhead(env, args.n, jobs_first=i % 2 == 0),
        "writes": lambda env, i: scenarios.writes(env, args.writes_n),
        "fanout": lambda env, i: scenarios.fanout(
            env, args.fanout_n, args.parallelism, timeout=args.fanout_timeout
        ),
        "latency": lambda env, i: scenarios.latency(env, args.rate, args.seconds),
        "recovery": lambda env, i: scenarios.recovery(env, args.recovery_n, args.duration_ms),
    }
    results: dict[str, Any] = {
        "machine": report.machine(cluster.server_version()),
        "command": recorded_command(argv if argv is not None else sys.argv[1:]),
        "scenarios": {},
    }
    for name in (n for n in ORDER if n in chosen):
        runs = []
        for i in range(args.repeat):
            print(f"bench: {name} run {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
            runs.append(run_one(cluster, name, i, runners[name], args))
            print(f"bench: {name}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
            # Written after every run: an interrupted benchmark keeps what it measured.
            results["scenarios"][name] = {"runs": runs, "summary": report.summarise(runs)}
            save(results, args)
    print(f"bench: results in {args.out}", file=sys.stderr)
    return 0


def save(results: dict[str, Any], args: argparse.Namespace) -> None:
    out = pathlib.Path(args.out)
    if args.merge and out.is_file():
        earlier = json.loads(out.read_text())
        results = {**results, "scenarios": {**earlier["scenarios"], **results["scenarios"]}}
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        report.write_markdown(pathlib.Path(args.markdown), results)


def run_one(
    cluster: Cluster,
    name: str,
    i: int,
    runner: Callable[[scenarios.Env, int], dict[str, Any]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    namespace = cluster.new_namespace(f"wu-bench-{name}")
    profile = None
    if args.profile_dir:
        pathlib.Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
        profile = str(pathlib.Path(args.profile_dir) / f"{name}-{i + 1}.folded.txt")
    env = scenarios.Env(cluster, namespace, tuple(args.operator_arg), profile)
    try:
        return runner(env, i)
    except (TimeoutError, RuntimeError, ApiException) as exc:
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        cluster.delete_namespace(namespace)
        cluster.await_namespace_gone(namespace)


if __name__ == "__main__":
    sys.exit(main())
