"""``manage.py lifespan check`` and ``manage.py lifespan graph``."""

from __future__ import annotations

import asyncio
from argparse import SUPPRESS
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifespan_di.core.graph import ResourceGraph, build_graph
from lifespan_di.core.lifespan import ContainerLifespan
from lifespan_di.core.report import ResourceRecord
from lifespan_di.exceptions import LifespanDIError, ShutdownError, StartupError
from lifespan_di.preflight import prepare_lifespan

STATUS_LABELS = {"pending": "not started"}
SKIP_CHECKS = (
    "Skip Django's system checks. The checks of the server's startup still run, as "
    "they do when the server starts."
)


class Command(BaseCommand):
    help = (
        "Start and stop every resource as the server would (check), or show the "
        "order they start in (graph)."
    )
    # The system checks run in handle(), after the checks the server's startup runs,
    # so that a startup problem reads exactly as the server reports it.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--skip-checks", action="store_true", help=SKIP_CHECKS)
        actions = parser.add_subparsers(dest="action", required=True)
        check = actions.add_parser(
            "check",
            help=(
                "Start and stop every resource exactly as the server would; print a "
                "report and exit non-zero naming any resource that failed."
            ),
        )
        graph = actions.add_parser(
            "graph", help="Print the start order by waves, or a Mermaid diagram."
        )
        for action in (check, graph):
            _add_base_options(action)
        graph.add_argument(
            "--format",
            choices=["text", "mermaid"],
            default="text",
            help="text (default): waves in start order; mermaid: a flowchart.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lifespan = asyncio.run(prepare_lifespan())
        except LifespanDIError as error:
            raise CommandError(str(error)) from error
        if not options["skip_checks"]:
            self.check()
        if options["action"] == "check":
            self.check_resources(lifespan)
        else:
            self.print_graph(
                build_graph(lifespan.container, lifespan.managers), options["format"]
            )

    def check_resources(self, lifespan: ContainerLifespan) -> None:
        """Run the startup and the shutdown the server would run, and report them."""
        failure = asyncio.run(_start_and_stop(lifespan))
        self.stdout.write(_table(list(lifespan.records.values())))
        if failure is not None:
            raise CommandError(_failure_message(failure))
        self.stdout.write(self.style.SUCCESS(_success_message(lifespan)))

    def print_graph(self, graph: ResourceGraph, output: str) -> None:
        """Print the resources in start order: by waves, or as a Mermaid flowchart."""
        if output == "mermaid":
            ids = {node: f"r{index}" for index, node in enumerate(graph.nodes)}
            self.stdout.write("flowchart LR")
            for node in graph.nodes:
                self.stdout.write(f'    {ids[node]}["{node.path}"]')
            for node in graph.nodes:
                for dependency in node.dependencies:
                    self.stdout.write(f"    {ids[dependency]} --> {ids[node]}")
            return
        for number, wave in enumerate(graph.waves(), start=1):
            self.stdout.write(f"Wave {number}:")
            for node in wave:
                after = ", ".join(dep.path for dep in node.dependencies)
                self.stdout.write(
                    f"  {node.path}" + (f" (after {after})" if after else "")
                )


def _add_base_options(parser: CommandParser) -> None:
    """Accept Django's options after the action too: ``lifespan check -v 2``.

    Their defaults are suppressed, so that an option given before the action is not
    reset by the action's parser, which argparse runs after the command's.
    """
    parser.add_argument(
        "-v",
        "--verbosity",
        type=int,
        choices=[0, 1, 2, 3],
        default=SUPPRESS,
        help="Verbosity level; 0=minimal, 1=normal, 2=verbose, 3=very verbose output.",
    )
    parser.add_argument(
        "--settings",
        default=SUPPRESS,
        help='The Python path to a settings module, e.g. "myproject.settings".',
    )
    parser.add_argument(
        "--pythonpath",
        default=SUPPRESS,
        help="A directory to add to the Python path.",
    )
    for flag, help_text in (
        ("--traceback", "Display a full stack trace on CommandError exceptions."),
        ("--no-color", "Don't colorize the command output."),
        ("--force-color", "Force colorization of the command output."),
        ("--skip-checks", SKIP_CHECKS),
    ):
        parser.add_argument(flag, action="store_true", default=SUPPRESS, help=help_text)


def _success_message(lifespan: ContainerLifespan) -> str:
    records = list(lifespan.records.values())
    if not records:
        return f"{lifespan.name} has no resources to start or stop."
    if len(records) == 1:
        return (
            f"The only resource of {lifespan.name}, {records[0].path}, started and "
            "stopped cleanly."
        )
    return (
        f"All {len(records)} resources of {lifespan.name} started and stopped cleanly."
    )


async def _start_and_stop(engine: ContainerLifespan) -> LifespanDIError | None:
    try:
        await engine.startup()
    except StartupError as error:
        return error
    try:
        await engine.shutdown()
    except ShutdownError as error:
        return error
    return None


def _failure_message(failure: LifespanDIError) -> str:
    if isinstance(failure, ShutdownError):
        return failure.message
    return str(failure)


def _table(records: list[ResourceRecord]) -> str:
    rows = [("resource", "depends on", "start time", "stop time", "status")]
    rows += [
        (
            record.path,
            ", ".join(record.dependencies) or "-",
            _milliseconds(record.start_seconds),
            _milliseconds(record.stop_seconds),
            STATUS_LABELS.get(record.status, record.status),
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def _milliseconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"
