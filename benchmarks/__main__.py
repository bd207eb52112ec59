# -*- coding: utf-8 -*-
"""python -m benchmarks [--json] [--only NAME ...]: measure the send path's figures against their targets."""

import argparse
import datetime
import json
import sys
import traceback

from benchmarks import (compose_ratio, memory_ratio, render_worker_latency, rest_calls, rest_time, send_ratio,
                        smime_ratio, wan, wan_graph)
from benchmarks.common import Figure, machine

# name -> an object with measure() and TARGET (a module, or one of benchmarks/wan.py's figures)
FIGURES = {
    "send_ratio": send_ratio,
    "rest_calls_per_send": rest_calls,
    "memory_ratio": memory_ratio,
    "compose_time_ratio": compose_ratio.compose_time_ratio,
    "compose_memory_ratio": compose_ratio.compose_memory_ratio,
    "rest_time_ratio": rest_time,
    "smime_ratio": smime_ratio,
    "wan_fresh_ratio": wan.wan_fresh_ratio,
    "wan_burst_ratio": wan.wan_burst_ratio,
    "round_trips_fresh": wan.round_trips_fresh,
    "graph_wan_ratio": wan_graph.graph_wan_ratio,
    "graph_round_trips": wan_graph.graph_round_trips,
    "render_worker_ms": render_worker_latency,
}


def run(names):
    figures = []
    for name in names:
        module = FIGURES[name]
        try:
            figures.append(module.measure())
        except Exception as err:         # one broken figure must not hide the others
            traceback.print_exc(file=sys.stderr)
            figures.append(Figure(name, module.TARGET, skipped="failed: {0}".format(err)))
    return figures


def table(figures):
    rows = [("figure", "measured", "target", "result")]
    for figure in figures:
        measured = "-" if figure.measured is None else "{0:.2f}".format(figure.measured)
        result = "skipped" if figure.passed is None else ("pass" if figure.passed else "FAIL")
        rows.append((figure.name, measured, "<= {0:g}".format(figure.target), result))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    lines.append("")
    lines.extend("{0}: {1}".format(figure.name, figure.skipped or figure.detail) for figure in figures)
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split(":", 1)[1].strip())
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), metavar="NAME",
                        help="measure only these figures ({0})".format(", ".join(FIGURES)))
    args = parser.parse_args(argv)
    figures = run(args.only or list(FIGURES))
    print(table(figures))
    if args.json:
        measured = [figure.passed for figure in figures if figure.passed is not None]
        print(json.dumps({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(),
            "figures": {figure.name: figure.as_dict() for figure in figures},
            "all_passed": bool(measured) and all(measured) and len(measured) == len(figures),
        }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
