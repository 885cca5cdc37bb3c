//! Access keys, roles, CORS, rate limits and what a public key may see.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use kefu::config::{hash_secret, Config};
use kefu::http::{app, AppState};
use kefu::index::SharedIndex;
use kefu::querylog::{Options, QueryLog};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{encode, Fixture};

const PUBLIC: &str = "pk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const AGENT: &str = "ak_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ADMIN: &str = "sk_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SHOP: &str = "https://shop.example.com";

fn config(extra: &str) -> Config {
    let text = format!(
        r#"
[[keys]]
name = "widget"
role = "public"
secret_sha256 = "{}"
origins = ["{SHOP}"]
[[keys]]
name = "agents"
role = "agent"
secret_sha256 = "{}"
[[keys]]
name = "ops"
role = "admin"
secret_sha256 = "{}"
{extra}
"#,
        hash_secret(PUBLIC),
        hash_secret(AGENT),
        hash_secret(ADMIN)
    );
    Config::parse(&text, Path::new("kefu.toml")).expect("valid config")
}

/// The shop fixture with a query log, behind `config`.
struct Shop {
    state: AppState,
    _fixture: Fixture,
}

impl Shop {
    fn new(config: &Config) -> Shop {
        let fixture = Fixture::copy("shop");
        let log = QueryLog::open(&fixture.dir.path().join("data"), Options::default()).expect("query log");
        let state = AppState::with_log(SharedIndex::new(fixture.build()), log).with_access(config);
        Shop { state, _fixture: fixture }
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = app(self.state.clone()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn call(&self, method: Method, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method.clone()).uri(uri);
        if let Some(key) = key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = if method == Method::POST {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json!({"query_id": uuid_like(), "entry_id": "ship-sf", "helpful": true}).to_string())
        } else {
            Body::empty()
        };
        let (status, _, text) = self.send(request.body(body).unwrap()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

fn uuid_like() -> &'static str {
    "0192b3c4-d5e6-7f80-9a1b-2c3d4e5f6a7b"
}

/// Every route and the weakest role that may call it (`None`: open).
fn routes() -> Vec<(Method, String, Option<&'static str>)> {
    vec![
        (Method::GET, format!("/v1/search?q={}", encode("能发顺丰吗")), Some("public")),
        (Method::GET, "/v1/products/SKU-1/faq".into(), Some("public")),
        (Method::POST, "/v1/feedback".into(), Some("public")),
        (Method::GET, "/v1/entries/ship-sf".into(), Some("agent")),
        (Method::GET, "/v1/gaps".into(), Some("admin")),
        (Method::GET, "/v1/gaps.csv".into(), Some("admin")),
        (Method::GET, "/admin/gaps".into(), Some("admin")),
        (Method::GET, "/v1/status".into(), Some("admin")),
        (Method::POST, "/v1/admin/reload".into(), Some("admin")),
        (Method::GET, "/metrics".into(), Some("admin")),
        (Method::GET, "/healthz".into(), None),
    ]
}

fn rank(role: &str) -> u8 {
    match role {
        "public" => 0,
        "agent" => 1,
        _ => 2,
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_documented() {
    let shop = Shop::new(&config("[limits]\nper_ip_per_second = 0"));
    let callers = [
        ("none", None),
        ("wrong", Some("pk_not-a-key")),
        ("public", Some(PUBLIC)),
        ("agent", Some(AGENT)),
        ("admin", Some(ADMIN)),
    ];
    for (method, uri, needed) in routes() {
        for (who, key) in callers {
            let (status, body) = shop.call(method.clone(), &uri, key).await;
            let expected = match (needed, who) {
                (None, _) => "allowed",
                (Some(_), "none") | (Some(_), "wrong") => "401",
                (Some(needed), who) if rank(who) < rank(needed) => "403",
                _ => "allowed",
            };
            let what = format!("{method} {uri} as {who}: {status} {body}");
            match expected {
                "401" => {
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
                    let code = if who == "none" { "missing_key" } else { "invalid_key" };
                    assert_eq!(body["error"]["code"], code, "{what}");
                }
                "403" => {
                    assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
                    assert_eq!(body["error"]["code"], "forbidden", "{what}");
                }
                // Allowed: whatever the route answers, it is not a refusal.
                // (Reload has no kb/ to follow here: 503, still allowed.)
                _ => assert!(
                    ![StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN, StatusCode::TOO_MANY_REQUESTS].contains(&status)
                        && (status.is_success() || uri.contains("reload")),
                    "{what}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn without_keys_every_local_caller_has_full_access() {
    let shop = Shop::new(&Config::default());
    for (method, uri, _) in routes() {
        let (status, body) = shop.call(method.clone(), &uri, None).await;
        assert!(status.is_success() || uri.contains("reload"), "{method} {uri}: {status} {body}");
    }
    // `audience=public` still restricts a local caller.
    let (_, body) = shop.call(Method::GET, &format!("/v1/search?q={}&audience=public", encode("催付话术")), None).await;
    assert!(body["hits"].as_array().unwrap().iter().all(|h| h["audience"] == "public"), "{body}");
}

#[tokio::test]
async fn a_public_key_never_reveals_an_internal_entry() {
    let shop = Shop::new(&config("[limits]\nper_ip_per_second = 0"));
    let internal_query = format!("/v1/search?q={}&limit=100", encode("催付话术 付款"));
    // The agent sees the internal script; the public key does not, even
    // when it asks for every audience.
    let (_, body) = shop.call(Method::GET, &internal_query, Some(AGENT)).await;
    assert!(body["hits"].as_array().unwrap().iter().any(|h| h["id"] == "script-remind"), "{body}");
    let (status, body) = shop.call(Method::GET, &format!("{internal_query}&audience=internal"), Some(PUBLIC)).await;
    assert_eq!(status, StatusCode::OK);
    let text = body.to_string();
    assert!(!text.contains("script-remind") && !text.contains("今天 16 点前付款"), "{text}");
    // Answers come as sanitised HTML only, never the raw Markdown.
    let (_, body) = shop.call(Method::GET, &format!("/v1/search?q={}", encode("能发顺丰吗")), Some(PUBLIC)).await;
    let hits = body["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["answer_markdown"] == "" && h["answer_html"] != ""), "{body}");
    // No evidence listing runners-up.
    let (status, body) = shop.call(Method::GET, &format!("{internal_query}&explain=true"), Some(PUBLIC)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    // Feedback on an internal entry looks exactly like feedback on a missing one.
    let post = |entry: &str| {
        Request::post("/v1/feedback")
            .header(header::AUTHORIZATION, format!("Bearer {PUBLIC}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"query_id": uuid_like(), "entry_id": entry, "helpful": true}).to_string()))
            .unwrap()
    };
    let (internal_status, _, internal_body) = shop.send(post("script-remind")).await;
    let (missing_status, _, missing_body) = shop.send(post("no-such-entry")).await;
    assert_eq!(internal_status, StatusCode::NOT_FOUND);
    assert_eq!(missing_status, StatusCode::NOT_FOUND);
    assert_eq!(
        internal_body.replace("script-remind", "ID"),
        missing_body.replace("no-such-entry", "ID"),
        "an internal id must be indistinguishable from a missing one"
    );
    // The product FAQ is public entries only, whoever asks.
    for key in [PUBLIC, ADMIN] {
        let (_, body) = shop.call(Method::GET, "/v1/products/SKU-1/faq?limit=50", Some(key)).await;
        let ids: Vec<&str> = body["entries"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
        assert!(ids.contains(&"boots-size") && ids.contains(&"ship-sf"), "{ids:?}");
        assert!(!ids.contains(&"script-remind"), "{ids:?}");
        assert!(!ids.contains(&"lamp-color-temp"), "another product's entry: {ids:?}");
    }
}

#[tokio::test]
async fn agent_and_admin_keys_are_refused_in_the_url() {
    let shop = Shop::new(&config(""));
    let uri = |key: &str| format!("/v1/search?q={}&key={key}", encode("发票"));
    let (status, body) = shop.call(Method::GET, &uri(PUBLIC), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for key in [AGENT, ADMIN] {
        let (status, body) = shop.call(Method::GET, &uri(key), None).await;
        assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("key_in_query")));
    }
    // The widget's header works too.
    let request = Request::get("/v1/products/SKU-1/faq").header("x-kefu-key", PUBLIC).body(Body::empty());
    let (status, _, _) = shop.send(request.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn cors_answers_preflights_for_the_public_keys_origins_only() {
    let shop = Shop::new(&config(""));
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/feedback")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization,content-type")
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = shop.send(preflight(SHOP)).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS].to_str().unwrap().to_string();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");

    let (_, headers, _) = shop.send(preflight("https://evil.example.net")).await;
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{headers:?}");

    // The real request: allowed from the key's page, refused from another.
    let get = |origin: &str| {
        Request::get(format!("/v1/search?q={}&key={PUBLIC}", encode("顺丰")))
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, _) = shop.send(get(SHOP)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], SHOP);
    let (status, _, body) = shop.send(get("https://evil.example.net")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");
}

fn from_ip(mut request: Request<Body>, ip: [u8; 4]) -> Request<Body> {
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
    request
}

#[tokio::test]
async fn a_burst_gets_429_with_retry_after_per_key_and_per_address() {
    // A key allowed 1 request a second with a burst of 3.
    let hash = hash_secret("ak_slow");
    let shop = Shop::new(&config(&format!(
        "[[keys]]\nname = \"slow\"\nrole = \"agent\"\nsecret_sha256 = \"{hash}\"\nper_second = 1\nburst = 3\n\
         [limits]\nper_ip_per_second = 1\nper_ip_burst = 2\n"
    )));
    let uri = format!("/v1/search?q={}", encode("顺丰"));
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..10 {
        let request = Request::get(&uri).header(header::AUTHORIZATION, "Bearer ak_slow").body(Body::empty()).unwrap();
        let (status, headers, body) = shop.send(request).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(body.contains("rate_limited"), "{body}");
            retry_after = headers.get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is served: {statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| (1..=2).contains(&s)), "{retry_after:?}");
    // Other keys have their own bucket.
    let (status, _) = shop.call(Method::GET, &uri, Some(AGENT)).await;
    assert_eq!(status, StatusCode::OK);

    // Buyers behind a public key are limited per address: one address
    // runs out, another does not.
    let public = |ip| from_ip(Request::get(format!("{uri}&key={PUBLIC}")).body(Body::empty()).unwrap(), ip);
    let mut first = Vec::new();
    for _ in 0..8 {
        first.push(shop.send(public([10, 0, 0, 1])).await.0.as_u16());
    }
    assert_eq!(&first[..2], &[200, 200], "{first:?}");
    assert!(first.contains(&429), "{first:?}");
    let (status, _, _) = shop.send(public([10, 0, 0, 2])).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn hostile_markdown_never_reaches_a_page_over_http() {
    let fixture = Fixture::empty();
    fixture.write(
        "products/evil.md",
        "---\nproducts: [SKU-6]\n---\n# 测试\n\n## 这个包装怎么拆 {#unbox}\n\n\
         拆开包装<script>alert('x')</script>就好。\n\n\
         <img src=x onerror=\"alert(1)\"> <svg onload=alert(2)></svg>\n\n\
         [说明书](javascript:alert(3)) <a href=\"JaVaScRiPt:alert(4)\">旧版</a> <a href=\"https://ok.example.com/x\">官网</a>\n\n\
         <iframe src=\"https://evil.example.net\"></iframe><object data=\"x.swf\"></object>\n\n\
         <p style=\"background:url(javascript:alert(5))\" onclick=\"steal()\">点这里</p>\n",
    );
    let state = AppState::new(SharedIndex::new(fixture.build()));
    let api = crate::support::Api::new(state);
    let (_, search) = api.get(&format!("/v1/search?q={}&audience=public", encode("包装怎么拆"))).await;
    assert_eq!(search["hits"][0]["id"], "unbox", "{search}");
    let (_, entry) = api.get("/v1/entries/unbox").await;
    let (_, faq) = api.get("/v1/products/SKU-6/faq").await;
    for html in [&search["hits"][0]["answer_html"], &entry["answer_html"], &faq["entries"][0]["answer_html"]] {
        let html = html.as_str().expect("answer_html").to_ascii_lowercase();
        for bad in ["<script", "onerror", "onload", "onclick", "javascript:", "<iframe", "<object", "style="] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("拆开包装") && html.contains("https://ok.example.com/x"), "kept the safe parts: {html}");
    }
    assert!(!search["hits"][0]["snippet"].as_str().unwrap().contains("alert"), "{search}");
}

#[tokio::test]
async fn the_product_faq_puts_the_most_asked_first() {
    let shop = Shop::new(&Config::default());
    let (_, before) = shop.call(Method::GET, "/v1/products/SKU-1/faq", None).await;
    let first = before["entries"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(first, "boots-size", "the product's own entries lead when nothing was asked: {before}");
    // Buyers keep asking about freight insurance on this product.
    for _ in 0..3 {
        let (_, body) =
            shop.call(Method::GET, &format!("/v1/search?q={}&product=SKU-1", encode("有运费险吗")), None).await;
        assert_eq!(body["confidence"], "high", "{body}");
    }
    assert!(shop.state.log.flush(Duration::from_secs(10)));
    // A fresh state reads the log again (counts are cached for a minute).
    let fresh = AppState { asked: Default::default(), ..shop.state.clone() };
    let response = app(fresh).oneshot(Request::get("/v1/products/SKU-1/faq").body(Body::empty()).unwrap()).await;
    let bytes = response.unwrap().into_body().collect().await.unwrap().to_bytes();
    let after: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(after["entries"][0]["id"], "freight-insurance", "{after}");
    assert_eq!(after["entries"][0]["asked"], 3, "{after}");
    assert!(after["query_id"].as_str().is_some_and(|id| id.len() == 36));
}
