-- Places held per item, kept exact in every write that registers, renews or removes a device, so
-- that admitting a new device does not count every registration of the item.
-- `held` and `held_units` cover the registrations with active_until > swept_until; on admission
-- the registrations that lapsed since swept_until are subtracted (a short index range) and
-- swept_until moves to the present. A missing row is rebuilt by counting.
CREATE TABLE item_places (
    item_id     TEXT PRIMARY KEY REFERENCES items(item_id),
    held        INTEGER NOT NULL,
    held_units  INTEGER NOT NULL,
    swept_until INTEGER NOT NULL
) WITHOUT ROWID;

-- Devices of an item seen on a given UTC day (per-active-device items).
CREATE INDEX devices_by_item_day ON devices(item_id, active_day);
