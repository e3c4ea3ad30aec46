//! The PostgreSQL side of `tally bench --database`: a second server on the PostgreSQL store, in a
//! schema of its own that is dropped at the end, measured in the same rounds as the SQLite server.

use std::path::Path;

use tally_crypto::keys::EncryptionPublicKey;
use tally_store_postgres::ScratchSchema;

use super::requests::Target;
use super::server::TallyServer;

/// The server on PostgreSQL and the schema it writes to.
pub struct PostgresRun {
    server: TallyServer,
    schema: ScratchSchema,
    runtime: tokio::runtime::Runtime,
}

impl PostgresRun {
    /// Creates a schema in the database at `url` and starts a server on it, with its data
    /// directory in `dir` and a bench license for `quantity` devices.
    pub fn start(url: &str, dir: &Path, pin: bool, quantity: u64) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let name = format!("tally_bench_{}", std::process::id());
        let schema = runtime
            .block_on(ScratchSchema::create(url, &name))
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot create schema {name} in {}: {e}",
                    crate::store::redacted(url)
                )
            })?;
        eprintln!(
            "  postgres: schema {name} in {}",
            crate::store::redacted(url)
        );
        let server = match TallyServer::start(dir, pin, quantity, Some(schema.url())) {
            Ok(server) => server,
            Err(e) => {
                let _ = runtime.block_on(schema.drop_all());
                return Err(e);
            }
        };
        Ok(Self {
            server,
            schema,
            runtime,
        })
    }

    /// The authorize and report targets of this server, like `sqlite`'s but at its address and
    /// key.
    pub fn targets(&self, sqlite: &Target) -> anyhow::Result<(Target, Target)> {
        let key = EncryptionPublicKey::from_base64(&self.server.request.server.encryption_key)?;
        let authorize = Target {
            addr: self.server.listen().to_owned(),
            key,
            ..sqlite.clone()
        };
        let reporters = Target {
            device_prefix: "reporter".into(),
            ..authorize.clone()
        };
        Ok((authorize, reporters))
    }

    /// Stops the server and drops the schema.
    pub fn finish(mut self) -> anyhow::Result<()> {
        self.server.stop();
        self.runtime
            .block_on(self.schema.drop_all())
            .map_err(|e| anyhow::anyhow!("cannot drop the bench schema: {e}"))
    }
}
