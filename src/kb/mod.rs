//! Knowledge base: Markdown files with YAML front matter under `kb/` → [`Entry`]s.
//!
//! The format is a public contract (copywriters and other tools write it):
//! `products/`, `rules/` and `faq/` hold `.md` files whose `##` headings each
//! start one entry; `dict.txt` and `synonyms.txt` tune the Chinese analysis.
//! Every problem is reported as `path:line:col: error|warning: message` with
//! a hint, and checking collects all of them, so a copywriter can fix a whole
//! file in one pass. Errors stop a build; warnings travel with the knowledge
//! base. Checks that span files (duplicates, links, products) are in `check`.

mod check;
pub mod front_matter;
pub mod markdown;
mod resources;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::{Audience, Entry, Kind, SourceRef};
pub use front_matter::Located;
pub use resources::{parse_dict, parse_synonyms, DictWord, SynonymGroup};

/// Folders of a knowledge base and the kind of entry each holds.
pub const KIND_FOLDERS: [(&str, Kind); 3] = [("products", Kind::Product), ("rules", Kind::Rule), ("faq", Kind::Faq)];
/// Optional jieba user dictionary at the knowledge-base root.
pub const DICT_FILE: &str = "dict.txt";
/// Optional synonym groups at the knowledge-base root.
pub const SYNONYMS_FILE: &str = "synonyms.txt";

/// How bad a problem is: errors stop a knowledge base from being served,
/// warnings are shown to copywriters but never block a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem in the knowledge base, located for a copywriter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// File path as the user named it (knowledge-base folder joined with the file).
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters (what editors show).
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    /// How to fix it, when kefu can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// `path:line:col: error: message`, the form editors and CI logs link to.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.path, self.line, self.col, self.severity.as_str(), self.message)
    }
}

impl Diagnostic {
    /// The diagnostic with its hint on a second line, as `kefu check` prints it.
    pub fn render(&self) -> String {
        match &self.hint {
            Some(hint) => format!("{self}\n  = hint: {hint}"),
            None => self.to_string(),
        }
    }
}

/// A problem found while parsing one file, before the file's path is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    pub fn error(line: usize, col: usize, message: impl Into<String>) -> Self {
        Finding { line, col, severity: Severity::Error, message: message.into(), hint: None }
    }

    pub fn warning(line: usize, col: usize, message: impl Into<String>) -> Self {
        Finding { severity: Severity::Warning, ..Finding::error(line, col, message) }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The finding located in the file `path`.
    pub fn at(self, path: String) -> Diagnostic {
        Diagnostic {
            path,
            line: self.line,
            col: self.col,
            severity: self.severity,
            message: self.message,
            hint: self.hint,
        }
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
    /// Problems that do not stop the knowledge base from being served.
    pub warnings: Vec<Diagnostic>,
}

/// Everything `kefu check` found: every diagnostic, and the knowledge base
/// when there is no error.
#[derive(Debug)]
pub struct Checked {
    pub kb: Option<KnowledgeBase>,
    /// Errors and warnings, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// Markdown files read.
    pub files: usize,
    /// Entries parsed (including those of files with errors).
    pub entries: usize,
}

impl Checked {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning)
    }
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

/// Loads and validates the knowledge base at `root`. Errors fail the load;
/// warnings travel with the knowledge base.
pub fn load(root: &Path) -> Result<KnowledgeBase, KbError> {
    let checked = check(root, jiff::Timestamp::now())?;
    match checked.kb {
        Some(kb) => Ok(kb),
        None => Err(KbError::Invalid(checked.errors().cloned().collect())),
    }
}

/// Validates the knowledge base at `root` as of `now` (which decides what
/// has expired), collecting every problem rather than stopping at the first.
pub fn check(root: &Path, now: jiff::Timestamp) -> Result<Checked, KbError> {
    let sources = read_sources(root)?;
    let display = |rel: &str| root.join(rel).display().to_string();
    let mut diagnostics = Vec::new();
    let mut parsed = Parsed::default();
    let mut dict = Vec::new();
    let mut synonyms = Vec::new();
    let mut files = 0;
    for source in &sources {
        let path = display(&source.rel);
        let text = match std::str::from_utf8(&source.bytes) {
            Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text),
            Err(err) => {
                let line = source.bytes[..err.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
                diagnostics.push(
                    Finding::error(line, 1, "file is not valid UTF-8")
                        .hint("save the file as UTF-8 (editors call it \"UTF-8\", not GBK or GB2312)")
                        .at(path),
                );
                continue;
            }
        };
        let mut report = |finding: Finding| diagnostics.push(finding.at(path.clone()));
        let mut report_line = |line: usize, message: String| report(Finding::error(line, 1, message));
        match source.rel.as_str() {
            DICT_FILE => dict = resources::parse_dict(text, &mut report_line),
            SYNONYMS_FILE => synonyms = resources::parse_synonyms(text, &mut report_line),
            rel => {
                files += 1;
                parse_file(rel, text, &mut parsed, &mut report);
            }
        }
    }
    let rels: Vec<&str> = sources.iter().map(|s| s.rel.as_str()).collect();
    check::cross_entry(&parsed, &rels, now, &mut |rel, finding| diagnostics.push(finding.at(display(rel))));
    diagnostics.sort_by(|a, b| (&a.path, a.line, a.col, a.severity).cmp(&(&b.path, b.line, b.col, b.severity)));
    diagnostics.dedup();
    let entries = parsed.entries.len();
    let kb = if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        None
    } else {
        Some(KnowledgeBase {
            entries: parsed.entries,
            dict,
            synonyms,
            fingerprint: fingerprint_of(&sources),
            warnings: diagnostics.clone(),
        })
    };
    Ok(Checked { kb, diagnostics, files, entries })
}

/// Maps byte offsets of a file to 1-based lines and character columns.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines { text, starts: std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect() }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_of(offset);
        let start = self.starts[line - 1];
        let col = self.text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }

    /// The position of `part`, a slice of this file's text.
    fn position_of(&self, part: &str) -> (usize, usize) {
        self.position(offset_in(self.text, part))
    }
}

/// Byte offset of `part` within `whole`, which must contain it.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize).min(whole.len())
}

/// Where each part of an entry was written, for checks that point at it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntrySpan {
    pub line: usize,
    /// Each 相似问 with its position.
    pub similar: Vec<Located<String>>,
    /// Targets of the answer's Markdown links.
    pub links: Vec<Located<String>>,
    /// Where `valid_to` was written (front matter or heading).
    pub valid_to_at: Option<(usize, usize)>,
}

/// A Markdown file's front-matter facts needed by checks across files.
#[derive(Debug, Clone)]
pub(crate) struct FileFacts {
    pub rel: String,
    pub folder_kind: Kind,
    pub products: Vec<Located<String>>,
}

/// Everything parsed from the Markdown files, in file order.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub entries: Vec<Entry>,
    pub spans: Vec<EntrySpan>,
    pub files: Vec<FileFacts>,
}

/// Parses one Markdown file of the knowledge base into `parsed`.
fn parse_file(rel: &str, text: &str, parsed: &mut Parsed, report: &mut dyn FnMut(Finding)) {
    let folder_kind = KIND_FOLDERS
        .iter()
        .find(|(folder, _)| rel.starts_with(&format!("{folder}/")))
        .map_or(Kind::Faq, |(_, kind)| *kind);
    let split = match front_matter::split(text) {
        Ok(split) => split,
        Err(finding) => return report(finding),
    };
    // Invalid values are reported and left out, so the rest of the file is
    // still checked; the reported error already makes the load fail.
    let meta = split.yaml.map(|(yaml, line)| front_matter::parse(yaml, line, report)).unwrap_or_default();
    let file_valid_to_at = split
        .yaml
        .and_then(|(yaml, first)| yaml.lines().position(|l| l.starts_with("valid_to")).map(|i| (first + i, 1)));
    parsed.files.push(FileFacts { rel: rel.to_string(), folder_kind, products: meta.products.clone() });
    let lines = Lines::new(text);
    let body = split.body;
    let headings = markdown::headings(body);
    let first_entry = headings.iter().position(|h| h.level == 2);
    let title_heading = headings[..first_entry.unwrap_or(headings.len())].iter().find(|h| h.level == 1);
    let file_stem = rel.rsplit('/').next().unwrap_or(rel).trim_end_matches(".md");
    let title = meta
        .title
        .clone()
        .or_else(|| title_heading.map(|h| h.text.clone()).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| file_stem.to_string());
    let base = EntryBase {
        rel,
        title: &title,
        kind: meta.kind.unwrap_or(folder_kind),
        products: meta.products.iter().map(|p| p.value.clone()).collect(),
        platforms: meta.platforms.clone(),
        audience: meta.audience.unwrap_or_default(),
        tags: meta.tags.clone(),
        valid_from: meta.valid_from,
        valid_to: meta.valid_to,
        valid_to_at: file_valid_to_at.filter(|_| meta.valid_to.is_some()),
        lines: &lines,
    };
    let mut push = |found: Option<(Entry, EntrySpan)>| {
        if let Some((entry, span)) = found {
            parsed.entries.push(entry);
            parsed.spans.push(span);
        }
    };

    // The intro: everything before the first `##`, minus the title heading.
    let intro_end = first_entry.map_or(body.len(), |i| headings[i].range.start);
    let intro = match title_heading {
        Some(h) => format!("{}{}", &body[..h.range.start], &body[h.range.end.min(intro_end)..intro_end]),
        None => body[..intro_end].to_string(),
    };
    if !intro.trim().is_empty() {
        // The intro is assembled around the title, so its links are located
        // in the untouched text before the first `##`.
        let line = title_heading.map_or_else(
            || lines.line_of(split.body_offset + first_non_blank(&intro)),
            |h| lines.line_of(split.body_offset + h.range.start),
        );
        let section = Section {
            question: title.clone(),
            heading: title_heading.map(|h| (h, &body[h.range.clone()])),
            line,
            text: &intro,
            source: &body[..intro_end],
            is_intro: true,
        };
        push(base.entry(section, report));
    } else if let Some(h) = title_heading.filter(|h| h.id.is_some() || !h.classes.is_empty() || !h.attrs.is_empty()) {
        let (line, col) = lines.position_of(&body[h.range.clone()]);
        report(
            Finding::error(line, col, "`{…}` on the title heading has no effect without intro text")
                .hint("for a whole internal file write `audience: internal` in the front matter"),
        );
    }

    let h2s: Vec<&markdown::Heading> = headings.iter().filter(|h| h.level == 2).collect();
    for (i, heading) in h2s.iter().enumerate() {
        let end = h2s.get(i + 1).map_or(body.len(), |next| next.range.start);
        let start = heading.range.end.min(end);
        let section = Section {
            question: heading.text.clone(),
            heading: Some((heading, &body[heading.range.clone()])),
            line: lines.line_of(split.body_offset + heading.range.start),
            text: &body[start..end],
            source: &body[start..end],
            is_intro: false,
        };
        push(base.entry(section, report));
    }
}

fn first_non_blank(text: &str) -> usize {
    text.len() - text.trim_start().len()
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
    valid_from: Option<jiff::Timestamp>,
    valid_to: Option<jiff::Timestamp>,
    valid_to_at: Option<(usize, usize)>,
    lines: &'a Lines<'a>,
}

/// The raw parts of one entry before validation.
struct Section<'a> {
    question: String,
    /// The heading and its source line (none for an intro without a title).
    heading: Option<(&'a markdown::Heading, &'a str)>,
    /// Line of the heading.
    line: usize,
    /// The text after the heading: optional 相似问 line, then the answer.
    text: &'a str,
    /// A slice of the file that holds the same links as `text`, to locate them.
    source: &'a str,
    is_intro: bool,
}

/// Prefixes that introduce the alternate phrasings of an entry.
const SIMILAR_PREFIXES: [&str; 2] = ["相似问：", "相似问:"];
/// `key=value` attributes a `##` heading may carry.
const HEADING_ATTRS: [&str; 2] = ["valid_from", "valid_to"];

impl EntryBase<'_> {
    fn entry(&self, section: Section<'_>, report: &mut dyn FnMut(Finding)) -> Option<(Entry, EntrySpan)> {
        let question = section.question.trim().to_string();
        if question.is_empty() {
            report(
                Finding::error(section.line, 1, "entry heading has no question text")
                    .hint("write the buyer's question after `## `"),
            );
            return None;
        }
        // Positions inside the heading line, for attribute problems.
        let heading_pos = |needle: &str| match section.heading {
            Some((_, src)) => match src.find(needle) {
                Some(at) => self.lines.position_of(&src[at..]),
                None => self.lines.position_of(src),
            },
            None => (section.line, 1),
        };
        let mut audience = self.audience;
        let mut valid_from = self.valid_from;
        let mut valid_to = self.valid_to;
        let mut valid_to_at = self.valid_to_at;
        let mut explicit_id = None;
        if let Some((heading, _)) = section.heading {
            explicit_id = heading.id.clone();
            for class in &heading.classes {
                match class.as_str() {
                    "internal" => audience = Audience::Internal,
                    "public" => audience = Audience::Public,
                    other => {
                        let (line, col) = heading_pos(&format!(".{other}"));
                        let finding = Finding::error(line, col, format!("unknown heading class `.{other}`"));
                        let hint = match front_matter::nearest(other, &["internal", "public"]) {
                            Some(near) => format!("did you mean `.{near}`?"),
                            None => "known classes: .internal, .public".into(),
                        };
                        report(finding.hint(hint));
                        return None;
                    }
                }
            }
            for (key, value) in &heading.attrs {
                let (line, col) = heading_pos(key);
                let end = match key.as_str() {
                    "valid_from" => false,
                    "valid_to" => true,
                    other => {
                        let finding = Finding::error(line, col, format!("unknown heading attribute `{other}`"));
                        let hint = match front_matter::nearest(other, &HEADING_ATTRS) {
                            Some(near) => format!("did you mean `{near}`?"),
                            None => format!("known attributes: {}", HEADING_ATTRS.join(", ")),
                        };
                        report(finding.hint(hint));
                        return None;
                    }
                };
                let Some(value) = value.as_deref() else {
                    report(Finding::error(line, col, format!("`{key}` needs a value: `{key}=2026-11-11`")));
                    return None;
                };
                match front_matter::parse_time(value, end) {
                    Ok(at) if end => {
                        valid_to = Some(at);
                        valid_to_at = Some((line, col));
                    }
                    Ok(at) => valid_from = Some(at),
                    Err(message) => {
                        let hint =
                            "in a heading write `valid_to=2026-11-11` or `valid_to=2026-11-11T20:00` (China time)";
                        report(Finding::error(line, col, message).hint(hint));
                        return None;
                    }
                }
            }
        }
        if let (Some(from), Some(to)) = (valid_from, valid_to) {
            if to <= from {
                let (line, col) = valid_to_at.unwrap_or((section.line, 1));
                report(
                    Finding::error(
                        line,
                        col,
                        format!(
                            "`valid_to` ({}) is not after `valid_from` ({})",
                            front_matter::china(to),
                            front_matter::china(from)
                        ),
                    )
                    .hint("an entry is served from `valid_from` up to `valid_to`"),
                );
                return None;
            }
        }
        let id = match explicit_id {
            Some(id) => match validate_id(&id) {
                Ok(()) => id,
                Err(message) => {
                    let (line, col) = heading_pos(&format!("#{id}"));
                    report(Finding::error(line, col, message).hint("ids may use letters, digits, `-`, `_` and `.`"));
                    return None;
                }
            },
            None => derived_id(self.rel, if section.is_intro { "" } else { &question }),
        };
        let (similar, answer) =
            if section.is_intro { (Vec::new(), section.text.trim()) } else { split_similar(section.text) };
        let similar: Vec<Located<String>> = similar
            .into_iter()
            .map(|phrasing| {
                let (line, col) = self.lines.position_of(phrasing);
                Located { value: phrasing.to_string(), line, col }
            })
            .collect();
        let links = markdown::links(section.source)
            .into_iter()
            .map(|(target, at)| {
                let (line, col) = self.lines.position_of(&section.source[at..]);
                Located { value: target, line, col }
            })
            .collect();
        let answer = markdown::strip_comments(answer).trim().to_string();
        let entry = Entry {
            id,
            question,
            similar: similar.iter().map(|s| s.value.clone()).collect(),
            title: self.title.to_string(),
            kind: self.kind,
            products: self.products.clone(),
            platforms: self.platforms.clone(),
            audience,
            tags: self.tags.clone(),
            answer_html: markdown::render_html(&answer),
            answer_text: markdown::plain_text(&answer),
            answer_markdown: answer,
            valid_from,
            valid_to,
            source: SourceRef { path: self.rel.to_string(), line: section.line },
        };
        let span = EntrySpan { line: section.line, similar, links, valid_to_at };
        Some((entry, span))
    }
}

/// Splits an entry's text into its 相似问 (first non-blank line, if it has
/// the prefix), each a slice of `text`, and the answer Markdown.
fn split_similar(text: &str) -> (Vec<&str>, &str) {
    let trimmed = text.trim_start();
    let line_end = trimmed.find('\n').unwrap_or(trimmed.len());
    let first = trimmed[..line_end].trim();
    for prefix in SIMILAR_PREFIXES {
        if let Some(rest) = first.strip_prefix(prefix) {
            let mut similar: Vec<&str> = Vec::new();
            for phrasing in rest.split(['｜', '|']).map(str::trim).filter(|s| !s.is_empty()) {
                if !similar.contains(&phrasing) {
                    similar.push(phrasing);
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
        let lines = Lines::new("a\n双十一\nc");
        assert_eq!(lines.line_of(0), 1);
        assert_eq!(lines.line_of(2), 2);
        assert_eq!(lines.position(2 + "双十".len()), (2, 3));
        assert_eq!(lines.line_of(12), 3);
    }
}
