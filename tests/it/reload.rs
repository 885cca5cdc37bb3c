//! Live reload: edits to `kb/` reach searches without a restart, and a
//! broken edit never replaces the last good index.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use kefu::http::AppState;
use kefu::index::SharedIndex;

use crate::support::{encode, http_get, serve, status, Api, Fixture};

const ENGRAVE: &str = "## 能刻字吗？ {#engrave}\n相似问：可以刻名字吗\n\n可以免费刻字，下单备注内容。\n";
const ENGRAVE_BROKEN: &str = "---\nplatfrom: [tmall]\n---\n## 能刻字吗？ {#engrave}\n可以免费刻字。\n";
const ENGRAVE_FIXED: &str = "## 能刻字吗？ {#engrave}\n相似问：可以刻名字吗\n\n刻字免费，最多 8 个字。\n";

async fn reload(api: &Api) -> (StatusCode, serde_json::Value) {
    let (status, _, body) = api.send(Request::post("/v1/admin/reload").body(Body::empty()).unwrap()).await;
    (status, serde_json::from_str(&body).unwrap())
}

async fn top(api: &Api, query: &str) -> serde_json::Value {
    let (status, body) = api.get(&format!("/v1/search?q={}", encode(query))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["hits"][0].clone()
}

#[tokio::test]
async fn reload_swaps_in_valid_edits_and_keeps_the_last_good_index_on_errors() {
    let fixture = Fixture::copy("shop");
    let state = AppState::new(SharedIndex::new(fixture.build())).with_reloader(&fixture.kb(), &fixture.index());
    let api = Api::new(state.clone());
    let (code, body) = reload(&api).await;
    assert_eq!((code, body["outcome"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");

    fixture.write("faq/engrave.md", ENGRAVE);
    let (code, body) = reload(&api).await;
    assert_eq!((code, body["outcome"].as_str()), (StatusCode::OK, Some("reloaded")), "{body}");
    let good = body["revision"].as_str().unwrap().to_string();
    assert_eq!(top(&api, "能刻字吗").await["id"], "engrave");

    fixture.write("faq/engrave.md", ENGRAVE_BROKEN);
    let (code, body) = reload(&api).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "kb_invalid");
    assert_eq!(body["revision"], good.as_str());
    let (_, status) = api.get("/v1/status").await;
    let reload_status = &status["reload"];
    assert_eq!(reload_status["state"], "error", "{status}");
    assert_eq!(reload_status["last_good"]["revision"], good.as_str());
    let error = &reload_status["errors"][0];
    assert!(error["path"].as_str().unwrap().ends_with("faq/engrave.md"), "{error}");
    assert_eq!((error["line"].as_u64(), error["col"].as_u64()), (Some(2), Some(1)));
    assert_eq!(error["hint"], "did you mean `platforms`?");
    assert!(reload_status["failing_since"].is_string());
    // Still answering from the last good index.
    assert_eq!(top(&api, "能刻字吗").await["id"], "engrave");
    assert_eq!(state.index.current().revision, good);

    fixture.write("faq/engrave.md", ENGRAVE_FIXED);
    let (code, body) = reload(&api).await;
    assert_eq!((code, body["outcome"].as_str()), (StatusCode::OK, Some("reloaded")), "{body}");
    let (_, status) = api.get("/v1/status").await;
    assert_eq!(status["reload"]["state"], "ok", "{status}");
    assert_eq!(status["reload"]["error_count"], 0);
    assert!(top(&api, "能刻字吗").await["snippet"].as_str().unwrap().contains("最多 8 个字"));
}

#[tokio::test]
async fn reverting_a_broken_edit_clears_the_error_without_a_rebuild() {
    let fixture = Fixture::copy("shop");
    let state = AppState::new(SharedIndex::new(fixture.build())).with_reloader(&fixture.kb(), &fixture.index());
    let api = Api::new(state.clone());
    let revision = state.index.current().revision.clone();
    let path = fixture.kb().join("faq/shipping.md");
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, original.replace("{#ship-sf}", "{#ship-sf .interal}")).unwrap();
    assert_eq!(reload(&api).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    std::fs::write(&path, &original).unwrap();
    let (code, body) = reload(&api).await;
    assert_eq!((code, body["outcome"].as_str()), (StatusCode::OK, Some("unchanged")), "{body}");
    let (_, status) = api.get("/v1/status").await;
    assert_eq!(status["reload"]["state"], "ok");
    assert_eq!(state.index.current().revision, revision);
}

#[tokio::test]
async fn reload_without_a_knowledge_base_folder_is_unavailable() {
    let fixture = Fixture::copy("shop");
    let api = Api::new(AppState::new(SharedIndex::new(fixture.build())));
    let (code, body) = reload(&api).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "reload_unavailable");
}

/// Waits for `done`, polling; panics with `what` after a generous deadline
/// (a loaded 2-core CI machine builds slowly; the latency is printed, not asserted).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(90), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

#[test]
fn a_running_server_follows_edits_and_never_fails_a_request() {
    let fixture = Fixture::copy("shop");
    let (server, addr) = serve(&fixture);
    let search = format!("/v1/search?q={}&source=api", encode("能刻字吗"));
    let top_id = |addr: &str| -> (u16, String) {
        let (code, body) = http_get(addr, &search);
        let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_default();
        (code, body["hits"][0]["id"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(status(&addr)["reload"]["watching"], "notify");

    // Searches run all the time, from another thread.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, sent, failed, addr, search) =
            (stop.clone(), sent.clone(), failed.clone(), addr.clone(), search.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (code, _) = http_get(&addr, &search);
                sent.fetch_add(1, Ordering::Relaxed);
                if code != 200 {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };

    fixture.write("faq/engrave.md", ENGRAVE);
    let valid = wait_for("the edit to be served", || top_id(&addr).1 == "engrave");

    fixture.write("faq/engrave.md", ENGRAVE_BROKEN);
    let invalid = wait_for("the error in /v1/status", || status(&addr)["reload"]["state"] == "error");
    let reload_status = status(&addr)["reload"].clone();
    assert!(reload_status["errors"][0]["path"].as_str().unwrap().ends_with("faq/engrave.md"), "{reload_status}");
    assert_eq!(reload_status["errors"][0]["line"], 2);
    assert_eq!(top_id(&addr), (200, "engrave".to_string()), "the last good index keeps answering");

    fixture.write("faq/engrave.md", ENGRAVE_FIXED);
    let fixed = wait_for("recovery", || status(&addr)["reload"]["state"] == "ok");
    let (_, body) = http_get(&addr, &search);
    assert!(body.contains("最多 8 个字"), "{body}");

    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(sent > 0);
    assert_eq!(failed, 0, "{failed} of {sent} searches failed during reloads");
    eprintln!("edit served after {valid:?}, error shown after {invalid:?}, fix served after {fixed:?}; {sent} searches meanwhile");
    drop(server);
}

#[test]
fn a_server_started_on_a_broken_kb_serves_the_last_good_index_and_says_why() {
    let fixture = Fixture::copy("shop");
    fixture.build();
    fixture.write("faq/engrave.md", ENGRAVE_BROKEN);
    let (server, addr) = serve(&fixture);
    let reload_status = status(&addr)["reload"].clone();
    assert_eq!(reload_status["state"], "error", "{reload_status}");
    assert_eq!(reload_status["error_count"], 1);
    let (code, body) = http_get(&addr, &format!("/v1/search?q={}", encode("能发顺丰吗")));
    assert_eq!(code, 200);
    assert!(body.contains("ship-sf"), "{body}");
    drop(server);
}

/// A server starting on an up-to-date index reports the knowledge base's
/// warnings from the index (saved at build time) without loading kb/ again.
#[test]
fn a_server_started_on_a_current_index_reports_the_warnings_saved_with_it() {
    let fixture = Fixture::copy("shop");
    fixture.write(
        "faq/empty.md",
        "---\ntitle: 待补充\n---\n# 待补充\n\n## 赠品什么时候发？ {#gift-when}\n\n## 能送货上门吗？ {#door}\n可以，快递员会送到门口。\n",
    );
    fixture.build();
    let (server, addr) = serve(&fixture);
    let reload_status = status(&addr)["reload"].clone();
    assert_eq!(reload_status["reloads"], 0, "the index was current: {reload_status}");
    assert_eq!(reload_status["warning_count"], 1, "{reload_status}");
    let warning = &reload_status["warnings"][0];
    assert!(warning["path"].as_str().unwrap().ends_with("faq/empty.md"), "{warning}");
    assert_eq!(warning["line"], 6, "{warning}");
    drop(server);
}
