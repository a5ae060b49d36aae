//! The two databases the store runs on, behind one small interface: SQLite
//! (embedded, the default and the demo's) and PostgreSQL (a server, for
//! production). The store's SQL is written once, with `?N` placeholders, in
//! the dialect both accept; the few places where they differ ask
//! [`Db::is_pg`]. Values cross as four kinds (null, integer, real, text) both
//! ways, so a statement's types need not be spelled out for each backend.

use crate::context::error::{Error, Result};
use std::cell::RefCell;
use std::collections::HashMap;

/// A parameter as both backends take it.
#[derive(Debug, Clone, Copy)]
pub enum P<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

/// Anything bound to a placeholder.
pub trait ToParam {
    fn p(&self) -> P<'_>;
}

impl ToParam for P<'_> {
    fn p(&self) -> P<'_> {
        *self
    }
}
impl ToParam for i64 {
    fn p(&self) -> P<'_> {
        P::Int(*self)
    }
}
impl ToParam for u64 {
    fn p(&self) -> P<'_> {
        P::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToParam for u32 {
    fn p(&self) -> P<'_> {
        P::Int(i64::from(*self))
    }
}
impl ToParam for usize {
    fn p(&self) -> P<'_> {
        P::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}
impl ToParam for bool {
    fn p(&self) -> P<'_> {
        P::Int(i64::from(*self))
    }
}
impl ToParam for f64 {
    fn p(&self) -> P<'_> {
        P::Real(*self)
    }
}
impl ToParam for str {
    fn p(&self) -> P<'_> {
        P::Text(self)
    }
}
impl ToParam for String {
    fn p(&self) -> P<'_> {
        P::Text(self)
    }
}
impl<T: ToParam + ?Sized> ToParam for &T {
    fn p(&self) -> P<'_> {
        (**self).p()
    }
}
impl<T: ToParam> ToParam for Option<T> {
    fn p(&self) -> P<'_> {
        self.as_ref().map_or(P::Null, ToParam::p)
    }
}

/// `params![a, b]`: the parameters of one statement.
macro_rules! params {
    () => { &[] as &[&dyn $crate::store::db::ToParam] };
    ($($x:expr),+ $(,)?) => { &[$(&$x as &dyn $crate::store::db::ToParam),+] as &[&dyn $crate::store::db::ToParam] };
}
pub(crate) use params;

impl rusqlite::ToSql for P<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            P::Null => ValueRef::Null,
            P::Int(i) => ValueRef::Integer(i),
            P::Real(f) => ValueRef::Real(f),
            P::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// PostgreSQL infers each placeholder's type from the statement; a value is
/// written as that type (an integer into a text column as its digits).
impl postgres::types::ToSql for P<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, Type};
        let text;
        match *self {
            P::Null => Ok(IsNull::Yes),
            P::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => {
                    text = i.to_string();
                    text.as_str().to_sql(ty, out)
                }
            },
            P::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => {
                    text = f.to_string();
                    text.as_str().to_sql(ty, out)
                }
            },
            P::Text(t) => match *ty {
                Type::INT8 => t.parse::<i64>()?.to_sql(ty, out),
                Type::INT4 => t.parse::<i32>()?.to_sql(ty, out),
                _ => t.to_sql(ty, out),
            },
        }
    }
    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl<'a> postgres::types::FromSql<'a> for Value {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::Type;
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            _ => Value::Text(String::from_sql(ty, raw)?),
        })
    }
    fn from_sql_null(
        _: &postgres::types::Type,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Value::Null)
    }
    fn accepts(ty: &postgres::types::Type) -> bool {
        use postgres::types::Type;
        matches!(
            *ty,
            Type::INT8
                | Type::INT4
                | Type::INT2
                | Type::BOOL
                | Type::FLOAT8
                | Type::FLOAT4
                | Type::TEXT
                | Type::VARCHAR
                | Type::BPCHAR
                | Type::NAME
        )
    }
}

/// A column's value as a Rust type; a value of another kind is handed back
/// (for the error message, made only then).
pub trait FromValue: Sized {
    fn from_value(v: Value) -> std::result::Result<Self, Value>;
}

impl FromValue for Value {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        Ok(v)
    }
}
impl FromValue for i64 {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        match v {
            Value::Int(i) => Ok(i),
            Value::Real(f) => Ok(f as i64),
            Value::Text(t) => t.parse().map_err(|_| Value::Text(t)),
            Value::Null => Err(Value::Null),
        }
    }
}
/// Integers of other widths go through i64.
macro_rules! from_i64 {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> std::result::Result<Self, Value> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| Value::Int(i))
            }
        }
    )*};
}
from_i64!(u64, u32, usize);
impl FromValue for bool {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        match v {
            Value::Int(i) => Ok(i as f64),
            Value::Real(f) => Ok(f),
            Value::Text(t) => t.parse().map_err(|_| Value::Text(t)),
            Value::Null => Err(Value::Null),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        match v {
            Value::Text(t) => Ok(t),
            Value::Int(i) => Ok(i.to_string()),
            Value::Real(f) => Ok(f.to_string()),
            Value::Null => Err(Value::Null),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> std::result::Result<Self, Value> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result, either backend.
pub enum Row<'a> {
    Lite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` as `T`; a NULL or a value of another kind is an error
    /// (read `Option<T>` where NULL is allowed).
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = match self {
            Row::Lite(r) => match r.get_ref(i)? {
                rusqlite::types::ValueRef::Null => Value::Null,
                rusqlite::types::ValueRef::Integer(i) => Value::Int(i),
                rusqlite::types::ValueRef::Real(f) => Value::Real(f),
                rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                    Value::Text(String::from_utf8_lossy(t).into_owned())
                }
            },
            Row::Pg(r) => r.try_get::<_, Value>(i)?,
        };
        T::from_value(v).map_err(|v| {
            Error::Other(format!(
                "store: column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// A PostgreSQL connection with its prepared statements.
pub struct Pg {
    client: RefCell<postgres::Client>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
}

/// The store's database.
pub enum Db {
    Lite(rusqlite::Connection),
    Pg(Box<Pg>),
}

/// `?N` → `$N` for PostgreSQL (no statement of the store has `?` in a literal).
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// The parameters as SQLite binds them, without collecting them first.
fn lite_params<'a>(params: &'a [&'a dyn ToParam]) -> impl Iterator<Item = P<'a>> + 'a {
    params.iter().map(|p| p.p())
}

impl Db {
    pub fn postgres(url: &str) -> Result<Db> {
        let client = postgres::Client::connect(url, postgres::NoTls)?;
        Ok(Db::Pg(Box::new(Pg {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
        })))
    }

    pub fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }

    fn pg_statement(pg: &Pg, sql: &str) -> Result<postgres::Statement> {
        if let Some(st) = pg.statements.borrow().get(sql) {
            return Ok(st.clone());
        }
        let st = pg.client.borrow_mut().prepare(&pg_sql(sql))?;
        pg.statements
            .borrow_mut()
            .insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Run a statement; the number of rows it changed.
    pub fn exec(&self, sql: &str, params: &[&dyn ToParam]) -> Result<u64> {
        match self {
            Db::Lite(c) => {
                let n = c
                    .prepare_cached(sql)?
                    .execute(rusqlite::params_from_iter(lite_params(params)))?;
                Ok(n as u64)
            }
            Db::Pg(pg) => {
                let st = Db::pg_statement(pg, sql)?;
                let ps: Vec<P> = params.iter().map(|p| p.p()).collect();
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = ps
                    .iter()
                    .map(|p| p as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                Ok(pg.client.borrow_mut().execute(&st, &refs)?)
            }
        }
    }

    /// Statements without parameters, several at once (schema, pragmas).
    pub fn batch(&self, sql: &str) -> Result<()> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg(pg) => Ok(pg.client.borrow_mut().batch_execute(sql)?),
        }
    }

    /// Every row, one at a time (streamed: a large result is not held).
    pub fn each(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        match self {
            Db::Lite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(lite_params(params)))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Lite(r))?;
                }
                Ok(())
            }
            Db::Pg(pg) => {
                use postgres::fallible_iterator::FallibleIterator;
                let st = Db::pg_statement(pg, sql)?;
                let ps: Vec<P> = params.iter().map(|p| p.p()).collect();
                let mut client = pg.client.borrow_mut();
                let mut rows = client.query_raw(&st, ps.iter())?;
                while let Some(r) = rows.next()? {
                    f(&Row::Pg(&r))?;
                }
                Ok(())
            }
        }
    }

    /// Every row, mapped.
    pub fn all<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each(sql, params, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row, if any.
    pub fn opt<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row, which must exist.
    pub fn one<T>(
        &self,
        sql: &str,
        params: &[&dyn ToParam],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.opt(sql, params, f)?
            .ok_or_else(|| Error::Other(format!("store: no row for {sql}")))
    }

    /// Start a transaction (SQLite: IMMEDIATE, the write lock taken at once);
    /// it rolls back when dropped without [`Tx::commit`].
    pub fn begin(&self) -> Result<Tx<'_>> {
        self.batch(if self.is_pg() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        })?;
        Ok(Tx {
            db: self,
            done: false,
        })
    }
}

/// An open transaction.
pub struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 OR d = '?'"
        );
    }

    #[test]
    fn values_cross_both_ways_on_sqlite() {
        let db = Db::Lite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch("CREATE TABLE t(a INTEGER, b TEXT, c REAL)")
            .unwrap();
        let none: Option<&str> = None;
        db.exec(
            "INSERT INTO t(a, b, c) VALUES(?1, ?2, ?3)",
            params![7u64, "x", 1.5],
        )
        .unwrap();
        db.exec("INSERT INTO t(a, b) VALUES(?1, ?2)", params![-1i64, none])
            .unwrap();
        let rows = db
            .all("SELECT a, b, c FROM t ORDER BY a", params![], |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<Option<String>>(1)?,
                    r.get::<Option<f64>>(2)?,
                ))
            })
            .unwrap();
        assert_eq!(
            rows,
            vec![(-1, None, None), (7, Some("x".into()), Some(1.5))]
        );
        let tx = db.begin().unwrap();
        tx.exec("DELETE FROM t", params![]).unwrap();
        drop(tx);
        assert_eq!(
            db.one("SELECT count(*) FROM t", params![], |r| r.get::<u64>(0))
                .unwrap(),
            2,
            "rolled back"
        );
        assert!(db
            .one("SELECT b FROM t WHERE a = -1", params![], |r| r
                .get::<String>(0))
            .is_err());
    }
}
