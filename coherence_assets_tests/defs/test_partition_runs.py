"""Ranged runs, as a backfill launches them: many partitions per run, each materialised or failed on its own."""

import dagster as dg
import pytest

from coherence_assets.definitions import defs
from coherence_assets.defs.assets.partition_runs import WHOLE_RANGE_PER_RUN
from coherence_assets_tests.defs.conftest import BURST, Chain, failure_text

WINDOWS = ["2023-04-01", "2023-07-01", "2023-10-01"]
RANGE_TAGS = {
    "dagster/asset_partition_range_start": f"{BURST}|{WINDOWS[0]}",
    "dagster/asset_partition_range_end": f"{BURST}|{WINDOWS[-1]}",
}


def run_range(chain: Chain, assets: list[str]) -> dg.ExecuteInProcessResult:
    """One run over the three windows of the burst, as the backfill daemon requests it."""
    return dg.materialize(
        chain.defs.assets,
        selection=assets,
        instance=chain.instance,
        resources=chain.defs.resources,
        tags=RANGE_TAGS,
        raise_on_error=False,
    )


def materialisations(chain: Chain, asset: str) -> dict[str, dict]:
    """The latest materialisation's raw metadata per partition of ``asset``."""
    records = chain.instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
    latest: dict[str, dict] = {}
    for record in records:  # newest first
        event = record.asset_materialization
        latest.setdefault(str(event.partition), {key: value.value for key, value in event.metadata.items()})
    return latest


@pytest.mark.stand_in
@pytest.mark.slow
def test_a_ranged_run_gives_each_partition_its_own_materialisation_and_metadata(chain: Chain):
    chain.refresh_bursts()

    result = run_range(chain, ["insar_pairs", "coherence_job"])

    assert result.success, failure_text(result)
    for asset in ("insar_pairs", "coherence_job"):
        recorded = materialisations(chain, asset)
        assert sorted(recorded) == [f"{BURST}|{window}" for window in WINDOWS]
        for window in WINDOWS:
            assert recorded[f"{BURST}|{window}"]["path"].endswith(
                f"{BURST}/{window}.{'parquet' if asset == 'insar_pairs' else 'json'}"
            )
    pair_counts = {key: metadata["pairs"] for key, metadata in materialisations(chain, "insar_pairs").items()}
    job_pairs = {key: metadata["pairs"] for key, metadata in materialisations(chain, "coherence_job").items()}
    assert job_pairs == pair_counts


@pytest.mark.stand_in
@pytest.mark.parametrize("assets", [["insar_pairs"], ["insar_pairs", "coherence_job"]])
def test_one_failed_partition_fails_the_run_yet_its_neighbours_are_materialised(
    chain: Chain, assets: list[str]
):
    """With submissions in the same step, a failed pair table skips only its own partition's submission."""
    chain.refresh_bursts()
    broken = chain.data_dir / "insar_pairs" / BURST / f"{WINDOWS[1]}.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not parquet")  # the stored table is read back before it is replaced

    result = run_range(chain, assets)

    assert not result.success
    assert f"1 of 3 partitions failed ({BURST}|{WINDOWS[1]}: insar_pairs: " in failure_text(result)
    neighbours = [f"{BURST}|{WINDOWS[0]}", f"{BURST}|{WINDOWS[2]}"]
    for asset in assets:
        recorded = materialisations(chain, asset)
        assert sorted(recorded) == neighbours
        assert all(metadata["pairs"] > 0 for metadata in recorded.values())
        assert chain.instance.get_materialized_partitions(dg.AssetKey(asset)) == set(neighbours)


def test_backfills_take_a_whole_range_per_run_for_pairs_and_submissions_together():
    """One step for both: a backfill's range of partitions costs one run, not one per asset."""
    assets = {name: defs.resolve_assets_def(name) for name in ("insar_pairs", "coherence_job")}
    assert {asset.backfill_policy for asset in assets.values()} == {WHOLE_RANGE_PER_RUN}
    assert assets["insar_pairs"] is assets["coherence_job"]
    assert assets["insar_pairs"].can_subset  # resubmit_coherence_jobs selects coherence_job alone


@pytest.mark.stand_in
def test_a_ranged_run_records_its_partitions_in_partition_order(chain: Chain):
    """The backfill daemon requests downstream assets for what it sees materialised: in partition order, a
    pass in the middle of the writes sees one prefix of the range, not a scattered subset of small runs."""
    chain.refresh_bursts()

    result = run_range(chain, ["insar_pairs"])

    assert result.success, failure_text(result)
    records = chain.instance.fetch_materializations(
        dg.AssetKey("insar_pairs"), limit=100, ascending=True
    ).records
    assert [str(record.asset_materialization.partition) for record in records] == [
        f"{BURST}|{window}" for window in WINDOWS
    ]
