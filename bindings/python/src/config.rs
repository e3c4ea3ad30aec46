//! The keyword arguments of `tally_client.Client(...)` as a `tally_sdk::Config`. Numbers from
//! Python are checked here (a clear `ValueError` rather than an overflow); everything else the
//! SDK checks itself when the client is created, with the stable code `306 invalid_input`.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyInt;
use tally_sdk::{Config, DeviceIdMode, ValidationField};

/// Everything `Client(...)` accepts, as Python gave it.
pub struct Arguments<'py> {
    pub servers: Vec<String>,
    pub vendor_public_key: String,
    pub state_dir: PathBuf,
    pub product: String,
    pub organization: String,
    pub handshake_code: String,
    pub session_password: Option<String>,
    pub version: Option<Bound<'py, PyAny>>,
    pub modules: Vec<String>,
    pub domain: Option<String>,
    pub app_id: Option<String>,
    pub process: Option<String>,
    pub friendly_name: Option<String>,
    pub device_id: String,
    pub buffer_days: Option<Bound<'py, PyAny>>,
    pub instances: Option<Bound<'py, PyAny>>,
    pub timeout: f64,
}

impl Arguments<'_> {
    pub fn into_config(self) -> PyResult<Config> {
        let mut config = Config::new(
            self.servers,
            &self.vendor_public_key,
            self.state_dir,
            &self.product,
        );
        config.organization = self.organization;
        config.handshake_code = self.handshake_code;
        config.session_password = self.session_password;
        config.version = self.version.map(|v| to_u32("version", &v)).transpose()?;
        config.modules = self.modules;
        config.validation = ValidationField {
            domain: self.domain,
            app_id: self.app_id,
            process: self.process,
        };
        config.friendly_name = self.friendly_name;
        config.device_id = device_id_mode(&self.device_id)?;
        config.buffer_days = self
            .buffer_days
            .map(|v| to_u32("buffer_days", &v))
            .transpose()?;
        config.instances = self
            .instances
            .map(|v| to_u32("instances", &v))
            .transpose()?;
        config.timeout = seconds("timeout", self.timeout)?;
        Ok(config)
    }
}

fn device_id_mode(mode: &str) -> PyResult<DeviceIdMode> {
    match mode {
        "random" => Ok(DeviceIdMode::Random),
        "hardware" => Ok(DeviceIdMode::Hardware),
        other => Err(PyValueError::new_err(format!(
            "device_id: \"random\" or \"hardware\", not {other:?}"
        ))),
    }
}

/// A Python int as a `u32`, or a `ValueError` naming the argument.
pub fn to_u32(what: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = integer(what, value, u32::MAX.into())?;
    u32::try_from(n).map_err(|_| out_of_range(what, value, u32::MAX.into()))
}

/// A Python int as a `u64`, or a `ValueError` naming the argument.
pub fn to_u64(what: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    integer(what, value, u64::MAX)
}

fn integer(what: &str, value: &Bound<'_, PyAny>, max: u64) -> PyResult<u64> {
    if !value.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{what}: an int is required, not {}",
            value.get_type().name()?
        )));
    }
    value
        .extract::<u64>()
        .map_err(|_| out_of_range(what, value, max))
}

fn out_of_range(what: &str, value: &Bound<'_, PyAny>, max: u64) -> PyErr {
    PyValueError::new_err(format!("{what}: {value} is not between 0 and {max}"))
}

/// Seconds from Python as a `Duration`: finite and more than zero.
pub fn seconds(what: &str, value: f64) -> PyResult<Duration> {
    match Duration::try_from_secs_f64(value) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(PyValueError::new_err(format!(
            "{what}: a number of seconds more than zero, not {value}"
        ))),
    }
}
