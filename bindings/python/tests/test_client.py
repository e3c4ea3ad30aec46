"""The SDK against a real Tally server: authorization, usage counted by the server, refusals and
offline use with their stable codes."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

import tally_client
from tally_client import ErrorCode

from conftest import Server

#: The public key of RFC 8032's first Ed25519 test vector: a valid key that signed nothing here.
OTHER_VENDOR_KEY = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_authorize_gets_a_fresh_grant_from_the_server(server: Server, device_dir: Path) -> None:
    with server.client(device_dir) as client:
        auth = client.authorize()
    assert isinstance(auth, tally_client.Authorization)
    assert auth.cached is False
    assert auth.warnings == []
    assert auth.grant.device_uuid == client.device_uuid
    assert auth.grant.organization == server.organization
    assert [i.product for i in auth.items] == [server.product]
    assert auth.items[0].license_type == "per-device"
    now = time.time()
    assert auth.grant.issued_at <= now + 60
    assert now < auth.renew_at <= auth.valid_until


def test_recorded_usage_is_counted_by_the_server(device: tally_client.Client, server: Server) -> None:
    before = server.usage("python.scan")
    device.record_usage("python.scan", 4)
    device.record_usage("python.scan")
    assert device.status().open_slice_counts["python.scan"] == 5
    outcome = device.flush()
    assert isinstance(outcome, tally_client.FlushOutcome)
    assert (outcome.acknowledged, outcome.pending, outcome.refused) == (1, 0, 0)
    assert server.usage("python.scan") == before + 5
    # Sent once: nothing is left to send again.
    assert device.flush().sent == 0
    assert device.status().pending_reports == 0


def test_status_and_check_read_the_held_grant(device: tally_client.Client) -> None:
    status = device.status()
    assert status.device_uuid == device.device_uuid
    assert status.grant is not None
    assert status.grant.valid_until > time.time()
    verdict = device.check()
    assert verdict.cached is True
    assert verdict.valid_until == status.grant.valid_until


def test_with_the_server_down_the_held_grant_is_used(device_dir: Path, server: Server) -> None:
    with server.client(device_dir) as online:
        online.authorize()
        held = online.status().grant
    assert held is not None
    down = f"http://127.0.0.1:{free_port()}"
    with server.client(device_dir, servers=[down], timeout=2.0) as offline:
        auth = offline.authorize()
        assert auth.cached is True
        assert auth.warnings == [ErrorCode.CACHED_GRANT_USED]
        assert auth.valid_until == held.valid_until
        # Usage waits on the device for a server.
        offline.record_usage("python.offline", 2)
        with pytest.raises(tally_client.UnreachableError) as raised:
            offline.flush()
        assert raised.value.code == ErrorCode.SERVER_UNREACHABLE
        assert offline.status().pending_reports == 1
    with server.client(device_dir) as online:
        assert online.flush().acknowledged == 1
    assert server.usage("python.offline") == 2


def test_a_server_signed_by_another_vendor_is_not_trusted(server: Server, tmp_path: Path) -> None:
    with server.client(tmp_path, vendor_public_key=OTHER_VENDOR_KEY) as client:
        with pytest.raises(tally_client.TallyError) as raised:
            client.authorize()
    e = raised.value
    assert isinstance(e, tally_client.UnreachableError)
    assert e.code == ErrorCode.SERVER_NOT_TRUSTED
    assert int(e.code) == 1007
    assert e.name == "server_not_trusted"
    assert e.server_code is None
    assert str(e).startswith("1007 server_not_trusted: ")


def test_a_refusal_carries_the_servers_code(server: Server, tmp_path: Path) -> None:
    with server.client(tmp_path, product="not-licensed-here") as client:
        with pytest.raises(tally_client.RefusedError) as raised:
            client.authorize()
    assert raised.value.code == ErrorCode.NO_MATCHING_LICENSE
    assert raised.value.server_code == 120
    assert raised.value.name == "no_matching_license"
    with server.client(tmp_path, organization="no-such-organization") as client:
        with pytest.raises(tally_client.RefusedError) as raised:
            client.authorize()
    assert raised.value.code == ErrorCode.UNKNOWN_ORGANIZATION


def test_a_device_never_authorized_may_not_run(server: Server, tmp_path: Path) -> None:
    with server.client(tmp_path) as client:
        with pytest.raises(tally_client.GrantError) as raised:
            client.check()
    assert raised.value.code == ErrorCode.NO_GRANT


def test_mistakes_are_refused_before_any_server_is_asked(server: Server, tmp_path: Path) -> None:
    with pytest.raises(tally_client.InvalidInputError) as raised:
        server.client(tmp_path, servers=["license.example:48080"])
    assert raised.value.code == ErrorCode.INVALID_INPUT
    assert "servers" in raised.value.message
    assert isinstance(raised.value, ValueError)
    with pytest.raises(tally_client.InvalidInputError):
        server.client(tmp_path, vendor_public_key="not a key")
    with pytest.raises(ValueError, match="device_id"):
        server.client(tmp_path, device_id="mac-address")
    with pytest.raises(ValueError, match="version"):
        server.client(tmp_path, version=-1)
    with pytest.raises(ValueError, match="instances"):
        server.client(tmp_path, instances=2**32)
    with pytest.raises(ValueError, match="timeout"):
        server.client(tmp_path, timeout=0)
    with server.client(tmp_path) as client:
        with pytest.raises(tally_client.InvalidInputError, match="feature"):
            client.record_usage("two words")
        with pytest.raises(ValueError, match="count"):
            client.record_usage("scan", -1)
        with pytest.raises(ValueError, match="count"):
            client.record_usage("scan", 2**64)
        client.record_usage("scan", 2**64 - 1)
        assert client.status().open_slice_counts == {"scan": 2**64 - 1}


def test_device_ids_random_per_folder_or_from_the_hardware(server: Server, tmp_path: Path) -> None:
    a = server.client(tmp_path / "a").device_uuid
    assert server.client(tmp_path / "a").device_uuid == a, "kept in the folder"
    assert server.client(tmp_path / "b").device_uuid != a
    hardware = server.client(tmp_path / "c", device_id="hardware").device_uuid
    assert server.client(tmp_path / "d", device_id="hardware").device_uuid == hardware


def test_the_background_thread_sends_usage_and_stops_with_the_block(
    device_dir: Path, server: Server
) -> None:
    before = server.usage("python.background")
    with server.client(device_dir) as client:
        client.start_background(report_every=3600)
        assert client.background_running
        client.record_usage("python.background", 3)
    assert not client.background_running
    # Its last flush, before the block ended, sent the usage.
    assert server.usage("python.background") == before + 3


def test_other_threads_run_while_a_call_waits_for_the_network(server: Server, tmp_path: Path) -> None:
    # A server that accepts connections and never answers: each call waits for its timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = server.client(tmp_path, servers=[url], timeout=1.0)
        errors: list[BaseException] = []
        finished = threading.Event()

        def authorize() -> None:
            try:
                client.authorize()
            except BaseException as e:
                errors.append(e)
            finished.set()

        waiting = threading.Thread(target=authorize)
        started = time.monotonic()
        waiting.start()
        ticks = 0
        while not finished.is_set():
            ticks += 1
            time.sleep(0.01)
        waiting.join()
    assert time.monotonic() - started >= 0.9
    assert ticks >= 30, f"this thread ran only {ticks} times while the other waited"
    assert len(errors) == 1 and isinstance(errors[0], tally_client.UnreachableError)
