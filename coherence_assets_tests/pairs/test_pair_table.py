"""The insar_pairs step without Dagster: the embedded backend's catalogue over HTTP, a real Parquet file."""

from __future__ import annotations

import pytest

from coherence_assets.bursts.burst_catalogue import store_burst_catalogue
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.pairs.pair_table import read_pairs, store_window_pairs
from coherence_assets.settings import packaged_demo_bursts_file
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend

BURST = "t015_030343_iw2"
WINDOW = "2023-07-01"


def test_the_stored_pair_table_reads_back_as_the_catalogues_pairs_and_is_rewritten_the_same(
    backend: LiveBackend, tmp_path
):
    store = DataStore(str(tmp_path / "data"))
    store_burst_catalogue(store, packaged_demo_bursts_file())
    client = BurstCatalogueClient(backend.catalogue_url)

    result, path = store_window_pairs(store, client, BURST, WINDOW, "VV", [12])
    stored = read_pairs(store, BURST, WINDOW)

    expected = [(row.reference_date, row.secondary_date) for row in result.pairs.itertuples()]
    assert stored == expected and len(stored) > 0
    assert all(WINDOW <= reference.isoformat() < "2023-10-01" for reference, _ in stored)
    assert all((secondary - reference).days == 12 for reference, secondary in stored)
    store_window_pairs(store, client, BURST, WINDOW, "VV", [12])
    assert read_pairs(store, BURST, WINDOW) == stored and path == store.insar_pairs_path(BURST, WINDOW)


def test_a_burst_the_catalogue_lacks_is_refused_with_the_fix_and_no_table_is_written(
    backend: LiveBackend, tmp_path
):
    store = DataStore(str(tmp_path / "data"))
    client = BurstCatalogueClient(backend.catalogue_url)
    with pytest.raises(FileNotFoundError, match="materialise burst_catalogue first"):
        store_window_pairs(store, client, BURST, WINDOW, "VV", [12])

    store_burst_catalogue(store, packaged_demo_bursts_file())
    unknown = "t015_030399_iw1"
    with pytest.raises(
        ValueError, match=f"burst {unknown} is not in the burst catalogue; add it to the burst file"
    ):
        store_window_pairs(store, client, unknown, WINDOW, "VV", [12])

    assert not store.fs.exists(store.insar_pairs_path(unknown, WINDOW))
