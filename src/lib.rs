//! kefu: knowledge-base and FAQ search for Chinese e-commerce customer service.
//!
//! Data flows through one module per stage:
//! - [`model`]: the types the stages share (`Entry`, `Hit`, `Confidence`), no I/O.
//! - [`kb`]: reads the Markdown knowledge base (front matter, `##` entries,
//!   相似问, `dict.txt`, `synonyms.txt`) and reports problems as `path:line`.
//! - [`analysis`]: normalisation, jieba segmentation, filler removal, synonyms
//!   and character n-grams, identical for indexed text and queries.
//! - [`semantic`]: an offline multilingual sentence encoder (USE v3) that
//!   turns a question into a 512-d vector; the index stores one per phrasing
//!   and search fuses their similarity with the lexical score.
//! - [`index`]: the tantivy schema, building a new index aside and swapping it
//!   in atomically, and opening the current one.
//! - [`search`]: a query → ranked hits (one per entry) with a confidence.
//! - [`http`]: the axum routes that serve search, entries, feedback, gaps and
//!   product FAQs, behind access keys, and the browser pages (the product-page
//!   widget and the agent console).
//! - [`config`]: `kefu.toml`: access keys, rate limits, query techniques and
//!   the semantic weight.
//! - [`querylog`]: every search and feedback, masked, in SQLite under `--data`.
//! - [`gaps`]: unanswered questions clustered into work for copywriters.
//! - [`reload`]: watching `kb/` and swapping in a rebuilt index, never a broken one.
//! - [`preview`]: golden queries and what an edit of `kb/` changes.
// No `unsafe` but one audited block: the AVX-512 VNNI multiply-add in
// `semantic::matmul::quantized`, which pulp does not wrap (measured there).
// `deny` rather than `forbid` so that block alone can allow it.
#![deny(unsafe_code)]

pub mod analysis;
pub mod config;
pub mod gaps;
pub mod http;
pub mod index;
pub mod kb;
pub mod model;
pub mod preview;
pub mod querylog;
pub mod reload;
pub mod search;
pub mod semantic;
