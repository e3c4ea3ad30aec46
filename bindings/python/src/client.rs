//! The native client that `tally_client.Client` wraps. Every call that may block (files under
//! the state directory's lock, the network, the background thread's last flush) runs with the
//! Python thread detached, so other Python threads go on meanwhile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use tally_sdk::{Background, SdkResult};

use crate::config::{Arguments, seconds, to_u64};
use crate::{convert, errors};

/// A Tally client for one product on one device, as `tally_client.Client` (Python, documented
/// there) uses it.
#[pyclass(module = "tally_client._native", frozen)]
pub struct NativeClient {
    inner: Arc<tally_sdk::Client>,
    /// The background thread while it runs; dropping it stops the thread after a last flush.
    background: Mutex<Option<Background>>,
}

impl NativeClient {
    fn background(&self) -> MutexGuard<'_, Option<Background>> {
        self.background.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `call` on the SDK client with this thread detached from Python.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        call: impl FnOnce(&tally_sdk::Client) -> SdkResult<T> + Send,
    ) -> PyResult<T> {
        let inner = &*self.inner;
        py.detach(move || call(inner))
            .map_err(|e| errors::to_py(py, e))
    }
}

#[pymethods]
impl NativeClient {
    #[new]
    #[pyo3(signature = (
        *,
        servers,
        vendor_public_key,
        state_dir,
        product,
        organization,
        handshake_code,
        session_password,
        version,
        modules,
        domain,
        app_id,
        process,
        friendly_name,
        device_id,
        buffer_days,
        instances,
        timeout,
    ))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one per setting
    fn new<'py>(
        py: Python<'py>,
        servers: Vec<String>,
        vendor_public_key: String,
        state_dir: PathBuf,
        product: String,
        organization: String,
        handshake_code: String,
        session_password: Option<String>,
        version: Option<Bound<'py, PyAny>>,
        modules: Vec<String>,
        domain: Option<String>,
        app_id: Option<String>,
        process: Option<String>,
        friendly_name: Option<String>,
        device_id: String,
        buffer_days: Option<Bound<'py, PyAny>>,
        instances: Option<Bound<'py, PyAny>>,
        timeout: f64,
    ) -> PyResult<Self> {
        let config = Arguments {
            servers,
            vendor_public_key,
            state_dir,
            product,
            organization,
            handshake_code,
            session_password,
            version,
            modules,
            domain,
            app_id,
            process,
            friendly_name,
            device_id,
            buffer_days,
            instances,
            timeout,
        }
        .into_config()?;
        let inner = py
            .detach(move || tally_sdk::Client::new(config))
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Self {
            inner: Arc::new(inner),
            background: Mutex::new(None),
        })
    }

    #[getter]
    fn device_uuid(&self) -> &str {
        self.inner.device_uuid()
    }

    fn authorize<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let auth = self.run(py, |c| c.authorize())?;
        convert::authorization(py, auth)
    }

    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let auth = self.run(py, |c| c.check())?;
        convert::authorization(py, auth)
    }

    fn record_usage(
        &self,
        py: Python<'_>,
        feature: String,
        count: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let count = to_u64("count", &count)?;
        self.run(py, move |c| c.record_usage(&feature, count))
    }

    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outcome = self.run(py, |c| c.flush())?;
        convert::flush_outcome(py, outcome)
    }

    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let status = self.run(py, |c| c.status())?;
        convert::status(py, status)
    }

    fn start_background(&self, py: Python<'_>, report_every: f64) -> PyResult<()> {
        let every = seconds("report_every", report_every)?;
        // Starting a thread does not block: the lock is not held while detached, where another
        // Python thread waiting for it would keep this one from coming back.
        let mut running = self.background();
        if running.is_none() {
            let started = self
                .inner
                .spawn_background(every)
                .map_err(|e| errors::to_py(py, e))?;
            *running = Some(started);
        }
        Ok(())
    }

    fn stop_background(&self, py: Python<'_>) {
        let stopped = self.background().take();
        // Joining the thread waits for its last flush: not with Python's attention held.
        py.detach(move || drop(stopped));
    }

    #[getter]
    fn background_running(&self) -> bool {
        self.background().is_some()
    }
}
