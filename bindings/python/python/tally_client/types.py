"""What the SDK returns: plain frozen dataclasses. Times are Unix seconds (UTC), as on the wire
and in the Rust SDK."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .errors import ErrorCode

__all__ = ["GrantedItem", "Grant", "Authorization", "GrantSummary", "Status", "FlushOutcome"]


@dataclass(frozen=True)
class GrantedItem:
    """One license item the grant gives access to."""

    license_id: str
    item_id: str
    product: str
    modules: List[str]
    #: ``"per-device"``, ``"per-active-device"``, ``"concurrent-device"``,
    #: ``"concurrent-instance"``, ``"per-instance"``, ``"per-usage"`` or ``"per-domain"``.
    license_type: str
    #: The item's end; between it and ``grace_end`` it still authorizes, in grace.
    end: int
    grace_end: int


@dataclass(frozen=True)
class Grant:
    """What the server signed when it authorized this device (verified by the SDK from the vendor
    key down)."""

    grant_id: str
    server_uuid: str
    device_uuid: str
    organization: str
    handshake_code: str
    items: List[GrantedItem]
    issued_at: int
    #: The device may use the grant until then, with or without a server.
    valid_until: int
    #: From then on the background thread renews it.
    renew_at: int
    #: For concurrent-seat licenses: the seat is held until then unless renewed.
    seat_until: Optional[int] = None


@dataclass(frozen=True)
class Authorization:
    """The result of :meth:`Client.authorize` and :meth:`Client.check`: the product may run."""

    grant: Grant
    #: True when no server answered and the grant held on the device was used.
    cached: bool
    #: Successes worth showing: ``ErrorCode.CACHED_GRANT_USED`` when no server answered,
    #: ``ErrorCode.LICENSE_IN_GRACE`` when the license has ended and works during its grace.
    warnings: List[ErrorCode] = field(default_factory=list)
    #: When the license's grace ends, while it is in grace.
    grace_until: Optional[int] = None

    @property
    def valid_until(self) -> int:
        """Until when the product may run on this grant without a server."""
        return self.grant.valid_until

    @property
    def renew_at(self) -> int:
        """When the grant should be renewed (the background thread does it)."""
        return self.grant.renew_at

    @property
    def items(self) -> List[GrantedItem]:
        """The granted license items."""
        return self.grant.items


@dataclass(frozen=True)
class GrantSummary:
    """The grant held on the device, as :meth:`Client.status` shows it (it may have expired)."""

    server_uuid: str
    handshake_code: str
    #: Ids of the granted license items.
    items: List[str]
    issued_at: int
    valid_until: int
    renew_at: int
    seat_until: Optional[int]
    #: The end of the licenses' grace after their end.
    grace_end: int


@dataclass(frozen=True)
class Status:
    """Local state only: the device id, the held grant and the usage not yet sent."""

    device_uuid: str
    #: The held grant, when there is one and it verifies.
    grant: Optional[GrantSummary]
    #: Reports waiting for a server, counting the current slice's counters as one.
    pending_reports: int
    #: Index of the 3-minute UTC slice whose counters are not closed yet.
    open_slice: Optional[int]
    #: Those counters, per feature.
    open_slice_counts: Dict[str, int]


@dataclass(frozen=True)
class FlushOutcome:
    """The result of :meth:`Client.flush`."""

    #: Reports sent and answered in this call.
    sent: int
    #: Reports the server holds now (counted now or before); removed locally.
    acknowledged: int
    #: Of those, reports the server had counted before (a retry after a lost answer).
    duplicates: int
    #: Reports still waiting for a server.
    pending: int
    #: Reports dropped unsent because their slice ended more than 30 days ago.
    expired: int
    #: Reports the server refused for good (malformed); dropped.
    refused: int
    #: The per-usage item of this device's grant is used up: the grant was forgotten.
    usage_exhausted: bool
