import datetime as dt

from coherence_assets.jobs.batching import contiguous_batches


def pair(day: int, baseline: int = 12) -> tuple[dt.date, dt.date]:
    reference = dt.date(2023, 7, 1) + dt.timedelta(days=day)
    return reference, reference + dt.timedelta(days=baseline)


def test_all_pending_pairs_of_one_baseline_make_one_job():
    pairs = [pair(0), pair(12), pair(24)]
    batches = contiguous_batches(pairs, pairs)
    assert [batch.pairs for batch in batches] == [tuple(pairs)]


def test_a_computed_pair_in_between_splits_the_jobs():
    pairs = [pair(0), pair(12), pair(24), pair(36)]
    batches = contiguous_batches(pairs, [pairs[0], pairs[2], pairs[3]])
    assert [batch.pairs for batch in batches] == [(pairs[0],), (pairs[2], pairs[3])]


def test_baselines_go_into_separate_jobs():
    pairs = [pair(0), pair(0, 24), pair(12)]
    batches = contiguous_batches(pairs, pairs)
    assert [(batch.baseline_days, len(batch.pairs)) for batch in batches] == [(12, 2), (24, 1)]


def test_nothing_pending_makes_no_job():
    assert contiguous_batches([pair(0)], []) == []
