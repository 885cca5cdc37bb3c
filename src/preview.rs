//! Golden queries and previews: what an edit of `kb/` changes for buyers.
//!
//! A golden file is JSON Lines, `{"query", "expect", "product"?, "platform"?,
//! "public"?, "note"?}`, maintained by copywriters next to the knowledge
//! base. `kefu check --golden` fails when an expected answer is no longer the
//! top hit; `kefu preview` runs the same queries (and, optionally, the
//! questions buyers really asked) against the served index and against the
//! edited knowledge base, and lists every query whose top answer or
//! confidence changes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::index::SearchIndex;
use crate::kb::{Diagnostic, Finding};
use crate::model::{Confidence, Platform};
use crate::search::{SearchError, SearchRequest};

/// One query to run, from a golden file or the query log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoldenQuery {
    /// 1-based line in the golden file (0 for questions from the log).
    #[serde(skip_serializing_if = "is_zero")]
    pub line: usize,
    pub query: String,
    /// The entry that must be the top hit, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Search as a buyer (public entries only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub public: bool,
    /// How often buyers asked it (1 for golden queries).
    pub weight: u64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line of a golden file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoldenLine {
    query: String,
    expect: Option<String>,
    product: Option<String>,
    platform: Option<String>,
    #[serde(default)]
    public: bool,
    #[allow(dead_code)] // for the humans reading the file
    note: Option<String>,
}

/// Why a golden file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Lines that are not valid golden queries, each located.
    #[error("{} line(s) of the golden file are invalid, first: {}", .0.len(), .0[0])]
    Invalid(Vec<Diagnostic>),
}

/// Reads a golden file; every bad line is reported with its line number.
pub fn load_golden(path: &Path) -> Result<Vec<GoldenQuery>, GoldenError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| GoldenError::Io { path: display.clone(), source })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut queries = Vec::new();
    let mut problems = Vec::new();
    let mut problem = |line: usize, message: String| {
        let hint =
            r#"each line is {"query": "…", "expect": "entry-id"}, optionally with "product", "platform", "public""#;
        problems.push(Finding::error(line, 1, message).hint(hint).at(display.clone()));
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed: GoldenLine = match serde_json::from_str(raw) {
            Ok(parsed) => parsed,
            Err(err) => {
                problem(line, format!("not a golden query: {err}"));
                continue;
            }
        };
        if parsed.query.trim().is_empty() {
            problem(line, "`query` is empty".into());
            continue;
        }
        let platform = match parsed.platform.as_deref().map(str::parse::<Platform>) {
            None => None,
            Some(Ok(platform)) => Some(platform),
            Some(Err(err)) => {
                problem(line, err.to_string());
                continue;
            }
        };
        queries.push(GoldenQuery {
            line,
            query: parsed.query,
            expect: parsed.expect.filter(|e| !e.trim().is_empty()),
            product: parsed.product.filter(|p| !p.trim().is_empty()),
            platform,
            public: parsed.public,
            weight: 1,
        });
    }
    if problems.is_empty() {
        Ok(queries)
    } else {
        Err(GoldenError::Invalid(problems))
    }
}

/// The top answer one index gives to one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// Id of the top hit, `None` when nothing was found.
    pub top: Option<String>,
    /// Its standard question, for people reading a preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    pub score: f32,
    pub confidence: Confidence,
}

/// Runs every query against `index` at time `at` (`None`: now).
pub fn run(
    index: &SearchIndex,
    queries: &[GoldenQuery],
    at: Option<jiff::Timestamp>,
) -> Result<Vec<Answer>, SearchError> {
    queries
        .iter()
        .map(|q| {
            let request = SearchRequest {
                limit: 1,
                product: q.product.as_deref(),
                platform: q.platform,
                public_only: q.public,
                at,
                ..SearchRequest::new(&q.query)
            };
            let results = match index.search(&request) {
                Ok(results) => results,
                Err(SearchError::EmptyQuery | SearchError::QueryTooLong(_)) => {
                    return Ok(Answer { top: None, question: None, score: 0.0, confidence: Confidence::None })
                }
                Err(err) => return Err(err),
            };
            let top = results.hits.first();
            Ok(Answer {
                top: top.map(|h| h.id.clone()),
                question: top.map(|h| h.question.clone()),
                score: top.map_or(0.0, |h| h.score),
                confidence: results.confidence,
            })
        })
        .collect()
}

/// Golden queries whose expected entry is not the top answer, as errors
/// located in the golden file.
pub fn failures(path: &Path, index: &SearchIndex, queries: &[GoldenQuery], answers: &[Answer]) -> Vec<Diagnostic> {
    let display = path.display().to_string();
    let mut out = Vec::new();
    for (q, answer) in queries.iter().zip(answers) {
        let Some(expect) = &q.expect else { continue };
        if answer.top.as_deref() == Some(expect.as_str()) {
            continue;
        }
        let finding = if index.entry(expect).is_none() {
            Finding::error(
                q.line,
                1,
                format!("golden query `{}` expects `{expect}`, which is not in the knowledge base", q.query),
            )
            .hint("the entry was removed or its id changed: update the golden file or restore the `{#id}`")
        } else {
            let got = match (&answer.top, &answer.question) {
                (Some(id), Some(question)) => format!("`{id}` ({question}, {})", answer.confidence.as_str()),
                _ => "nothing".into(),
            };
            Finding::error(q.line, 1, format!("golden query `{}` expects `{expect}`, the top answer is {got}", q.query))
                .hint(format!("add the wording as a 相似问 of `{expect}`, or check the entry that now wins"))
        };
        out.push(finding.at(display.clone()));
    }
    out
}

/// One query whose answer differs between two indexes.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub query: GoldenQuery,
    pub before: Answer,
    pub after: Answer,
    /// For golden queries: whether the expected answer was / is on top.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_before: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_after: Option<bool>,
}

/// What an edit changes, over a set of queries.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Queries run (distinct questions).
    pub queries: usize,
    /// Searches they stand for (log questions count every asking).
    pub searches: u64,
    /// Queries whose top answer changes.
    pub top_changed: Vec<Change>,
    /// Queries whose top answer stays but whose confidence changes.
    pub confidence_changed: Vec<Change>,
    /// Golden queries that pass before and fail after.
    pub golden_broken: usize,
    /// Golden queries that fail before and pass after.
    pub golden_fixed: usize,
}

/// Compares the answers of the served index (`before`) and the edited
/// knowledge base (`after`) for the same queries.
pub fn compare(queries: &[GoldenQuery], before: &[Answer], after: &[Answer]) -> Preview {
    let mut preview = Preview {
        queries: queries.len(),
        searches: queries.iter().map(|q| q.weight).sum(),
        top_changed: Vec::new(),
        confidence_changed: Vec::new(),
        golden_broken: 0,
        golden_fixed: 0,
    };
    for ((q, b), a) in queries.iter().zip(before).zip(after) {
        if b.top == a.top && b.confidence == a.confidence {
            continue;
        }
        let expected = |answer: &Answer| q.expect.as_ref().map(|e| answer.top.as_deref() == Some(e.as_str()));
        let change = Change {
            query: q.clone(),
            before: b.clone(),
            after: a.clone(),
            expected_before: expected(b),
            expected_after: expected(a),
        };
        match (change.expected_before, change.expected_after) {
            (Some(true), Some(false)) => preview.golden_broken += 1,
            (Some(false), Some(true)) => preview.golden_fixed += 1,
            _ => {}
        }
        if b.top != a.top {
            preview.top_changed.push(change);
        } else {
            preview.confidence_changed.push(change);
        }
    }
    // Most-asked first, then broken golden queries first.
    let key = |c: &Change| (std::cmp::Reverse(c.query.weight), c.expected_after == Some(true), c.query.line);
    preview.top_changed.sort_by_key(key);
    preview.confidence_changed.sort_by_key(key);
    preview
}

/// The preview as text for a terminal.
pub fn render_text(preview: &Preview, before_label: &str, after_label: &str) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} of {} queries change their top answer; {} change only their confidence.",
        preview.top_changed.len(),
        preview.queries,
        preview.confidence_changed.len()
    );
    if preview.golden_broken + preview.golden_fixed > 0 {
        let _ = writeln!(out, "golden queries: {} now fail, {} now pass.", preview.golden_broken, preview.golden_fixed);
    }
    let answer = |a: &Answer| match (&a.top, &a.question) {
        (Some(id), Some(q)) => format!("{q} [{id}] ({}, {:.2})", a.confidence.as_str(), a.score),
        _ => "no answer (none)".into(),
    };
    let context = |q: &GoldenQuery| {
        let mut parts = Vec::new();
        if let Some(p) = &q.product {
            parts.push(format!("product {p}"));
        }
        if let Some(p) = q.platform {
            parts.push(format!("platform {p}"));
        }
        if q.public {
            parts.push("public".into());
        }
        if q.weight > 1 {
            parts.push(format!("asked {}×", q.weight));
        }
        if q.line > 0 {
            parts.push(format!("golden line {}", q.line));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("  ({})", parts.join(", "))
        }
    };
    for (title, changes) in
        [("Top answer changes", &preview.top_changed), ("Confidence changes", &preview.confidence_changed)]
    {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title}:");
        for c in changes {
            let mark = match (c.expected_before, c.expected_after) {
                (Some(true), Some(false)) => "  ✗ expected answer lost",
                (Some(false), Some(true)) => "  ✓ expected answer now on top",
                _ => "",
            };
            let _ = writeln!(out, "  「{}」{}{mark}", c.query.query, context(&c.query));
            let _ = writeln!(out, "      {before_label}: {}", answer(&c.before));
            let _ = writeln!(out, "      {after_label}: {}", answer(&c.after));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(top: &str, confidence: Confidence) -> Answer {
        Answer { top: Some(top.into()), question: Some(top.into()), score: 1.0, confidence }
    }

    fn query(expect: Option<&str>) -> GoldenQuery {
        GoldenQuery {
            line: 1,
            query: "能开发票吗".into(),
            expect: expect.map(Into::into),
            product: None,
            platform: None,
            public: false,
            weight: 1,
        }
    }

    #[test]
    fn compare_separates_top_and_confidence_changes() {
        let queries = [query(Some("a")), query(None), query(None)];
        let before = [answer("a", Confidence::High), answer("b", Confidence::High), answer("c", Confidence::High)];
        let after = [answer("x", Confidence::High), answer("b", Confidence::Low), answer("c", Confidence::High)];
        let preview = compare(&queries, &before, &after);
        assert_eq!(preview.top_changed.len(), 1);
        assert_eq!(preview.confidence_changed.len(), 1);
        assert_eq!(preview.golden_broken, 1);
        let text = render_text(&preview, "served", "edited");
        assert!(text.starts_with("1 of 3 queries change their top answer"), "{text}");
        assert!(text.contains("expected answer lost"), "{text}");
    }
}
