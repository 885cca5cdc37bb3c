//! Knowledge base: Markdown files with YAML front matter under `kb/` → [`Entry`]s.
//!
//! The format is a public contract (copywriters and other tools write it):
//! `products/`, `rules/` and `faq/` hold `.md` files whose `##` headings each
//! start one entry; `dict.txt` and `synonyms.txt` tune the Chinese analysis.
//! Every problem is reported as `path:line: message` and loading collects all
//! of them, so a copywriter can fix a whole file in one pass.

mod front_matter;
pub mod markdown;
mod resources;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{Audience, Entry, Kind, SourceRef};
pub use resources::{DictWord, SynonymGroup};

/// Folders of a knowledge base and the kind of entry each holds.
pub const KIND_FOLDERS: [(&str, Kind); 3] = [("products", Kind::Product), ("rules", Kind::Rule), ("faq", Kind::Faq)];
/// Optional jieba user dictionary at the knowledge-base root.
pub const DICT_FILE: &str = "dict.txt";
/// Optional synonym groups at the knowledge-base root.
pub const SYNONYMS_FILE: &str = "synonyms.txt";

/// One problem in the knowledge base, located for a copywriter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// File path as the user named it (knowledge-base folder joined with the file).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

/// Why a knowledge base could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The knowledge-base folder does not exist or is not a folder.
    #[error("knowledge base {0} is not a folder")]
    NotAFolder(PathBuf),
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The content has errors; every one is listed with file and line.
    #[error("{}", format_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

fn format_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = format!("the knowledge base has {} error(s):", diagnostics.len());
    for d in diagnostics {
        out.push_str("\n  ");
        out.push_str(&d.to_string());
    }
    out
}

/// A loaded, valid knowledge base.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    /// Entries in file order (files sorted by path), ids unique.
    pub entries: Vec<Entry>,
    /// Words from `dict.txt`.
    pub dict: Vec<DictWord>,
    /// Groups from `synonyms.txt`.
    pub synonyms: Vec<SynonymGroup>,
    /// Hash of every file that went into the knowledge base: equal
    /// fingerprints mean an index built from one serves the other.
    pub fingerprint: String,
}

/// A source file of the knowledge base: its path relative to the root and its bytes.
struct SourceFile {
    rel: String,
    bytes: Vec<u8>,
}

/// Lists and reads every file that makes up the knowledge base at `root`,
/// sorted by relative path so that loading is deterministic.
fn read_sources(root: &Path) -> Result<Vec<SourceFile>, KbError> {
    if !root.is_dir() {
        return Err(KbError::NotAFolder(root.to_path_buf()));
    }
    let mut files = Vec::new();
    for name in [DICT_FILE, SYNONYMS_FILE] {
        let path = root.join(name);
        if path.is_file() {
            files.push(path);
        }
    }
    for (folder, _) in KIND_FOLDERS {
        let dir = root.join(folder);
        if dir.is_dir() {
            collect_markdown(&dir, &mut files)?;
        }
    }
    let mut sources = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(&path).map_err(|source| KbError::Io { path: path.clone(), source })?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        sources.push(SourceFile { rel, bytes });
    }
    sources.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(sources)
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), KbError> {
    let read = std::fs::read_dir(dir).map_err(|source| KbError::Io { path: dir.to_path_buf(), source })?;
    for item in read {
        let item = item.map_err(|source| KbError::Io { path: dir.to_path_buf(), source })?;
        let path = item.path();
        let name = item.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue; // editor swap files, .git
        }
        if path.is_dir() {
            collect_markdown(&path, out)?;
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("md")) {
            out.push(path);
        }
    }
    Ok(())
}

fn fingerprint_of(sources: &[SourceFile]) -> String {
    let mut hasher = Sha256::new();
    for source in sources {
        hasher.update((source.rel.len() as u64).to_le_bytes());
        hasher.update(source.rel.as_bytes());
        hasher.update((source.bytes.len() as u64).to_le_bytes());
        hasher.update(&source.bytes);
    }
    hex(&hasher.finalize()[..16])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The fingerprint of the knowledge base at `root` without parsing it: cheap
/// enough to decide at start-up whether the index is stale.
pub fn fingerprint(root: &Path) -> Result<String, KbError> {
    Ok(fingerprint_of(&read_sources(root)?))
}

/// Loads and validates the knowledge base at `root`.
pub fn load(root: &Path) -> Result<KnowledgeBase, KbError> {
    let sources = read_sources(root)?;
    let display = |rel: &str| root.join(rel).display().to_string();
    let mut diagnostics = Vec::new();
    let mut entries = Vec::new();
    let mut dict = Vec::new();
    let mut synonyms = Vec::new();
    for source in &sources {
        let path = display(&source.rel);
        let text = match std::str::from_utf8(&source.bytes) {
            Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text),
            Err(err) => {
                let line = source.bytes[..err.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
                diagnostics.push(Diagnostic { path, line, message: "file is not valid UTF-8".into() });
                continue;
            }
        };
        let mut report =
            |line: usize, message: String| diagnostics.push(Diagnostic { path: path.clone(), line, message });
        match source.rel.as_str() {
            DICT_FILE => dict = resources::parse_dict(text, &mut report),
            SYNONYMS_FILE => synonyms = resources::parse_synonyms(text, &mut report),
            rel => parse_file(rel, text, &mut entries, &mut report),
        }
    }
    check_unique_ids(&entries, &display, &mut diagnostics);
    if !diagnostics.is_empty() {
        return Err(KbError::Invalid(diagnostics));
    }
    Ok(KnowledgeBase { entries, dict, synonyms, fingerprint: fingerprint_of(&sources) })
}

fn check_unique_ids(entries: &[Entry], display: &dyn Fn(&str) -> String, diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &SourceRef> = HashMap::new();
    for entry in entries {
        if let Some(first) = seen.insert(&entry.id, &entry.source) {
            diagnostics.push(Diagnostic {
                path: display(&entry.source.path),
                line: entry.source.line,
                message: format!(
                    "duplicate id `{}`: already used at {}:{}",
                    entry.id,
                    display(&first.path),
                    first.line
                ),
            });
            seen.insert(&entry.id, first);
        }
    }
}

/// Maps byte offsets of a file to 1-based line numbers.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        Lines(std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect())
    }
    fn line_of(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

/// Parses one Markdown file of the knowledge base into `entries`.
fn parse_file(rel: &str, text: &str, entries: &mut Vec<Entry>, report: &mut dyn FnMut(usize, String)) {
    let folder_kind = KIND_FOLDERS
        .iter()
        .find(|(folder, _)| rel.starts_with(&format!("{folder}/")))
        .map_or(Kind::Faq, |(_, kind)| *kind);
    let split = match front_matter::split(text) {
        Ok(split) => split,
        Err(err) => return report(err.line, err.message),
    };
    let meta = match split.yaml.map(|(yaml, line)| front_matter::parse(yaml, line)) {
        Some(Ok(meta)) => meta,
        // Keep going with defaults so the rest of the file is checked too;
        // the reported error already makes the load fail.
        Some(Err(err)) => {
            report(err.line, err.message);
            Default::default()
        }
        None => Default::default(),
    };
    let lines = Lines::new(text);
    let line_of = |body_pos: usize| lines.line_of(split.body_offset + body_pos);
    let body = split.body;
    let headings = markdown::headings(body);
    let first_entry = headings.iter().position(|h| h.level == 2);
    let title_heading = headings[..first_entry.unwrap_or(headings.len())].iter().find(|h| h.level == 1);
    let file_stem = rel.rsplit('/').next().unwrap_or(rel).trim_end_matches(".md");
    let title = meta
        .title
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or_else(|| title_heading.map(|h| h.text.clone()).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| file_stem.to_string());
    let base = EntryBase {
        rel,
        title: &title,
        kind: meta.kind.unwrap_or(folder_kind),
        products: meta.products.0.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
        platforms: dedup(meta.platforms.clone()),
        audience: meta.audience.unwrap_or_default(),
        tags: meta.tags.0.clone(),
    };

    // The intro: everything before the first `##`, minus the title heading.
    let intro_end = first_entry.map_or(body.len(), |i| headings[i].range.start);
    let intro = match title_heading {
        Some(h) => format!("{}{}", &body[..h.range.start], &body[h.range.end.min(intro_end)..intro_end]),
        None => body[..intro_end].to_string(),
    };
    if !intro.trim().is_empty() {
        let line = title_heading.map_or_else(|| line_of(first_non_blank(&intro)), |h| line_of(h.range.start));
        let explicit = title_heading.and_then(|h| h.id.clone());
        let section = Section {
            question: title.clone(),
            explicit_id: explicit,
            classes: title_heading.map(|h| h.classes.clone()).unwrap_or_default(),
            line,
            text: &intro,
            is_intro: true,
        };
        if let Some(entry) = base.entry(section, report) {
            entries.push(entry);
        }
    } else if let Some(h) = title_heading.filter(|h| h.id.is_some() || !h.classes.is_empty()) {
        report(
            line_of(h.range.start),
            "`{…}` on the title heading has no effect without intro text; \
             for a whole internal file write `audience: internal` in the front matter"
                .into(),
        );
    }

    let h2s: Vec<&markdown::Heading> = headings.iter().filter(|h| h.level == 2).collect();
    for (i, heading) in h2s.iter().enumerate() {
        let end = h2s.get(i + 1).map_or(body.len(), |next| next.range.start);
        let start = heading.range.end.min(end);
        let section = Section {
            question: heading.text.clone(),
            explicit_id: heading.id.clone(),
            classes: heading.classes.clone(),
            line: line_of(heading.range.start),
            text: &body[start..end],
            is_intro: false,
        };
        if let Some(entry) = base.entry(section, report) {
            entries.push(entry);
        }
    }
}

fn first_non_blank(text: &str) -> usize {
    text.len() - text.trim_start().len()
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// What every entry of one file shares.
struct EntryBase<'a> {
    rel: &'a str,
    title: &'a str,
    kind: Kind,
    products: Vec<String>,
    platforms: Vec<crate::model::Platform>,
    audience: Audience,
    tags: Vec<String>,
}

/// The raw parts of one entry before validation.
struct Section<'a> {
    question: String,
    explicit_id: Option<String>,
    classes: Vec<String>,
    /// Line of the heading.
    line: usize,
    /// The text after the heading: optional 相似问 line, then the answer.
    text: &'a str,
    is_intro: bool,
}

/// Prefixes that introduce the alternate phrasings of an entry.
const SIMILAR_PREFIXES: [&str; 2] = ["相似问：", "相似问:"];

impl EntryBase<'_> {
    fn entry(&self, section: Section<'_>, report: &mut dyn FnMut(usize, String)) -> Option<Entry> {
        let question = section.question.trim().to_string();
        if question.is_empty() {
            report(section.line, "entry heading has no question text".into());
            return None;
        }
        let mut audience = self.audience;
        for class in &section.classes {
            match class.as_str() {
                "internal" => audience = Audience::Internal,
                "public" => audience = Audience::Public,
                other => {
                    report(section.line, format!("unknown heading class `.{other}` (known: .internal, .public)"));
                    return None;
                }
            }
        }
        let id = match section.explicit_id {
            Some(id) => match validate_id(&id) {
                Ok(()) => id,
                Err(message) => {
                    report(section.line, message);
                    return None;
                }
            },
            None => derived_id(self.rel, if section.is_intro { "" } else { &question }),
        };
        let (similar, answer) =
            if section.is_intro { (Vec::new(), section.text.trim()) } else { split_similar(section.text) };
        let answer = markdown::strip_comments(answer).trim().to_string();
        Some(Entry {
            id,
            question,
            similar,
            title: self.title.to_string(),
            kind: self.kind,
            products: self.products.clone(),
            platforms: self.platforms.clone(),
            audience,
            tags: self.tags.clone(),
            answer_html: markdown::render_html(&answer),
            answer_text: markdown::plain_text(&answer),
            answer_markdown: answer,
            source: SourceRef { path: self.rel.to_string(), line: section.line },
        })
    }
}

/// Splits an entry's text into its 相似问 (first non-blank line, if it has
/// the prefix) and the answer Markdown.
fn split_similar(text: &str) -> (Vec<String>, &str) {
    let trimmed = text.trim_start();
    let line_end = trimmed.find('\n').unwrap_or(trimmed.len());
    let first = trimmed[..line_end].trim();
    for prefix in SIMILAR_PREFIXES {
        if let Some(rest) = first.strip_prefix(prefix) {
            let mut similar: Vec<String> = Vec::new();
            for phrasing in rest.split(['｜', '|']).map(str::trim).filter(|s| !s.is_empty()) {
                if !similar.iter().any(|s| s == phrasing) {
                    similar.push(phrasing.to_string());
                }
            }
            return (similar, trimmed[line_end..].trim());
        }
    }
    (Vec::new(), text.trim())
}

/// Ids appear in URLs and in links between entries, so they are kept to a
/// safe alphabet.
fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 100 {
        return Err(format!("id `{id}` must be 1 to 100 characters"));
    }
    if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("id `{id}` contains `{bad}`: use letters, digits, `-`, `_` or `.`"));
    }
    Ok(())
}

/// A stable id for an entry without `{#id}`: the file path as ASCII plus a
/// short hash of path and question, so it survives edits to other entries.
fn derived_id(rel: &str, question: &str) -> String {
    let stem = rel.trim_end_matches(".md");
    let mut slug = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(rel.as_bytes());
    hasher.update([0]);
    hasher.update(question.as_bytes());
    let hash = hex(&hasher.finalize()[..4]);
    format!("{}-{hash}", slug.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_line_accepts_both_colons_and_bars() {
        let (similar, answer) = split_similar("\n相似问: 鞋码准吗｜要不要拍大一码 | 鞋码准吗\n\n答案");
        assert_eq!(similar, vec!["鞋码准吗", "要不要拍大一码"]);
        assert_eq!(answer, "答案");
    }

    #[test]
    fn derived_ids_are_ascii_and_stable() {
        let a = derived_id("faq/物流 logistics.md", "发什么快递？");
        assert_eq!(a, derived_id("faq/物流 logistics.md", "发什么快递？"));
        assert!(a.starts_with("faq-logistics-"), "{a}");
        assert_ne!(a, derived_id("faq/物流 logistics.md", "发什么快递"));
    }

    #[test]
    fn line_numbers_are_one_based() {
        let lines = Lines::new("a\nb\nc");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(2), 2);
        assert_eq!(lines.line_of(4), 3);
    }
}
