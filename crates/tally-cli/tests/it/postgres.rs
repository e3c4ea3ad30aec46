//! Schemas of their own in the test database (`TALLY_TEST_DATABASE_URL`) for the tests that
//! serve from PostgreSQL.

use tokio_postgres::NoTls;

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `sql` on the database at `url`; the first column of each row as text.
pub fn pg_column(url: &str, sql: &str) -> Vec<String> {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let rows = client.simple_query(sql).await.unwrap();
        rows.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some(r.get(0).unwrap_or("NULL").to_owned())
                }
                _ => None,
            })
            .collect()
    })
}

/// A schema of its own in the test database, dropped when the test ends (passed or not).
pub struct Schema {
    pub name: String,
    base: String,
}

impl Schema {
    pub fn create(prefix: &str) -> Self {
        let base = std::env::var("TALLY_TEST_DATABASE_URL")
            .expect("TALLY_TEST_DATABASE_URL names the PostgreSQL database for this test");
        let name = format!("t_{prefix}_{}", uuid::Uuid::new_v4().simple());
        pg_column(&base, &format!("CREATE SCHEMA {name}"));
        Self { name, base }
    }

    /// The test database's URL with this schema as the search path.
    pub fn url(&self) -> String {
        let joiner = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{joiner}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        let base = self.base.clone();
        // Not inside a panicking runtime: a thread of its own.
        let dropped = std::thread::spawn(move || pg_column(&base, &sql)).join();
        if dropped.is_err() {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}
