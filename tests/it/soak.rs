//! Robustness under load: mixed traffic against a real `kefu serve` on the
//! sample knowledge base for a bounded time, while copywriters' edits are
//! reloaded, then a SIGTERM. `KEFU_SOAK_SECS` sets the duration (default 60;
//! `bench/run --soak` runs it for five minutes against a release build).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{encode, resident_bytes, serve, status, Conn, Fixture};

/// What the load threads saw.
#[derive(Default)]
struct Tally {
    searches: AtomicU64,
    feedback: AtomicU64,
    other: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, what: String) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 20 {
            errors.push(what);
        }
    }
}

fn golden_queries(fixture: &Fixture) -> Vec<String> {
    let text = std::fs::read_to_string(fixture.kb().join("golden.jsonl")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["query"].as_str().map(encode))
        .collect()
}

/// Requests per second each client aims at: a busy shop's peak on the
/// debug build, with room left for the reloads that run alongside.
const CLIENT_RATE: u32 = 100;

/// One client: searches with assorted filters, feedback on what it found,
/// entry lookups, status and metrics scrapes, on one keep-alive connection,
/// paced at [`CLIENT_RATE`].
fn client(addr: String, queries: Arc<Vec<String>>, seed: usize, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut conn = Conn::open(&addr).unwrap();
    let filters =
        ["", "&platform=tmall", "&product=SKU-1001", "&audience=public&source=widget", "&platform=pdd&source=agent"];
    let mut last: Option<(String, String)> = None;
    let mut i = seed;
    let started = Instant::now();
    let mut sent: u32 = 0;
    while !stop.load(Ordering::Relaxed) {
        // Pacing, not synchronisation: a client that falls behind catches up.
        let due = started + Duration::from_secs(1) * sent / CLIENT_RATE;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sent += 1;
        i = i.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let pick = i >> 33;
        let (path, body) = match pick % 10 {
            0..=6 => {
                let q = &queries[pick % queries.len()];
                (format!("/v1/search?q={q}{}", filters[pick % filters.len()]), None)
            }
            7 => match &last {
                Some((query_id, entry_id)) => (
                    "/v1/feedback".to_string(),
                    Some(format!(
                        r#"{{"query_id":"{query_id}","entry_id":"{entry_id}","helpful":{}}}"#,
                        pick.is_multiple_of(2)
                    )),
                ),
                None => continue,
            },
            8 => match &last {
                Some((_, entry_id)) => (format!("/v1/entries/{entry_id}"), None),
                None => continue,
            },
            _ => (if pick.is_multiple_of(2) { "/metrics" } else { "/v1/status" }.to_string(), None),
        };
        let answer = match &body {
            Some(json) => conn.post_json(&path, json),
            None => conn.get(&path),
        };
        match answer {
            Ok((200, text)) if path.starts_with("/v1/search") => {
                tally.searches.fetch_add(1, Ordering::Relaxed);
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if let (Some(q), Some(e)) = (v["query_id"].as_str(), v["hits"][0]["id"].as_str()) {
                    last = Some((q.to_string(), e.to_string()));
                }
            }
            Ok((202, _)) if path == "/v1/feedback" => {
                tally.feedback.fetch_add(1, Ordering::Relaxed);
            }
            Ok((200, _)) => {
                tally.other.fetch_add(1, Ordering::Relaxed);
            }
            Ok((code, text)) => tally.error(format!("{path}: {code} {text}")),
            Err(err) => {
                tally.error(format!("{path}: {err}"));
                match Conn::open(&addr) {
                    Ok(fresh) => conn = fresh,
                    Err(_) => return,
                }
            }
        }
    }
}

/// A knowledge-base file the "copywriter" rewrites during the run.
fn soak_file(round: usize) -> String {
    let mut text = String::from("---\ntitle: 压测临时条目\naudience: public\n---\n# 压测临时条目\n\n");
    for n in 0..=round {
        text.push_str(&format!("## 第{n}批赠品什么时候发？ {{#soak-gift-{n}}}\n相似问：第{n}批赠品几号寄出\n\n第{n}批赠品随订单一起发出。\n\n"));
    }
    text
}

fn reloads(addr: &str) -> u64 {
    status(addr)["reload"]["reloads"].as_u64().unwrap_or(0)
}

#[test]
fn mixed_load_with_reloads_has_no_errors_flat_memory_and_loses_no_log_event() {
    let seconds: u64 = std::env::var("KEFU_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let fixture = Fixture::copy("kb");
    let (mut server, addr) = serve(&fixture);
    let pid = server.0.id();
    let queries = Arc::new(golden_queries(&fixture));
    assert!(queries.len() > 100);
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..4)
        .map(|seed| {
            let (addr, queries, stop, tally) = (addr.clone(), queries.clone(), stop.clone(), tally.clone());
            std::thread::spawn(move || client(addr, queries, seed + 1, stop, tally))
        })
        .collect();

    // The copywriter: up to five edits, one every sixth of the run, each
    // picked up by the watcher; a last one is reloaded through the admin API.
    let started = Instant::now();
    let run = Duration::from_secs(seconds);
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push((started.elapsed(), resident_bytes(pid)));
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };
    // The copywriter. The timeline keeps the memory check clean: one edit
    // at the start (a reload warms the allocator up to its working size),
    // steady load from a quarter to 85% of the run (memory is judged there),
    // then edits back to back under load, and a last one through the API.
    let edits = 5;
    let before = reloads(&addr);
    let mut round = 0;
    let edit = |round: &mut usize| {
        fixture.write("faq/soak.md", &soak_file(*round));
        *round += 1;
        let deadline = Instant::now() + Duration::from_secs(120);
        while reloads(&addr) < before + *round as u64 {
            assert!(Instant::now() < deadline, "edit {round} was not reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    edit(&mut round);
    let steady = (run / 4, run * 85 / 100);
    while started.elapsed() < steady.1 {
        std::thread::sleep(Duration::from_millis(100));
    }
    while round < edits {
        edit(&mut round);
    }
    while started.elapsed() < run {
        std::thread::sleep(Duration::from_millis(100));
    }
    fixture.write("faq/soak.md", &soak_file(edits));
    let mut admin = Conn::open(&addr).unwrap();
    let (code, body) = admin.post_json("/v1/admin/reload", "{}").unwrap();
    assert!(code == 200, "{code} {body}");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let memory = sampler.join().unwrap();

    let errors = tally.errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "error responses under load: {errors:#?}");
    let searches = tally.searches.load(Ordering::Relaxed);
    let feedback = tally.feedback.load(Ordering::Relaxed);
    assert!(searches > 100 && feedback > 5, "{searches} searches, {feedback} feedback");
    let state = status(&addr);
    assert!(state["reload"]["reloads"].as_u64().unwrap() >= before + round as u64, "{state}");
    assert_eq!(state["reload"]["failures"], 0, "{state}");
    assert_eq!(state["query_log"]["dropped"], 0, "{state}");
    // The edits are served: the last batch's question finds its entry.
    let (_, answer) = admin.get(&format!("/v1/search?q={}", encode("第5批赠品什么时候发"))).unwrap();
    assert!(answer.contains("soak-gift-5"), "{answer}");

    // Memory under steady load stays flat: the last third of the steady
    // window is no higher than its first third (a leak of a few hundred
    // bytes per request would show over tens of thousands of requests).
    let settled: Vec<u64> = memory.iter().filter(|(t, _)| *t >= steady.0 && *t < steady.1).map(|&(_, m)| m).collect();
    assert!(settled.len() >= 6, "too few memory samples: {}", settled.len());
    let third = settled.len() / 3;
    let early = settled[..third].iter().copied().max().unwrap();
    let late = settled[settled.len() - third..].iter().copied().max().unwrap();
    assert!(late <= early + early / 10 + (8 << 20), "resident memory grew from {early} to {late} bytes");

    // SIGTERM: in-flight work finishes, the log is drained, exit 0.
    let pid = pid.to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let store = kefu::querylog::Store::open_existing(&fixture.dir.path().join("data")).unwrap();
    // Every answered search and accepted feedback is in the log (the last
    // search above, by the admin connection, too).
    assert_eq!(store.count_searches().unwrap(), searches + 1);
    assert_eq!(store.count_feedback().unwrap(), feedback);
    println!(
        "soak {seconds} s: {searches} searches, {feedback} feedback, {} other, {} reloads; memory {early} → {late} bytes",
        tally.other.load(Ordering::Relaxed),
        state["reload"]["reloads"]
    );
}
