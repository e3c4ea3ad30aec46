//! A schema of its own in a database, for runs that must start empty and leave nothing behind
//! (`tally bench --database`).

use tally_store::{StoreError, StoreResult};
use tokio_postgres::NoTls;

use crate::connection::{backend, parse_url};

/// A schema created in the database at `base`, with the URL that makes it the search path.
pub struct ScratchSchema {
    base: String,
    name: String,
}

impl ScratchSchema {
    /// Creates schema `name` (letters, digits and `_` only) in the database at `base`.
    pub async fn create(base: &str, name: &str) -> StoreResult<Self> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StoreError::failure(format!(
                "`{name}` is not a plain schema name"
            )));
        }
        execute(base, &format!("CREATE SCHEMA {name}")).await?;
        Ok(Self {
            base: base.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The database URL with this schema as the search path.
    pub fn url(&self) -> String {
        let joiner = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{joiner}options=-csearch_path%3D{}", self.base, self.name)
    }

    /// Drops the schema and everything in it.
    pub async fn drop_all(self) -> StoreResult<()> {
        execute(&self.base, &format!("DROP SCHEMA {} CASCADE", self.name)).await
    }
}

async fn execute(url: &str, sql: &str) -> StoreResult<()> {
    let (client, connection) = parse_url(url)?
        .connect(NoTls)
        .await
        .map_err(backend("connect to PostgreSQL"))?;
    let connection = tokio::spawn(connection);
    let outcome = client
        .batch_execute(sql)
        .await
        .map_err(backend("change the schema"));
    drop(client);
    let _ = connection.await;
    outcome
}
