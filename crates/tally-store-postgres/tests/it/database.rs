//! Scratch schemas in the test database, dropped when the test ends.

use tokio_postgres::NoTls;

/// The test database's URL (`TALLY_TEST_DATABASE_URL`).
pub fn test_url() -> String {
    std::env::var("TALLY_TEST_DATABASE_URL")
        .expect("TALLY_TEST_DATABASE_URL names the PostgreSQL database for these tests")
}

/// A schema of its own for one test.
pub struct Scratch {
    schema: String,
}

impl Scratch {
    pub async fn create() -> Self {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (client, connection) = tokio_postgres::connect(&test_url(), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        Self { schema }
    }

    /// The test database's URL with the schema as the search path.
    pub fn url(&self) -> String {
        let base = test_url();
        let joiner = if base.contains('?') { '&' } else { '?' };
        format!("{base}{joiner}options=-csearch_path%3D{}", self.schema)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let name = schema.clone();
        // Drop runs inside the test's runtime; the schema is dropped from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&test_url(), NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {name}");
        }
    }
}
