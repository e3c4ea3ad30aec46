-- Tally schema, version 2: every license type, consumption order, trials.

-- 1 when the admin chose the consumption order of the code's items.
ALTER TABLE handshakes ADD COLUMN custom_order INTEGER NOT NULL DEFAULT 0;

-- Seats or instances a registration holds; the domain of per-domain registrations; the UTC day
-- number of a per-active-device admission.
ALTER TABLE devices ADD COLUMN units INTEGER NOT NULL DEFAULT 1;
ALTER TABLE devices ADD COLUMN domain TEXT;
ALTER TABLE devices ADD COLUMN active_day INTEGER;
CREATE INDEX devices_by_item_domain ON devices(item_id, domain);

-- Usage charged to per-usage items.
CREATE TABLE item_usage (
    item_id TEXT PRIMARY KEY REFERENCES items(item_id),
    used    INTEGER NOT NULL
);

-- Concurrent overuse: seats beyond the quantity, per slice.
CREATE TABLE exceptions (
    item_id TEXT NOT NULL REFERENCES items(item_id),
    slice   INTEGER NOT NULL,
    excess  INTEGER NOT NULL,
    PRIMARY KEY (item_id, slice)
) WITHOUT ROWID;

-- Public trials, one per device ever.
CREATE TABLE trials (
    device_uuid TEXT PRIMARY KEY,
    started_at  INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL
);
