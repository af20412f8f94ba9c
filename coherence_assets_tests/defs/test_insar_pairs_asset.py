"""``insar_pairs``: one burst x window's pair table, from the live OData catalogue, stored as Parquet."""

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from coherence_assets.defs.burst_partitions_sensor import tick_burst_partitions_sensor
from coherence_assets.pairs.pairing import PAIR_COLUMNS
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    WINDOW,
    Chain,
    RestartableBackend,
    failure_text,
    materialization_metadata,
)

pytestmark = pytest.mark.stand_in  # the pair table is asked of the catalogue over HTTP

PAIRS_PATH = Path("insar_pairs") / BURST / f"{WINDOW}.parquet"


def materialise_pairs(chain: Chain, partition: str = PARTITION, raise_on_error: bool = True):
    return chain.materialize(["insar_pairs"], partition, raise_on_error=raise_on_error)


def test_the_pair_table_lands_as_parquet_with_the_documented_columns(chain: Chain):
    chain.refresh_bursts()

    materialise_pairs(chain)

    pairs = pd.read_parquet(chain.data_dir / PAIRS_PATH)
    assert list(pairs.columns) == list(PAIR_COLUMNS)
    assert len(pairs) >= 6
    assert set(pairs["burst"]) == {BURST}
    assert set(pairs["temporal_baseline_days"]) == {12}
    assert (pairs["secondary_date"] - pairs["reference_date"] == dt.timedelta(days=12)).all()
    assert not pairs.duplicated(["reference_date", "secondary_date"]).any()
    assert pairs["reference_product"].str.startswith("S1A_IW_SLC__").all()
    window_start, window_end = dt.date(2023, 7, 1), dt.date(2023, 9, 30)
    assert pairs["reference_date"].between(window_start, window_end).all()


def test_the_pair_at_the_window_edge_is_kept_with_its_secondary_in_the_next_window(chain: Chain):
    chain.refresh_bursts()

    materialise_pairs(chain)

    pairs = pd.read_parquet(chain.data_dir / PAIRS_PATH)
    last = pairs.iloc[-1]
    assert dt.date(2023, 9, 19) <= last["reference_date"] <= dt.date(2023, 9, 30)
    assert last["secondary_date"] >= dt.date(2023, 10, 1)


def test_the_materialisation_reports_acquisitions_pairs_missing_dates_and_a_preview(chain: Chain):
    chain.refresh_bursts()

    metadata = materialization_metadata(materialise_pairs(chain), "insar_pairs")

    pairs = pd.read_parquet(chain.data_dir / PAIRS_PATH)
    assert metadata["pairs"] == len(pairs)
    assert metadata["acquisitions"] >= len(pairs) + 1
    assert metadata["catalogue_records"] >= metadata["acquisitions"]
    assert metadata["missing_dates"]  # "none" or the dates the 12-day cycle predicts but lacks
    assert metadata["empty_reason"] == ""
    query_start, query_end = metadata["catalogue_query"].split(" .. ")
    assert query_start.startswith("2023-07-01T00:00:00")
    assert query_end.startswith("2023-10-12T23:59:59")  # window end + the 12-day baseline
    assert pairs["reference_date"].iloc[0].isoformat() in metadata["preview"]
    assert metadata["path"] == str(chain.data_dir / PAIRS_PATH)


def test_a_window_with_fewer_than_two_acquisitions_gives_an_empty_table_and_the_reason(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    """The catalogue's "now" is 2023-07-10: the window holds a single acquisition so far."""
    backend = restartable_backend(catalogue_now=dt.datetime(2023, 7, 10, tzinfo=dt.UTC))
    chain = make_chain(backend.live)
    chain.refresh_bursts()

    result = materialise_pairs(chain)

    assert result.success
    pairs = pd.read_parquet(chain.data_dir / PAIRS_PATH)
    assert pairs.empty and list(pairs.columns) == list(PAIR_COLUMNS)
    metadata = materialization_metadata(result, "insar_pairs")
    assert metadata["pairs"] == 0
    assert metadata["acquisitions"] == 1
    assert "only 1 acquisition date(s)" in metadata["empty_reason"]


def test_catalogue_server_errors_fail_the_run_with_the_catalogue_error_and_write_no_table(
    chain: Chain, backend: LiveBackend, instant_retries: None
):
    chain.refresh_bursts()
    backend.add_fault(path="^/odata/v1/Bursts", status=500)

    result = materialise_pairs(chain, raise_on_error=False)

    assert not result.success
    message = failure_text(result)
    assert "CatalogueError" in message
    assert backend.catalogue_url in message
    assert not (chain.data_dir / PAIRS_PATH).exists()
    assert not list((chain.data_dir).glob("insar_pairs/**/*.parquet"))


def refusal_line(result) -> str:
    """The one line of the run's failure that says why the pair table was not replaced."""
    (line,) = [
        line
        for line in failure_text(result).splitlines()
        if "CatalogueAnswerShrankError" in line or "query: GET" in line
    ]
    return line


def pairs_materialisations(chain: Chain) -> int:
    return len(
        chain.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("insar_pairs"), asset_partitions=[PARTITION]),
            limit=100,
        ).records
    )


def test_an_empty_catalogue_answer_keeps_the_pair_table_and_fails_naming_the_query(
    chain: Chain, backend: LiveBackend
):
    chain.refresh_bursts()
    materialise_pairs(chain)
    table = chain.data_dir / PAIRS_PATH
    good = table.read_bytes()
    backend.add_fault(kind="empty_answer", path="^/odata/v1/Bursts", times=1)

    result = materialise_pairs(chain, raise_on_error=False)

    assert not result.success
    assert table.read_bytes() == good
    assert len(pd.read_parquet(table)) >= 6
    assert pairs_materialisations(chain) == 1
    line = refusal_line(result)
    assert "answered 0 record(s) without" in line
    assert (
        f"query: GET {backend.catalogue_url}/Bursts?$filter=ContentDate/Start ge 2023-07-01T00:00:00.000Z"
        in line
    )
    assert "BurstId eq 30343 and SwathIdentifier eq 'IW2' and RelativeOrbitNumber eq 15" in line
    assert str(table) in line


@pytest.mark.slow
def test_a_shorter_answer_is_refused_and_a_longer_one_replaces_the_table(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    """The catalogue's "now" moves back (acquisitions vanish: refused), then forward (new ones: accepted)."""
    backend = restartable_backend(catalogue_now=dt.datetime(2023, 9, 1, tzinfo=dt.UTC))
    chain = make_chain(backend.live)
    chain.refresh_bursts()
    materialise_pairs(chain)
    table = chain.data_dir / PAIRS_PATH
    august = pd.read_parquet(table)

    def restart_at(now: dt.datetime) -> None:
        backend.stop()
        backend.overrides["catalogue_now"] = now
        backend.start()

    restart_at(dt.datetime(2023, 8, 1, tzinfo=dt.UTC))
    refused = materialise_pairs(chain, raise_on_error=False)
    assert not refused.success
    assert pd.read_parquet(table).equals(august)
    lost = sorted(set(august["reference_date"]) | set(august["secondary_date"]))
    lost = [day for day in lost if day >= dt.date(2023, 8, 1)]
    assert f"without {len(lost)} acquisition date(s)" in refusal_line(refused)

    restart_at(dt.datetime(2023, 11, 1, tzinfo=dt.UTC))
    assert materialise_pairs(chain).success
    later = pd.read_parquet(table)
    assert len(later) > len(august)
    key = ["reference_date", "secondary_date"]
    assert set(map(tuple, august[key].to_numpy())) <= set(map(tuple, later[key].to_numpy()))


def test_catalogue_answers_that_are_not_json_are_retried_and_the_table_is_complete(
    chain: Chain, backend: LiveBackend, instant_retries: None
):
    chain.refresh_bursts()
    materialise_pairs(chain)
    expected = pd.read_parquet(chain.data_dir / PAIRS_PATH)
    backend.add_fault(kind="malformed_answer", path="^/odata/v1/Bursts", times=2)

    result = materialise_pairs(chain)

    assert result.success
    assert pd.read_parquet(chain.data_dir / PAIRS_PATH).equals(expected)
    assert pairs_materialisations(chain) == 2


@pytest.mark.slow
def test_the_dagster_cli_materialises_the_catalogue_then_a_pair_partition(
    backend: LiveBackend, chain: Chain, tmp_path: Path
):
    """What a user types, against the live backend configured through the environment only."""
    home = tmp_path / "cli_dagster_home"
    home.mkdir()
    data_dir = tmp_path / "cli_data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "COHERENCE_DATA_DIR": str(data_dir),
        "COHERENCE_BURSTS_FILE": str(chain.bursts_file),
        "OPENEO_BACKEND_URL": backend.url,
        "COHERENCE_CATALOGUE_URL": backend.catalogue_url,
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    base = [dagster, "asset", "materialize", "-m", "coherence_assets.definitions"]

    for selection in (["--select", "burst_catalogue"], ["--select", "insar_pairs", "--partition", PARTITION]):
        completed = subprocess.run(
            [*base, *selection], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
        with dg.DagsterInstance.from_config(
            str(home)
        ) as instance:  # the daemon's burst_partitions_sensor tick
            tick_burst_partitions_sensor(chain.defs, instance)

    assert (data_dir / "burst_catalogue.parquet").exists()
    pairs = pd.read_parquet(data_dir / PAIRS_PATH)
    assert len(pairs) >= 6
