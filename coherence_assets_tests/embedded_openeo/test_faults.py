"""Faults switched on over ``/_faults`` answer like CDSE does when it is overloaded or broken."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from embedded_openeo.config import BackendConfig
from embedded_openeo.faults import DEFAULT_JOB_ERROR, FaultInjector, FaultRule
from embedded_openeo.server import running_backend

BURSTS_QUERY = "/odata/v1/Bursts?$filter=BurstId eq 30343"


@pytest.fixture(scope="module")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_backend(
        BackendConfig(data_dir=tmp_path_factory.mktemp("backend"), port=0, allow_faults=True)
    ) as url:
        yield url


@pytest.fixture
def url(backend_url: str) -> Iterator[str]:
    yield backend_url
    requests.delete(f"{backend_url}/_faults", timeout=5).raise_for_status()


def add_fault(url: str, **rule: object) -> dict:
    response = requests.post(f"{url}/_faults", json=rule, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_429_carries_retry_after_and_the_catalogue_error_body(url: str) -> None:
    add_fault(url, path="^/odata/", status=429, retry_after=7, times=1)
    refused = requests.get(url + BURSTS_QUERY, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "7"
    assert "detail" in refused.json()
    assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 200


def test_a_429_without_explicit_delay_still_says_when_to_retry(url: str) -> None:
    add_fault(url, status=429, times=1)
    assert requests.get(url + "/", timeout=5).headers["Retry-After"] == "1"


def test_a_500_on_an_openeo_path_has_the_openeo_error_body(url: str) -> None:
    add_fault(url, path="^/$", status=500, message="disk on fire")
    response = requests.get(url + "/", timeout=5)
    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"id", "code", "message", "links"}
    assert (body["code"], body["message"]) == ("Internal", "disk on fire")


def test_a_slow_fault_delays_the_answer_without_changing_it(url: str) -> None:
    add_fault(url, path="^/odata/", delay_seconds=0.5, times=1)
    began = time.monotonic()
    response = requests.get(url + BURSTS_QUERY, timeout=5)
    assert response.status_code == 200
    assert time.monotonic() - began >= 0.5


def test_a_fault_for_one_method_leaves_other_methods_alone(url: str) -> None:
    add_fault(url, method="post", status=503)
    assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 200
    assert requests.post(url + "/", timeout=5).status_code == 503


def test_a_rule_is_listed_while_in_force_and_leaves_once_used_up(url: str) -> None:
    add_fault(url, path="^/odata/", status=503, times=1)
    add_fault(url, path="^/jobs$", method="POST", status=500)
    listed = requests.get(f"{url}/_faults", timeout=5).json()
    assert [(rule["path"], rule["status"], rule["times"]) for rule in listed] == [
        ("^/odata/", 503, 1),
        ("^/jobs$", 500, None),
    ]

    assert requests.get(f"{url}{BURSTS_QUERY}", timeout=5).status_code == 503

    assert [rule["path"] for rule in requests.get(f"{url}/_faults", timeout=5).json()] == ["^/jobs$"]


def test_deleting_faults_restores_normal_answers(url: str) -> None:
    add_fault(url, status=503)
    assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 503
    assert requests.delete(f"{url}/_faults", timeout=5).status_code == 204
    assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 200


def test_an_empty_answer_is_a_200_odata_page_without_records(url: str) -> None:
    assert requests.get(url + BURSTS_QUERY, timeout=5).json()["value"], "the query must have records"
    add_fault(url, kind="empty_answer", path="^/odata/v1/Bursts", times=1)
    emptied = requests.get(url + BURSTS_QUERY, timeout=5)
    assert (emptied.status_code, emptied.json()) == (200, {"@odata.context": "$metadata#Bursts", "value": []})
    assert requests.get(url + BURSTS_QUERY, timeout=5).json()["value"]


def test_a_malformed_answer_is_a_200_html_page(url: str) -> None:
    add_fault(url, kind="malformed_answer", path="^/odata/v1/Bursts", times=1)
    malformed = requests.get(url + BURSTS_QUERY, timeout=5)
    assert (malformed.status_code, malformed.headers["Content-Type"].split(";")[0]) == (200, "text/html")
    with pytest.raises(ValueError):
        malformed.json()
    assert requests.get(url + BURSTS_QUERY, timeout=5).json()["value"]


def test_a_truncated_download_rule_is_accepted_as_sent(url: str) -> None:
    rule = add_fault(
        url, kind="truncate_download", path="/jobs/.*/results/", truncate_after_bytes=1024, times=2
    )
    assert (rule["kind"], rule["truncate_after_bytes"], rule["times"]) == ("truncate_download", 1024, 2)
    assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 200


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "explode"},
        {"status": 200},
        {"path": "("},
        {"kind": "truncate_download"},
        {"colour": "red"},
        [1],
    ],
)
def test_invalid_rules_are_refused_with_400(url: str, rule: object) -> None:
    response = requests.post(f"{url}/_faults", json=rule, timeout=5)
    assert response.status_code == 400
    assert response.json()["message"]


def test_faults_are_an_unknown_path_unless_the_backend_allows_them(tmp_path: Path) -> None:
    with running_backend(BackendConfig(data_dir=tmp_path, port=0)) as url:
        for method in ("POST", "DELETE"):
            refused = requests.request(method, f"{url}/_faults", json={"status": 500}, timeout=5)
            assert refused.status_code == 404
            assert refused.json()["code"] == "NotFound"
            assert requests.get(url + BURSTS_QUERY, timeout=5).status_code == 200


def test_job_errors_and_truncations_are_used_up_one_at_a_time() -> None:
    faults = FaultInjector()
    faults.add(FaultRule.from_json({"kind": "job_error", "message": "out of memory", "times": 1}))
    faults.add(FaultRule(kind="job_error"))
    faults.add(FaultRule(kind="truncate_download", path="/assets/", truncate_after_bytes=10, times=1))
    assert faults.take_job_error() == "out of memory"
    assert faults.take_job_error() == DEFAULT_JOB_ERROR
    assert faults.truncation_for("/jobs/j-1/logs") is None
    assert faults.truncation_for("/jobs/j-1/results/assets/a.tif") == 10
    assert faults.truncation_for("/jobs/j-1/results/assets/a.tif") is None
    assert faults.http_fault_for("GET", "/jobs") is None
