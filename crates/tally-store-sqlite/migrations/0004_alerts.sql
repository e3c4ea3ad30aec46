-- Tally schema, version 4: authorization outcomes, alert levels and the alert history.

-- Authorizations per minute and handshake code, for the failed-authorization ratio.
CREATE TABLE auth_minutes (
    minute         INTEGER NOT NULL,
    handshake_code TEXT NOT NULL,
    ok             INTEGER NOT NULL,
    failed         INTEGER NOT NULL,
    PRIMARY KEY (minute, handshake_code)
) WITHOUT ROWID;

-- The level last notified per watched quantity (e.g. `item:L-1-1:usage`), so that a restart
-- does not send an alert again.
CREATE TABLE alert_levels (
    key   TEXT PRIMARY KEY,
    level INTEGER NOT NULL
);

CREATE TABLE alerts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    subject  TEXT NOT NULL,
    body     TEXT NOT NULL,
    email    TEXT NOT NULL,
    webhooks TEXT NOT NULL
);
