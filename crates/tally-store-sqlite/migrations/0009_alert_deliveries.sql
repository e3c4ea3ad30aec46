-- Tally schema, version 9: alert deliveries kept until they succeed or are given up, and every
-- attempt at them, so that an alert whose email could not be sent is sent later and the history
-- shows each try.

-- One delivery of an alert: its email, or one webhook URL.
CREATE TABLE alert_deliveries (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    channel  TEXT NOT NULL,            -- 'email' or 'webhook'
    target   TEXT NOT NULL,            -- the webhook URL; '' for the email
    payload  TEXT NOT NULL,            -- what is sent, as the server encodes it
    state    TEXT NOT NULL,            -- 'pending', 'sent' or 'failed' (given up)
    attempts INTEGER NOT NULL,
    next_at  INTEGER                   -- when a pending delivery is due
);
CREATE INDEX alert_deliveries_due ON alert_deliveries(next_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_by_alert ON alert_deliveries(alert_id);

CREATE TABLE alert_attempts (
    delivery_id INTEGER NOT NULL REFERENCES alert_deliveries(id),
    number      INTEGER NOT NULL,      -- 1 for the first attempt
    at          INTEGER NOT NULL,
    outcome     TEXT NOT NULL,         -- 'sent' or why it failed
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;

-- Alerts an earlier version left waiting: their delivery was never recorded.
UPDATE alerts SET email = 'unknown (the server stopped before recording the delivery)'
    WHERE email = 'pending';
UPDATE alerts SET webhooks = 'unknown (the server stopped before recording the delivery)'
    WHERE webhooks = 'pending';
