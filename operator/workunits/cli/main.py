"""``workunits``: run the operator, print the CRDs, and look at work from a terminal."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from workunits import __version__
from workunits.settings import Settings


def _cmd_run(args: argparse.Namespace) -> int:
    from workunits.handlers.operator import run

    settings, unreadable = Settings.from_environment()
    if args.namespace:
        settings.namespaces = [n for part in args.namespace for n in part.split(",") if n]
    if args.all_namespaces:
        settings.namespaces = []
    for name in (
        "workers",
        "log_format",
        "metrics_port",
        "health_port",
        "bind_address",
        "lease_name",
        "lease_namespace",
        "lease_duration",
        "running_delay",
        "api_threads",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    if args.verbose:
        settings.verbose = True
    if args.no_events:
        settings.events = False
    if args.leader_elect:
        settings.leader_elect = True
    problems = unreadable + settings.problems()
    if problems:
        for problem in problems:
            sys.stderr.write(f"error: {problem}\n")
        return 2
    run(settings)
    return 0


def _cmd_crds(args: argparse.Namespace) -> int:
    from workunits.api.crd import all_crds, render

    crds = all_crds()
    if args.output_dir:
        import pathlib

        out = pathlib.Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, crd in crds.items():
            (out / name).write_text(render(crd))
        return 0
    sys.stdout.write("---\n".join(render(crd) for crd in crds.values()))
    return 0


# -- looking at work, from a terminal ------------------------------------------------------


def _cluster(args: argparse.Namespace) -> Any:
    from workunits.cli.cluster import Cluster

    return Cluster(args.kubeconfig, args.context)


def _namespace(args: argparse.Namespace, cluster: Any) -> str:
    return str(args.namespace or cluster.namespace)


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _cmd_get(args: argparse.Namespace) -> int:
    from workunits.cli.cluster import KINDS, kind_of
    from workunits.cli.show import get

    what, names = args.kind, list(args.names)
    kinds = KINDS if what in ("all", "work") else (kind_of(what),)
    cluster = _cluster(args)
    if args.all_namespaces and names:
        raise _usage("a name cannot go with -A")
    namespace = None if args.all_namespaces else _namespace(args, cluster)
    if names and len(kinds) > 1:
        raise _usage("name the kind when asking for names: get wu NAME or get wj NAME")
    return get(cluster, kinds, namespace, names, args.output, sys.stdout)


def _cmd_describe(args: argparse.Namespace) -> int:
    from workunits.cli.show import describe

    cluster = _cluster(args)
    return describe(cluster, args.names, _namespace(args, cluster), sys.stdout)


def _cmd_watch(args: argparse.Namespace) -> int:
    from workunits.cli.commands import watch

    cluster = _cluster(args)
    namespace = _namespace(args, cluster)
    return watch(cluster, args.name, namespace, _console(), args.interval, args.timeout)


def _cmd_logs(args: argparse.Namespace) -> int:
    from workunits.cli.commands import logs

    cluster = _cluster(args)
    namespace = _namespace(args, cluster)
    return logs(
        cluster, args.name, namespace, args.attempt, args.container, args.follow, sys.stdout
    )


def _cmd_set(verb: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        from workunits.cli.commands import set_spec

        cluster = _cluster(args)
        return set_spec(cluster, args.names, _namespace(args, cluster), verb, sys.stdout)

    return command


def _cmd_rerun(args: argparse.Namespace) -> int:
    from workunits.cli.commands import rerun

    cluster = _cluster(args)
    return rerun(cluster, args.name, _namespace(args, cluster), sys.stdout)


def _cmd_submit(args: argparse.Namespace) -> int:
    from workunits.cli.commands import submit

    cluster = _cluster(args)
    namespace = _namespace(args, cluster)
    return submit(
        cluster, args.file, namespace, args.watch, _console(), args.interval, args.timeout
    )


def _usage(message: str) -> Exception:
    from workunits.cli.cluster import CliError

    return CliError(message, code=2)


def _connection_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG") or None, help="kubeconfig file"
    )
    common.add_argument("--context", help="kubeconfig context to use")
    common.add_argument("-n", "--namespace", help="namespace (default: the context's)")
    return common


def _watch_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--interval", type=float, default=1.0, help="seconds between reads (default 1)"
    )
    command.add_argument("--timeout", type=float, help="give up after this many seconds")


def _work_commands(sub: Any) -> None:
    common = _connection_flags()

    get = sub.add_parser(
        "get",
        parents=[common],
        help="list WorkUnits and WorkJobs",
        description="List WorkUnits and WorkJobs, as `kubectl get` does.",
    )
    get.add_argument(
        "kind",
        nargs="?",
        default="all",
        help="workunits (wu), workjobs (wj) or all (default)",
    )
    get.add_argument("names", nargs="*", help="only these")
    get.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    get.add_argument(
        "-o",
        "--output",
        choices=["table", "wide", "json", "yaml", "name"],
        default="table",
        help="output format",
    )
    get.set_defaults(func=_cmd_get)

    describe = sub.add_parser(
        "describe",
        parents=[common],
        help="attempts, reasons, result, conditions and events of objects",
    )
    describe.add_argument("names", nargs="+", metavar="NAME", help="NAME, wu/NAME or wj/NAME")
    describe.set_defaults(func=_cmd_describe)

    watch = sub.add_parser(
        "watch",
        parents=[common],
        help="follow a WorkJob (or WorkUnit) to its end: exit 0 if it succeeded, 1 if not",
    )
    watch.add_argument("name", metavar="NAME", help="NAME, wj/NAME or wu/NAME")
    _watch_flags(watch)
    watch.set_defaults(func=_cmd_watch)

    logs = sub.add_parser("logs", parents=[common], help="the log of a WorkUnit's attempt")
    logs.add_argument("name", metavar="UNIT")
    logs.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    logs.add_argument("-c", "--container", help="container (default: the first)")
    logs.add_argument("-f", "--follow", action="store_true", help="stream the log")
    logs.set_defaults(func=_cmd_logs)

    rerun = sub.add_parser(
        "rerun",
        parents=[common],
        help="run a WorkJob's failed, cancelled and never-run units again; a cancelled "
        "WorkJob is un-cancelled (spec.cancel cleared) in the same patch",
    )
    rerun.add_argument("name", metavar="WORKJOB")
    rerun.set_defaults(func=_cmd_rerun)

    for verb, text in (
        ("cancel", "stop for good: no new attempt, running ones are stopped"),
        ("suspend", "hold new attempts (running ones go on)"),
        ("resume", "undo suspend"),
    ):
        command = sub.add_parser(verb, parents=[common], help=f"{text}; WorkJobs or WorkUnits")
        command.add_argument("names", nargs="+", metavar="NAME", help="NAME, wj/NAME or wu/NAME")
        command.set_defaults(func=_cmd_set(verb))

    submit = sub.add_parser(
        "submit", parents=[common], help="create the objects of a manifest (and watch them)"
    )
    submit.add_argument("file", metavar="FILE", help="a YAML manifest, or - for stdin")
    submit.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="then follow every WorkJob and WorkUnit it created until all have ended: "
        "exit 0 if all succeeded, 1 if not",
    )
    _watch_flags(submit)
    submit.set_defaults(func=_cmd_submit)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="workunits", description=__doc__)
    top.add_argument("--version", action="version", version=f"workunits {__version__}")
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator on the current kubeconfig's cluster")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch only this namespace (repeat, or comma-separate); "
        "env WORKUNITS_NAMESPACES. Default: all namespaces",
    )
    run.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)"
    )
    run.add_argument("--workers", type=int, help="concurrent reconciles; env WORKUNITS_WORKERS")
    run.add_argument(
        "--api-threads", type=int, help="threads for API calls; env WORKUNITS_API_THREADS"
    )
    run.add_argument(
        "--log-format", choices=["text", "json"], help="log format; env WORKUNITS_LOG_FORMAT"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on this port (0: off); env WORKUNITS_METRICS_PORT",
    )
    run.add_argument(
        "--health-port",
        type=int,
        help="serve /healthz and /readyz on this port (0: off); env WORKUNITS_HEALTH_PORT",
    )
    run.add_argument(
        "--bind-address", help="address for metrics and health; env WORKUNITS_BIND_ADDRESS"
    )
    run.add_argument(
        "--no-events",
        action="store_true",
        help="post no Kubernetes Events; env WORKUNITS_EVENTS=false",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a Lease acts; "
        "env WORKUNITS_LEADER_ELECT",
    )
    run.add_argument("--lease-name", help="the Lease's name; env WORKUNITS_LEASE_NAME")
    run.add_argument(
        "--lease-namespace",
        help="the Lease's namespace; env WORKUNITS_LEASE_NAMESPACE, else POD_NAMESPACE",
    )
    run.add_argument(
        "--lease-duration",
        type=float,
        help="seconds a leader's Lease lasts without renewal (default 15); "
        "env WORKUNITS_LEASE_DURATION",
    )
    run.add_argument(
        "--running-delay",
        type=float,
        metavar="SECONDS",
        help="report a new attempt as Running once its Job is this old (default 2); an "
        "attempt that ends sooner is reported once, with its outcome, saving a status "
        "write; 0 reports at once; env WORKUNITS_RUNNING_DELAY",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("-o", "--output-dir", help="write one file per CRD into this folder")
    crds.set_defaults(func=_cmd_crds)

    _work_commands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command in ("run", "crds"):
        return int(args.func(args))

    from workunits.cli.cluster import CliError

    # Output cut short (`| head`) ends the command quietly, as it does other tools.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return int(args.func(args))
    except CliError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
