//! Parsing the Markdown knowledge base: format edge cases and error positions.

use kefu::kb::{self, KbError};
use kefu::model::{Audience, Kind, Platform};

use crate::support::Fixture;

fn errors(fixture: &Fixture) -> Vec<String> {
    match kb::load(&fixture.kb()) {
        Err(KbError::Invalid(diagnostics)) => diagnostics.iter().map(|d| d.to_string()).collect(),
        Err(other) => panic!("expected content errors, got {other}"),
        Ok(_) => panic!("expected content errors, the knowledge base loaded"),
    }
}

#[test]
fn fixture_entries_carry_front_matter_and_source() {
    let fixture = Fixture::copy("shop");
    let kb = kb::load(&fixture.kb()).unwrap();
    let lamp = kb.entries.iter().find(|e| e.id == "lamp-color-temp").unwrap();
    assert_eq!(lamp.question, "大灯的色温是多少？");
    assert_eq!(lamp.similar, vec!["灯光是白光还是黄光", "色温多少K"]);
    assert_eq!(lamp.title, "LED 汽车大灯");
    assert_eq!(lamp.kind, Kind::Product);
    assert_eq!(lamp.products, vec!["SKU-9"]);
    assert_eq!(lamp.tags, vec!["车灯"]);
    assert_eq!(lamp.source.path, "products/lamp.md");
    assert_eq!(lamp.source.line, 8);
    assert!(lamp.answer_html.contains("<strong>4800 流明</strong>"), "{}", lamp.answer_html);
    assert_eq!(lamp.answer_text, "6000K 白光，亮度 4800 流明。");
    let invoice = kb.entries.iter().find(|e| e.id == "tmall-invoice").unwrap();
    assert_eq!(invoice.kind, Kind::Rule);
    assert_eq!(invoice.platforms, vec![Platform::Tmall]);
}

#[test]
fn internal_class_marks_one_entry_and_intro_becomes_an_entry() {
    let fixture = Fixture::copy("shop");
    let kb = kb::load(&fixture.kb()).unwrap();
    let script = kb.entries.iter().find(|e| e.id == "script-remind").unwrap();
    assert_eq!(script.audience, Audience::Internal);
    assert_eq!(script.kind, Kind::Faq);
    let sf = kb.entries.iter().find(|e| e.id == "ship-sf").unwrap();
    assert_eq!(sf.audience, Audience::Public);
    let intro = kb.entries.iter().find(|e| e.source.path == "faq/shipping.md" && e.question == "物流").unwrap();
    assert_eq!(intro.answer_text, "默认发圆通，满 99 元包邮。");
    assert_eq!(intro.source.line, 4);
}

#[test]
fn file_without_front_matter_uses_heading_or_file_name() {
    let fixture = Fixture::empty();
    fixture.write("faq/售后 returns.md", "## 怎么退货？\n\n在订单页申请。\n");
    fixture.write("faq/titled.md", "# 支付问题\n\n## 能用花呗吗？\n可以。\n");
    let kb = kb::load(&fixture.kb()).unwrap();
    let returns = kb.entries.iter().find(|e| e.question == "怎么退货？").unwrap();
    assert_eq!(returns.title, "售后 returns");
    assert!(returns.id.starts_with("faq-returns-"), "{}", returns.id);
    let huabei = kb.entries.iter().find(|e| e.question == "能用花呗吗？").unwrap();
    assert_eq!(huabei.title, "支付问题");
    assert_eq!(huabei.answer_text, "可以。");
}

#[test]
fn derived_ids_survive_edits_to_other_entries() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 问题一\n答一\n\n## 问题二\n答二\n");
    let before = kb::load(&fixture.kb()).unwrap().entries[1].id.clone();
    fixture.write("faq/a.md", "## 新问题\n新答\n\n## 问题一\n答一改\n\n## 问题二\n答二\n");
    let after = kb::load(&fixture.kb()).unwrap();
    assert_eq!(after.entries.iter().find(|e| e.question == "问题二").unwrap().id, before);
}

#[test]
fn empty_answer_is_still_an_entry() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 能开发票吗？ {#inv}\n相似问：开票吗\n\n## 下一个 {#next}\n答\n");
    let kb = kb::load(&fixture.kb()).unwrap();
    let inv = kb.entries.iter().find(|e| e.id == "inv").unwrap();
    assert_eq!(inv.answer_markdown, "");
    assert_eq!(inv.similar, vec!["开票吗"]);
}

#[test]
fn headings_with_punctuation_and_escapes_keep_their_text() {
    let fixture = Fixture::empty();
    fixture.write(
        "faq/a.md",
        "## 借呗逾期了\\*\\*\\*，对信用会不会有影响? {#a1}\n答\n\n## 「双11」预售 #定金# 能退吗？！ {#a2}\n答\n",
    );
    let kb = kb::load(&fixture.kb()).unwrap();
    assert_eq!(kb.entries[0].question, "借呗逾期了***，对信用会不会有影响?");
    assert_eq!(kb.entries[1].question, "「双11」预售 #定金# 能退吗？！");
}

#[test]
fn unknown_front_matter_key_is_reported_with_file_and_line() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "---\ntitle: 天猫\nplatform: [tmall]\n---\n## 问 {#q}\n答\n");
    let errors = errors(&fixture);
    let path = fixture.kb().join("rules/tmall.md").display().to_string();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with(&format!("{path}:3:1: error: unknown front-matter key `platform`")), "{}", errors[0]);
    assert!(errors[0].contains("platform"), "{}", errors[0]);
}

#[test]
fn unknown_platform_value_is_reported_with_line() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "---\ntitle: 天猫\nplatforms:\n  - taobao\n  - tmal\n---\n## 问 {#q}\n答\n");
    let errors = errors(&fixture);
    assert!(errors[0].contains("rules/tmall.md:5:5: error: unknown platform `tmal`"), "{}", errors[0]);
    assert!(errors[0].contains("tmal"), "{}", errors[0]);
}

#[test]
fn bad_yaml_and_unclosed_front_matter_are_reported() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "---\ntitle: [unclosed\n---\n## 问 {#a}\n");
    fixture.write("faq/b.md", "---\ntitle: b\n## 问 {#b}\n");
    let errors = errors(&fixture);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("faq/a.md:") && e.contains("front matter")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("faq/b.md:1:1: error: ") && e.contains("closing")), "{errors:?}");
}

#[test]
fn duplicate_ids_name_both_places() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 问一 {#same}\n答\n");
    fixture.write("faq/b.md", "\n\n## 问二 {#same}\n答\n");
    let errors = errors(&fixture);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("faq/b.md:3:1: error: duplicate id `same`"), "{}", errors[0]);
    assert!(errors[0].contains("faq/a.md:1"), "{}", errors[0]);
}

#[test]
fn invalid_ids_classes_and_empty_headings_are_errors() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 问 {#有中文}\n答\n\n## 问二 {#ok .interal}\n答\n\n## {#empty}\n答\n");
    let errors = errors(&fixture);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("faq/a.md:1:7: error: id"), "{}", errors[0]);
    assert!(errors[1].contains("faq/a.md:4:12: error: unknown heading class `.interal`"), "{}", errors[1]);
    assert!(errors[2].contains("faq/a.md:7:1: error: "), "{}", errors[2]);
}

#[test]
fn kind_in_front_matter_overrides_the_folder() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "---\nkind: rule\n---\n## 问 {#a}\n答\n");
    assert_eq!(kb::load(&fixture.kb()).unwrap().entries[0].kind, Kind::Rule);
}

#[test]
fn bad_dictionary_and_synonym_lines_are_reported() {
    let fixture = Fixture::empty();
    fixture.write("dict.txt", "固特异 2000 n\n运费险 many\n");
    fixture.write("synonyms.txt", "顺丰, SF\n孤单\n");
    let errors = errors(&fixture);
    assert!(errors.iter().any(|e| e.contains("dict.txt:2:1: error: frequency")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("synonyms.txt:2:1: error: ")), "{errors:?}");
}

#[test]
fn non_utf8_file_is_an_error_not_a_crash() {
    let fixture = Fixture::empty();
    let path = fixture.kb().join("faq/gbk.md");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"## \xc4\xfa\xba\xc3\n").unwrap();
    let errors = errors(&fixture);
    assert!(errors[0].contains("faq/gbk.md:1:1: error: file is not valid UTF-8"), "{}", errors[0]);
}

#[test]
fn raw_html_in_answers_is_sanitised() {
    let fixture = Fixture::empty();
    fixture.write(
        "faq/a.md",
        "## 问 {#a}\n<img src=x onerror=alert(1)><script>alert(1)</script>[点我](javascript:alert(1))\n",
    );
    let entry = &kb::load(&fixture.kb()).unwrap().entries[0];
    for bad in ["onerror", "<script", "javascript:"] {
        assert!(!entry.answer_html.contains(bad), "{bad} in {}", entry.answer_html);
    }
}

#[test]
fn missing_knowledge_base_folder_is_a_clear_error() {
    let fixture = Fixture::empty();
    let err = kb::load(&fixture.kb().join("nope")).unwrap_err();
    assert!(err.to_string().contains("is not a folder"), "{err}");
}

#[test]
fn a_separator_line_under_text_does_not_start_an_entry() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 问一 {#q1}\n相似问：甲｜乙\n答一\n备注\n---\n更多\n");
    let kb = kb::load(&fixture.kb()).unwrap();
    assert_eq!(kb.entries.len(), 1);
    assert_eq!(kb.entries[0].similar, vec!["甲", "乙"]);
    assert!(kb.entries[0].answer_text.contains("更多"), "{}", kb.entries[0].answer_text);
}

#[test]
fn blank_lines_before_front_matter_are_forgiven() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "\n\n---\ntitle: 物流\nplatforms: [jdd]\n---\n## 问 {#q}\n答\n");
    let errors = errors(&fixture);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("faq/a.md:5:13: error: unknown platform `jdd`"), "{}", errors[0]);
    fixture.write("faq/a.md", "\n---\ntitle: 物流\n---\n## 问 {#q}\n答\n");
    let kb = kb::load(&fixture.kb()).unwrap();
    assert_eq!(kb.entries.len(), 1);
    assert_eq!(kb.entries[0].title, "物流");
}

#[test]
fn html_comments_are_never_served() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "## 问 {#q}\n售价 199 元<!-- 成本价 60 元 -->。\n");
    let entry = &kb::load(&fixture.kb()).unwrap().entries[0];
    for text in [&entry.answer_markdown, &entry.answer_html, &entry.answer_text] {
        assert!(!text.contains("成本价"), "{text}");
    }
}

#[test]
fn attributes_on_a_title_without_intro_are_an_error() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "# 话术 {.internal}\n\n## 问 {#q}\n答\n");
    let errors = errors(&fixture);
    assert!(errors[0].contains("faq/a.md:1:1: error: ") && errors[0].contains("no effect"), "{}", errors[0]);
}

#[test]
fn a_front_matter_error_does_not_hide_the_files_other_errors() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "---\naudience: everyone\n---\n## 问 {#坏}\n答\n");
    let errors = errors(&fixture);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[1].contains("faq/a.md:4:7: error: id"), "{}", errors[1]);
}
