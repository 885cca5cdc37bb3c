//! How often the budgeted search (the default on large knowledge bases,
//! see `Ranking::candidate_postings`) returns what an exhaustive search
//! returns, and how much faster it is.
//!
//! ```text
//! cargo run --release --example agreement -- INDEX_DIR QUERIES.txt [N]
//! ```
//! QUERIES.txt holds one raw query per line (`examples/synth_kb --queries`
//! writes one). Prints top-1 agreement, the share of the exhaustive top 10
//! that the budgeted search also returns, and the mean time of each.
//! `BUDGET=N` tries another candidate budget.

use std::time::{Duration, Instant};

use kefu::index::SearchIndex;
use kefu::search::{Ranking, SearchRequest};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, queries, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: agreement INDEX_DIR QUERIES.txt [N]");
    };
    let n: usize = rest.first().map_or(Ok(2000), |v| v.parse())?;
    let index = SearchIndex::open(std::path::Path::new(index))?;
    let text = std::fs::read_to_string(queries)?;
    let exact = Ranking { candidate_postings: usize::MAX, ..Ranking::default() };
    let budget =
        std::env::var("BUDGET").ok().and_then(|v| v.parse().ok()).unwrap_or(Ranking::default().candidate_postings);
    let budgeted = Ranking { exhaustive_below: 0, candidate_postings: budget, ..Ranking::default() };
    let (mut same_top, mut with_hits, mut shared, mut wanted) = (0usize, 0usize, 0usize, 0usize);
    let (mut t_exact, mut t_budget) = (Duration::ZERO, Duration::ZERO);
    for line in text.lines().filter(|l| !l.trim().is_empty()).take(n) {
        let request = SearchRequest::new(line);
        let started = Instant::now();
        let a = index.search_with(&request, &exact)?;
        t_exact += started.elapsed();
        let started = Instant::now();
        let b = index.search_with(&request, &budgeted)?;
        t_budget += started.elapsed();
        let Some(first) = a.hits.first() else { continue };
        with_hits += 1;
        same_top += usize::from(b.hits.first().is_some_and(|h| h.id == first.id));
        wanted += a.hits.len();
        shared += a.hits.iter().filter(|h| b.hits.iter().any(|g| g.id == h.id)).count();
    }
    let runs = text.lines().filter(|l| !l.trim().is_empty()).take(n).count().max(1) as u32;
    println!(
        "{with_hits} queries with hits: top-1 agreement {:.2}%, top-10 overlap {:.2}%; mean {:.3} ms exhaustive, {:.3} ms budgeted",
        100.0 * same_top as f64 / with_hits.max(1) as f64,
        100.0 * shared as f64 / wanted.max(1) as f64,
        (t_exact / runs).as_secs_f64() * 1e3,
        (t_budget / runs).as_secs_f64() * 1e3,
    );
    Ok(())
}
