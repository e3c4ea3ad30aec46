"""Errors of the Tally SDK: every failure is a :class:`TallyError` carrying one of the stable codes
of ``docs/error-codes.md`` (the same numbers in every language and on the wire), raised as the
subclass of its kind so that a product can react by kind or by number.
"""

from __future__ import annotations

import enum
from typing import Optional

__all__ = [
    "ErrorCode",
    "TallyError",
    "RefusedError",
    "UnreachableError",
    "GrantError",
    "InvalidInputError",
    "LocalStateError",
]


class ErrorCode(enum.IntEnum):
    """The stable error codes. A code never changes meaning once released; its lower-case member
    name is its stable name (``ErrorCode.SEATS_EXHAUSTED.stable_name == "seats_exhausted"``).

    1xx are a server's refusals of this device, 2xx protocol errors, 3xx administration and
    input errors, 500 a server fault, and 1000 and up are produced by the SDK itself.
    ``CACHED_GRANT_USED`` and ``LICENSE_IN_GRACE`` are warnings: they appear in
    :attr:`Authorization.warnings <tally_client.Authorization.warnings>`, never as exceptions.
    """

    SERVER_NOT_READY = 100
    IDENTITY_MISMATCH = 101
    UNKNOWN_HANDSHAKE_CODE = 110
    UNKNOWN_ORGANIZATION = 111
    HANDSHAKE_ORGANIZATION_MISMATCH = 112
    HANDSHAKE_DISABLED = 113
    WRONG_SESSION_PASSWORD = 114
    TRIAL_UNAVAILABLE = 115
    VALIDATION_FIELD_MISMATCH = 116
    TOO_MANY_ATTEMPTS = 117
    ORIGIN_NOT_ALLOWED = 118
    NO_MATCHING_LICENSE = 120
    LICENSE_EXPIRED = 121
    LICENSE_NOT_YET_VALID = 122
    DEVICE_QUOTA_EXCEEDED = 130
    USAGE_QUOTA_EXCEEDED = 131
    SEATS_EXHAUSTED = 132
    DOMAIN_QUOTA_EXCEEDED = 133
    NO_LIVE_PLACE = 134
    BAD_REQUEST = 200
    BAD_ENVELOPE = 201
    REPLAYED_REQUEST = 202
    STALE_REQUEST = 203
    PAYLOAD_TOO_LARGE = 204
    SESSION_EXPIRED = 205
    PROTOCOL_OUTDATED = 206
    UNAUTHORIZED = 300
    INVALID_LICENSE_FILE = 301
    LICENSE_FOR_ANOTHER_SERVER = 302
    LICENSE_NOT_ACTIVATED = 303
    NOT_FOUND = 304
    CONFLICT = 305
    INVALID_INPUT = 306
    EMAIL_FAILED = 307
    INTERNAL = 500
    SERVER_UNREACHABLE = 1000
    CACHED_GRANT_USED = 1001
    GRANT_INVALID = 1002
    GRANT_EXPIRED = 1003
    LOCAL_STORAGE_FAILED = 1004
    CLOCK_ROLLBACK = 1005
    NO_GRANT = 1006
    SERVER_NOT_TRUSTED = 1007
    SEAT_LAPSED = 1008
    LICENSE_IN_GRACE = 1009

    @property
    def stable_name(self) -> str:
        """The code's stable name, as in ``docs/error-codes.md`` (``"seats_exhausted"``)."""
        return self.name.lower()


class TallyError(Exception):
    """A failure of the Tally SDK.

    Attributes:
        code: the stable code (an :class:`ErrorCode`, which is an ``int``).
        name: the code's stable name, e.g. ``"server_unreachable"``.
        message: what happened, for people.
        server_code: the number the server answered with, for a server's refusals; it differs
            from ``code`` only when the server speaks a code this SDK does not know yet (``code``
            is then the nearest known one of the same family). ``None`` when no server refused.
    """

    code: ErrorCode
    name: str
    message: str
    server_code: Optional[int]

    def __init__(self, code: int, name: str, message: str, server_code: Optional[int] = None):
        super().__init__(code, name, message, server_code)
        self.code = ErrorCode(code)
        self.name = name
        self.message = message
        self.server_code = server_code

    def __str__(self) -> str:
        return f"{int(self.code)} {self.name}: {self.message}"


class RefusedError(TallyError):
    """A server refused (``server_code`` is set), or the device's grant was forgotten after such a
    refusal of the license (quota used up, code disabled, license ended, wrong session password,
    ...; a 1xx code). Retrying the same request does not help until the administrator changes
    something."""


class UnreachableError(TallyError):
    """No server gave an answer the SDK could use and no valid grant is held:
    ``SERVER_UNREACHABLE`` (none answered) or ``SERVER_NOT_TRUSTED`` (a server answered but
    could not prove a license activation signed by the vendor key). Usage reports are kept for
    the next attempt."""


class GrantError(TallyError):
    """The grant held on the device may not be used: never authorized (``NO_GRANT``), its offline
    time or concurrent seat ended (``GRANT_EXPIRED``, ``SEAT_LAPSED``), it does not verify
    (``GRANT_INVALID``) or the device clock went backwards (``CLOCK_ROLLBACK``)."""


class InvalidInputError(TallyError, ValueError):
    """An argument or setting the SDK refused before contacting a server (``INVALID_INPUT``): the
    message names the field."""


class LocalStateError(TallyError):
    """The SDK could not read or write its state directory (``LOCAL_STORAGE_FAILED``)."""


_UNREACHABLE = {ErrorCode.SERVER_UNREACHABLE, ErrorCode.SERVER_NOT_TRUSTED}
_GRANT = {
    ErrorCode.GRANT_INVALID,
    ErrorCode.GRANT_EXPIRED,
    ErrorCode.CLOCK_ROLLBACK,
    ErrorCode.NO_GRANT,
    ErrorCode.SEAT_LAPSED,
}


def _class_for(code: ErrorCode, server_code: Optional[int]) -> type[TallyError]:
    if server_code is not None or 100 <= code < 200:
        return RefusedError
    if code in _UNREACHABLE:
        return UnreachableError
    if code in _GRANT:
        return GrantError
    if code == ErrorCode.INVALID_INPUT:
        return InvalidInputError
    if code == ErrorCode.LOCAL_STORAGE_FAILED:
        return LocalStateError
    return TallyError


def _from_native(code: int, name: str, message: str, server_code: Optional[int]) -> TallyError:
    """The exception for an SDK error (called by the native module)."""
    known = ErrorCode(code)
    return _class_for(known, server_code)(code, name, message, server_code)
