-- Tally schema, version 8: the state several instances would share (leases of background jobs,
-- request envelopes used, report-session windows). One SQLite server keeps the last two in
-- memory; the tables hold what the store is asked to keep.

CREATE TABLE leases (
    job    TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until  INTEGER NOT NULL
);

CREATE TABLE seen_envelopes (
    id           BLOB PRIMARY KEY,
    forget_after INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_envelopes_by_expiry ON seen_envelopes(forget_after);

CREATE TABLE session_windows (
    session    BLOB PRIMARY KEY,
    highest    INTEGER NOT NULL,
    seen       INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX session_windows_by_expiry ON session_windows(expires_at);
