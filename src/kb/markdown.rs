//! Markdown: the one place that configures pulldown-cmark, finds the `#`/`##`
//! headings that structure a knowledge-base file, and renders answers.

use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Builds the parser every part of kefu uses, so that headings, attribute
/// blocks and tables are understood the same way when splitting and rendering.
pub fn new_cmark_parser(text: &str) -> Parser<'_> {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_HEADING_ATTRIBUTES;
    Parser::new_ext(text, options)
}

/// A `#` or `##` heading found in a file body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// 1 for `#`, 2 for `##`.
    pub level: u8,
    /// Heading text with Markdown markup and the `{…}` attribute block removed.
    pub text: String,
    /// `#id` from the attribute block.
    pub id: Option<String>,
    /// `.class` names from the attribute block (`.internal`).
    pub classes: Vec<String>,
    /// `key=value` attributes from the attribute block (`valid_to=2026-11-11`).
    pub attrs: Vec<(String, Option<String>)>,
    /// Byte range of the whole heading (its line) in the body.
    pub range: Range<usize>,
}

/// Finds the level-1 and level-2 headings of `body`, in order. Headings inside
/// code blocks or quotes are not headings, as a Markdown reader would expect.
pub fn headings(body: &str) -> Vec<Heading> {
    let mut out = Vec::new();
    let mut current: Option<Heading> = None;
    let mut depth = 0usize;
    for (event, range) in new_cmark_parser(body).into_offset_iter() {
        match event {
            // Only `#` headings structure a file: a line of `---` under a
            // paragraph (a setext heading to Markdown) is a copywriter's separator.
            Event::Start(Tag::Heading { level, id, classes, attrs })
                if depth == 0 && body[range.clone()].trim_start().starts_with('#') =>
            {
                let level = match level {
                    HeadingLevel::H1 => 1,
                    HeadingLevel::H2 => 2,
                    _ => continue,
                };
                current = Some(Heading {
                    level,
                    text: String::new(),
                    id: id.map(|s| s.to_string()),
                    classes: classes.iter().map(|c| c.to_string()).collect(),
                    attrs: attrs.iter().map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_string()))).collect(),
                    range,
                });
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(mut heading) = current.take() {
                    heading.text = heading.text.split_whitespace().collect::<Vec<_>>().join(" ");
                    out.push(heading);
                }
            }
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = current.as_mut() {
                    heading.text.push_str(&text);
                }
            }
            Event::Start(Tag::BlockQuote(_) | Tag::List(_) | Tag::FootnoteDefinition(_)) => depth += 1,
            Event::End(TagEnd::BlockQuote(_) | TagEnd::List(_) | TagEnd::FootnoteDefinition) => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
    }
    out
}

/// The destinations of the links in `markdown`, each with the byte offset
/// where the link starts, so checks can point at it.
pub fn links(markdown: &str) -> Vec<(String, usize)> {
    new_cmark_parser(markdown)
        .into_offset_iter()
        .filter_map(|(event, range)| match event {
            Event::Start(Tag::Link { dest_url, .. }) => Some((dest_url.to_string(), range.start)),
            _ => None,
        })
        .collect()
}

/// Renders answer Markdown to HTML that is safe to put on a product page:
/// copywriters may write raw HTML, but scripts, event handlers and
/// `javascript:` links are removed by ammonia's allow-list.
pub fn render_html(markdown: &str) -> String {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, new_cmark_parser(markdown));
    ammonia::clean(&html)
}

/// Removes HTML comments: they are notes between copywriters (cost prices,
/// reminders) and must never be served, not even in the raw Markdown.
pub fn strip_comments(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The readable text of answer Markdown: markup removed, blocks separated by
/// newlines, runs of spaces folded. Raw HTML tags are dropped, and so is
/// what raw `<script>`, `<style>` and the like enclose: it is code, not
/// text, and must not turn up in a buyer's snippet.
pub fn plain_text(markdown: &str) -> String {
    let mut text = String::with_capacity(markdown.len());
    let mut inside: Option<&'static str> = None;
    for event in new_cmark_parser(markdown) {
        match event {
            Event::Html(raw) | Event::InlineHtml(raw) => inside = raw_element(&raw, inside),
            Event::Text(_) | Event::Code(_) if inside.is_some() => {}
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item | TagEnd::TableRow | TagEnd::TableHead,
            ) => text.push('\n'),
            Event::End(TagEnd::TableCell) => text.push(' '),
            _ => {}
        }
    }
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Raw HTML elements whose content is not readable text.
const NON_TEXT_ELEMENTS: [&str; 7] = ["script", "style", "iframe", "object", "noscript", "template", "textarea"];

/// Which non-text element is open after the raw HTML `raw`, given the one
/// open before it.
fn raw_element(raw: &str, mut inside: Option<&'static str>) -> Option<&'static str> {
    let lower = raw.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        match inside {
            Some(name) => {
                if rest.strip_prefix('/').is_some_and(|r| r.starts_with(name)) {
                    inside = None;
                }
            }
            None => {
                inside = NON_TEXT_ELEMENTS
                    .iter()
                    .copied()
                    .find(|name| rest.strip_prefix(name).is_some_and(|r| r.starts_with(['>', ' ', '/', '\t', '\n'])));
                // `<script/>` and `<iframe …/>` enclose nothing.
                if inside.is_some() && rest.split('>').next().is_some_and(|tag| tag.ends_with('/')) {
                    inside = None;
                }
            }
        }
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_attributes_are_parsed_and_stripped() {
        let hs = headings("# 标题\n\n## 能开发票吗？ {#invoice .internal}\n答案\n");
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].text, "能开发票吗？");
        assert_eq!(hs[1].id.as_deref(), Some("invoice"));
        assert_eq!(hs[1].classes, vec!["internal".to_string()]);
    }

    #[test]
    fn heading_key_value_attributes_are_kept() {
        let hs = headings("## 春节发货吗？ {#cny valid_to=2027-02-20}\n答\n");
        assert_eq!(hs[0].attrs, vec![("valid_to".to_string(), Some("2027-02-20".to_string()))]);
    }

    #[test]
    fn links_are_found_with_their_offsets() {
        let text = "见[七天无理由](#seven-day)和[天猫](../rules/tmall.md#invoice)。";
        let found = links(text);
        assert_eq!(found[0], ("#seven-day".to_string(), text.find('[').unwrap()));
        assert_eq!(found[1].0, "../rules/tmall.md#invoice");
    }

    #[test]
    fn headings_in_code_blocks_are_not_entries() {
        let hs = headings("## 真的\n```\n## 假的\n```\n");
        assert_eq!(hs.len(), 1);
    }

    #[test]
    fn underlined_text_is_not_an_entry_heading() {
        let hs = headings("## 问一\n相似问：甲｜乙\n答一\n不是标题\n---\n更多\n");
        assert_eq!(hs.len(), 1);
    }

    #[test]
    fn scripts_never_survive_rendering() {
        let html = render_html("<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
    }

    #[test]
    fn comments_are_removed() {
        assert_eq!(strip_comments("答<!-- 成本价 30 -->案<!-- 未闭合"), "答案");
    }

    #[test]
    fn plain_text_drops_what_scripts_enclose() {
        let text = plain_text("拆开<script>alert('x')</script>就好<STYLE>p{}</STYLE>。<iframe src=a></iframe>完");
        assert_eq!(text, "拆开就好。完");
    }

    #[test]
    fn plain_text_drops_markup() {
        assert_eq!(plain_text("**顺丰**包邮\n\n- 圆通\n- 韵达"), "顺丰包邮\n圆通\n韵达");
    }
}
