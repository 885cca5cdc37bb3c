//! Query encodings off the search thread, batched under load.
//!
//! A fused search needs two things that do not depend on each other: the
//! lexical ranking and the query's sentence vector. The HTTP handler hands
//! the query's text to an [`EncodingPool`] before it ranks lexically and
//! collects the vector afterwards, so on a quiet server a fused search costs
//! the longer of the two instead of their sum (an agent waits for one search
//! at a time).
//!
//! Under load, texts queue up while the pool's threads are busy, and each
//! thread takes all that are waiting as one batch: every weight matrix of
//! the encoder is then streamed from memory once per batch rather than once
//! per query (about a fifth less encoding work at batches of 8 or more), and
//! a question asked by several buyers at once is encoded once. A batch gives
//! every text the vector [`Encoder::encode`] gives it alone, bit for bit
//! (`batches_encode_like_single_queries` in `tests/it/semantic.rs`), so the
//! ranking does not depend on the load.
//!
//! A caller whose reply never comes (the pool could not start a thread, or
//! an encoding panicked) encodes on its own thread instead: the pool makes
//! searches faster, never less available.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use tokio::sync::oneshot;

use crate::index::vectors::QueryVector;
use crate::semantic::Encoder;

/// Most texts one thread encodes in one batch: past this the batch's
/// activations outgrow the cache and the gain is flat (measured from 8 to
/// 64 on the synthetic query stream).
const MAX_BATCH: usize = 32;

/// Encoder threads shared by the searches of one index generation; they
/// start on the first submitted text and end when the pool is dropped.
pub(crate) struct EncodingPool {
    shared: Arc<Shared>,
    /// Threads started (0 if none could be): set once, on first use.
    threads: OnceLock<usize>,
}

struct Shared {
    encoder: Arc<Encoder>,
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or the pool closes.
    work: Condvar,
    /// Texts encoded and batches run, for `/metrics`: their ratio says how
    /// much batching the load brings about.
    encoded: AtomicU64,
    batches: AtomicU64,
}

/// What the pool has done since its index generation was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncodingStats {
    /// Distinct texts encoded.
    pub encoded: u64,
    /// Batches they were encoded in.
    pub batches: u64,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Set when the pool is dropped: threads finish the queue and exit.
    closed: bool,
}

struct Job {
    text: String,
    reply: oneshot::Sender<Arc<QueryVector>>,
}

/// A submitted text's vector, to be collected with [`Submitted::vector`].
pub(crate) enum Submitted {
    Queued(oneshot::Receiver<Arc<QueryVector>>),
    /// The pool has no thread: the caller encodes itself.
    Unavailable,
}

impl EncodingPool {
    pub(crate) fn new(encoder: Arc<Encoder>) -> EncodingPool {
        let shared = Arc::new(Shared {
            encoder,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            encoded: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        });
        EncodingPool { shared, threads: OnceLock::new() }
    }

    pub(crate) fn stats(&self) -> EncodingStats {
        EncodingStats {
            encoded: self.shared.encoded.load(Ordering::Relaxed),
            batches: self.shared.batches.load(Ordering::Relaxed),
        }
    }

    /// Queues `text` for encoding.
    pub(crate) fn submit(&self, text: String) -> Submitted {
        if *self.threads.get_or_init(|| self.start()) == 0 {
            return Submitted::Unavailable;
        }
        let (reply, receiver) = oneshot::channel();
        self.shared.lock().jobs.push_back(Job { text, reply });
        self.shared.work.notify_one();
        Submitted::Queued(receiver)
    }

    /// One thread per two cores (one on two cores), at most four: encoding
    /// is about a third of a fused search's work, so more threads would only
    /// take turns with the search threads under load, and fewer queries
    /// would wait together to be batched.
    fn start(&self) -> usize {
        let wanted = (std::thread::available_parallelism().map_or(1, |n| n.get()) / 2).clamp(1, 4);
        let mut started = 0;
        for i in 0..wanted {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new().name(format!("kefu-encode-{i}")).spawn(move || shared.run());
            match spawned {
                Ok(_) => started += 1,
                Err(err) => tracing::warn!(error = %err, "could not start a query-encoding thread"),
            }
        }
        started
    }
}

impl Drop for EncodingPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self) {
        while let Some(batch) = self.next_batch() {
            self.encode(batch);
        }
    }

    /// Waits for work; `None` once the pool is closed and the queue empty.
    fn next_batch(&self) -> Option<Vec<Job>> {
        let mut queue = self.lock();
        loop {
            if !queue.jobs.is_empty() {
                let n = queue.jobs.len().min(MAX_BATCH);
                let batch: Vec<Job> = queue.jobs.drain(..n).collect();
                if !queue.jobs.is_empty() {
                    // Let an idle thread take the rest meanwhile.
                    self.work.notify_one();
                }
                return Some(batch);
            }
            if queue.closed {
                return None;
            }
            queue = self.work.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Encodes each distinct text of the batch once and replies to every
    /// job. A job whose caller has gone (its request was dropped) is skipped.
    fn encode(&self, batch: Vec<Job>) {
        let batch: Vec<Job> = batch.into_iter().filter(|job| !job.reply.is_closed()).collect();
        let mut distinct: Vec<&str> = Vec::with_capacity(batch.len());
        let mut slot: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
        let slots: Vec<usize> = batch
            .iter()
            .map(|job| {
                *slot.entry(job.text.as_str()).or_insert_with(|| {
                    distinct.push(job.text.as_str());
                    distinct.len() - 1
                })
            })
            .collect();
        if distinct.is_empty() {
            return;
        }
        // A panic drops the replies, and those callers encode themselves.
        let Ok(vectors) = catch_unwind(AssertUnwindSafe(|| self.encoder.encode_batch(&distinct))) else {
            tracing::error!(texts = distinct.len(), "query encoding panicked; the searches encode inline");
            return;
        };
        self.encoded.fetch_add(distinct.len() as u64, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
        let vectors: Vec<Arc<QueryVector>> = vectors.iter().map(|v| Arc::new(QueryVector::new(v))).collect();
        for (job, i) in batch.into_iter().zip(slots) {
            // The caller may have gone meanwhile; nothing to do then.
            let _ = job.reply.send(vectors[i].clone());
        }
    }
}

impl Submitted {
    /// The vector, from the pool or, if it cannot deliver, from `inline`.
    pub(crate) async fn vector(self, inline: impl FnOnce() -> Arc<QueryVector>) -> Arc<QueryVector> {
        match self {
            Submitted::Queued(receiver) => match receiver.await {
                Ok(vector) => vector,
                Err(_) => inline(),
            },
            Submitted::Unavailable => inline(),
        }
    }
}
