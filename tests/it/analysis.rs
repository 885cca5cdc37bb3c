//! Chinese analysis, observed through search: what a buyer types finds
//! what a copywriter wrote.

use kefu::analysis::{AnalysisConfig, Analyzer};

use crate::support::{top_ids, Fixture};

#[test]
fn traditional_query_finds_simplified_entry() {
    let index = Fixture::copy("shop").build();
    assert_eq!(top_ids(&index, "天貓能開發票嗎")[0], "tmall-invoice");
    assert_eq!(top_ids(&index, "有運費險嗎")[0], "freight-insurance");
}

#[test]
fn full_width_letters_and_digits_match_half_width() {
    let index = Fixture::copy("shop").build();
    assert_eq!(top_ids(&index, "色温多少Ｋ")[0], "lamp-color-temp");
    assert_eq!(top_ids(&index, "６０００Ｋ白光")[0], "lamp-color-temp");
}

#[test]
fn synonyms_match_the_canonical_word_both_ways() {
    let index = Fixture::copy("shop").build();
    // "SF" is written nowhere in the knowledge base; synonyms.txt maps it to 顺丰.
    assert_eq!(top_ids(&index, "能发SF吗")[0], "ship-sf");
    assert_eq!(top_ids(&index, "ＳＦ")[0], "ship-sf");
    // 开票 ↔ 发票
    assert_eq!(top_ids(&index, "京东开票")[0], "jd-invoice");
}

#[test]
fn single_character_finds_longer_word() {
    let index = Fixture::copy("shop").build();
    assert_eq!(top_ids(&index, "灯")[0], "lamp-color-temp");
}

#[test]
fn word_finds_entry_that_contains_it_inside_a_longer_word() {
    let fixture = Fixture::empty();
    fixture
        .write("faq/bank.md", "## 支持中国农业发展银行的卡吗？ {#bank}\n支持。\n\n## 支持花呗吗？ {#huabei}\n支持。\n");
    let index = fixture.build();
    assert_eq!(top_ids(&index, "农业")[0], "bank");
    assert_eq!(top_ids(&index, "发展银行")[0], "bank");
}

#[test]
fn chatty_filler_does_not_dominate_ranking() {
    let fixture = Fixture::empty();
    fixture.write(
        "faq/a.md",
        "## 亲在吗请问在吗呢 {#filler}\n我们在的。\n\n## 能开发票吗？ {#invoice}\n能。\n\n## 运费险怎么理赔？ {#insurance}\n自动理赔。\n",
    );
    let index = fixture.build();
    assert_eq!(top_ids(&index, "亲，在吗？请问能开发票吗呢")[0], "invoice");
}

#[test]
fn filler_only_query_finds_nothing() {
    let index = Fixture::copy("shop").build();
    let results = index.search(&kefu::search::SearchRequest::new("亲，在吗？")).unwrap();
    assert!(results.hits.is_empty());
    assert_eq!(results.confidence, kefu::model::Confidence::None);
}

#[test]
fn shop_dictionary_keeps_domain_words_whole() {
    // Without the built-in vocabulary, which has 运费险 too (see below).
    let bare = kefu::analysis::QueryOptions { domain_vocab: false, ..Default::default() };
    let plain = Analyzer::new(&AnalysisConfig { options: bare, ..AnalysisConfig::default() }).unwrap();
    let kb = kefu::kb::load(&Fixture::copy("shop").kb()).unwrap();
    let shop = Analyzer::new(&AnalysisConfig { dict: kb.dict, synonyms: kb.synonyms, options: bare }).unwrap();
    let words = |a: &Analyzer| a.analyze("有运费险吗").words.into_iter().map(|t| t.term).collect::<Vec<_>>();
    assert!(words(&shop).contains(&"运费险".to_string()), "{:?}", words(&shop));
    assert!(!words(&plain).contains(&"运费险".to_string()), "{:?}", words(&plain));
}

#[test]
fn builtin_vocabulary_works_without_shop_configuration() {
    let a = Analyzer::new(&AnalysisConfig::default()).unwrap();
    let words = a.analyze("有运费险吗，能发SF不").words.into_iter().map(|t| t.term).collect::<Vec<_>>();
    assert!(words.contains(&"运费险".to_string()) && words.contains(&"顺丰".to_string()), "{words:?}");
}
