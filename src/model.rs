//! Data shared by the pipeline stages. No I/O lives here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What kind of knowledge an entry holds; the folder under `kb/` decides it
/// unless front matter overrides it with `kind:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Product knowledge (`kb/products/`).
    Product,
    /// Platform rules (`kb/rules/`).
    Rule,
    /// Collected buyer questions (`kb/faq/`).
    Faq,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Product => "product",
            Kind::Rule => "rule",
            Kind::Faq => "faq",
        }
    }
}

/// The marketplaces a shop sells on. Rules differ between them (only 淘宝
/// allows 改价, 天猫 must issue invoices), so entries can be limited to some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Taobao,
    Tmall,
    Jd,
    Pdd,
}

impl Platform {
    pub const ALL: [Platform; 4] = [Platform::Taobao, Platform::Tmall, Platform::Jd, Platform::Pdd];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Taobao => "taobao",
            Platform::Tmall => "tmall",
            Platform::Jd => "jd",
            Platform::Pdd => "pdd",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a platform name that is not one of [`Platform::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform {0:?} (expected one of: taobao, tmall, jd, pdd)")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPlatform(s.to_string()))
    }
}

/// Who may see an entry. Internal entries (话术, red lines, internal notes)
/// must never reach a buyer, not even as a snippet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    #[default]
    Public,
    Internal,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Public => "public",
            Audience::Internal => "internal",
        }
    }
}

/// Where an entry was written, so an agent or copywriter can jump to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    /// Path relative to the knowledge-base root, with `/` separators.
    pub path: String,
    /// 1-based line of the entry's `##` heading (or `#` title for an intro).
    pub line: usize,
}

/// One knowledge-base entry: a standard question (标准问), its alternate
/// phrasings (相似问) and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Stable id: `{#id}` from the heading, or derived from path and question.
    pub id: String,
    /// The standard question (标准问): the heading text.
    pub question: String,
    /// Alternate phrasings (相似问), in the order written.
    pub similar: Vec<String>,
    /// Document title (front matter `title`, first `#` heading, or file name).
    pub title: String,
    pub kind: Kind,
    /// Products the entry applies to; empty means shop-wide.
    pub products: Vec<String>,
    /// Platforms the entry applies to; empty means every platform.
    pub platforms: Vec<Platform>,
    pub audience: Audience,
    pub tags: Vec<String>,
    /// The answer as written (Markdown).
    pub answer_markdown: String,
    /// The answer rendered to HTML and sanitised: safe on a product page.
    pub answer_html: String,
    /// The answer as plain text, for snippets and indexing.
    pub answer_text: String,
    /// Served from this time on (front matter or heading `valid_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<jiff::Timestamp>,
    /// Served until this time (exclusive): 双十一 rules, holiday shipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<jiff::Timestamp>,
    pub source: SourceRef,
}

impl Entry {
    /// Whether the entry is served at `at`: inside its validity window.
    pub fn active_at(&self, at: jiff::Timestamp) -> bool {
        self.valid_from.is_none_or(|from| from <= at) && self.valid_to.is_none_or(|to| at < to)
    }

    /// Whether the entry has a validity window at all.
    pub fn is_timed(&self) -> bool {
        self.valid_from.is_some() || self.valid_to.is_some()
    }

    /// Every phrasing that asks this entry's question: the standard question
    /// first, then the 相似问.
    pub fn phrasings(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.question.as_str()).chain(self.similar.iter().map(String::as_str))
    }

    /// Whether the entry applies on `platform` (platform-neutral entries apply everywhere).
    pub fn applies_to_platform(&self, platform: Platform) -> bool {
        self.platforms.is_empty() || self.platforms.contains(&platform)
    }

    /// Whether the entry applies to `product` (shop-wide entries apply to all).
    pub fn applies_to_product(&self, product: &str) -> bool {
        self.products.is_empty() || self.products.iter().any(|p| p == product)
    }
}

/// How sure kefu is that the top hit answers the question. Gap detection
/// (questions the knowledge base does not answer) is built on `Low`/`None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Nothing relevant was found.
    None,
    /// There are hits, but the top one may not answer the question.
    Low,
    /// The top hit very likely answers the question.
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::None => "none",
            Confidence::Low => "low",
            Confidence::High => "high",
        }
    }
}

/// One ranked answer to a search: an entry, how it matched, and where it lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub id: String,
    /// The standard question (标准问).
    pub question: String,
    /// The phrasing (标准问 or a 相似问) that matched the query best.
    pub matched: String,
    pub title: String,
    pub kind: Kind,
    pub products: Vec<String>,
    pub platforms: Vec<Platform>,
    pub audience: Audience,
    /// Ranking score; only comparable within one response.
    pub score: f32,
    /// A short plain-text excerpt of the answer.
    pub snippet: String,
    /// Character ranges `[start, end)` of `snippet` that match the query.
    pub highlights: Vec<[usize; 2]>,
    pub answer_markdown: String,
    pub answer_html: String,
    pub source: SourceRef,
}
