"""The processes the embedded backend runs and how a job's process graph is checked.

Three coherence processes are accepted, as CDSE offered them:

- ``sentinel1_sar_coherence`` from the APEx namespace (the current one). It is not listed in
  ``GET /processes``, as on CDSE, where it is a user-defined process resolved from its URL. A node
  calling it must carry ``"namespace"`` equal to :data:`APEX_NAMESPACE`, or to the same file at another
  git ref of ``ESA-APEx/apex_algorithms`` (benchmarks pin commits). The backend never fetches that URL:
  it knows the definition. The node is the whole graph; a trailing ``save_result(format="GTiff")``, which
  the ``openeo`` client adds unless told ``auto_add_save_result=False``, is accepted and changes nothing.
- ``sar_coherence_parallel`` (explicit ``InSAR_pairs``) and ``sar_coherence`` (extent and baseline),
  predefined processes that must be followed by ``save_result(format="GTiff")``.

Checks happen when a job is created or patched and fail with openEO error codes that name the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

# CDSE's process ids, the APEx namespace and the burst-id rules, from the facts the product reads too
# (one home for the names; what each process accepts and does is this backend's own, below)
from coherence_assets.cdse_facts import (
    APEX_NAMESPACE,
    IW_SUBSWATHS,
    MAX_BURST_ID,
    SAR_COHERENCE,
    SAR_COHERENCE_PARALLEL,
    SENTINEL1_SAR_COHERENCE,
    SUBSWATHS,
)

# APEX_NAMESPACE names the file on the main branch; the same file on another branch or at a pinned
# commit (benchmarks pin them) is the same process
_APEX_REPOSITORY, _, _APEX_FILE = APEX_NAMESPACE.partition("/refs/heads/main/")
_APEX_NAMESPACE_ANY_REF = re.compile(
    rf"^{re.escape(_APEX_REPOSITORY)}/(?:refs/heads/)?[\w.\-]+/{re.escape(_APEX_FILE)}$"
)
SAVE_RESULT_FORMAT = "GTiff"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339, as the UDP's "format": "date-time" asks (a time zone is required)
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")
_BBOX_KEYS = ("west", "south", "east", "north")


class InvalidProcessError(ValueError):
    """A process graph the backend refuses, with the openEO error code to answer with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# [start, end] as given: a date, an RFC 3339 date-time or None (open) each; see pair_planning.catalogue_bounds
TemporalExtent = tuple[str | None, str | None]
# (west, south, east, north) in longitude/latitude degrees
BoundingBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class CoherenceComputation:
    """What one job computes: a burst (or an area to find it in), its coherence settings, and either
    an extent or explicit pairs. ``burst_id`` and ``sub_swath`` may be ``None`` for the APEx process,
    which then picks them from the catalogue as its CWL does (pair_planning.plan_job)."""

    process_id: str
    burst_id: int | None
    sub_swath: str | None
    polarization: str
    coherence_window_rg: int
    coherence_window_az: int
    temporal_extent: TemporalExtent | None = None
    temporal_baseline: int | None = None
    insar_pairs: tuple[tuple[date, date], ...] | None = None
    spatial_extent: BoundingBox | None = None

    def given_parameters(self) -> dict[str, Any]:
        """The parameters the CWL's ``get_bursts.py`` logs and names in its errors: those not null."""
        parameters = {
            "burst_id": self.burst_id,
            "spatial_extent": None
            if self.spatial_extent is None
            else dict(zip(_BBOX_KEYS, self.spatial_extent, strict=True)),
            "polarization": self.polarization,
            "sub_swath": self.sub_swath,
            "temporal_extent": None if self.temporal_extent is None else list(self.temporal_extent),
            "temporal_baseline": self.temporal_baseline,
        }
        return {name: value for name, value in parameters.items() if value is not None}


# --- parameter checks -------------------------------------------------------------------------------


Check = Callable[[str, str, Any], Any]


def _invalid(process_id: str, parameter: str, reason: str) -> InvalidProcessError:
    return InvalidProcessError(
        "ProcessParameterInvalid",
        f"The value passed for parameter '{parameter}' in process '{process_id}' is invalid: {reason}",
    )


def _integer(minimum: int, maximum: int | None = None) -> Check:
    def check(process_id: str, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(process_id, name, f"expected an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise _invalid(process_id, name, f"expected an integer {bounds}, got {value}")
        return value

    return check


def _choice(options: Sequence[str]) -> Check:
    """Case-insensitive, as the retired processes' CWL lower-cased what it was given."""

    def check(process_id: str, name: str, value: Any) -> str:
        if not isinstance(value, str) or value.upper() not in options:
            raise _invalid(process_id, name, f"expected one of {list(options)}, got {value!r}")
        return value.upper()

    return check


def _enum(options: Sequence[str]) -> Check:
    """Exactly one of ``options``: the UDP's JSON schema enum, which ``vv`` does not satisfy."""

    def check(process_id: str, name: str, value: Any) -> str:
        if value not in options:
            raise _invalid(process_id, name, f"expected exactly one of {list(options)}, got {value!r}")
        return value

    return check


def _optional(check: Check) -> Check:
    """A check that lets null through, for the UDP's parameters with ``"default": null``."""

    def optional_check(process_id: str, name: str, value: Any) -> Any:
        return None if value is None else check(process_id, name, value)

    return optional_check


def _parse_date(process_id: str, name: str, value: Any) -> date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise _invalid(process_id, name, f"expected a plain date 'YYYY-MM-DD', got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise _invalid(process_id, name, f"{value!r} is not a calendar date") from error


def _extent_item(process_id: str, name: str, value: Any) -> str | None:
    """A date, an RFC 3339 date-time or null: the three forms the UDP's ``temporal_extent`` schema allows."""
    if value is None:
        return None
    if isinstance(value, str) and _DATE.match(value):
        _parse_date(process_id, name, value)
        return value
    if isinstance(value, str) and _DATE_TIME.match(value):
        try:
            datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError as error:
            raise _invalid(process_id, name, f"{value!r} is not a calendar date-time") from error
        return value
    raise _invalid(
        process_id,
        name,
        f"expected a date 'YYYY-MM-DD', a date-time 'YYYY-MM-DDTHH:MM:SSZ' or null, got {value!r}",
    )


def _temporal_extent(process_id: str, name: str, value: Any) -> TemporalExtent:
    if not isinstance(value, list) or len(value) != 2:
        raise _invalid(process_id, name, f"expected [start, end] (dates, date-times or null), got {value!r}")
    start, end = (_extent_item(process_id, name, item) for item in value)
    if start is not None and end is not None and end[:10] < start[:10]:
        raise _invalid(process_id, name, f"end {end} lies before start {start}")
    return start, end


def _insar_pairs(process_id: str, name: str, value: Any) -> tuple[tuple[date, date], ...]:
    if not isinstance(value, list) or not value:
        raise _invalid(process_id, name, "expected a non-empty list of [reference, secondary] dates")
    pairs = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise _invalid(process_id, name, f"expected [reference, secondary] dates, got {item!r}")
        reference, secondary = (_parse_date(process_id, name, part) for part in item)
        if secondary <= reference:
            raise _invalid(process_id, name, f"secondary {secondary} must come after reference {reference}")
        pairs.append((reference, secondary))
    references = [reference for reference, _ in pairs]
    duplicates = sorted({str(day) for day in references if references.count(day) > 1})
    if duplicates:
        # CDSE's own wording, so the project's error handling sees what CDSE said.
        raise _invalid(
            process_id,
            name,
            f"Duplicate primary date(s) found in InSAR_pairs: {duplicates}. "
            "You can load multiple primary dates over multiple processes if needed.",
        )
    return tuple(pairs)


def _bounding_box(process_id: str, name: str, value: Any) -> BoundingBox:
    """A bounding box in EPSG:4326, the form the CWL turns into its catalogue query.

    The UDP's schema also allows a vector cube and another ``crs``; the CWL writes west/south/east/north
    into an ``SRID=4326`` polygon whatever the crs, so anything but degrees is refused here, in one line.
    """
    if not isinstance(value, dict) or any(
        isinstance(value.get(key), bool) or not isinstance(value.get(key), int | float) for key in _BBOX_KEYS
    ):
        raise _invalid(
            process_id, name, f"expected a bounding box {{west, south, east, north}}, got {value!r}"
        )
    if value.get("crs", 4326) not in (4326, "4326", "EPSG:4326"):
        raise _invalid(
            process_id, name, f"the bounding box must be in EPSG:4326 (degrees), got crs {value['crs']!r}"
        )
    west, south, east, north = (float(value[key]) for key in _BBOX_KEYS)
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise _invalid(
            process_id,
            name,
            f"expected -180 <= west < east <= 180 and -90 <= south < north <= 90, got {value!r}",
        )
    return west, south, east, north


@dataclass(frozen=True)
class _Parameter:
    name: str
    description: str
    schema: dict[str, Any]
    check: Check
    default: Any = None
    optional: bool = False

    def describe(self) -> dict[str, Any]:
        described = {"name": self.name, "description": self.description, "schema": self.schema}
        if self.optional:
            described |= {"optional": True, "default": self.default}
        return described


def _coherence_window(name: str, direction: str, default: int) -> _Parameter:
    """An optional window size in pixels; every coherence process takes one per direction."""
    return _Parameter(
        name,
        f"Coherence window size in {direction} direction (pixels).",
        {"type": "integer", "minimum": 1},
        _integer(1),
        default=default,
        optional=True,
    )


_WINDOW_RG = _coherence_window("coherence_window_rg", "range", default=10)
_WINDOW_AZ = _coherence_window("coherence_window_az", "azimuth", default=2)
_DATE_SCHEMA = {"type": "string", "format": "date", "subtype": "date"}
_BURST_ID = _Parameter(
    "burst_id",
    "ESA burst id (the relative orbit follows from it).",
    {"type": "integer", "minimum": 1},
    _integer(1, MAX_BURST_ID),
)
_TEMPORAL_EXTENT = _Parameter(
    "temporal_extent",
    "[start, end] as dates, date-times or null; a date start is asked from T00:00:00, a date end to "
    "T23:59:59, as the CWL asks the catalogue.",
    {
        "type": "array",
        "subtype": "temporal-interval",
        "minItems": 2,
        "maxItems": 2,
        "items": {
            "anyOf": [
                {"type": "string", "subtype": "date-time", "format": "date-time"},
                _DATE_SCHEMA,
                {"type": "null"},
            ]
        },
    },
    _temporal_extent,
)

_PROCESS_PARAMETERS: dict[str, tuple[_Parameter, ...]] = {
    # As the UDP defines them (ESA-APEx/apex_algorithms, algorithm_catalog/eurac/sentinel1_sar_coherence/
    # openeo_udp/sentinel1_sar_coherence.json): burst_id, sub_swath and spatial_extent optional (null),
    # polarization exactly VV or VH.
    SENTINEL1_SAR_COHERENCE: (
        _Parameter(
            "burst_id",
            "ESA burst id; or give spatial_extent, and the lowest burst id found there is used.",
            {"type": ["integer", "null"], "minimum": 1},
            _optional(_integer(1, MAX_BURST_ID)),
            optional=True,
        ),
        _Parameter(
            "polarization", "Polarisation.", {"type": "string", "enum": ["VV", "VH"]}, _enum(("VV", "VH"))
        ),
        _Parameter(
            "sub_swath",
            "Sub-swath identifier; null takes that of the first catalogue record found.",
            {"type": ["string", "null"], "enum": [*IW_SUBSWATHS, None]},
            _optional(_enum(IW_SUBSWATHS)),
            optional=True,
        ),
        _TEMPORAL_EXTENT,
        _Parameter(
            "spatial_extent",
            "Bounding box (EPSG:4326) to search bursts in, instead of burst_id; the lowest burst id found is used.",
            {
                "type": ["object", "null"],
                "subtype": "bounding-box",
                "required": list(_BBOX_KEYS),
                "properties": {key: {"type": "number"} for key in _BBOX_KEYS},
            },
            _optional(_bounding_box),
            optional=True,
        ),
        _Parameter(
            "temporal_baseline",
            "Days between reference and secondary of each pair; should be a multiple of 6 (no acquisitions "
            "lie a different number of days apart, so the job then finds no pairs).",
            {"type": "integer", "minimum": 1},
            _integer(1),
        ),
        _WINDOW_RG,
        _WINDOW_AZ,
    ),
    SAR_COHERENCE: (
        _TEMPORAL_EXTENT,
        _Parameter(
            "temporal_baseline",
            "Days between reference and secondary of each pair (a multiple of 6).",
            {"type": "integer", "minimum": 6},
            _integer(6),
        ),
        _BURST_ID,
        _WINDOW_AZ,
        _WINDOW_RG,
        _Parameter(
            "polarization",
            "Polarisation.",
            {"type": "string", "enum": ["VV", "VH", "HH", "HV"]},
            _choice(("VV", "VH", "HH", "HV")),
        ),
        _Parameter(
            "sub_swath",
            "Sub-swath identifier.",
            {"type": "string", "enum": list(SUBSWATHS)},
            _choice(SUBSWATHS),
        ),
    ),
    SAR_COHERENCE_PARALLEL: (
        _Parameter(
            "InSAR_pairs",
            "List of [reference, secondary] dates; a reference date may appear only once.",
            {
                "type": "array",
                "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": _DATE_SCHEMA},
            },
            _insar_pairs,
        ),
        _BURST_ID,
        _WINDOW_AZ,
        _WINDOW_RG,
        _Parameter("polarization", "Polarisation.", {"type": "string"}, _choice(("VV", "VH", "HH", "HV"))),
        _Parameter("sub_swath", "Sub-swath identifier.", {"type": "string"}, _choice(SUBSWATHS)),
    ),
}

_DATACUBE = {"type": "object", "subtype": "datacube"}
# Official definition, vendored unchanged (openeo_processes/README.md): the backend describes the
# standard process it runs in the standard's words, not its own.
_SAVE_RESULT = json.loads((Path(__file__).parent / "openeo_processes" / "save_result.json").read_text())
# Only what the backend can run: save_result (after an older process) and the two older processes.
_PREDEFINED_PROCESSES: list[dict[str, Any]] = [
    _SAVE_RESULT,
    {
        "id": SAR_COHERENCE_PARALLEL,
        "summary": "Sentinel-1 coherence for explicit pairs",
        "description": "Coherence of one burst for the given [reference, secondary] date pairs. Follow it "
        "with save_result(format='GTiff'); outputs are named openEO_<reference date>Z.tif.",
        "categories": ["sar"],
        "deprecated": True,
        "parameters": [parameter.describe() for parameter in _PROCESS_PARAMETERS[SAR_COHERENCE_PARALLEL]],
        "returns": {"description": "One coherence raster per pair.", "schema": _DATACUBE},
    },
    {
        "id": SAR_COHERENCE,
        "summary": "Sentinel-1 coherence over a temporal extent",
        "description": "Coherence of one burst for every two acquisitions temporal_baseline days apart "
        "within the extent. Follow it with save_result(format='GTiff'); outputs are named "
        "openEO_<reference date>Z.tif.",
        "categories": ["sar"],
        "deprecated": True,
        "parameters": [parameter.describe() for parameter in _PROCESS_PARAMETERS[SAR_COHERENCE]],
        "returns": {"description": "One coherence raster per pair.", "schema": _DATACUBE},
    },
]


RETIRED_PROCESS_IDS = frozenset({SAR_COHERENCE_PARALLEL, SAR_COHERENCE})


def predefined_processes(offers_retired: bool = True) -> list[dict[str, Any]]:
    """What ``GET /processes`` lists (the APEx process is not among them, as on CDSE).

    Without ``offers_retired`` the backend is today's CDSE, which removed the two older processes.
    """
    return [p for p in _PREDEFINED_PROCESSES if offers_retired or p["id"] not in RETIRED_PROCESS_IDS]


def is_apex_namespace(namespace: Any) -> bool:
    return isinstance(namespace, str) and bool(_APEX_NAMESPACE_ANY_REF.match(namespace))


# --- process graph ----------------------------------------------------------------------------------


def parse_job_process(process: Any, offers_retired: bool = True) -> CoherenceComputation:
    """Check the ``process`` of a job request and return what the job will compute.

    Without ``offers_retired``, the processes CDSE removed are unknown, as they are there.
    """
    if not isinstance(process, dict) or not isinstance(process.get("process_graph"), dict):
        raise InvalidProcessError(
            "ProcessGraphMissing", "Invalid process specified. It doesn't contain a process graph."
        )
    graph: dict[str, Any] = process["process_graph"]
    for node_id, node in graph.items():
        if not isinstance(node, dict) or not isinstance(node.get("process_id"), str):
            raise InvalidProcessError("ProcessGraphInvalid", f"Node '{node_id}' has no process_id.")
        _check_known_process(node, offers_retired)
    result_ids = [node_id for node_id, node in graph.items() if node.get("result") is True]
    if len(result_ids) != 1:
        raise InvalidProcessError(
            "ProcessGraphInvalid", f"A process graph needs exactly one result node, found {len(result_ids)}."
        )
    result = graph[result_ids[0]]
    if result["process_id"] == "save_result":
        coherence_node = _saved_node(graph, result)
        expected_size = 2
    else:
        coherence_node, expected_size = result, 1
    if coherence_node["process_id"] not in _PROCESS_PARAMETERS or len(graph) != expected_size:
        raise InvalidProcessError(
            "ProcessGraphInvalid",
            f"The embedded backend runs one of {SENTINEL1_SAR_COHERENCE} (namespace {APEX_NAMESPACE}), "
            f"{SAR_COHERENCE_PARALLEL} or {SAR_COHERENCE}, the latter two followed by "
            f"save_result(format='{SAVE_RESULT_FORMAT}'), and nothing else.",
        )
    if coherence_node["process_id"] != SENTINEL1_SAR_COHERENCE and result is coherence_node:
        raise InvalidProcessError(
            "ProcessGraphInvalid",
            f"{coherence_node['process_id']} must be followed by save_result(format='{SAVE_RESULT_FORMAT}').",
        )
    return _request_from_node(coherence_node)


def _check_known_process(node: dict[str, Any], offers_retired: bool) -> None:
    process_id, namespace = node["process_id"], node.get("namespace")
    if process_id == SENTINEL1_SAR_COHERENCE and is_apex_namespace(namespace):
        return
    if namespace in (None, "backend") and process_id in {
        p["id"] for p in predefined_processes(offers_retired)
    }:
        return
    raise InvalidProcessError(
        "ProcessUnsupported",
        f"Process with identifier '{process_id}' is not available in namespace '{namespace}'."
        + (f" It lives in namespace '{APEX_NAMESPACE}'." if process_id == SENTINEL1_SAR_COHERENCE else ""),
    )


def _saved_node(graph: dict[str, Any], save_result: dict[str, Any]) -> dict[str, Any]:
    arguments = save_result.get("arguments") or {}
    output_format = arguments.get("format")
    if not isinstance(output_format, str) or output_format.lower() != SAVE_RESULT_FORMAT.lower():
        raise _invalid(
            "save_result", "format", f"only '{SAVE_RESULT_FORMAT}' is supported, got {output_format!r}"
        )
    data = arguments.get("data")
    if not isinstance(data, dict) or data.get("from_node") not in graph:
        raise _invalid("save_result", "data", "expected {'from_node': <id of the coherence node>}")
    return graph[data["from_node"]]


def _request_from_node(node: dict[str, Any]) -> CoherenceComputation:
    process_id = node["process_id"]
    arguments = node.get("arguments") or {}
    parameters = _PROCESS_PARAMETERS[process_id]
    known = {parameter.name for parameter in parameters}
    for name in arguments:
        if name not in known:
            raise InvalidProcessError(
                "ProcessParameterUnsupported", f"Process '{process_id}' does not support parameter '{name}'."
            )
    values: dict[str, Any] = {}
    for parameter in parameters:
        if parameter.name not in arguments:
            if not parameter.optional:
                raise InvalidProcessError(
                    "ProcessParameterRequired",
                    f"Process '{process_id}' parameter '{parameter.name}' is required.",
                )
            values[parameter.name] = parameter.default
        else:
            values[parameter.name] = parameter.check(process_id, parameter.name, arguments[parameter.name])
    return CoherenceComputation(
        process_id=process_id,
        burst_id=values["burst_id"],
        sub_swath=values["sub_swath"],
        polarization=values["polarization"],
        coherence_window_rg=values["coherence_window_rg"],
        coherence_window_az=values["coherence_window_az"],
        temporal_extent=values.get("temporal_extent"),
        temporal_baseline=values.get("temporal_baseline"),
        insar_pairs=values.get("InSAR_pairs"),
        spatial_extent=values.get("spatial_extent"),
    )
