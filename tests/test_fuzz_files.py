"""Every file nada reads, mutated a few hundred ways (fixed seed): each case loads or ends in one NadaError
line within 10 s, and no code from the file runs. scripts/fuzz_files.py runs the same cases by the
thousand; its figures are in docs/RELIABILITY.md. NADA_FUZZ_CASES and NADA_FUZZ_SEED change the run."""

import os

import torch
from fuzzing import KINDS, MUTATIONS, run_cases, summary

CASES = int(os.environ.get("NADA_FUZZ_CASES", 396))  # 6 rounds of every kind x every mutation
SEED = int(os.environ.get("NADA_FUZZ_SEED", 2026))


def test_mutated_files_load_or_are_refused_in_one_line(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: latency-bound, and CI shares its two cores
    try:
        outcomes = run_cases(CASES, SEED, tmp_path)
    finally:
        torch.set_num_threads(threads)
    failed = [o for o in outcomes if o.result == "FAILED"]
    report = summary(outcomes)
    assert not failed, f"{len(failed)} of {len(outcomes)} cases failed, e.g.:\n" + "\n".join(
        f"{o.kind} / {o.mutation} / {o.what}: {o.detail}" for o in failed[:5])
    # The fuzzer has teeth: every kind saw every mutation, and mutations were refused as well as survived.
    assert {(o.kind, o.mutation) for o in outcomes} == {(k, m) for k in KINDS for m in MUTATIONS}
    assert all(row["refused"] > 0 for row in report["per_kind"].values()), report
