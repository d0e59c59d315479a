//! The load query, prepared on each connection: which Rust type the key
//! parameter and the value column take is decided once, from the types
//! PostgreSQL reports for the statement.

use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Row, Statement};

use crate::error::{describe, from_query, LoadError};

/// Why the configured query cannot serve as a load query.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("preparing the load query: {0}")]
    Prepare(String),
    #[error("the load query must take exactly one parameter ($1, the key); it takes {0}")]
    Params(usize),
    #[error("the key parameter $1 must be text or bytea; the query makes it {0}")]
    KeyType(Type),
    #[error("the load query must return the value in its first column; it returns no column")]
    NoColumn,
    #[error("the value column must be bytea or text; it is {0}")]
    ValueType(Type),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Text,
    Bytes,
}

/// A prepared load query on one connection.
#[derive(Debug)]
pub struct LoadQuery {
    stmt: Statement,
    key: Encoding,
    value: Encoding,
}

impl LoadQuery {
    pub async fn prepare(client: &Client, sql: &str) -> Result<Self, PrepareError> {
        let stmt = client
            .prepare(sql)
            .await
            .map_err(|e| PrepareError::Prepare(db_message(&e)))?;
        let [param] = stmt.params() else {
            return Err(PrepareError::Params(stmt.params().len()));
        };
        let key = if <&[u8] as ToSql>::accepts(param) {
            Encoding::Bytes
        } else if <&str as ToSql>::accepts(param) {
            Encoding::Text
        } else {
            return Err(PrepareError::KeyType(param.clone()));
        };
        let column = stmt
            .columns()
            .first()
            .ok_or(PrepareError::NoColumn)?
            .type_();
        let value = if <&[u8] as FromSql>::accepts(column) {
            Encoding::Bytes
        } else if <&str as FromSql>::accepts(column) {
            Encoding::Text
        } else {
            return Err(PrepareError::ValueType(column.clone()));
        };
        Ok(Self { stmt, key, value })
    }

    /// The value of `key`: `None` when there is no row or the value is NULL.
    /// `timeout_ms` names the budget in a cancellation error.
    pub async fn run(
        &self,
        client: &Client,
        key: &[u8],
        timeout_ms: u64,
    ) -> Result<Option<Vec<u8>>, LoadError> {
        let rows = match self.key {
            Encoding::Bytes => client.query(&self.stmt, &[&key]).await,
            Encoding::Text => {
                let key = std::str::from_utf8(key).map_err(|_| {
                    LoadError::BadRequest("key is not UTF-8 but the query takes text".into())
                })?;
                client.query(&self.stmt, &[&key]).await
            }
        }
        .map_err(|e| from_query(&e, timeout_ms))?;
        rows.first().map_or(Ok(None), |row| self.value_of(row))
    }

    fn value_of(&self, row: &Row) -> Result<Option<Vec<u8>>, LoadError> {
        let value = match self.value {
            Encoding::Bytes => row
                .try_get::<_, Option<&[u8]>>(0)
                .map(|v| v.map(<[u8]>::to_vec)),
            Encoding::Text => row
                .try_get::<_, Option<&str>>(0)
                .map(|v| v.map(|s| s.as_bytes().to_vec())),
        };
        value.map_err(|e| LoadError::Origin(describe(&e)))
    }
}

/// The database's own message for a failed statement, else the error chain.
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| describe(e), |db| db.message().to_string())
}
