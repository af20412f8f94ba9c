"""Grouping the pairs still to compute into jobs that pay for no pair twice.

A coherence process pairs *every* two dates one baseline apart inside its temporal extent,
so a job's extent may only span pairs that are all still to compute. Among a burst's pairs
of one baseline sorted by reference date, an extent from pair i to pair j holds exactly
pairs i..j; a job is therefore a run of consecutive pending pairs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coherence_assets.pairs.pair import Pair


@dataclass(frozen=True)
class PairBatch:
    """Pairs of one baseline that one job computes."""

    baseline_days: int
    pairs: tuple[Pair, ...]


def contiguous_batches(all_pairs: Iterable[Pair], pending: Iterable[Pair]) -> list[PairBatch]:
    """Runs of consecutive pending pairs, per baseline, in date order."""
    pending_set = set(pending)
    by_baseline: dict[int, list[Pair]] = {}
    for pair in sorted(set(all_pairs)):
        by_baseline.setdefault((pair[1] - pair[0]).days, []).append(pair)
    batches: list[PairBatch] = []
    for baseline, pairs in sorted(by_baseline.items()):
        run: list[Pair] = []
        for pair in pairs:
            if pair in pending_set:
                run.append(pair)
                continue
            if run:
                batches.append(PairBatch(baseline, tuple(run)))
            run = []
        if run:
            batches.append(PairBatch(baseline, tuple(run)))
    return batches
