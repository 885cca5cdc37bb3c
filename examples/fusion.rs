//! Calibrates semantic fusion on the labelled buyer queries: ranking quality
//! per semantic weight, and how the confidence separates answerable
//! questions from ones the knowledge base cannot answer.
//!
//! ```text
//! scripts/fetch-model
//! cargo run --release --example fusion -- [--kb kb] [--weights 0,0.5,0.7] [--dump FILE]
//! ```
//! Answerable sets: `tests/queries/kb-queries.jsonl` and
//! `tests/queries/buyer-messages.jsonl`; unanswerable:
//! `tests/queries/kb-unanswerable.jsonl`. `--dump` writes one JSON line per
//! query with the top hit's lexical and semantic evidence, for choosing
//! confidence thresholds.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use kefu::analysis::QueryOptions;
use kefu::index::{self, SearchIndex};
use kefu::model::{Confidence, Platform};
use kefu::search::{Ranking, SearchRequest};
use kefu::semantic::{default_model_dir, Encoder};
use serde::Deserialize;

#[derive(Deserialize)]
struct Labelled {
    query: String,
    #[serde(default)]
    gold: Vec<String>,
    product: Option<String>,
    platform: Option<Platform>,
}

fn read(path: &str) -> anyhow::Result<Vec<Labelled>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().filter(|l| !l.trim().is_empty()).map(serde_json::from_str).collect::<Result<_, _>>()?)
}

fn main() -> anyhow::Result<()> {
    let mut kb = PathBuf::from("kb");
    let mut weights = vec![0.0, 0.3, 0.5, 0.6, 0.7, 0.8];
    let mut dump = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--kb" => kb = PathBuf::from(args.next().unwrap_or_default()),
            "--weights" => {
                weights = args.next().unwrap_or_default().split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--dump" => dump = args.next(),
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let encoder = Arc::new(Encoder::load(&default_model_dir())?);
    let loaded = kefu::kb::load(&kb)?;
    let dir = tempfile::tempdir()?;
    let report = index::build_full(&loaded, dir.path(), &|_, _| {}, &QueryOptions::default(), Some(&*encoder))?;
    let index = SearchIndex::open_generation_with(dir.path(), &report.revision, Some(encoder))?;
    let mut answerable = read("tests/queries/kb-queries.jsonl")?;
    answerable.extend(read("tests/queries/buyer-messages.jsonl")?);
    let unanswerable = read("tests/queries/kb-unanswerable.jsonl")?;
    let mut out = dump.map(std::fs::File::create).transpose()?;
    println!(
        "weight  R@1    MRR@10  high(right)  high(wrong)  none(answerable)  high(unanswerable)  none(unanswerable)"
    );
    for weight in weights {
        let ranking = Ranking { semantic: weight, ..Ranking::default() };
        let (mut top1, mut rr, mut high_right, mut high_wrong, mut none_answerable) = (0, 0.0, 0, 0, 0);
        let search = |q: &Labelled| {
            let request = SearchRequest {
                limit: 10,
                product: q.product.as_deref(),
                platform: q.platform,
                ..SearchRequest::new(&q.query)
            };
            index.search_with(&request, &ranking)
        };
        for q in &answerable {
            let results = search(q)?;
            let rank = results.hits.iter().position(|h| q.gold.contains(&h.id));
            top1 += usize::from(rank == Some(0));
            rr += rank.map_or(0.0, |r| 1.0 / (r as f64 + 1.0));
            match results.confidence {
                Confidence::High if rank == Some(0) => high_right += 1,
                Confidence::High => high_wrong += 1,
                Confidence::None => none_answerable += 1,
                _ => {}
            }
            if let (Some(out), Some(e)) = (out.as_mut(), &results.evidence) {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"weight": weight, "answerable": true, "right": rank == Some(0),
                    "query": q.query, "coverage": e.query_coverage, "match": e.match_coverage, "margin": e.margin,
                    "semantic": e.semantic})
                )?;
            }
        }
        let (mut high_un, mut none_un) = (0, 0);
        for q in &unanswerable {
            let results = search(q)?;
            high_un += usize::from(results.confidence == Confidence::High);
            none_un += usize::from(results.confidence == Confidence::None);
            if let (Some(out), Some(e)) = (out.as_mut(), &results.evidence) {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"weight": weight, "answerable": false, "right": false,
                    "query": q.query, "coverage": e.query_coverage, "match": e.match_coverage, "margin": e.margin,
                    "semantic": e.semantic})
                )?;
            }
        }
        let n = answerable.len() as f64;
        println!(
            "{weight:<6}  {:.3}  {:.3}   {high_right:<11}  {high_wrong:<11}  {none_answerable:<16}  {high_un}/{:<16}  {none_un}/{}",
            top1 as f64 / n,
            rr / n,
            unanswerable.len(),
            unanswerable.len()
        );
    }
    Ok(())
}
