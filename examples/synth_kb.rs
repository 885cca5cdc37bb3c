//! Deterministic generator of large, realistic synthetic knowledge bases and
//! query streams, for reload timings and benchmarks (1k, 10k, 100k entries).
//!
//! The sample `kb/` has 128 entries, far too few to measure how index builds,
//! reloads and searches scale. This example recombines the sample's own text
//! (its questions, 相似问 and answers, with the product nouns, sizes, colours,
//! materials, platforms and sales events swapped) into a knowledge base of any
//! size that the analysis sees as realistic Chinese, not random characters:
//!
//! - `products/`: one file per synthetic SKU (`SKU-10001`, …) with 20–50
//!   entries: the sample's product questions for that kind of product, plus
//!   stock, colour, size, exchange and internal (底价, 断码话术) questions;
//! - `rules/`: platform rules (`platforms:` in the front matter) per topic and
//!   sales event (双十一, 618, 年货节, …);
//! - `faq/`: shop-wide FAQ files (logistics, payment, after-sale, 回访) and
//!   internal agent guides;
//! - `dict.txt` and `synonyms.txt`, copied from the sample.
//!
//! About 10% of the entries are internal and every entry has an explicit
//! unique `{#id}` and 2–6 相似问. No phrasing (标准问 or 相似问) is shared
//! by two entries whose scopes overlap, which kefu's checker rejects: rules
//! and FAQ phrasings are unique across the whole knowledge base, product
//! phrasings unique within their product and distinct from shop-wide ones
//! (the same product question under two SKUs is fine). Near-duplicates are
//! deliberate and plentiful, as in a real shop: 「618期间买的面霜，退款多久
//! 到账？」 and 「寄到成都的面霜，退款多久到账？」 are different entries.
//! Before exiting, the generator loads the result with `kefu::kb::load`,
//! re-checks the shared-phrasing rule and prints counts and timings.
//!
//! The same seed and sample knowledge base always give the same files, byte
//! for byte (the text is drawn from the sample, so editing `kb/` changes it).
//!
//! ```text
//! cargo run --release --example synth_kb -- --entries 10000 --out /tmp/kb-10k \
//!     [--seed 1] [--from kb] [--force] [--queries /tmp/q-10k --query-count 20000]
//! target/release/kefu index --kb /tmp/kb-10k --index /tmp/kb-10k-index
//! ```
//!
//! `--queries FILE` also writes a buyer query stream drawn from the generated
//! phrasings: about 60% short queries (one phrasing, sometimes with 亲/在吗 or
//! a trailing 呢/啊), 25% long chatty messages of 2–3 clauses, and 15% no-hit
//! queries about unrelated topics. `FILE` holds one URL-encoded query per line
//! (UTF-8 percent-encoded, for `bench/wrk.lua`, which appends it to
//! `/v1/search?q=`); `FILE.txt` holds the same queries as raw UTF-8. The
//! lines are bare queries: no `&product=` or `&platform=` filters are added.
//!
//! `--force` lets the generator replace the `products/`, `rules/`, `faq/`,
//! `dict.txt` and `synonyms.txt` of an existing output folder; other files
//! there are left alone.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use kefu::kb::{KnowledgeBase, DICT_FILE, SYNONYMS_FILE};
use kefu::model::{Audience, Entry, Kind, Platform};

const USAGE: &str = "\
usage: synth_kb --entries N --out DIR [--seed S] [--from SAMPLE_KB] [--force]
                [--queries FILE [--query-count M]]

  --entries N       number of entries to generate (every `#` intro and `##` heading is one)
  --out DIR         output knowledge base (must not hold one already unless --force)
  --seed S          PRNG seed (default 1); same seed and sample, same files
  --from DIR        sample knowledge base to take the vocabulary from (default kb)
  --force           replace products/, rules/, faq/, dict.txt, synonyms.txt in DIR
  --queries FILE    also write a query stream: FILE URL-encoded, FILE.txt raw UTF-8
  --query-count M   number of queries (default 10000)";

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("synth_kb: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("synth_kb: {message}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Command line

struct Args {
    entries: usize,
    out: PathBuf,
    seed: u64,
    from: PathBuf,
    force: bool,
    queries: Option<PathBuf>,
    query_count: usize,
}

impl Args {
    /// `Ok(None)` means `--help`.
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut entries = None;
        let mut out = None;
        let mut seed = 1;
        let mut from = PathBuf::from("kb");
        let mut force = false;
        let mut queries = None;
        let mut query_count = None;
        while let Some(flag) = argv.next() {
            let mut value = |name: &str| argv.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "-h" | "--help" => return Ok(None),
                "--entries" => entries = Some(parse_number(&value("--entries")?, "--entries")?),
                "--out" => out = Some(PathBuf::from(value("--out")?)),
                "--seed" => seed = parse_number(&value("--seed")?, "--seed")?,
                "--from" => from = PathBuf::from(value("--from")?),
                "--force" => force = true,
                "--queries" => queries = Some(PathBuf::from(value("--queries")?)),
                "--query-count" => query_count = Some(parse_number(&value("--query-count")?, "--query-count")?),
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        let entries: usize = entries.ok_or("--entries is required")?;
        if entries == 0 {
            return Err("--entries must be at least 1".into());
        }
        if query_count.is_some() && queries.is_none() {
            return Err("--query-count needs --queries FILE".into());
        }
        Ok(Some(Args {
            entries,
            out: out.ok_or("--out is required")?,
            seed,
            from,
            force,
            queries,
            query_count: query_count.unwrap_or(10_000),
        }))
    }
}

fn parse_number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.trim().replace('_', "").parse().map_err(|_| format!("{flag}: `{text}` is not a whole number"))
}

fn run(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let sample_kb =
        kefu::kb::load(&args.from).map_err(|e| format!("cannot load the sample {}: {e}", args.from.display()))?;
    let sample = Sample::new(&sample_kb)?;
    prepare_out(&args.out, args.force)?;
    let mut generator = Generator::new(&sample, &args.out, args.seed);
    generator.generate(args.entries)?;
    for name in [DICT_FILE, SYNONYMS_FILE] {
        let from = args.from.join(name);
        if from.is_file() {
            let bytes = std::fs::copy(&from, args.out.join(name)).map_err(|e| format!("{}: {e}", from.display()))?;
            generator.stats.bytes += bytes as usize;
            generator.stats.files[3] += 1;
        }
    }
    let generated = started.elapsed();
    let s = &generator.stats;
    println!(
        "generated {} entries ({} internal, {:.1}%; {} phrasings) in {} files \
         (products {}, rules {}, faq {}, dict/synonyms {}), {:.1} MB, in {:.2} s",
        s.entries,
        s.internal,
        100.0 * s.internal as f64 / s.entries.max(1) as f64,
        s.phrasings,
        s.files.iter().sum::<usize>(),
        s.files[0],
        s.files[1],
        s.files[2],
        s.files[3],
        s.bytes as f64 / 1e6,
        generated.as_secs_f64()
    );
    if s.fallbacks.iter().any(|&n| n > 0) {
        let [product, shopwide, title] = s.fallbacks;
        println!(
            "  numbered to stay unique: {product} product questions, {shopwide} shop-wide questions, {title} titles"
        );
    }

    let load_started = Instant::now();
    let kb = kefu::kb::load(&args.out).map_err(|e| format!("the generated knowledge base does not load: {e}"))?;
    if kb.entries.len() != s.entries {
        return Err(format!("generated {} entries but kefu::kb::load found {}", s.entries, kb.entries.len()));
    }
    let internal = kb.entries.iter().filter(|e| e.audience == Audience::Internal).count();
    if internal != s.internal {
        return Err(format!("generated {} internal entries but kefu::kb::load found {internal}", s.internal));
    }
    println!(
        "verified with kefu::kb::load: {} entries, {} internal, {} dict words, {} synonym groups, in {:.2} s",
        kb.entries.len(),
        internal,
        kb.dict.len(),
        kb.synonyms.len(),
        load_started.elapsed().as_secs_f64()
    );
    let (clashes, narrower) = shared_phrasings(&kb.entries)?;
    println!(
        "phrasings shared by entries whose scopes overlap: {clashes} (errors), {narrower} where one entry is narrower (warnings)"
    );

    if let Some(path) = &args.queries {
        let query_started = Instant::now();
        let counts = generator.write_queries(path, args.query_count)?;
        println!(
            "wrote {} queries (short {}, long {}, no-hit {}) to {} (URL-encoded) and {}.txt (raw), in {:.2} s",
            args.query_count,
            counts[0],
            counts[1],
            counts[2],
            path.display(),
            path.display(),
            query_started.elapsed().as_secs_f64()
        );
    }
    println!("total {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Checks what kefu checks across entries: one phrasing (标准问 or 相似问)
/// in two entries whose scopes overlap is an error, unless one entry is a
/// narrower version of the other (fewer products or platforms), which is
/// only a warning. Returns the number of errors and of warnings, or the
/// first errors.
fn shared_phrasings(entries: &[Entry]) -> Result<(usize, usize), String> {
    let mut by_key: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        for phrasing in entry.phrasings() {
            let holders = by_key.entry(question_key(phrasing)).or_default();
            if holders.last() != Some(&i) {
                holders.push(i);
            }
        }
    }
    let overlap = |a: &[String], b: &[String]| a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x));
    let overlap_p = |a: &[Platform], b: &[Platform]| a.is_empty() || b.is_empty() || a.iter().any(|x| b.contains(x));
    let narrower = |x: &Entry, y: &Entry| {
        (!x.products.is_empty() && y.products.is_empty())
            || (!x.platforms.is_empty() && (y.platforms.is_empty() || x.platforms.len() < y.platforms.len()))
    };
    let (mut errors, mut warnings) = (Vec::new(), 0);
    let mut keys: Vec<&String> = by_key.keys().filter(|k| by_key[*k].len() > 1).collect();
    keys.sort_unstable();
    for key in keys {
        let holders = &by_key[key];
        for (n, &i) in holders.iter().enumerate() {
            for &j in &holders[n + 1..] {
                let (a, b) = (&entries[i], &entries[j]);
                if !overlap(&a.products, &b.products) || !overlap_p(&a.platforms, &b.platforms) {
                    continue;
                }
                if narrower(a, b) || narrower(b, a) {
                    warnings += 1;
                } else {
                    errors.push(format!("`{key}` in `{}` and `{}`", a.id, b.id));
                }
            }
        }
    }
    if errors.is_empty() {
        Ok((0, warnings))
    } else {
        let shown = errors.iter().take(10).map(String::as_str).collect::<Vec<_>>().join("\n  ");
        Err(format!("{} phrasings are shared by entries of overlapping scope, e.g.\n  {shown}", errors.len()))
    }
}

/// Parts of an output folder the generator owns.
const OWNED: [&str; 5] = ["products", "rules", "faq", DICT_FILE, SYNONYMS_FILE];

fn prepare_out(out: &Path, force: bool) -> Result<(), String> {
    let io = |path: &Path, e: std::io::Error| format!("{}: {e}", path.display());
    if out.exists() && !out.is_dir() {
        return Err(format!("{} exists and is not a folder", out.display()));
    }
    for name in OWNED {
        let path = out.join(name);
        if !path.exists() {
            continue;
        }
        if !force {
            return Err(format!("{} already exists (pass --force to replace it)", path.display()));
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?;
        } else {
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    for folder in ["products", "rules", "faq"] {
        let path = out.join(folder);
        std::fs::create_dir_all(&path).map_err(|e| io(&path, e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Deterministic PRNG (SplitMix64): no dependency, same stream on every platform.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_F42D_4C95_7F2D)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self, words: &[&'static str]) -> &'static str {
        words[self.below(words.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// `k` distinct items (fewer if there are not that many), in random order.
    fn sample<'a, T>(&mut self, items: &'a [T], k: usize) -> Vec<&'a T> {
        let mut all: Vec<&T> = items.iter().collect();
        self.shuffle(&mut all);
        all.truncate(k);
        all
    }
}

// ---------------------------------------------------------------------------
// Vocabulary the sample does not spell out as lists.

/// A kind of product the shop sells. `keyword` finds the sample product file
/// whose questions fit it; `sample_nouns` are that file's words for the
/// product, replaced by the SKU's noun (longest first).
struct Category {
    slug: &'static str,
    keyword: &'static str,
    sample_nouns: &'static [&'static str],
    /// The sample file's material, replaced by the SKU's.
    sample_material: Option<&'static str>,
    nouns: &'static [&'static str],
    styles: &'static [&'static str],
    /// Material, or 功效 for skin care.
    materials: &'static [&'static str],
    material_label: &'static str,
    /// Colours, or 型号 for skin care.
    variants: &'static [&'static str],
    variant_label: &'static str,
    sizes: &'static [&'static str],
    size_label: &'static str,
    tags: &'static [&'static str],
    price: (usize, usize),
}

const CATEGORIES: [Category; 4] = [
    Category {
        slug: "shoes",
        keyword: "靴",
        sample_nouns: &["切尔西靴", "靴子"],
        sample_material: Some("头层牛皮"),
        nouns: &["切尔西靴", "马丁靴", "短靴", "德比鞋", "乐福鞋", "工装靴", "雪地靴", "牛津鞋", "沙漠靴", "布洛克鞋"],
        styles: &["男士", "女士", "英伦", "复古", "加绒", "厚底", "经典", "手工", "轻便"],
        materials: &["头层牛皮", "麂皮", "翻毛皮", "磨砂皮", "漆皮", "疯马皮", "油蜡皮"],
        material_label: "鞋面",
        variants: &["黑色", "深棕", "酒红", "卡其", "灰色", "米白", "棕褐", "墨绿"],
        variant_label: "颜色",
        sizes: &["35码", "36码", "37码", "38码", "39码", "40码", "41码", "42码", "43码", "44码", "45码", "46码"],
        size_label: "尺码",
        tags: &["鞋靴", "尺码", "保养"],
        price: (299, 1299),
    },
    Category {
        slug: "apparel",
        keyword: "大衣",
        sample_nouns: &["大衣"],
        sample_material: None,
        nouns: &["大衣", "风衣", "羽绒服", "毛呢外套", "西装外套", "棉服", "针织开衫", "夹克", "卫衣"],
        styles: &["女士", "男士", "双排扣", "长款", "短款", "落肩", "宽松", "修身", "连帽"],
        materials: &["羊毛", "羊绒混纺", "纯棉", "聚酯纤维", "白鸭绒", "灰鹅绒", "羊驼毛", "亚麻"],
        material_label: "面料",
        variants: &["驼色", "燕麦色", "黑色", "藏青", "灰色", "焦糖色", "奶白", "雾霾蓝", "军绿"],
        variant_label: "颜色",
        sizes: &["XS码", "S码", "M码", "L码", "XL码", "XXL码", "3XL码"],
        size_label: "尺码",
        tags: &["服装", "尺码", "洗护"],
        price: (199, 1999),
    },
    Category {
        slug: "skincare",
        keyword: "精华",
        sample_nouns: &["精华液", "精华"],
        sample_material: None,
        nouns: &["精华液", "面霜", "乳液", "爽肤水", "眼霜", "面膜", "精华水", "防晒霜", "洁面乳", "安瓶"],
        styles: &["玻尿酸", "烟酰胺", "神经酰胺", "积雪草", "维C", "胜肽", "角鲨烷", "依克多因"],
        materials: &["保湿", "修护", "美白", "抗皱", "控油", "舒缓", "紧致"],
        material_label: "功效",
        variants: &["清爽型", "滋润型", "无香型", "敏感肌版", "旅行装"],
        variant_label: "型号",
        sizes: &["15ml", "30ml", "50ml", "75ml", "100ml", "150ml"],
        size_label: "规格",
        tags: &["护肤", "成分", "肤质"],
        price: (69, 699),
    },
    Category {
        slug: "care",
        keyword: "护理",
        sample_nouns: &["护理套装"],
        sample_material: None,
        nouns: &["护理套装", "鞋油", "鞋刷", "鞋撑", "清洁膏", "防水喷雾", "鞋蜡", "麂皮擦", "鞋拔"],
        styles: &["皮鞋", "靴子", "运动鞋", "真皮", "多功能", "便携"],
        materials: &["天然材料", "进口原料", "环保材料", "植物配方"],
        material_label: "材质",
        variants: &["无色", "黑色", "棕色", "酒红", "深蓝"],
        variant_label: "颜色",
        sizes: &["S号", "M号", "L号", "XL号", "家庭装"],
        size_label: "规格",
        tags: &["鞋履护理", "配件"],
        price: (29, 199),
    },
];

const EVENTS: [&str; 10] = ["双十一", "618", "双十二", "年货节", "三八节", "99划算节", "开学季", "春节", "520", "七夕"];

/// Who bought, or when: "{buyer}买的{noun}，".
const BUYERS: [&str; 12] = [
    "昨天",
    "前天",
    "上周",
    "上个月",
    "刚刚",
    "帮家人",
    "帮朋友",
    "给爸妈",
    "直播间里",
    "会员日",
    "用优惠券",
    "用花呗",
];

/// A buyer's situation, as a clause before the question.
const SITUATIONS: [&str; 12] = [
    "老顾客",
    "新客首单",
    "企业采购",
    "学生党",
    "第一次在你们家买",
    "多件一起拍的",
    "用花呗付的款",
    "用优惠券下的单",
    "直播间下的单",
    "预售订单",
    "送人的",
    "寄到外地的",
];

const CITIES: [&str; 18] = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "成都",
    "杭州",
    "武汉",
    "西安",
    "南京",
    "重庆",
    "长沙",
    "沈阳",
    "哈尔滨",
    "乌鲁木齐",
    "拉萨",
    "昆明",
    "厦门",
    "青岛",
];

const CLOSINGS: [&str; 6] = [
    "还有其他问题随时联系客服哦～",
    "具体以订单页和商品页显示为准。",
    "如果操作中遇到问题，把订单号发给客服，我们帮您处理。",
    "感谢您的耐心，祝您购物愉快！",
    "活动期间咨询量大，回复稍慢请见谅。",
    "需要帮忙的话，在平台对话框里留言，客服看到会第一时间回复。",
];

fn platform_name(platform: Platform) -> &'static str {
    match platform {
        Platform::Taobao => "淘宝",
        Platform::Tmall => "天猫",
        Platform::Jd => "京东",
        Platform::Pdd => "拼多多",
    }
}

/// A question pattern for product files. Placeholders: `{n}` noun, `{name}`
/// full product name, `{sku}`, `{v}`/`{v2}` variants (colours), `{s}`/`{s2}`
/// sizes, `{m}` material, `{p}` price, `{d}` days.
struct Pattern {
    question: &'static str,
    similar: &'static [&'static str],
    answer: &'static str,
}

const PRODUCT_PATTERNS: [Pattern; 14] = [
    Pattern {
        question: "{v}的{n}还有现货吗？",
        similar: &["{v}有货吗", "{v}还有吗", "{v}{n}有现货吗", "{v}的什么时候能发", "{n}{v}缺货了吗"],
        answer: "{v}目前**有现货**，付款后 48 小时内发出。页面能拍就说明有库存；显示“缺货”的规格可以点“到货提醒”，补货后系统会通知您。",
    },
    Pattern {
        question: "{s}的{n}什么时候补货？",
        similar: &["{s}没货了吗", "{s}断码了吗", "{s}什么时候有", "{s}还会补吗", "{n}{s}到货提醒"],
        answer: "{s}正在补货，预计 **{d} 天**后到仓，到货后按付款顺序发出。着急的话可以先看看{v}的同款，或者点“到货提醒”，补货后第一时间通知您。",
    },
    Pattern {
        question: "{v}{n}实物和图片有色差吗？",
        similar: &["{v}色差大吗", "{v}实物什么样", "{v}偏深还是偏浅", "图片上是{v}吗", "{v}和图片一样吗"],
        answer: "商品图都是实物拍摄，{v}在自然光下和图片基本一致；不同显示器、手机屏幕会有轻微色差。收到后如果差别明显，签收 7 天内可以走七天无理由退换。",
    },
    Pattern {
        question: "{n}的{v}和{v2}哪个更好？",
        similar: &["{v}和{v2}选哪个", "{v}好还是{v2}好", "{v2}百搭吗", "纠结{v}和{v2}", "{v}跟{v2}有什么区别"],
        answer: "{v}更百搭、耐看，日常用都合适；{v2}更有个性，适合喜欢出挑一点的朋友。两款卖得都很好，拿不准可以先拍{v}，收到不喜欢 7 天内可以换。",
    },
    Pattern {
        question: "{n}{s}和{s2}差别大吗？",
        similar: &["{s}和{s2}选哪个", "拍{s}还是{s2}", "{s2}会不会大", "夹在{s}和{s2}之间怎么选"],
        answer: "{s}和{s2}的具体尺寸见商品详情页的{label}表。介于两者之间的，建议选**{s2}**；把您的具体情况发给客服，我们帮您推荐。",
    },
    Pattern {
        question: "{v}{s}的{n}今天拍什么时候发货？",
        similar: &["{v}{s}今天能发吗", "{v}{s}几天发", "现在拍{v}的多久发", "{s}今天发货吗"],
        answer: "{v}{s}是现货，**16:00 前付款当天发出**，之后的次日发。发货后订单页会显示快递单号。",
    },
    Pattern {
        question: "{m}的{n}耐用吗？",
        similar: &["{m}耐不耐用", "{m}的容易坏吗", "{m}质量怎么样", "{n}能用多久"],
        answer: "{name}采用{m}，正常使用和保养的情况下可以用很久。按详情页的说明打理，能明显延长使用寿命；收到后发现做工问题，请拍照联系客服处理。",
    },
    Pattern {
        question: "{v}{n}拆开试过还能七天无理由退吗？",
        similar: &["{v}试了不喜欢能退吗", "{n}拆封了能退吗", "{v}{s}不合适能退吗", "试了一下{n}还能退吗"],
        answer: "只要**不影响二次销售**（吊牌、包装、配件齐全，没有使用痕迹），签收 7 天内可以申请七天无理由退换；已经使用、弄脏或损坏的不支持无理由退。",
    },
    Pattern {
        question: "{n}拍了{s}能换成{s2}吗？",
        similar: &["{s}换{s2}", "拍了{s}想换{s2}", "{s}不合适换{s2}", "换成{s2}怎么弄"],
        answer: "可以。**未发货**的直接联系客服改{label}；**已发货**的，收到后在订单里申请“换货”，选{s2}，寄回后我们收到当天换新发出。",
    },
    Pattern {
        question: "{v}{n}送人有礼盒包装吗？",
        similar: &["{n}有礼盒吗", "能包装成礼物吗", "送人要礼盒包装", "{v}送礼合适吗", "能帮忙写贺卡吗"],
        answer: "{n}默认是原装盒。需要送礼的可以在备注写“礼盒”，我们免费加礼品袋和贺卡；价格标签发货前都会撕掉。",
    },
    Pattern {
        question: "{n}是{m}的吗？",
        similar: &["是不是{m}", "{n}什么材质", "{n}用的什么料", "真的是{m}吗"],
        answer: "是的，{name}使用**{m}**，以吊牌/包装标注为准。详情页有说明和实拍图，收到后也可以对照。",
    },
    Pattern {
        question: "{v}{s}的{n}还有吗？",
        similar: &["{v}{s}有没有", "要一个{v}{s}", "{v}{s}拍得了吗", "还有{v}{s}吗"],
        answer: "{v}{s}目前有货，页面可选就能直接拍。库存实时更新，以下单时为准。",
    },
    Pattern {
        question: "买两件{v}{n}有优惠吗？",
        similar: &["买两件便宜吗", "两件{v}能打折吗", "多买{n}有优惠吗", "{n}第二件半价吗"],
        answer: "同款两件可以用店铺满减券（满 600 减 50），活动期间还有第二件优惠，以商品页为准。需要多件的可以先加购物车一起结算。",
    },
    Pattern {
        question: "{n}的{s}适合什么样的人？",
        similar: &["{s}适合谁", "{s}合不合适我", "什么情况拍{s}", "{n}{s}给谁用"],
        answer: "{s}对应的尺寸和适用情况见商品页的{label}表；把您的身高体重、脚长或肤质等情况发给客服，我们帮您判断{s}合不合适。",
    },
];

const INTERNAL_PRODUCT_PATTERNS: [Pattern; 4] = [
    Pattern {
        question: "{n}（{v}）的底价和改价权限是多少？",
        similar: &["{n}最低能卖多少", "{v}{n}能给到几折", "{n}底价", "{n}改价权限"],
        answer: "**内部**：{name}（{sku}）标价 {p} 元，客服单笔让利不超过 20 元或 95 折（取较小值），超出须组长审批；活动期间以运营通知为准。",
    },
    Pattern {
        question: "{v}{s}的{n}断码了怎么跟买家说？",
        similar: &["{v}{s}没货了怎么回", "{n}断码话术", "{s}缺货怎么沟通", "{v}断货了怎么办"],
        answer: "发现断码 2 小时内主动联系买家，不得擅自换色换码发出。话术：“亲，非常抱歉，您拍的{v}{s}临时断码了，可以等 {d} 天补货，也可以换其他{label}，或者直接全额退款，您看哪种方便？”",
    },
    Pattern {
        question: "{n}（{v}）常见的差评是什么，怎么回复？",
        similar: &["{n}差评怎么回", "{v}{n}差评原因", "{n}差评回复口径", "{n}买家投诉最多的问题"],
        answer: "近期{name}差评集中在**{label}**和**物流时效**。回复口径：感谢反馈 + 说明原因 + 给出方案（换{label}、补偿运费），不争辩、不泄露买家信息，同时记到客户标签。",
    },
    Pattern {
        question: "{n}{s}的库存和补货时间在哪里查？",
        similar: &["{n}库存怎么看", "{s}还有多少库存", "{n}补货时间", "{s}什么时候到仓"],
        answer: "在千牛 → 商品 → 库存里按 {sku} 查各规格库存；补货时间看运营每周一发的补货表。{s}当前预计 {d} 天后到仓，不确定的不要向买家承诺具体日期。",
    },
];

/// Query stream vocabulary.
const OPENERS: [&str; 9] =
    ["亲，", "你好，", "在吗？", "客服你好，", "老板，", "hello，", "麻烦问一下，", "您好，", ""];
const SHORT_PREFIXES: [&str; 6] = ["亲，", "亲 ", "在吗，", "你好，", "请问", "问下"];
const SHORT_SUFFIXES: [&str; 5] = ["呢", "啊", "呀", "呢？", "啊？"];
const LONG_SITUATIONS: [&str; 10] = [
    "我前天在你们家买了{n}",
    "上周拍的{n}今天刚到",
    "想给我妈买个{n}",
    "之前在你们家买过{n}",
    "双十一的时候拍了{n}",
    "朋友推荐来的，看中了一款{n}",
    "我在{city}",
    "刚下单了一个{n}",
    "昨天收到货了",
    "我是老顾客了",
];
const LONG_TAILS: [&str; 7] =
    ["麻烦尽快回复一下", "急用，谢谢", "等你回复哈", "谢谢啦", "着急用", "辛苦看一下", "在线等"];
const OFF_TOPIC: [&str; 44] = [
    "今天天气怎么样",
    "明天会下雨吗",
    "推荐一部好看的电影",
    "附近有什么好吃的火锅",
    "怎么办理护照",
    "高铁票怎么改签",
    "股票明天会涨吗",
    "猫咪不吃饭怎么办",
    "狗狗掉毛严重怎么办",
    "Python怎么安装",
    "电脑蓝屏了怎么修",
    "手机屏幕碎了去哪修",
    "周末去哪里爬山",
    "英语四级怎么准备",
    "驾照科目二怎么练",
    "考研数学怎么复习",
    "房贷利率是多少",
    "社保怎么转移",
    "个税怎么申报",
    "红烧肉怎么做",
    "减肥吃什么好",
    "失眠怎么办",
    "感冒了吃什么药",
    "孩子发烧怎么办",
    "王者荣耀怎么上分",
    "世界杯什么时候开始",
    "怎么学游泳",
    "吉他入门买什么",
    "宽带怎么续费",
    "信用卡逾期了怎么办",
    "租房合同怎么写",
    "装修选什么瓷砖",
    "月球离地球多远",
    "怎么写简历",
    "公积金怎么提取",
    "网约车怎么投诉",
    "水电费怎么交",
    "小区停车位怎么租",
    "{city}有什么好玩的地方",
    "{city}明天天气怎么样",
    "{city}哪里有好吃的",
    "去{city}坐高铁要多久",
    "{city}的房价多少",
    "{city}今天限行吗",
];

// ---------------------------------------------------------------------------
// The sample knowledge base, cut into reusable templates.

struct Template {
    question: String,
    similar: Vec<String>,
    answer: String,
    internal: bool,
    platforms: Vec<Platform>,
}

impl Template {
    fn of(entry: &Entry) -> Template {
        Template {
            question: clean_line(&entry.question),
            similar: entry.similar.iter().map(|s| clean_line(s)).filter(|s| !s.is_empty()).collect(),
            answer: entry.answer_markdown.clone(),
            internal: entry.audience == Audience::Internal,
            platforms: entry.platforms.clone(),
        }
    }

    /// Whether an entry written for `platforms` fits a file scoped to `file`.
    fn fits(&self, file: &[Platform]) -> bool {
        self.platforms.is_empty() || (!file.is_empty() && file.iter().all(|p| self.platforms.contains(p)))
    }
}

/// One sample `rules/` or `faq/` file: a topic that generated files build on.
struct Topic {
    stem: String,
    title: String,
    intro: Option<String>,
    tags: Vec<String>,
    platforms: Vec<Platform>,
    internal: bool,
    /// Indices into [`Sample::templates`].
    templates: Vec<usize>,
}

/// One sample `products/` file: the questions buyers ask about a kind of product.
struct Family {
    title: String,
    sku: String,
    templates: Vec<Template>,
}

struct Sample {
    templates: Vec<Template>,
    rules: Vec<Topic>,
    faq: Vec<Topic>,
    families: Vec<Family>,
}

impl Sample {
    fn new(kb: &KnowledgeBase) -> Result<Sample, String> {
        let mut sample = Sample { templates: Vec::new(), rules: Vec::new(), faq: Vec::new(), families: Vec::new() };
        // Entries come in file order; cut them into files.
        let mut start = 0;
        while start < kb.entries.len() {
            let path = &kb.entries[start].source.path;
            let end =
                kb.entries[start..].iter().position(|e| &e.source.path != path).map_or(kb.entries.len(), |n| start + n);
            sample.add_file(&kb.entries[start..end]);
            start = end;
        }
        if sample.rules.is_empty() {
            return Err("the sample knowledge base has no rules/ entries to build on".into());
        }
        if sample.faq.iter().all(|t| t.internal) {
            return Err("the sample knowledge base has no public faq/ entries to build on".into());
        }
        Ok(sample)
    }

    fn add_file(&mut self, entries: &[Entry]) {
        let first = &entries[0];
        // The intro entry: the title as question, no 相似问, first in its file.
        let has_intro = first.question == first.title && first.similar.is_empty();
        let intro = has_intro.then(|| first.answer_markdown.clone()).filter(|a| !a.is_empty());
        let body = &entries[usize::from(has_intro)..];
        let internal = entries.iter().all(|e| e.audience == Audience::Internal);
        match first.kind {
            Kind::Product => self.families.push(Family {
                title: first.title.clone(),
                sku: first.products.first().cloned().unwrap_or_default(),
                templates: body.iter().filter(|e| e.audience == Audience::Public).map(Template::of).collect(),
            }),
            kind => {
                let stem = first.source.path.rsplit('/').next().unwrap_or("topic").trim_end_matches(".md");
                let stem: String = stem
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                    .collect();
                let mut topic = Topic {
                    stem: stem.trim_matches('-').to_string(),
                    title: clean_line(&first.title),
                    intro,
                    tags: first.tags.iter().map(|t| clean_line(t)).collect(),
                    platforms: first.platforms.clone(),
                    internal,
                    templates: Vec::new(),
                };
                if topic.stem.is_empty() {
                    topic.stem = "topic".into();
                }
                for entry in body {
                    topic.templates.push(self.templates.len());
                    self.templates.push(Template::of(entry));
                }
                if topic.templates.is_empty() {
                    return;
                }
                if kind == Kind::Rule {
                    self.rules.push(topic);
                } else {
                    self.faq.push(topic);
                }
            }
        }
    }
}

/// A phrasing safe on one line of the format: no line breaks, no 相似问
/// separators, no attribute braces.
fn clean_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '|' | '｜' => out.push('/'),
            '{' | '}' | '#' => {}
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Replaces every occurrence of each pattern in one left-to-right pass
/// (earlier patterns win at the same position), so replacements are never
/// replaced again.
fn replace_all<A: AsRef<str>, B: AsRef<str>>(text: &str, pairs: &[(A, B)]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    'outer: while !rest.is_empty() {
        for (from, to) in pairs {
            let from = from.as_ref();
            if !from.is_empty() && rest.starts_with(from) {
                out.push_str(to.as_ref());
                rest = &rest[from.len()..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The key two phrasings are "the same question" under, as kefu compares
/// them: letters and digits only, full-width folded to ASCII, lowercased
/// (punctuation, width and spacing do not make a question new).
fn question_key(question: &str) -> String {
    question
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn strip_end_punct(text: &str) -> &str {
    text.trim_end_matches(['？', '?', '。', '！', '!', '～', '~', ' '])
}

// ---------------------------------------------------------------------------
// Generation

#[derive(Default)]
struct Stats {
    entries: usize,
    internal: usize,
    phrasings: usize,
    /// products, rules, faq, dict/synonyms.
    files: [usize; 4],
    bytes: usize,
    /// Numbered suffixes handed out (product questions, shop-wide questions, titles).
    fallbacks: [usize; 3],
}

impl Stats {
    /// The next number for a question that ran out of natural variants.
    fn fallback(&mut self, what: usize) -> usize {
        self.fallbacks[what] += 1;
        self.fallbacks.iter().sum()
    }
}

struct Generator<'a> {
    rng: Rng,
    sample: &'a Sample,
    out: PathBuf,
    /// Keys of every phrasing (标准问 and 相似问) of rules/faq entries. kefu
    /// rejects one phrasing in two entries whose scopes overlap; rather than
    /// work out platform overlaps, shop-wide phrasings are simply all unique.
    shopwide: HashSet<String>,
    /// Keys of every phrasing of product entries. Product scopes never
    /// overlap, so these only need to be unique per product, but shop-wide
    /// phrasings avoid all of them (and they avoid shop-wide ones).
    product_phrasings: HashSet<String>,
    /// Public phrasings for the query stream.
    questions: Vec<String>,
    similars: Vec<String>,
    all_nouns: Vec<&'static str>,
    stats: Stats,
}

/// One entry, ready to write.
struct Draft {
    question: String,
    similar: Vec<String>,
    answer: String,
    /// Internal, whether by its heading or by its file's audience.
    internal: bool,
}

/// A file being written.
struct FileBuf {
    text: String,
    id: String,
    count: usize,
    /// `audience: internal` in the front matter: no heading needs `.internal`.
    internal: bool,
}

impl FileBuf {
    fn new(id: String) -> FileBuf {
        FileBuf { text: String::with_capacity(16 * 1024), id, count: 0, internal: false }
    }

    fn front_matter(
        &mut self,
        title: &str,
        products: &[String],
        platforms: &[Platform],
        internal: bool,
        tags: &[String],
    ) {
        self.internal = internal;
        let t = &mut self.text;
        t.push_str("---\n");
        let _ = writeln!(t, "title: {}", yaml_str(title));
        if !products.is_empty() {
            let _ = writeln!(t, "products: [{}]", products.iter().map(|p| yaml_str(p)).collect::<Vec<_>>().join(", "));
        }
        if !platforms.is_empty() {
            let _ = writeln!(t, "platforms: [{}]", platforms.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "));
        }
        let _ = writeln!(t, "audience: {}", if internal { "internal" } else { "public" });
        let _ = writeln!(t, "tags: [{}]", tags.iter().map(|p| yaml_str(p)).collect::<Vec<_>>().join(", "));
        t.push_str("---\n");
    }

    /// `# title`, with the intro as an entry of its own when there is one.
    fn title(&mut self, title: &str, intro: Option<&str>) {
        match intro {
            Some(intro) => {
                let _ = write!(self.text, "# {title} {{#{}}}\n\n{}\n\n", self.id, intro.trim());
                self.count += 1;
            }
            None => {
                let _ = write!(self.text, "# {title}\n\n");
            }
        }
    }

    fn entry(&mut self, draft: &Draft) {
        self.count += 1;
        let class = if draft.internal && !self.internal { " .internal" } else { "" };
        let _ = write!(
            self.text,
            "## {} {{#{}-{:02}{class}}}\n相似问：{}\n\n{}\n\n",
            draft.question,
            self.id,
            self.count,
            draft.similar.join("｜"),
            draft.answer.trim()
        );
    }
}

fn yaml_str(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Per-entry internal rates, chosen so that about 10% of all entries are internal.
const PRODUCT_INTERNAL_RATE: f64 = 0.08;
const RULE_INTERNAL_RATE: f64 = 0.07;
const FAQ_INTERNAL_RATE: f64 = 0.05;
/// Share of faq files that are whole internal guides (`audience: internal`).
const FAQ_INTERNAL_FILE_RATE: f64 = 0.10;

/// A product being written: everything its questions and answers are built from.
struct Product<'a> {
    category: &'a Category,
    sku: String,
    noun: &'static str,
    name: String,
    material: &'static str,
    price: String,
    variants: Vec<&'static str>,
    sizes: Vec<&'static str>,
}

/// The context clause put before a shop-wide question to make it specific.
struct Context {
    prefix: String,
    /// A short word from the context for some 相似问 (a noun or event).
    keyword: Option<String>,
}

impl<'a> Generator<'a> {
    fn new(sample: &'a Sample, out: &Path, seed: u64) -> Generator<'a> {
        let mut all_nouns: Vec<&'static str> = CATEGORIES.iter().flat_map(|c| c.nouns.iter().copied()).collect();
        all_nouns.sort_unstable();
        all_nouns.dedup();
        Generator {
            rng: Rng::new(seed),
            sample,
            out: out.to_path_buf(),
            shopwide: HashSet::new(),
            product_phrasings: HashSet::new(),
            questions: Vec::new(),
            similars: Vec::new(),
            all_nouns,
            stats: Stats::default(),
        }
    }

    fn generate(&mut self, total: usize) -> Result<(), String> {
        // 55% product knowledge, 15% platform rules, 30% shop-wide FAQ.
        let products = total * 55 / 100;
        let rules = (total * 15 / 100).max(usize::from(total >= 3));
        let faq = total - products - rules;
        let mut left = [products, rules, faq];
        let mut index = [0usize; 3];
        // Interleave the three kinds so a partial run still looks like a shop.
        while left.iter().any(|&n| n > 0) {
            for kind in 0..3 {
                if left[kind] == 0 {
                    continue;
                }
                let mut n = self.rng.range(20, 50).min(left[kind]);
                // Never leave a remainder too small for a file of its own.
                if left[kind] - n < 20 {
                    n = left[kind];
                }
                let written = match kind {
                    0 => self.product_file(index[0], n)?,
                    1 => self.topic_file(Kind::Rule, index[1], n)?,
                    _ => self.topic_file(Kind::Faq, index[2], n)?,
                };
                left[kind] -= written;
                index[kind] += 1;
            }
        }
        Ok(())
    }

    fn write_file(&mut self, folder: usize, rel: &str, file: &FileBuf) -> Result<(), String> {
        let path = self.out.join(rel);
        std::fs::write(&path, &file.text).map_err(|e| format!("{}: {e}", path.display()))?;
        self.stats.files[folder] += 1;
        self.stats.bytes += file.text.len();
        Ok(())
    }

    fn record(&mut self, draft: &Draft) {
        self.stats.entries += 1;
        self.stats.phrasings += 1 + draft.similar.len();
        if draft.internal {
            self.stats.internal += 1;
        } else {
            self.questions.push(draft.question.clone());
            self.similars.extend(draft.similar.iter().cloned());
        }
    }

    /// 2–6 相似问 for `question`: each of `candidates` as written while it is
    /// still free in the scope, else with one of `decorations` (a product
    /// noun, a context clause) in front, else left out; polite forms of the
    /// question itself make up the rest. `local` is the product's
    /// set of phrasings, `None` for a shop-wide entry.
    fn fill_similar(
        &mut self,
        question: &str,
        candidates: Vec<String>,
        decorations: &[String],
        mut local: Option<&mut HashSet<String>>,
    ) -> Vec<String> {
        let k = self.rng.range(2, 6);
        let mut out = Vec::with_capacity(k);
        for candidate in candidates {
            if out.len() == k {
                break;
            }
            let candidate = clean_line(&candidate);
            if candidate.is_empty() {
                continue;
            }
            // Some phrasings carry a decoration even when the bare one is free.
            let first = if !decorations.is_empty() && self.rng.chance(0.3) {
                format!("{}{candidate}", self.rng.pick(decorations))
            } else {
                candidate.clone()
            };
            let options = std::iter::once(first)
                .chain([candidate.clone()])
                .chain(decorations.iter().map(|d| format!("{d}{candidate}")));
            for option in options {
                if self.claim(&option, local.as_deref_mut()) {
                    out.push(option);
                    break;
                }
            }
        }
        let bare = strip_end_punct(question);
        for extra in [format!("请问{bare}"), format!("想问下{bare}"), format!("{bare}呢"), format!("麻烦问下{bare}")]
        {
            if out.len() >= k {
                break;
            }
            if self.claim(&extra, local.as_deref_mut()) {
                out.push(extra);
            }
        }
        out
    }

    /// Claims a phrasing for a new entry: in product `local`'s scope, or
    /// shop-wide for `None`. False (and nothing recorded) if it is taken.
    fn claim(&mut self, phrasing: &str, local: Option<&mut HashSet<String>>) -> bool {
        let key = question_key(phrasing);
        if key.is_empty() || self.shopwide.contains(&key) {
            return false;
        }
        match local {
            Some(local) => {
                if !local.insert(key.clone()) {
                    return false;
                }
                self.product_phrasings.insert(key);
            }
            None => {
                if self.product_phrasings.contains(&key) {
                    return false;
                }
                self.shopwide.insert(key);
            }
        }
        true
    }

    // -- products -----------------------------------------------------------

    fn product_file(&mut self, index: usize, n: usize) -> Result<usize, String> {
        let category = &CATEGORIES[self.rng.below(CATEGORIES.len())];
        let family = self.sample.families.iter().find(|f| f.title.contains(category.keyword));
        let noun = self.rng.word(category.nouns);
        let style = self.rng.word(category.styles);
        let material = self.rng.word(category.materials);
        let name = if noun.contains(material) || category.slug == "care" {
            format!("{style}{noun}")
        } else {
            format!("{style}{material}{noun}")
        };
        let variant_count = self.rng.range(3, 4);
        let variants: Vec<&'static str> =
            self.rng.sample(category.variants, variant_count).into_iter().copied().collect();
        let first_size = self.rng.below(category.sizes.len() - 2);
        let last_size = self.rng.range(first_size + 2, category.sizes.len() - 1);
        let sizes = category.sizes[first_size..=last_size].to_vec();
        let (lo, hi) = category.price;
        let price = (self.rng.range(lo / 10, hi / 10) * 10 + 9).to_string();
        let product =
            Product { category, sku: format!("SKU-{}", 10001 + index), noun, name, material, price, variants, sizes };

        let platforms: Vec<Platform> = if self.rng.chance(0.2) {
            let k = self.rng.range(1, 3);
            let mut p: Vec<Platform> = self.rng.sample(&Platform::ALL, k).into_iter().copied().collect();
            p.sort();
            p
        } else {
            Vec::new()
        };
        let mut tags: Vec<String> = vec![category.tags[0].to_string(), noun.to_string(), material.to_string()];
        tags.extend(category.tags[1..].iter().map(|t| t.to_string()));
        let title = format!("{}（{}）", product.name, product.sku);
        let intro = format!(
            "{}，售价 {} 元。{}：{}；{}：{}；{} {}–{}。{}风格，{}，详情见商品页。",
            product.sku,
            product.price,
            category.material_label,
            product.material,
            category.variant_label,
            product.variants.join("、"),
            category.size_label,
            product.sizes[0],
            product.sizes[product.sizes.len() - 1],
            style,
            if platforms.is_empty() {
                "全平台有售".to_string()
            } else {
                format!("仅在{}店有售", platforms.iter().map(|p| platform_name(*p)).collect::<Vec<_>>().join("、"))
            }
        );

        let mut file = FileBuf::new(product.sku.to_ascii_lowercase());
        file.front_matter(&title, std::slice::from_ref(&product.sku), &platforms, false, &tags);
        file.title(&title, Some(&intro));
        self.stats.entries += 1;
        self.stats.phrasings += 1;

        let mut local: HashSet<String> = HashSet::new();
        self.claim(&title, Some(&mut local));
        let family_templates: Vec<&Template> = family.map(|f| f.templates.iter().collect()).unwrap_or_default();
        let sample_sku = family.map_or("", |f| f.sku.as_str());
        let mut next_template = 0;
        while file.count < n {
            let internal = self.rng.chance(PRODUCT_INTERNAL_RATE);
            let draft = if !internal && next_template < family_templates.len() {
                next_template += 1;
                self.product_from_template(&product, family_templates[next_template - 1], sample_sku, &mut local)
            } else {
                self.product_from_pattern(&product, internal, &mut local)
            };
            self.record(&draft);
            file.entry(&draft);
        }
        let rel = format!("products/{}-{}.md", category.slug, product.sku.trim_start_matches("SKU-"));
        self.write_file(0, &rel, &file)?;
        Ok(file.count)
    }

    fn product_from_template(
        &mut self,
        product: &Product<'_>,
        template: &Template,
        sample_sku: &str,
        local: &mut HashSet<String>,
    ) -> Draft {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if !sample_sku.is_empty() {
            pairs.push((sample_sku, &product.sku));
        }
        for noun in product.category.sample_nouns {
            pairs.push((noun, product.noun));
        }
        if let Some(material) = product.category.sample_material {
            pairs.push((material, product.material));
        }
        let base = replace_all(&template.question, &pairs);
        let mut question = base.clone();
        if !self.claim(&question, Some(local)) {
            question = self.product_fallback(&base, local);
        }
        let candidates = template.similar.iter().map(|s| replace_all(s, &pairs)).collect();
        let decorations = self.product_decorations(product);
        let similar = self.fill_similar(&question, candidates, &decorations, Some(local));
        let answer = replace_all(&template.answer, &pairs);
        Draft { question, similar, answer, internal: false }
    }

    fn product_from_pattern(&mut self, product: &Product<'_>, internal: bool, local: &mut HashSet<String>) -> Draft {
        let patterns: &[Pattern] = if internal { &INTERNAL_PRODUCT_PATTERNS } else { &PRODUCT_PATTERNS };
        for _ in 0..64 {
            let pattern = self.rng.pick(patterns);
            let fill = self.product_fill(product);
            let pairs = fill.pairs(product);
            let question = replace_all(pattern.question, &pairs);
            if !self.claim(&question, Some(local)) {
                continue;
            }
            let candidates = pattern.similar.iter().map(|s| replace_all(s, &pairs)).collect();
            let decorations = self.product_decorations(product);
            let similar = self.fill_similar(&question, candidates, &decorations, Some(local));
            let answer = replace_all(pattern.answer, &pairs);
            return Draft { question, similar, answer, internal };
        }
        // The patterns are exhausted for this product (a tiny size range):
        // number a variant of one.
        let pattern = &patterns[0];
        let fill = self.product_fill(product);
        let pairs = fill.pairs(product);
        let base = replace_all(pattern.question, &pairs);
        let question = self.product_fallback(&base, local);
        let candidates = pattern.similar.iter().map(|s| replace_all(s, &pairs)).collect();
        let decorations = self.product_decorations(product);
        let similar = self.fill_similar(&question, candidates, &decorations, Some(local));
        Draft { question, similar, answer: replace_all(pattern.answer, &pairs), internal }
    }

    /// What a product 相似问 may start with to be new for the product.
    fn product_decorations(&mut self, product: &Product<'_>) -> Vec<String> {
        let v = self.rng.word(&product.variants);
        let s = self.rng.word(&product.sizes);
        vec![
            product.noun.to_string(),
            format!("{v}{}", product.noun),
            format!("{s}"),
            format!("{v}{s}"),
            product.name.clone(),
        ]
    }

    fn product_fallback(&mut self, base: &str, local: &mut HashSet<String>) -> String {
        for _ in 0..32 {
            let question = if self.rng.chance(0.5) {
                format!("{}期间，{base}", self.rng.word(&EVENTS))
            } else {
                format!("寄到{}的话，{base}", self.rng.word(&CITIES))
            };
            if self.claim(&question, Some(local)) {
                return question;
            }
        }
        loop {
            let question = format!("{base}（{}）", self.stats.fallback(0));
            if self.claim(&question, Some(local)) {
                return question;
            }
        }
    }

    fn product_fill(&mut self, product: &Product<'_>) -> Fill {
        let pair = self.rng.sample(&product.variants, 2);
        let (v, v2) = (*pair[0], *pair[1]);
        let i = self.rng.below(product.sizes.len() - 1);
        Fill { v, v2, s: product.sizes[i], s2: product.sizes[i + 1], d: self.rng.range(3, 20).to_string() }
    }

    // -- rules and faq ------------------------------------------------------

    fn topic_file(&mut self, kind: Kind, index: usize, n: usize) -> Result<usize, String> {
        let sample = self.sample;
        let topics = if kind == Kind::Rule { &sample.rules } else { &sample.faq };
        let internal_topics: Vec<&Topic> = topics.iter().filter(|t| t.internal).collect();
        let public_topics: Vec<&Topic> = topics.iter().filter(|t| !t.internal).collect();
        let topic = if !internal_topics.is_empty()
            && (public_topics.is_empty() || (kind == Kind::Faq && self.rng.chance(FAQ_INTERNAL_FILE_RATE)))
        {
            *self.rng.pick(&internal_topics)
        } else {
            *self.rng.pick(&public_topics)
        };

        // Scope: a platform-specific topic keeps its platforms; shop-wide
        // rules are mostly restated per platform.
        let platforms: Vec<Platform> = if !topic.platforms.is_empty() {
            topic.platforms.clone()
        } else if kind == Kind::Rule && self.rng.chance(0.7) {
            let k = if self.rng.chance(0.8) { 1 } else { 2 };
            let mut p: Vec<Platform> = self.rng.sample(&Platform::ALL, k).into_iter().copied().collect();
            p.sort();
            p
        } else {
            Vec::new()
        };
        let platform_prefix =
            (topic.platforms.is_empty() && platforms.len() == 1).then(|| format!("{}店", platform_name(platforms[0])));
        let mentions_event = topic.templates.iter().any(|&i| sample.templates[i].question.contains("双十一"));
        let event = (mentions_event || self.rng.chance(0.4)).then(|| self.rng.word(&EVENTS));
        let event_pairs: Vec<(&str, &str)> = match event {
            Some(e) if e != "双十一" => vec![("双十一", e), ("双11", e)],
            _ => Vec::new(),
        };

        let mut title = String::new();
        if let Some(prefix) = &platform_prefix {
            let _ = write!(title, "{prefix} · ");
        }
        title.push_str(&replace_all(&topic.title, &event_pairs));
        let suffix = event.filter(|_| !mentions_event);
        // With an intro the title is a question of its own: keep it unique.
        let title = if topic.intro.is_some() {
            self.unique_title(&title, suffix)
        } else {
            match suffix {
                Some(e) => format!("{title}（{e}）"),
                None => title,
            }
        };
        let mut tags = topic.tags.clone();
        if let Some(e) = event {
            tags.retain(|t| t != "双十一");
            tags.push(e.to_string());
        }
        let (folder, prefix) = if kind == Kind::Rule { (1, "rule") } else { (2, "faq") };
        let mut file = FileBuf::new(format!("{prefix}-{index:04}"));
        file.front_matter(&title, &[], &platforms, topic.internal, &tags);
        let intro = topic.intro.as_ref().map(|i| replace_all(i, &event_pairs));
        file.title(&title, intro.as_deref());
        if intro.is_some() {
            self.stats.entries += 1;
            self.stats.phrasings += 1;
            if topic.internal {
                self.stats.internal += 1;
            }
        }

        // Templates this file may draw on, by audience.
        let fits = |i: &usize| sample.templates[*i].fits(&platforms);
        let mut own: Vec<usize> = topic
            .templates
            .iter()
            .copied()
            .filter(|i| fits(i) && sample.templates[*i].internal == topic.internal)
            .collect();
        self.rng.shuffle(&mut own);
        let kind_public: Vec<usize> = topics
            .iter()
            .flat_map(|t| t.templates.iter().copied())
            .filter(|i| fits(i) && !sample.templates[*i].internal)
            .collect();
        let kind_internal: Vec<usize> = topics
            .iter()
            .flat_map(|t| t.templates.iter().copied())
            .filter(|i| fits(i) && sample.templates[*i].internal)
            .collect();
        let any_internal: Vec<usize> =
            (0..sample.templates.len()).filter(|i| fits(i) && sample.templates[*i].internal).collect();
        let internal_pool = if kind_internal.is_empty() { &any_internal } else { &kind_internal };
        let public_pool = if topic.internal {
            internal_pool
        } else if kind_public.is_empty() {
            &own
        } else {
            &kind_public
        };
        let rate = if kind == Kind::Rule { RULE_INTERNAL_RATE } else { FAQ_INTERNAL_RATE };

        // Each of the topic's own questions first (the first time as
        // written), then random ones with more and more context.
        let mut cursor = 0;
        while file.count < n {
            let heading_internal = !topic.internal && !internal_pool.is_empty() && self.rng.chance(rate);
            let mut first_use = false;
            let template = if heading_internal {
                *self.rng.pick(internal_pool)
            } else if cursor < own.len() {
                cursor += 1;
                first_use = true;
                own[cursor - 1]
            } else if own.is_empty() || (self.rng.chance(0.5) && !public_pool.is_empty()) {
                *self.rng.pick(public_pool)
            } else {
                *self.rng.pick(&own)
            };
            let template = &sample.templates[template];
            let mut draft =
                self.shopwide_entry(template, &event_pairs, event, &platforms, platform_prefix.as_deref(), first_use);
            draft.internal |= topic.internal;
            self.record(&draft);
            file.entry(&draft);
        }
        let rel = if kind == Kind::Rule {
            format!("rules/{}-{index:04}.md", topic.stem)
        } else {
            format!("faq/{}-{index:04}.md", topic.stem)
        };
        self.write_file(folder, &rel, &file)?;
        Ok(file.count)
    }

    fn shopwide_entry(
        &mut self,
        template: &Template,
        event_pairs: &[(&str, &str)],
        event: Option<&'static str>,
        platforms: &[Platform],
        platform_prefix: Option<&str>,
        try_bare: bool,
    ) -> Draft {
        let base = replace_all(&template.question, event_pairs);
        // A single-platform restatement of a shop-wide rule names the platform.
        let platform_prefix = platform_prefix.filter(|p| !base.contains(p.trim_end_matches('店')));
        let mut chosen = None;
        for attempt in 0..48 {
            let context = if attempt == 0 && try_bare {
                Context { prefix: String::new(), keyword: None }
            } else {
                self.context(event, attempt >= 16, platforms.is_empty())
            };
            let question = match platform_prefix {
                Some(p) if context.prefix.is_empty() => format!("{p}的订单，{base}"),
                Some(p) => format!("{p}{}{base}", context.prefix),
                None => format!("{}{base}", context.prefix),
            };
            if self.claim(&question, None) {
                chosen = Some((question, context.keyword));
                break;
            }
        }
        let (question, keyword) = match chosen {
            Some(found) => found,
            None => loop {
                let question = format!("{base}（{}）", self.stats.fallback(1));
                if self.claim(&question, None) {
                    break (question, None);
                }
            },
        };
        let candidates = template.similar.iter().map(|s| replace_all(s, event_pairs)).collect();
        // The clause in front of the template's question, whole or in part.
        let lead = question.strip_suffix(base.as_str()).unwrap_or("");
        // The context's product, if it names one, so that 相似问 agree with it.
        let noun = match keyword.as_deref().and_then(|k| self.all_nouns.iter().find(|n| **n == k)) {
            Some(noun) => *noun,
            None => self.rng.word(&self.all_nouns),
        };
        let mut decorations: Vec<String> = keyword.into_iter().collect();
        if !lead.is_empty() {
            decorations.push(lead.to_string());
        }
        decorations.push(noun.to_string());
        decorations.push(format!("{}期间", self.rng.word(&EVENTS)));
        decorations.push(format!("{}买的{noun}，", self.rng.word(&BUYERS)));
        decorations.push(format!("寄到{}的{noun}，", self.rng.word(&CITIES)));
        let similar = self.fill_similar(&question, candidates, &decorations, None);
        let mut answer = replace_all(&template.answer, event_pairs);
        if !template.internal && self.rng.chance(0.3) {
            answer.push_str("\n\n");
            answer.push_str(self.rng.word(&CLOSINGS));
        }
        Draft { question, similar, answer, internal: template.internal }
    }

    /// `title（suffix）`, with a product noun added to the suffix (then a
    /// number) until no other shop-wide question or title is the same.
    fn unique_title(&mut self, title: &str, suffix: Option<&str>) -> String {
        let with = |extra: &str| match (suffix, extra.is_empty()) {
            (None, true) => title.to_string(),
            (None, false) => format!("{title}（{extra}）"),
            (Some(s), true) => format!("{title}（{s}）"),
            (Some(s), false) => format!("{title}（{s}·{extra}）"),
        };
        let mut candidate = with("");
        for attempt in 0..32 {
            if self.claim(&candidate, None) {
                return candidate;
            }
            let noun = self.rng.word(&self.all_nouns);
            candidate = match suffix {
                None if attempt >= 8 => with(&format!("{}·{noun}", self.rng.word(&EVENTS))),
                _ => with(noun),
            };
        }
        loop {
            let candidate = with(&self.stats.fallback(2).to_string());
            if self.claim(&candidate, None) {
                return candidate;
            }
        }
    }

    /// A random context clause: when, for which product, or whose order.
    /// `wide` picks only from the larger families of clauses, for retries
    /// once the small ones are used up; `platform` allows naming a platform
    /// (only in files for every platform).
    fn context(&mut self, event: Option<&'static str>, wide: bool, platform: bool) -> Context {
        // A file's sales event sets most of its contexts, not all.
        let event = match event {
            Some(e) if self.rng.chance(0.7) => e,
            _ => self.rng.word(&EVENTS),
        };
        let noun = self.rng.word(&self.all_nouns);
        let situation = self.rng.word(&SITUATIONS);
        let buyer = self.rng.word(&BUYERS);
        let city = self.rng.word(&CITIES);
        let form = if wide { self.rng.range(5, 8) } else { self.rng.below(9) };
        let (prefix, keyword) = match form {
            0 => (format!("{event}期间，"), event),
            1 => (format!("买{noun}的话，"), noun),
            2 => (format!("{event}期间买的{noun}，"), noun),
            3 => (format!("{situation}，"), noun),
            4 => (format!("{event}期间{situation}，"), event),
            5 => (format!("{buyer}买的{noun}，"), noun),
            6 => (format!("寄到{city}的{noun}，"), noun),
            7 if platform => (format!("{}店{buyer}买的{noun}，", platform_name(*self.rng.pick(&Platform::ALL))), noun),
            _ => (format!("{situation}，{event}期间买的{noun}，"), noun),
        };
        let keyword = (prefix.contains(keyword)).then(|| keyword.to_string());
        Context { prefix, keyword }
    }

    // -- queries ------------------------------------------------------------

    /// Writes `count` queries to `path` (URL-encoded) and `path.txt` (raw);
    /// returns how many were short, long and no-hit.
    fn write_queries(&mut self, path: &Path, count: usize) -> Result<[usize; 3], String> {
        if self.similars.is_empty() && self.questions.is_empty() {
            return Err("no public phrasings to draw queries from".into());
        }
        let raw_path = PathBuf::from(format!("{}.txt", path.display()));
        let open = |p: &Path| {
            std::fs::File::create(p).map(std::io::BufWriter::new).map_err(|e| format!("{}: {e}", p.display()))
        };
        let mut encoded = open(path)?;
        let mut raw = open(&raw_path)?;
        let mut counts = [0; 3];
        let mut line = String::new();
        for _ in 0..count {
            line.clear();
            let roll = self.rng.below(100);
            if roll < 60 {
                counts[0] += 1;
                self.short_query(&mut line);
            } else if roll < 85 {
                counts[1] += 1;
                self.long_query(&mut line);
            } else {
                counts[2] += 1;
                self.no_hit_query(&mut line);
            }
            let line = clean_line(&line);
            let io = |e: std::io::Error| format!("writing queries: {e}");
            writeln!(raw, "{line}").map_err(io)?;
            writeln!(encoded, "{}", percent_encode(&line)).map_err(io)?;
        }
        encoded.flush().map_err(|e| format!("{}: {e}", path.display()))?;
        raw.flush().map_err(|e| format!("{}: {e}", raw_path.display()))?;
        Ok(counts)
    }

    /// A public phrasing: mostly a 相似问, 30% a standard question.
    fn phrasing(&mut self) -> String {
        self.phrasing_from(0.3)
    }

    fn phrasing_from(&mut self, question_share: f64) -> String {
        let pool = if self.similars.is_empty() || (!self.questions.is_empty() && self.rng.chance(question_share)) {
            &self.questions
        } else {
            &self.similars
        };
        pool[self.rng.below(pool.len())].clone()
    }

    fn short_query(&mut self, line: &mut String) {
        let phrasing = self.phrasing();
        let asks = ["请问", "想问下", "问下"].iter().any(|p| phrasing.starts_with(p));
        match self.rng.below(100) {
            0..25 if !asks => {
                line.push_str(self.rng.word(&SHORT_PREFIXES));
                line.push_str(&phrasing);
            }
            25..45 => {
                line.push_str(strip_end_punct(&phrasing));
                line.push_str(self.rng.word(&SHORT_SUFFIXES));
            }
            _ => line.push_str(&phrasing),
        }
    }

    fn long_query(&mut self, line: &mut String) {
        let noun = self.rng.word(&self.all_nouns);
        let city = self.rng.word(&CITIES);
        line.push_str(self.rng.word(&OPENERS));
        line.push_str(&replace_all(self.rng.word(&LONG_SITUATIONS), &[("{n}", noun), ("{city}", city)]));
        line.push('，');
        // 相似问 only: standard questions carry context clauses of their own.
        line.push_str(strip_end_punct(&self.phrasing_from(0.0)));
        if self.rng.chance(0.35) {
            line.push_str("，还有");
            line.push_str(strip_end_punct(&self.phrasing_from(0.0)));
        }
        line.push('？');
        if self.rng.chance(0.5) {
            line.push_str(self.rng.word(&LONG_TAILS));
        }
    }

    fn no_hit_query(&mut self, line: &mut String) {
        let city = self.rng.word(&CITIES);
        if self.rng.chance(0.3) {
            line.push_str(self.rng.word(&OPENERS));
        }
        line.push_str(&replace_all(self.rng.word(&OFF_TOPIC), &[("{city}", city)]));
        if self.rng.chance(0.4) {
            line.push_str(self.rng.word(&SHORT_SUFFIXES));
        } else {
            line.push('？');
        }
    }
}

/// Values for one filled-in product pattern.
struct Fill {
    v: &'static str,
    v2: &'static str,
    s: &'static str,
    s2: &'static str,
    d: String,
}

impl Fill {
    fn pairs<'p>(&'p self, product: &'p Product<'_>) -> [(&'static str, &'p str); 11] {
        [
            ("{n}", product.noun),
            ("{name}", &product.name),
            ("{sku}", &product.sku),
            ("{v2}", self.v2),
            ("{v}", self.v),
            ("{s2}", self.s2),
            ("{s}", self.s),
            ("{m}", product.material),
            ("{p}", &product.price),
            ("{d}", &self.d),
            ("{label}", product.category.size_label),
        ]
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved set.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
