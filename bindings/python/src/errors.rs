//! SDK errors as the package's Python exceptions: the stable code, its name, the message and
//! the server's own number travel as they are; `tally_client.errors` picks the class.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use tally_proto::error::Severity;
use tally_sdk::{ErrorCode, SdkError};

static FROM_NATIVE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The Python exception for `e`: an instance of `tally_client.TallyError` or one of its
/// subclasses. Should the package's Python part be missing, that import error is raised instead.
pub fn to_py(py: Python<'_>, e: SdkError) -> PyErr {
    let make = || -> PyResult<PyErr> {
        let from_native = FROM_NATIVE.import(py, "tally_client.errors", "_from_native")?;
        let exception = from_native.call1((
            e.code.code(),
            e.code.name(),
            e.message.as_str(),
            e.server_code,
        ))?;
        Ok(PyErr::from_value(exception))
    };
    make().unwrap_or_else(|failure| failure)
}

/// Every stable code as `(code, name, severity, message)`.
pub fn table() -> Vec<(u16, &'static str, &'static str, &'static str)> {
    ErrorCode::ALL
        .iter()
        .map(|c| {
            let info = c.info();
            let severity = match info.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            (info.code, info.name, severity, info.message)
        })
        .collect()
}
