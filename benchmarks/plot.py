"""Plot the request benchmarks' results: ``docs/benchmarks.png``.

Run the two scripts with ``--json``, then this one (needs matplotlib, in the ``bench``
extra)::

    taskset -c 1 python benchmarks/in_process.py --json \
        benchmarks/results/in_process.json
    python benchmarks/http_load.py --json benchmarks/results/http_load.json
    python benchmarks/request_threads.py --json \
        benchmarks/results/request_threads.json
    python benchmarks/plot.py  # reads benchmarks/results/, writes docs/benchmarks.png

Top row: whole requests in process (µs per request), the handler core in process
(µs added over bare Django, same kind of view), and requests/s over HTTP under
uvicorn. Bottom row, ``REQUEST_THREADS`` against bare Django: whole requests in
process, one at a time, and requests/s over HTTP. Bars are medians over the rounds,
whiskers the min-max.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def colour(name: str) -> str:
    if name.startswith(("bare", "  control")):
        return "#9e9e9e"
    if name.startswith(("lifespan_di", "  of which", "  the same")):
        return "#1565c0"
    if name.startswith("django-asgi-lifespan"):
        return "#ef6c00"
    return "#6a1b9a"  # django-asgi-lifespan + dependency-injector's @inject


def panel(
    axes: Any,
    rows: dict[str, dict[str, Any]],
    key: str,
    title: str,
    xlabel: str,
    skip: tuple[str, ...] = (),
) -> None:
    names = [name for name in rows if not name.startswith(skip)]
    values = [rows[name][key] for name in names]
    if key == "median":
        low = [rows[name][key] - rows[name]["min"] for name in names]
        high = [rows[name]["max"] - rows[name][key] for name in names]
        errors: Any = [low, high]
    else:
        errors = None
    positions = range(len(names))
    axes.barh(
        positions,
        values,
        xerr=errors,
        color=[colour(name) for name in names],
        error_kw={"elinewidth": 0.8, "capsize": 2},
    )
    axes.set_yticks(list(positions), [name.strip() for name in names], fontsize=8)
    axes.invert_yaxis()
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel, fontsize=9)
    axes.grid(axis="x", alpha=0.3)
    for position, value in zip(positions, values, strict=True):
        text = f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"
        if key == "median":  # inside the bar, clear of the whiskers
            axes.annotate(
                f" {text}", (0, position), va="center", fontsize=7, color="white"
            )
        else:
            axes.annotate(
                f" {text}", (max(value, 0), position), va="center", fontsize=7
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.png")
    args = parser.parse_args()
    in_process = json.loads((args.results / "in_process.json").read_text())
    http = json.loads((args.results / "http_load.json").read_text())
    threads = json.loads((args.results / "request_threads.json").read_text())
    figure = Figure(figsize=(18, 13), layout="constrained")
    (whole, core, served), (pooled, pooled_served, unused) = figure.subplots(2, 3)
    panel(
        whole,
        in_process["whole"],
        "median",
        "In process: whole requests",
        "µs per request (median, min-max)",
        skip=("  of which", "  control"),
    )
    core_added = {
        name: {**row, "added": row["added"] or 0.0}
        for name, row in in_process["core"].items()
        if row["added"] is not None
    }
    panel(
        core,
        core_added,
        "added",
        "In process: handler core, added to bare Django",
        "µs added per request (median of paired rounds)",
    )
    panel(
        served,
        http,
        "median",
        "HTTP: uvicorn + uvloop, wrk -c32",
        "requests/s (median, min-max)",
    )
    panel(
        pooled,
        threads["in_process"]["one at a time"],
        "median",
        "REQUEST_THREADS, in process: whole requests, one at a time",
        "µs per request (median, min-max)",
        skip=("lifespan_di @HEAD",),
    )
    connections = threads["args"]["connections"]
    panel(
        pooled_served,
        {name: row for name, row in threads["http"].items() if name != "pools"},
        "median",
        f"REQUEST_THREADS, HTTP: uvicorn + uvloop, wrk -c{connections}",
        "requests/s (median, min-max)",
    )
    unused.set_axis_off()
    figure.suptitle(
        f"lifespan_di benchmarks — {in_process.get('environment', '')}", fontsize=10
    )
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
