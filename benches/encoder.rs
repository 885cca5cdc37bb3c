//! Sentence-encoder speed (criterion): one short query (~8 characters), one
//! long chatty message (~80 characters), and batch throughput as used when
//! indexing every phrasing of the knowledge base.
//!
//! ```text
//! scripts/fetch-model                          # once
//! taskset -c 0 cargo bench --bench encoder     # one core, as reported
//! ```
//! Without the model (see `kefu::semantic::default_model_dir`) the benchmark
//! prints a note and measures nothing.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kefu::semantic::{default_model_dir, Encoder};

// The allocator `kefu` itself runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SHORT: &str = "七天无理由退货吗";
const LONG: &str = "你好，我上周五买的那件外套到现在还没发货，客服一直说在催，到底什么时候能发啊？我周末要穿的，如果明天还不发的话我就只能申请退款了，运费险还能用吗";
/// Phrasings of the kind the index holds: short questions and a few long ones.
const PHRASINGS: &[&str] = &[
    "能发顺丰吗",
    "七天无理由退货运费谁出",
    "天猫能开发票吗",
    "靴子偏大还是偏小",
    "怎么改地址",
    "退款多久到账",
    "有运费险吗",
    "身高165体重55kg穿什么码",
    "可以开增值税专用发票吗",
    "预售的商品大概多久发货",
    "快递显示已签收但是我没收到",
    "请问什么时候发货？",
    "Do you ship to Hong Kong?",
    "吊牌剪了还能退吗",
    "收到的衣服有股很大的味道，是甲醛吗，正常吗？晾几天能散掉吗，小孩子能不能穿",
    "我下单的时候忘了用优惠券，现在能不能退差价，或者我取消重新拍也行，但是怕没库存了",
];

fn encoder(c: &mut Criterion) {
    let dir = default_model_dir();
    let encoder = match Encoder::load(&dir) {
        Ok(encoder) => encoder,
        Err(e) => {
            eprintln!("skipping encoder benchmarks: {e}");
            return;
        }
    };
    eprintln!("short: {} tokens, long: {} tokens", encoder.token_ids(SHORT).len(), encoder.token_ids(LONG).len());

    let mut group = c.benchmark_group("encode");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("short", |b| b.iter(|| encoder.encode(std::hint::black_box(SHORT))));
    group.bench_function("long", |b| b.iter(|| encoder.encode(std::hint::black_box(LONG))));
    group.finish();

    let texts: Vec<&str> = PHRASINGS.iter().copied().cycle().take(512).collect();
    let mut group = c.benchmark_group("encode_batch");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(texts.len() as u64));
    group.bench_function("512 phrasings", |b| b.iter(|| encoder.encode_batch(std::hint::black_box(&texts))));
    group.finish();
}

criterion_group!(benches, encoder);
criterion_main!(benches);
