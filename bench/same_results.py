"""Do two versions of the evaluator give the same results? Snapshot the README's first command and the small sweep,
then compare a later snapshot with an earlier one, timings and environment aside.

    python bench/same_results.py snapshot DIR [--samples 1000] [--threads 1]
    python bench/same_results.py compare BEFORE_DIR AFTER_DIR

`snapshot` runs `evaluator assess` on the zoo pair (the README's first command, with --json) and
`evaluator sweep --config sweeps/small.toml` into DIR, then writes DIR/normalised.json: both JSON reports and the
sweep's table.csv with every timing (latency, throughput, seconds), the environment, paths under DIR and the sweep's
cache keys removed. `compare` prints the first differences of two such files and exits 1 if there are any. A
refactoring that changes no behaviour leaves them equal; run each snapshot with the same --threads on the same
machine (ONNX Runtime's and torch's float sums may round differently across thread counts and CPUs).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ZOO = ("models/lenet5_fmnist.onnx", "models/lenet5_fmnist_filter-l1_cr4.onnx")
DROPPED_KEYS = {"environment", "latency", "throughput", "latency_by_batch", "sweep_key", "latency_retimed", "threads_reason"}
DROPPED_COLUMNS = ("latency", "throughput", "p50", "p90", "p99", "samples_per_s", "seconds")


def run(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "evaluator", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def without_timing(value: Any, folder: str) -> Any:
    """value with DROPPED_KEYS removed at every depth and the snapshot folder cut from every string."""
    if isinstance(value, dict):
        return {key: without_timing(item, folder) for key, item in value.items() if key not in DROPPED_KEYS}
    if isinstance(value, list):
        return [without_timing(item, folder) for item in value]
    if isinstance(value, str):
        return value.replace(folder, "<DIR>")
    return value


def snapshot(folder: Path, samples: int, threads: int) -> None:
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "assess.json"
    run("assess", *ZOO, "--samples", str(samples), "--threads", str(threads), "--json", str(report))
    sweep = folder / "sweep"
    run("sweep", "--config", "sweeps/small.toml", "--out", str(sweep), "--threads", str(threads))
    with open(sweep / "table.csv", newline="") as handle:
        rows = [{key: value for key, value in row.items() if not any(part in key for part in DROPPED_COLUMNS)}
                for row in csv.DictReader(handle)]
    normalised = {
        "assess": without_timing(json.loads(report.read_text()), str(folder)),
        "sweep_table_csv": without_timing(rows, str(folder)),
        "sweep_assessments": {path.name: without_timing(json.loads(path.read_text()), str(folder))
                              for path in sorted((sweep / "assessments").glob("*.json"))},
    }
    (folder / "normalised.json").write_text(json.dumps(normalised, indent=1, sort_keys=True) + "\n")
    print(f"wrote {folder / 'normalised.json'}")


def differences(before: Any, after: Any, where: str = "") -> list[str]:
    if isinstance(before, dict) and isinstance(after, dict):
        found = [f"{where}/{key}: only {'before' if key in before else 'after'}" for key in sorted(set(before) ^ set(after))]
        for key in sorted(set(before) & set(after)):
            found += differences(before[key], after[key], f"{where}/{key}")
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [line for index, (b, a) in enumerate(zip(before, after)) for line in differences(b, a, f"{where}[{index}]")]
    return [] if before == after else [f"{where}: {str(before)[:80]} != {str(after)[:80]}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("snapshot")
    take.add_argument("folder", type=Path)
    take.add_argument("--samples", type=int, default=1000)
    take.add_argument("--threads", type=int, default=1)
    compare = commands.add_parser("compare")
    compare.add_argument("before", type=Path)
    compare.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "snapshot":
        snapshot(args.folder, args.samples, args.threads)
        return
    for folder in (args.before, args.after):
        if not (folder / "normalised.json").is_file():
            raise SystemExit(f"{folder} holds no normalised.json: run `snapshot {folder}` first")
    found = differences(*(json.loads((folder / "normalised.json").read_text()) for folder in (args.before, args.after)))
    for line in found[:40]:
        print(line)
    print(f"{len(found)} differences" if found else "same results (timings and environment aside)")
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
