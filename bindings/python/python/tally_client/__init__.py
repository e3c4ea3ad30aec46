"""The Python client SDK of Tally, the self-hostable license tracking server.

A product asks a Tally server for authorization against the quotas its customer bought, keeps
working offline for a bounded time on a signed grant, and reports usage counts that the server
counts exactly once::

    import tally_client

    with tally_client.Client(
        servers=["http://license.example:48080"],
        vendor_public_key="<the vendor's public key>",
        state_dir="/var/lib/myapp/license",
        product="scanner",
        organization="1001",
    ) as client:
        client.authorize()          # raises a TallyError with a stable code when refused
        client.start_background()   # renews the grant and sends usage now and then
        client.record_usage("scan")
        client.check()              # may the product run now? (local, no network)

The work is done by the Rust SDK, with the calling Python thread released while it waits on the
network or the state directory's lock. See ``docs/sdk/python.md``.
"""

from ._native import DEFAULT_REPORT_INTERVAL, RETENTION_SECONDS, ROLLBACK_TOLERANCE_SECONDS
from .client import Client, check_test_vectors
from .errors import (
    ErrorCode,
    GrantError,
    InvalidInputError,
    LocalStateError,
    RefusedError,
    TallyError,
    UnreachableError,
)
from .types import Authorization, FlushOutcome, Grant, GrantedItem, GrantSummary, Status

__all__ = [
    "Client",
    "Authorization",
    "Grant",
    "GrantedItem",
    "GrantSummary",
    "Status",
    "FlushOutcome",
    "ErrorCode",
    "TallyError",
    "RefusedError",
    "UnreachableError",
    "GrantError",
    "InvalidInputError",
    "LocalStateError",
    "check_test_vectors",
    "DEFAULT_REPORT_INTERVAL",
    "RETENTION_SECONDS",
    "ROLLBACK_TOLERANCE_SECONDS",
]
