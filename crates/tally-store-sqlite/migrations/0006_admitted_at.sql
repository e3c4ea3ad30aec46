-- Tally schema, version 6: when each registration was last granted by an admission.

-- A report renews every registration a device holds on a code and moves `last_seen` on all of
-- them, so only this column tells which item the device was admitted to last: the one its usage
-- is charged to.
ALTER TABLE devices ADD COLUMN admitted_at INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET admitted_at = last_seen;
