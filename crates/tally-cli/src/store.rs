//! Which store a server uses: the SQLite file in the data directory (the default), or the
//! PostgreSQL database named by `database_url`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tally_server::Settings;
use tally_store::Store;

/// File name of the SQLite database inside the data directory.
pub const DATABASE_FILE: &str = "tally.db";

/// Where the data of a server lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The SQLite file in the data directory.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL.
    Postgres(String),
}

impl Location {
    pub fn of(settings: &Settings) -> Self {
        match &settings.database_url {
            Some(url) => Location::Postgres(url.clone()),
            None => Location::Sqlite(settings.data_dir.join(DATABASE_FILE)),
        }
    }

    /// Opens (creating and migrating if needed) the store.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            Location::Sqlite(db) => {
                let store = tally_store_sqlite::SqliteStore::open(db)
                    .with_context(|| format!("cannot open the database {}", db.display()))?;
                Ok(Arc::new(store))
            }
            Location::Postgres(url) => {
                let store = tally_store_postgres::PostgresStore::connect(url)
                    .await
                    .with_context(|| {
                        format!("cannot open the PostgreSQL database {}", redacted(url))
                    })?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// `url` without its password (in the user part or as a `password=` parameter), for messages
/// and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<database URL>".into();
    };
    let (address, query) = match rest.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (rest, None),
    };
    let address = match address.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or_default();
            format!("{user}@{host}")
        }
        None => address.to_owned(),
    };
    let query = query.map(|q| {
        q.split('&')
            .filter(|p| !p.to_ascii_lowercase().starts_with("password="))
            .collect::<Vec<_>>()
            .join("&")
    });
    match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{scheme}://{address}?{q}"),
        None => format!("{scheme}://{address}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_messages() {
        assert_eq!(
            redacted("postgres://tally:s3cret@db:5432/tally"),
            "postgres://tally@db:5432/tally"
        );
        assert_eq!(redacted("postgres://db/tally"), "postgres://db/tally");
        assert_eq!(
            redacted("postgres://tally@db/tally?password=s3cret&sslmode=disable"),
            "postgres://tally@db/tally?sslmode=disable"
        );
        assert_eq!(
            redacted("postgresql://db/tally?Password=s3cret"),
            "postgresql://db/tally"
        );
    }
}
