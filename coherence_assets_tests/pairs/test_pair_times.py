"""The pair table's times are the catalogue's own: each pair's acquisitions as its records state them."""

import datetime as dt

import requests

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets_tests.conftest import LiveBackend

BURST = BurstKey(15, 30343, "IW2")


def test_each_pair_carries_the_beginning_times_of_its_two_catalogue_records_exactly(backend: LiveBackend):
    answer = pairs_for_window(
        BurstCatalogueClient(backend.catalogue_url),
        BURST,
        "VV",
        dt.date(2023, 7, 1),
        dt.date(2023, 9, 30),
        [12],
    )
    records = requests.get(
        f"{backend.catalogue_url}/Bursts",
        params={"$filter": "BurstId eq 30343 and SwathIdentifier eq 'IW2'", "$top": "1000"},
        timeout=30,
    ).json()["value"]
    beginning = {
        record["ParentProductName"]: dt.datetime.fromisoformat(
            record["BeginningDateTime"].replace("Z", "+00:00")
        )
        for record in records
        if record["PolarisationChannels"] == "VV"
    }

    pairs = answer.pairs
    assert len(pairs) >= 6
    for pair in pairs.itertuples():
        assert pair.reference_time.to_pydatetime() == beginning[pair.reference_product]
        assert pair.secondary_time.to_pydatetime() == beginning[pair.secondary_product]
        assert pair.reference_time.date() == pair.reference_date
        assert dt.time(16) < pair.reference_time.time() < dt.time(18)  # an evening pass, not midnight
    assert set(pairs.orbit_direction) == {records[0]["OrbitDirection"]}
