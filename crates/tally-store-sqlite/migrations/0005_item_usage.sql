-- Tally schema, version 5: usage per license item, for statistics per item.

-- Counts are charged to the item the reporting device held on the code when it reported.
CREATE TABLE usage_item_hourly (
    hour    INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    feature TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (hour, item_id, feature)
) WITHOUT ROWID;
