"""The client a product embeds: :class:`Client`."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Literal, Optional, Sequence, Union

from . import _native
from .types import Authorization, FlushOutcome, Status

__all__ = ["Client", "check_test_vectors"]


class Client:
    """A Tally client for one product on one device.

    Creating it checks the settings, creates the state directory and the device id; no server is
    contacted. One client may be shared by threads, and its state directory by processes (it is
    locked for each call), but each device needs a state directory of its own.

    The work is done by the Rust SDK; the calling thread lets other Python threads run while it
    waits on the network or on the state directory's lock.

    Use it in a ``with`` block, or call :meth:`close`, to stop the background thread.

    Args:
        servers: server URLs (``http://host:port``), main first, then standbys; the next is
            tried only when one does not answer.
        vendor_public_key: the vendor's Ed25519 public key (base64): only servers and licenses
            it signed are trusted.
        state_dir: this device's folder: the device id, the grant, the report session and unsent
            usage.
        product: the product name, as the license items name it.
        organization: organization id; with no handshake code its default code is used.
        handshake_code: a handshake code from the customer's administrator.
        session_password: when the handshake code requires one.
        version: major version of the product.
        modules: modules the product needs.
        domain: the domain, when the handshake code checks one.
        app_id: the app id, when the handshake code checks one.
        process: the process name, when the handshake code checks one.
        friendly_name: a name administrators see (at most 255 characters).
        device_id: ``"random"`` (a UUID kept in ``state_dir``: no personal data, a new identity
            when the folder is lost) or ``"hardware"`` (a hash of the machine id and the vendor
            key: survives reinstalls).
        buffer_days: fewer offline days than the license allows (at least 1).
        instances: running instances on this device, for instance-counted licenses.
        timeout: seconds allowed for each HTTP call to a server.

    Raises:
        InvalidInputError: a setting is wrong; the message names it.
        LocalStateError: the state directory cannot be created or read.
        ValueError: a number is out of range (``version``, ``buffer_days``, ``instances``: 0 to
            2**32-1; ``timeout``: more than zero).
    """

    def __init__(
        self,
        *,
        servers: Sequence[str],
        vendor_public_key: str,
        state_dir: Union[str, "os.PathLike[str]"],
        product: str,
        organization: str = "",
        handshake_code: str = "",
        session_password: Optional[str] = None,
        version: Optional[int] = None,
        modules: Sequence[str] = (),
        domain: Optional[str] = None,
        app_id: Optional[str] = None,
        process: Optional[str] = None,
        friendly_name: Optional[str] = None,
        device_id: Literal["random", "hardware"] = "random",
        buffer_days: Optional[int] = None,
        instances: Optional[int] = None,
        timeout: float = 10.0,
    ) -> None:
        self._native = _native.NativeClient(
            servers=servers,
            vendor_public_key=vendor_public_key,
            state_dir=state_dir,
            product=product,
            organization=organization,
            handshake_code=handshake_code,
            session_password=session_password,
            version=version,
            modules=modules,
            domain=domain,
            app_id=app_id,
            process=process,
            friendly_name=friendly_name,
            device_id=device_id,
            buffer_days=buffer_days,
            instances=instances,
            timeout=timeout,
        )
        self._product = product

    @property
    def device_uuid(self) -> str:
        """The UUID servers know this device by."""
        return self._native.device_uuid

    def authorize(self) -> Authorization:
        """Asks the servers in order for a grant, verifies it from the vendor key down and keeps it.

        When no server answers (network down, or no server could prove the vendor's
        activation), the grant held on the device is used while it is valid: the result then
        has ``cached=True`` and the warning ``ErrorCode.CACHED_GRANT_USED``. A server's refusal
        is raised, never replaced by the held grant; when it denies this device the license
        (quota, dates, code), the held grant is forgotten.

        Raises:
            RefusedError: a server refused, with its stable code.
            UnreachableError: no server answered and no grant is held.
            GrantError: no server answered and the held grant may not be used
                (``GRANT_EXPIRED``, ``SEAT_LAPSED``, ``CLOCK_ROLLBACK``, ``GRANT_INVALID``).
        """
        return self._native.authorize()

    def check(self) -> Authorization:
        """Whether the product may run now, from the grant held on the device alone: verified,
        within its offline validity, the clock not turned back. Never contacts a server (the
        background thread keeps the grant renewed); the result has ``cached=True``.

        Raises:
            GrantError: no usable grant (``NO_GRANT``, ``GRANT_EXPIRED``, ``SEAT_LAPSED``,
                ``CLOCK_ROLLBACK``, ``GRANT_INVALID``).
            RefusedError: a server refused this device the license since its last grant.
        """
        return self._native.check()

    def record_usage(self, feature: str, count: int = 1) -> None:
        """Adds ``count`` uses of ``feature`` (e.g. ``"scan"``, ``"scan.symbology.qr"``) to the
        current 3-minute UTC slice; the counter is on disk when this returns. :meth:`flush` or
        the background thread sends it.

        Raises:
            InvalidInputError: the feature name is not 1 to 128 printable ASCII characters
                without spaces.
            ValueError: ``count`` is negative or above 2**64-1.
            GrantError: the device clock went backwards (``CLOCK_ROLLBACK``).
        """
        self._native.record_usage(feature, count)

    def flush(self) -> FlushOutcome:
        """Closes the current slice into a report and sends the waiting reports, authorizing
        first when no report session is open. Reports leave the device only once a server
        acknowledged them; the others are kept (30 days) for the next call. With nothing to
        send, no server is contacted.

        Raises:
            UnreachableError: no server answered; the reports are kept.
            RefusedError: a server refused; the reports are kept.
        """
        return self._native.flush()

    def status(self) -> Status:
        """The device id, the held grant and the usage not yet sent, from local state only."""
        return self._native.status()

    def start_background(self, report_every: float = _native.DEFAULT_REPORT_INTERVAL) -> None:
        """Starts a thread that renews the grant before it lapses and sends usage reports at once
        and then every ``report_every`` seconds, until :meth:`stop_background`, :meth:`close` or
        the end of the ``with`` block. Does nothing when it already runs."""
        self._native.start_background(report_every)

    def stop_background(self) -> None:
        """Stops the background thread after a last flush, which waits at most ``timeout`` per
        server when none answers. Does nothing when it does not run."""
        self._native.stop_background()

    @property
    def background_running(self) -> bool:
        """Whether the background thread runs."""
        return self._native.background_running

    def close(self) -> None:
        """Stops the background thread. The client can still be used afterwards."""
        self._native.stop_background()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"tally_client.Client(product={self._product!r}, device_uuid={self.device_uuid!r})"


def check_test_vectors(text: str) -> int:
    """Checks the cross-language protocol test vectors (the text of
    ``docs/sdk/test-vectors.json``) with this SDK; returns how many cases were checked.

    Raises:
        TallyError: a case does not hold; the message names it.
    """
    return _native.check_test_vectors(text)
