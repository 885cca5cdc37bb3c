//! Search behaviour: filters, one hit per entry, confidence, keeping the last good index.

use kefu::index::{self, Refresh, SearchIndex};
use kefu::model::{Audience, Confidence, Platform};
use kefu::search::{SearchError, SearchRequest};

use crate::support::{top_ids, Fixture};

#[test]
fn product_filter_never_returns_other_products() {
    let index = Fixture::copy("shop").build();
    let request =
        SearchRequest { product: Some("SKU-1"), limit: 50, ..SearchRequest::new("大灯色温 鞋码 顺丰 发票") };
    let results = index.search(&request).unwrap();
    assert!(!results.hits.is_empty());
    for hit in &results.hits {
        assert!(hit.products.is_empty() || hit.products == ["SKU-1"], "{} leaked: {:?}", hit.id, hit.products);
    }
    assert!(results.hits.iter().any(|h| h.id == "boots-size"));
    assert!(results.hits.iter().any(|h| h.products.is_empty()), "shop-wide entries apply to every product");
}

#[test]
fn platform_filter_keeps_platform_and_neutral_entries() {
    let index = Fixture::copy("shop").build();
    let request =
        SearchRequest { platform: Some(Platform::Jd), limit: 50, ..SearchRequest::new("能开发票吗 顺丰") };
    let results = index.search(&request).unwrap();
    let ids: Vec<&str> = results.hits.iter().map(|h| h.id.as_str()).collect();
    assert!(ids.contains(&"jd-invoice"), "{ids:?}");
    assert!(!ids.contains(&"tmall-invoice"), "{ids:?}");
    assert!(ids.contains(&"ship-sf"), "{ids:?}");
}

#[test]
fn public_search_never_returns_internal_entries() {
    let index = Fixture::copy("shop").build();
    let agent = top_ids(&index, "催付话术");
    assert_eq!(agent[0], "script-remind");
    let request = SearchRequest { public_only: true, limit: 100, ..SearchRequest::new("催付话术 付款 发货") };
    let results = index.search(&request).unwrap();
    assert!(results.hits.iter().all(|h| h.audience == Audience::Public));
}

#[test]
fn one_hit_per_entry_even_when_several_phrasings_match() {
    let index = Fixture::copy("shop").build();
    let ids = top_ids(&index, "顺丰要加钱吗 可以走顺丰吗 能发顺丰吗");
    assert_eq!(ids.iter().filter(|id| *id == "ship-sf").count(), 1);
}

#[test]
fn hits_carry_what_agents_need() {
    let index = Fixture::copy("shop").build();
    let results = index.search(&SearchRequest::new("灯光是白光吗")).unwrap();
    let hit = &results.hits[0];
    assert_eq!(hit.id, "lamp-color-temp");
    assert_eq!(hit.matched, "灯光是白光还是黄光");
    assert_eq!(hit.source.path, "products/lamp.md");
    assert_eq!(hit.source.line, 8);
    assert!(hit.answer_html.contains("<strong>"));
    let marked: Vec<String> =
        hit.highlights.iter().map(|[s, e]| hit.snippet.chars().skip(*s).take(e - s).collect()).collect();
    assert!(marked.iter().any(|m| m.contains("白光")), "{marked:?} in {}", hit.snippet);
}

#[test]
fn a_number_typed_as_a_digit_is_highlighted_where_the_answer_spells_it() {
    let fixture = Fixture::empty();
    fixture.write("faq/returns.md", "## 能退货吗？ {#returns}\n支持七天无理由退货，两件以上包邮。\n");
    let index = fixture.build();
    let hit = &index.search(&SearchRequest::new("7天无理由退货吗")).unwrap().hits[0];
    let marked: Vec<String> =
        hit.highlights.iter().map(|[s, e]| hit.snippet.chars().skip(*s).take(e - s).collect()).collect();
    assert!(marked.iter().any(|m| m.contains("七天")), "{marked:?} in {}", hit.snippet);
}

#[test]
fn confidence_separates_answered_from_unanswered() {
    let index = Fixture::copy("shop").build();
    let sure = index.search(&SearchRequest::new("大灯色温是多少")).unwrap();
    assert_eq!(sure.confidence, Confidence::High);
    let unsure = index.search(&SearchRequest::new("可以货到付款吗")).unwrap();
    assert_ne!(unsure.confidence, Confidence::High);
    let nothing = index.search(&SearchRequest::new("量子计算机")).unwrap();
    assert_eq!(nothing.confidence, Confidence::None);
}

#[test]
fn bad_requests_are_typed_errors() {
    let index = Fixture::copy("shop").build();
    assert!(matches!(index.search(&SearchRequest::new("  ")), Err(SearchError::EmptyQuery)));
    let long = "退".repeat(2001);
    assert!(matches!(index.search(&SearchRequest::new(&long)), Err(SearchError::QueryTooLong(2001))));
    let zero = SearchRequest { limit: 0, ..SearchRequest::new("发票") };
    assert!(matches!(index.search(&zero), Err(SearchError::BadLimit)));
}

#[test]
fn broken_front_matter_keeps_last_good_index() {
    let fixture = Fixture::copy("shop");
    let first = index::refresh(&fixture.kb(), &fixture.index(), &|_, _| {}).unwrap();
    assert!(matches!(first, Refresh::Built(_)));
    assert!(matches!(index::refresh(&fixture.kb(), &fixture.index(), &|_, _| {}).unwrap(), Refresh::UpToDate));

    fixture.write("faq/shipping.md", "---\nplatform: [tmal]\n---\n## 新问题 {#new}\n答\n");
    match index::refresh(&fixture.kb(), &fixture.index(), &|_, _| {}).unwrap() {
        Refresh::KeptLastGood(err) => {
            assert!(err.to_string().contains("faq/shipping.md:2:"), "{err}")
        }
        other => panic!("expected the last good index to be kept, got {other:?}"),
    }
    let index = SearchIndex::open(&fixture.index()).unwrap();
    assert_eq!(top_ids(&index, "能发顺丰吗")[0], "ship-sf");
}

#[test]
fn invalid_knowledge_base_without_an_index_is_an_error() {
    let fixture = Fixture::empty();
    fixture.write("faq/a.md", "---\naudience: everyone\n---\n## 问\n");
    let err = index::refresh(&fixture.kb(), &fixture.index(), &|_, _| {}).unwrap_err();
    assert!(err.to_string().contains("faq/a.md:2:"), "{err}");
}

#[test]
fn rebuild_swaps_generations_and_keeps_one_previous() {
    let fixture = Fixture::copy("shop");
    for i in 0..3 {
        fixture.write("faq/extra.md", &format!("## 第{i}个问题 {{#extra}}\n答\n"));
        index::refresh(&fixture.kb(), &fixture.index(), &|_, _| {}).unwrap();
    }
    let generations = std::fs::read_dir(fixture.index())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("gen-"))
        .count();
    assert_eq!(generations, 2);
    let index = SearchIndex::open(&fixture.index()).unwrap();
    assert_eq!(index.entry("extra").unwrap().question, "第2个问题");
}

/// Entries that score exactly alike (the same question under 60 products)
/// are kept and ranked by their order in the knowledge base, whatever order
/// this build's index happens to visit their documents in: the same kb/
/// always gives the same answers, and a preview of an edit never shows a
/// change the edit did not make.
#[test]
fn exact_ties_rank_in_kb_order_on_every_build() {
    let fixture = Fixture::empty();
    for n in 0..60 {
        fixture.write(
            &format!("products/p-{n:02}.md"),
            &format!("---\ntitle: 现货\nproducts: [SKU-{n:02}]\n---\n## 这款有现货吗？ {{#stock-{n:02}}}\n有现货，下单当天发。\n"),
        );
    }
    let want: Vec<String> = (0..10).map(|n| format!("stock-{n:02}")).collect();
    for build in 0..4 {
        let index = fixture.build();
        // 60 ties against a boundary of 40 kept candidates.
        assert_eq!(top_ids(&index, "有现货吗"), want, "build {build}");
        let hits = index.search(&SearchRequest { limit: 50, ..SearchRequest::new("有现货吗") }).unwrap().hits;
        let ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
        let all: Vec<String> = (0..50).map(|n| format!("stock-{n:02}")).collect();
        assert_eq!(ids, all, "build {build}");
    }
}
