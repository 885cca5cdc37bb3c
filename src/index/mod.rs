//! The on-disk index: a tantivy index plus the entries and analysis settings
//! it was built with, kept as numbered generations under the index folder.
//!
//! ```text
//! index/
//!   CURRENT              name of the generation being served
//!   gen-<millis>-<rand>/ tantivy files, entries.json, analysis.json, manifest.json
//! ```
//! A build writes a new generation aside and then replaces `CURRENT` with a
//! rename, so a reader always sees a complete index and a failed build
//! leaves the last good one in place.

mod build;
pub(crate) mod forward;
pub mod schema;
pub mod vectors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::analysis::pinyin::Lexicon;
use crate::analysis::{AnalysisConfig, AnalysisError, Analyzer, QueryOptions, Stream};
use crate::kb::{self, KbError};
use crate::model::Entry;
use crate::search::collect::{Bounds, DocTable, Scopes};
use crate::search::semantic::SemanticIndex;
use crate::search::snippet::Plainness;
use crate::semantic::Encoder;
pub use build::{build, build_full, build_with, BuildReport};
use forward::Forward;
pub use schema::Fields;

/// Bumped whenever the schema or analysis changes in a way that needs a rebuild.
pub const FORMAT_VERSION: u32 = 4;
const CURRENT: &str = "CURRENT";
const MANIFEST: &str = "manifest.json";
const ENTRIES: &str = "entries.json";
const ANALYSIS: &str = "analysis.json";
const FORWARD: &str = "forward.bin";
const WARNINGS: &str = "warnings.json";
const VECTORS: &str = "vectors.bin";
/// Warnings kept with a generation (the count covers all of them).
pub const MAX_KEPT_WARNINGS: usize = 200;

/// Why an index could not be built or opened.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A file of the index could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The analysis could not be set up.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// There is no index yet in this folder.
    #[error("no index in {0}: run `kefu index` first")]
    Missing(PathBuf),
    /// The knowledge base could not be loaded, and there is no index to fall back on.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
    /// The index is damaged or from an incompatible kefu version.
    #[error("index {path} is unusable: {reason}")]
    Unusable { path: PathBuf, reason: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IndexError + '_ {
    move |source| IndexError::Io { path: path.to_path_buf(), source }
}

/// What a generation was built from: enough to tell whether it is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// Fingerprint of the knowledge base it was built from.
    pub fingerprint: String,
    /// Build time, milliseconds since the Unix epoch.
    pub built_at_ms: u64,
    pub entries: usize,
    pub phrasings: usize,
    /// Entries with a validity window (`valid_from` / `valid_to`).
    #[serde(default)]
    pub timed: usize,
    pub build_ms: u64,
    pub kefu_version: String,
    /// The query-understanding techniques the index was built with.
    #[serde(default)]
    pub options: QueryOptions,
    /// Sentence vectors, when the index was built with an encoder.
    #[serde(default)]
    pub semantic: Option<SemanticManifest>,
}

impl Manifest {
    /// Whether the generation was built the way this process builds: the
    /// same query-understanding options, and vectors from the installed
    /// model (or none without one). Otherwise it is rebuilt, even if `kb/`
    /// did not change.
    pub fn built_as_configured(&self) -> bool {
        let model = crate::semantic::installed();
        self.options == QueryOptions::installed()
            && self.semantic.as_ref().map(|s| s.model.as_str()) == model.as_ref().map(|e| e.model_id())
    }
}

/// The vectors of a generation (`vectors.bin`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SemanticManifest {
    /// The encoder's model id; a search with another model ignores them.
    pub model: String,
    /// One per phrasing.
    pub rows: usize,
    /// Rows encoded by this build (the rest were reused).
    pub encoded: usize,
    pub encode_ms: u64,
}

/// An opened generation: everything a search needs, immutable once loaded.
/// Swapping in a newer index means swapping the whole `Arc<SearchIndex>`.
pub struct SearchIndex {
    pub(crate) reader: IndexReader,
    pub(crate) fields: Fields,
    pub(crate) analyzer: Arc<Analyzer>,
    entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// Doc id → entry and phrasing, per segment (read once, see `search::collect`).
    pub(crate) docs: DocTable,
    /// Each entry's filter fields, packed for the search collector.
    pub(crate) scopes: Scopes,
    /// Each term's statistics and highest score, learnt as searches use it.
    pub(crate) bounds: Bounds,
    /// Each phrasing's terms, for scoring candidates.
    pub(crate) forward: Forward,
    /// Which answers are already in normal form (for snippets).
    pub(crate) plainness: Plainness,
    /// The index's words by pinyin, when pinyin or typo correction is on.
    pub(crate) lexicon: Option<Lexicon>,
    /// Phrasing vectors and the encoder for queries: semantic ranking is on.
    pub(crate) semantic: Option<SemanticIndex>,
    pub manifest: Manifest,
    /// Generation folder name, reported as the index revision.
    pub revision: String,
}

impl SearchIndex {
    /// Opens the current generation in `index_dir`.
    pub fn open(index_dir: &Path) -> Result<SearchIndex, IndexError> {
        let current = index_dir.join(CURRENT);
        let name = match std::fs::read_to_string(&current) {
            Ok(name) => name.trim().to_string(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(IndexError::Missing(index_dir.to_path_buf()))
            }
            Err(err) => return Err(io_err(&current)(err)),
        };
        SearchIndex::open_generation(index_dir, &name)
    }

    /// Opens the generation `name` in `index_dir`, current or not: a reload
    /// opens exactly what it built, even if another build moved `CURRENT`.
    /// With the process's encoder installed and vectors from the same model
    /// in the generation, semantic ranking is on.
    pub fn open_generation(index_dir: &Path, name: &str) -> Result<SearchIndex, IndexError> {
        SearchIndex::open_generation_with(index_dir, name, crate::semantic::installed())
    }

    /// [`SearchIndex::open_generation`] with an explicit encoder (`None`:
    /// lexical only, whatever the generation holds).
    pub fn open_generation_with(
        index_dir: &Path,
        name: &str,
        encoder: Option<Arc<Encoder>>,
    ) -> Result<SearchIndex, IndexError> {
        let dir = index_dir.join(name);
        let unusable = |reason: String| IndexError::Unusable { path: dir.clone(), reason };
        let manifest: Manifest = read_json(&dir.join(MANIFEST))?;
        if manifest.format != FORMAT_VERSION {
            return Err(unusable(format!("format {} (this kefu reads {FORMAT_VERSION})", manifest.format)));
        }
        let config: AnalysisConfig = read_json(&dir.join(ANALYSIS))?;
        let entries: Vec<Entry> = read_json(&dir.join(ENTRIES))?;
        let analyzer = Arc::new(Analyzer::new(&config)?);
        let index = Index::open_in_dir(&dir)?;
        schema::register_tokenizers(&index, &analyzer);
        let fields = Fields::resolve(&index.schema())?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let by_id = entries.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
        let forward = Forward::read(&dir.join(FORWARD))?;
        let docs = DocTable::load(&reader.searcher(), &forward, [fields.q_words, fields.q_bigrams, fields.q_chars])?;
        let scopes = Scopes::new(&entries);
        let plainness_len = entries.len();
        let options = *analyzer.options();
        let lexicon = (options.pinyin || options.typos).then(|| Lexicon::new(forward.word_phrasings()));
        let semantic = match (encoder, &manifest.semantic) {
            (Some(encoder), Some(built)) if built.model == encoder.model_id() => {
                let vectors = vectors::Vectors::read(&dir.join(VECTORS))?;
                Some(SemanticIndex::new(encoder, vectors))
            }
            _ => None,
        };
        Ok(SearchIndex {
            reader,
            fields,
            analyzer,
            entries,
            by_id,
            docs,
            scopes,
            bounds: Bounds::default(),
            forward,
            plainness: Plainness::new(plainness_len),
            lexicon,
            semantic,
            manifest,
            revision: name.to_string(),
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    pub(crate) fn entry_at(&self, ord: usize) -> Option<&Entry> {
        self.entries.get(ord)
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The model semantic ranking uses, if it is on for this index.
    pub fn semantic_model(&self) -> Option<&str> {
        self.semantic.as_ref().map(|s| s.model())
    }

    /// Whether some indexed phrasing has the word `word` (normalised).
    pub fn knows_word(&self, word: &str) -> bool {
        self.forward.term_id(Stream::Words, word).is_some()
    }
}

/// The knowledge base's warnings when a generation was built: how many
/// there were, and the first [`MAX_KEPT_WARNINGS`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildWarnings {
    pub count: usize,
    pub first: Vec<crate::kb::Diagnostic>,
}

impl SearchIndex {
    /// The warnings saved with this generation, so that a server starting on
    /// an up-to-date index reports them without loading the knowledge base
    /// again (on 100k entries that took 4 s and 400 MB).
    pub fn build_warnings(&self, index_dir: &Path) -> Option<BuildWarnings> {
        read_json(&index_dir.join(&self.revision).join(WARNINGS)).ok()
    }
}

/// The manifest of the current generation, if there is a readable one.
pub fn current_manifest(index_dir: &Path) -> Option<Manifest> {
    let name = std::fs::read_to_string(index_dir.join(CURRENT)).ok()?;
    read_json(&index_dir.join(name.trim()).join(MANIFEST)).ok()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, IndexError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes)
        .map_err(|err| IndexError::Unusable { path: path.to_path_buf(), reason: err.to_string() })
}

/// The index being served, replaceable while searches run: a search takes
/// the current `Arc` and finishes on it even if a newer index is swapped in.
pub struct SharedIndex(RwLock<Arc<SearchIndex>>);

impl SharedIndex {
    pub fn new(index: SearchIndex) -> Self {
        SharedIndex(RwLock::new(Arc::new(index)))
    }

    pub fn current(&self) -> Arc<SearchIndex> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, index: SearchIndex) {
        let next = Arc::new(index);
        match self.0.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}

/// What [`refresh`] did.
#[derive(Debug)]
pub enum Refresh {
    /// The index was built from the same knowledge base.
    UpToDate,
    /// A new generation was built.
    Built(BuildReport),
    /// The knowledge base is invalid; the last good index stays in place.
    KeptLastGood(KbError),
}

/// Makes sure `index_dir` serves `kb_dir`: builds when there is no index or
/// the knowledge base changed. An invalid knowledge base never replaces a
/// working index; it is an error only when there is nothing to fall back on.
pub fn refresh(kb_dir: &Path, index_dir: &Path, progress: &dyn Fn(usize, usize)) -> Result<Refresh, IndexError> {
    let current = current_manifest(index_dir).filter(|m| m.format == FORMAT_VERSION);
    if let Some(manifest) = &current {
        // Another kefu version may analyse text differently: rebuild.
        let same_kefu = manifest.kefu_version == env!("CARGO_PKG_VERSION");
        if same_kefu
            && manifest.built_as_configured()
            && kb::fingerprint(kb_dir).is_ok_and(|f| f == manifest.fingerprint)
        {
            return Ok(Refresh::UpToDate);
        }
    }
    match kb::load(kb_dir) {
        Ok(loaded) => Ok(Refresh::Built(build(&loaded, index_dir, progress)?)),
        Err(err) if current.is_some() => Ok(Refresh::KeptLastGood(err)),
        Err(err) => Err(err.into()),
    }
}
