//! The `kefu` command: parses arguments and hands over to the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kefu::gaps::{self, ReportRequest, StatusFilter};
use kefu::http::{AppState, SearchResponse};
use kefu::index::{self, Refresh, SearchIndex, SharedIndex};
use kefu::model::Platform;
use kefu::querylog::{self, QueryLog, SearchEvent, Source, Store};
use kefu::search::SearchRequest;

/// glibc's allocator fragments under kefu's pattern (hundreds of thousands of
/// small strings and vectors while loading, then tantivy's indexing threads):
/// building a 100k-entry index spent a fifth of its time in `malloc`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Knowledge-base and FAQ search for Chinese e-commerce customer service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Log lines for people (`text`) or one JSON object per line (`json`),
    /// with the request's route and id, for a log collector.
    #[arg(long, global = true, env = "KEFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Query-understanding techniques to turn off, comma-separated:
    /// clauses, pinyin, typos, mixed_script, domain_vocab (or all). An index
    /// built with other settings is rebuilt by `serve` and `search`.
    #[arg(long, global = true, env = "KEFU_DISABLE", default_value = "")]
    disable: String,
    /// Settings file: access keys, rate limits, `[query]` techniques and
    /// `[semantic]` ranking. Default: kefu.toml in the current folder if
    /// there is one.
    #[arg(long, global = true, env = "KEFU_CONFIG")]
    config: Option<PathBuf>,
    /// The sentence-encoder model folder (default: model/use-multilingual-v3,
    /// where scripts/fetch-model puts it). Without a model kefu ranks
    /// lexically only.
    #[arg(long, global = true, env = "KEFU_MODEL")]
    model: Option<PathBuf>,
    /// Rank lexically only, even if a model is there.
    #[arg(long, global = true, env = "KEFU_NO_MODEL", value_parser = clap::builder::BoolishValueParser::new())]
    no_model: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Build the search index from the knowledge base (aside, then swapped in).
    Index {
        /// Knowledge-base folder.
        #[arg(long, env = "KEFU_KB", default_value = "kb")]
        kb: PathBuf,
        /// Index folder.
        #[arg(long, env = "KEFU_INDEX", default_value = "index")]
        index: PathBuf,
    },
    /// Serve the HTTP API; builds the index first if it is missing or stale.
    Serve(ServeArgs),
    /// Search from the terminal, with the same ranking as the HTTP API.
    Search {
        /// The buyer's question.
        query: String,
        /// Only this product's entries and shop-wide ones.
        #[arg(long)]
        product: Option<String>,
        /// Only entries for this platform (taobao, tmall, jd, pdd) and platform-neutral ones.
        #[arg(long)]
        platform: Option<Platform>,
        /// Only public entries, as a buyer would see them.
        #[arg(long)]
        public: bool,
        /// How many hits to show.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print the HTTP API's JSON instead of text.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "KEFU_KB", default_value = "kb")]
        kb: PathBuf,
        #[arg(long, env = "KEFU_INDEX", default_value = "index")]
        index: PathBuf,
        /// Folder of the query log; the search is recorded with source `cli`.
        #[arg(long, env = "KEFU_DATA", default_value = "data")]
        data: PathBuf,
        /// Do not record this search in the query log.
        #[arg(long)]
        no_log: bool,
        /// Show how the query was understood (clauses, tokens, corrections,
        /// synonyms, pinyin) and why the top hit scored.
        #[arg(long)]
        explain: bool,
    },
    /// Report FAQ gaps: buyer questions without a good answer, clustered.
    Gaps(GapsArgs),
    /// Validate the knowledge base (and golden queries); non-zero exit on errors.
    Check(CheckArgs),
    /// Show which queries change their answer between the served index and the edited kb/.
    Preview(PreviewArgs),
    /// Issue access keys for kefu.toml.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(clap::Args)]
struct CheckArgs {
    #[arg(long, env = "KEFU_KB", default_value = "kb")]
    kb: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
    /// Golden queries (JSON Lines) whose expected entry must be the top hit.
    /// Defaults to `golden.jsonl` in the knowledge base when it exists.
    #[arg(long)]
    golden: Option<PathBuf>,
    /// Do not run the knowledge base's own golden.jsonl.
    #[arg(long, conflicts_with = "golden")]
    no_golden: bool,
    /// Fail on warnings too.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CheckFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct PreviewArgs {
    /// The edited knowledge base.
    #[arg(long, env = "KEFU_KB", default_value = "kb")]
    kb: PathBuf,
    /// The index being served (compared against).
    #[arg(long, env = "KEFU_INDEX", default_value = "index")]
    index: PathBuf,
    /// Golden queries to run; defaults to `golden.jsonl` in the knowledge base.
    #[arg(long)]
    golden: Option<PathBuf>,
    /// Also run the questions buyers asked in the last `--days` days (query log).
    #[arg(long)]
    from_log: bool,
    /// Days of the query log to use with `--from-log`.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Most distinct logged questions to run (most asked first).
    #[arg(long, default_value_t = 2000)]
    max_questions: usize,
    #[arg(long, env = "KEFU_DATA", default_value = "data")]
    data: PathBuf,
    /// Preview as of this time (`2026-11-11 20:00`, China time), for time-limited entries.
    #[arg(long)]
    at: Option<String>,
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    format: CheckFormat,
}

#[derive(clap::Args)]
struct GapsArgs {
    /// The last N days (default 30).
    #[arg(long, conflicts_with = "since")]
    days: Option<u32>,
    /// From this day (2026-11-01, China time) or time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Up to the end of this day, or this time.
    #[arg(long)]
    until: Option<String>,
    /// Only questions asked about this product.
    #[arg(long)]
    product: Option<String>,
    /// Only questions asked on this platform.
    #[arg(long)]
    platform: Option<Platform>,
    /// Only questions from this source (widget, agent, api, cli).
    #[arg(long)]
    source: Option<Source>,
    /// Which clusters: open, resolved or all.
    #[arg(long, default_value = "all")]
    status: StatusFilter,
    /// Most clusters shown.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    #[arg(long, env = "KEFU_KB", default_value = "kb")]
    kb: PathBuf,
    #[arg(long, env = "KEFU_INDEX", default_value = "index")]
    index: PathBuf,
    #[arg(long, env = "KEFU_DATA", default_value = "data")]
    data: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
    Md,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Make a new secret and print it with the `[[keys]]` block for kefu.toml.
    /// The secret is shown once; kefu.toml keeps only its hash.
    New {
        /// Who holds the key, e.g. `tmall-widget` or `agents`.
        #[arg(long)]
        name: String,
        /// public (product pages), agent or admin.
        #[arg(long, value_parser = ["public", "agent", "admin"])]
        role: String,
        /// For public keys: a page origin allowed to use it (repeatable),
        /// e.g. https://shop.example.com.
        #[arg(long = "origin")]
        origins: Vec<String>,
    },
    /// Print the secret_sha256 of a secret read from standard input.
    Hash,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Knowledge-base folder.
    #[arg(long, env = "KEFU_KB", default_value = "kb")]
    kb: PathBuf,
    /// Index folder.
    #[arg(long, env = "KEFU_INDEX", default_value = "index")]
    index: PathBuf,
    /// Folder for kefu's own data (query log).
    #[arg(long, env = "KEFU_DATA", default_value = "data")]
    data: PathBuf,
    /// Address to listen on. Without access keys only loopback is allowed.
    #[arg(long, env = "KEFU_ADDR", default_value = "127.0.0.1:7700")]
    addr: SocketAddr,
    /// Do not record searches (no gap report, no feedback).
    #[arg(long, env = "KEFU_NO_QUERY_LOG", value_parser = clap::builder::BoolishValueParser::new())]
    no_query_log: bool,
    /// Do not watch kb/ for changes (`POST /v1/admin/reload` still reloads).
    #[arg(long, env = "KEFU_NO_WATCH", value_parser = clap::builder::BoolishValueParser::new())]
    no_watch: bool,
    /// Days searches and feedback are kept in the query log.
    #[arg(long, env = "KEFU_RETENTION_DAYS", default_value_t = querylog::DEFAULT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    retention_days: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEFU_LOG").unwrap_or_else(|_| "info,tantivy=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line: the event's fields at the top level, and the
        // enclosing request span (route, request_id) under "span".
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> Result<()> {
    // `kefu` alone is `kefu serve`, with the same environment and defaults.
    let command = match cli.command.take() {
        Some(command) => command,
        None => Cli::parse_from(["kefu", "serve"]).command.context("serve is a subcommand")?,
    };
    let config = load_config(cli.config.as_deref())?;
    // Flags and environment win over kefu.toml, which wins over defaults.
    let options = if cli.disable.trim().is_empty() {
        config.query.unwrap_or_default()
    } else {
        kefu::analysis::QueryOptions::disabling(&cli.disable)?
    };
    options.install();
    let ranking = kefu::search::Ranking { semantic: config.semantic.weight, ..Default::default() };
    if !matches!(command, Command::Keys(_)) {
        install_encoder(&cli, &config.semantic);
    }
    match command {
        Command::Index { kb, index } => build_index(&kb, &index),
        Command::Serve(args) => serve(args, &config, ranking),
        Command::Search { query, product, platform, public, limit, json, kb, index, data, no_log, explain } => {
            ensure_index(&kb, &index, false)?;
            let searcher = SearchIndex::open(&index)?;
            let request = SearchRequest {
                limit,
                product: product.as_deref(),
                platform,
                public_only: public,
                ..SearchRequest::new(&query)
            };
            let results = searcher.search_with(&request, &ranking)?;
            let evidence = results.evidence.clone();
            let mut response = SearchResponse::new(results);
            if explain {
                response.explain = evidence;
            }
            if !no_log {
                // A terminal search is a question too; a broken log must not stop it.
                match QueryLog::open(&data, querylog::Options::default()) {
                    Ok(log) => {
                        log.record_search(SearchEvent {
                            query_id: response.query_id.clone(),
                            at_ms: querylog::now_ms(),
                            source: Source::Cli,
                            query: query.clone(),
                            product: product.clone(),
                            platform,
                            public_only: public,
                            hits: response.hits.iter().map(|h| (h.id.clone(), h.score)).collect(),
                            confidence: response.confidence,
                            latency_us: (response.took_ms * 1000.0) as u64,
                            revision: searcher.revision.clone(),
                        });
                        log.shutdown();
                    }
                    Err(err) => tracing::warn!("search not logged: {err}"),
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&response)?);
            } else {
                print_hits(&response);
            }
            Ok(())
        }
        Command::Gaps(args) => report_gaps(args),
        Command::Check(args) => check(args),
        Command::Preview(args) => preview(args),
        Command::Keys(command) => keys(command),
    }
}

/// The golden file to use: the one named, or the knowledge base's own.
fn golden_path(kb: &Path, named: Option<PathBuf>) -> Option<PathBuf> {
    named.or_else(|| Some(kb.join("golden.jsonl")).filter(|p| p.is_file()))
}

/// Builds `kb` into a throw-away index, leaving the served one alone.
fn scratch_index(kb: &kefu::kb::KnowledgeBase) -> Result<(tempfile::TempDir, SearchIndex)> {
    let dir = tempfile::Builder::new().prefix("kefu-preview-").tempdir().context("cannot create a temp dir")?;
    let report = index::build(kb, dir.path(), &|_, _| {})?;
    let index = SearchIndex::open_generation(dir.path(), &report.revision)?;
    Ok((dir, index))
}

fn check(args: CheckArgs) -> Result<()> {
    let checked = kefu::kb::check(&args.kb, jiff::Timestamp::now())?;
    let mut diagnostics = checked.diagnostics.clone();
    let golden = if args.no_golden { None } else { golden_path(&args.kb, args.golden) };
    let mut golden_summary = None;
    if let (Some(path), Some(kb)) = (&golden, &checked.kb) {
        match kefu::preview::load_golden(path) {
            Ok(queries) => {
                let (_dir, index) = scratch_index(kb)?;
                let answers = kefu::preview::run(&index, &queries, None)?;
                let failures = kefu::preview::failures(path, &index, &queries, &answers);
                let expected = queries.iter().filter(|q| q.expect.is_some()).count();
                golden_summary = Some(serde_json::json!({
                    "file": path.display().to_string(),
                    "queries": expected,
                    "passed": expected - failures.len(),
                    "failed": failures.len(),
                }));
                diagnostics.extend(failures);
            }
            Err(kefu::preview::GoldenError::Invalid(problems)) => diagnostics.extend(problems),
            Err(err) => return Err(err.into()),
        }
    }
    let errors = diagnostics.iter().filter(|d| d.severity == kefu::kb::Severity::Error).count();
    let warnings = diagnostics.len() - errors;
    match args.format {
        CheckFormat::Json => {
            let out = serde_json::json!({
                "ok": errors == 0 && !(args.strict && warnings > 0),
                "kb": args.kb.display().to_string(),
                "files": checked.files,
                "entries": checked.entries,
                "errors": errors,
                "warnings": warnings,
                "diagnostics": diagnostics,
                "golden": golden_summary,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        CheckFormat::Text => {
            for d in &diagnostics {
                println!("{}", d.render());
            }
            let mut summary = format!(
                "{}: {} files, {} entries: {errors} error(s), {warnings} warning(s)",
                args.kb.display(),
                checked.files,
                checked.entries
            );
            match (&golden, &golden_summary) {
                (_, Some(g)) => {
                    summary.push_str(&format!("; golden queries: {} of {} pass", g["passed"], g["queries"]))
                }
                (Some(_), None) => summary.push_str("; golden queries not run until the errors are fixed"),
                _ => {}
            }
            println!("{summary}");
        }
    }
    if errors > 0 {
        bail!("check failed: {errors} error(s)");
    }
    if args.strict && warnings > 0 {
        bail!("check failed: {warnings} warning(s) with --strict");
    }
    Ok(())
}

fn preview(args: PreviewArgs) -> Result<()> {
    use kefu::preview::{self as pv, GoldenQuery};
    let at = match &args.at {
        Some(text) => Some(kefu::kb::front_matter::parse_time(text, false).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let before = SearchIndex::open(&args.index)
        .with_context(|| format!("no served index in {} to compare with", args.index.display()))?;
    let kb = kefu::kb::load(&args.kb)?;
    let (_dir, after) = scratch_index(&kb)?;
    let mut queries: Vec<GoldenQuery> = Vec::new();
    if let Some(path) = golden_path(&args.kb, args.golden) {
        queries.extend(pv::load_golden(&path)?);
    }
    if args.from_log {
        let store = Store::open_existing(&args.data)?;
        let now = querylog::now_ms();
        let filter = querylog::Filter {
            since_ms: now - i64::from(args.days) * 86_400_000,
            until_ms: now,
            product: None,
            platform: None,
            source: None,
        };
        let all = [kefu::model::Confidence::High, kefu::model::Confidence::Low, kefu::model::Confidence::None];
        let mut rows = store.questions(&filter, &all)?;
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_ms.cmp(&a.last_ms)));
        rows.truncate(args.max_questions);
        queries.extend(rows.into_iter().map(|row| GoldenQuery {
            line: 0,
            query: row.query,
            expect: None,
            product: row.product,
            platform: row.platform.and_then(|p| p.parse().ok()),
            public: false,
            weight: row.count,
        }));
    }
    if queries.is_empty() {
        bail!("nothing to preview: give --golden FILE, add golden.jsonl to the knowledge base, or use --from-log");
    }
    let answers_before = pv::run(&before, &queries, at)?;
    let answers_after = pv::run(&after, &queries, at)?;
    let result = pv::compare(&queries, &answers_before, &answers_after);
    match args.format {
        CheckFormat::Json => {
            let out = serde_json::json!({
                "served": { "revision": before.revision, "entries": before.entries().len() },
                "edited": { "kb": args.kb.display().to_string(), "entries": after.entries().len() },
                "at": at.map(|t| t.to_string()),
                "preview": result,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        CheckFormat::Text => {
            println!(
                "Comparing {} (edited, {} entries) with the served index {} ({} entries){}.",
                args.kb.display(),
                after.entries().len(),
                before.revision,
                before.entries().len(),
                at.map(|t| format!(" as of {} China time", kefu::kb::front_matter::china(t))).unwrap_or_default()
            );
            print!("{}", pv::render_text(&result, "served", "edited"));
        }
    }
    Ok(())
}

fn report_gaps(args: GapsArgs) -> Result<()> {
    let (since_ms, until_ms) =
        gaps::window(querylog::now_ms(), args.days, args.since.as_deref(), args.until.as_deref())?;
    let store = Store::open_existing(&args.data)?;
    ensure_index(&args.kb, &args.index, false)?;
    let index = SearchIndex::open(&args.index)?;
    let filter = querylog::Filter {
        since_ms,
        until_ms,
        product: args.product,
        platform: args.platform.map(|p| p.as_str().to_string()),
        source: args.source,
    };
    let request = ReportRequest { status: args.status, limit: args.limit, ..ReportRequest::new(filter) };
    let report = gaps::report(&store, &index, &request, querylog::now_ms())?;
    let text = match args.format {
        Format::Table => gaps::render::table(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
        Format::Csv => gaps::render::csv(&report),
        Format::Md => gaps::render::markdown(&report),
    };
    print!("{text}");
    Ok(())
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} entries") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("indexing");
    bar
}

fn build_index(kb: &Path, index_dir: &Path) -> Result<()> {
    let loaded = kefu::kb::load(kb)?;
    // A few warnings are useful here; all of them are `kefu check`'s job.
    for warning in loaded.warnings.iter().take(10) {
        eprintln!("{}", warning.render());
    }
    if loaded.warnings.len() > 10 {
        eprintln!("… and {} more warnings: run `kefu check` to see them all", loaded.warnings.len() - 10);
    }
    let bar = progress_bar();
    let report = index::build(&loaded, index_dir, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    eprintln!(
        "indexed {} entries ({} phrasings) in {} ms → {}",
        report.manifest.entries,
        report.manifest.phrasings,
        report.manifest.build_ms,
        index_dir.join(&report.revision).display()
    );
    Ok(())
}

/// Builds the index when missing or stale. An invalid knowledge base keeps
/// the last good index serving, with the errors logged.
fn ensure_index(kb: &Path, index_dir: &Path, show_progress: bool) -> Result<()> {
    let bar = if show_progress { progress_bar() } else { ProgressBar::hidden() };
    let outcome = index::refresh(kb, index_dir, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("cannot build an index of {}", kb.display()))?;
    bar.finish_and_clear();
    match outcome {
        Refresh::UpToDate => {}
        Refresh::Built(report) => tracing::info!(
            entries = report.manifest.entries,
            build_ms = report.manifest.build_ms,
            revision = %report.revision,
            "index built"
        ),
        Refresh::KeptLastGood(err) => {
            tracing::error!("{err}");
            tracing::warn!("serving the last good index until the knowledge base is fixed");
        }
    }
    Ok(())
}

/// `--config`, else `kefu.toml` if present, else no keys (local mode).
fn load_config(path: Option<&Path>) -> Result<kefu::config::Config> {
    let default = Path::new("kefu.toml");
    match path {
        Some(path) => Ok(kefu::config::Config::load(path)?),
        None if default.exists() => Ok(kefu::config::Config::load(default)?),
        None => Ok(kefu::config::Config::default()),
    }
}

fn keys(command: KeysCommand) -> Result<()> {
    use kefu::config::{hash_secret, new_secret, Role};
    match command {
        KeysCommand::New { name, role, origins } => {
            let role = match role.as_str() {
                "public" => Role::Public,
                "agent" => Role::Agent,
                _ => Role::Admin,
            };
            if role != Role::Public && !origins.is_empty() {
                bail!("--origin is for public keys only: agent and admin keys must never be in a web page");
            }
            let secret = new_secret(role).context("cannot read random bytes for the secret")?;
            // Validate the block exactly as the server will read it.
            let block = format!(
                "[[keys]]\nname = {}\nrole = \"{}\"\nsecret_sha256 = \"{}\"\n{}",
                toml_string(&name),
                role.as_str(),
                hash_secret(&secret),
                if origins.is_empty() {
                    String::new()
                } else {
                    let list: Vec<String> = origins.iter().map(|o| toml_string(o)).collect();
                    format!("origins = [{}]\n", list.join(", "))
                }
            );
            kefu::config::Config::parse(&block, Path::new("(new key)"))?;
            eprintln!("secret (shown once; give it to the key's holder, it is not stored anywhere):");
            println!("{secret}");
            eprintln!("\nadd to kefu.toml:\n");
            eprint!("{block}");
            Ok(())
        }
        KeysCommand::Hash => {
            let mut secret = String::new();
            std::io::stdin().read_line(&mut secret).context("cannot read the secret from standard input")?;
            if secret.trim().is_empty() {
                bail!("no secret on standard input");
            }
            println!("{}", hash_secret(&secret));
            Ok(())
        }
    }
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// Loads the sentence encoder unless told not to; without one (no model
/// folder, a broken file) kefu ranks lexically and says why.
fn install_encoder(cli: &Cli, settings: &kefu::config::SemanticSettings) {
    use kefu::semantic::{Encoder, Mode};
    let dir = cli.model.clone().or_else(|| settings.model.clone()).unwrap_or_else(kefu::semantic::default_model_dir);
    let mode = if cli.no_model || !settings.enabled {
        Mode::Off("semantic ranking is switched off (--no-model or [semantic] enabled = false)".into())
    } else if !dir.join("weights.npz").exists() {
        Mode::Off(format!("no model in {} (run scripts/fetch-model)", dir.display()))
    } else {
        let started = std::time::Instant::now();
        match Encoder::load(&dir) {
            Ok(encoder) => {
                tracing::info!(
                    model = encoder.model_id(),
                    ms = started.elapsed().as_millis() as u64,
                    "sentence encoder loaded"
                );
                Mode::On(std::sync::Arc::new(encoder))
            }
            Err(err) => Mode::Off(format!("cannot load the model: {err}")),
        }
    };
    if let Mode::Off(reason) = &mode {
        tracing::info!("lexical ranking only: {reason}");
    }
    kefu::semantic::install(mode);
}

fn serve(args: ServeArgs, config: &kefu::config::Config, ranking: kefu::search::Ranking) -> Result<()> {
    if !args.addr.ip().is_loopback() && !config.has_keys() {
        bail!(
            "refusing to listen on {}: no access keys are configured, so only a loopback address (127.0.0.1) is allowed",
            args.addr
        );
    }
    if config.has_keys() {
        tracing::info!(keys = config.keys.len(), "access keys required");
    } else {
        tracing::info!("no access keys: local mode, every caller has full access (loopback only)");
    }
    // Without a usable index, build one before serving (an invalid kb/ is
    // then fatal: there is nothing to fall back on). With one, serve it and
    // let the reloader bring it up to date or report why it cannot.
    if SearchIndex::open(&args.index).is_err() {
        ensure_index(&args.kb, &args.index, true)?;
    }
    let index = match SearchIndex::open(&args.index) {
        Ok(index) => index,
        // The current generation is up to date with kb/ but damaged (a
        // truncated file, a disk error): build a new one rather than refuse
        // to start. The kb/ is the source; the index can always be rebuilt.
        Err(err) => {
            tracing::warn!("{err}; rebuilding the index from {}", args.kb.display());
            let kb = kefu::kb::load(&args.kb).with_context(|| format!("cannot rebuild from {}", args.kb.display()))?;
            index::build(&kb, &args.index, &|_, _| {})?;
            SearchIndex::open(&args.index)?
        }
    };
    tracing::info!(entries = index.entries().len(), revision = %index.revision, "index opened");
    let log = if args.no_query_log {
        tracing::info!("query log off: no gap report, no feedback");
        QueryLog::disabled()
    } else {
        let options = querylog::Options {
            retention: std::time::Duration::from_secs(u64::from(args.retention_days) * 86_400),
            ..querylog::Options::default()
        };
        let log = QueryLog::open(&args.data, options)
            .with_context(|| format!("cannot open the query log in {}", args.data.display()))?;
        tracing::info!(data = %args.data.display(), retention_days = args.retention_days, "query log on");
        log
    };
    let state =
        AppState::with_log(SharedIndex::new(index), log).with_reloader(&args.kb, &args.index).with_access(config);
    let state = AppState { ranking: std::sync::Arc::new(ranking), ..state };
    let reloader = state.reloader.clone().context("reloader")?;
    if let kefu::reload::Outcome::Unchanged { .. } = reloader.reload("start") {
        // The served index is current: report the warnings saved with it.
        if let Some(saved) = state.index.current().build_warnings(&args.index) {
            reloader.set_warnings(saved.count, saved.first);
        }
    }
    let _watch = if args.no_watch {
        tracing::info!("not watching kb/; POST /v1/admin/reload to reload");
        None
    } else {
        tracing::info!(kb = %args.kb.display(), "watching kb/ for changes");
        Some(reloader.watch())
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        tracing::info!(addr = %listener.local_addr()?, "kefu serving");
        kefu::http::run(listener, state, shutdown_signal()).await?;
        tracing::info!("kefu stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn print_hits(response: &SearchResponse) {
    let bold = std::io::stdout().is_terminal();
    println!("confidence: {}  ({} hits, {} ms)", response.confidence.as_str(), response.hits.len(), response.took_ms);
    if let Some(explain) = &response.explain {
        print_explain(explain);
    }
    for (i, hit) in response.hits.iter().enumerate() {
        println!("\n{}. {}  [{}]  score {:.2}", i + 1, hit.question, hit.id, hit.score);
        if hit.matched != hit.question {
            println!("   matched: {}", hit.matched);
        }
        println!("   {}", emphasise(&hit.snippet, &hit.highlights, bold));
        println!("   {}:{}", hit.source.path, hit.source.line);
    }
}

/// `kefu search --explain`: how the query was understood and why the top hit scored.
fn print_explain(e: &kefu::search::Evidence) {
    if let Some(u) = &e.understanding {
        println!("understood: {}", u.normalized);
        for c in &u.clauses {
            println!("  clause ({:?}): {}", c.role, c.text.trim());
        }
        for a in &u.attributes {
            println!("  attribute {:?}: {}", a.kind, a.text);
        }
        for p in &u.pinyin {
            println!("  pinyin {} → {}{}", p.latin, p.words.join(" "), if p.slip { " (slip corrected)" } else { "" });
        }
        for c in &u.corrections {
            println!("  typo {} → {}", c.from, c.to);
        }
        for c in &u.synonyms {
            println!("  synonym {} → {}", c.from, c.to);
        }
        let terms: Vec<String> = u.terms.iter().map(|(t, w)| format!("{t}×{w:.1}")).collect();
        println!("  words: {}", terms.join(" "));
    }
    println!(
        "top hit: phrasing {:.2} + body {:.2}; matched {}; query coverage {:.2}, match coverage {:.2}, margin {:.2}",
        e.phrasing_score,
        e.body_score,
        e.matched_terms.join(" "),
        e.query_coverage,
        e.match_coverage,
        e.margin
    );
}

/// Marks the highlighted character ranges of a snippet in bold on a terminal.
fn emphasise(snippet: &str, highlights: &[[usize; 2]], bold: bool) -> String {
    if !bold || highlights.is_empty() {
        return snippet.to_string();
    }
    let mut out = String::with_capacity(snippet.len() + highlights.len() * 8);
    for (i, c) in snippet.chars().enumerate() {
        if highlights.iter().any(|h| h[0] == i) {
            out.push_str("\x1b[1m");
        }
        out.push(c);
        if highlights.iter().any(|h| h[1] == i + 1) {
            out.push_str("\x1b[0m");
        }
    }
    out
}
