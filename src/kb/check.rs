//! Checks across entries and files: what no single file can tell on its own.
//!
//! Errors are problems that make answers wrong or ambiguous (two entries
//! claiming one id or one question, links to nothing); warnings are what a
//! copywriter should look at but that must not stop a reload (an expired
//! entry, a near-duplicate, an empty answer).

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use unicode_normalization::UnicodeNormalization;

use super::front_matter::{china, nearest};
use super::{Finding, Parsed};
use crate::model::{Entry, Kind};

/// Two phrasings of different entries this similar (Jaccard of character
/// bigrams) are reported as a likely duplicate. At 0.8 「这款靴子偏大还是偏小」
/// and 「这款靴子偏大还是偏小呢」 meet, 「能开发票吗」 and 「能开专票吗」 do not.
pub const NEAR_QUESTION: f64 = 0.8;
/// Answers this similar are reported as the same answer written twice.
pub const NEAR_ANSWER: f64 = 0.9;
/// Shorter answers are not compared: 「可以的。」 is everyone's answer.
const MIN_ANSWER_CHARS: usize = 30;
/// Sets indexed under one token. Templated text (the same answer for 500
/// products) would otherwise make the search quadratic; past this many, a
/// copywriter has been told about the template already.
const MAX_POSTING: usize = 16;

/// Runs every cross-entry check; `report(rel, finding)` receives problems
/// with the file path relative to the knowledge base.
pub(crate) fn cross_entry(parsed: &Parsed, rels: &[&str], now: Timestamp, report: &mut dyn FnMut(&str, Finding)) {
    unique_ids(parsed, report);
    phrasings(parsed, report);
    near_answers(parsed, report);
    for (entry, span) in parsed.entries.iter().zip(&parsed.spans) {
        if entry.answer_markdown.trim().is_empty() {
            report(
                &entry.source.path,
                Finding::warning(span.line, 1, format!("entry `{}` has no answer", entry.id))
                    .hint("write the answer below the heading (and below the 相似问 line)"),
            );
        }
        if let Some(to) = entry.valid_to.filter(|to| *to <= now) {
            let (line, col) = span.valid_to_at.unwrap_or((span.line, 1));
            report(
                &entry.source.path,
                Finding::warning(
                    line,
                    col,
                    format!("entry `{}` expired at {} (China time) and is no longer served", entry.id, china(to)),
                )
                .hint("delete the entry, or move `valid_to` if it should still be answered"),
            );
        }
    }
    links(parsed, rels, report);
    products(parsed, report);
}

fn unique_ids(parsed: &Parsed, report: &mut dyn FnMut(&str, Finding)) {
    let mut seen: HashMap<&str, &Entry> = HashMap::new();
    for (entry, span) in parsed.entries.iter().zip(&parsed.spans) {
        match seen.get(entry.id.as_str()) {
            Some(first) => report(
                &entry.source.path,
                Finding::error(
                    span.line,
                    1,
                    format!("duplicate id `{}`: already used at {}:{}", entry.id, first.source.path, first.source.line),
                )
                .hint("ids must be unique: change one `{#…}`, or merge the two entries"),
            ),
            None => {
                seen.insert(&entry.id, entry);
            }
        }
    }
}

/// The form two phrasings are compared in: case, width, spaces and
/// punctuation do not make a different question.
pub fn comparable(text: &str) -> String {
    text.chars().flat_map(|c| c.nfkc()).filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Whether two entries can both be served for one search: their products,
/// platforms and validity windows overlap (empty means "all").
fn same_scope(a: &Entry, b: &Entry) -> bool {
    let products = a.products.is_empty() || b.products.is_empty() || a.products.iter().any(|p| b.products.contains(p));
    let platforms =
        a.platforms.is_empty() || b.platforms.is_empty() || a.platforms.iter().any(|p| b.platforms.contains(p));
    let before = |from: Option<Timestamp>, to: Option<Timestamp>| match (from, to) {
        (Some(from), Some(to)) => from < to,
        _ => true,
    };
    products && platforms && before(a.valid_from, b.valid_to) && before(b.valid_from, a.valid_to)
}

/// Whether one entry is a narrower version of the other: only some products
/// or platforms, or only for a time, where the other applies throughout. A
/// 拼多多 version of a general answer, or holiday shipping standing in for
/// the usual shipping times, is deliberate; two general answers are not.
fn specialises(a: &Entry, b: &Entry) -> bool {
    let narrower = |x: &[String], y: &[String]| !x.is_empty() && y.is_empty();
    let narrower_platforms = |x: &Entry, y: &Entry| {
        !x.platforms.is_empty() && (y.platforms.is_empty() || x.platforms.len() < y.platforms.len())
    };
    narrower(&a.products, &b.products)
        || narrower(&b.products, &a.products)
        || narrower_platforms(a, b)
        || narrower_platforms(b, a)
        || a.is_timed() != b.is_timed()
}

/// One phrasing (标准问 or 相似问) with where it was written.
struct Phrasing<'a> {
    entry: usize,
    text: &'a str,
    line: usize,
    col: usize,
    similar: bool,
}

fn phrasings(parsed: &Parsed, report: &mut dyn FnMut(&str, Finding)) {
    let mut all = Vec::new();
    for (i, (entry, span)) in parsed.entries.iter().zip(&parsed.spans).enumerate() {
        all.push(Phrasing { entry: i, text: &entry.question, line: span.line, col: 1, similar: false });
        for s in &span.similar {
            all.push(Phrasing { entry: i, text: &s.value, line: s.line, col: s.col, similar: true });
        }
    }
    let keys: Vec<String> = all.iter().map(|p| comparable(p.text)).collect();
    let entries = &parsed.entries;
    let describe = |p: &Phrasing| if p.similar { "相似问" } else { "标准问" };
    // Earlier phrasings by comparable form, split by product so that a
    // phrasing repeated for 500 products is compared only where scopes can
    // overlap: with shop-wide ones, and with its own products' ones.
    #[derive(Default)]
    struct Seen<'a> {
        wide: Vec<usize>,
        by_product: HashMap<&'a str, Vec<usize>>,
    }
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    let mut exact: HashSet<(usize, usize)> = HashSet::new();
    for (i, p) in all.iter().enumerate() {
        let key = keys[i].as_str();
        if key.is_empty() {
            continue;
        }
        let b = &entries[p.entry];
        let group = seen.entry(key).or_default();
        let lists: Vec<&Vec<usize>> = if b.products.is_empty() {
            std::iter::once(&group.wide).chain(group.by_product.values()).collect()
        } else {
            std::iter::once(&group.wide)
                .chain(b.products.iter().filter_map(|product| group.by_product.get(product.as_str())))
                .collect()
        };
        // The conflict to report: an earlier phrasing of another entry in an
        // overlapping scope, preferring a real conflict over a special case.
        let mut conflict: Option<(usize, bool)> = None;
        let mut repeated: Option<usize> = None;
        'scan: for list in lists {
            for &j in list {
                let q = &all[j];
                if q.entry == p.entry {
                    repeated.get_or_insert(j);
                    continue;
                }
                let a = &entries[q.entry];
                if !same_scope(a, b) {
                    continue;
                }
                let error = !specialises(a, b);
                if conflict.is_none_or(|(_, was_error)| error && !was_error) {
                    conflict = Some((j, error));
                }
                if error {
                    break 'scan;
                }
            }
        }
        if let Some(j) = repeated {
            let (what, hint) = if all[j].similar {
                ("another 相似问", "remove one of the two")
            } else {
                ("the 标准问", "remove it: the 标准问 is always searched")
            };
            report(
                &b.source.path,
                Finding::warning(p.line, p.col, format!("{} `{}` repeats {what}", describe(p), p.text)).hint(hint),
            );
        }
        if let Some((j, error)) = conflict {
            let q = &all[j];
            let a = &entries[q.entry];
            exact.insert((q.entry, p.entry));
            let place = format!("`{}` ({}:{})", a.id, a.source.path, q.line);
            let message = format!("{} `{}` is also the {} of {place}", describe(p), p.text, describe(q));
            let finding = if error {
                Finding::error(p.line, p.col, message).hint(
                    "keep each phrasing under one entry, or limit the entries to different products, platforms or times",
                )
            } else {
                Finding::warning(p.line, p.col, format!("{message}; where both apply, both are answers"))
                    .hint("fine if one is the special case of the other; otherwise keep the phrasing under one entry")
            };
            report(&b.source.path, finding);
        }
        if b.products.is_empty() {
            group.wide.push(i);
        } else {
            for product in &b.products {
                group.by_product.entry(product.as_str()).or_default().push(i);
            }
        }
    }

    // Near-duplicates: pairs of entries whose phrasings almost match.
    let sets: Vec<Vec<u32>> = Vocabulary::bigram_sets(keys.iter().map(String::as_str));
    let mut reported: HashSet<(usize, usize)> = exact;
    let near = similar_pairs(&sets, NEAR_QUESTION, |i, j| {
        all[i].entry != all[j].entry && same_scope(&entries[all[i].entry], &entries[all[j].entry])
    });
    for (i, j, similarity) in near {
        let (p, q) = if i > j { (&all[i], &all[j]) } else { (&all[j], &all[i]) };
        let (a, b) = (&entries[q.entry], &entries[p.entry]);
        let pair = (q.entry.min(p.entry), q.entry.max(p.entry));
        if q.entry == p.entry || keys[i] == keys[j] || !same_scope(a, b) || !reported.insert(pair) {
            continue;
        }
        let (later, earlier) = if p.entry > q.entry { (p, q) } else { (q, p) };
        let (later_entry, earlier_entry) = (&entries[later.entry], &entries[earlier.entry]);
        let spans = &parsed.spans;
        report(
            &later_entry.source.path,
            Finding::warning(
                spans[later.entry].line,
                1,
                format!(
                    "entry `{}` may duplicate `{}` ({}:{}): `{}` ≈ `{}` ({:.0}% alike)",
                    later_entry.id,
                    earlier_entry.id,
                    earlier_entry.source.path,
                    spans[earlier.entry].line,
                    later.text,
                    earlier.text,
                    similarity * 100.0
                ),
            )
            .hint("merge them and keep the other wording as a 相似问, or make the questions clearly different"),
        );
    }
}

fn near_answers(parsed: &Parsed, report: &mut dyn FnMut(&str, Finding)) {
    let candidates: Vec<usize> = (0..parsed.entries.len())
        .filter(|&i| parsed.entries[i].answer_text.chars().count() >= MIN_ANSWER_CHARS)
        .collect();
    let keys: Vec<String> = candidates.iter().map(|&i| comparable(&parsed.entries[i].answer_text)).collect();
    let sets = Vocabulary::bigram_sets(keys.iter().map(String::as_str));
    let entries = &parsed.entries;
    let mut pairs =
        similar_pairs(&sets, NEAR_ANSWER, |i, j| same_scope(&entries[candidates[i]], &entries[candidates[j]]));
    pairs.sort_by_key(|&(i, j, _)| (i.max(j), i.min(j)));
    let mut reported = HashSet::new();
    for (i, j, similarity) in pairs {
        let (earlier, later) = (candidates[i.min(j)], candidates[i.max(j)]);
        let (a, b) = (&parsed.entries[earlier], &parsed.entries[later]);
        if !same_scope(a, b) || !reported.insert(later) {
            continue;
        }
        report(
            &b.source.path,
            Finding::warning(
                parsed.spans[later].line,
                1,
                format!(
                    "entry `{}` has the same answer as `{}` ({}:{}, {:.0}% alike)",
                    b.id,
                    a.id,
                    a.source.path,
                    a.source.line,
                    similarity * 100.0
                ),
            )
            .hint("if they answer one question, merge them and keep the second question as a 相似问"),
        );
    }
}

/// Interns character bigrams so that sets are small sorted integer lists.
#[derive(Default)]
struct Vocabulary(HashMap<(char, char), u32>);

impl Vocabulary {
    fn bigram_sets<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<Vec<u32>> {
        let mut vocabulary = Vocabulary::default();
        texts
            .map(|text| {
                let chars: Vec<char> = text.chars().collect();
                let mut set: Vec<u32> = if chars.len() == 1 {
                    vec![vocabulary.id((chars[0], '\0'))]
                } else {
                    chars.windows(2).map(|w| vocabulary.id((w[0], w[1]))).collect()
                };
                set.sort_unstable();
                set.dedup();
                set
            })
            .collect()
    }

    fn id(&mut self, bigram: (char, char)) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(bigram).or_insert(next)
    }
}

/// Pairs of sets with Jaccard similarity ≥ `threshold`, found by prefix
/// filtering: ordered by rarity, two sets that alike must share one of the
/// first `|s| - ⌈t·|s|⌉ + 1` tokens of each, so only those are indexed. Exact
/// up to [`MAX_POSTING`] sets per token, which bounds the work on templated
/// text, so that it runs on every reload of a 100k-entry knowledge base.
fn similar_pairs(
    sets: &[Vec<u32>],
    threshold: f64,
    eligible: impl Fn(usize, usize) -> bool,
) -> Vec<(usize, usize, f64)> {
    // Token ids are dense (see `Vocabulary`), so plain vectors index them.
    let tokens = sets.iter().flatten().max().map_or(0, |&t| t as usize + 1);
    let mut frequency = vec![0u32; tokens];
    for &token in sets.iter().flatten() {
        frequency[token as usize] += 1;
    }
    let mut postings: Vec<Vec<u32>> = vec![Vec::new(); tokens];
    // `stamp[j] == i + 1`: set j was already a candidate of set i.
    let mut stamp = vec![0u32; sets.len()];
    let mut pairs = Vec::new();
    let mut by_rarity: Vec<u32> = Vec::new();
    for (i, set) in sets.iter().enumerate() {
        if set.is_empty() {
            continue;
        }
        by_rarity.clear();
        by_rarity.extend_from_slice(set);
        by_rarity.sort_unstable_by_key(|&t| (frequency[t as usize], t));
        let prefix = (set.len() - (threshold * set.len() as f64).ceil() as usize + 1).min(set.len());
        for &token in &by_rarity[..prefix] {
            for &j in &postings[token as usize] {
                let j = j as usize;
                if stamp[j] == i as u32 + 1 {
                    continue;
                }
                stamp[j] = i as u32 + 1;
                // Sets that alike have sizes within the threshold of each other.
                let (small, large) = (set.len().min(sets[j].len()), set.len().max(sets[j].len()));
                if (small as f64) < threshold * large as f64 || !eligible(i, j) {
                    continue;
                }
                let similarity = jaccard(set, &sets[j]);
                if similarity >= threshold {
                    pairs.push((i, j, similarity));
                }
            }
        }
        for &token in &by_rarity[..prefix] {
            let list = &mut postings[token as usize];
            if list.len() < MAX_POSTING {
                list.push(i as u32);
            }
        }
    }
    pairs
}

/// Jaccard similarity of two sorted, deduplicated sets.
fn jaccard(a: &[u32], b: &[u32]) -> f64 {
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() + b.len() - shared;
    if union == 0 {
        0.0
    } else {
        shared as f64 / union as f64
    }
}

/// Links in answers: `#id` to an entry, `file.md` or `file.md#id` to a file
/// of the knowledge base (relative to the linking file, or `/` for the root).
fn links(parsed: &Parsed, rels: &[&str], report: &mut dyn FnMut(&str, Finding)) {
    let ids: HashMap<&str, &str> = parsed.entries.iter().map(|e| (e.id.as_str(), e.source.path.as_str())).collect();
    let files: HashSet<&str> = rels.iter().copied().collect();
    let mut all_ids: Option<Vec<&str>> = None;
    for (entry, span) in parsed.entries.iter().zip(&parsed.spans) {
        for link in &span.links {
            let target = link.value.trim();
            let (path, fragment) = match target.split_once('#') {
                Some((path, fragment)) => (path, Some(fragment)),
                None => (target, None),
            };
            let is_external = path.contains(':') || path.starts_with("//");
            if is_external || !(path.is_empty() || path.ends_with(".md")) {
                continue;
            }
            let file = if path.is_empty() { None } else { Some(resolve(&entry.source.path, path)) };
            let problem = match (&file, fragment) {
                (Some(None), _) => Some(format!("link `{target}` leaves the knowledge base")),
                (Some(Some(file)), _) if !files.contains(file.as_str()) => {
                    Some(format!("link `{target}`: there is no file `{file}`"))
                }
                (_, Some(id)) if !id.is_empty() => match ids.get(id) {
                    None => Some(format!("link `{target}`: there is no entry with id `{id}`")),
                    Some(in_file) if file.as_ref().is_some_and(|f| f.as_deref() != Some(*in_file)) => {
                        Some(format!("link `{target}`: entry `{id}` is in `{in_file}`"))
                    }
                    Some(_) => None,
                },
                _ => None,
            };
            let Some(message) = problem else { continue };
            let ids = all_ids.get_or_insert_with(|| parsed.entries.iter().map(|e| e.id.as_str()).collect());
            let hint = fragment
                .and_then(|id| nearest(id, ids))
                .map(|near| format!("did you mean `#{near}`?"))
                .unwrap_or_else(|| "link to an entry as `[text](#id)`, with the id from its heading `{#id}`".into());
            report(&entry.source.path, Finding::error(link.line, link.col, message).hint(hint));
        }
    }
}

/// Resolves `link` relative to the folder of `from` (both relative to the
/// knowledge-base root); `None` when it climbs out of the root.
fn resolve(from: &str, link: &str) -> Option<String> {
    let mut parts: Vec<&str> = if link.starts_with('/') {
        Vec::new()
    } else {
        from.split('/').collect::<Vec<_>>().split_last().map_or(Vec::new(), |(_, dir)| dir.to_vec())
    };
    for part in link.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

/// Products named in rules and FAQ files should have a product file, and a
/// product file should say which products it describes.
fn products(parsed: &Parsed, report: &mut dyn FnMut(&str, Finding)) {
    let described: HashSet<&str> = parsed
        .files
        .iter()
        .filter(|f| f.folder_kind == Kind::Product)
        .flat_map(|f| f.products.iter().map(|p| p.value.as_str()))
        .collect();
    for file in &parsed.files {
        if file.folder_kind == Kind::Product {
            if file.products.is_empty() {
                report(
                    &file.rel,
                    Finding::warning(1, 1, "product file lists no `products:`, so its entries apply to every product")
                        .hint("add `products: [SKU-…]` to the front matter"),
                );
            }
            continue;
        }
        for product in &file.products {
            if !described.contains(product.value.as_str()) {
                let hint = match nearest(&product.value, &described.iter().copied().collect::<Vec<_>>()) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!(
                        "add a file under products/ with `products: [{}]`, or fix the product id",
                        product.value
                    ),
                };
                report(
                    &file.rel,
                    Finding::warning(
                        product.line,
                        product.col,
                        format!("product `{}` has no product file", product.value),
                    )
                    .hint(hint),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparable_ignores_width_case_and_punctuation() {
        assert_eq!(comparable("能开发票吗？"), comparable("能开发票吗"));
        assert_eq!(comparable("ＳＦ 包邮吗"), comparable("sf包邮吗!"));
        assert_ne!(comparable("能开发票吗"), comparable("能开专票吗"));
    }

    #[test]
    fn prefix_filtering_finds_exactly_the_alike_pairs() {
        let texts = ["这款靴子偏大还是偏小", "这款靴子偏大还是偏小呢", "能开发票吗", "能开专票吗", "靴子偏大吗"];
        let keys: Vec<String> = texts.iter().map(|t| comparable(t)).collect();
        let sets = Vocabulary::bigram_sets(keys.iter().map(String::as_str));
        let found: Vec<(usize, usize)> =
            similar_pairs(&sets, NEAR_QUESTION, |_, _| true).iter().map(|p| (p.0, p.1)).collect();
        let mut brute = Vec::new();
        for i in 0..sets.len() {
            for j in 0..i {
                if jaccard(&sets[i], &sets[j]) >= NEAR_QUESTION {
                    brute.push((i, j));
                }
            }
        }
        assert_eq!(found, brute);
        assert_eq!(found, vec![(1, 0)]);
    }

    #[test]
    fn links_resolve_relative_to_the_linking_file() {
        assert_eq!(resolve("faq/logistics.md", "../rules/tmall.md").as_deref(), Some("rules/tmall.md"));
        assert_eq!(resolve("faq/logistics.md", "payment.md").as_deref(), Some("faq/payment.md"));
        assert_eq!(resolve("faq/logistics.md", "/rules/jd.md").as_deref(), Some("rules/jd.md"));
        assert_eq!(resolve("faq/logistics.md", "../../etc/passwd.md"), None);
    }
}
