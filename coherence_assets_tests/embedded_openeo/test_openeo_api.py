"""The openEO API of the embedded backend over real HTTP: auth, errors, jobs, pagination, downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft7Validator

from coherence_assets.cdse_facts import APEX_NAMESPACE
from coherence_assets_tests.embedded_openeo.api_client import (
    APEX_ARGUMENTS,
    ApiClient,
    apex_process,
    api_client,
    assert_openeo_error,
    saved_process,
)
from coherence_assets_tests.stac.schema_validation import schema_registry

# --- discovery and authentication -------------------------------------------------------------------

# The core STAC 1.1.0 schemas vendored for the catalogue's tests (the extensions' are not vendored).
ITEM_SCHEMA = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"
COLLECTION_SCHEMA = "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json"


def test_capabilities_list_exactly_the_served_endpoints_and_well_known_points_at_the_root(
    api: ApiClient,
) -> None:
    capabilities = api.get("/").json()
    assert capabilities["api_version"] == "1.2.0"
    assert capabilities["production"] is False
    listed = {endpoint["path"]: set(endpoint["methods"]) for endpoint in capabilities["endpoints"]}
    assert listed["/jobs/{job_id}/results"] == {"GET", "POST", "DELETE"}
    assert "/collections" not in listed and "/result" not in listed
    versions = api.get("/.well-known/openeo").json()["versions"]
    assert versions == [{"url": api.url, "api_version": "1.2.0", "production": False}]


def test_processes_list_only_what_the_backend_runs_and_not_the_apex_one(api: ApiClient) -> None:
    processes = {process["id"]: process for process in api.get("/processes").json()["processes"]}
    assert set(processes) == {"save_result", "sar_coherence_parallel", "sar_coherence"}
    # the official openeo-processes 1.2.0 definition, not a description of the backend's own
    assert processes["save_result"]["description"].startswith(
        "Makes the processed data available in the given file format"
    )
    assert [parameter["name"] for parameter in processes["save_result"]["parameters"]] == [
        "data",
        "format",
        "options",
    ]
    assert api.get("/file_formats").json()["output"]["GTiff"]["gis_data_types"] == ["raster"]


def test_requests_without_or_with_a_bad_token_are_refused(api: ApiClient) -> None:
    assert_openeo_error(requests.get(f"{api.url}/jobs"), 401, "AuthenticationRequired")
    bad = requests.get(f"{api.url}/jobs", headers={"Authorization": "Bearer basic//forged.token"})
    assert_openeo_error(bad, 403, "TokenInvalid")
    assert_openeo_error(
        requests.get(f"{api.url}/credentials/basic", auth=("local", "wrong")), 403, "CredentialsInvalid"
    )
    me = api.get("/me").json()
    assert me["user_id"] == "local"
    assert me["storage"] is None and me["budget"] is None  # no quota, no charges


def test_client_credentials_token_comes_from_the_local_issuer(api: ApiClient) -> None:
    provider = requests.get(f"{api.url}/credentials/oidc").json()["providers"][0]
    assert provider["id"] == "local" and provider["issuer"] == f"{api.url}/oidc"
    discovery = requests.get(f"{provider['issuer']}/.well-known/openid-configuration").json()
    form = {
        "grant_type": "client_credentials",
        "client_id": "coherence-assets",
        "client_secret": "local-secret",
    }
    token = requests.post(discovery["token_endpoint"], data=form).json()["access_token"]
    me = requests.get(f"{api.url}/me", headers={"Authorization": f"Bearer oidc/local/{token}"})
    assert me.json()["user_id"] == "local"
    refused = requests.post(discovery["token_endpoint"], data=form | {"client_secret": "nope"})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


# --- job creation and validation --------------------------------------------------------------------


def test_create_job_answers_201_with_location_and_identifier(api: ApiClient) -> None:
    response = api.post("/jobs", json={"process": apex_process(), "title": "t015_030343_iw2|2023-07-01"})
    assert response.status_code == 201 and response.content == b""
    job_id = response.headers["OpenEO-Identifier"]
    assert response.headers["Location"] == f"{api.url}/jobs/{job_id}"
    job = api.get(f"/jobs/{job_id}").json()
    assert job["status"] == "created" and job["title"] == "t015_030343_iw2|2023-07-01"
    assert job["process"] == apex_process()


@pytest.mark.parametrize(
    ("process", "code", "named"),
    [
        (
            {"process_graph": {"x": {"process_id": "ndvi", "arguments": {}, "result": True}}},
            "ProcessUnsupported",
            "ndvi",
        ),
        (
            {
                "process_graph": {
                    "x": {
                        "process_id": "sentinel1_sar_coherence",
                        "arguments": APEX_ARGUMENTS,
                        "result": True,
                    }
                }
            },
            "ProcessUnsupported",
            APEX_NAMESPACE,
        ),
        (apex_process(temporal_baseline="12"), "ProcessParameterInvalid", "temporal_baseline"),
        (apex_process(polarization="HH"), "ProcessParameterInvalid", "polarization"),
        (
            apex_process(temporal_extent=["2023-07-01T00:00:00", "2023-08-01"]),
            "ProcessParameterInvalid",
            "temporal_extent",
        ),
        (apex_process(polarization="vv"), "ProcessParameterInvalid", "polarization"),
        (apex_process(sub_swath="iw2"), "ProcessParameterInvalid", "sub_swath"),
        (
            apex_process(
                spatial_extent={"west": 600000, "south": 5.1e6, "east": 610000, "north": 5.2e6, "crs": 32632}
            ),
            "ProcessParameterInvalid",
            "spatial_extent",
        ),
        (apex_process(color="red"), "ProcessParameterUnsupported", "color"),
        (
            {
                "process_graph": {
                    "x": {
                        "process_id": "sentinel1_sar_coherence",
                        "namespace": APEX_NAMESPACE,
                        "arguments": {"polarization": "VV"},
                        "result": True,
                    }
                }
            },
            "ProcessParameterRequired",
            "temporal_extent",
        ),
        (
            {
                "process_graph": {
                    "x": {"process_id": "sar_coherence", "arguments": APEX_ARGUMENTS, "result": True}
                }
            },
            "ProcessGraphInvalid",
            "save_result",
        ),
        (
            saved_process("sar_coherence", APEX_ARGUMENTS, output_format="netCDF"),
            "ProcessParameterInvalid",
            "format",
        ),
        ({"title": "no graph"}, "ProcessGraphMissing", "process graph"),
    ],
)
def test_create_job_refuses_invalid_processes_naming_what_is_wrong(
    api: ApiClient, process: dict[str, Any], code: str, named: str
) -> None:
    body = assert_openeo_error(api.post("/jobs", json={"process": process}), 400, code)
    assert named in body["message"]


def test_duplicate_primary_dates_are_refused_as_cdse_did(api: ApiClient) -> None:
    arguments = {
        "InSAR_pairs": [["2023-07-03", "2023-07-15"], ["2023-07-03", "2023-07-27"]],
        "burst_id": 30343,
        "sub_swath": "IW2",
        "polarization": "VV",
    }
    body = assert_openeo_error(
        api.post("/jobs", json={"process": saved_process("sar_coherence_parallel", arguments)}),
        400,
        "ProcessParameterInvalid",
    )
    assert "InSAR_pairs" in body["message"] and "Duplicate primary date(s)" in body["message"]


def test_apex_namespace_pinned_to_a_commit_and_a_trailing_save_result_are_accepted(api: ApiClient) -> None:
    pinned = APEX_NAMESPACE.replace("refs/heads/main", "3b16249e9817cafc049836ec273d2c04e08d6969")
    process = apex_process()
    node = process["process_graph"]["sentinel1sarcoherence1"]
    node |= {"namespace": pinned, "result": False}
    process["process_graph"]["saveresult1"] = {
        "process_id": "save_result",
        "arguments": {"data": {"from_node": "sentinel1sarcoherence1"}, "format": "GTiff", "options": {}},
        "result": True,
    }
    api.create_job(process)


# --- job lifecycle ----------------------------------------------------------------------------------


def test_unknown_jobs_answer_404_job_not_found(api: ApiClient) -> None:
    for method, path in [
        ("GET", ""),
        ("POST", "/results"),
        ("GET", "/results"),
        ("GET", "/logs"),
        ("DELETE", ""),
    ]:
        response = api.session.request(method, f"{api.url}/jobs/j-nope{path}")
        assert_openeo_error(response, 404, "JobNotFound")


def test_results_before_the_job_finished_answer_job_not_finished(api: ApiClient) -> None:
    job_id = api.create_job()
    assert_openeo_error(api.get(f"/jobs/{job_id}/results"), 400, "JobNotFinished")
    partial = api.get(f"/jobs/{job_id}/results", params={"partial": "true"}).json()
    assert partial["openeo:status"] == "running" and partial["assets"] == {}


def test_a_running_job_is_locked_and_can_be_canceled(tmp_path: Path) -> None:
    with api_client(tmp_path, job_seconds_per_pair=0.5) as api:
        job_id = api.create_job()
        assert api.post(f"/jobs/{job_id}/results").status_code == 202
        api.wait_for(job_id, ("running",))
        patch = api.session.patch(f"{api.url}/jobs/{job_id}", json={"title": "renamed"})
        assert_openeo_error(patch, 400, "JobLocked")
        assert api.session.delete(f"{api.url}/jobs/{job_id}/results").status_code == 204
        job = api.wait_for(job_id, ("canceled",))
        assert job["progress"] < 100
        assert api.session.patch(f"{api.url}/jobs/{job_id}", json={"title": "renamed"}).status_code == 204
        assert api.get(f"/jobs/{job_id}").json()["title"] == "renamed"


def test_deleted_jobs_are_gone(api: ApiClient) -> None:
    job_id = api.create_job()
    assert api.session.delete(f"{api.url}/jobs/{job_id}").status_code == 204
    assert_openeo_error(api.get(f"/jobs/{job_id}"), 404, "JobNotFound")


def test_job_listing_is_paginated_newest_first_with_opaque_next_links(api: ApiClient) -> None:
    created = [api.create_job(title=f"job {n}") for n in range(5)]
    everything = [job["id"] for job in api.get("/jobs").json()["jobs"]]
    assert everything[:5] == created[::-1]
    seen: list[str] = []
    url: str | None = f"{api.url}/jobs?limit=2"
    while url:
        page = api.session.get(url).json()
        assert len(page["jobs"]) <= 2 and all("process" not in job for job in page["jobs"])
        seen += [job["id"] for job in page["jobs"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert seen == everything
    assert_openeo_error(api.get("/jobs", params={"limit": 2, "page": "garbage"}), 400, "InvalidPagination")


def test_fast_starts_get_429_with_retry_after(tmp_path: Path) -> None:
    with api_client(tmp_path, min_seconds_between_starts=5.0) as api:
        first, second = api.create_job(), api.create_job()
        assert api.post(f"/jobs/{first}/results").status_code == 202
        refused = assert_openeo_error(api.post(f"/jobs/{second}/results"), 429, "TooManyRequests")
        assert "5 s" in refused["message"]
        assert int(api.post(f"/jobs/{second}/results").headers["Retry-After"]) in range(1, 6)
        assert api.status(second) == "created"


def test_injected_server_errors_reach_the_client_as_openeo_errors(api: ApiClient) -> None:
    rule = {"kind": "http", "path": "^/jobs$", "method": "GET", "status": 503, "times": 1}
    assert requests.post(f"{api.url}/_faults", json=rule).status_code == 201
    assert_openeo_error(api.get("/jobs"), 503, "InfrastructureBusy")
    assert api.get("/jobs").status_code == 200


# --- results, logs, downloads -----------------------------------------------------------------------


def _finished_job(api: ApiClient) -> tuple[str, dict[str, Any]]:
    job_id = api.create_job()
    api.post(f"/jobs/{job_id}/results")
    api.wait_for(job_id, ("finished",))
    return job_id, api.get(f"/jobs/{job_id}/results").json()


def test_finished_job_reports_usage_costs_and_a_stac_collection_of_pair_items(api: ApiClient) -> None:
    job_id, collection = _finished_job(api)
    job = api.get(f"/jobs/{job_id}").json()
    assert job["progress"] == 100 and job["costs"] > 0
    assert {"cpu", "memory", "duration"} <= set(job["usage"])
    assert collection["type"] == "Collection" and collection["openeo:status"] == "finished"
    names = sorted(collection["assets"])
    assert names == [
        "S1_coh_2images_20230703T171543_20230715T171543.tif",
        "S1_coh_2images_20230715T171543_20230727T171543.tif",
        "S1_coh_2images_20230727T171543_20230808T171543.tif",
    ]
    asset = collection["assets"][names[0]]
    assert asset["type"] == "image/tiff; application=geotiff" and asset["roles"] == ["data"]
    assert asset["file:size"] > 0 and asset["proj:epsg"] == 32632
    item_links = [link["href"] for link in collection["links"] if link["rel"] == "item"]
    item = requests.get(item_links[0]).json()  # signed: no Authorization header needed
    assert item["id"] == names[0]
    assert item["properties"]["datetime"].startswith("2023-07-03T17:15:43")
    assert item["properties"]["sar:datetime_secondary"].startswith("2023-07-15T17:15:43")
    assert item["properties"]["proj:epsg"] == 32632


def test_results_are_stac_1_1_0_with_cdses_projection_extension_version(api: ApiClient) -> None:
    _, collection = _finished_job(api)
    item_link = next(link["href"] for link in collection["links"] if link["rel"] == "item")
    item = requests.get(item_link).json()
    core = Draft7Validator.FORMAT_CHECKER
    registry = schema_registry()
    for document, schema in ((collection, COLLECTION_SCHEMA), (item, ITEM_SCHEMA)):
        assert document["stac_version"] == "1.1.0"
        assert (
            "https://stac-extensions.github.io/projection/v1.2.0/schema.json" in document["stac_extensions"]
        )
        Draft7Validator(registry.contents(schema), registry=registry, format_checker=core).validate(document)
    asset = next(iter(item["assets"].values()))
    assert asset["proj:code"] == "EPSG:32632" == item["properties"]["proj:code"]
    assert asset["bands"] == [{"name": "coh_VV", "data_type": "float32", "nodata": "nan"}]


def test_assets_download_without_auth_with_head_and_ranges(api: ApiClient) -> None:
    _, collection = _finished_job(api)
    asset = next(iter(collection["assets"].values()))
    head = requests.head(asset["href"])
    size = int(head.headers["Content-Length"])
    assert head.status_code == 200 and head.headers["Accept-Ranges"] == "bytes" and size == asset["file:size"]
    whole = requests.get(asset["href"]).content
    assert len(whole) == size and whole[:4] in (b"II*\x00", b"MM\x00*")
    part = requests.get(asset["href"], headers={"Range": "bytes=10-109"})
    assert part.status_code == 206 and part.content == whole[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{size}"
    tampered = asset["href"].replace("/assets/", "/assets/x", 1)
    assert requests.get(tampered).status_code in (403, 404)
    unsatisfiable = requests.get(asset["href"], headers={"Range": f"bytes={size + 10}-"})
    assert unsatisfiable.status_code == 416


def test_a_truncation_fault_cuts_the_download_short(api: ApiClient) -> None:
    _, collection = _finished_job(api)
    asset = next(iter(collection["assets"].values()))
    rule = {"kind": "truncate_download", "path": "/results/assets/", "truncate_after_bytes": 100, "times": 1}
    requests.post(f"{api.url}/_faults", json=rule)
    with pytest.raises(requests.exceptions.RequestException):
        response = requests.get(asset["href"], timeout=10)
        assert len(response.content) == asset["file:size"]
    assert len(requests.get(asset["href"]).content) == asset["file:size"]


def test_logs_support_offset_and_level(api: ApiClient) -> None:
    job_id, _ = _finished_job(api)
    logs = api.get(f"/jobs/{job_id}/logs").json()["logs"]
    assert logs[0]["message"] == "Job created." and logs[-1]["message"].startswith("Job finished")
    after = api.get(f"/jobs/{job_id}/logs", params={"offset": logs[1]["id"]}).json()["logs"]
    assert after == logs[2:]
    assert api.get(f"/jobs/{job_id}/logs", params={"level": "error"}).json()["logs"] == []


def test_unknown_paths_and_methods_answer_json_errors_in_the_paths_format(api: ApiClient) -> None:
    assert_openeo_error(api.get("/no/such/endpoint"), 404, "NotFound")
    assert_openeo_error(api.session.put(f"{api.url}/jobs"), 405, "MethodNotAllowed")
    catalogue = requests.get(f"{api.url}/odata/v1/NoSuchEntity", timeout=10)
    assert catalogue.status_code == 404 and "detail" in catalogue.json()


def test_a_backend_like_todays_cdse_neither_lists_nor_runs_the_retired_processes(tmp_path: Path) -> None:
    with api_client(tmp_path, offers_retired_processes=False) as api:
        ids = {process["id"] for process in api.get("/processes").json()["processes"]}
        assert "sar_coherence" not in ids and "sar_coherence_parallel" not in ids
        refused = api.post("/jobs", json={"process": saved_process("sar_coherence", APEX_ARGUMENTS)})
        body = assert_openeo_error(refused, 400, "ProcessUnsupported")
        assert "sar_coherence" in body["message"]
        assert api.create_job(apex_process())  # the current process still runs
