//! YAML front matter: the metadata block between `---` lines at the top of a file.
//!
//! The YAML is read as a generic mapping first and each key is then checked on
//! its own, so that one file reports every problem at once (an unknown key,
//! a misspelt platform and a bad date), each at its own line and column,
//! with the near key or value as a hint.

use jiff::Timestamp;

use super::Finding;
#[cfg(test)]
use super::Severity;
use crate::model::{Audience, Kind, Platform};

/// The front-matter keys a copywriter may write. Unknown keys are errors so
/// that a typo such as `platfrom:` never silently widens an entry's reach.
pub const KEYS: [&str; 8] = ["title", "kind", "products", "platforms", "audience", "tags", "valid_from", "valid_to"];

/// A value and where it was written (1-based file line and character column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub line: usize,
    pub col: usize,
}

/// The metadata of one file, after validation; invalid values are left out
/// (and reported).
#[derive(Debug, Default)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub kind: Option<Kind>,
    pub products: Vec<Located<String>>,
    pub platforms: Vec<Platform>,
    pub audience: Option<Audience>,
    pub tags: Vec<String>,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
}

/// A file cut into its front matter and Markdown body.
#[derive(Debug)]
pub struct Split<'a> {
    /// The YAML text and the 1-based file line its first line is on.
    pub yaml: Option<(&'a str, usize)>,
    /// The Markdown after the front matter.
    pub body: &'a str,
    /// Byte offset of `body` in the file, to turn body positions into lines.
    pub body_offset: usize,
}

fn is_fence(line: &str, fence: &str) -> bool {
    line.trim_end() == fence
}

/// Cuts `text` (BOM already removed) into front matter and body. Front matter
/// exists only when the first non-blank line is `---`.
pub fn split(text: &str) -> Result<Split<'_>, Finding> {
    // Blank lines before the opening fence are forgiven: an editor's stray
    // newline must not turn the metadata into Markdown.
    let blank = text.len() - text.trim_start_matches(['\n', '\r', ' ', '\t']).len();
    let start = text[..blank].rfind('\n').map_or(0, |i| i + 1);
    let first_end = text[start..].find('\n').map_or(text.len(), |i| start + i + 1);
    if !is_fence(&text[start..first_end], "---") {
        return Ok(Split { yaml: None, body: text, body_offset: 0 });
    }
    let first_line = text[..start].matches('\n').count() + 1;
    let mut offset = first_end;
    for line in text[first_end..].split_inclusive('\n') {
        if is_fence(line, "---") || is_fence(line, "...") {
            let body_offset = offset + line.len();
            return Ok(Split {
                yaml: Some((&text[first_end..offset], first_line + 1)),
                body: &text[body_offset..],
                body_offset,
            });
        }
        offset += line.len();
    }
    Err(Finding::error(first_line, 1, "front matter starts with `---` but has no closing `---` line")
        .hint("add a line with only `---` after the last `key: value` line"))
}

/// Parses the YAML of a front-matter block that starts on file line
/// `first_line`, reporting every problem; the result holds the valid parts.
pub fn parse(yaml: &str, first_line: usize, report: &mut dyn FnMut(Finding)) -> FrontMatter {
    let mut meta = FrontMatter::default();
    if yaml.trim().is_empty() {
        return meta;
    }
    let value: serde_norway::Value = match serde_norway::from_str(yaml) {
        Ok(value) => value,
        Err(err) => {
            let (line, col) = err
                .location()
                .map_or((first_line, 1), |loc| (first_line + loc.line().saturating_sub(1), loc.column().max(1)));
            let mut message = err.to_string();
            // The YAML library appends its own position, relative to the block.
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            report(
                Finding::error(line, col, format!("front matter is not valid YAML: {message}"))
                    .hint("write one `key: value` per line; quote values that contain `:` or start with `[`"),
            );
            return meta;
        }
    };
    let mapping = match value {
        serde_norway::Value::Mapping(mapping) => mapping,
        serde_norway::Value::Null => return meta,
        _ => {
            report(
                Finding::error(first_line, 1, "front matter must be `key: value` lines")
                    .hint(format!("known keys: {}", KEYS.join(", "))),
            );
            return meta;
        }
    };
    let source = Source { yaml, first_line };
    let mut seen_window = (None, None);
    for (key, value) in &mapping {
        let Some(key) = key.as_str() else {
            report(Finding::error(first_line, 1, "front-matter keys must be text"));
            continue;
        };
        let (line, col) = source.key_position(key);
        match key {
            "title" => meta.title = source.scalar(key, value, report).filter(|t| !t.trim().is_empty()),
            "kind" => {
                meta.kind = source.scalar(key, value, report).and_then(|v| {
                    let kind = match v.trim() {
                        "product" => Some(Kind::Product),
                        "rule" => Some(Kind::Rule),
                        "faq" => Some(Kind::Faq),
                        _ => None,
                    };
                    if kind.is_none() {
                        let (line, col) = source.value_position(key, &v);
                        report(unknown_value("kind", &v, &["product", "rule", "faq"], &[], line, col));
                    }
                    kind
                })
            }
            "products" => {
                for product in source.list(key, value, report) {
                    let trimmed = product.trim();
                    if trimmed.is_empty() {
                        continue;
                    }
                    let (line, col) = source.value_position(key, trimmed);
                    if !meta.products.iter().any(|p| p.value == trimmed) {
                        meta.products.push(Located { value: trimmed.to_string(), line, col });
                    }
                }
            }
            "platforms" => {
                for name in source.list(key, value, report) {
                    match name.parse::<Platform>() {
                        Ok(platform) if !meta.platforms.contains(&platform) => meta.platforms.push(platform),
                        Ok(_) => {}
                        Err(_) => {
                            let (line, col) = source.value_position(key, &name);
                            let names: Vec<&str> = Platform::ALL.iter().map(|p| p.as_str()).collect();
                            report(unknown_value("platform", &name, &names, PLATFORM_NAMES, line, col));
                        }
                    }
                }
            }
            "audience" => {
                meta.audience = source.scalar(key, value, report).and_then(|v| match v.trim() {
                    "public" => Some(Audience::Public),
                    "internal" => Some(Audience::Internal),
                    _ => {
                        let (line, col) = source.value_position(key, &v);
                        report(unknown_value("audience", &v, &["public", "internal"], AUDIENCE_NAMES, line, col));
                        None
                    }
                })
            }
            "tags" => meta.tags = source.list(key, value, report),
            "valid_from" | "valid_to" => {
                let end = key == "valid_to";
                if let Some(text) = source.scalar(key, value, report) {
                    match parse_time(&text, end) {
                        Ok(at) if end => {
                            meta.valid_to = Some(at);
                            seen_window.1 = Some((line, col));
                        }
                        Ok(at) => {
                            meta.valid_from = Some(at);
                            seen_window.0 = Some((line, col));
                        }
                        Err(message) => {
                            let (line, col) = source.value_position(key, &text);
                            report(Finding::error(line, col, message).hint(TIME_HINT));
                        }
                    }
                }
            }
            _ => report(unknown_key(key, line, col)),
        }
    }
    if let (Some(from), Some(to), Some((line, col))) = (meta.valid_from, meta.valid_to, seen_window.1) {
        if to <= from {
            report(
                Finding::error(
                    line,
                    col,
                    format!("`valid_to` ({}) is not after `valid_from` ({})", china(to), china(from)),
                )
                .hint("an entry is served from `valid_from` up to `valid_to`"),
            );
            meta.valid_from = None;
            meta.valid_to = None;
        }
    }
    meta
}

/// Chinese and common names copywriters write for platforms, with the value kefu expects.
const PLATFORM_NAMES: &[(&str, &str)] = &[
    ("淘宝", "taobao"),
    ("天猫", "tmall"),
    ("京东", "jd"),
    ("拼多多", "pdd"),
    ("pinduoduo", "pdd"),
    ("tianmao", "tmall"),
    ("jingdong", "jd"),
];
const AUDIENCE_NAMES: &[(&str, &str)] = &[("公开", "public"), ("内部", "internal"), ("private", "internal")];

/// How times are written, for hints.
pub const TIME_HINT: &str =
    "write a date `2026-11-11` or a time `2026-11-11 20:00` (China time), or RFC 3339 `2026-11-11T20:00:00+08:00`";

fn unknown_key(key: &str, line: usize, col: usize) -> Finding {
    let finding = Finding::error(line, col, format!("unknown front-matter key `{key}`"));
    match nearest(key, &KEYS) {
        Some(near) => finding.hint(format!("did you mean `{near}`?")),
        None => finding.hint(format!("known keys: {}", KEYS.join(", "))),
    }
}

fn unknown_value(
    what: &str,
    value: &str,
    known: &[&str],
    aliases: &[(&str, &str)],
    line: usize,
    col: usize,
) -> Finding {
    let finding = Finding::error(line, col, format!("unknown {what} `{value}`"));
    let lower = value.trim().to_lowercase();
    if let Some((_, canonical)) = aliases.iter().find(|(alias, _)| *alias == lower) {
        return finding.hint(format!("write `{canonical}` for {}", value.trim()));
    }
    match nearest(&lower, known) {
        Some(near) => finding.hint(format!("did you mean `{near}`?")),
        None => finding.hint(format!("expected one of: {}", known.join(", "))),
    }
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&word, k), *k))
        .filter(|(d, k)| *d <= (k.chars().count() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance with adjacent transpositions (`platfrom` → `platform` is 1).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// The text of a front-matter block, to find where a key or value was written.
struct Source<'a> {
    yaml: &'a str,
    first_line: usize,
}

impl Source<'_> {
    /// 0-based index of the line that starts `key:` at the top level.
    fn key_index(&self, key: &str) -> Option<usize> {
        self.yaml.lines().position(|line| {
            let rest = line.strip_prefix(key).or_else(|| {
                line.strip_prefix(['"', '\''])
                    .and_then(|l| l.strip_prefix(key))
                    .and_then(|l| l.strip_prefix(['"', '\'']))
            });
            rest.is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
    }

    fn key_position(&self, key: &str) -> (usize, usize) {
        self.key_index(key).map_or((self.first_line, 1), |i| (self.first_line + i, 1))
    }

    /// Where `value` was written under `key`: on the key's line after the
    /// colon, or on one of the indented lines that follow.
    fn value_position(&self, key: &str, value: &str) -> (usize, usize) {
        let value = value.trim();
        let Some(start) = self.key_index(key) else { return (self.first_line, 1) };
        for (i, line) in self.yaml.lines().enumerate().skip(start) {
            if i > start && !line.starts_with([' ', '\t', '-']) && !line.trim().is_empty() {
                break; // the next key
            }
            let from = if i == start { line.find(':').map_or(0, |c| c + 1) } else { 0 };
            if let Some(at) = find_token(&line[from..], value) {
                return (self.first_line + i, line[..from + at].chars().count() + 1);
            }
        }
        (self.first_line + start, 1)
    }

    /// A string (numbers accepted: `title: 1001`).
    fn scalar(&self, key: &str, value: &serde_norway::Value, report: &mut dyn FnMut(Finding)) -> Option<String> {
        match scalar_text(value) {
            Some(text) => Some(text),
            None if value.is_null() => None,
            None => {
                let (line, col) = self.key_position(key);
                report(Finding::error(line, col, format!("`{key}` must be a single value, not a list or mapping")));
                None
            }
        }
    }

    /// A list of strings; a single value counts as a list of one
    /// (`products: SKU-1`), as copywriters write it naturally.
    fn list(&self, key: &str, value: &serde_norway::Value, report: &mut dyn FnMut(Finding)) -> Vec<String> {
        match value {
            serde_norway::Value::Null => Vec::new(),
            serde_norway::Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match scalar_text(item) {
                        Some(text) => out.push(text),
                        None => {
                            let (line, col) = self.key_position(key);
                            report(Finding::error(line, col, format!("every item of `{key}` must be a single value")));
                        }
                    }
                }
                out
            }
            other => match scalar_text(other) {
                Some(text) => vec![text],
                None => {
                    let (line, col) = self.key_position(key);
                    report(Finding::error(line, col, format!("`{key}` must be a list such as `[a, b]`")));
                    Vec::new()
                }
            },
        }
    }
}

/// The first occurrence of `value` in `line` that is a whole token: `tmal`
/// in `[tmall, tmal]` is the second item, not the start of the first.
fn find_token(line: &str, value: &str) -> Option<usize> {
    if value.is_empty() {
        return None;
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    line.match_indices(value)
        .map(|(at, _)| at)
        .find(|&at| !word(line[..at].chars().next_back()) && !word(line[at + value.len()..].chars().next()))
}

fn scalar_text(value: &serde_norway::Value) -> Option<String> {
    match value {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// China has one time zone and no daylight saving: UTC+8 all year.
pub fn china_tz() -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::fixed(jiff::tz::offset(8))
}

/// A time as a copywriter reads it: `2026-11-11 20:00` in China time.
pub fn china(at: Timestamp) -> String {
    at.to_zoned_datetime(china_tz()).strftime("%Y-%m-%d %H:%M").to_string()
}

/// Parses a validity bound: an RFC 3339 time, a date-time in China time
/// (`2026-11-11 20:00`, `2026-11-11T20:00`), or a date. A date as the end of a
/// window (`valid_to`) includes that whole day.
pub fn parse_time(text: &str, end: bool) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    let civil = text.replace('/', "-");
    if let Ok(at) = civil.replacen(' ', "T", 1).parse::<jiff::civil::DateTime>() {
        if civil.contains([' ', 'T']) {
            return at.to_zoned_datetime(china_tz()).map(|z| z.timestamp()).map_err(|e| e.to_string());
        }
    }
    if let Ok(date) = civil.parse::<jiff::civil::Date>() {
        let day = if end { date.tomorrow().map_err(|e| e.to_string())? } else { date };
        return day.to_zoned_datetime(china_tz()).map(|z| z.timestamp()).map_err(|e| e.to_string());
    }
    Err(format!("`{text}` is not a date or time"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(yaml: &str) -> (FrontMatter, Vec<Finding>) {
        let mut found = Vec::new();
        let meta = parse(yaml, 2, &mut |f| found.push(f));
        (meta, found)
    }

    #[test]
    fn typo_keys_get_the_near_key() {
        let (_, found) = parse_all("title: x\nplatfrom: [tmall]\n");
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].col), (3, 1));
        assert_eq!(found[0].hint.as_deref(), Some("did you mean `platforms`?"));
    }

    #[test]
    fn platform_values_are_located_and_chinese_names_explained() {
        let (meta, found) = parse_all("platforms:\n  - taobao\n  - 天猫\n  - tmal\n");
        assert_eq!(meta.platforms, vec![Platform::Taobao]);
        assert_eq!((found[0].line, found[0].col), (4, 5));
        assert_eq!(found[0].hint.as_deref(), Some("write `tmall` for 天猫"));
        assert_eq!((found[1].line, found[1].col), (5, 5));
        assert_eq!(found[1].hint.as_deref(), Some("did you mean `tmall`?"));
    }

    #[test]
    fn values_are_located_as_whole_tokens() {
        let (_, found) = parse_all("platforms: [tmall, 天猫, tmal]\n");
        let cols: Vec<usize> = found.iter().map(|f| f.col).collect();
        assert_eq!(cols, vec![20, 24]);
    }

    #[test]
    fn times_default_to_china_and_dates_end_inclusive() {
        let from = parse_time("2026-11-11", false).unwrap();
        let to = parse_time("2026-11-11", true).unwrap();
        assert_eq!(from.to_string(), "2026-11-10T16:00:00Z");
        assert_eq!(to.to_string(), "2026-11-11T16:00:00Z");
        assert_eq!(parse_time("2026-11-11 20:00", false).unwrap().to_string(), "2026-11-11T12:00:00Z");
        assert_eq!(parse_time("2026-11-11T20:00:00Z", false).unwrap().to_string(), "2026-11-11T20:00:00Z");
        assert!(parse_time("双十一", false).is_err());
    }

    #[test]
    fn window_must_be_ordered() {
        let (meta, found) = parse_all("valid_from: 2026-11-12\nvalid_to: 2026-11-01\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3);
        assert!(meta.valid_to.is_none());
        assert_eq!(found[0].severity, Severity::Error);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("platfrom", "platform"), 1);
        assert_eq!(nearest("platfrom", &KEYS), Some("platforms"));
        assert_eq!(nearest("colour", &KEYS), None);
    }
}
