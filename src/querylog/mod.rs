//! The query log: every search and every piece of feedback, with personal
//! data masked, in an embedded SQLite database under `--data`.
//!
//! Logging must never slow a search down. The request path only does a
//! `try_send` into a bounded queue; one writer thread masks, normalises and
//! writes events in batches (one transaction per
//! [`Options::flush_interval`] while searches arrive). When the queue is full the event is counted
//! as dropped, never waited for. Shutdown drains the queue; after a crash at
//! most the last flush interval of events is missing, and SQLite's WAL keeps
//! the file consistent.

pub mod mask;
pub mod store;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::analysis::Simplifier;
use crate::model::{Confidence, Platform};
pub use store::{Filter, Store, StoreError};

/// Where a search came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An agent's console: the buyer asked a person.
    Agent,
    /// The product-page widget: the buyer asked the page.
    Widget,
    /// Any other caller of the HTTP API.
    Api,
    /// `kefu search` in a terminal.
    Cli,
}

impl Source {
    pub const ALL: [Source; 4] = [Source::Agent, Source::Widget, Source::Api, Source::Cli];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Agent => "agent",
            Source::Widget => "widget",
            Source::Api => "api",
            Source::Cli => "cli",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a source name that is not one of [`Source::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {0:?} (expected one of: agent, widget, api, cli)")]
pub struct UnknownSource(pub String);

impl FromStr for Source {
    type Err = UnknownSource;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSource(s.to_string()))
    }
}

/// One search as the request path hands it over: the raw query, which the
/// writer masks before anything is stored.
#[derive(Debug, Clone)]
pub struct SearchEvent {
    pub query_id: String,
    pub at_ms: i64,
    pub source: Source,
    pub query: String,
    pub product: Option<String>,
    pub platform: Option<Platform>,
    pub public_only: bool,
    /// Entry ids and scores of the hits, best first.
    pub hits: Vec<(String, f32)>,
    pub confidence: Confidence,
    pub latency_us: u64,
    /// The index revision that answered.
    pub revision: String,
}

/// `POST /v1/feedback`: whether an answer helped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackEvent {
    pub at_ms: i64,
    pub query_id: String,
    pub entry_id: String,
    pub helpful: bool,
    pub source: Source,
}

/// A search ready for the database: masked and normalised.
#[derive(Debug, Clone)]
pub(crate) struct StoredSearch {
    pub query_id: String,
    pub at_ms: i64,
    pub source: Source,
    pub query: String,
    pub normalized: String,
    pub product: Option<String>,
    pub platform: Option<&'static str>,
    pub public_only: bool,
    pub confidence: Confidence,
    pub hits: Vec<(String, f32)>,
    pub hits_json: String,
    pub latency_us: u64,
    pub revision: String,
}

/// How the log behaves; the defaults suit a shop's server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Events the queue holds before new ones are dropped.
    pub capacity: usize,
    /// Longest time an event waits in memory before it is committed.
    pub flush_interval: Duration,
    /// Searches and feedback older than this are deleted.
    pub retention: Duration,
}

/// How often events past retention are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Default retention: 90 days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

impl Default for Options {
    fn default() -> Self {
        Options {
            capacity: 65_536,
            flush_interval: Duration::from_millis(200),
            retention: Duration::from_secs(u64::from(DEFAULT_RETENTION_DAYS) * 86_400),
        }
    }
}

/// Counters of the log, for `/v1/status` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    pub enabled: bool,
    /// Events accepted into the queue.
    pub accepted: u64,
    /// Events committed to the database.
    pub written: u64,
    /// Events not logged because the queue was full or closed.
    pub dropped: u64,
    /// Events lost because the database write failed.
    pub failed: u64,
    /// Events waiting in the queue.
    pub queued: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

enum Message {
    Search(Box<SearchEvent>),
    Feedback(FeedbackEvent),
    Flush(SyncSender<()>),
    Shutdown,
}

/// Handle to the query log, shared by every request. A disabled log accepts
/// nothing and reports `enabled: false`.
pub struct QueryLog {
    inner: Option<Inner>,
}

struct Inner {
    tx: SyncSender<Message>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// To wake the writer early for a flush or shutdown.
    thread: std::thread::Thread,
    data_dir: PathBuf,
}

impl QueryLog {
    /// Opens the database in `data_dir` (creating it) and starts the writer.
    pub fn open(data_dir: &Path, options: Options) -> Result<QueryLog, StoreError> {
        let store = Store::open(data_dir)?;
        // Retention is enforced before anything else, then hourly.
        let cutoff = now_ms() - options.retention.as_millis() as i64;
        match store.purge_before(cutoff) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "query log: removed events past retention"),
            Err(err) => tracing::error!("query log retention failed: {err}"),
        }
        let (tx, rx) = mpsc::sync_channel(options.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let writer = Writer { store, options, counters: counters.clone(), simplifier: Simplifier::new().ok() };
        let handle = std::thread::Builder::new()
            .name("kefu-querylog".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| StoreError::Io { path: data_dir.to_path_buf(), source })?;
        let thread = handle.thread().clone();
        Ok(QueryLog {
            inner: Some(Inner {
                tx,
                counters,
                writer: Mutex::new(Some(handle)),
                thread,
                data_dir: data_dir.to_path_buf(),
            }),
        })
    }

    /// A log that records nothing (`--no-query-log`).
    pub fn disabled() -> QueryLog {
        QueryLog { inner: None }
    }

    /// The folder holding the database, when logging is on.
    pub fn data_dir(&self) -> Option<&Path> {
        self.inner.as_ref().map(|i| i.data_dir.as_path())
    }

    /// Queues a search without waiting; false if it was dropped.
    pub fn record_search(&self, event: SearchEvent) -> bool {
        self.send(Message::Search(Box::new(event)))
    }

    /// Queues feedback without waiting; false if it was dropped.
    pub fn record_feedback(&self, event: FeedbackEvent) -> bool {
        self.send(Message::Feedback(event))
    }

    fn send(&self, message: Message) -> bool {
        let Some(inner) = &self.inner else {
            return false;
        };
        match inner.tx.try_send(message) {
            Ok(()) => {
                inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until everything queued so far is committed (or `timeout`
    /// passes); true when it was. Reports call this so they see every search
    /// made before them.
    pub fn flush(&self, timeout: Duration) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        let (reply, done) = mpsc::sync_channel(1);
        let deadline = Instant::now() + timeout;
        // The queue may be full: retry until the deadline rather than block.
        let mut message = Message::Flush(reply);
        loop {
            match inner.tx.try_send(message) {
                Ok(()) => {
                    inner.thread.unpark();
                    break;
                }
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    inner.thread.unpark();
                    message = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        done.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
    }

    /// Drains the queue and stops the writer; later events are dropped.
    /// Called on graceful shutdown; safe to call twice.
    pub fn shutdown(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let handle = match inner.writer.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            // Blocking is fine here: the server has stopped taking requests.
            // The queue may be full while the writer sleeps out its flush
            // interval: wake it until the request fits.
            let mut message = Message::Shutdown;
            loop {
                inner.thread.unpark();
                match inner.tx.try_send(message) {
                    Ok(()) => break,
                    Err(TrySendError::Disconnected(_)) => break,
                    Err(TrySendError::Full(m)) => {
                        message = m;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            inner.thread.unpark();
            let _ = handle.join();
        }
    }

    pub fn stats(&self) -> LogStats {
        let Some(inner) = &self.inner else {
            return LogStats::default();
        };
        let c = &inner.counters;
        let accepted = c.accepted.load(Ordering::Relaxed);
        let written = c.written.load(Ordering::Relaxed);
        let failed = c.failed.load(Ordering::Relaxed);
        LogStats {
            enabled: true,
            accepted,
            written,
            dropped: c.dropped.load(Ordering::Relaxed),
            failed,
            queued: accepted.saturating_sub(written + failed),
        }
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The form questions are grouped by: masked, NFKC, lower case, simplified,
/// with punctuation, spaces and emoji removed.
pub fn normalize_question(simplifier: Option<&Simplifier>, masked: &str) -> String {
    let folded = match simplifier {
        Some(s) => crate::analysis::normalize(s, masked).text,
        None => masked.to_lowercase(),
    };
    folded.chars().filter(|c| c.is_alphanumeric()).collect()
}

struct Writer {
    store: Store,
    options: Options,
    counters: Arc<Counters>,
    simplifier: Option<Simplifier>,
}

impl Writer {
    /// Waits for the first event, lets more gather for one flush interval,
    /// then writes them all in one transaction. Senders never wake the
    /// writer per event (it is asleep, not waiting on the queue), which
    /// keeps logging's cost on a busy server to the `try_send` itself.
    fn run(mut self, rx: mpsc::Receiver<Message>) {
        let mut searches: Vec<StoredSearch> = Vec::new();
        let mut feedback: Vec<FeedbackEvent> = Vec::new();
        let mut waiters: Vec<SyncSender<()>> = Vec::new();
        let mut next_purge = Instant::now() + PURGE_EVERY;
        let mut reported_drops = 0;
        loop {
            let mut stop = false;
            let mut urgent = false;
            match rx.recv_timeout(PURGE_EVERY) {
                Ok(message) => self.take(message, &mut searches, &mut feedback, &mut waiters, &mut stop, &mut urgent),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => stop = true,
            }
            let pending = !searches.is_empty() || !feedback.is_empty();
            if pending && !stop && !urgent {
                // Flush and shutdown requests unpark this early.
                std::thread::park_timeout(self.options.flush_interval);
            }
            loop {
                match rx.try_recv() {
                    Ok(message) => {
                        self.take(message, &mut searches, &mut feedback, &mut waiters, &mut stop, &mut urgent)
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        stop = true;
                        break;
                    }
                }
            }
            self.write(&mut searches, &mut feedback);
            for waiter in waiters.drain(..) {
                let _ = waiter.try_send(());
            }
            if Instant::now() >= next_purge {
                self.purge();
                next_purge = Instant::now() + PURGE_EVERY;
            }
            let dropped = self.counters.dropped.load(Ordering::Relaxed);
            if dropped > reported_drops {
                tracing::warn!(dropped, "query log queue full: searches were served but not logged");
                reported_drops = dropped;
            }
            if stop {
                break;
            }
        }
    }

    fn take(
        &self,
        message: Message,
        searches: &mut Vec<StoredSearch>,
        feedback: &mut Vec<FeedbackEvent>,
        waiters: &mut Vec<SyncSender<()>>,
        stop: &mut bool,
        urgent: &mut bool,
    ) {
        match message {
            Message::Search(event) => searches.push(self.prepare(*event)),
            Message::Feedback(event) => feedback.push(event),
            Message::Flush(reply) => {
                waiters.push(reply);
                *urgent = true;
            }
            Message::Shutdown => {
                *stop = true;
                *urgent = true;
            }
        }
    }

    fn prepare(&self, event: SearchEvent) -> StoredSearch {
        let query = mask::mask(&event.query).into_owned();
        let normalized = normalize_question(self.simplifier.as_ref(), &query);
        let hits_json = serde_json::to_string(&event.hits).unwrap_or_else(|_| "[]".into());
        StoredSearch {
            query_id: event.query_id,
            at_ms: event.at_ms,
            source: event.source,
            query,
            normalized,
            product: event.product,
            platform: event.platform.map(Platform::as_str),
            public_only: event.public_only,
            confidence: event.confidence,
            hits: event.hits,
            hits_json,
            latency_us: event.latency_us,
            revision: event.revision,
        }
    }

    fn write(&mut self, searches: &mut Vec<StoredSearch>, feedback: &mut Vec<FeedbackEvent>) {
        if searches.is_empty() && feedback.is_empty() {
            return;
        }
        let n = (searches.len() + feedback.len()) as u64;
        match self.store.insert(searches, feedback) {
            Ok(()) => {
                self.counters.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(err) => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                tracing::error!(events = n, "query log write failed: {err}");
            }
        }
        searches.clear();
        feedback.clear();
    }

    fn purge(&self) {
        let cutoff = now_ms() - self.options.retention.as_millis() as i64;
        match self.store.purge_before(cutoff) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "query log: removed events past retention"),
            Err(err) => tracing::error!("query log retention failed: {err}"),
        }
    }
}
