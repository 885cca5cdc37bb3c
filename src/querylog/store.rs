//! The query log's SQLite database: schema, writes and the aggregate reads
//! the gap report needs.
//!
//! WAL mode with `synchronous=NORMAL`: a committed batch survives the
//! process being killed (it is in the WAL file, which SQLite replays), and
//! readers (the gap report) never block the writer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{FeedbackEvent, Source, StoredSearch};
use crate::model::Confidence;

/// The database file inside `--data`.
pub const FILE_NAME: &str = "querylog.sqlite3";
/// Bumped with every schema change; older databases are migrated on open.
const SCHEMA_VERSION: i64 = 1;

/// Why the query log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("query log {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no query log at {0} yet: it is created when `kefu serve` or `kefu search` first runs")]
    Missing(PathBuf),
    #[error("query log {path} has schema version {found}; this kefu knows up to {SCHEMA_VERSION}")]
    TooNew { path: PathBuf, found: i64 },
    #[error("cannot create {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A connection to the query log.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Which logged searches a report looks at. Times are milliseconds since
/// the Unix epoch, `since` inclusive and `until` exclusive.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub since_ms: i64,
    pub until_ms: i64,
    pub product: Option<String>,
    pub platform: Option<String>,
    pub source: Option<Source>,
}

/// Searches grouped by identical masked text and context.
#[derive(Debug, Clone)]
pub struct QuestionRow {
    pub normalized: String,
    pub query: String,
    pub product: Option<String>,
    pub platform: Option<String>,
    pub source: String,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    /// The entry at the top when the question was asked, if any.
    pub top_id: Option<String>,
}

/// Searches and gaps on one day (Asia/Shanghai).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// Days since 1970-01-01 in UTC+8.
    pub day: i64,
    pub searches: u64,
    pub gaps: u64,
}

/// Feedback totals for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRow {
    pub entry_id: String,
    pub helpful: u64,
    pub unhelpful: u64,
}

/// Milliseconds in a day, and China's offset from UTC (no daylight saving).
pub const DAY_MS: i64 = 86_400_000;
pub const UTC8_MS: i64 = 8 * 3_600_000;

impl Store {
    /// Opens (creating if needed) the query log in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io { path: data_dir.to_path_buf(), source })?;
        let path = data_dir.join(FILE_NAME);
        let conn = Connection::open(&path).map_err(sqlite_err(&path))?;
        let store = Store { conn, path };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing query log for reading reports.
    pub fn open_existing(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(FILE_NAME);
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(sqlite_err(&path))?;
        let store = Store { conn, path };
        store.configure()?;
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&self) -> Result<(), StoreError> {
        self.conn.busy_timeout(Duration::from_secs(5)).map_err(sqlite_err(&self.path))?;
        self.conn
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(sqlite_err(&self.path))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let err = sqlite_err(&self.path);
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew { path: self.path.clone(), found: version });
        }
        if version < 1 {
            self.conn
                .execute_batch(
                    "BEGIN;
                     CREATE TABLE IF NOT EXISTS searches (
                         query_id   TEXT PRIMARY KEY,
                         ts         INTEGER NOT NULL,
                         source     TEXT NOT NULL,
                         query      TEXT NOT NULL,
                         normalized TEXT NOT NULL,
                         product    TEXT,
                         platform   TEXT,
                         public     INTEGER NOT NULL,
                         confidence TEXT NOT NULL,
                         top_id     TEXT,
                         top_score  REAL,
                         hits       TEXT NOT NULL,
                         latency_us INTEGER NOT NULL,
                         revision   TEXT NOT NULL
                     ) WITHOUT ROWID;
                     CREATE INDEX IF NOT EXISTS searches_ts ON searches (ts);
                     CREATE INDEX IF NOT EXISTS searches_confidence_ts ON searches (confidence, ts);
                     CREATE TABLE IF NOT EXISTS feedback (
                         id       INTEGER PRIMARY KEY,
                         ts       INTEGER NOT NULL,
                         query_id TEXT NOT NULL,
                         entry_id TEXT NOT NULL,
                         helpful  INTEGER NOT NULL,
                         source   TEXT NOT NULL
                     );
                     CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts);
                     PRAGMA user_version = 1;
                     COMMIT;",
                )
                .map_err(sqlite_err(&self.path))?;
        }
        Ok(())
    }

    /// Writes a batch in one transaction: one fsync-free commit per batch.
    pub(super) fn insert(&mut self, searches: &[StoredSearch], feedback: &[FeedbackEvent]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = sqlite_err(&path);
        let tx = self.conn.transaction().map_err(&err)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO searches (query_id, ts, source, query, normalized, product, platform,
                         public, confidence, top_id, top_score, hits, latency_us, revision)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(&err)?;
            for s in searches {
                insert
                    .execute(params![
                        s.query_id,
                        s.at_ms,
                        s.source.as_str(),
                        s.query,
                        s.normalized,
                        s.product,
                        s.platform,
                        s.public_only,
                        s.confidence.as_str(),
                        s.hits.first().map(|h| h.0.as_str()),
                        s.hits.first().map(|h| f64::from(h.1)),
                        s.hits_json,
                        s.latency_us as i64,
                        s.revision,
                    ])
                    .map_err(&err)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO feedback (ts, query_id, entry_id, helpful, source) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&err)?;
            for f in feedback {
                insert.execute(params![f.at_ms, f.query_id, f.entry_id, f.helpful, f.source.as_str()]).map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    /// Deletes everything older than `before_ms`; returns the rows removed.
    pub fn purge_before(&self, before_ms: i64) -> Result<usize, StoreError> {
        let err = sqlite_err(&self.path);
        let searches = self.conn.execute("DELETE FROM searches WHERE ts < ?1", [before_ms]).map_err(&err)?;
        let feedback = self.conn.execute("DELETE FROM feedback WHERE ts < ?1", [before_ms]).map_err(&err)?;
        Ok(searches + feedback)
    }

    /// How many searches are logged (all time).
    pub fn count_searches(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM searches", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sqlite_err(&self.path))
    }

    /// How many feedback events are logged (all time).
    pub fn count_feedback(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM feedback", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(sqlite_err(&self.path))
    }

    /// The stored (masked) text of one search, for tests and support.
    pub fn query_text(&self, query_id: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT query FROM searches WHERE query_id = ?1", [query_id], |r| r.get(0))
            .optional()
            .map_err(sqlite_err(&self.path))
    }

    /// Every stored query text (masked), for tests that look for leaks.
    pub fn all_query_texts(&self) -> Result<Vec<String>, StoreError> {
        let err = sqlite_err(&self.path);
        let mut stmt = self.conn.prepare("SELECT query || ' ' || normalized FROM searches").map_err(&err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Runs SQLite's own consistency check; `ok` when the file is sound.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(sqlite_err(&self.path))
    }

    /// Logged searches with the given confidences, grouped by text and context.
    pub fn questions(&self, filter: &Filter, confidences: &[Confidence]) -> Result<Vec<QuestionRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let wanted: Vec<String> = confidences.iter().map(|c| format!("'{}'", c.as_str())).collect();
        let (clause, values) = where_clause(filter);
        let sql = format!(
            "SELECT normalized, query, product, platform, source, count(*), min(ts), max(ts), top_id
             FROM searches WHERE {clause} AND confidence IN ({})
             GROUP BY normalized, query, product, platform, source, top_id",
            wanted.join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(QuestionRow {
                    normalized: r.get(0)?,
                    query: r.get(1)?,
                    product: r.get(2)?,
                    platform: r.get(3)?,
                    source: r.get(4)?,
                    count: r.get::<_, i64>(5)? as u64,
                    first_ms: r.get(6)?,
                    last_ms: r.get(7)?,
                    top_id: r.get(8)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Searches and gaps per day (UTC+8).
    pub fn days(&self, filter: &Filter) -> Result<Vec<DayRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let (clause, values) = where_clause(filter);
        let sql = format!(
            "SELECT (ts + {UTC8_MS}) / {DAY_MS} AS day, count(*), sum(confidence IN ('low', 'none'))
             FROM searches WHERE {clause} GROUP BY day ORDER BY day"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(&err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(DayRow { day: r.get(0)?, searches: r.get::<_, i64>(1)? as u64, gaps: r.get::<_, i64>(2)? as u64 })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Helpful / not helpful votes per entry in the window.
    pub fn feedback(&self, filter: &Filter) -> Result<Vec<FeedbackRow>, StoreError> {
        let err = sqlite_err(&self.path);
        let mut sql = String::from(
            "SELECT f.entry_id, sum(f.helpful), sum(1 - f.helpful) FROM feedback f
             LEFT JOIN searches s ON s.query_id = f.query_id
             WHERE f.ts >= ?1 AND f.ts < ?2",
        );
        let mut values: Vec<rusqlite::types::Value> = vec![filter.since_ms.into(), filter.until_ms.into()];
        if let Some(source) = filter.source {
            values.push(source.as_str().to_string().into());
            sql.push_str(&format!(" AND f.source = ?{}", values.len()));
        }
        for (column, value) in [("product", &filter.product), ("platform", &filter.platform)] {
            if let Some(value) = value {
                values.push(value.clone().into());
                sql.push_str(&format!(" AND s.{column} = ?{}", values.len()));
            }
        }
        sql.push_str(" GROUP BY f.entry_id");
        let mut stmt = self.conn.prepare(&sql).map_err(&err)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                Ok(FeedbackRow {
                    entry_id: r.get(0)?,
                    helpful: r.get::<_, i64>(1)? as u64,
                    unhelpful: r.get::<_, i64>(2)? as u64,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

impl Store {
    /// How often each entry answered a question well (confidence `high`,
    /// top hit) since `since_ms`, asked about `product` or about no product
    /// in particular: what "most asked" means on a product FAQ.
    pub fn asked_counts(&self, since_ms: i64, product: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let err = sqlite_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT top_id, count(*) FROM searches
                 WHERE ts >= ?1 AND confidence = 'high' AND top_id IS NOT NULL
                   AND (product = ?2 OR product IS NULL)
                 GROUP BY top_id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![since_ms, product], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }
}

/// `WHERE` conditions for a filter, with positional parameters.
fn where_clause(filter: &Filter) -> (String, Vec<rusqlite::types::Value>) {
    let mut clause = String::from("ts >= ?1 AND ts < ?2");
    let mut values: Vec<rusqlite::types::Value> = vec![filter.since_ms.into(), filter.until_ms.into()];
    let mut add = |column: &str, value: String| {
        values.push(value.into());
        clause.push_str(&format!(" AND {column} = ?{}", values.len()));
    };
    if let Some(product) = &filter.product {
        add("product", product.clone());
    }
    if let Some(platform) = &filter.platform {
        add("platform", platform.clone());
    }
    if let Some(source) = filter.source {
        add("source", source.as_str().to_string());
    }
    (clause, values)
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite { path: path.to_path_buf(), source }
}
