-- Usage counters striped by writer: report batches running side by side add to rows of their own
-- instead of queueing on the one row of an hour, code and feature until each commit is flushed.
-- Readers sum the stripes.
ALTER TABLE usage_hourly ADD COLUMN stripe SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly DROP CONSTRAINT usage_hourly_pkey,
    ADD PRIMARY KEY (hour, handshake_code, feature, stripe);

ALTER TABLE usage_item_hourly ADD COLUMN stripe SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE usage_item_hourly DROP CONSTRAINT usage_item_hourly_pkey,
    ADD PRIMARY KEY (hour, item_id, feature, stripe);
