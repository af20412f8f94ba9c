"""``coherence_cube`` for the UI: a quick-look PNG beside the cube, shown inline, and no needless restack."""

import re
from pathlib import Path

import pytest

from coherence_assets_tests.defs.conftest import BURST, Chain, materialization_metadata
from coherence_assets_tests.defs.downloaded_window import downloaded_window
from coherence_assets_tests.defs.test_coherence_cube_asset import cube_sensor_tick, stack

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
UI_INLINE_LIMIT = 1000  # Dagster 1.13 renders Markdown metadata inline below this length


@pytest.mark.slow
def test_the_quicklook_lands_beside_the_cube_and_is_linked_short_enough_to_show_inline(chain: Chain):
    chain.refresh_bursts()
    downloaded_window(chain, "2023-07-01")

    result = stack(chain)

    png = (chain.data_dir / "coherence_cube" / f"{BURST}.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    metadata = materialization_metadata(result, "coherence_cube")
    assert metadata["quicklook_png"].endswith(f"coherence_cube/{BURST}.png")
    markdown = metadata["quicklook"]
    assert len(markdown) < UI_INLINE_LIMIT
    link = re.fullmatch(r"!\[[^\]]*\]\(/logs/coherence_quicklook/([^/]+)/png\)", markdown)
    assert link, markdown
    served = chain.instance.compute_log_manager.get_captured_local_path(
        ["coherence_quicklook", link[1]], "png"
    )
    assert Path(served).read_bytes() == png


@pytest.mark.slow
def test_a_fresh_cube_sensor_does_not_restack_a_cube_stacked_after_its_rasters(chain: Chain):
    chain.refresh_bursts()
    downloaded_window(chain, "2023-07-01")
    stack(chain)

    tick = cube_sensor_tick(chain, cursor=None)  # a daemon that never ran: its cursor is empty

    assert tick.run_requests == []
    downloaded_window(chain, "2023-10-01")
    later = cube_sensor_tick(chain, tick.cursor)
    assert [request.partition_key for request in later.run_requests] == [BURST]
