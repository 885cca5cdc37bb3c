//! The `kefu` binary end to end: index, search and serve as a user runs them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{encode, http_get, kefu, serve, serve_with, status, Conn, Fixture};

#[test]
fn index_command_reports_errors_with_file_and_line() {
    let fixture = Fixture::empty();
    fixture.write("rules/tmall.md", "---\ntitle: 天猫\nplatforms: [tmal]\n---\n## 问 {#q}\n答\n");
    let out = kefu().arg("index").arg("--kb").arg(fixture.kb()).arg("--index").arg(fixture.index()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rules/tmall.md:3:13: error: unknown platform `tmal`"), "{stderr}");
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
        .arg("--data")
        .arg(fixture.dir.path().join("data"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["hits"][0]["id"], "tmall-invoice");
}

#[test]
fn terminal_searches_are_logged_and_gaps_reported_in_every_format() {
    let fixture = Fixture::copy("shop");
    let data = fixture.dir.path().join("data");
    for query in ["台灯能刻字吗", "台灯上可以刻字吗", "能发顺丰吗"] {
        let out = kefu()
            .args(["search", query, "--kb"])
            .arg(fixture.kb())
            .arg("--index")
            .arg(fixture.index())
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let gaps = |format: &str| {
        let out = kefu()
            .args(["gaps", "--format", format, "--kb"])
            .arg(fixture.kb())
            .arg("--index")
            .arg(fixture.index())
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let report: serde_json::Value = serde_json::from_str(&gaps("json")).unwrap();
    assert_eq!(report["totals"]["searches"], 3);
    let gap = &report["gaps"][0];
    assert_eq!(gap["count"], 2, "{report}");
    assert_eq!(gap["sources"], serde_json::json!(["cli"]));
    assert!(gaps("table").contains("台灯"));
    assert!(gaps("csv").lines().nth(1).is_some_and(|row| row.contains("台灯")));
    assert!(gaps("md").starts_with("# FAQ gaps"));

    let out = kefu().args(["gaps", "--data"]).arg(fixture.dir.path().join("nothing")).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no query log"), "{}", String::from_utf8_lossy(&out.stderr));
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

#[test]
fn issued_keys_open_the_server_and_nothing_else_does() {
    let fixture = Fixture::copy("shop");
    let issue = |role: &str, extra: &[&str]| {
        let out = kefu().args(["keys", "new", "--name", role, "--role", role]).args(extra).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let stderr = String::from_utf8(out.stderr).unwrap();
        let block = stderr[stderr.find("[[keys]]").expect("a [[keys]] block")..].to_string();
        assert!(!block.contains(&secret), "only the hash goes in the file");
        (secret, block)
    };
    let (public, public_block) = issue("public", &["--origin", "https://shop.example.com"]);
    let (admin, admin_block) = issue("admin", &[]);
    assert!(public.starts_with("pk_") && admin.starts_with("sk_"));
    let config = fixture.dir.path().join("kefu.toml");
    std::fs::write(&config, format!("{public_block}\n{admin_block}")).unwrap();
    let (_server, addr) = serve_with(&fixture, &["--config", config.to_str().unwrap()]);
    let search = format!("/v1/search?q={}", encode("能发顺丰吗"));
    assert_eq!(http_get(&addr, &search).0, 401);
    assert_eq!(http_get(&addr, &format!("{search}&key={public}")).0, 200);
    assert_eq!(http_get(&addr, &format!("/v1/status?key={public}")).0, 403);
    assert_eq!(http_get(&addr, "/healthz").0, 200);
    let mut conn = Conn::open(&addr).unwrap();
    let bearer = format!("Bearer {admin}");
    let (status, body) = conn.get_with("/v1/status", &[("authorization", &bearer)]).unwrap();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_broken_config_file_is_reported_with_its_line() {
    let fixture = Fixture::copy("shop");
    let config = fixture.dir.path().join("kefu.toml");
    std::fs::write(&config, "[[keys]]\nname = \"w\"\nrole = \"superuser\"\n").unwrap();
    let out = kefu()
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--kb")
        .arg(fixture.kb())
        .arg("--index")
        .arg(fixture.index())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:3:", config.display())), "{stderr}");
    let out =
        kefu().args(["keys", "new", "--name", "a", "--role", "agent", "--origin", "https://x.cn"]).output().unwrap();
    assert!(!out.status.success(), "agent keys never get origins");
}

/// Waits until the server's log has written everything it accepted.
fn wait_written(addr: &str, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = &status(addr)["query_log"];
        if log["written"].as_u64() == Some(expected) && log["queued"] == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "log never caught up: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn search_path(i: usize) -> String {
    format!("/v1/search?q=%E9%9D%B4%E5%AD%90%E8%83%BD%E5%88%BB%E5%AD%97%E5%90%97{i}&source=widget")
}

#[test]
fn a_killed_server_loses_nothing_it_flushed_and_never_corrupts_the_log() {
    let fixture = Fixture::copy("shop");
    let (mut server, addr) = serve(&fixture);
    for i in 0..50 {
        assert_eq!(http_get(&addr, &search_path(i)).0, 200);
    }
    // The writer commits within its flush interval without being asked.
    wait_written(&addr, 50);
    // Now kill -9 while searches keep arriving from another thread.
    let busy = addr.clone();
    let load = std::thread::spawn(move || {
        let mut sent = 0;
        for i in 50..10_000 {
            let Ok(mut stream) = TcpStream::connect(&busy) else { break };
            let request = format!("GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", search_path(i));
            if stream.write_all(request.as_bytes()).is_err() {
                break;
            }
            let mut response = String::new();
            if stream.read_to_string(&mut response).is_err() || response.is_empty() {
                break;
            }
            sent += 1;
        }
        sent
    });
    while status(&addr)["query_log"]["written"].as_u64().unwrap_or(0) < 100 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    let answered = load.join().unwrap();
    let store = kefu::querylog::Store::open_existing(&fixture.dir.path().join("data")).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let logged = store.count_searches().unwrap();
    assert!(logged >= 100, "flushed searches survive: {logged}");
    assert!(logged <= 50 + answered as u64 + 1, "{logged} logged, {answered} answered");
}

#[cfg(unix)]
#[test]
fn sigterm_drains_the_log_before_exiting() {
    let fixture = Fixture::copy("shop");
    let (mut server, addr) = serve(&fixture);
    for i in 0..30 {
        assert_eq!(http_get(&addr, &search_path(i)).0, 200);
    }
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let store = kefu::querylog::Store::open_existing(&fixture.dir.path().join("data")).unwrap();
    assert_eq!(store.count_searches().unwrap(), 30);
}

/// A request that is half sent when SIGTERM arrives is still answered and
/// logged; the server stops taking new connections and exits cleanly.
#[cfg(unix)]
#[test]
fn sigterm_finishes_the_request_in_flight() {
    let fixture = Fixture::copy("shop");
    let (mut server, addr) = serve(&fixture);
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {} HTTP/1.1\r\nHost: {addr}\r\n", search_path(1)).unwrap();
    stream.flush().unwrap();
    // The server has read part of the request: it is in flight.
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(200));
    write!(stream, "Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(TcpStream::connect(&addr).is_err(), "no new connections after shutdown");
    let store = kefu::querylog::Store::open_existing(&fixture.dir.path().join("data")).unwrap();
    assert_eq!(store.count_searches().unwrap(), 1);
}

#[test]
fn serve_builds_a_missing_index_and_answers_over_http() {
    let fixture = Fixture::copy("shop");
    let (server, addr) = serve(&fixture);
    let (status, body) = http_get(&addr, "/v1/search?q=%E8%83%BD%E5%8F%91%E9%A1%BA%E4%B8%B0%E5%90%97");
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["hits"][0]["id"], "ship-sf");
    assert!(fixture.index().join("CURRENT").exists());
    drop(server);
}

/// A damaged generation that is otherwise up to date with kb/ (here a
/// truncated forward index) is rebuilt at start-up instead of stopping the
/// server: kb/ is the source of truth.
#[test]
fn serve_rebuilds_a_damaged_index_instead_of_refusing_to_start() {
    let fixture = Fixture::copy("shop");
    fixture.build();
    let current = std::fs::read_to_string(fixture.index().join("CURRENT")).unwrap();
    let forward = fixture.index().join(current.trim()).join("forward.bin");
    let bytes = std::fs::read(&forward).unwrap();
    std::fs::write(&forward, &bytes[..bytes.len() / 2]).unwrap();
    let (server, addr) = serve(&fixture);
    let (status, body) = http_get(&addr, "/v1/search?q=%E8%83%BD%E5%8F%91%E9%A1%BA%E4%B8%B0%E5%90%97");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ship-sf"), "{body}");
    let rebuilt = std::fs::read_to_string(fixture.index().join("CURRENT")).unwrap();
    assert_ne!(rebuilt.trim(), current.trim(), "a new generation was built");
    drop(server);
}
