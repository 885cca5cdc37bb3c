//! YAML front matter: the metadata block between `---` lines at the top of a file.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{Audience, Kind, Platform};

/// The front-matter keys a copywriter may write. Unknown keys are errors so
/// that a typo such as `platform:` never silently widens an entry's reach.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub kind: Option<Kind>,
    #[serde(default)]
    pub products: Strings,
    #[serde(default)]
    pub platforms: Vec<Platform>,
    pub audience: Option<Audience>,
    #[serde(default)]
    pub tags: Strings,
}

/// A list of short strings that also accepts a single scalar (`products: SKU-1`)
/// and numbers (`products: [1001]`), which copywriters write naturally.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StringsVisitor;
        impl<'a> Visitor<'a> for StringsVisitor {
            type Value = Strings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Strings, E> {
                Ok(Strings(vec![v.to_string()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Strings, E> {
                Ok(Strings::default())
            }
            fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Strings, A::Error> {
                let mut out = Vec::new();
                while let Some(Scalar(s)) = seq.next_element()? {
                    out.push(s);
                }
                Ok(Strings(out))
            }
        }
        deserializer.deserialize_any(StringsVisitor)
    }
}

/// One string-or-number list item.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
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

/// Error from [`split`] or [`parse`]: a message and the 1-based file line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontMatterError {
    pub line: usize,
    pub message: String,
}

fn is_fence(line: &str, fence: &str) -> bool {
    line.trim_end() == fence
}

/// Cuts `text` (BOM already removed) into front matter and body. Front matter
/// exists only when the very first line is `---`.
pub fn split(text: &str) -> Result<Split<'_>, FrontMatterError> {
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
    Err(FrontMatterError {
        line: first_line,
        message: "front matter starts with `---` but has no closing `---` line".into(),
    })
}

/// Parses the YAML of a front-matter block that starts on file line `first_line`.
pub fn parse(yaml: &str, first_line: usize) -> Result<FrontMatter, FrontMatterError> {
    if yaml.trim().is_empty() {
        return Ok(FrontMatter::default());
    }
    serde_norway::from_str::<FrontMatter>(yaml).map_err(|err| {
        let line = err.location().map_or(first_line, |loc| first_line + loc.line().saturating_sub(1));
        let mut message = err.to_string();
        // The YAML library appends its own position, relative to the block.
        if let Some(i) = message.find(" at line ") {
            message.truncate(i);
        }
        FrontMatterError { line, message: format!("front matter: {message}") }
    })
}
