//! The `kefu` binary end to end: index, search and serve as a user runs them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Fixture;

fn kefu() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command.env_remove("KEFU_KB").env_remove("KEFU_INDEX").env_remove("KEFU_DATA").env_remove("KEFU_ADDR");
    command.env("KEFU_LOG", "info");
    command
}

#[test]
fn index_command_reports_errors_with_file_and_line() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "---\ntitle: 天猫\nplatforms: [tmal]\n---\n## 问 {#q}\n答\n");
    let out = kefu().arg("index").arg("--kb").arg(fixture.kb()).arg("--index").arg(fixture.index()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules/tmall.md:3: "), "{stderr}");
    assert!(!fixture.index().join("CURRENT").exists(), "a failed build must not leave an index");
}

#[test]
fn search_command_builds_the_index_and_prints_json() {
    let fixture = Fixture::copy("shop");
    let out = kefu()
        .args(["search", "天貓能開發票嗎", "--json", "--platform", "tmall", "--kb"])
        .arg(fixture.kb())
        .arg("--index")
        .arg(fixture.index())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["hits"][0]["id"], "tmall-invoice");
}

#[test]
fn serve_refuses_a_public_address_without_keys() {
    let fixture = Fixture::copy("shop");
    let out = kefu()
        .args(["serve", "--addr", "0.0.0.0:0", "--kb"])
        .arg(fixture.kb())
        .arg("--index")
        .arg(fixture.index())
        .arg("--data")
        .arg(fixture.dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// A `kefu serve` child killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
    (status, body)
}

#[test]
fn serve_builds_a_missing_index_and_answers_over_http() {
    let fixture = Fixture::copy("shop");
    let mut child = kefu()
        .args(["serve", "--addr", "127.0.0.1:0", "--kb"])
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
    let mut addr = None;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("kefu serving")) {
            addr = Some(rest.split_whitespace().next().unwrap().to_string());
            break;
        }
        assert!(Instant::now() < deadline, "server did not start");
    }
    let addr = addr.expect("server exited before listening");
    let (status, body) = http_get(&addr, "/v1/search?q=%E8%83%BD%E5%8F%91%E9%A1%BA%E4%B8%B0%E5%90%97");
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["hits"][0]["id"], "ship-sf");
    assert!(fixture.index().join("CURRENT").exists());
    drop(server);
}
