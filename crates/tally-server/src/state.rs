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

/// Setting (in a shared store) holding the secret the instances derive their ticket key from.
const TICKET_SECRET_SETTING: &str = "session_ticket_secret";

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub identity: ServerIdentity,
    /// This process among the instances that may share the store: the server UUID (instances on
    /// one machine share it) and a random suffix. Holds leases of background jobs.
    pub instance: String,
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
    pub passwords: crate::passwords::PasswordGuard,
    /// Seals the secrets kept in the store (see [`crate::secrets`]).
    pub secrets: crate::secrets::SecretBox,
    /// Wrong portal passwords, limited per address and slowed overall.
    pub sign_in: crate::passwords::SignInThrottle,
    /// Internal errors on their way to the admin (see [`crate::alerts`]).
    errors: tokio::sync::mpsc::UnboundedSender<String>,
    /// Imported licenses as the protocol shows them (read once, forgotten on import).
    proofs: std::sync::RwLock<Option<std::sync::Arc<Proofs>>>,
    error_receiver: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
    /// The certificate served over HTTPS, once the listener is set up (see [`crate::tls`]).
    tls: std::sync::OnceLock<std::sync::Arc<crate::tls::CertificateSlot>>,
}

/// What the client protocol shows of the imported licenses.
pub struct Proofs {
    /// The store's [`Store::config_version`] they were read at.
    version: Option<u64>,
    /// Activated license files by license id.
    activated: std::collections::HashMap<String, String>,
    /// This instance's own server certificate in the newest license that names it.
    certificate: Option<String>,
    /// Licenses whose activation names this instance: only their items may be granted here.
    here: std::collections::HashSet<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Assembles the state. The admin token comes from the settings, else from
    /// `<data_dir>/admin-token`, which is generated on first start.
    ///
    /// Only for a store of one instance ([`Store::shared`] false): report-session tickets are
    /// sealed with a key derived from this server's own signing key. [`AppState::open`] serves
    /// every store.
    pub fn new(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        identity: ServerIdentity,
    ) -> Result<Self, String> {
        if store.shared() {
            return Err("a store shared by several instances needs AppState::open".into());
        }
        let tickets = tally_crypto::session::TicketKey::for_server(&identity.signing);
        Self::assemble(settings, store, clock, identity, tickets)
    }

    /// [`AppState::new`] for any store. Instances sharing a store seal report-session tickets
    /// with a key derived from one secret kept in it, so that a session opened on one instance
    /// continues on any other.
    pub async fn open(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        identity: ServerIdentity,
    ) -> Result<Self, String> {
        if !store.shared() {
            return Self::new(settings, store, clock, identity);
        }
        let fresh = tally_crypto::random_id().map_err(|e| e.to_string())?
            + &tally_crypto::random_id().map_err(|e| e.to_string())?;
        let secret = store
            .setting_or_insert(TICKET_SECRET_SETTING, &fresh)
            .await
            .map_err(|e| format!("cannot read the shared session secret: {e}"))?;
        let tickets = tally_crypto::session::TicketKey::derive(secret.as_bytes());
        Self::assemble(settings, store, clock, identity, tickets)
    }

    fn assemble(
        settings: Settings,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        identity: ServerIdentity,
        tickets: tally_crypto::session::TicketKey,
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
        let secrets = crate::secrets::SecretBox::load_or_create(
            &settings.data_dir,
            settings.secret_key_file.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        if store.shared() && settings.secret_key_file.is_none() {
            tracing::warn!(
                "instances sharing a database need one key for stored secrets: set `secret_key_file` to the same file on each, or the SMTP password and webhook secret saved on one cannot be read on another"
            );
        }
        let (errors, error_receiver) = tokio::sync::mpsc::unbounded_channel();
        let passwords = crate::passwords::PasswordGuard::new(clock.clone())?;
        let clock_for_sign_in = clock.clone();
        let instance = format!(
            "{}/{}",
            identity.uuid,
            tally_crypto::random_id().map_err(|e| e.to_string())?
        );
        Ok(Self(Arc::new(Inner {
            store,
            clock,
            instance,
            identity,
            vendor_key,
            admin_token,
            settings,
            replay: ReplayCache::default(),
            sessions: SessionWindows::default(),
            outcomes: crate::outcomes::OutcomeTally::default(),
            tickets,
            passwords,
            secrets,
            setup_token: tally_crypto::random_id().map_err(|e| e.to_string())?,
            sign_in: crate::passwords::SignInThrottle::new(clock_for_sign_in)?,
            errors,
            proofs: std::sync::RwLock::new(None),
            error_receiver: std::sync::Mutex::new(Some(error_receiver)),
            tls: std::sync::OnceLock::new(),
        })))
    }

    /// Records the certificate the HTTPS listener serves, for the portal to show.
    pub fn serve_certificates(&self, certificates: std::sync::Arc<crate::tls::CertificateSlot>) {
        let _ = self.0.tls.set(certificates);
    }

    /// The fingerprint of the certificate served over HTTPS now; `None` in plain HTTP.
    pub fn tls_fingerprint(&self) -> Option<tally_crypto::fingerprint::Fingerprint> {
        self.0.tls.get().map(|slot| slot.fingerprint())
    }

    pub fn now(&self) -> tally_proto::UnixSeconds {
        self.clock.now()
    }

    /// The activated license file of `license_id`, from memory after the first read: sent with
    /// every grant as proof of its items. A license the cached proofs do not know makes them be
    /// read again once: another instance on the same database may have imported it.
    pub async fn certificate(
        &self,
        license_id: &str,
    ) -> Result<Option<String>, tally_store::StoreError> {
        let cached = self.proofs().await?;
        if let Some(text) = cached.activated.get(license_id) {
            return Ok(Some(text.clone()));
        }
        {
            let mut slot = self.proofs.write().unwrap_or_else(|p| p.into_inner());
            // Only when no other request read them again meanwhile.
            if slot
                .as_ref()
                .is_some_and(|current| std::sync::Arc::ptr_eq(current, &cached))
            {
                *slot = None;
            }
        }
        Ok(self.proofs().await?.activated.get(license_id).cloned())
    }

    /// Whether license `license_id` is activated for this instance (a store shared by several
    /// instances may hold licenses activated for others only).
    pub async fn activated_here(&self, license_id: &str) -> Result<bool, tally_store::StoreError> {
        Ok(self.proofs().await?.here.contains(license_id))
    }

    /// The server certificate `hello` shows: this instance's own, from the newest imported
    /// license activated for it.
    pub async fn server_certificate(&self) -> Result<Option<String>, tally_store::StoreError> {
        Ok(self.proofs().await?.certificate.clone())
    }

    async fn proofs(&self) -> Result<std::sync::Arc<Proofs>, tally_store::StoreError> {
        let version = self.store.config_version();
        if let Some(proofs) = self
            .proofs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            // Kept while the store says nothing changed (here or on another instance).
            .filter(|p| version.is_some() && p.version == version)
        {
            return Ok(proofs.clone());
        }
        let licenses = self.store.licenses().await?;
        let me = self.identity.public();
        let mut certificate = None;
        let mut here = std::collections::HashSet::new();
        for l in licenses.iter().rev() {
            let activated = match tally_crypto::document::verify_activated(
                &l.activated_text,
                &self.vendor_key,
            ) {
                Ok(activated) => activated,
                Err(e) => {
                    tracing::error!(
                        license = %l.license.license_id,
                        error = %e,
                        "an imported license does not verify: import a new activation of it (`tally vendor activate`)"
                    );
                    continue;
                }
            };
            match activated.certificate_of(&me) {
                Some(own) => {
                    here.insert(l.license.license_id.clone());
                    if certificate.is_none() {
                        certificate = Some(own.to_owned());
                    }
                }
                None => tracing::warn!(
                    license = %l.license.license_id,
                    servers = %activated.server_uuids(),
                    "an imported license is not activated for this server instance: devices refuse its grants from here; import an activation that names this instance too"
                ),
            }
        }
        let proofs = std::sync::Arc::new(Proofs {
            version,
            activated: licenses
                .into_iter()
                .map(|l| (l.license.license_id, l.activated_text))
                .collect(),
            certificate,
            here,
        });
        *self.proofs.write().unwrap_or_else(|p| p.into_inner()) = Some(proofs.clone());
        Ok(proofs)
    }

    /// Forgets the cached license files (a license was imported).
    pub fn licenses_changed(&self) {
        *self.proofs.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records the one use of a request envelope (see [`crate::replay`]); false when it was
    /// used before, on this instance or, with a shared store, on any other.
    pub async fn first_use_of_envelope(
        &self,
        id: [u8; 32],
        forget_after: tally_proto::UnixSeconds,
    ) -> Result<bool, tally_store::StoreError> {
        let now = self.now();
        if !self.replay.first_use(id, now, forget_after) {
            return Ok(false);
        }
        if !self.store.shared() {
            return Ok(true);
        }
        self.store
            .first_use(&id[..crate::replay::KEPT_ID_BYTES], now, forget_after)
            .await
    }

    /// Accepts message `seq` of the report session `id` once (see [`crate::replay`]), on this
    /// instance and, with a shared store, across all of them.
    pub async fn accept_session_message(
        &self,
        id: [u8; 16],
        seq: u64,
        session: &std::sync::Arc<(
            tally_crypto::session::SessionKey,
            tally_crypto::session::TicketContents,
        )>,
    ) -> Result<bool, tally_store::StoreError> {
        if !self.sessions.accept(id, seq, session, self.now()) {
            return Ok(false);
        }
        if !self.store.shared() {
            return Ok(true);
        }
        self.store
            .accept_session_message(&id, seq, session.1.expires_at)
            .await
    }

    /// Tells the admin about an internal error (failed write, failed background job).
    pub fn internal_error(&self, what: String) {
        let what = crate::error::with_disk_full_hint(what);
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
