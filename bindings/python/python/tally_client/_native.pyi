"""Types of the native module (Rust, PyO3) that ``tally_client`` wraps. Import from
``tally_client``: this module is not a stable API."""

from __future__ import annotations

import os
from typing import Literal, Optional, Sequence, Union

from .types import Authorization, FlushOutcome, Status

DEFAULT_REPORT_INTERVAL: float
RETENTION_SECONDS: int
ROLLBACK_TOLERANCE_SECONDS: int

def check_test_vectors(text: str) -> int: ...
def error_codes() -> list[tuple[int, str, Literal["error", "warning"], str]]: ...

class NativeClient:
    def __init__(
        self,
        *,
        servers: Sequence[str],
        vendor_public_key: str,
        state_dir: Union[str, os.PathLike[str]],
        product: str,
        organization: str,
        handshake_code: str,
        session_password: Optional[str],
        version: Optional[int],
        modules: Sequence[str],
        domain: Optional[str],
        app_id: Optional[str],
        process: Optional[str],
        friendly_name: Optional[str],
        device_id: str,
        buffer_days: Optional[int],
        instances: Optional[int],
        timeout: float,
    ) -> None: ...
    @property
    def device_uuid(self) -> str: ...
    @property
    def background_running(self) -> bool: ...
    def authorize(self) -> Authorization: ...
    def check(self) -> Authorization: ...
    def record_usage(self, feature: str, count: int) -> None: ...
    def flush(self) -> FlushOutcome: ...
    def status(self) -> Status: ...
    def start_background(self, report_every: float) -> None: ...
    def stop_background(self) -> None: ...
