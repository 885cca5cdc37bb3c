//! Semantic ranking fused with lexical ranking, and lexical-only mode.
//!
//! Needs the model (`scripts/fetch-model`); skips without it unless `CI` or
//! `KEFU_REQUIRE_MODEL` is set.

use std::sync::{Arc, OnceLock};

use kefu::analysis::QueryOptions;
use kefu::index::{self, current_manifest, SearchIndex};
use kefu::search::SearchRequest;
use kefu::semantic::{default_model_dir, Encoder};

use crate::support::{kefu, serve_command, status, Fixture};

fn encoder() -> Option<Arc<Encoder>> {
    static ENCODER: OnceLock<Option<Arc<Encoder>>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let dir = default_model_dir();
            let required = std::env::var_os("CI").is_some() || std::env::var_os("KEFU_REQUIRE_MODEL").is_some();
            if !dir.join("weights.npz").is_file() {
                assert!(!required, "model not found in {}: run scripts/fetch-model", dir.display());
                eprintln!("skipping fusion tests: no model in {}", dir.display());
                return None;
            }
            Some(Arc::new(Encoder::load(&dir).unwrap_or_else(|e| panic!("{e}"))))
        })
        .clone()
}

/// The shop fixture plus entries whose buyers' wording shares no character
/// with the written question.
fn fixture() -> Fixture {
    let fixture = Fixture::copy("shop");
    fixture.write(
        "faq/style.md",
        "# 款式\n\n## 男女同款吗？ {#unisex}\n男女同款，尺码按男码选。\n\n\
         ## 这款什么时候补货？ {#restock}\n这款下周补货，可以先收藏。\n\n\
         ## 重复付款了怎么办？ {#double-pay}\n多付的那笔 1–3 个工作日原路退回。\n",
    );
    fixture
}

fn build(fixture: &Fixture, encoder: Option<&Encoder>) -> index::BuildReport {
    let kb = kefu::kb::load(&fixture.kb()).unwrap();
    let encoder = encoder.map(|e| e as &dyn index::vectors::SentenceEncoder);
    index::build_full(&kb, &fixture.index(), &|_, _| {}, &QueryOptions::default(), encoder).unwrap()
}

fn top(index: &SearchIndex, request: &SearchRequest<'_>) -> Option<String> {
    index.search(request).unwrap().hits.first().map(|h| h.id.clone())
}

#[test]
fn fused_ranking_finds_paraphrases_that_share_no_characters() {
    let Some(encoder) = encoder() else { return };
    let fixture = fixture();
    let report = build(&fixture, Some(&encoder));
    let semantic = report.manifest.semantic.as_ref().expect("vectors built");
    assert_eq!(semantic.rows, report.manifest.phrasings);
    let fused = SearchIndex::open_generation_with(&fixture.index(), &report.revision, Some(encoder.clone())).unwrap();
    let lexical = SearchIndex::open_generation_with(&fixture.index(), &report.revision, None).unwrap();
    assert!(fused.semantic_model().is_some() && lexical.semantic_model().is_none());
    for (query, entry) in [("适合情侣一起穿吗", "unisex"), ("我被扣了两遍", "double-pay")] {
        let request = SearchRequest::new(query);
        assert_eq!(top(&fused, &request).as_deref(), Some(entry), "{query}");
        assert_ne!(top(&lexical, &request).as_deref(), Some(entry), "{query}: lexical alone should miss it");
        let explained = fused.search(&request).unwrap().evidence.expect("evidence");
        let scores = explained.semantic.expect("fused scores in the evidence");
        assert!(scores.cosine > 0.2 && scores.cosine_margin > 0.0 && scores.fused_score >= 0.5, "{scores:?}");
    }
    // Lexical strengths stay: an exact question still wins.
    assert_eq!(top(&fused, &SearchRequest::new("能发顺丰吗")).as_deref(), Some("ship-sf"));
    // Semantic candidates obey the filters like lexical ones.
    let public = SearchRequest { public_only: true, limit: 100, ..SearchRequest::new("催付款的话术") };
    assert!(fused.search(&public).unwrap().hits.iter().all(|h| h.id != "script-remind"));
    let lamp = SearchRequest { product: Some("SKU-1"), limit: 100, ..SearchRequest::new("灯光颜色偏黄吗") };
    assert!(fused.search(&lamp).unwrap().hits.iter().all(|h| h.id != "lamp-color-temp"));
}

#[test]
fn a_rebuild_encodes_only_the_edited_phrasings() {
    let Some(encoder) = encoder() else { return };
    let fixture = fixture();
    let first = build(&fixture, Some(&encoder));
    assert_eq!(first.manifest.semantic.as_ref().unwrap().encoded, first.manifest.phrasings);
    fixture.write("faq/style.md", "# 款式\n\n## 男女同款吗？ {#unisex}\n相似问：情侣能一起穿吗\n\n男女同款。\n");
    let second = build(&fixture, Some(&encoder));
    let semantic = second.manifest.semantic.as_ref().unwrap();
    assert_eq!(semantic.encoded, 1, "only the new 相似问 is encoded: {semantic:?}");
    let index = SearchIndex::open_generation_with(&fixture.index(), &second.revision, Some(encoder)).unwrap();
    assert_eq!(top(&index, &SearchRequest::new("情侣能一起穿吗")).as_deref(), Some("unisex"));
}

#[test]
fn the_server_says_which_mode_it_ranks_in() {
    if encoder().is_none() {
        return;
    }
    let model = std::fs::canonicalize(default_model_dir()).unwrap();
    let fixture = fixture();
    // An index built lexically first: a server with the model rebuilds it
    // with vectors at start-up, although kb/ did not change.
    let (server, _) = serve_command(kefu(), &fixture, "127.0.0.1:0", &[]);
    drop(server);
    let mut with_model = kefu();
    with_model.env_remove("KEFU_NO_MODEL").env("KEFU_MODEL", &model);
    let (server, addr) = serve_command(with_model, &fixture, "127.0.0.1:0", &[]);
    let semantic = &status(&addr)["semantic"];
    assert_eq!(semantic["mode"], "fused", "{semantic}");
    assert!(semantic["model"].as_str().is_some_and(|m| m.starts_with("use-multilingual-v3@")), "{semantic}");
    drop(server);

    let mut without = kefu();
    without.env_remove("KEFU_NO_MODEL").env("KEFU_MODEL", fixture.dir.path().join("no-model"));
    let (_server, addr) = serve_command(without, &fixture, "127.0.0.1:0", &[]);
    let semantic = &status(&addr)["semantic"];
    assert_eq!(semantic["mode"], "lexical", "{semantic}");
    assert!(semantic["reason"].as_str().is_some_and(|r| r.contains("scripts/fetch-model")), "{semantic}");
    let manifest = current_manifest(&fixture.index()).expect("manifest");
    assert!(manifest.semantic.is_none(), "rebuilt without vectors: {manifest:?}");
    // The index built with vectors is rebuilt without them, and still answers.
    let (code, body) =
        crate::support::http_get(&addr, &format!("/v1/search?q={}", crate::support::encode("能发顺丰吗")));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("ship-sf"), "{body}");
}

/// The server encodes queries on the encoding pool, batched with whatever
/// other queries are waiting; the answers must not depend on that.
#[test]
fn concurrent_searches_rank_like_one_at_a_time() {
    let Some(encoder) = encoder() else { return };
    let fixture = fixture();
    let report = build(&fixture, Some(&encoder));
    let open = || SearchIndex::open_generation_with(&fixture.index(), &report.revision, Some(encoder.clone())).unwrap();
    // Two opens, so that each has its own query cache and encoding pool.
    let (index, fresh) = (open(), Arc::new(open()));
    let queries: Vec<String> = [
        "适合情侣一起穿吗",
        "我被扣了两遍",
        "能发顺丰吗",
        "亲在吗，我昨天拍的那双靴子今天能发顺丰不，急用",
        "七天无理由退货运费谁出",
        "灯光颜色偏黄吗",
        "天猫能开发票吗",
        "哈尔滨有什么好玩的地方",
    ]
    .iter()
    .flat_map(|q| [q.to_string(), format!("{q}呢"), format!("你好，{q}")])
    .collect();
    let answer = |results: kefu::search::SearchResults| {
        let hits: Vec<(String, u32)> = results.hits.iter().map(|h| (h.id.clone(), h.score.to_bits())).collect();
        (results.confidence, hits, results.evidence.and_then(|e| e.semantic))
    };
    // One at a time, each encoded on the calling thread.
    let alone: Vec<_> = queries.iter().map(|q| answer(index.search(&SearchRequest::new(q)).expect("search"))).collect();
    // All at once, twice over (the second round hits the query cache), on a
    // two-thread runtime like the server's.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let together: Vec<_> = runtime.block_on(async {
        let tasks: Vec<_> = queries
            .iter()
            .chain(queries.iter())
            .cloned()
            .map(|q| {
                let index = fresh.clone();
                tokio::spawn(async move {
                    let ranking = kefu::search::Ranking::default();
                    answer(index.search_concurrently(&SearchRequest::new(&q), &ranking).await.expect("search"))
                })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("task"));
        }
        out
    });
    for (i, got) in together.iter().enumerate() {
        let n = i % queries.len();
        assert_eq!(got, &alone[n], "{:?}", queries[n]);
    }
    assert!(alone.iter().all(|(_, _, semantic)| semantic.is_some()), "every search fused");
}

/// `/metrics` says how many queries the encoding thread encoded and in how
/// many batches: a repeated question comes from the cache instead.
#[tokio::test]
async fn metrics_count_query_encodings_and_batches() {
    let Some(encoder) = encoder() else { return };
    let fixture = fixture();
    let report = build(&fixture, Some(&encoder));
    let index = SearchIndex::open_generation_with(&fixture.index(), &report.revision, Some(encoder)).unwrap();
    let api = crate::support::Api::new(kefu::http::AppState::new(index::SharedIndex::new(index)));
    for query in ["适合情侣一起穿吗", "我被扣了两遍", "能发顺丰吗", "能发顺丰吗"] {
        let (code, body) = api.get(&format!("/v1/search?q={}", crate::support::encode(query))).await;
        assert_eq!(code, axum::http::StatusCode::OK, "{body}");
    }
    let (code, _, text) = api.send(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(code, axum::http::StatusCode::OK);
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("kefu_query_encodings_total "), 3.0, "the repeat is cached");
    let batches = value("kefu_query_encoding_batches_total ");
    assert!((1.0..=3.0).contains(&batches), "{batches}");
}
