//! The native part of the `tally_client` Python package: the Rust SDK (`tally-sdk`) behind a
//! Python class. Results are the package's own dataclasses (`tally_client/types.py`) and errors
//! its own exceptions (`tally_client/errors.py`), built here by calling into those modules, so
//! that everything a Python user sees is plain, typed, documented Python.

mod client;
mod config;
mod convert;
mod errors;

use pyo3::prelude::*;

#[pymodule]
mod _native {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::client::NativeClient;

    /// Seconds between usage reports of the background thread unless told otherwise.
    #[pymodule_export]
    const DEFAULT_REPORT_INTERVAL: f64 = tally_sdk::DEFAULT_REPORT_INTERVAL.as_secs_f64();

    /// Seconds an unsent usage report is kept before it is dropped (30 days).
    #[pymodule_export]
    const RETENTION_SECONDS: i64 = tally_sdk::RETENTION_SECONDS;

    /// Seconds the device clock may go back before a held grant is refused.
    #[pymodule_export]
    const ROLLBACK_TOLERANCE_SECONDS: i64 = tally_sdk::ROLLBACK_TOLERANCE_SECONDS;

    /// Checks the cross-language protocol test vectors (the text of
    /// `docs/sdk/test-vectors.json`) with the Rust SDK; returns how many cases were checked.
    /// Raises `TallyError` naming the first case that fails.
    #[pyfunction]
    fn check_test_vectors(py: Python<'_>, text: &str) -> PyResult<usize> {
        let text = text.to_owned();
        py.detach(move || tally_sdk::conformance::check_test_vectors(&text))
            .map_err(|e| crate::errors::to_py(py, e))
    }

    /// The table of stable error codes, in order: `(code, name, severity, message)` with
    /// severity `"error"` or `"warning"`. The Python `ErrorCode` enum is checked against it.
    #[pyfunction]
    fn error_codes() -> Vec<(u16, &'static str, &'static str, &'static str)> {
        crate::errors::table()
    }
}
