//! Building a generation aside and swapping it in.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tantivy::{Index, TantivyDocument};

use super::forward::ForwardBuilder;
use super::schema::{self, Fields, ANY};
use super::vectors::{SentenceEncoder, Vectors};
use super::{
    io_err, BuildWarnings, IndexError, Manifest, SemanticManifest, ANALYSIS, CURRENT, ENTRIES, FORMAT_VERSION, FORWARD,
    MANIFEST, MAX_KEPT_WARNINGS, VECTORS, WARNINGS,
};
use crate::analysis::tokenizer::pre_tokenized;
use crate::analysis::{Analysis, AnalysisConfig, Analyzer, QueryOptions, Stream};
use crate::kb::KnowledgeBase;
use crate::model::Entry;

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// Name of the new generation, now current.
    pub revision: String,
    pub manifest: Manifest,
}

/// tantivy's indexing memory, split over its threads: enough that a
/// 100k-entry knowledge base is written in a handful of segments.
const WRITER_MEMORY: usize = 200_000_000;

/// Builds an index of `kb` into a new generation under `index_dir` and makes
/// it current. `progress(done, total)` is called as entries are indexed.
/// With the process's sentence encoder installed (see
/// [`crate::semantic::install`]), every phrasing also gets a vector.
pub fn build(kb: &KnowledgeBase, index_dir: &Path, progress: &dyn Fn(usize, usize)) -> Result<BuildReport, IndexError> {
    build_with(kb, index_dir, progress, &QueryOptions::installed())
}

/// [`build`] with explicit query-understanding options (to measure one
/// technique against another in a single process).
pub fn build_with(
    kb: &KnowledgeBase,
    index_dir: &Path,
    progress: &dyn Fn(usize, usize),
    options: &QueryOptions,
) -> Result<BuildReport, IndexError> {
    let encoder = crate::semantic::installed();
    build_full(kb, index_dir, progress, options, encoder.as_deref().map(|e| e as &dyn SentenceEncoder))
}

/// [`build_with`] with an explicit sentence encoder (`None`: lexical only).
pub fn build_full(
    kb: &KnowledgeBase,
    index_dir: &Path,
    progress: &dyn Fn(usize, usize),
    options: &QueryOptions,
    encoder: Option<&dyn SentenceEncoder>,
) -> Result<BuildReport, IndexError> {
    let started = Instant::now();
    std::fs::create_dir_all(index_dir).map_err(io_err(index_dir))?;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let name = format!("gen-{now_ms:014}-{:08x}", rand_suffix());
    let tmp = index_dir.join(format!(".tmp-{name}"));
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let result = write_generation(kb, &tmp, progress, started, now_ms, options).and_then(|mut manifest| {
        // Vectors go in before the manifest is final: a generation is
        // complete with them or not at all.
        if let Some(encoder) = encoder {
            manifest.semantic = Some(write_vectors(kb, &tmp, index_dir, encoder)?);
            write_json(&tmp.join(MANIFEST), &manifest)?;
        }
        Ok(manifest)
    });
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
    };
    // Swap and clean up under a lock so that concurrent builds (a `kefu
    // index` while `kefu serve` rebuilds) never delete each other's current.
    let lock_path = index_dir.join(".lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    let dir = index_dir.join(&name);
    std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    let current_tmp = index_dir.join(format!(".{CURRENT}.{name}"));
    let mut file = std::fs::File::create(&current_tmp).map_err(io_err(&current_tmp))?;
    file.write_all(format!("{name}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io_err(&current_tmp))?;
    std::fs::rename(&current_tmp, index_dir.join(CURRENT)).map_err(io_err(index_dir))?;
    // Make the rename durable before older generations go.
    std::fs::File::open(index_dir).and_then(|d| d.sync_all()).map_err(io_err(index_dir))?;
    collect_garbage(index_dir);
    drop(lock);
    Ok(BuildReport { revision: name, manifest })
}

fn rand_suffix() -> u32 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

fn write_generation(
    kb: &KnowledgeBase,
    dir: &Path,
    progress: &dyn Fn(usize, usize),
    started: Instant,
    now_ms: u64,
    options: &QueryOptions,
) -> Result<Manifest, IndexError> {
    let config = AnalysisConfig { dict: kb.dict.clone(), synonyms: kb.synonyms.clone(), options: *options };
    let analyzer = Arc::new(Analyzer::new(&config)?);
    let index = Index::create_in_dir(dir, schema::build_schema())?;
    schema::register_tokenizers(&index, &analyzer);
    let fields = Fields::resolve(&index.schema())?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let mut writer = index.writer_with_num_threads::<TantivyDocument>(threads, WRITER_MEMORY)?;
    let total = kb.entries.len();
    let mut phrasings = 0;
    let mut forward = ForwardBuilder::default();
    for (ord, entry) in kb.entries.iter().enumerate() {
        let analyses: Vec<Analysis> = entry.phrasings().map(|p| analyzer.analyze(p)).collect();
        for doc in entry_documents(&analyzer, &fields, ord as u64, entry, &analyses) {
            writer.add_document(doc)?;
        }
        forward.add_entry(&analyses);
        phrasings += analyses.len();
        if ord % 256 == 0 || ord + 1 == total {
            progress(ord + 1, total);
        }
    }
    writer.commit()?;
    // One segment: every search looks each term up and walks its postings
    // once per segment, and the writer's threads each left one.
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()?;

    forward.write(&dir.join(FORWARD))?;
    write_json(&dir.join(ENTRIES), &kb.entries)?;
    write_json(&dir.join(ANALYSIS), &config)?;
    let warnings = BuildWarnings {
        count: kb.warnings.len(),
        first: kb.warnings.iter().take(MAX_KEPT_WARNINGS).cloned().collect(),
    };
    write_json(&dir.join(WARNINGS), &warnings)?;
    let manifest = Manifest {
        format: FORMAT_VERSION,
        fingerprint: kb.fingerprint.clone(),
        built_at_ms: now_ms,
        entries: total,
        phrasings,
        timed: kb.entries.iter().filter(|e| e.is_timed()).count(),
        build_ms: started.elapsed().as_millis() as u64,
        kefu_version: env!("CARGO_PKG_VERSION").to_string(),
        options: *options,
        semantic: None,
    };
    // Written last: a generation without a manifest is incomplete.
    write_json(&dir.join(MANIFEST), &manifest)?;
    Ok(manifest)
}

/// Encodes every phrasing, reusing the current generation's vectors for
/// text that did not change.
fn write_vectors(
    kb: &KnowledgeBase,
    dir: &Path,
    index_dir: &Path,
    encoder: &dyn SentenceEncoder,
) -> Result<SemanticManifest, IndexError> {
    let started = Instant::now();
    let previous = std::fs::read_to_string(index_dir.join(CURRENT))
        .ok()
        .and_then(|name| Vectors::read(&index_dir.join(name.trim()).join(VECTORS)).ok());
    let (vectors, report) = Vectors::build(&kb.entries, encoder, previous.as_ref());
    vectors.write(&dir.join(VECTORS))?;
    Ok(SemanticManifest {
        model: encoder.model_id().to_string(),
        rows: report.rows,
        encoded: report.encoded,
        encode_ms: started.elapsed().as_millis() as u64,
    })
}

/// The documents of one entry: one per phrasing, one for the body.
fn entry_documents(
    analyzer: &Analyzer,
    fields: &Fields,
    ord: u64,
    entry: &Entry,
    analyses: &[Analysis],
) -> Vec<TantivyDocument> {
    let filters = |doc: &mut TantivyDocument| {
        doc.add_u64(fields.ord, ord);
        if entry.products.is_empty() {
            doc.add_text(fields.product, ANY);
        }
        for product in &entry.products {
            doc.add_text(fields.product, product);
        }
        if entry.platforms.is_empty() {
            doc.add_text(fields.platform, ANY);
        }
        for platform in &entry.platforms {
            doc.add_text(fields.platform, platform.as_str());
        }
        doc.add_text(fields.audience, entry.audience.as_str());
        doc.add_i64(fields.valid_from, entry.valid_from.map_or(i64::MIN, |t| t.as_millisecond()));
        doc.add_i64(fields.valid_to, entry.valid_to.map_or(i64::MAX, |t| t.as_millisecond()));
    };
    let mut docs = Vec::new();
    for (i, (phrasing, analysis)) in entry.phrasings().zip(analyses).enumerate() {
        let mut doc = TantivyDocument::default();
        filters(&mut doc);
        doc.add_u64(fields.phrasing, i as u64);
        doc.add_pre_tokenized_text(fields.q_words, pre_tokenized(phrasing, analysis, Stream::Words));
        doc.add_pre_tokenized_text(fields.q_bigrams, pre_tokenized(phrasing, analysis, Stream::Bigrams));
        doc.add_pre_tokenized_text(fields.q_chars, pre_tokenized(phrasing, analysis, Stream::Chars));
        docs.push(doc);
    }
    let mut body = TantivyDocument::default();
    filters(&mut body);
    let title = format!("{} {}", entry.title, entry.tags.join(" "));
    body.add_pre_tokenized_text(fields.t_words, pre_tokenized(&title, &analyzer.analyze(&title), Stream::Words));
    let answer = &entry.answer_text;
    body.add_pre_tokenized_text(fields.a_words, pre_tokenized(answer, &analyzer.analyze(answer), Stream::Words));
    docs.push(body);
    docs
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), IndexError> {
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, value)
        .map_err(|err| IndexError::Io { path: path.to_path_buf(), source: err.into() })?;
    out.flush().map_err(io_err(path))?;
    out.get_ref().sync_all().map_err(io_err(path))
}

/// Removes generations older than the previous one, and build leftovers
/// older than an hour (a build that old has died; a newer one may be running).
fn collect_garbage(index_dir: &Path) {
    let Ok(current) = std::fs::read_to_string(index_dir.join(CURRENT)) else { return };
    let current = current.trim();
    let Ok(read) = std::fs::read_dir(index_dir) else { return };
    let mut generations = Vec::new();
    for item in read.flatten() {
        let name = item.file_name().to_string_lossy().to_string();
        if name.starts_with("gen-") && name != current {
            generations.push(name);
        } else if name.starts_with(".tmp-") || name.starts_with(&format!(".{CURRENT}.")) {
            let old = item
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 3600));
            if old {
                let _ = std::fs::remove_dir_all(item.path()).or_else(|_| std::fs::remove_file(item.path()));
            }
        }
    }
    generations.sort();
    // Keep the newest older generation: a process that opened it a moment
    // ago keeps working, and it is the last good index to go back to.
    generations.pop();
    for name in generations {
        let _ = std::fs::remove_dir_all(index_dir.join(name));
    }
}
