"""``python -m bench run <workload> [options]``: see docs/performance.md.
``python -m bench chaos [options]``: the fault-injection run, see docs/reliability.md."""

from __future__ import annotations

import argparse
import functools
import resource
import secrets
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from . import report
from .chaos import runner as chaos_runner
from .options import SIZES, Options, options_for
from .targets import (
    ROOT,
    Target,
    free_ports,
    redis_reachable,
    start_channels_tutorial,
    start_chat,
    start_relay,
    tutorial_redis_url,
)
from .workloads import WORKLOADS, Result

RESULTS = ROOT / "bench" / "results"


def _floats(text: str | None) -> list[float] | None:
    return [float(part) for part in text.split(",")] if text else None


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run a workload against the calibration targets and the chat server"
    )
    run.add_argument("workload", choices=[*WORKLOADS, "all"])
    run.add_argument("--config", choices=["embedded", "production"], default="embedded")
    run.add_argument("--processes", type=int, default=1, help="chat server processes")
    run.add_argument(
        "--server",
        default="uvicorn",
        help="ASGI server(s), comma-separated: uvicorn, daphne, granian",
    )
    run.add_argument("--no-relay", action="store_true", help="skip the calibration relay")
    run.add_argument(
        "--no-tutorial",
        action="store_true",
        help="skip the Django Channels tutorial (the second calibration target)",
    )
    run.add_argument("--size", choices=list(SIZES), default="small")
    run.add_argument("--loadgen-processes", type=int)
    run.add_argument("--step-seconds", type=float)
    run.add_argument("--rates", help="1:1 offered sends/s, comma-separated")
    run.add_argument("--pairs", type=int)
    run.add_argument("--groups", type=int)
    run.add_argument("--group-size", type=int)
    run.add_argument("--group-rates", help="group offered sends/s, comma-separated")
    run.add_argument("--extra-steps", type=int)
    run.add_argument("--idle-connections", type=int)
    run.add_argument(
        "--idle-seconds", type=float, help="how long idle connections are watched for CPU"
    )
    run.add_argument("--storm-pairs", type=int)
    run.add_argument("--history-messages", type=int)
    run.add_argument("--history-reads", type=int)
    run.add_argument("--heartbeat-connections", type=int)
    run.add_argument("--heartbeat-rates", help="offered pings/s, comma-separated")
    run.add_argument(
        "--ack-seconds", type=float, help="client ack interval (0: no acks); default 1"
    )
    run.add_argument(
        "--profile", action="store_true", help="py-spy the chat server during rate steps"
    )
    run.add_argument("--first-port", type=int, default=18100)
    run.add_argument("--out", type=Path, default=RESULTS)
    chaos = commands.add_parser(
        "chaos", help="apply a seeded schedule of faults to an isolated cluster and check"
    )
    chaos_runner.add_arguments(chaos)
    chaos.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def build_options(args: argparse.Namespace) -> Options:
    return options_for(
        args.size,
        config=args.config,
        processes=args.processes,
        servers=[s.strip() for s in args.server.split(",") if s.strip()],
        relay=not args.no_relay,
        tutorial=not args.no_tutorial,
        loadgen_processes=args.loadgen_processes,
        first_port=args.first_port,
        step_seconds=args.step_seconds,
        rates=_floats(args.rates),
        pairs=args.pairs,
        groups=args.groups,
        group_size=args.group_size,
        group_rates=_floats(args.group_rates),
        extra_steps=args.extra_steps,
        idle_connections=args.idle_connections,
        idle_seconds=args.idle_seconds,
        storm_pairs=args.storm_pairs,
        history_messages=args.history_messages,
        history_reads=args.history_reads,
        heartbeat_connections=args.heartbeat_connections,
        heartbeat_rates=_floats(args.heartbeat_rates),
        profile=args.profile or None,
        ack_seconds=args.ack_seconds,
    )


def _calibration_port(options: Options, offset: int) -> int:
    """Past the chat server's ports (18190, 18191 by default), or any free one."""
    return options.first_port + offset if options.first_port else free_ports(1)[0]


def plan_targets(options: Options) -> list[tuple[str, Callable[[], Target]]]:
    """What a workload runs against, in order: the calibration targets first, then each
    chat server, as (label, start). Ports are picked when a target starts."""
    plans: list[tuple[str, Callable[[], Target]]] = []
    if options.relay:
        plans.append(("relay", lambda: start_relay(port=_calibration_port(options, 90))))
    if options.tutorial:
        if redis_reachable(tutorial_redis_url()):
            plans.append(
                (
                    "channels tutorial",
                    lambda: start_channels_tutorial(port=_calibration_port(options, 91)),
                )
            )
        else:
            print(
                f"skipping the Channels tutorial: no Redis at {tutorial_redis_url()} "
                "(set BENCH_REDIS_URL, or --no-tutorial)",
                file=sys.stderr,
            )
    run_id = secrets.token_hex(3)
    for server in options.servers:
        start = functools.partial(
            start_chat,
            config=options.config,
            processes=options.processes,
            server=server,
            first_port=options.first_port,
            run_id=run_id,
        )
        plans.append((f"chat ({options.config}, {server})", start))
    return plans


def run_workload(workload: str, options: Options) -> list[Result]:
    """Run one workload against each planned target, one at a time."""
    results: list[Result] = []
    for label, start in plan_targets(options):
        print(f"{workload}: {label}", file=sys.stderr, flush=True)
        target = start()
        try:
            results.append(WORKLOADS[workload](target, options))
        except Exception:
            print(target.log_tail(), file=sys.stderr)
            raise
        finally:
            target.stop()
    return results


def _raise_fd_limit() -> None:
    # Servers and load generators inherit this; 10,000+ sockets need more than 1,024.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(hard, 200_000)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _raise_fd_limit()
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.command == "chaos":
        return chaos_runner.run_chaos(
            chaos_runner.options_from(args), out=args.out, command=command
        )
    options = build_options(args)
    workloads = list(WORKLOADS) if args.workload == "all" else [args.workload]
    for workload in workloads:
        results = run_workload(workload, options)
        folder = report.write(
            results,
            workload=workload,
            command=command,
            options={k: v for k, v in asdict(options).items() if k != "faults"},
            root=args.out,
        )
        print(f"\n{workload}\n" + report.headline_table(results), flush=True)
        best = report.fastest(results)
        if best:
            print(best)
        print(f"report: {folder / 'report.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
