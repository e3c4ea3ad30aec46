//! The connection pool, the retry of transactions that lost a race, and the mapping of driver
//! errors.

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tally_store::{StoreError, StoreResult};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Connections each server process keeps at most. Reports of many devices commit at the same
/// time on separate connections, and PostgreSQL flushes their commits together.
const POOL_SIZE: usize = 24;

/// Wraps a driver error as a backend failure saying what was being done. An error of the server
/// is kept as PostgreSQL's own (`DbError`: its message, and its code for [`lost_a_race`]); the
/// driver's wrapper would show only "db error".
pub(crate) fn backend(context: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| match e.as_db_error() {
        Some(db) => StoreError::backend(context, db.clone()),
        None => StoreError::backend(context, e),
    }
}

/// A JSON column that cannot be parsed means the database was damaged or written by a bug.
pub(crate) fn corrupt(context: &str) -> impl Fn(serde_json::Error) -> StoreError + '_ {
    move |e| StoreError::backend(format!("damaged row ({context})"), e)
}

/// Whether `e` is a transaction that lost a race with another one: PostgreSQL aborted it to
/// keep them apart (a deadlock, a serialization failure), or a key it found free was taken by a
/// transaction that committed meanwhile. Running it again from the start is safe: it then sees
/// the other transaction's rows.
pub(crate) fn lost_a_race(e: &StoreError) -> bool {
    let code = e
        .cause()
        .and_then(|c| c.downcast_ref::<tokio_postgres::error::DbError>())
        .map(tokio_postgres::error::DbError::code);
    [
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::UNIQUE_VIOLATION,
    ]
    .iter()
    .any(|state| code == Some(state))
}

/// The connection settings of `url`; the password is never part of an error message.
pub(crate) fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StoreError::backend("read the database URL", e))
}

pub(crate) fn pool(config: tokio_postgres::Config) -> StoreResult<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .build()
        .map_err(|e| StoreError::backend("create the connection pool", e))
}

pub(crate) async fn client(pool: &Pool) -> StoreResult<Object> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => backend("connect to PostgreSQL")(e),
        other => StoreError::backend("connect to PostgreSQL", other),
    })
}

pub(crate) use deadpool_postgres::GenericClient as Db;
pub(crate) type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];

/// Runs `sql` (prepared once per connection) and returns its rows.
pub(crate) async fn rows(
    c: &impl Db,
    what: &str,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<tokio_postgres::Row>> {
    let statement = c.prepare_cached(sql).await.map_err(backend(what))?;
    c.query(&statement, params).await.map_err(backend(what))
}

/// Runs `sql` and returns its row, if any.
pub(crate) async fn row(
    c: &impl Db,
    what: &str,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<tokio_postgres::Row>> {
    let statement = c.prepare_cached(sql).await.map_err(backend(what))?;
    c.query_opt(&statement, params).await.map_err(backend(what))
}

/// Runs `sql` and returns how many rows it wrote.
pub(crate) async fn execute(
    c: &impl Db,
    what: &str,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(backend(what))?;
    c.execute(&statement, params).await.map_err(backend(what))
}

/// Column `index` of `row`, typed.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> StoreResult<T> {
    row.try_get(index).map_err(backend("read a column"))
}

/// A count or sum column (`BIGINT`, possibly NULL) as an unsigned number.
pub(crate) fn count(row: &tokio_postgres::Row, index: usize) -> StoreResult<u64> {
    let n: Option<i64> = get(row, index)?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
