"""Fuzz every kind of file nada reads, by the thousand: `PYTHONPATH=tests python scripts/fuzz_files.py --cases 10000`.

The cases are tests/fuzzing.py's (the CI test runs a few hundred of them; tests/ on PYTHONPATH gives them,
and its conftest.py the tiny-model builders). Prints a table per kind
(loaded / refused with a NadaError / FAILED) and writes every failure with its traceback to --out.
Exit code 1 if any case failed.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch
from fuzzing import run_cases, summary


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="fuzz_report.json", help="summary and failures as JSON")
    p.add_argument("--memory-gb", type=int, default=10, help="address-space limit of this process")
    args = p.parse_args()
    torch.set_num_threads(1)
    # A file that makes a loader allocate gigabytes then fails as a case (MemoryError) instead of getting
    # the whole process killed by the kernel; so each of two parallel runs stays under half the machine.
    limit = args.memory_gb << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()

    def progress(o):
        done = progress.n = getattr(progress, "n", 0) + 1
        if o.result == "FAILED":
            print(f"FAILED {o.kind} / {o.mutation} / {o.what}: {o.detail.strip().splitlines()[-1]}", flush=True)
        if done % 500 == 0:
            print(f"{done} cases, {time.perf_counter() - start:.0f} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        outcomes = run_cases(args.cases, args.seed, Path(tmp), progress=progress)
    report = summary(outcomes)
    report["seed"], report["seconds"] = args.seed, round(time.perf_counter() - start, 1)
    report["failures"] = [vars(o) for o in outcomes if o.result == "FAILED"]
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'kind':<14}{'loaded':>8}{'refused':>9}{'FAILED':>8}")
    for kind, row in report["per_kind"].items():
        print(f"{kind:<14}{row['loaded']:>8}{row['refused']:>9}{row['FAILED']:>8}")
    print(f"{report['cases']} cases in {report['seconds']} s; slowest {report['slowest_s']} s ({report['slowest']}); "
          f"{report['failed']} failed; report in {args.out}")
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
