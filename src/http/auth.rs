//! Access keys, roles, CORS and rate limits.
//!
//! Two middlewares split the work. [`identify`] runs on every request and
//! works out who is calling (a [`Caller`] in the request's extensions); it
//! never refuses anything, so open routes (`/healthz`, the widget script)
//! and CORS preflights work without a key. A `require_*` route layer on
//! each group of routes then refuses callers that may not use them (401 with
//! no or a wrong key, 403 with a weaker role or a foreign origin) and
//! charges the rate limits (429 with `Retry-After`).
//!
//! Handlers only look at [`Caller::public_only`]: a public caller sees the
//! knowledge base exactly as a buyer does, whatever parameters it sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::Digest;
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use super::AppState;
use crate::config::{Config, Rate, Role};

/// The header a widget may use instead of `Authorization`.
pub const KEY_HEADER: &str = "x-kefu-key";

/// One configured key, ready to check.
struct Key {
    name: Arc<str>,
    role: Role,
    hash: [u8; 32],
    origins: Vec<HeaderValue>,
    limiter: DefaultDirectRateLimiter,
}

/// Everything access control needs, built once from `kefu.toml`.
pub struct Access {
    /// Empty in local mode: every caller is trusted (loopback only).
    keys: Vec<Key>,
    /// Per client IP, for public callers; `None` when switched off.
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Checks since the per-IP table was last pruned.
    checks: AtomicU64,
    client_ip_header: Option<HeaderName>,
}

/// Who is calling, as [`identify`] found out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Local mode (no keys configured): full access, loopback only.
    Local,
    /// No key presented.
    Anonymous,
    /// A key was presented but is not valid (`code` says why).
    Refused { code: &'static str, message: &'static str },
    /// A valid key.
    Key { index: usize, name: Arc<str>, role: Role },
}

impl Caller {
    /// Whether answers must be limited to public entries (a buyer's view).
    pub fn public_only(&self) -> bool {
        matches!(self, Caller::Key { role: Role::Public, .. })
    }
}

/// Prune the per-IP table after this many checks, so a stream of new
/// addresses cannot grow it without bound.
const PRUNE_EVERY: u64 = 4096;

impl Access {
    /// Local mode: no keys, no limits.
    pub fn local() -> Access {
        Access { keys: Vec::new(), per_ip: None, checks: AtomicU64::new(0), client_ip_header: None }
    }

    /// Builds the keys and limiters `config` describes.
    pub fn new(config: &Config) -> Access {
        if !config.has_keys() {
            return Access::local();
        }
        let keys = config
            .keys
            .iter()
            .map(|k| Key {
                name: Arc::from(k.name.trim()),
                role: k.role,
                hash: parse_hash(&k.secret_sha256),
                origins: k.origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect(),
                limiter: RateLimiter::direct(quota(k.rate())),
            })
            .collect();
        let limits = &config.limits;
        let per_ip = (limits.per_ip_per_second > 0).then(|| {
            RateLimiter::keyed(quota(Rate { per_second: limits.per_ip_per_second, burst: limits.per_ip_burst }))
        });
        let client_ip_header = limits.client_ip_header.as_deref().and_then(|h| HeaderName::try_from(h.trim()).ok());
        Access { keys, per_ip, checks: AtomicU64::new(0), client_ip_header }
    }

    /// Whether keys are configured (otherwise: local mode).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The CORS layer for the public keys' origins, if any key has one.
    /// Preflights are answered here, before any key is asked for.
    pub fn cors(&self) -> Option<CorsLayer> {
        let mut origins: Vec<HeaderValue> = self.keys.iter().flat_map(|k| k.origins.iter().cloned()).collect();
        origins.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        origins.dedup();
        if origins.is_empty() {
            return None;
        }
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static(KEY_HEADER),
                    HeaderName::from_static("x-request-id"),
                ])
                .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
                .max_age(Duration::from_secs(600)),
        )
    }

    fn identify(&self, request: &Request) -> Caller {
        if self.keys.is_empty() {
            return Caller::Local;
        }
        let (secret, in_query) = match presented_secret(request) {
            Some(found) => found,
            None => return Caller::Anonymous,
        };
        let hash: [u8; 32] = sha2::Sha256::digest(secret.trim().as_bytes()).into();
        // Every key is compared, in constant time, so timing tells nothing
        // about which bytes matched or which key came close.
        let mut found = None;
        for (index, key) in self.keys.iter().enumerate() {
            if bool::from(key.hash.ct_eq(&hash)) {
                found = Some(index);
            }
        }
        let Some(index) = found else {
            return Caller::Refused { code: "invalid_key", message: "this access key is not valid" };
        };
        let key = &self.keys[index];
        if in_query && key.role != Role::Public {
            // URLs end up in proxy logs and browser history.
            return Caller::Refused {
                code: "key_in_query",
                message: "only public keys may be sent as ?key=; send agent and admin keys in the Authorization header",
            };
        }
        Caller::Key { index, name: key.name.clone(), role: key.role }
    }

    /// Refuses `caller` for a route that needs `needed`, or charges its
    /// rate limits.
    fn admit(&self, caller: &Caller, needed: Role, request: &Request) -> Result<(), Refusal> {
        let (index, role) = match caller {
            Caller::Local => return Ok(()),
            Caller::Anonymous => {
                return Err(unauthorized("missing_key", "this route needs an access key (Authorization: Bearer …)"))
            }
            Caller::Refused { code, message } => return Err(unauthorized(code, message)),
            Caller::Key { index, role, .. } => (*index, *role),
        };
        let key = &self.keys[index];
        if role < needed {
            return Err(Refusal::plain(ApiError {
                status: StatusCode::FORBIDDEN,
                code: "forbidden",
                message: format!("a {} key cannot use this route (it needs {})", role.as_str(), needed.as_str()),
            }));
        }
        if role == Role::Public {
            if let Some(origin) = request.headers().get(header::ORIGIN) {
                if !key.origins.contains(origin) {
                    return Err(Refusal::plain(ApiError {
                        status: StatusCode::FORBIDDEN,
                        code: "origin_not_allowed",
                        message: "this key may not be used from this page's origin".into(),
                    }));
                }
            }
        }
        if let Err(wait) = key.limiter.check() {
            return Err(rate_limited(wait.wait_time_from(DefaultClock::default().now()), "this key"));
        }
        if role == Role::Public {
            if let Some(per_ip) = &self.per_ip {
                if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
                    per_ip.retain_recent();
                    per_ip.shrink_to_fit();
                }
                let ip = self.client_ip(request);
                if let Err(wait) = per_ip.check_key(&ip) {
                    return Err(rate_limited(wait.wait_time_from(DefaultClock::default().now()), "your address"));
                }
            }
        }
        Ok(())
    }

    /// The caller's address: the configured proxy header's first address,
    /// else the TCP peer.
    fn client_ip(&self, request: &Request) -> IpAddr {
        let from_header = self.client_ip_header.as_ref().and_then(|name| {
            let value = request.headers().get(name)?.to_str().ok()?;
            value.split(',').next()?.trim().parse::<IpAddr>().ok()
        });
        from_header
            .or_else(|| request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()))
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

fn quota(rate: Rate) -> Quota {
    let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(per_second).allow_burst(burst)
}

fn parse_hash(hex: &str) -> [u8; 32] {
    // Validated by `Config::parse`; a malformed one matches nothing.
    let mut out = [0u8; 32];
    let digits = hex.trim().as_bytes();
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = digits.get(2 * i..2 * i + 2).and_then(|p| std::str::from_utf8(p).ok());
        *byte = pair.and_then(|p| u8::from_str_radix(p, 16).ok()).unwrap_or(0);
    }
    out
}

/// The secret from `Authorization: Bearer`, `X-Kefu-Key`, or `?key=`
/// (the last flagged, since only public keys may travel in URLs).
fn presented_secret(request: &Request) -> Option<(String, bool)> {
    let headers: &HeaderMap = request.headers();
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).unwrap_or(value);
        return Some((token.trim().to_string(), false));
    }
    if let Some(value) = headers.get(KEY_HEADER).and_then(|v| v.to_str().ok()) {
        return Some((value.trim().to_string(), false));
    }
    let query = request.uri().query()?;
    form_urlencoded_value(query, "key").map(|secret| (secret, true))
}

fn form_urlencoded_value(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a request was refused, with the header that tells the caller what
/// to do about it.
#[derive(Debug)]
struct Refusal {
    error: ApiError,
    /// 401: `WWW-Authenticate: Bearer`.
    authenticate: bool,
    /// 429: seconds until the bucket has room again.
    retry_after: Option<u64>,
}

impl Refusal {
    fn plain(error: ApiError) -> Refusal {
        Refusal { error, authenticate: false, retry_after: None }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if self.authenticate {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn unauthorized(code: &'static str, message: &str) -> Refusal {
    let error = ApiError { status: StatusCode::UNAUTHORIZED, code, message: message.to_string() };
    Refusal { error, authenticate: true, retry_after: None }
}

fn rate_limited(wait: Duration, whom: &str) -> Refusal {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let error = ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        code: "rate_limited",
        message: format!("too many requests from {whom}; try again in {seconds} s"),
    };
    Refusal { error, authenticate: false, retry_after: Some(seconds) }
}

/// Records who is calling; refuses nothing.
pub(super) async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let caller = state.access.identify(&request);
    if let Caller::Key { name, .. } = &caller {
        tracing::Span::current().record("key", &**name);
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn require(state: &AppState, needed: Role, request: Request, next: Next) -> Response {
    let caller = request.extensions().get::<Caller>().cloned().unwrap_or(Caller::Anonymous);
    match state.access.admit(&caller, needed, &request) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Routes a product page may call: search, product FAQ, feedback.
pub(super) async fn require_public(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Role::Public, request, next).await
}

/// Routes for agents: entry lookups.
pub(super) async fn require_agent(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Role::Agent, request, next).await
}

/// Routes for operators: gaps, status, metrics, reload.
pub(super) async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    require(&state, Role::Admin, request, next).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_are_percent_decoded() {
        assert_eq!(form_urlencoded_value("q=a&key=pk_%61b", "key").as_deref(), Some("pk_ab"));
        assert_eq!(form_urlencoded_value("key=100%", "key").as_deref(), Some("100%"));
        assert_eq!(form_urlencoded_value("keys=x", "key"), None);
    }

    #[test]
    fn hashes_round_trip() {
        let hex = crate::config::hash_secret("pk_test");
        let parsed = parse_hash(&hex);
        let direct: [u8; 32] = sha2::Sha256::digest(b"pk_test").into();
        assert_eq!(parsed, direct);
    }
}
