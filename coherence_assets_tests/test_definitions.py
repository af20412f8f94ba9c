"""The first test: the whole Definitions load, with the contracted names of DESIGN.md."""

import dagster as dg

from coherence_assets.definitions import defs
from coherence_assets.defs.partitions import burst_window_partitions, window_partitions


def test_definitions_load_with_the_contracted_asset_names():
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert {"burst_catalogue", "insar_pairs", "coherence_job"} <= keys


def test_window_partitions_are_calendar_quarters_from_2014_10_01():
    keys = window_partitions.get_partition_keys()
    assert keys[:3] == ["2014-10-01", "2015-01-01", "2015-04-01"]
    assert "2023-07-01" in keys and "2023-08-01" not in keys


def test_multi_partition_keys_read_burst_then_window():
    assert [dimension.name for dimension in burst_window_partitions.partitions_defs] == ["burst", "window"]
    key = dg.MultiPartitionKey({"window": "2023-07-01", "burst": "t015_030343_iw2"})
    assert str(key) == "t015_030343_iw2|2023-07-01"
