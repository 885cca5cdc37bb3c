//! The browser pages, compiled into the binary (`include_str!`) so that
//! kefu stays one file to deploy:
//!
//! - `GET /widget.js`: the `<kefu-faq>` web component buyers see on a
//!   product page (plain JavaScript, no build step, styles in its shadow DOM);
//! - `GET /demo`: a sample 天猫 product page embedding it with the two lines
//!   a shop would paste;
//! - `GET /console`: the agents' search page, beside their chat window.
//!
//! The HTML pages send a strict Content-Security-Policy: scripts only from
//! this server (`/console.js`, `/demo.js`, `/widget.js`, never inline), and
//! the one inline `<style>` of each page allowed by its SHA-256 hash, which
//! is computed from the page itself so an edit can never leave a stale hash.
//! These routes are public: they hold no data, only code that asks the API.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AppState;

const WIDGET_JS: &str = include_str!("assets/widget.js");
const DEMO_HTML: &str = include_str!("assets/demo.html");
const DEMO_JS: &str = include_str!("assets/demo.js");
const CONSOLE_HTML: &str = include_str!("assets/console.html");
const CONSOLE_JS: &str = include_str!("assets/console.js");

/// Browsers may reuse the assets for five minutes: short enough that a new
/// release reaches product pages quickly, long enough to spare a request on
/// every page view.
const CACHE_CONTROL: &str = "public, max-age=300";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(|| async { asset(JAVASCRIPT, WIDGET_JS, None) }))
        .route("/demo", get(|| async { asset(HTML, DEMO_HTML, Some(&DEMO_CSP)) }))
        .route("/demo.js", get(|| async { asset(JAVASCRIPT, DEMO_JS, None) }))
        .route("/console", get(|| async { asset(HTML, CONSOLE_HTML, Some(&CONSOLE_CSP)) }))
        .route("/console.js", get(|| async { asset(JAVASCRIPT, CONSOLE_JS, None) }))
}

static DEMO_CSP: LazyLock<String> = LazyLock::new(|| content_security_policy(DEMO_HTML));
static CONSOLE_CSP: LazyLock<String> = LazyLock::new(|| content_security_policy(CONSOLE_HTML));

fn asset(content_type: &'static str, body: &'static str, csp: Option<&str>) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(value) = csp.and_then(|csp| HeaderValue::from_str(csp).ok()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    response
}

/// The policy of a page: nothing by default; scripts, requests and images
/// from this server; the page's own inline styles by hash. The widget's
/// styles are a constructed stylesheet in its shadow root, which style-src
/// does not govern, so it works under this policy and under a shop's own.
pub fn content_security_policy(html: &str) -> String {
    let styles: String = inline_styles(html)
        .map(|css| {
            let digest = Sha256::digest(css.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'none'; script-src 'self'; style-src{styles}; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )
}

/// The text of every `<style>` element, exactly as the browser hashes it.
fn inline_styles(html: &str) -> impl Iterator<Item = &str> {
    html.split("<style>").skip(1).filter_map(|rest| rest.split_once("</style>").map(|(css, _)| css))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inline_style_is_allowed_by_hash_and_no_script_is_inline() {
        for page in [DEMO_HTML, CONSOLE_HTML] {
            let csp = content_security_policy(page);
            assert_eq!(csp.matches("'sha256-").count(), page.matches("<style>").count(), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            // Every script is a file of this server: inline ones would be blocked.
            assert_eq!(page.matches("<script").count(), page.matches("<script src=\"/").count());
            // Nor inline event handlers (`onclick=` …), which the policy blocks too.
            let lower = page.to_ascii_lowercase();
            let handler = lower.match_indices(" on").find(|(at, _)| {
                let rest = &lower[at + 3..];
                let name = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
                name > 0 && rest[name..].starts_with('=')
            });
            assert_eq!(handler, None, "inline event handler");
        }
    }

    #[test]
    fn hash_is_of_the_style_text() {
        let csp = content_security_policy("<style>a{}</style>");
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"a{}"));
        assert!(csp.contains(&format!("'sha256-{expected}'")), "{csp}");
    }
}
