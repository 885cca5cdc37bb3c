//! The FAQ-gap loop end to end: buyer questions replayed through HTTP, the
//! query log, the clustered report, masking, feedback, and editing `kb/`
//! resolving a cluster.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use kefu::http::AppState;
use kefu::index::{self, SearchIndex, SharedIndex};
use kefu::querylog::{Options, QueryLog, Store};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::support::{encode, Api, Fixture};

#[derive(Debug, Deserialize)]
struct Line {
    query: String,
    kind: String,
    #[serde(default)]
    gold: Vec<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    near: Option<String>,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    source: String,
    #[serde(default)]
    times: Option<u32>,
    #[serde(default)]
    pii: Option<Vec<String>>,
}

fn replay_set() -> Vec<Line> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/queries/gap-replay.jsonl");
    std::fs::read_to_string(path)
        .expect("replay set")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// A served copy of a knowledge base with a query log in a temp dir.
struct Served {
    fixture: Fixture,
    api: Api,
}

impl Served {
    fn start(kb: &str) -> Served {
        let fixture = Fixture::copy(kb);
        let log = QueryLog::open(&fixture.dir.path().join("data"), Options::default()).expect("query log");
        let api = Api::new(AppState::with_log(SharedIndex::new(fixture.build()), log));
        Served { fixture, api }
    }

    fn state(&self) -> &AppState {
        &self.api.state
    }

    /// Rebuilds the index from the edited `kb/` and swaps it in, as a reload does.
    fn rebuild(&self) {
        let kb = kefu::kb::load(&self.fixture.kb()).unwrap_or_else(|e| panic!("{e}"));
        index::build(&kb, &self.fixture.index(), &|_, _| {}).expect("build");
        self.state().index.replace(SearchIndex::open(&self.fixture.index()).expect("open"));
    }

    async fn search(&self, query: &str, product: Option<&str>, platform: Option<&str>, source: &str) -> Value {
        let mut uri = format!("/v1/search?q={}&source={source}", encode(query));
        if let Some(p) = product {
            uri.push_str(&format!("&product={}", encode(p)));
        }
        if let Some(p) = platform {
            uri.push_str(&format!("&platform={p}"));
        }
        if source == "widget" {
            uri.push_str("&audience=public");
        }
        let (status, body) = self.api.get(&uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        body
    }

    async fn gaps(&self, params: &str) -> Value {
        let (status, body) = self.api.get(&format!("/v1/gaps?limit=1000&{params}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn store(&self) -> Store {
        assert!(self.state().log.flush(std::time::Duration::from_secs(10)), "log flushed");
        Store::open_existing(&self.fixture.dir.path().join("data")).expect("store")
    }
}

/// Replays every line (`times` times); returns the confidence of each line.
async fn replay(served: &Served, lines: &[Line]) -> Vec<String> {
    let mut confidences = Vec::with_capacity(lines.len());
    for line in lines {
        let mut confidence = String::new();
        for _ in 0..line.times.unwrap_or(1) {
            let body =
                served.search(&line.query, line.product.as_deref(), line.platform.as_deref(), &line.source).await;
            confidence = body["confidence"].as_str().expect("confidence").to_string();
        }
        confidences.push(confidence);
    }
    confidences
}

fn is_gap(confidence: &str) -> bool {
    confidence == "low" || confidence == "none"
}

/// Which cluster each question text landed in.
fn cluster_of(report: &Value) -> HashMap<String, String> {
    let mut of = HashMap::new();
    for gap in report["gaps"].as_array().expect("gaps") {
        for q in gap["questions"].as_array().expect("questions") {
            of.insert(q["text"].as_str().unwrap().to_string(), gap["id"].as_str().unwrap().to_string());
        }
    }
    of
}

/// Pairwise precision and recall of the clustering against the labelled
/// groups, over the gap lines that were reported.
fn pairwise(lines: &[Line], confidences: &[String], clusters: &HashMap<String, String>) -> (f64, f64) {
    let items: Vec<(&str, &str)> = lines
        .iter()
        .zip(confidences)
        .filter(|(l, c)| l.kind == "gap" && is_gap(c))
        .filter_map(|(l, _)| {
            Some((l.group.as_deref()?, clusters.get(&kefu::querylog::mask::mask(&l.query).into_owned())?.as_str()))
        })
        .collect();
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            match (items[i].0 == items[j].0, items[i].1 == items[j].1) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fn_ += 1,
                (false, false) => {}
            }
        }
    }
    (f64::from(tp) / f64::from((tp + fp).max(1)), f64::from(tp) / f64::from((tp + fn_).max(1)))
}

#[tokio::test]
async fn replayed_buyer_questions_become_clusters_that_kb_edits_resolve() {
    let lines = replay_set();
    let served = Served::start("kb");
    let confidences = replay(&served, &lines).await;

    // How well confidence separates what the KB answers from what it does not.
    let weight = |l: &Line| f64::from(l.times.unwrap_or(1));
    let share = |kind: &str| {
        let (hit, all) = lines
            .iter()
            .zip(&confidences)
            .filter(|(l, _)| l.kind == kind)
            .fold((0.0, 0.0), |acc, (l, c)| (acc.0 + if is_gap(c) { weight(l) } else { 0.0 }, acc.1 + weight(l)));
        hit / all
    };
    let gaps_found = share("gap");
    let false_gaps = share("answerable");

    let report = served.gaps("").await;
    let clusters = cluster_of(&report);
    let (precision, recall) = pairwise(&lines, &confidences, &clusters);
    eprintln!(
        "gap replay: {:.1}% of unanswerable searches reported as gaps, {:.1}% of answerable ones wrongly; \
         clustering pairwise precision {precision:.3}, recall {recall:.3}; {} clusters",
        gaps_found * 100.0,
        false_gaps * 100.0,
        report["gaps"].as_array().unwrap().len()
    );
    assert!(gaps_found >= 0.85, "unanswerable questions reported as gaps: {gaps_found:.3}");
    assert!(precision >= 0.7, "pairwise precision {precision:.3}");
    assert!(recall >= 0.2, "pairwise recall {recall:.3}");

    // Every logged search is counted; clusters are sorted by impact.
    let total: u32 = lines.iter().map(|l| l.times.unwrap_or(1)).sum();
    assert_eq!(report["totals"]["searches"], u64::from(total));
    let counts: Vec<u64> = report["gaps"].as_array().unwrap().iter().map(|g| g["count"].as_u64().unwrap()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "sorted by count: {counts:?}");
    let first = &report["gaps"][0];
    for key in [
        "id",
        "representative",
        "count",
        "first_seen",
        "last_seen",
        "products",
        "platforms",
        "questions",
        "suggestion",
        "status",
    ] {
        assert!(!first[key].is_null(), "gap lacks {key}: {first}");
    }

    // Suggestions: near-miss groups point at their entry.
    let mut near_right = 0;
    let mut near_groups = HashSet::new();
    for line in lines.iter().filter(|l| l.near.is_some()) {
        near_groups.insert(line.group.clone().unwrap());
    }
    let gap_by_id: HashMap<&str, &Value> =
        report["gaps"].as_array().unwrap().iter().map(|g| (g["id"].as_str().unwrap(), g)).collect();
    for group in &near_groups {
        let line = lines.iter().find(|l| l.group.as_ref() == Some(group)).unwrap();
        let Some(gap) =
            clusters.get(&kefu::querylog::mask::mask(&line.query).into_owned()).map(|id| gap_by_id[id.as_str()])
        else {
            continue;
        };
        if gap["nearest"]["id"].as_str() == line.near.as_deref() {
            near_right += 1;
        }
    }
    eprintln!("nearest entry right for {near_right} of {} near-miss groups", near_groups.len());
    assert!(near_right * 2 >= near_groups.len(), "nearest entry right for {near_right} of {}", near_groups.len());

    // Answerable questions that got a low confidence are not noise: their
    // cluster should send the copywriter to the entry that answers them.
    let (mut reported, mut pointed) = (0, 0);
    for (line, confidence) in lines.iter().zip(&confidences) {
        if line.kind != "answerable" || !is_gap(confidence) {
            continue;
        }
        let Some(id) = clusters.get(&kefu::querylog::mask::mask(&line.query).into_owned()) else { continue };
        reported += 1;
        let gap = gap_by_id[id.as_str()];
        if gap["suggestion"] == "add_similar"
            && line.gold.contains(&gap["nearest"]["id"].as_str().unwrap_or("").to_string())
        {
            pointed += 1;
        }
    }
    eprintln!("answerable questions reported as gaps: {pointed} of {reported} suggest adding them to the right entry");
    assert!(false_gaps <= 0.7, "answerable questions reported as gaps: {false_gaps:.3}");

    // Masking: no personal data reaches the database, in any form.
    let store = served.store();
    let stored = store.all_query_texts().unwrap().join("\n");
    for line in lines.iter().filter(|l| l.pii.is_some()) {
        for number in long_numbers(&line.query) {
            assert!(!stored.contains(&number), "{number} from {:?} was stored", line.query);
        }
        for word in line.query.split(|c: char| c.is_whitespace() || !c.is_ascii()) {
            assert!(!(word.contains('@') && stored.contains(word)), "email {word} was stored");
        }
    }
    assert!(stored.contains("[手机号]") && stored.contains("[订单号]") && stored.contains("[地址]"), "labels stored");
    let bytes = std::fs::read(store.path()).unwrap();
    let wal = std::fs::read(store.path().with_extension("sqlite3-wal")).unwrap_or_default();
    for line in lines.iter().filter(|l| l.pii.is_some()) {
        for number in long_numbers(&line.query) {
            let needle = number.as_bytes();
            for file in [&bytes, &wal] {
                assert!(!file.windows(needle.len()).any(|w| w == needle), "{number} is in the database file");
            }
        }
    }

    // A copywriter writes the missing entry: its cluster is resolved by it.
    let engraving: Vec<&Line> = lines.iter().filter(|l| l.group.as_deref() == Some("boots-engraving")).collect();
    assert!(engraving.len() >= 4);
    let gap_id = clusters[&kefu::querylog::mask::mask(&engraving[0].query).into_owned()].clone();
    assert_eq!(gap_by_id[gap_id.as_str()]["status"], "open");
    assert_eq!(gap_by_id[gap_id.as_str()]["suggestion"], "new_entry");
    let similar: Vec<&str> = engraving.iter().skip(1).map(|l| l.query.as_str()).collect();
    served.fixture.write(
        "products/boots-1001-engraving.md",
        &format!(
            "---\nproducts: [SKU-1001]\n---\n\n## 靴子可以刻字吗？ {{#boots-1001-engraving}}\n\n相似问：{}\n\n暂不提供刻字服务。\n",
            similar.join("｜")
        ),
    );
    served.rebuild();
    let after = served.gaps("").await;
    let gap =
        after["gaps"].as_array().unwrap().iter().find(|g| g["id"] == gap_id.as_str()).expect("cluster still listed");
    assert_eq!(gap["status"], "resolved", "{gap}");
    assert_eq!(gap["resolved_by"]["id"], "boots-1001-engraving");
    assert_eq!(gap["suggestion"], "none");
    // The group may have been split into several clusters; the new entry
    // resolves those and nothing unrelated.
    for gap in after["gaps"].as_array().unwrap().iter().filter(|g| g["status"] == "resolved") {
        assert_eq!(gap["resolved_by"]["id"], "boots-1001-engraving", "{gap}");
        let questions: Vec<&str> =
            gap["questions"].as_array().unwrap().iter().map(|q| q["text"].as_str().unwrap()).collect();
        assert!(
            questions.iter().any(|q| q.contains('刻') || q.contains('字')),
            "unrelated cluster resolved: {questions:?}"
        );
    }
    let open = served.gaps("status=open").await;
    assert!(open["gaps"].as_array().unwrap().iter().all(|g| g["id"] != gap_id.as_str() && g["status"] == "open"));
}

/// Digit sequences of 9+ digits as typed (separators kept), and without separators.
fn long_numbers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut digits = 0;
    for c in text.chars().chain(std::iter::once('。')) {
        if c.is_ascii_digit() || ((c == ' ' || c == '-') && !current.is_empty()) {
            current.push(c);
            digits += usize::from(c.is_ascii_digit());
        } else {
            if digits >= 9 {
                let typed = current.trim_end_matches([' ', '-']).to_string();
                out.push(typed.chars().filter(char::is_ascii_digit).collect());
                out.push(typed);
            }
            current.clear();
            digits = 0;
        }
    }
    out
}

#[tokio::test]
async fn feedback_is_recorded_and_unsatisfying_answers_are_reported() {
    let served = Served::start("shop");
    let body = served.search("能发顺丰吗", None, None, "widget").await;
    let query_id = body["query_id"].as_str().unwrap();
    for helpful in [false, false, true] {
        let (status, answer) = served
            .api
            .post(
                "/v1/feedback",
                &json!({"query_id": query_id, "entry_id": "ship-sf", "helpful": helpful, "source": "widget"}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }
    let report = served.gaps("").await;
    let entry = &report["unsatisfying"][0];
    assert_eq!(entry["id"], "ship-sf");
    assert_eq!((entry["helpful"].as_u64(), entry["unhelpful"].as_u64()), (Some(1), Some(2)));

    for (body, code, status) in [
        (
            json!({"query_id": "nope", "entry_id": "ship-sf", "helpful": true}),
            "invalid_query_id",
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"query_id": query_id, "entry_id": "no-such", "helpful": true}),
            "entry_not_found",
            StatusCode::NOT_FOUND,
        ),
        (json!({"query_id": query_id, "entry_id": "ship-sf"}), "invalid_body", StatusCode::BAD_REQUEST),
        (
            json!({"query_id": query_id, "entry_id": "ship-sf", "helpful": "yes"}),
            "invalid_body",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (got, answer) = served.api.post("/v1/feedback", &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
}

#[tokio::test]
async fn questions_agents_get_although_the_product_page_answers_them_are_listed() {
    let served = Served::start("kb");
    for _ in 0..3 {
        served.search("这款靴子偏大还是偏小", Some("SKU-1001"), None, "agent").await;
    }
    served.search("这款靴子偏大还是偏小", Some("SKU-1001"), None, "widget").await;
    let report = served.gaps("").await;
    let product = report["asked_despite_answered"].as_array().unwrap().iter().find(|p| p["product"] == "SKU-1001");
    let product = product.unwrap_or_else(|| panic!("{}", report["asked_despite_answered"]));
    assert_eq!(product["entries"][0]["id"], "boots-1001-size");
    assert_eq!(product["entries"][0]["count"], 3, "only questions asked of agents count");
}

#[tokio::test]
async fn gap_report_filters_and_formats() {
    let served = Served::start("shop");
    served.search("台灯可以调亮度吗", Some("LAMP-1"), Some("tmall"), "widget").await;
    served.search("灯能不能调亮度", None, Some("jd"), "agent").await;
    served.search("支持分期付款吗", None, None, "widget").await;
    let all = served.gaps("").await;
    assert!(all["gaps"].as_array().unwrap().len() >= 2, "{all}");
    let jd = served.gaps("platform=jd").await;
    assert!(jd["gaps"].as_array().unwrap().iter().all(|g| g["platforms"] == json!(["jd"])), "{jd}");
    let agents = served.gaps("source=agent").await;
    assert_eq!(agents["totals"]["searches"], 1);
    let future = served.gaps("since=2099-01-01&until=2099-01-02").await;
    assert_eq!(future["gaps"].as_array().unwrap().len(), 0);

    for (params, code) in [
        ("days=0", "invalid_window"),
        ("since=yesterday", "invalid_window"),
        ("platform=ebay", "unknown_platform"),
        ("source=bot", "unknown_source"),
        ("status=done", "invalid_parameters"),
    ] {
        let (status, body) = served.api.get(&format!("/v1/gaps?{params}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}: {body}");
        assert_eq!(body["error"]["code"], code, "{params}: {body}");
    }

    let (status, content_type, csv) =
        served.api.send(axum::http::Request::get("/v1/gaps.csv").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/csv"));
    assert!(csv.starts_with("\u{feff}id,status,count,representative"), "{csv}");
    assert!(csv.contains("分期付款"), "{csv}");

    let (status, content_type, html) =
        served.api.send(axum::http::Request::get("/admin/gaps?days=7").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"));
    assert!(html.contains("<svg") && html.contains("分期付款"), "chart and clusters");
}

#[tokio::test]
async fn buyer_text_is_escaped_on_the_admin_page() {
    let served = Served::start("shop");
    served.search("<script>alert(1)</script>能刻字吗", None, None, "widget").await;
    let (_, _, html) =
        served.api.send(axum::http::Request::get("/admin/gaps").body(axum::body::Body::empty()).unwrap()).await;
    assert!(!html.contains("<script>alert"), "buyer text must be escaped");
    assert!(html.contains("&lt;script&gt;"));
}

#[tokio::test]
async fn without_a_query_log_gaps_and_feedback_say_so() {
    let fixture = Fixture::copy("shop");
    let api = Api::new(AppState::new(SharedIndex::new(fixture.build())));
    let (status, body) = api.get("/v1/gaps").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "query_log_disabled");
    let (status, body) = api.get("/v1/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["query_log"]["enabled"], false);
}

#[test]
fn retention_deletes_old_searches_when_the_log_opens() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let day = 86_400_000;
    let now = kefu::querylog::now_ms();
    {
        let log = QueryLog::open(&data, Options::default()).unwrap();
        for (i, age_days) in [200, 91, 89, 1].into_iter().enumerate() {
            log.record_search(event(format!("00000000-0000-7000-8000-00000000000{i}"), now - age_days * day));
        }
        log.shutdown();
        assert_eq!(Store::open_existing(&data).unwrap().count_searches().unwrap(), 4);
    }
    let log = QueryLog::open(&data, Options::default()).unwrap();
    assert_eq!(Store::open_existing(&data).unwrap().count_searches().unwrap(), 2, "older than 90 days removed");
    drop(log);
    let short = Options { retention: std::time::Duration::from_secs(7 * 86_400), ..Options::default() };
    let _log = QueryLog::open(&data, short).unwrap();
    assert_eq!(Store::open_existing(&data).unwrap().count_searches().unwrap(), 1);
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { capacity: 4, flush_interval: std::time::Duration::from_secs(3600), ..Options::default() };
    let log = QueryLog::open(&dir.path().join("data"), options).unwrap();
    let mut accepted = 0;
    for i in 0..10_000 {
        let event = event(uuid_like(i), kefu::querylog::now_ms());
        accepted += usize::from(log.record_search(event));
    }
    let stats = log.stats();
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(stats.accepted + stats.dropped, 10_000);
    assert_eq!(stats.accepted as usize, accepted);
    log.shutdown();
    let stats = log.stats();
    assert_eq!(stats.written, stats.accepted, "shutdown writes everything accepted: {stats:?}");
    assert_eq!(Store::open_existing(&dir.path().join("data")).unwrap().count_searches().unwrap(), stats.written);
}

/// An unanswered search as the request path hands it to the log.
fn event(query_id: String, at_ms: i64) -> kefu::querylog::SearchEvent {
    kefu::querylog::SearchEvent {
        query_id,
        at_ms,
        source: kefu::querylog::Source::Api,
        query: "靴子能刻字吗".into(),
        product: None,
        platform: None,
        public_only: false,
        hits: Vec::new(),
        confidence: kefu::model::Confidence::None,
        latency_us: 1,
        revision: "r".into(),
    }
}

fn uuid_like(i: usize) -> String {
    format!("00000000-0000-7000-8000-{i:012}")
}

/// Prints clustering precision/recall at several similarity thresholds:
/// `cargo test --release --test it gap_clustering_sweep -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a tuning aid, not a check"]
async fn gap_clustering_sweep() {
    let lines = replay_set();
    let served = Served::start("kb");
    let confidences = replay(&served, &lines).await;
    let store = served.store();
    let index = served.state().index.current();
    let filter = kefu::querylog::Filter { since_ms: 0, until_ms: i64::MAX, ..Default::default() };
    for similarity in [0.2, 0.25, 0.3, 0.35, 0.4] {
        let request = kefu::gaps::ReportRequest { similarity, ..kefu::gaps::ReportRequest::new(filter.clone()) };
        let report = serde_json::to_value(kefu::gaps::report(&store, &index, &request, 0).unwrap()).unwrap();
        let (p, r) = pairwise(&lines, &confidences, &cluster_of(&report));
        eprintln!(
            "similarity {similarity:.2}: precision {p:.3} recall {r:.3} clusters {}",
            report["gaps"].as_array().unwrap().len()
        );
    }
}

#[test]
#[ignore = "timing aid"]
fn writer_cost_breakdown() {
    let lines = replay_set();
    let simplifier = kefu::analysis::Simplifier::new().unwrap();
    let n = 20;
    let t = std::time::Instant::now();
    for _ in 0..n {
        for l in &lines {
            std::hint::black_box(kefu::querylog::mask::mask(&l.query));
        }
    }
    eprintln!("mask {:.2} us", t.elapsed().as_secs_f64() * 1e6 / (n * lines.len()) as f64);
    let t = std::time::Instant::now();
    for _ in 0..n {
        for l in &lines {
            std::hint::black_box(kefu::querylog::normalize_question(Some(&simplifier), &l.query));
        }
    }
    eprintln!("normalize {:.2} us", t.elapsed().as_secs_f64() * 1e6 / (n * lines.len()) as f64);
}
