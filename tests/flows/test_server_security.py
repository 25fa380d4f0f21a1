"""The Prefect servers llama-recipe starts listen on 127.0.0.1 only, and a shared server can
require credentials (Prefect's API auth string): a request without them is refused."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import psutil
import pytest

from flows.server import free_port, start_server, stop_server

pytestmark = pytest.mark.integration


@pytest.fixture
def guarded_server(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "admin:s3cret")
    port = free_port()
    server = start_server("127.0.0.1", port, ui=False, quiet=True)
    yield server, f"http://127.0.0.1:{port}/api"
    stop_server(server)


def _post(url: str, auth: str | None = None) -> int:
    request = urllib.request.Request(url, data=json.dumps({}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_requests_without_the_credentials_are_refused(guarded_server):
    server, api = guarded_server
    assert _post(f"{api}/flows/filter") == 401
    assert _post(f"{api}/flows/filter", "admin:wrong") == 401
    assert _post(f"{api}/flows/filter", "admin:s3cret") == 200
    # The client with PREFECT_API_AUTH_STRING set, as `build` and `serve` use it.
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api, PREFECT_API_AUTH_STRING: "admin:s3cret"}):
        with get_client(sync_client=True) as client:
            assert client.read_flows() == []
    with temporary_settings({PREFECT_API_URL: api}):
        with get_client(sync_client=True) as client, pytest.raises(PrefectHTTPStatusError):
            client.read_flows()


def test_the_server_listens_on_loopback_only(guarded_server):
    server, api = guarded_server
    listening = [
        c.laddr
        for process in [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
        for c in process.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and {address.ip for address in listening} == {"127.0.0.1"}
