//! `kefu.toml`: the server's settings that are not about the knowledge base.
//!
//! Today that is access control: the keys callers present, what each may
//! do, where a public key may be embedded, and how fast each may ask. The
//! file is optional: without it (or with no `[[keys]]`) kefu is in local
//! mode and only listens on loopback. Every option is documented in
//! README ("Access keys"); `kefu keys new` prints a ready-made `[[keys]]`
//! block.
//!
//! Only a SHA-256 of each secret is stored. Secrets are 32 random bytes, so
//! a fast hash is enough: there is no password to guess, and a leaked
//! config file gives nobody a key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why `kefu.toml` cannot be used. Each names the file; a parse error also
/// names the line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// Not valid TOML, or an unknown or mistyped option.
    #[error("{path}:{line}:{col}: {message}")]
    Parse { path: PathBuf, line: usize, col: usize, message: String },
    /// Valid TOML whose values do not make sense together (a duplicate key
    /// name, a malformed hash or origin).
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What a key may do. Each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A product page: search and read *public* entries, the product FAQ,
    /// and send feedback. Safe to embed in HTML.
    Public,
    /// Customer-service agents: every searchable entry, internal notes and
    /// red lines included, and entry lookups.
    Agent,
    /// Operators and copywriters: also the gap report, status, metrics and
    /// reload.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Public => "public",
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }

    /// The prefix `kefu keys new` gives a secret, so a leaked one is easy
    /// to recognise (`pk_` may sit in a page's HTML; the others must not).
    pub fn secret_prefix(self) -> &'static str {
        match self {
            Role::Public => "pk_",
            Role::Agent => "ak_",
            Role::Admin => "sk_",
        }
    }

    /// Requests per second and burst when a key sets none. A public key is
    /// shared by every buyer on the product pages, so it gets the most; each
    /// buyer is held back by the per-IP limit instead.
    pub fn default_rate(self) -> Rate {
        match self {
            Role::Public => Rate { per_second: 200, burst: 400 },
            Role::Agent => Rate { per_second: 100, burst: 200 },
            Role::Admin => Rate { per_second: 20, burst: 40 },
        }
    }
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// One `[[keys]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Who holds the key (`tmall-shop-widget`, `agents-hangzhou`); named in
    /// logs and metrics instead of the secret.
    pub name: String,
    pub role: Role,
    /// SHA-256 of the secret, 64 hex digits (`kefu keys hash` computes it).
    pub secret_sha256: String,
    /// Public keys: the pages allowed to call kefu from a browser, as
    /// `scheme://host[:port]` (CORS). A request from another origin is
    /// refused with 403.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Requests per second for this key; default by role.
    pub per_second: Option<u32>,
    /// Burst for this key; default by role.
    pub burst: Option<u32>,
}

impl KeyConfig {
    pub fn rate(&self) -> Rate {
        let default = self.role.default_rate();
        Rate {
            per_second: self.per_second.unwrap_or(default.per_second),
            burst: self.burst.unwrap_or(self.per_second.map_or(default.burst, |p| p.saturating_mul(2))),
        }
    }
}

/// `[limits]`: limits that apply per client rather than per key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Requests per second from one client IP for public callers (buyers);
    /// 0 turns the per-IP limit off.
    pub per_ip_per_second: u32,
    /// Burst per client IP.
    pub per_ip_burst: u32,
    /// Behind a reverse proxy, the header holding the client's address
    /// (e.g. `x-forwarded-for`: its first address is used). Only set this
    /// when the proxy overwrites the header, or clients can forge it.
    pub client_ip_header: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { per_ip_per_second: 10, per_ip_burst: 30, client_ip_header: None }
    }
}

/// `[semantic]`: ranking with the sentence encoder.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SemanticSettings {
    /// Use the model when it is there (`--no-model` turns it off too).
    pub enabled: bool,
    /// The model folder (`--model` and `KEFU_MODEL` win over it).
    pub model: Option<PathBuf>,
    /// The semantic share of the fused score, 0–1 (the lexical score gets
    /// the rest; 0 ranks lexically).
    pub weight: f32,
}

impl Default for SemanticSettings {
    fn default() -> Self {
        SemanticSettings { enabled: true, model: None, weight: crate::search::DEFAULT_SEMANTIC_WEIGHT }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub keys: Vec<KeyConfig>,
    pub limits: Limits,
    /// Query-understanding techniques (`--disable` wins over it).
    pub query: Option<crate::analysis::QueryOptions>,
    pub semantic: SemanticSettings,
}

impl Config {
    /// Reads `path`. A missing file is an error here: the caller decides
    /// whether the default location may be absent.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| {
            let (line, col) = err.span().map_or((1, 1), |span| line_col(text, span.start));
            ConfigError::Parse { path: path.to_path_buf(), line, col, message: err.message().to_string() }
        })?;
        config.validate().map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Whether any key is configured: without one, kefu is in local mode.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for key in &self.keys {
            let name = key.name.trim();
            if name.is_empty() {
                return Err("a key has an empty `name`".into());
            }
            if !names.insert(name) {
                return Err(format!("two keys are named {name:?}"));
            }
            let hash = key.secret_sha256.trim();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "key {name:?}: secret_sha256 must be 64 hex digits (run `kefu keys hash` on the secret)"
                ));
            }
            if !hashes.insert(hash.to_ascii_lowercase()) {
                return Err(format!("key {name:?} has the same secret as another key"));
            }
            if key.role != Role::Public && !key.origins.is_empty() {
                return Err(format!(
                    "key {name:?}: only public keys have origins (an {} key must never be in a web page)",
                    key.role.as_str()
                ));
            }
            for origin in &key.origins {
                check_origin(origin).map_err(|why| format!("key {name:?}: origin {origin:?} {why}"))?;
            }
            let rate = key.rate();
            if rate.per_second == 0 || rate.burst == 0 {
                return Err(format!("key {name:?}: per_second and burst must be at least 1"));
            }
        }
        if !(0.0..=1.0).contains(&self.semantic.weight) {
            return Err(format!("[semantic] weight must be from 0 to 1, got {}", self.semantic.weight));
        }
        if self.limits.per_ip_per_second > 0 && self.limits.per_ip_burst == 0 {
            return Err("[limits] per_ip_burst must be at least 1".into());
        }
        Ok(())
    }
}

/// An origin is what a browser sends in `Origin`: scheme, host, optional
/// port, nothing else.
fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() {
        return Err("has no host");
    }
    if rest.contains(['/', '?', '#', ' ']) {
        return Err("must be scheme://host[:port] with no path (e.g. https://shop.example.com)");
    }
    if rest.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lower case, as browsers send it");
    }
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A new secret for `role`: its prefix and 32 random bytes in hex.
pub fn new_secret(role: Role) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{}{}", role.secret_prefix(), hex(&bytes)))
}

/// SHA-256 of a secret as 64 lower-case hex digits: what `secret_sha256` holds.
pub fn hash_secret(secret: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(secret.trim().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("kefu.toml"))
    }

    #[test]
    fn keys_parse_with_role_defaults() {
        let hash = hash_secret("pk_x");
        let config = parse(&format!(
            "[[keys]]\nname = \"widget\"\nrole = \"public\"\nsecret_sha256 = \"{hash}\"\norigins = [\"https://shop.example.com\"]\n"
        ))
        .unwrap();
        assert_eq!(config.keys[0].role, Role::Public);
        assert_eq!(config.keys[0].rate(), Role::Public.default_rate());
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn mistakes_name_file_line_and_column() {
        let err = parse("[[keys]]\nname = \"a\"\nrole = \"superuser\"\n").unwrap_err().to_string();
        assert!(err.starts_with("kefu.toml:3:"), "{err}");
        assert!(err.contains("superuser") || err.contains("variant"), "{err}");
        let err = parse("[limits]\nper_ip_per_sec = 3\n").unwrap_err().to_string();
        assert!(err.starts_with("kefu.toml:2:1"), "{err}");
    }

    #[test]
    fn invalid_keys_are_refused() {
        let hash = hash_secret("s");
        let cases = [
            "[[keys]]\nname = \"a\"\nrole = \"agent\"\nsecret_sha256 = \"abc\"\n".to_string(),
            format!("[[keys]]\nname = \"a\"\nrole = \"agent\"\nsecret_sha256 = \"{hash}\"\norigins = [\"https://x.cn\"]\n"),
            format!("[[keys]]\nname = \"a\"\nrole = \"public\"\nsecret_sha256 = \"{hash}\"\norigins = [\"https://x.cn/page\"]\n"),
            format!(
                "[[keys]]\nname = \"a\"\nrole = \"public\"\nsecret_sha256 = \"{hash}\"\n[[keys]]\nname = \"a\"\nrole = \"agent\"\nsecret_sha256 = \"{}\"\n",
                hash_secret("t")
            ),
        ];
        for case in cases {
            assert!(matches!(parse(&case), Err(ConfigError::Invalid { .. })), "{case}");
        }
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let a = new_secret(Role::Public).unwrap();
        let b = new_secret(Role::Public).unwrap();
        assert!(a.starts_with("pk_") && a.len() == 3 + 64);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
    }
}
