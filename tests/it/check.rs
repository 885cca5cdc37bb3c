//! `kefu check`, time-limited entries, golden queries and previews.

use std::path::Path;

use jiff::Timestamp;
use kefu::kb::{self, Severity};
use kefu::search::SearchRequest;

use crate::support::{kefu, Fixture};

/// What `kefu check` says about `tests/fixtures/broken`, one line per
/// problem: every check, at the exact line and column.
const BROKEN: &[&str] = &[
    "faq/shipping.md:3:19: warning: product `SKU-404` has no product file",
    "faq/shipping.md:6:17: warning: 相似问 `发什么快递` repeats the 标准问",
    "faq/shipping.md:11:5: error: 相似问 `能发顺丰吗` is also the 相似问 of `ship-courier` (faq/shipping.md:6)",
    "faq/shipping.md:15:1: warning: entry `ship-from` has no answer",
    "faq/shipping.md:17:44: warning: entry `ship-cny` expired at 2020-02-11 00:00 (China time) and is no longer served",
    "faq/shipping.md:20:22: error: unknown heading attribute `valid_until`",
    "faq/shipping.md:23:21: error: unknown heading class `.interal`",
    "faq/unclosed.md:1:1: error: front matter starts with `---` but has no closing `---` line",
    "faq/yaml.md:4:1: error: front matter is not valid YAML: did not find expected ',' or ']'",
    "products/lamp.md:10:1: warning: entry `lamp-kelvin` has the same answer as `lamp-color-temp` (products/lamp.md:5, 100% alike)",
    "products/lamp.md:15:1: warning: entry `lamp-temp-again` may duplicate `lamp-color-temp` (products/lamp.md:5): `大灯的色温是多少呢` ≈ `大灯的色温是多少？` (88% alike)",
    "products/nameless.md:1:1: warning: product file lists no `products:`, so its entries apply to every product",
    "rules/tmall.md:3:1: error: unknown front-matter key `platfrom`",
    "rules/tmall.md:4:20: error: unknown platform `天猫`",
    "rules/tmall.md:4:24: error: unknown platform `tmal`",
    "rules/tmall.md:5:11: error: unknown audience `pubic`",
    "rules/tmall.md:12:6: error: link `#invoice-title`: there is no entry with id `invoice-title`",
    "rules/tmall.md:14:1: error: duplicate id `tmall-invoice`: already used at rules/tmall.md:9",
    "rules/tmall.md:15:5: error: link `#tmall-invoce`: there is no entry with id `tmall-invoce`",
];

fn at(text: &str) -> Timestamp {
    kb::front_matter::parse_time(text, false).unwrap()
}

#[test]
fn check_reports_every_problem_at_its_exact_position() {
    let fixture = Fixture::copy("broken");
    let checked = kb::check(&fixture.kb(), at("2026-11-24 12:00")).unwrap();
    let prefix = format!("{}/", fixture.kb().display());
    let lines: Vec<String> =
        checked.diagnostics.iter().map(|d| d.to_string().trim_start_matches(&prefix).to_string()).collect();
    assert_eq!(lines, BROKEN);
    assert!(checked.kb.is_none(), "a knowledge base with errors is not served");
    let hint = |needle: &str| {
        checked.diagnostics.iter().find(|d| d.message.contains(needle)).and_then(|d| d.hint.clone()).unwrap()
    };
    assert_eq!(hint("`platfrom`"), "did you mean `platforms`?");
    assert_eq!(hint("`天猫`"), "write `tmall` for 天猫");
    assert_eq!(hint("`pubic`"), "did you mean `public`?");
    assert_eq!(hint("`.interal`"), "did you mean `.internal`?");
    assert_eq!(hint("#tmall-invoce"), "did you mean `#tmall-invoice`?");
}

#[test]
fn warnings_alone_do_not_stop_a_load() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 发货地是哪里？ {#from}\n\n## 包邮吗？ {#free}\n满 99 包邮。\n");
    let loaded = kb::load(&fixture.kb()).unwrap();
    assert_eq!(loaded.entries.len(), 2);
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].severity, Severity::Warning);
    assert!(loaded.warnings[0].message.contains("`from` has no answer"));
}

#[test]
fn links_to_entries_and_files_are_checked_both_ways() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "## 能开发票吗？ {#invoice}\n能开。\n");
    fixture.write(
        "faq/a.md",
        "## 怎么退？ {#ret}\n见[发票](#invoice)、[天猫](../rules/tmall.md)、[天猫发票](../rules/tmall.md#invoice)、\
         [官网](https://example.invalid/a.md)。\n\n## 错 {#bad}\n[一](../rules/jd.md) [二](/rules/tmall.md#ret) [三](../../x.md)\n",
    );
    let checked = kb::check(&fixture.kb(), Timestamp::now()).unwrap();
    let messages: Vec<String> =
        checked.diagnostics.iter().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect();
    assert_eq!(
        messages,
        vec![
            "5:1 link `../rules/jd.md`: there is no file `rules/jd.md`",
            "5:21 link `/rules/tmall.md#ret`: entry `ret` is in `faq/a.md`",
            "5:46 link `../../x.md` leaves the knowledge base",
        ]
    );
}

#[test]
fn same_question_for_different_platforms_is_fine_and_a_special_case_only_warns() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "---\nplatforms: [tmall]\n---\n## 能开发票吗？ {#tmall-invoice}\n能开。\n");
    fixture.write("rules/pdd.md", "---\nplatforms: [pdd]\n---\n## 能开发票吗？ {#pdd-invoice}\n能开普票。\n");
    assert!(kb::check(&fixture.kb(), Timestamp::now()).unwrap().diagnostics.is_empty());
    fixture.write("faq/general.md", "## 能开发票吗 {#invoice}\n都能开。\n");
    let checked = kb::check(&fixture.kb(), Timestamp::now()).unwrap();
    assert!(checked.kb.is_some(), "{:?}", checked.diagnostics);
    assert_eq!(checked.warnings().count(), 2, "{:?}", checked.diagnostics);
}

#[test]
fn time_limited_entries_are_served_only_inside_their_window() {
    let fixture = Fixture::empty();
    fixture.write(
        "rules/d11.md",
        "---\nvalid_from: 2026-11-01\nvalid_to: 2026-11-11\n---\n\
         ## 双十一定金能退吗？ {#d11-deposit}\n不能退。\n\n\
         ## 双十一尾款几点付？ {#d11-final valid_from=2026-11-10T20:00}\n10 日 20 点开始付尾款。\n",
    );
    fixture.write("faq/a.md", "## 定金能退吗？ {#deposit}\n普通定金可以退。\n");
    let index = fixture.build();
    let top = |query: &str, when: &str| {
        let request = SearchRequest { at: Some(at(when)), ..SearchRequest::new(query) };
        let hits = index.search(&request).unwrap().hits;
        hits.iter().map(|h| h.id.clone()).collect::<Vec<_>>()
    };
    assert!(!top("双十一定金能退吗", "2026-10-31 23:59").contains(&"d11-deposit".to_string()));
    assert_eq!(top("双十一定金能退吗", "2026-11-01 00:00")[0], "d11-deposit");
    // A date as `valid_to` includes that whole day, China time.
    assert_eq!(top("双十一定金能退吗", "2026-11-11 23:59")[0], "d11-deposit");
    assert!(!top("双十一定金能退吗", "2026-11-12 00:00").contains(&"d11-deposit".to_string()));
    // The heading narrows the file's window.
    assert!(!top("双十一尾款几点付", "2026-11-10 19:59").contains(&"d11-final".to_string()));
    assert_eq!(top("双十一尾款几点付", "2026-11-10 20:00")[0], "d11-final");
    // Ordinary entries are always there.
    assert!(top("定金能退吗", "2030-01-01 00:00").contains(&"deposit".to_string()));
}

#[test]
fn an_entry_disappears_at_its_time_without_a_rebuild() {
    let fixture = Fixture::empty();
    // The entry must still be live once the build is done; on a busy
    // machine a build can take seconds, so the margin grows until it is.
    let mut margin = 2;
    let (index, end, margin) = loop {
        let end = Timestamp::now() + jiff::SignedDuration::from_secs(margin);
        fixture.write("faq/flash.md", &format!("## 限时秒杀还有吗？ {{#flash valid_to={end}}}\n秒杀进行中。\n"));
        let index = fixture.build();
        if Timestamp::now() + jiff::SignedDuration::from_millis(500) < end || margin > 60 {
            break (index, end, margin);
        }
        margin *= 4;
    };
    let found = || index.search(&SearchRequest::new("限时秒杀还有吗")).unwrap().hits.iter().any(|h| h.id == "flash");
    assert!(found(), "served before its end");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60 + margin.unsigned_abs());
    while found() {
        assert!(std::time::Instant::now() < deadline, "still served long after {end}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(Timestamp::now() >= end, "gone before its end");
}

fn run_kefu(args: &[&str], kb: &Path) -> (bool, String, String) {
    let out = kefu().args(args).arg("--kb").arg(kb).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn check_command_exits_non_zero_on_errors_and_speaks_json() {
    let fixture = Fixture::copy("broken");
    let (ok, stdout, stderr) = run_kefu(&["check"], &fixture.kb());
    assert!(!ok);
    assert!(
        stdout.contains(
            "rules/tmall.md:3:1: error: unknown front-matter key `platfrom`\n  = hint: did you mean `platforms`?"
        ),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("7 files, 12 entries: 12 error(s), 7 warning(s)"), "{stdout}");
    assert!(stderr.contains("check failed: 12 error(s)"), "{stderr}");

    let (ok, stdout, _) = run_kefu(&["check", "--format", "json"], &fixture.kb());
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"], 12);
    let first = &report["diagnostics"][0];
    assert_eq!((first["line"].as_u64(), first["col"].as_u64()), (Some(3), Some(19)));
    assert_eq!(first["severity"], "warning");

    // Warnings alone pass, unless --strict.
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 发货地是哪里？ {#from}\n");
    assert!(run_kefu(&["check"], &fixture.kb()).0);
    assert!(!run_kefu(&["check", "--strict"], &fixture.kb()).0);
}

#[test]
fn the_sample_knowledge_base_is_clean_and_passes_its_golden_queries() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("kb");
    let (ok, stdout, stderr) = run_kefu(&["check", "--strict"], &root);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("0 error(s), 0 warning(s); golden queries:"), "{stdout}");
}

#[test]
fn golden_queries_fail_when_the_expected_answer_loses_top_place() {
    let fixture = Fixture::copy("shop");
    let golden = fixture.dir.path().join("golden.jsonl");
    std::fs::write(
        &golden,
        "{\"query\": \"能发顺丰吗\", \"expect\": \"ship-sf\"}\n\
         {\"query\": \"能开发票吗\", \"expect\": \"tmall-invoice\", \"platform\": \"tmall\"}\n\
         {\"query\": \"能发顺丰吗\", \"expect\": \"gone-entry\"}\n",
    )
    .unwrap();
    let golden_arg = golden.display().to_string();
    let (ok, stdout, _) = run_kefu(&["check", "--golden", &golden_arg], &fixture.kb());
    assert!(!ok);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.contains("golden query")).collect();
    assert_eq!(failures.len(), 1, "{stdout}");
    assert!(
        failures[0].starts_with(&format!("{golden_arg}:3:1: error: golden query `能发顺丰吗` expects `gone-entry`"))
    );
    assert!(stdout.contains("golden queries: 2 of 3 pass"), "{stdout}");

    std::fs::write(&golden, "{\"query\": \"能发顺丰吗\", \"expected\": \"ship-sf\"}\n").unwrap();
    let (ok, stdout, _) = run_kefu(&["check", "--golden", &golden_arg], &fixture.kb());
    assert!(!ok);
    assert!(
        stdout.contains(&format!("{golden_arg}:1:1: error: not a golden query: unknown field `expected`")),
        "{stdout}"
    );
}

#[test]
fn preview_lists_the_queries_an_edit_changes() {
    let fixture = Fixture::copy("shop");
    fixture.build();
    let golden = fixture.dir.path().join("golden.jsonl");
    std::fs::write(
        &golden,
        "{\"query\": \"能发顺丰吗\", \"expect\": \"ship-sf\"}\n{\"query\": \"大灯色温多少\", \"expect\": \"lamp-color-temp\"}\n",
    )
    .unwrap();
    // The edit: the 顺丰 entry gets a new id (and a new answer).
    let path = fixture.kb().join("faq/shipping.md");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("{#ship-sf}", "{#sf-new}").replace("补 12 元运费差价", "现在免费")).unwrap();
    let preview = |extra: &[&str]| {
        let out = kefu()
            .arg("preview")
            .args(extra)
            .arg("--golden")
            .arg(&golden)
            .arg("--kb")
            .arg(fixture.kb())
            .arg("--index")
            .arg(fixture.index())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = preview(&[]);
    assert!(text.contains("1 of 2 queries change their top answer"), "{text}");
    assert!(text.contains("golden queries: 1 now fail, 0 now pass."), "{text}");
    assert!(text.contains("「能发顺丰吗」"), "{text}");
    assert!(text.contains("served: ") && text.contains("[ship-sf]"), "{text}");
    assert!(text.contains("edited: ") && text.contains("[sf-new]"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&preview(&["--format", "json"])).unwrap();
    assert_eq!(json["preview"]["top_changed"][0]["after"]["top"], "sf-new");
    // The served index is untouched by a preview.
    let served = kefu::index::SearchIndex::open(&fixture.index()).unwrap();
    assert!(served.entry("sf-new").is_none());
}
