"""The sweep serial vs on a local Ray runtime, side by side: wall time of the whole command and of each kind of step.

    python bench/sweep_workers.py [--workers 2] [--rounds 2] [--out bench-sweep-workers] [--] [SWEEP FLAGS ...]

Each round runs `evaluator sweep` once serially and once with --workers N (alternating which goes first), each into a
fresh results folder, in a fresh process: the wall time counts everything a user waits for (Ray's start included).
The default sweep is the tests' small one (LeNet-5, two methods, rates 1,2,4, no fine-tuning, 60 samples, no
latency); pass other sweep flags after `--`. Both runs' tables must be equal (the timing record aside), else the bench
stops. From the serial run's step times (table.json "timing"."step_seconds") it estimates, on paper, the wall time
of the same sweep on a cluster of nodes with --cores-per-node CPUs each: the parent, then the pruning methods in
parallel (each method's iterative chain in order), then the quantizations and the assessments spread over every CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["--source", str(ROOT / "models" / "lenet5_fmnist.pt2"), "--methods", "filter-l1,unstructured-global-magnitude",
         "--rates", "1,2,4", "--finetune-epochs", "0", "--samples", "60", "--attacks",
         "pgd-linf:steps=5,square-linf:queries=40", "--eps", "4/255,8/255", "--no-latency", "--threads", "1"]


def run(flags: list[str], out: Path) -> float:
    """Wall time (s) of one sweep in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "evaluator", "sweep", *flags, "--out", str(out)], capture_output=True,
                          text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sweep failed ({' '.join(flags)}):\n{done.stderr[-2000:]}")
    return seconds


def results(out: Path) -> dict:
    table = json.loads((out / "table.json").read_text())
    for row in table["rows"]:
        row.pop("path")
    for key in ("out", "workers", "ray_address"):
        table["config"].pop(key)
    table.pop("timing")
    table["environment"].pop("threads_reason", None)
    return table


def estimate(step_seconds: dict[str, list[float]], nodes: int, cores: int) -> float:
    """Paper wall time (s) of the serial run's steps on `nodes` x `cores` CPUs: the pruning methods at once (the
    longest chain bounds it), then quantizations and assessments in waves of nodes x cores tasks."""
    slots = nodes * cores
    pruning = max(step_seconds.get("pruning", [0.0]))
    waves = sum(math.ceil(len(values) / slots) * max(values) for label, values in step_seconds.items()
                if label != "pruning" and values)
    return pruning + waves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-sweep-workers"))
    parser.add_argument("--nodes", default="1,4,16", help="cluster sizes of the paper estimate")
    parser.add_argument("--cores-per-node", type=int, default=8)
    parser.add_argument("sweep", nargs="*", help="sweep flags (after --); default: the tests' small sweep")
    args = parser.parse_args()
    flags = args.sweep or SMALL
    times: dict[str, list[float]] = {"serial": [], f"workers {args.workers}": []}
    for round_index in range(args.rounds):
        order = [("serial", []), (f"workers {args.workers}", ["--workers", str(args.workers)])]
        for name, extra in order if round_index % 2 == 0 else order[::-1]:
            times[name].append(run(flags + extra, args.out / name.replace(" ", "-")))
    serial_out, ray_out = (args.out / name.replace(" ", "-") for name in times)
    if results(serial_out) != results(ray_out):
        raise SystemExit("the serial and the Ray run gave different tables")
    print(f"sweep: {' '.join(flags)}")
    print("| run | wall s (each round) | median s | vs serial |\n|---|---|---:|---:|")
    serial = statistics.median(times["serial"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {median:.1f} | {serial / median:.2f}x |")
    for name, out in (("serial", serial_out), (f"workers {args.workers}", ray_out)):
        timing = json.loads((out / "table.json").read_text())["timing"]
        steps = ", ".join(f"{label} {len(values)} x {sum(values) / len(values):.1f} s (max {max(values):.1f})"
                          for label, values in timing["step_seconds"].items())
        print(f"{name} ({timing['steps']}): {steps}")
    step_seconds = json.loads((serial_out / "table.json").read_text())["timing"]["step_seconds"]
    for nodes in (int(n) for n in args.nodes.split(",")):
        print(f"paper estimate on {nodes} node(s) x {args.cores_per_node} CPUs: "
              f"{estimate(step_seconds, nodes, args.cores_per_node):.0f} s of steps (serial here: "
              f"{sum(sum(v) for v in step_seconds.values()):.0f} s)")


if __name__ == "__main__":
    main()
