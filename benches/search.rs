//! In-process search latency (criterion): short questions, long chatty
//! messages, questions the knowledge base cannot answer, and a filtered
//! search (product + platform + public, as the widget sends).
//!
//! ```text
//! cargo bench --bench search                         # the sample kb/
//! KEFU_BENCH_INDEX=/path/to/index cargo bench --bench search
//! ```
//! With `KEFU_BENCH_INDEX` the benchmark searches an existing index (for
//! example a 100k-entry one from `bench/run`); otherwise it indexes the
//! sample `kb/` into a temporary folder first. `bench/run` runs both and
//! puts the medians in README.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

// The allocator `kefu` itself runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use kefu::index::SearchIndex;
use kefu::model::Platform;
use kefu::search::SearchRequest;

const SHORT: &[&str] = &["能发顺丰吗", "七天无理由退货运费谁出", "天猫能开发票吗", "靴子偏大还是偏小", "怎么改地址"];
const LONG: &[&str] = &[
    "亲在吗，我昨天拍的那双靴子42码的今天能发顺丰不，急用，周末要穿的",
    "你好，朋友推荐来的，看中了一款大衣，想问下能不能花呗分期免息，还有运费险有没有",
    "在吗？拼多多店买的面霜用了过敏了，已经拆封了还能退吗，退的话运费谁出呢谢谢",
    "我是老顾客了，上次买的衣服洗了一次就缩水了，这次还想买但是担心质量，能保证吗",
];
const NO_HIT: &[&str] = &["哈尔滨有什么好玩的地方", "今天股票会涨吗", "帮我写一首关于秋天的诗"];

fn open() -> (Option<tempfile::TempDir>, SearchIndex) {
    if let Some(dir) = std::env::var_os("KEFU_BENCH_INDEX") {
        let index = SearchIndex::open(Path::new(&dir)).expect("KEFU_BENCH_INDEX is not a kefu index");
        return (None, index);
    }
    let kb_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kb");
    let kb = kefu::kb::load(&kb_dir).expect("sample kb/");
    let tmp = tempfile::tempdir().expect("temp dir");
    kefu::index::build(&kb, tmp.path(), &|_, _| {}).expect("build");
    let index = SearchIndex::open(tmp.path()).expect("open");
    (Some(tmp), index)
}

fn search(c: &mut Criterion) {
    let (_tmp, index) = open();
    let product = index.entries().iter().find_map(|e| e.products.first().cloned()).unwrap_or_default();
    let mut group = c.benchmark_group(format!("search/{}-entries", index.entries().len()));
    group.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    for (name, queries) in [("short", SHORT), ("long", LONG), ("no-hit", NO_HIT)] {
        // Warm the per-term bounds, as a running server has.
        for q in queries {
            index.search(&SearchRequest::new(q)).expect("search");
        }
        let mut i = 0;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                index.search(&SearchRequest::new(queries[i])).expect("search")
            })
        });
    }
    let mut i = 0;
    group.bench_function(BenchmarkId::from_parameter("filtered"), |b| {
        b.iter(|| {
            i = (i + 1) % SHORT.len();
            let request = SearchRequest {
                product: Some(product.as_str()),
                platform: Some(Platform::Tmall),
                public_only: true,
                ..SearchRequest::new(SHORT[i])
            };
            index.search(&request).expect("search")
        })
    });
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
