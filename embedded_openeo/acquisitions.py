"""A deterministic archive of Sentinel-1 IW SLC burst records, as CDSE's ``Bursts`` catalogue holds them.

Acquisition times follow from ESA's burst-id definition: a burst id fixes the seconds since
the start of the 12-day repeat cycle, so every pass over a burst is
``cycle start + (burst_id - 1 + subswath offset) * 2.758273 s``. The cycle start is calibrated
on real CDSE records (S1A burst 15805 IW1 on 2024-08-02 at 06:07:22, burst 30346 on
2022-08-13 at 17:15:49), so tracks, times of day and passes look like the real archive:

- Sentinel-1A every 12 days from 2014-10-03;
- Sentinel-1B on the same tracks 6 days after S1A, from 2016-09-26 to 2021-12-23 (its failure);
- Sentinel-1C in S1B's slot from 2025-05-21;
- about 4 % of datatakes missing (stable hash of platform and absolute orbit), as when an
  acquisition was not planned or not processed;
- parent products of 27 s every 25 s, so a burst in the 2 s overlap appears twice, from two
  products with different names and times a few milliseconds apart (about 8 % of dates);
- one record per polarisation (VV and VH of a 1SDV product).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import shapely
from shapely.geometry import mapping

from coherence_assets.cdse_facts import (
    BURST_TIMING,
    IW_SUBSWATHS,
    ORBIT_PERIOD_SECONDS,
    RELATIVE_ORBITS,
    is_ascending_burst,
    relative_orbit_of_burst_id,
)
from embedded_openeo.burst_registry import BurstRegistry, is_valid_burst

# Ascending node crossing of relative orbit 1 that starts S1A's repeat cycle 0 (absolute orbit 73).
S1A_CYCLE_ZERO = datetime(2014, 4, 8, 18, 0, 49, 405610, tzinfo=UTC)
REPEAT_CYCLE = timedelta(days=12)
POLARISATIONS = ("VV", "VH")
MISSING_FRACTION = 0.04
SLICE_STEP_SECONDS = 25.0
SLICE_DURATION_SECONDS = 27.0
# Within one burst cycle the antenna visits IW1, IW2, IW3 in turn.
SUBSWATH_CYCLE_FRACTION = {"IW1": 0.41, "IW2": 0.65, "IW3": 0.89}
# The archive holds IW bursts only; their times are calibrated on real records (module docstring).
IW_BURST_CYCLE_SECONDS = BURST_TIMING["IW"].cycle_seconds
CONTENT_START_AFTER_AZIMUTH = timedelta(seconds=1.137605)
BURST_DURATION = timedelta(seconds=3.19)
LINES_PER_BURST = {"IW1": 1508, "IW2": 1517, "IW3": 1530}
SAMPLES_PER_BURST = {"IW1": 22998, "IW2": 25456, "IW3": 24492}
FIRST_BYTE_OFFSET = 109_035
MAX_DUPLICATE_JITTER_MICROSECONDS = 5000
_RECORD_NAMESPACE = uuid.UUID("8a3c6f0e-4f1b-5d2a-9c7e-1b2d3e4f5a6b")


@dataclass(frozen=True)
class Platform:
    """One Sentinel-1 unit: when it flew and how its absolute orbits are numbered.

    ``absolute orbit = orbit_offset + 175 * (S1A cycle - cycle_shift) + relative orbit - 1``.
    """

    serial: str
    first_day: date
    last_day: date | None
    days_after_s1a: int
    orbit_offset: int
    cycle_shift: int

    def flies_on(self, day: date) -> bool:
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)


PLATFORMS = (
    Platform("A", date(2014, 10, 3), None, days_after_s1a=0, orbit_offset=73, cycle_shift=0),
    Platform("B", date(2016, 9, 26), date(2021, 12, 23), days_after_s1a=6, orbit_offset=27, cycle_shift=62),
    # S1C's orbit numbering is approximate: about 2,300 orbits after its December 2024 launch.
    Platform("C", date(2025, 5, 21), None, days_after_s1a=6, orbit_offset=1, cycle_shift=325),
)
ARCHIVE_START = datetime.combine(PLATFORMS[0].first_day, datetime.min.time(), UTC)


@dataclass(frozen=True)
class _Pass:
    """One platform passing over one burst of one subswath."""

    platform: Platform
    burst_id: int
    subswath: str
    azimuth_time: datetime
    anx_seconds: float
    absolute_orbit: int
    datatake_id: int  # grows about eight per orbit, as Sentinel-1A's do


class AcquisitionArchive:
    """Burst records of every IW burst, generated on demand and identical on every call."""

    def __init__(self, registry: BurstRegistry, now: datetime | None = None) -> None:
        self._registry = registry
        self._now = now

    def records(
        self, burst_id: int, subswath: str, polarisation: str, start: datetime | None, end: datetime | None
    ) -> list[dict]:
        """Records of one burst, subswath and polarisation with ``ContentDate/Start`` in ``[start, end]``."""
        return self.search(burst_id, start, end, subswaths=(subswath,), polarisations=(polarisation,))

    def search(
        self,
        burst_id: int,
        start: datetime | None = None,
        end: datetime | None = None,
        subswaths: tuple[str, ...] = IW_SUBSWATHS,
        polarisations: tuple[str, ...] = POLARISATIONS,
    ) -> list[dict]:
        """Records of a burst with ``ContentDate/Start`` in ``[start, end]`` (open ends: the whole archive).

        Naive datetimes are taken as UTC. Sorted by ``ContentDate/Start``, then ``Id``.
        """
        now = self._now or datetime.now(UTC)
        start = ARCHIVE_START if start is None else max(_as_utc(start), ARCHIVE_START)
        end = now if end is None else min(_as_utc(end), now)
        found = []
        for subswath in subswaths:
            if not is_valid_burst(burst_id, subswath) or not self._registry.is_acquired(burst_id, subswath):
                continue  # no such burst, or one over the open ocean, which IW mode does not image
            footprint = self._registry.footprint(burst_id, subswath)
            footprint_fields = {
                "Footprint": f"geography'SRID=4326;{shapely.to_wkt(footprint, rounding_precision=6)}'",
                "GeoFootprint": mapping(footprint),
            }
            for burst_pass in _passes(burst_id, subswath, start, end):
                for product_name, product_start, burst_index in _parent_products(burst_pass):
                    for polarisation in set(polarisations) & set(POLARISATIONS):
                        record = _record(
                            burst_pass,
                            product_name,
                            product_start,
                            burst_index,
                            polarisation,
                            footprint_fields,
                        )
                        if start <= datetime.fromisoformat(record["ContentDate"]["Start"]) <= end:
                            found.append(record)
        found.sort(key=lambda record: (record["ContentDate"]["Start"], record["Id"]))
        return found


def _passes(burst_id: int, subswath: str, start: datetime, end: datetime) -> Iterator[_Pass]:
    """Every platform's pass over the burst whose azimuth time falls near ``[start, end]``."""
    relative_orbit = relative_orbit_of_burst_id(burst_id, subswath)
    seconds_in_cycle = (burst_id - 1 + SUBSWATH_CYCLE_FRACTION[subswath]) * IW_BURST_CYCLE_SECONDS
    anx_seconds = seconds_in_cycle - (relative_orbit - 1) * ORBIT_PERIOD_SECONDS
    margin = timedelta(seconds=10)
    for platform in PLATFORMS:
        first_pass = S1A_CYCLE_ZERO + timedelta(days=platform.days_after_s1a, seconds=seconds_in_cycle)
        first_cycle = max(0, math.floor((start - margin - first_pass) / REPEAT_CYCLE))
        last_cycle = math.floor((end + margin - first_pass) / REPEAT_CYCLE)
        for cycle in range(first_cycle, last_cycle + 1):
            azimuth_time = first_pass + cycle * REPEAT_CYCLE
            absolute_orbit = (
                platform.orbit_offset + RELATIVE_ORBITS * (cycle - platform.cycle_shift) + relative_orbit - 1
            )
            if absolute_orbit < 1 or not platform.flies_on(azimuth_time.date()):
                continue
            if _stable_fraction(f"missing:{platform.serial}:{absolute_orbit}") < MISSING_FRACTION:
                continue
            datatake_id = 8 * absolute_orbit + int(
                _stable_fraction(f"datatake-id:{platform.serial}:{absolute_orbit}") * 8
            )
            yield _Pass(platform, burst_id, subswath, azimuth_time, anx_seconds, absolute_orbit, datatake_id)


def _parent_products(burst_pass: _Pass) -> Iterator[tuple[str, datetime, int]]:
    """Name, start and burst index of each product (one, or two where slices overlap) holding the burst."""
    anx_time = burst_pass.azimuth_time - timedelta(seconds=burst_pass.anx_seconds)
    datatake_id = burst_pass.datatake_id
    datatake_offset = _stable_fraction(f"datatake:{burst_pass.platform.serial}:{burst_pass.absolute_orbit}")
    first_slice_start = datatake_offset * SLICE_STEP_SECONDS
    burst_centre = burst_pass.anx_seconds + BURST_DURATION.total_seconds() / 2
    last_slice = math.floor((burst_centre - first_slice_start) / SLICE_STEP_SECONDS)
    for slice_index in (last_slice - 1, last_slice):
        slice_start_seconds = first_slice_start + slice_index * SLICE_STEP_SECONDS
        if not 0 <= burst_centre - slice_start_seconds <= SLICE_DURATION_SECONDS:
            continue
        product_start = anx_time + timedelta(seconds=slice_start_seconds)
        product_stop = product_start + timedelta(seconds=SLICE_DURATION_SECONDS)
        stem = (
            f"S1{burst_pass.platform.serial}_IW_SLC__1SDV_{product_start:%Y%m%dT%H%M%S}_"
            f"{product_stop:%Y%m%dT%H%M%S}_{burst_pass.absolute_orbit:06d}_{datatake_id:06X}"
        )
        checksum = int(_stable_fraction(stem) * 0x10000)
        burst_index = int((burst_pass.anx_seconds - slice_start_seconds) // IW_BURST_CYCLE_SECONDS)
        yield f"{stem}_{checksum:04X}.SAFE", product_start, max(burst_index, 0)


def _record(
    burst_pass: _Pass,
    product_name: str,
    product_start: datetime,
    burst_index: int,
    polarisation: str,
    footprint_fields: dict,
) -> dict:
    """The CDSE ``Bursts`` record of one burst, polarisation and parent product."""
    platform, subswath = burst_pass.platform.serial, burst_pass.subswath
    # Each product's annotation places the same burst a few milliseconds differently.
    jitter = timedelta(microseconds=int(_stable_fraction(product_name) * MAX_DUPLICATE_JITTER_MICROSECONDS))
    azimuth_time = burst_pass.azimuth_time + jitter
    content_start = azimuth_time + CONTENT_START_AFTER_AZIMUTH
    content_end = content_start + BURST_DURATION
    datatake_id = burst_pass.datatake_id
    lines, samples = LINES_PER_BURST[subswath], SAMPLES_PER_BURST[subswath]
    product_stop = product_start + timedelta(seconds=SLICE_DURATION_SECONDS)
    tiff_index = IW_SUBSWATHS.index(subswath) + 1 + (3 if polarisation == "VV" else 0)
    measurement = (
        f"s1{platform.lower()}-{subswath.lower()}-slc-{polarisation.lower()}-{product_start:%Y%m%dt%H%M%S}-"
        f"{product_stop:%Y%m%dt%H%M%S}-{burst_pass.absolute_orbit:06d}-{datatake_id:06x}-{tiff_index:03d}.tiff"
    )
    absolute_burst_id = (
        math.floor(
            ((burst_pass.absolute_orbit - 1) * ORBIT_PERIOD_SECONDS + burst_pass.anx_seconds)
            / IW_BURST_CYCLE_SECONDS
        )
        + 1
    )
    return {
        "@odata.mediaContentType": "application/octet-stream",
        "Id": str(
            uuid.uuid5(_RECORD_NAMESPACE, f"{product_name}/{subswath}/{polarisation}/{burst_pass.burst_id}")
        ),
        "Name": (
            f"S1{platform}-SLC-{content_start:%Y%m%dT%H%M%S}-{burst_pass.burst_id}-{subswath}-"
            f"{polarisation}-{datatake_id:06d}"
        ),
        "ContentType": "application/octet-stream",
        "S3Path": (
            f"/eodata/Sentinel-1/SAR/IW_SLC__1S/{product_start:%Y/%m/%d}/{product_name}/measurement/{measurement}"
        ),
        "ContentDate": {"Start": _format_time(content_start), "End": _format_time(content_end)},
        **footprint_fields,
        "ParentProductId": str(uuid.uuid5(_RECORD_NAMESPACE, product_name)),
        "ParentProductName": product_name,
        "ByteOffset": FIRST_BYTE_OFFSET + burst_index * lines * samples * 4,
        "BurstId": burst_pass.burst_id,
        "AbsoluteBurstId": absolute_burst_id,
        "AzimuthTime": _format_time(azimuth_time),
        "AzimuthAnxTime": round(burst_pass.anx_seconds + jitter.total_seconds(), 9),
        "ParentProductType": "IW_SLC__1S",
        "SwathIdentifier": subswath,
        "RelativeOrbitNumber": relative_orbit_of_burst_id(burst_pass.burst_id, subswath),
        "OrbitDirection": "ASCENDING" if is_ascending_burst(burst_pass.burst_id, subswath) else "DESCENDING",
        "PlatformSerialIdentifier": platform,
        "PolarisationChannels": polarisation,
        "OperationalMode": "IW",
        "DatatakeID": datatake_id,
        "Lines": lines,
        "LinesPerBurst": lines,
        "SamplesPerBurst": samples,
        "BeginningDateTime": _format_time(content_start),
        "EndingDateTime": _format_time(content_end),
    }


def _stable_fraction(key: str) -> float:
    """A number in [0, 1) that depends only on ``key`` (unlike ``hash()``, across processes too)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _format_time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}Z"


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
