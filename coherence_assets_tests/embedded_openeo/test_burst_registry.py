"""Where bursts lie: the registry's search by area agrees with testing footprints one by one."""

from __future__ import annotations

from pathlib import Path

import shapely

from coherence_assets.settings import packaged_demo_bursts_file
from embedded_openeo.burst_registry import BurstRegistry, synthetic_footprint
from embedded_openeo.config import DEMO_BURSTS_FILE

SUBSWATHS = ("IW1", "IW2", "IW3")


def brute_force(registry: BurstRegistry, area: shapely.Geometry, burst_ids: range) -> set[tuple[int, str]]:
    return {
        (burst_id, subswath)
        for burst_id in burst_ids
        for subswath in SUBSWATHS
        if registry.footprint(burst_id, subswath).intersects(area)
    }


def test_bursts_intersecting_an_area_equal_a_brute_force_search_near_them() -> None:
    registry = BurstRegistry({})
    centre = synthetic_footprint(200_000, "IW2").centroid
    area = shapely.Point(centre.x, centre.y).buffer(0.4)

    found = set(registry.bursts_intersecting(area))

    assert (200_000, "IW2") in found
    for burst_id, _ in found:  # every track through the area, searched one burst at a time around the find
        nearby = range(burst_id - 150, burst_id + 150)
        assert brute_force(registry, area, nearby) == {key for key in found if key[0] in nearby}


def test_mapped_bursts_are_found_by_their_mapped_polygon_not_their_synthetic_one() -> None:
    registry = BurstRegistry.from_file(packaged_demo_bursts_file())
    mapped = registry.footprint(30343, "IW2")
    inside_mapped_only = (
        mapped.difference(synthetic_footprint(30343, "IW2")).representative_point().buffer(0.001)
    )

    assert (30343, "IW2") in registry.bursts_intersecting(inside_mapped_only)


def test_an_area_over_two_continents_is_searched_part_by_part() -> None:
    registry = BurstRegistry({})
    alps = shapely.box(10.5, 46.45, 10.65, 46.55)
    andes = shapely.box(-70.1, -33.1, -70.0, -33.0)

    both = registry.bursts_intersecting(shapely.MultiPolygon([alps, andes]))

    assert set(both) == set(registry.bursts_intersecting(alps)) | set(registry.bursts_intersecting(andes))
    assert len(both) < 200


def test_the_stand_ins_demo_burst_map_is_the_products() -> None:
    """The stand-in keeps its own copy (it reads nothing of the product's package but its CDSE facts)."""
    assert DEMO_BURSTS_FILE.read_bytes() == Path(packaged_demo_bursts_file()).read_bytes()
