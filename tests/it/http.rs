//! The HTTP API through `app(state)`, without a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use kefu::http::{app, AppState};
use kefu::index::SharedIndex;
use serde_json::Value;
use tower::ServiceExt;

use crate::support::Fixture;

async fn get(uri: &str) -> (StatusCode, Value) {
    let fixture = Fixture::copy("shop");
    let state = AppState::new(SharedIndex::new(fixture.build()));
    let response = app(state).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {bytes:?}"));
    (status, body)
}

fn q(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn search_returns_ranked_hits_with_confidence() {
    let (status, body) = get(&format!("/v1/search?q={}&limit=3", q("能发顺丰吗"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["hits"][0]["id"], "ship-sf");
    assert_eq!(body["confidence"], "high");
    assert!(body["query_id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(body["took_ms"].as_f64().is_some());
    assert!(body["hits"].as_array().unwrap().len() <= 3);
    let hit = &body["hits"][0];
    for key in [
        "question",
        "matched",
        "title",
        "kind",
        "products",
        "platforms",
        "audience",
        "score",
        "snippet",
        "answer_markdown",
        "answer_html",
    ] {
        assert!(!hit[key].is_null(), "hit lacks {key}: {hit}");
    }
    assert_eq!(hit["source"]["path"], "faq/shipping.md");
}

#[tokio::test]
async fn search_filters_by_platform_and_audience() {
    let (_, body) = get(&format!("/v1/search?q={}&platform=jd", q("能开发票吗"))).await;
    assert_eq!(body["hits"][0]["id"], "jd-invoice");
    let (_, body) = get(&format!("/v1/search?q={}&audience=public&limit=100", q("催付话术"))).await;
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["audience"] == "public"), "{body}");
}

#[tokio::test]
async fn bad_search_input_is_a_400_with_a_stable_code() {
    let long = q(&"退".repeat(2001));
    for (uri, code) in [
        ("/v1/search?q=".to_string(), "empty_query"),
        ("/v1/search".to_string(), "empty_query"),
        (format!("/v1/search?q={long}"), "query_too_long"),
        (format!("/v1/search?q={}&platform=tmal", q("发票")), "unknown_platform"),
        (format!("/v1/search?q={}&limit=0", q("发票")), "invalid_limit"),
        (format!("/v1/search?q={}&limit=abc", q("发票")), "invalid_limit"),
        (format!("/v1/search?q={}&limit=1000", q("发票")), "invalid_limit"),
        (format!("/v1/search?q={}&audience=everyone", q("发票")), "unknown_audience"),
        (format!("/v1/search?q={}&limit=-1", q("发票")), "invalid_limit"),
        (format!("/v1/search?q={}&explain=maybe", q("发票")), "invalid_parameters"),
    ] {
        let (status, body) = get(&uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn entries_are_served_by_id_and_internal_ones_hidden_from_public() {
    let (status, body) = get("/v1/entries/ship-sf").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["question"], "能发顺丰吗？");
    assert_eq!(body["similar"][0], "可以走顺丰吗");
    let (status, _) = get("/v1/entries/script-remind").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get("/v1/entries/script-remind?audience=public").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "entry_not_found");
    let (status, missing) = get("/v1/entries/no-such-entry?audience=public").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], missing["error"]["code"], "an internal entry must look like a missing one");
}

#[tokio::test]
async fn unknown_routes_bad_paths_and_methods_are_json_errors() {
    let (status, body) = get("/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = get("/v1/entries/%FF").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_parameters");
    let fixture = Fixture::copy("shop");
    let request = Request::post("/v1/search?q=x").body(Body::empty()).unwrap();
    let response = app(AppState::new(SharedIndex::new(fixture.build()))).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn healthz_reports_what_is_served() {
    let (status, body) = get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert!(body["entries"].as_u64().unwrap() >= 6);
}

/// `GET /metrics` counts requests by route pattern (never the URL or the
/// query text), method and status; searches by confidence and source; and
/// reports the served index. Invented methods share one label.
#[tokio::test]
async fn metrics_count_requests_by_route_and_searches_by_confidence() {
    let fixture = Fixture::copy("shop");
    let api = crate::support::Api::new(AppState::new(SharedIndex::new(fixture.build())));
    let secret = "我的手机号13812345678能发顺丰吗";
    assert_eq!(api.get(&format!("/v1/search?q={}&source=widget", q(secret))).await.0, StatusCode::OK);
    assert_eq!(api.get(&format!("/v1/search?q={}", q("能发顺丰吗"))).await.0, StatusCode::OK);
    assert_eq!(api.get("/v1/entries/ship-sf").await.0, StatusCode::OK);
    assert_eq!(api.get("/v1/entries/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/no/such/route").await.0, StatusCode::NOT_FOUND);
    let odd = Request::builder().method("BREW").uri("/v1/search?q=x").body(Body::empty()).unwrap();
    assert_eq!(api.send(odd).await.0, StatusCode::METHOD_NOT_ALLOWED);

    let (status, content_type, text) = api.send(Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let value = |series: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value(r#"kefu_http_requests_total{route="/v1/search",method="GET",status="200"}"#), 2.0);
    assert_eq!(value(r#"kefu_http_requests_total{route="/v1/entries/{id}",method="GET",status="200"}"#), 1.0);
    assert_eq!(value(r#"kefu_http_requests_total{route="/v1/entries/{id}",method="GET",status="404"}"#), 1.0);
    assert_eq!(value(r#"kefu_http_requests_total{route="unmatched",method="GET",status="404"}"#), 1.0);
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(!text.contains("BREW"));
    assert_eq!(value(r#"kefu_http_request_duration_seconds_count{route="/v1/search",method="GET",status="200"}"#), 2.0);
    assert_eq!(value(r#"kefu_searches_total{confidence="high",source="api"}"#), 1.0);
    assert_eq!(value("kefu_index_entries "), api.state.index.current().entries().len() as f64);
    assert!(text.contains("kefu_query_log_dropped_total 0"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
    assert!(!text.contains("13812345678") && !text.contains("顺丰"), "no query text in metrics");
}
