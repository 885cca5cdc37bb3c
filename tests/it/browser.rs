//! The product-page widget and the agent console in a real browser:
//! `tests/browser/run.mjs` (headless Chromium driven by playwright-core)
//! against `kefu serve` on the sample `kb/`. `scripts/test` installs Chromium
//! and the node modules; without them the test is skipped with a note, unless
//! `CI` or `KEFU_REQUIRE_BROWSER` is set, where it fails instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use kefu::http::AppState;
use kefu::index::SharedIndex;

use kefu::config::{hash_secret, new_secret, Role};

use crate::support::{serve_on, Fixture};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What the browser tests run with.
struct Tools {
    node: PathBuf,
    chromium: PathBuf,
}

/// Node, Chromium and `tests/browser/node_modules`, or why not.
fn find_tools() -> Result<Tools, String> {
    let node = PathBuf::from(std::env::var_os("NODE").unwrap_or_else(|| "node".into()));
    let version = Command::new(&node).arg("--version").output();
    if !version.is_ok_and(|out| out.status.success()) {
        return Err(format!("{} is not installed", node.display()));
    }
    let chromium = PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    if !chromium.is_file() {
        return Err(format!("no Chromium at {} (set CHROMIUM to use another)", chromium.display()));
    }
    if !root().join("tests/browser/node_modules/playwright-core").is_dir() {
        return Err("tests/browser/node_modules is missing (npm ci --prefix tests/browser)".into());
    }
    Ok(Tools { node, chromium })
}

/// A public key for the widget and an agent key for the console, in the
/// `kefu.toml` the server starts with, so the pages are tested with real
/// keys: the widget's `?key=` and Bearer feedback, CORS for a shop's page on
/// another origin, the console's key prompt.
struct Keys {
    config: PathBuf,
    public: String,
    agent: String,
}

impl Keys {
    /// Keys for a server at `origin` (its own pages post feedback with it),
    /// whose widget may also be embedded by `shop`.
    fn write(fixture: &Fixture, origin: &str, shop: &str) -> Keys {
        let public = new_secret(Role::Public).expect("random secret");
        let agent = new_secret(Role::Agent).expect("random secret");
        let config = fixture.dir.path().join("kefu.toml");
        let text = format!(
            "[[keys]]\nname = \"browser-widget\"\nrole = \"public\"\nsecret_sha256 = \"{}\"\n\
             origins = [\"{origin}\", \"{shop}\"]\n\n\
             [[keys]]\nname = \"browser-agent\"\nrole = \"agent\"\nsecret_sha256 = \"{}\"\n",
            hash_secret(&public),
            hash_secret(&agent)
        );
        std::fs::write(&config, text).expect("write kefu.toml");
        Keys { config, public, agent }
    }
}

/// A free loopback port, so the config can name the server's origin before
/// the server starts.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").to_string()
}

fn required() -> bool {
    ["CI", "KEFU_REQUIRE_BROWSER"].iter().any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

#[test]
fn widget_and_console_work_in_headless_chromium() {
    let tools = match find_tools() {
        Ok(tools) => tools,
        Err(missing) if required() => panic!("browser tests cannot run: {missing}; scripts/test installs everything"),
        Err(missing) => {
            eprintln!("skipping the browser tests: {missing}; run scripts/test to install what they need");
            return;
        }
    };
    let fixture = Fixture::copy("kb");
    let addr = free_addr();
    // The shop's page is served by run.mjs on another loopback port: a page
    // on a public address may not call loopback (Private Network Access).
    let shop = format!("http://{}", free_addr());
    let keys = Keys::write(&fixture, &format!("http://{addr}"), &shop);
    let config = keys.config.to_str().expect("UTF-8 temp path");
    let (server, addr) = serve_on(&fixture, &addr, &["--no-watch", "--config", config]);
    let screenshots =
        std::env::var_os("KEFU_SCREENSHOTS").map(PathBuf::from).unwrap_or_else(|| root().join("target/screenshots"));
    let started = Instant::now();
    let output = Command::new(&tools.node)
        .arg(root().join("tests/browser/run.mjs"))
        .current_dir(root())
        .env("KEFU_URL", format!("http://{addr}"))
        .env("KEFU_SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &tools.chromium)
        .env("KEFU_PUBLIC_KEY", &keys.public)
        .env("KEFU_AGENT_KEY", &keys.agent)
        .env("KEFU_SHOP_ORIGIN", &shop)
        .output()
        .expect("run node");
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "browser tests failed ({}):\n{stdout}\n{stderr}", output.status);
    let summary: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# ")).collect();
    eprintln!(
        "browser tests passed in {:.1} s; screenshots in {}\n{}",
        started.elapsed().as_secs_f64(),
        screenshots.display(),
        summary.join("\n")
    );
}

async fn page(uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let fixture = Fixture::copy("shop");
    let state = AppState::new(SharedIndex::new(fixture.build()));
    let response = kefu::http::app(state).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn pages_are_served_with_content_type_cache_and_a_strict_csp() {
    for (uri, content_type, marker) in [
        ("/widget.js", "text/javascript; charset=utf-8", "customElements.define('kefu-faq'"),
        ("/console.js", "text/javascript; charset=utf-8", "localStorage"),
        ("/demo.js", "text/javascript; charset=utf-8", "kefu-faq"),
        ("/demo", "text/html; charset=utf-8", "<kefu-faq product=\"SKU-1001\""),
        ("/console", "text/html; charset=utf-8", "<script src=\"/console.js\" defer>"),
    ] {
        let (status, headers, body) = page(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{uri}");
        assert!(headers[header::CACHE_CONTROL].to_str().unwrap().contains("max-age="), "{uri}");
        assert!(body.contains(marker), "{uri}");
        let csp = headers.get(header::CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap().to_string());
        if content_type.starts_with("text/html") {
            let csp = csp.unwrap_or_else(|| panic!("{uri} has no Content-Security-Policy"));
            assert!(csp.starts_with("default-src 'none'; script-src 'self';"), "{csp}");
            assert!(!csp.contains("unsafe"), "{csp}");
        }
    }
}
