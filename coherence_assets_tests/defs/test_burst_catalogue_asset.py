"""``burst_catalogue``: the GeoParquet of the burst map, and the ``burst`` partitions it adds and drops."""

from pathlib import Path

import dagster as dg
import geopandas as gpd

from coherence_assets.defs.burst_partitions_sensor import BURST_PARTITIONS_SENSOR
from coherence_assets.defs.sensor_ticks import apply_dynamic_partitions_requests, evaluate_sensor
from coherence_assets_tests.defs.conftest import (
    BURST,
    Chain,
    failure_text,
    materialization_metadata,
    write_burst_file,
)
from coherence_assets_tests.defs.downloaded_window import downloaded_window

NEIGHBOUR = "t015_030344_iw2"


def burst_partitions(chain: Chain) -> list[str]:
    return sorted(chain.instance.get_dynamic_partitions("burst"))


def test_materialising_the_catalogue_adds_one_burst_partition_per_burst(chain: Chain, tmp_path: Path):
    result = chain.refresh_bursts(write_burst_file(tmp_path / "two.geojson", [BURST, NEIGHBOUR]))

    assert burst_partitions(chain) == [BURST, NEIGHBOUR]
    metadata = materialization_metadata(result, "burst_catalogue")
    assert metadata["bursts"] == 2
    assert metadata["partitions_added"] == 2


def test_the_catalogue_lands_as_geoparquet_at_the_data_root(chain: Chain):
    chain.refresh_bursts()

    path = chain.data_dir / "burst_catalogue.parquet"
    catalogue = gpd.read_parquet(path)
    assert list(catalogue["burst"]) == [BURST]
    assert catalogue.crs.to_epsg() == 4326
    assert {"burst_id", "subswath_name", "relative_orbit_number"} <= set(catalogue.columns)


def test_a_burst_removed_from_the_file_is_dropped_when_nothing_was_materialised_for_it(
    chain: Chain, tmp_path: Path
):
    chain.refresh_bursts(write_burst_file(tmp_path / "two.geojson", [BURST, NEIGHBOUR]))

    chain.refresh_bursts(write_burst_file(tmp_path / "one.geojson", [BURST]))

    assert burst_partitions(chain) == [BURST]


def test_a_burst_removed_from_the_file_is_kept_when_something_was_materialised_for_it(
    chain: Chain, tmp_path: Path
):
    chain.refresh_bursts(write_burst_file(tmp_path / "two.geojson", [BURST, NEIGHBOUR]))
    downloaded_window(chain, "2023-07-01", burst=NEIGHBOUR)  # its rasters materialised

    chain.refresh_bursts(write_burst_file(tmp_path / "one.geojson", [BURST]))

    assert burst_partitions(chain) == [BURST, NEIGHBOUR]


def test_a_bad_burst_file_fails_the_run_with_the_burst_map_error_and_changes_nothing(
    chain: Chain, tmp_path: Path
):
    chain.refresh_bursts()
    before = (chain.data_dir / "burst_catalogue.parquet").read_bytes()
    bad_file = write_burst_file(tmp_path / "bad.geojson", [NEIGHBOUR])
    bad_file.write_text(bad_file.read_text().replace('"IW2"', '"IW7"'))

    result = chain.refresh_bursts(bad_file, raise_on_error=False)

    assert not result.success
    message = failure_text(result)
    assert "BurstMapError" in message
    assert f"burst file {bad_file} has 1 problem(s)" in message
    assert "column subswath_name is not one of IW1, IW2, IW3" in message
    assert (chain.data_dir / "burst_catalogue.parquet").read_bytes() == before
    assert burst_partitions(chain) == [BURST]


def test_the_catalogue_run_changes_no_partition_its_sensor_requests_them_once(chain: Chain, tmp_path: Path):
    """As Dagster's examples do: the asset only stores; burst_partitions_sensor asks for the partitions."""
    chain.run(
        "refresh_burst_catalogue",
        run_config={
            "resources": {
                "bursts_file": {
                    "config": {"path": str(write_burst_file(tmp_path / "two.geojson", [BURST, NEIGHBOUR]))}
                }
            }
        },
    )
    assert burst_partitions(chain) == []

    tick = evaluate_sensor(chain.defs, chain.instance, BURST_PARTITIONS_SENSOR)

    assert tick.dynamic_partitions_requests == [dg.AddDynamicPartitionsRequest("burst", [BURST, NEIGHBOUR])]
    assert burst_partitions(chain) == []  # requested, not yet applied: the daemon applies them
    apply_dynamic_partitions_requests(chain.instance, tick)
    assert burst_partitions(chain) == [BURST, NEIGHBOUR]
    again = evaluate_sensor(chain.defs, chain.instance, BURST_PARTITIONS_SENSOR, cursor=tick.cursor)
    assert again.dynamic_partitions_requests == [] and again.skip_message
