//! The neutral form in which a whole store is copied from one backend to another (`tally migrate`,
//! SQLite → PostgreSQL): table by table, row by row, each value one of three kinds.
//!
//! Both schemas have the same tables with the same column names (see the PostgreSQL store's
//! `0001_init.sql`), so a row read from one is a row for the other; only the column types differ
//! (SQLite's INTEGER is PostgreSQL's BIGINT or, for flags, BOOLEAN) and the importer converts by
//! the target column's type. Data a store derives from other tables (SQLite's `item_places`) is
//! not copied: the target rebuilds or does not need it.

/// One value of a copied row. Tally stores only integers, text and NULL (times are Unix seconds,
/// flags are 0/1, JSON is text), so three kinds carry everything without loss.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

/// A copied table: its name and the columns copied, in the order of each row's values.
#[derive(Debug, PartialEq, Eq)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [&'static str],
}

/// How many rows a table holds, as one side of the copy counted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowCount {
    pub table: &'static str,
    pub rows: u64,
}

/// What the exporter hands the importer, in order: the rows of each table of [`TABLES`] in
/// chunks (a table's chunks one after the other, tables in `TABLES` order), then `Done`.
#[derive(Debug)]
pub enum Transfer {
    /// The next rows of `table`, each with one value per column of the spec.
    Rows(&'static TableSpec, Vec<Vec<Value>>),
    /// The export read every table to its end; the rows per table it sent. An importer commits
    /// only after this: a stream that ends without it stopped half-way (the export failed).
    Done(Vec<RowCount>),
}

/// Every copied table with its columns, in foreign-key order (a table after the tables it
/// references), so that the target can check its keys while it loads.
///
/// Identity columns are copied with their values: `audit_log.id`, `alerts.id` and
/// `alert_deliveries.id` keep their numbers (and their order); the target moves its sequences
/// past them. PostgreSQL's `licenses.imported_seq` (SQLite orders licenses by rowid) is not
/// copied: licenses are read in rowid order, and the target numbers them as they arrive, which
/// keeps "oldest first".
pub const TABLES: &[TableSpec] = &[
    TableSpec {
        name: "settings",
        columns: &["key", "value"],
    },
    TableSpec {
        name: "organizations",
        columns: &["id", "name", "default_code"],
    },
    TableSpec {
        name: "licenses",
        columns: &[
            "license_id",
            "organization",
            "alias",
            "payload",
            "activated_text",
            "imported_at",
        ],
    },
    TableSpec {
        name: "items",
        columns: &[
            "item_id",
            "license_id",
            "organization",
            "license_type",
            "quantity",
            "end_at",
            "spec",
        ],
    },
    TableSpec {
        name: "handshakes",
        columns: &[
            "code",
            "organization",
            "description",
            "enabled",
            "is_default",
            "session_password_hash",
            "validation",
            "created_at",
            "custom_order",
        ],
    },
    TableSpec {
        name: "handshake_items",
        columns: &["code", "item_id", "position"],
    },
    TableSpec {
        name: "devices",
        columns: &[
            "item_id",
            "device_uuid",
            "handshake_code",
            "friendly_name",
            "first_seen",
            "last_seen",
            "active_until",
            "units",
            "domain",
            "active_day",
            "admitted_at",
        ],
    },
    TableSpec {
        name: "reports",
        columns: &[
            "report_id",
            "device_uuid",
            "handshake_code",
            "slice",
            "received_at",
        ],
    },
    TableSpec {
        name: "usage_hourly",
        columns: &["hour", "handshake_code", "feature", "count"],
    },
    TableSpec {
        name: "usage_item_hourly",
        columns: &["hour", "item_id", "feature", "count"],
    },
    TableSpec {
        name: "item_usage",
        columns: &["item_id", "used"],
    },
    TableSpec {
        name: "exceptions",
        columns: &["item_id", "slice", "excess"],
    },
    TableSpec {
        name: "trials",
        columns: &["device_uuid", "started_at", "ends_at"],
    },
    TableSpec {
        name: "portal_sessions",
        columns: &["token_hash", "csrf", "created_at", "expires_at"],
    },
    TableSpec {
        name: "audit_log",
        columns: &["id", "at", "actor", "action", "detail"],
    },
    TableSpec {
        name: "auth_minutes",
        columns: &["minute", "handshake_code", "ok", "failed"],
    },
    TableSpec {
        name: "alert_levels",
        columns: &["key", "level"],
    },
    TableSpec {
        name: "alerts",
        columns: &["id", "at", "subject", "body", "email", "webhooks"],
    },
    TableSpec {
        name: "alert_deliveries",
        columns: &[
            "id", "alert_id", "channel", "target", "payload", "state", "attempts", "next_at",
        ],
    },
    TableSpec {
        name: "alert_attempts",
        columns: &["delivery_id", "number", "at", "outcome"],
    },
];

/// Tables both stores have that are not copied: the short-lived state of running servers
/// (leases of background jobs; request envelopes used and report-session windows, kept against
/// replays). A restarted server starts without it anyway (one SQLite server keeps envelopes and
/// windows in memory, PostgreSQL in unlogged tables; a lease lapses), and a copy is made with the
/// server stopped.
pub const TRANSIENT_TABLES: &[&str] = &["leases", "seen_envelopes", "session_windows"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_their_columns_are_named_once() {
        let mut names: Vec<_> = TABLES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
        assert!(!TRANSIENT_TABLES.iter().any(|t| names.contains(t)));
        for table in TABLES {
            let mut columns = table.columns.to_vec();
            columns.sort_unstable();
            columns.dedup();
            assert_eq!(columns.len(), table.columns.len(), "{}", table.name);
        }
    }
}
