"""``manage.py lifespan check`` and ``manage.py lifespan graph``."""

from __future__ import annotations

import asyncio
from typing import Any

from dependency_injector import containers
from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifespan_di.conf import (
    configured_container,
    configured_lifespan,
    container_configured,
)
from lifespan_di.engine import ContainerLifespan, ResourceRecord, manager_nodes
from lifespan_di.exceptions import LifespanDIError, ShutdownError, StartupError
from lifespan_di.graph import ResourceGraph, build_graph
from lifespan_di.injection import unresolved_view_markers
from lifespan_di.register import registered_managers

STATUS_LABELS = {"pending": "not started", "stop failed": "stop failed"}


class Command(BaseCommand):
    help = (
        "Start and stop every resource as the server would (check), or show the "
        "order they start in (graph)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser(
            "check",
            help=(
                "Start and stop every resource exactly as the server would; print a "
                "report and exit non-zero naming any resource that failed."
            ),
        )
        graph = actions.add_parser(
            "graph", help="Print the start order by waves, or a Mermaid diagram."
        )
        graph.add_argument(
            "--format",
            choices=["text", "mermaid"],
            default="text",
            help="text (default): waves in start order; mermaid: a flowchart.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "check":
                self.check_resources()
            else:
                self.print_graph(_graph(), options["format"])
        except LifespanDIError as error:
            raise CommandError(str(error)) from error

    def check_resources(self) -> None:
        """Run the startup and the shutdown the server would run, and report them."""
        if container_configured():
            problems = unresolved_view_markers(configured_container())
            if problems:
                raise CommandError(" ".join(problems))
        engine = configured_lifespan(managers=asyncio.run(registered_managers()))
        failure = asyncio.run(_start_and_stop(engine))
        self.stdout.write(_table(list(engine.records.values())))
        if failure is not None:
            raise CommandError(_failure_message(failure))
        self.stdout.write(
            self.style.SUCCESS(
                f"All {len(engine.records)} resources of {engine.name} started and "
                "stopped cleanly."
            )
        )

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


def _graph() -> ResourceGraph:
    """The container's resources and the registered managers, as the engine runs."""
    if container_configured():
        graph = build_graph(configured_container())
    else:
        graph = ResourceGraph(containers.DynamicContainer(), [], [])
    graph.nodes.extend(manager_nodes(asyncio.run(registered_managers())))
    return graph


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
