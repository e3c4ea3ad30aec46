"""Fixtures of the Python SDK's tests: a real Tally server (the demo started by the `tally`
crate's `sdk_python` test, which passes its settings in `TALLY_TEST_*` variables) and its admin
API, read with the standard library only."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

import tally_client

#: The repository's folder (tests → python → bindings → repository).
REPOSITORY = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Server:
    """The demo server and what a client needs to use it."""

    url: str
    vendor_public_key: str
    organization: str
    product: str
    admin_token: str
    #: The demo's client configuration (`client.toml`), which the example reads.
    client_config: Path

    def client(self, state_dir: Path, **overrides: Any) -> tally_client.Client:
        """A client of the demo license on the device whose folder is `state_dir`."""
        settings: dict[str, Any] = {
            "servers": [self.url],
            "vendor_public_key": self.vendor_public_key,
            "state_dir": state_dir,
            "product": self.product,
            "organization": self.organization,
            "timeout": 5.0,
        }
        settings.update(overrides)
        return tally_client.Client(**settings)

    def usage(self, feature: str) -> int:
        """How many uses of `feature` the server counted, from its admin API."""
        request = urllib.request.Request(
            f"{self.url}/api/admin/stats/usage",
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            rows: list[dict[str, Any]] = json.load(response)
        return sum(int(r["count"]) for r in rows if r["feature"] == feature)


@pytest.fixture(scope="session")
def server() -> Server:
    names = {
        "url": "TALLY_TEST_SERVER",
        "vendor_public_key": "TALLY_TEST_VENDOR_PUBLIC_KEY",
        "organization": "TALLY_TEST_ORGANIZATION",
        "product": "TALLY_TEST_PRODUCT",
        "admin_token": "TALLY_TEST_ADMIN_TOKEN",
        "client_config": "TALLY_TEST_CLIENT_CONFIG",
    }
    missing = [v for v in names.values() if not os.environ.get(v)]
    if missing:
        pytest.skip(
            f"needs a Tally server: {', '.join(missing)} not set "
            "(`cargo test -p tally-cli --test it sdk_python` starts one and sets them)"
        )
    values = {field: os.environ[variable] for field, variable in names.items()}
    return Server(
        url=values["url"],
        vendor_public_key=values["vendor_public_key"],
        organization=values["organization"],
        product=values["product"],
        admin_token=values["admin_token"],
        client_config=Path(values["client_config"]),
    )


@pytest.fixture(scope="session")
def device_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The state folder of the one device most tests share (the demo license has 5 places)."""
    return tmp_path_factory.mktemp("device")


@pytest.fixture
def device(server: Server, device_dir: Path) -> Iterator[tally_client.Client]:
    """A client on the shared device, authorized."""
    with server.client(device_dir) as client:
        client.authorize()
        yield client
