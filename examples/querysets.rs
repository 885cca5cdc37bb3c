//! Ranking quality per case on labelled query sets, with query-understanding
//! techniques switched on and off, to measure what each one gains.
//!
//! ```text
//! cargo run --release --example querysets -- [--kb kb] [--disable pinyin,typos] [--each] SET.jsonl...
//! ```
//! Each line of a set is `{"qid", "query", "gold": [ids], "case", ["product"], ["platform"]}`.
//! Prints Recall@1 and MRR@10 per case and overall. `--each` runs the set
//! with every technique on, with each one off in turn, and with all off;
//! `--misses` lists the queries whose gold entry is not first.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kefu::analysis::QueryOptions;
use kefu::index::{self, SearchIndex};
use kefu::model::Platform;
use kefu::search::SearchRequest;
use serde::Deserialize;

#[derive(Deserialize)]
struct Labelled {
    query: String,
    gold: Vec<String>,
    #[serde(default)]
    case: String,
    product: Option<String>,
    platform: Option<Platform>,
}

#[derive(Default)]
struct Tally {
    n: usize,
    top1: usize,
    rr: f64,
}

fn main() -> anyhow::Result<()> {
    let mut kb = PathBuf::from("kb");
    let mut disable = String::new();
    let mut each = false;
    let mut misses = false;
    let mut sets = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kb" => kb = args.next().map(PathBuf::from).ok_or_else(|| anyhow::anyhow!("--kb needs a folder"))?,
            "--disable" => disable = args.next().unwrap_or_default(),
            "--each" => each = true,
            "--misses" => misses = true,
            _ => sets.push(PathBuf::from(arg)),
        }
    }
    anyhow::ensure!(!sets.is_empty(), "usage: querysets [--kb kb] [--disable list] [--each] SET.jsonl...");
    let mut queries = Vec::new();
    for set in &sets {
        for line in std::fs::read_to_string(set)?.lines().filter(|l| !l.trim().is_empty()) {
            queries.push(serde_json::from_str::<Labelled>(line)?);
        }
    }
    let loaded = kefu::kb::load(&kb)?;
    let runs: Vec<(String, QueryOptions)> = if each {
        ["", "clauses", "pinyin", "typos", "mixed_script", "domain_vocab", "all"]
            .iter()
            .map(|d| {
                Ok((if d.is_empty() { "all on".to_string() } else { format!("-{d}") }, QueryOptions::disabling(d)?))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        vec![(format!("-{disable}"), QueryOptions::disabling(&disable)?)]
    };
    for (name, options) in runs {
        let dir = tempfile::tempdir()?;
        let report = index::build_with(&loaded, dir.path(), &|_, _| {}, &options)?;
        let index = SearchIndex::open_generation(dir.path(), &report.revision)?;
        let mut by_case: BTreeMap<String, Tally> = BTreeMap::new();
        for q in &queries {
            let request =
                SearchRequest { product: q.product.as_deref(), platform: q.platform, ..SearchRequest::new(&q.query) };
            let results = index.search(&request)?;
            let rank = results.hits.iter().position(|h| q.gold.contains(&h.id));
            if misses && rank != Some(0) {
                let top = results.hits.first().map_or("-", |h| h.id.as_str());
                println!("miss [{}] {} → {top} (want {:?}, rank {rank:?})", q.case, q.query, q.gold);
            }
            for key in [q.case.clone(), "all".to_string()] {
                let t = by_case.entry(key).or_default();
                t.n += 1;
                t.top1 += usize::from(rank == Some(0));
                t.rr += rank.map_or(0.0, |r| 1.0 / (r + 1) as f64);
            }
        }
        println!("## {name}");
        println!("| case | n | R@1 | MRR@10 |");
        println!("|---|---|---|---|");
        for (case, t) in &by_case {
            println!("| {case} | {} | {:.3} | {:.3} |", t.n, t.top1 as f64 / t.n as f64, t.rr / t.n as f64);
        }
        println!();
    }
    Ok(())
}
