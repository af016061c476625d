"""What ``cognitive-action derive`` costs on a dense network file (issue 17).

The command printed the first ``--max-rows`` equations of a system it had derived in
full: every residual of eq. (8)-(9) and ``J M⁻¹ f + h`` of eq. (10) for every neuron
(the issue measured 71 s and 557 MB on a dense 200-neuron file, where the README's
Python route, ``derive_network``, took 3.5 s). It now takes the template route and
instantiates only the rows it prints (``workflow.derive_preview``).

Both routes run in one process on the same loaded file, interleaved, ``--repeats``
times; the script prints the median and the range of each, and the time to load
(declare) the file, which both share.
Usage: ``python benchmarks/bench_cli_derive.py [--neurons 100] [--rows 40] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from cognitive_action import workflow
from cognitive_action.derive import multiplier_equation


def dense_file(n: int, folder: Path) -> Path:
    """A problem file of a dense net of ``n`` neurons (every arc, self-loops included)."""
    edges = ", ".join(f"[{i}, {j}]" for i in range(1, n + 1) for j in range(1, n + 1))
    path = folder / f"dense{n}.toml"
    path.write_text(f'name = "dense{n}"\nparameters = {{ theta = 1.0 }}\n[network]\n'
                    f"edges = [{edges}]\ninputs = []\noutputs = [{n}]\n"
                    '[action]\nweight = "exp(theta*t)"\n', encoding="utf-8")
    return path


def preview_route(spec, rows: int) -> None:
    """What derive prints now: the template route, the shown rows only."""
    pv = workflow.derive_preview(spec, rows)
    for _, r in pv.residuals:
        workflow.display(r)
    for _, b in pv.multipliers:
        workflow.display(b)


def materialized_route(spec, rows: int) -> None:
    """What derive did before: every equation, then the rows shown."""
    el = workflow.derive_spec(spec)
    b = multiplier_equation(el).b_entries()
    for r in el.residuals[:rows]:
        workflow.display(r)
    for e in b[:rows]:
        workflow.display(e)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = dense_file(args.neurons, Path(tmp))
        t0 = time.perf_counter()
        spec = workflow.as_spec(path)
        load = time.perf_counter() - t0
    times: dict[str, list[float]] = {"preview (now)": [], "materialized (before)": []}
    for _ in range(args.repeats):
        for name, fn in (("preview (now)", preview_route),
                         ("materialized (before)", materialized_route)):
            t0 = time.perf_counter()
            fn(spec, args.rows)
            times[name].append(time.perf_counter() - t0)
    print(f"dense {args.neurons}-neuron file ({args.neurons ** 2:,} weights), "
          f"{args.rows} rows; loading the file: {load:.1f} s")
    for name, ts in times.items():
        print(f"  {name:22s} median {statistics.median(ts):7.2f} s  "
              f"[{min(ts):.2f}, {max(ts):.2f}] over {len(ts)} runs")


if __name__ == "__main__":
    main()
