//! Live reload: `kb/` changes → a new index built aside → swapped in.
//!
//! The service must pick up a copywriter's edit without a restart and must
//! never serve a broken state. A [`Reloader`] rebuilds when the knowledge
//! base's fingerprint differs from the served index's, one reload at a time.
//! An invalid knowledge base is reported (in the log and in
//! `GET /v1/status`) and the last good index keeps serving; searches that
//! started on the old index finish on it, because a search holds its own
//! `Arc` of the index.
//!
//! [`Reloader::watch`] follows `kb/` with the operating system's file
//! notifications, debounced, so that an editor's save-by-rename or a `git
//! pull` touching fifty files causes one rebuild; where notifications are not
//! available (some network and container mounts) it falls back to polling.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::index::{self, SearchIndex, SharedIndex};
use crate::kb::{self, Diagnostic, KbError};

/// Quiet time after the last file event before a rebuild starts.
pub const DEBOUNCE: Duration = Duration::from_millis(250);
/// A stream of events (a long `git checkout`) still rebuilds this often.
pub const MAX_DELAY: Duration = Duration::from_secs(2);
/// How often the polling fallback compares fingerprints.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Even with notifications, compare fingerprints this often: a watch is lost
/// when `kb/` itself is replaced (`rm -r kb && cp -r …`, some deploy tools).
pub const SAFETY_POLL: Duration = Duration::from_secs(30);
/// Diagnostics kept for `/v1/status`; the count is always exact.
const MAX_REPORTED: usize = 200;

/// What one reload did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The served index already matches the knowledge base.
    Unchanged { revision: String },
    /// A new index was built and is now served.
    Reloaded { revision: String, entries: usize, warnings: usize, took_ms: u64 },
    /// The knowledge base has errors; the last good index keeps serving.
    Invalid { errors: Vec<Diagnostic>, error_count: usize },
    /// Reading the files or building the index failed.
    Failed { message: String },
}

/// What `GET /v1/status` shows about reloading.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    /// `ok` when the served index matches `kb/`, `error` while `kb/` is invalid.
    pub state: &'static str,
    /// How changes are noticed: `notify`, `poll` or `off`.
    pub watching: &'static str,
    pub kb: String,
    /// The last good index: the one being served.
    pub last_good: LastGood,
    pub reloads: u64,
    pub failures: u64,
    /// When the last reload attempt that did something ended (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reload_ms: Option<u64>,
    /// Since when `kb/` has been invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// The errors that keep the current `kb/` from being served.
    pub errors: Vec<Diagnostic>,
    pub error_count: usize,
    /// A failure that is not about content (disk full, permissions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Warnings of the served knowledge base.
    pub warnings: Vec<Diagnostic>,
    pub warning_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastGood {
    pub revision: String,
    pub built_at: String,
    pub entries: usize,
}

/// Rebuilds and swaps the served index when `kb/` changes.
pub struct Reloader {
    kb_dir: PathBuf,
    index_dir: PathBuf,
    index: Arc<SharedIndex>,
    status: Mutex<State>,
    /// Held for the whole of a reload: builds never overlap.
    running: Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    watching: &'static str,
    reloads: u64,
    failures: u64,
    last_attempt_ms: Option<i64>,
    last_reload_ms: Option<u64>,
    failing_since_ms: Option<i64>,
    errors: Vec<Diagnostic>,
    error_count: usize,
    failure: Option<String>,
    warnings: Vec<Diagnostic>,
    warning_count: usize,
    /// Fingerprint of the invalid knowledge base last reported, so that
    /// polling does not re-check files nobody has touched.
    failed_fingerprint: Option<String>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Reloader {
    pub fn new(kb_dir: &Path, index_dir: &Path, index: Arc<SharedIndex>) -> Reloader {
        Reloader {
            kb_dir: kb_dir.to_path_buf(),
            index_dir: index_dir.to_path_buf(),
            index,
            status: Mutex::new(State { watching: "off", ..State::default() }),
            running: Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Brings the served index up to date with `kb/`, blocking until done.
    /// `trigger` names the cause in the log (`watch`, `admin`, `start`).
    pub fn reload(&self, trigger: &str) -> Outcome {
        let _running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let started = Instant::now();
        let served = self.index.current();
        // Another kefu version, other query options or another model (or
        // none) build differently: rebuild even if kb/ is the same.
        let same_build =
            served.manifest.kefu_version == env!("CARGO_PKG_VERSION") && served.manifest.built_as_configured();
        let fingerprint = kb::fingerprint(&self.kb_dir).ok();
        if same_build && fingerprint.as_deref() == Some(served.manifest.fingerprint.as_str()) {
            // Back to what is served (an edit reverted): nothing is wrong any more.
            let mut state = self.state();
            if state.error_count > 0 || state.failure.is_some() {
                tracing::info!(revision = %served.revision, "knowledge base matches the served index again");
                clear_failure(&mut state);
            }
            return Outcome::Unchanged { revision: served.revision.clone() };
        }
        {
            let state = self.state();
            if trigger != "admin" && fingerprint.is_some() && state.failed_fingerprint == fingerprint {
                return Outcome::Invalid { errors: state.errors.clone(), error_count: state.error_count };
            }
        }
        let outcome = self.rebuild(&served);
        let took_ms = started.elapsed().as_millis() as u64;
        let mut state = self.state();
        state.last_attempt_ms = Some(now_ms());
        match &outcome {
            Outcome::Reloaded { revision, entries, warnings, .. } => {
                state.reloads += 1;
                state.last_reload_ms = Some(took_ms);
                clear_failure(&mut state);
                tracing::info!(trigger, revision = %revision, entries, warnings, took_ms, "index reloaded");
            }
            Outcome::Invalid { errors, error_count } => {
                state.failures += 1;
                state.failing_since_ms.get_or_insert_with(now_ms);
                state.errors = errors.clone();
                state.error_count = *error_count;
                state.failure = None;
                state.failed_fingerprint = fingerprint;
                tracing::error!(
                    trigger,
                    errors = error_count,
                    revision = %served.revision,
                    "knowledge base has errors; still serving the last good index"
                );
                for error in errors.iter().take(20) {
                    tracing::error!("{error}");
                }
            }
            Outcome::Failed { message } => {
                state.failures += 1;
                state.failing_since_ms.get_or_insert_with(now_ms);
                state.failure = Some(message.clone());
                tracing::error!(trigger, revision = %served.revision, "reload failed: {message}; still serving the last good index");
            }
            Outcome::Unchanged { .. } => {}
        }
        outcome
    }

    fn rebuild(&self, served: &SearchIndex) -> Outcome {
        let kb = match kb::load(&self.kb_dir) {
            Ok(kb) => kb,
            Err(KbError::Invalid(errors)) => {
                let error_count = errors.len();
                return Outcome::Invalid { errors: errors.into_iter().take(MAX_REPORTED).collect(), error_count };
            }
            Err(err) => return Outcome::Failed { message: err.to_string() },
        };
        let started = Instant::now();
        let report = match index::build(&kb, &self.index_dir, &|_, _| {}) {
            Ok(report) => report,
            Err(err) => return Outcome::Failed { message: err.to_string() },
        };
        let next = match SearchIndex::open_generation(&self.index_dir, &report.revision) {
            Ok(next) => next,
            Err(err) => return Outcome::Failed { message: err.to_string() },
        };
        let entries = next.entries().len();
        tracing::debug!(from = %served.revision, to = %next.revision, "swapping index");
        self.index.replace(next);
        let mut state = self.state();
        state.warning_count = kb.warnings.len();
        state.warnings = kb.warnings.into_iter().take(MAX_REPORTED).collect();
        Outcome::Reloaded {
            revision: report.revision,
            entries,
            warnings: state.warning_count,
            took_ms: started.elapsed().as_millis() as u64,
        }
    }

    /// Records the warnings of the knowledge base the served index was built
    /// from (at start-up, when no reload has run yet).
    /// Reports the warnings of the served index's knowledge base (`count`
    /// of them in all), unless a reload has already reported newer ones.
    pub fn set_warnings(&self, count: usize, warnings: Vec<Diagnostic>) {
        let mut state = self.state();
        if state.reloads > 0 {
            return; // a reload already reported the newer knowledge base's warnings
        }
        state.warning_count = count;
        state.warnings = warnings.into_iter().take(MAX_REPORTED).collect();
    }

    pub fn status(&self) -> ReloadStatus {
        let served = self.index.current();
        let state = self.state();
        let time = |ms: Option<i64>| ms.map(crate::gaps::format_time);
        ReloadStatus {
            state: if state.error_count > 0 || state.failure.is_some() { "error" } else { "ok" },
            watching: state.watching,
            kb: self.kb_dir.display().to_string(),
            last_good: LastGood {
                revision: served.revision.clone(),
                built_at: crate::gaps::format_time(served.manifest.built_at_ms as i64),
                entries: served.entries().len(),
            },
            reloads: state.reloads,
            failures: state.failures,
            last_attempt_at: time(state.last_attempt_ms),
            last_reload_ms: state.last_reload_ms,
            failing_since: time(state.failing_since_ms),
            errors: state.errors.clone(),
            error_count: state.error_count,
            failure: state.failure.clone(),
            warnings: state.warnings.clone(),
            warning_count: state.warning_count,
        }
    }

    /// Starts following `kb/` on a background thread; reloads run there.
    /// The watch ends when the returned handle is dropped.
    pub fn watch(self: &Arc<Self>) -> Watch {
        let (tx, rx) = mpsc::channel::<()>();
        let watcher = {
            let tx = tx.clone();
            // notify reports paths as the watch was given; the canonical
            // form covers a relative kb/ reported absolute.
            let roots = [self.kb_dir.clone(), self.kb_dir.canonicalize().unwrap_or_else(|_| self.kb_dir.clone())];
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    if is_edit(&event, &roots) {
                        let _ = tx.send(());
                    }
                }
            })
            .and_then(|mut watcher| {
                use notify::Watcher;
                watcher.watch(&self.kb_dir, notify::RecursiveMode::Recursive).map(|()| watcher)
            })
        };
        let (watcher, mode) = match watcher {
            Ok(watcher) => (Some(watcher), "notify"),
            Err(err) => {
                tracing::warn!(
                    kb = %self.kb_dir.display(),
                    "file notifications unavailable ({err}); checking kb/ every {} s instead",
                    POLL_INTERVAL.as_secs()
                );
                (None, "poll")
            }
        };
        self.state().watching = mode;
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let reloader = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("kefu-reload".into())
            .spawn(move || {
                if mode == "poll" {
                    poll_loop(&reloader, &stop_rx);
                } else {
                    debounce_loop(&reloader, &rx, &stop_rx);
                }
            })
            .map_err(|err| tracing::error!("cannot start watching kb/ ({err}); POST /v1/admin/reload still reloads"))
            .ok();
        if thread.is_none() {
            self.state().watching = "off";
        }
        drop(tx);
        Watch { _watcher: watcher, stop: Some(stop_tx), thread }
    }
}

fn clear_failure(state: &mut State) {
    state.errors.clear();
    state.error_count = 0;
    state.failure = None;
    state.failing_since_ms = None;
    state.failed_fingerprint = None;
}

/// Whether a file event may change the knowledge base. Reads (including
/// kefu's own), hidden files inside `kb/` (`.git`) and editors' swap and
/// backup files do not. Only the part of the path below a root counts: a
/// knowledge base may itself live under a hidden folder (`~/.config`, a
/// temporary `.tmpXXXX`).
fn is_edit(event: &notify::Event, roots: &[PathBuf]) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) => return false,
        _ => {}
    }
    event.paths.iter().any(|path| {
        let inside = roots.iter().find_map(|root| path.strip_prefix(root).ok()).unwrap_or(path);
        let hidden = inside.components().any(|c| c.as_os_str().to_string_lossy().starts_with('.'));
        let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
        !(hidden || name.ends_with('~') || name.ends_with(".swp") || name.ends_with(".swx") || name == "4913")
    })
}

fn debounce_loop(reloader: &Reloader, events: &mpsc::Receiver<()>, stop: &mpsc::Receiver<()>) {
    let mut checked = Instant::now();
    loop {
        // Wake up now and then to notice a stop request.
        match events.recv_timeout(Duration::from_millis(500)) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                if stop.try_recv() != Err(mpsc::TryRecvError::Empty) {
                    return;
                }
                if checked.elapsed() >= SAFETY_POLL {
                    checked = Instant::now();
                    reloader.reload("poll");
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let first = Instant::now();
        // Wait for quiet, but not forever.
        loop {
            let left = MAX_DELAY.saturating_sub(first.elapsed());
            if left.is_zero() {
                break;
            }
            match events.recv_timeout(DEBOUNCE.min(left)) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        if stop.try_recv() != Err(mpsc::TryRecvError::Empty) {
            return;
        }
        checked = Instant::now();
        reloader.reload("watch");
    }
}

fn poll_loop(reloader: &Reloader, stop: &mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(POLL_INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {
                reloader.reload("poll");
            }
            _ => return,
        }
    }
}

/// A running watch of `kb/`; dropping it stops the watch.
pub struct Watch {
    _watcher: Option<notify::RecommendedWatcher>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};

    use super::is_edit;

    fn event(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn edits_count_wherever_the_knowledge_base_lives() {
        let roots = [PathBuf::from("/tmp/.tmpAbC/kb")];
        let write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(is_edit(&event(write, "/tmp/.tmpAbC/kb/faq/soak.md"), &roots), "a kb under a hidden folder");
        assert!(is_edit(&event(EventKind::Create(CreateKind::File), "/tmp/.tmpAbC/kb/new.md"), &roots));
        assert!(!is_edit(&event(write, "/tmp/.tmpAbC/kb/.git/index"), &roots), "hidden inside kb/");
        assert!(!is_edit(&event(write, "/tmp/.tmpAbC/kb/faq/.soak.md.swp"), &roots));
        assert!(!is_edit(&event(write, "/tmp/.tmpAbC/kb/faq/soak.md~"), &roots));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!is_edit(&event(read, "/tmp/.tmpAbC/kb/faq/soak.md"), &roots), "reads are not edits");
    }
}
