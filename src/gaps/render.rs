//! The gap report for people: a terminal table, CSV for spreadsheets,
//! Markdown for an issue or a wiki, and the HTML page at `/admin/gaps`.

use std::fmt::Write;

use super::{Gap, Report, Status, Suggestion};

fn suggestion_text(gap: &Gap) -> String {
    match (gap.suggestion, &gap.nearest, &gap.resolved_by) {
        (Suggestion::None, _, Some(by)) => format!("resolved by {}", by.id),
        (Suggestion::AddSimilar, Some(n), _) => format!("add as 相似问 to {}", n.id),
        _ => "write a new entry".to_string(),
    }
}

fn status_text(status: Status) -> &'static str {
    match status {
        Status::Open => "open",
        Status::Resolved => "resolved",
    }
}

/// The date part of a report time (`2026-11-24T…`).
fn day(time: &str) -> &str {
    time.get(..10).unwrap_or(time)
}

/// Display width of a string in a terminal: CJK characters take two columns.
fn width(text: &str) -> usize {
    text.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars() {
        let cw = if c.is_ascii() { 1 } else { 2 };
        if w + cw > max.saturating_sub(1) {
            break;
        }
        out.push(c);
        w += cw;
    }
    out.push('…');
    out
}

fn pad(text: &str, to: usize) -> String {
    let mut out = text.to_string();
    out.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    out
}

/// A table for `kefu gaps` in a terminal.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let _ = writeln!(
        out,
        "{} searches, {} gaps ({:.1}%) from {} to {}: {} open clusters, {} resolved",
        t.searches,
        t.gaps,
        if t.searches > 0 { t.gaps as f64 * 100.0 / t.searches as f64 } else { 0.0 },
        day(&report.since),
        day(&report.until),
        t.open,
        t.resolved
    );
    if report.gaps.is_empty() {
        out.push_str("no gaps: every question found a confident answer\n");
    } else {
        let _ = writeln!(
            out,
            "\n{}  {}  {}  {}  suggestion",
            pad("count", 5),
            pad("status", 8),
            pad("question", 36),
            pad("asked as", 6),
        );
        for gap in &report.gaps {
            let _ = writeln!(
                out,
                "{:>5}  {}  {}  {:>6}  {}",
                gap.count,
                pad(status_text(gap.status), 8),
                pad(&truncate(&gap.representative, 36), 36),
                gap.questions.len(),
                suggestion_text(gap)
            );
        }
    }
    for product in &report.asked_despite_answered {
        let _ = writeln!(out, "\nasked agents although the {} page answers it ({}):", product.product, product.count);
        for entry in &product.entries {
            let _ = writeln!(out, "{:>5}  {} [{}]", entry.count, entry.question, entry.id);
        }
    }
    if !report.unsatisfying.is_empty() {
        out.push_str("\nanswers that do not satisfy (helpful / not helpful):\n");
        for entry in &report.unsatisfying {
            let _ = writeln!(out, "{:>3} / {:<3}  {} [{}]", entry.helpful, entry.unhelpful, entry.question, entry.id);
        }
    }
    out
}

fn csv_field(text: &str) -> String {
    // A leading = + - @ would be run as a formula by spreadsheets.
    let text = if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_string() };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One row per cluster, for spreadsheets (UTF-8 with a byte-order mark so
/// that spreadsheet programs read the Chinese correctly).
pub fn csv(report: &Report) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(
        "id,status,count,representative,first_seen,last_seen,products,platforms,sources,nearest_id,nearest_question,similarity,suggestion,questions\r\n",
    );
    for gap in &report.gaps {
        let questions: Vec<String> = gap.questions.iter().map(|q| format!("{} ×{}", q.text, q.count)).collect();
        let fields = [
            gap.id.clone(),
            status_text(gap.status).to_string(),
            gap.count.to_string(),
            gap.representative.clone(),
            gap.first_seen.clone(),
            gap.last_seen.clone(),
            gap.products.join(" "),
            gap.platforms.join(" "),
            gap.sources.join(" "),
            gap.nearest.as_ref().map_or_else(String::new, |n| n.id.clone()),
            gap.nearest.as_ref().map_or_else(String::new, |n| n.question.clone()),
            gap.nearest.as_ref().map_or_else(String::new, |n| format!("{:.2}", n.similarity)),
            suggestion_text(gap),
            questions.join(" | "),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown report.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    let t = &report.totals;
    let _ = writeln!(out, "# FAQ gaps {} – {}\n", day(&report.since), day(&report.until));
    let _ = writeln!(
        out,
        "{} searches, {} without a good answer; {} open clusters, {} resolved.\n",
        t.searches, t.gaps, t.open, t.resolved
    );
    out.push_str("| count | status | question | also asked as | suggestion |\n|---:|---|---|---|---|\n");
    for gap in &report.gaps {
        let others: Vec<String> = gap.questions.iter().skip(1).take(5).map(|q| md_cell(&q.text)).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            gap.count,
            status_text(gap.status),
            md_cell(&gap.representative),
            others.join("<br>"),
            md_cell(&suggestion_text(gap))
        );
    }
    for product in &report.asked_despite_answered {
        let _ = writeln!(out, "\n## Asked agents although the {} page answers it\n", product.product);
        for entry in &product.entries {
            let _ = writeln!(out, "- {} × {} (`{}`)", entry.count, md_cell(&entry.question), entry.id);
        }
    }
    if !report.unsatisfying.is_empty() {
        out.push_str("\n## Answers that do not satisfy\n\n");
        for entry in &report.unsatisfying {
            let _ = writeln!(
                out,
                "- {} (`{}`): {} helpful, {} not helpful",
                md_cell(&entry.question),
                entry.id,
                entry.helpful,
                entry.unhelpful
            );
        }
    }
    out
}

/// The filters the HTML page was asked for, echoed into its form.
#[derive(Debug, Clone, Default)]
pub struct HtmlFilters {
    pub days: String,
    pub product: String,
    pub platform: String,
    pub source: String,
    pub status: String,
    /// The request's query string, for the CSV link.
    pub query_string: String,
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Searches and gaps per day as an inline SVG bar chart.
fn chart(report: &Report) -> String {
    let days = &report.days;
    if days.is_empty() {
        return String::new();
    }
    let max = days.iter().map(|d| d.searches).max().unwrap_or(0).max(1) as f64;
    let bar = (720.0 / days.len() as f64).clamp(2.0, 40.0);
    let w = bar * days.len() as f64;
    let h = 120.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {w:.0} {:.0}" role="img" aria-label="searches and gaps per day" preserveAspectRatio="none">"#,
        h + 16.0
    );
    for (i, d) in days.iter().enumerate() {
        let x = i as f64 * bar;
        let sh = d.searches as f64 / max * h;
        let gh = d.gaps as f64 / max * h;
        let _ = write!(
            svg,
            r#"<g><title>{}: {} searches, {} gaps</title><rect class="s" x="{x:.1}" y="{:.1}" width="{:.1}" height="{sh:.1}"/><rect class="g" x="{x:.1}" y="{:.1}" width="{:.1}" height="{gh:.1}"/></g>"#,
            escape(&d.day),
            d.searches,
            d.gaps,
            h - sh,
            (bar - 1.0).max(1.0),
            h - gh,
            (bar - 1.0).max(1.0),
        );
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="{:.0}">{}</text><text x="{w:.0}" y="{:.0}" text-anchor="end">{}</text></svg>"#,
        h + 14.0,
        escape(&days[0].day),
        h + 14.0,
        escape(&days[days.len() - 1].day)
    );
    svg
}

/// The copywriters' page: filters, the per-day chart and the clusters.
/// Everything that came from buyers or `kb/` is escaped.
pub fn html(report: &Report, query: &HtmlFilters) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>kefu · FAQ gaps</title><style>
body{font:14px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
header,main{max-width:1100px;margin:0 auto;padding:12px 20px}
h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:24px 0 8px}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:end}label{display:flex;flex-direction:column;font-size:12px;color:#57606a}
input,select,button{font:inherit;padding:4px 6px}
.chart{width:100%;height:140px;background:#fff;border:1px solid #d0d7de;border-radius:6px}.chart .s{fill:#b6d4fe}.chart .g{fill:#e5534b}.chart text{font-size:10px;fill:#57606a}
table{width:100%;border-collapse:collapse;background:#fff}th,td{border-bottom:1px solid #d0d7de;padding:6px 8px;text-align:left;vertical-align:top}
th{font-size:12px;color:#57606a}td.n{text-align:right;font-variant-numeric:tabular-nums}
.resolved{color:#1a7f37}.open{color:#cf222e}.muted{color:#57606a;font-size:12px}
details summary{cursor:pointer}ul{margin:4px 0;padding-left:18px}
.totals{display:flex;gap:16px;flex-wrap:wrap}.totals div{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:6px 12px}
</style></head><body><header><h1>FAQ gaps</h1>"#,
    );
    let _ = write!(
        out,
        r#"<form method="get" action="/admin/gaps"><label>days<input name="days" type="number" min="1" max="3650" value="{}"></label><label>product<input name="product" value="{}"></label><label>platform<select name="platform">"#,
        escape(&query.days),
        escape(&query.product)
    );
    for p in ["", "taobao", "tmall", "jd", "pdd"] {
        let selected = if query.platform == p { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{p}"{selected}>{}</option>"#, if p.is_empty() { "any" } else { p });
    }
    out.push_str(r#"</select></label><label>source<select name="source">"#);
    for s in ["", "widget", "agent", "api", "cli"] {
        let selected = if query.source == s { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{s}"{selected}>{}</option>"#, if s.is_empty() { "any" } else { s });
    }
    out.push_str(r#"</select></label><label>status<select name="status">"#);
    for s in ["all", "open", "resolved"] {
        let selected = if query.status == s { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{s}"{selected}>{s}</option>"#);
    }
    let _ = write!(
        out,
        r#"</select></label><button type="submit">show</button> <a href="/v1/gaps.csv?{}">CSV</a></form></header><main>"#,
        escape(&query.query_string)
    );
    let t = &report.totals;
    let _ = write!(
        out,
        r#"<div class="totals"><div>{} searches</div><div>{} gaps ({:.1}%)</div><div class="open">{} open</div><div class="resolved">{} resolved</div><div class="muted">{} – {}<br>index {}</div></div>"#,
        t.searches,
        t.gaps,
        if t.searches > 0 { t.gaps as f64 * 100.0 / t.searches as f64 } else { 0.0 },
        t.open,
        t.resolved,
        escape(day(&report.since)),
        escape(day(&report.until)),
        escape(&report.revision)
    );
    out.push_str("<h2>Searches (blue) and gaps (red) per day</h2>");
    out.push_str(&chart(report));
    out.push_str(r#"<h2>Questions without a good answer</h2><table><thead><tr><th>count</th><th>question</th><th>products · platforms · sources</th><th>nearest entry</th><th>suggestion</th><th>last seen</th></tr></thead><tbody>"#);
    if report.gaps.is_empty() {
        out.push_str(r#"<tr><td colspan="6" class="muted">No gaps in this window.</td></tr>"#);
    }
    for gap in &report.gaps {
        let _ = write!(
            out,
            r#"<tr id="{}"><td class="n">{}</td><td><details><summary>{}</summary><ul>"#,
            escape(&gap.id),
            gap.count,
            escape(&gap.representative)
        );
        for q in &gap.questions {
            let _ = write!(out, "<li>{} <span class=\"muted\">×{}</span></li>", escape(&q.text), q.count);
        }
        let _ = write!(
            out,
            r#"</ul></details></td><td class="muted">{}<br>{}<br>{}</td><td>"#,
            escape(&gap.products.join(" ")),
            escape(&gap.platforms.join(" ")),
            escape(&gap.sources.join(" "))
        );
        if let Some(n) = &gap.nearest {
            let _ = write!(
                out,
                r#"{} <span class="muted">{} · {:.2}</span>"#,
                escape(&n.question),
                escape(&n.id),
                n.similarity
            );
        }
        let _ = write!(
            out,
            r#"</td><td class="{}">{}</td><td class="muted">{}</td></tr>"#,
            status_text(gap.status),
            escape(&suggestion_text(gap)),
            escape(&gap.last_seen.get(..16).unwrap_or(&gap.last_seen).replace('T', " "))
        );
    }
    out.push_str("</tbody></table>");
    if !report.asked_despite_answered.is_empty() {
        out.push_str(r#"<h2>Asked agents although the product page answers it</h2><p class="muted">The page should show these answers more prominently.</p><table><thead><tr><th>product</th><th>count</th><th>entry</th><th>asked as</th></tr></thead><tbody>"#);
        for product in &report.asked_despite_answered {
            for entry in &product.entries {
                let asked: Vec<String> = entry.questions.iter().take(5).map(|q| escape(&q.text)).collect();
                let _ = write!(
                    out,
                    r#"<tr><td>{}</td><td class="n">{}</td><td>{} <span class="muted">{}</span></td><td>{}</td></tr>"#,
                    escape(&product.product),
                    entry.count,
                    escape(&entry.question),
                    escape(&entry.id),
                    asked.join("<br>")
                );
            }
        }
        out.push_str("</tbody></table>");
    }
    if !report.unsatisfying.is_empty() {
        out.push_str(r#"<h2>Answers that do not satisfy</h2><table><thead><tr><th>entry</th><th>helpful</th><th>not helpful</th></tr></thead><tbody>"#);
        for entry in &report.unsatisfying {
            let _ = write!(
                out,
                r#"<tr><td>{} <span class="muted">{}</span></td><td class="n">{}</td><td class="n">{}</td></tr>"#,
                escape(&entry.question),
                escape(&entry.id),
                entry.helpful,
                entry.unhelpful
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</main></body></html>");
    out
}
