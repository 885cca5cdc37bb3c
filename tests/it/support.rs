//! Fixture knowledge bases copied into temp dirs, built and opened.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kefu::index::{self, SearchIndex};
use tempfile::TempDir;

/// A knowledge base and index in a temp dir, removed when dropped.
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    /// Copies `tests/fixtures/<name>` (or the repo's `kb/` for `"kb"`) into a temp dir.
    pub fn copy(name: &str) -> Fixture {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = if name == "kb" { root.join("kb") } else { root.join("tests/fixtures").join(name) };
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&source, &dir.path().join("kb"));
        Fixture { dir }
    }

    /// An empty knowledge base to write files into.
    pub fn empty() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("kb")).expect("kb dir");
        Fixture { dir }
    }

    pub fn kb(&self) -> PathBuf {
        self.dir.path().join("kb")
    }

    pub fn index(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    /// Writes a knowledge-base file (relative to `kb/`), creating folders.
    pub fn write(&self, rel: &str, text: &str) {
        let path = self.kb().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    /// Builds the index and opens it.
    pub fn build(&self) -> SearchIndex {
        let kb = kefu::kb::load(&self.kb()).unwrap_or_else(|e| panic!("{e}"));
        index::build(&kb, &self.index(), &|_, _| {}).expect("build");
        SearchIndex::open(&self.index()).expect("open")
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for item in std::fs::read_dir(from).expect("read fixture") {
        let item = item.expect("entry");
        let target = to.join(item.file_name());
        if item.path().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).expect("copy");
        }
    }
}

/// Ids of the hits of a search with default options.
pub fn top_ids(index: &SearchIndex, query: &str) -> Vec<String> {
    let results = index.search(&kefu::search::SearchRequest::new(query)).expect("search");
    results.hits.into_iter().map(|h| h.id).collect()
}

/// Percent-encodes a query-string value.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The HTTP API without a socket.
#[derive(Clone)]
pub struct Api {
    pub state: kefu::http::AppState,
}

impl Api {
    pub fn new(state: kefu::http::AppState) -> Api {
        Api { state }
    }

    /// Sends a request; returns the status, content type and body text.
    pub async fn send(
        &self,
        request: axum::http::Request<axum::body::Body>,
    ) -> (axum::http::StatusCode, String, String) {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let response = kefu::http::app(self.state.clone()).oneshot(request).await.expect("infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, content_type, String::from_utf8(bytes.to_vec()).expect("UTF-8 body"))
    }

    pub async fn get(&self, uri: &str) -> (axum::http::StatusCode, serde_json::Value) {
        let (status, _, body) = self.send(axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap()).await;
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{uri}: not JSON: {body}")))
    }

    pub async fn post(&self, uri: &str, json: &serde_json::Value) -> (axum::http::StatusCode, serde_json::Value) {
        let request = axum::http::Request::post(uri)
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(json.to_string()))
            .unwrap();
        let (status, _, body) = self.send(request).await;
        (status, serde_json::from_str(&body).unwrap_or_else(|_| panic!("{uri}: not JSON: {body}")))
    }
}

/// The `kefu` binary with a clean environment.
pub fn kefu() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .env_remove("KEFU_KB")
        .env_remove("KEFU_INDEX")
        .env_remove("KEFU_DATA")
        .env_remove("KEFU_ADDR")
        .env_remove("KEFU_CONFIG");
    command.env("KEFU_LOG", "info");
    // Lexical ranking unless a test asks for the encoder: fixtures' expected
    // answers are lexical, and loading the model costs every spawn 0.3 s.
    command.env("KEFU_NO_MODEL", "1").env_remove("KEFU_MODEL");
    command
}

/// A `kefu serve` child killed on drop.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A blocking HTTP/1.1 GET; returns status and body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

/// Starts `kefu serve` on an ephemeral port; returns it and its address.
pub fn serve(fixture: &Fixture) -> (Server, String) {
    serve_with(fixture, &[])
}

/// Starts `kefu serve` with extra arguments.
pub fn serve_with(fixture: &Fixture, extra: &[&str]) -> (Server, String) {
    serve_on(fixture, "127.0.0.1:0", extra)
}

/// Starts `kefu serve` on `addr` (a port known beforehand, for a config
/// that names the server's own origin).
pub fn serve_on(fixture: &Fixture, addr: &str, extra: &[&str]) -> (Server, String) {
    serve_command(kefu(), fixture, addr, extra)
}

/// Starts `command` (a [`kefu`] with its own environment) as `kefu serve`.
pub fn serve_command(mut command: Command, fixture: &Fixture, addr: &str, extra: &[&str]) -> (Server, String) {
    let mut child = command
        .args(["serve", "--addr", addr])
        .args(extra)
        .arg("--kb")
        .arg(fixture.kb())
        .arg("--index")
        .arg(fixture.index())
        .arg("--data")
        .arg(fixture.dir.path().join("data"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    // Wait for the log line that names the bound address (the port is ephemeral).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = BufReader::new(stderr).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("kefu serving")) {
            addr = Some(rest.split_whitespace().next().unwrap().to_string());
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, addr.expect("server exited before listening"))
}

/// `GET /v1/status` as JSON.
pub fn status(addr: &str) -> serde_json::Value {
    let (code, body) = http_get(addr, "/v1/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(body.trim()).unwrap()
}

/// A keep-alive HTTP/1.1 connection, for tests that send thousands of
/// requests (a new connection each would exhaust ephemeral ports).
pub struct Conn {
    reader: BufReader<TcpStream>,
    addr: String,
}

impl Conn {
    pub fn open(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        stream.set_nodelay(true)?;
        Ok(Conn { reader: BufReader::new(stream), addr: addr.to_string() })
    }

    pub fn get(&mut self, path: &str) -> std::io::Result<(u16, String)> {
        self.get_with(path, &[])
    }

    /// A GET with extra headers (`("authorization", "Bearer …")`).
    pub fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<(u16, String)> {
        let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n", self.addr);
        self.send(&request)
    }

    pub fn post_json(&mut self, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        self.send(&request)
    }

    /// Sends one request and reads one response (bodies with Content-Length).
    fn send(&mut self, request: &str) -> std::io::Result<(u16, String)> {
        let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        self.reader.get_mut().write_all(request.as_bytes())?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(bad("connection closed"));
        }
        let status: u16 = line.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| bad(&line))?;
        let mut length = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| bad(header))?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Resident memory of a process, in bytes (Linux).
pub fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
