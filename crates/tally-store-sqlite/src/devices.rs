//! Device registrations and the quota decision that creates them.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tally_core::admission::{Decision, ItemState, decide};
use tally_store::{Admission, AdmitRequest, DeviceRow, StoreResult};

use crate::backend;

/// Reads every candidate's live state, lets the core rules decide, and writes the registration,
/// all in one `BEGIN IMMEDIATE` transaction on the writer: nobody else can take a place between
/// the count and the write.
pub fn admit(c: &mut Connection, req: &AdmitRequest) -> StoreResult<Admission> {
    let tx = c
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin admission"))?;
    let mut states = Vec::with_capacity(req.candidates.len());
    for item in &req.candidates {
        let others: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM devices WHERE item_id = ?1 AND active_until > ?2 AND device_uuid <> ?3",
                params![item.id, req.now, req.device_uuid],
                |r| r.get(0),
            )
            .map_err(backend("count devices"))?;
        let own: Option<i64> = tx
            .query_row(
                "SELECT active_until FROM devices WHERE item_id = ?1 AND device_uuid = ?2",
                params![item.id, req.device_uuid],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend("read device"))?;
        states.push(ItemState {
            other_active_devices: u64::try_from(others).unwrap_or(0),
            device_active: own.is_some_and(|until| until > req.now),
        });
    }
    let decision = decide(&req.candidates, &states, req.now);
    if let Decision::Admit {
        index,
        active_until,
    } = decision
        && let Some(item) = req.candidates.get(index)
    {
        tx.execute(
            "INSERT INTO devices (item_id, device_uuid, handshake_code, friendly_name, first_seen, last_seen, active_until)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT (item_id, device_uuid) DO UPDATE SET
                handshake_code = excluded.handshake_code,
                friendly_name = COALESCE(excluded.friendly_name, devices.friendly_name),
                last_seen = excluded.last_seen,
                active_until = excluded.active_until",
            params![item.id, req.device_uuid, req.handshake_code, req.friendly_name, req.now, active_until],
        )
        .map_err(backend("register device"))?;
    }
    tx.commit().map_err(backend("commit admission"))?;
    Ok(Admission { decision })
}

pub fn list(c: &Connection) -> StoreResult<Vec<DeviceRow>> {
    let mut stmt = c
        .prepare(
            "SELECT device_uuid, item_id, handshake_code, friendly_name, first_seen, last_seen, active_until
             FROM devices ORDER BY last_seen DESC, device_uuid",
        )
        .map_err(backend("list devices"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(DeviceRow {
                device_uuid: r.get(0)?,
                item_id: r.get(1)?,
                handshake_code: r.get(2)?,
                friendly_name: r.get(3)?,
                first_seen: r.get(4)?,
                last_seen: r.get(5)?,
                active_until: r.get(6)?,
            })
        })
        .map_err(backend("list devices"))?;
    rows.collect::<Result<Vec<_>, _>>()
        .map_err(backend("read device"))
}
