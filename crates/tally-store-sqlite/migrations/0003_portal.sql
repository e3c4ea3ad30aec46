-- Tally schema, version 3: portal sessions and the audit log.

-- Only a hash of the session token is stored, so a leaked database cannot log anyone in.
CREATE TABLE portal_sessions (
    token_hash TEXT PRIMARY KEY,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
