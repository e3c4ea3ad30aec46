//! SDK results as the dataclasses of `tally_client.types` (frozen, typed, documented there).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList};
use tally_sdk::{Authorization, FlushOutcome, Grant, GrantSummary, GrantedItem, Status};

static TYPES: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
static ERROR_CODE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Calls `tally_client.types.<class>(**fields)`.
fn make<'py>(
    py: Python<'py>,
    class: &str,
    fields: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    let types = TYPES.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("tally_client.types")?.unbind())
    })?;
    types.bind(py).getattr(class)?.call((), Some(fields))
}

pub fn authorization<'py>(py: Python<'py>, a: Authorization) -> PyResult<Bound<'py, PyAny>> {
    let error_code = ERROR_CODE.import(py, "tally_client.errors", "ErrorCode")?;
    let warnings = a
        .warnings
        .iter()
        .map(|w| error_code.call1((w.code(),)))
        .collect::<PyResult<Vec<_>>>()?;
    let f = PyDict::new(py);
    f.set_item("grant", grant(py, a.grant)?)?;
    f.set_item("cached", a.cached)?;
    f.set_item("warnings", PyList::new(py, warnings)?)?;
    f.set_item("grace_until", a.grace_until)?;
    make(py, "Authorization", &f)
}

fn grant<'py>(py: Python<'py>, g: Grant) -> PyResult<Bound<'py, PyAny>> {
    let items = g
        .items
        .into_iter()
        .map(|i| granted_item(py, i))
        .collect::<PyResult<Vec<_>>>()?;
    let f = PyDict::new(py);
    f.set_item("grant_id", g.grant_id)?;
    f.set_item("server_uuid", g.server_uuid)?;
    f.set_item("device_uuid", g.device_uuid)?;
    f.set_item("organization", g.organization)?;
    f.set_item("handshake_code", g.handshake_code)?;
    f.set_item("items", PyList::new(py, items)?)?;
    f.set_item("issued_at", g.issued_at)?;
    f.set_item("valid_until", g.valid_until)?;
    f.set_item("renew_at", g.renew_at)?;
    f.set_item("seat_until", g.seat_until)?;
    make(py, "Grant", &f)
}

fn granted_item<'py>(py: Python<'py>, i: GrantedItem) -> PyResult<Bound<'py, PyAny>> {
    let f = PyDict::new(py);
    f.set_item("license_id", i.license_id)?;
    f.set_item("item_id", i.item_id)?;
    f.set_item("product", i.product)?;
    f.set_item("modules", PyList::new(py, i.modules)?)?;
    f.set_item("license_type", i.license_type.as_str())?;
    f.set_item("end", i.end)?;
    f.set_item("grace_end", i.grace_end)?;
    make(py, "GrantedItem", &f)
}

pub fn status<'py>(py: Python<'py>, s: Status) -> PyResult<Bound<'py, PyAny>> {
    let f = PyDict::new(py);
    f.set_item("device_uuid", s.device_uuid)?;
    f.set_item("grant", s.grant.map(|g| grant_summary(py, g)).transpose()?)?;
    f.set_item("pending_reports", s.pending_reports)?;
    f.set_item("open_slice", s.open_slice)?;
    f.set_item("open_slice_counts", s.open_slice_counts)?;
    make(py, "Status", &f)
}

fn grant_summary<'py>(py: Python<'py>, g: GrantSummary) -> PyResult<Bound<'py, PyAny>> {
    let f = PyDict::new(py);
    f.set_item("server_uuid", g.server_uuid)?;
    f.set_item("handshake_code", g.handshake_code)?;
    f.set_item("items", PyList::new(py, g.items)?)?;
    f.set_item("issued_at", g.issued_at)?;
    f.set_item("valid_until", g.valid_until)?;
    f.set_item("renew_at", g.renew_at)?;
    f.set_item("seat_until", g.seat_until)?;
    f.set_item("grace_end", g.grace_end)?;
    make(py, "GrantSummary", &f)
}

pub fn flush_outcome<'py>(py: Python<'py>, o: FlushOutcome) -> PyResult<Bound<'py, PyAny>> {
    let f = PyDict::new(py);
    f.set_item("sent", o.sent)?;
    f.set_item("acknowledged", o.acknowledged)?;
    f.set_item("duplicates", o.duplicates)?;
    f.set_item("pending", o.pending)?;
    f.set_item("expired", o.expired)?;
    f.set_item("refused", o.refused)?;
    f.set_item("usage_exhausted", o.usage_exhausted)?;
    make(py, "FlushOutcome", &f)
}
