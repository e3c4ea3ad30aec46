-- Tally schema, version 1.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    default_code TEXT NOT NULL
);

-- `payload` is the verified license as JSON; `activated_text` the armored file, kept verbatim
-- because clients receive it as proof of the server's keys.
CREATE TABLE licenses (
    license_id     TEXT PRIMARY KEY,
    organization   TEXT NOT NULL REFERENCES organizations(id),
    alias          TEXT NOT NULL,
    payload        TEXT NOT NULL,
    activated_text TEXT NOT NULL,
    imported_at    INTEGER NOT NULL
);

-- `spec` is the item as JSON (the exact LicenseItem); the other columns serve queries.
CREATE TABLE items (
    item_id      TEXT PRIMARY KEY,
    license_id   TEXT NOT NULL REFERENCES licenses(license_id),
    organization TEXT NOT NULL REFERENCES organizations(id),
    license_type TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    end_at       INTEGER NOT NULL,
    spec         TEXT NOT NULL
);

CREATE TABLE handshakes (
    code                  TEXT PRIMARY KEY,
    organization          TEXT NOT NULL REFERENCES organizations(id),
    description           TEXT,
    enabled               INTEGER NOT NULL DEFAULT 1,
    is_default            INTEGER NOT NULL DEFAULT 0,
    session_password_hash TEXT,
    validation            TEXT,
    created_at            INTEGER NOT NULL
);

-- Items of a handshake code in consumption order.
CREATE TABLE handshake_items (
    code     TEXT NOT NULL REFERENCES handshakes(code),
    item_id  TEXT NOT NULL REFERENCES items(item_id),
    position INTEGER NOT NULL,
    PRIMARY KEY (code, item_id)
);

-- A device's registration on an item; it holds a place while active_until > now.
CREATE TABLE devices (
    item_id        TEXT NOT NULL REFERENCES items(item_id),
    device_uuid    TEXT NOT NULL,
    handshake_code TEXT NOT NULL,
    friendly_name  TEXT,
    first_seen     INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    active_until   INTEGER NOT NULL,
    PRIMARY KEY (item_id, device_uuid)
);
CREATE INDEX devices_by_item_activity ON devices(item_id, active_until);
CREATE INDEX devices_by_uuid ON devices(device_uuid);

-- Every usage report id ever counted: the key of exactly-once counting.
CREATE TABLE reports (
    report_id      TEXT PRIMARY KEY,
    device_uuid    TEXT NOT NULL,
    handshake_code TEXT NOT NULL,
    slice          INTEGER NOT NULL,
    received_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Usage counters per hour (20 slices), handshake code and feature.
CREATE TABLE usage_hourly (
    hour           INTEGER NOT NULL,
    handshake_code TEXT NOT NULL,
    feature        TEXT NOT NULL,
    count          INTEGER NOT NULL,
    PRIMARY KEY (hour, handshake_code, feature)
) WITHOUT ROWID;
