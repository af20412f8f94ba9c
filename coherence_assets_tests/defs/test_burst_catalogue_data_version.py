"""``burst_catalogue`` is versioned by its burst file's content, so an unchanged file changes nothing downstream."""

from pathlib import Path

from coherence_assets.defs.catalogue_versions import recorded_burst_file_version
from coherence_assets_tests.defs.conftest import BURST, Chain, write_burst_file

NEIGHBOUR = "t015_030344_iw2"


def test_the_same_file_keeps_its_data_version_and_an_edited_one_gets_a_new_one(chain: Chain, tmp_path: Path):
    bursts_file = write_burst_file(tmp_path / "bursts.geojson", [BURST])
    chain.refresh_bursts(bursts_file)
    first = recorded_burst_file_version(chain.instance)

    chain.refresh_bursts(bursts_file)
    unchanged = recorded_burst_file_version(chain.instance)
    chain.refresh_bursts(write_burst_file(bursts_file, [BURST, NEIGHBOUR]))
    edited = recorded_burst_file_version(chain.instance)

    assert first is not None
    assert unchanged == first
    assert edited not in (None, first)
