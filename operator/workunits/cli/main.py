"""``workunits``: run the operator, print the CRDs, and look at work from a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from workunits import __version__
from workunits.settings import Settings


def _cmd_run(args: argparse.Namespace) -> int:
    from workunits.handlers.operator import run

    settings = Settings()
    if args.namespace:
        settings.namespaces = [n for part in args.namespace for n in part.split(",") if n]
    if args.all_namespaces:
        settings.namespaces = []
    for name in ("workers", "log_format", "metrics_port", "health_port", "bind_address"):
        value = getattr(args, name)
        if value is not None:
            setattr(settings, name, value)
    if args.verbose:
        settings.verbose = True
    if args.no_events:
        settings.events = False
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
        help="serve /healthz on this port (0: off); env WORKUNITS_HEALTH_PORT",
    )
    run.add_argument(
        "--bind-address", help="address for metrics and health; env WORKUNITS_BIND_ADDRESS"
    )
    run.add_argument(
        "--no-events",
        action="store_true",
        help="post no Kubernetes Events; env WORKUNITS_EVENTS=false",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="print the CustomResourceDefinitions")
    crds.add_argument("-o", "--output-dir", help="write one file per CRD into this folder")
    crds.set_defaults(func=_cmd_crds)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
