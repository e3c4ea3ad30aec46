"""Authorize, count usage and send it with the Tally Python SDK.

Run it against the demo server (`tally serve --demo`), from the folder the server runs in:

    python minimal.py tally-data/demo/client.toml

The demo's client configuration gives the server, the vendor key, the organization and the
product; a product of your own has them in its code or its settings.
"""

import sys
import tomllib  # Python 3.11+, only to read the demo's settings
from datetime import datetime, timezone

import tally_client


def main(config_path: str) -> int:
    with open(config_path, "rb") as f:
        settings = tomllib.load(f)

    with tally_client.Client(
        servers=settings["servers"],
        vendor_public_key=settings["vendor_public_key"],
        state_dir="example-device",  # this device's folder: keep it between runs
        product=settings["product"],
        organization=settings["organization"],
    ) as client:
        try:
            auth = client.authorize()
        except tally_client.TallyError as e:
            print(f"not licensed: {e}", file=sys.stderr)  # e.g. "130 device_quota_exceeded: …"
            return 1
        if auth.cached:
            print("no server answered: running on the grant held on this device")
        until = datetime.fromtimestamp(auth.valid_until, timezone.utc)
        print(f"licensed until {until:%Y-%m-%d %H:%M} UTC (device {client.device_uuid})")

        client.start_background()  # renews the grant, sends usage every 3 minutes
        client.record_usage("scan", 3)  # on disk when this returns
        client.check()  # may the product run now? no network; raises when not
    # Leaving the block stopped the background thread after a last flush.
    print(f"usage reports waiting for a server: {client.status().pending_reports}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
