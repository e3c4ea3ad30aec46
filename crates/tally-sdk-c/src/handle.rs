//! The opaque handle: the configuration being set, then the SDK client it starts, and the last
//! error of each thread that called it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use tally_sdk::{
    Background, Client, Config, DeviceIdMode, ErrorCode, SdkError, SdkResult, ValidationField,
};

/// A Tally client for one product on one device, as C sees it: an opaque pointer made by
/// `tally_new` and released by `tally_free`. Safe to use from several threads at once.
pub struct TallyClient {
    setup: Mutex<Setup>,
    client: OnceLock<Arc<Client>>,
    background: Mutex<Option<Background>>,
    /// Whether the last authorization used the held grant because no server answered.
    last_cached: AtomicBool,
    /// The last failure of each thread whose last call failed.
    errors: Mutex<HashMap<ThreadId, SdkError>>,
}

/// The ABI lets several threads use one handle at once: the compiler checks it may.
const _: () = {
    const fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<TallyClient>();
};

/// The configuration as the setters leave it; checked when the client starts.
#[derive(Default)]
pub(crate) struct Setup {
    pub servers: Vec<String>,
    pub vendor_public_key: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub organization: String,
    pub handshake_code: String,
    pub session_password: Option<String>,
    pub product: Option<String>,
    pub version: Option<u32>,
    pub modules: Vec<String>,
    pub validation: ValidationField,
    pub friendly_name: Option<String>,
    pub device_id: DeviceIdMode,
    pub buffer_days: Option<u32>,
    pub instances: Option<u32>,
    pub timeout: Option<Duration>,
}

/// A poisoned lock only means another call panicked (and was turned into an error): the data
/// behind it is still whole, since every change is a single assignment.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TallyClient {
    pub(crate) fn new() -> Self {
        Self {
            setup: Mutex::new(Setup::default()),
            client: OnceLock::new(),
            background: Mutex::new(None),
            last_cached: AtomicBool::new(false),
            errors: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the configuration, which is possible only until the client has started.
    pub(crate) fn configure(&self, change: impl FnOnce(&mut Setup)) -> SdkResult<()> {
        let mut setup = lock(&self.setup);
        if self.client.get().is_some() {
            return Err(SdkError::new(
                ErrorCode::InvalidInput,
                "the configuration cannot change once the client has started",
            ));
        }
        change(&mut setup);
        Ok(())
    }

    /// The SDK client, started from the configuration at the first call that needs it: the
    /// configuration is checked, the state directory and the device id are created.
    pub(crate) fn client(&self) -> SdkResult<&Arc<Client>> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let setup = lock(&self.setup);
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = Arc::new(Client::new(config(&setup)?)?);
        Ok(self.client.get_or_init(|| client))
    }

    pub(crate) fn set_cached(&self, cached: bool) {
        self.last_cached.store(cached, Ordering::Relaxed);
    }

    pub(crate) fn cached(&self) -> bool {
        self.last_cached.load(Ordering::Relaxed)
    }

    /// Keeps `background` running until the handle is freed; refused if one already runs.
    pub(crate) fn keep_background(
        &self,
        start: impl FnOnce() -> SdkResult<Background>,
    ) -> SdkResult<()> {
        let mut running = lock(&self.background);
        if running.is_some() {
            return Err(SdkError::new(
                ErrorCode::InvalidInput,
                "the background thread is already running",
            ));
        }
        *running = Some(start()?);
        Ok(())
    }

    /// Remembers the outcome of this thread's call: a failure until its next call, a success
    /// clears it.
    pub(crate) fn remember(&self, outcome: &SdkResult<()>) {
        let thread = std::thread::current().id();
        let mut errors = lock(&self.errors);
        match outcome {
            Ok(()) => {
                errors.remove(&thread);
            }
            Err(e) => {
                errors.insert(thread, e.clone());
            }
        }
    }

    /// The failure of this thread's last call, if it failed.
    pub(crate) fn last_error(&self) -> Option<SdkError> {
        lock(&self.errors)
            .get(&std::thread::current().id())
            .cloned()
    }
}

/// The SDK configuration; a missing required value names its setter.
fn config(setup: &Setup) -> SdkResult<Config> {
    let required = |value: &Option<String>, what: &str| {
        value.clone().ok_or_else(|| {
            SdkError::new(
                ErrorCode::InvalidInput,
                format!("{what}: required (tally_set_{what})"),
            )
        })
    };
    let vendor_public_key = required(&setup.vendor_public_key, "vendor_public_key")?;
    let product = required(&setup.product, "product")?;
    let state_dir = setup.state_dir.clone().ok_or_else(|| {
        SdkError::new(
            ErrorCode::InvalidInput,
            "state_dir: required (tally_set_state_dir)",
        )
    })?;
    let mut config = Config::new(
        setup.servers.clone(),
        &vendor_public_key,
        state_dir,
        &product,
    );
    config.organization = setup.organization.clone();
    config.handshake_code = setup.handshake_code.clone();
    config.session_password = setup.session_password.clone();
    config.version = setup.version;
    config.modules = setup.modules.clone();
    config.validation = setup.validation.clone();
    config.friendly_name = setup.friendly_name.clone();
    config.device_id = setup.device_id;
    config.buffer_days = setup.buffer_days;
    config.instances = setup.instances;
    if let Some(timeout) = setup.timeout {
        config.timeout = timeout;
    }
    Ok(config)
}
