//! The shared state. Everything a handler needs is in [`AppState`]; nothing is global, so tests
//! start as many servers as they like, each on its own clock and store. The router that uses it
//! is in `app.rs`; this module uses no handler.

use std::sync::Arc;

use tally_core::Clock;
use tally_crypto::VerifyingKey;
use tally_store::Store;

use crate::identity::{ServerIdentity, write_private};
use crate::replay::{ReplayCache, SessionWindows};
use crate::settings;
use crate::settings::Settings;

/// File in the data directory that holds the generated admin token.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub identity: ServerIdentity,
    pub vendor_key: VerifyingKey,
    pub admin_token: String,
    pub settings: Settings,
    pub replay: ReplayCache,
    /// Authorization outcomes on their way to the store (see [`crate::outcomes`]).
    pub outcomes: crate::outcomes::OutcomeTally,
    /// Sequence numbers seen per report session.
    pub sessions: SessionWindows,
    /// Seals and opens report-session tickets.
    pub tickets: tally_crypto::session::TicketKey,
    /// One-time token that lets whoever reads the server log set the first portal password.
    pub setup_token: String,
    /// Session-password checks: verified passwords remembered, Argon2 bounded and throttled.
    pub passwords: crate::service::password::PasswordGuard,
    /// Recent failed sign-ins, to slow down password guessing.
    failed_logins: std::sync::Mutex<Vec<tally_proto::UnixSeconds>>,
    /// Internal errors on their way to the admin (see [`crate::alerts`]).
    errors: tokio::sync::mpsc::UnboundedSender<String>,
    /// Imported licenses as the protocol shows them (read once, forgotten on import).
    proofs: std::sync::RwLock<Option<std::sync::Arc<Proofs>>>,
    error_receiver: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

/// What the client protocol shows of the imported licenses.
pub struct Proofs {
    /// Activated license files by license id.
    activated: std::collections::HashMap<String, String>,
    /// The newest license's server certificate.
    certificate: Option<String>,
}

/// Failed sign-ins tolerated per window before the portal makes the next attempts wait.
const MAX_FAILED_LOGINS: usize = 5;
const FAILED_LOGIN_WINDOW: i64 = 300;

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state. The admin token comes from the settings, else from
    /// `<data_dir>/admin-token`, which is generated on first start.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        identity: ServerIdentity,
    ) -> Result<Self, String> {
        settings.validate()?;
        let vendor_key = settings
            .vendor_public_key
            .as_deref()
            .map(VerifyingKey::from_base64)
            .transpose()
            .map_err(|e| format!("vendor_public_key: {e}"))?
            .ok_or_else(|| "vendor_public_key is required".to_owned())?;
        let admin_token = match &settings.admin_token {
            Some(t) if t.len() >= 16 => t.clone(),
            Some(_) => return Err("admin_token: use at least 16 characters".into()),
            None => load_or_create_token(&settings)?,
        };
        let (errors, error_receiver) = tokio::sync::mpsc::unbounded_channel();
        let tickets = tally_crypto::session::TicketKey::for_server(&identity.signing);
        let passwords = crate::service::password::PasswordGuard::new(clock.clone())?;
        Ok(Self(Arc::new(Inner {
            store,
            clock,
            identity,
            vendor_key,
            admin_token,
            settings,
            replay: ReplayCache::default(),
            sessions: SessionWindows::default(),
            outcomes: crate::outcomes::OutcomeTally::default(),
            tickets,
            passwords,
            setup_token: tally_crypto::random_id().map_err(|e| e.to_string())?,
            failed_logins: std::sync::Mutex::new(Vec::new()),
            errors,
            proofs: std::sync::RwLock::new(None),
            error_receiver: std::sync::Mutex::new(Some(error_receiver)),
        })))
    }

    pub fn now(&self) -> tally_proto::UnixSeconds {
        self.clock.now()
    }

    fn recent_failures(&self) -> std::sync::MutexGuard<'_, Vec<tally_proto::UnixSeconds>> {
        let mut failures = self.failed_logins.lock().unwrap_or_else(|p| p.into_inner());
        let since = self.now() - FAILED_LOGIN_WINDOW;
        failures.retain(|t| *t > since);
        failures
    }

    /// The activated license file of `license_id`, from memory after the first read: sent with
    /// every grant as proof of its items.
    pub async fn certificate(
        &self,
        license_id: &str,
    ) -> Result<Option<String>, tally_store::StoreError> {
        Ok(self.proofs().await?.activated.get(license_id).cloned())
    }

    /// The server certificate `hello` shows: that of the newest imported license.
    pub async fn server_certificate(&self) -> Result<Option<String>, tally_store::StoreError> {
        Ok(self.proofs().await?.certificate.clone())
    }

    async fn proofs(&self) -> Result<std::sync::Arc<Proofs>, tally_store::StoreError> {
        if let Some(proofs) = self
            .proofs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(proofs.clone());
        }
        let licenses = self.store.licenses().await?;
        let certificate = licenses.iter().rev().find_map(|l| {
            tally_crypto::document::verify_activated(&l.activated_text, &self.vendor_key)
                .map_err(|e| {
                    tracing::error!(
                        license = %l.license.license_id,
                        error = %e,
                        "an imported license does not verify: import a new activation of it (`tally vendor activate`)"
                    );
                })
                .ok()
                .map(|a| a.certificate)
        });
        let proofs = std::sync::Arc::new(Proofs {
            activated: licenses
                .into_iter()
                .map(|l| (l.license.license_id, l.activated_text))
                .collect(),
            certificate,
        });
        *self.proofs.write().unwrap_or_else(|p| p.into_inner()) = Some(proofs.clone());
        Ok(proofs)
    }

    /// Forgets the cached license files (a license was imported).
    pub fn licenses_changed(&self) {
        *self.proofs.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Tells the admin about an internal error (failed write, failed background job).
    pub fn internal_error(&self, what: String) {
        let _ = self.errors.send(format!(
            "{} {what}",
            tally_proto::time_text::minute(self.now())
        ));
    }

    /// The receiving end of [`Self::internal_error`], for the one task that sends notices.
    pub fn take_error_receiver(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<String>> {
        self.error_receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// True while too many sign-ins failed recently.
    pub fn login_throttled(&self) -> bool {
        self.recent_failures().len() >= MAX_FAILED_LOGINS
    }

    pub fn login_failed(&self) {
        let now = self.now();
        self.recent_failures().push(now);
    }
}

fn load_or_create_token(settings: &settings::Settings) -> Result<String, String> {
    let path = settings.data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        Ok(_) | Err(_) => {
            let token = tally_crypto::random_id().map_err(|e| e.to_string())?;
            write_private(&path, format!("{token}\n").as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated the admin API token");
            Ok(token)
        }
    }
}
