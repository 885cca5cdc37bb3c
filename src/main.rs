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

/// Knowledge-base and FAQ search for Chinese e-commerce customer service.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
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
    },
    /// Report FAQ gaps: buyer questions without a good answer, clustered.
    Gaps(GapsArgs),
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
    #[arg(long, env = "KEFU_NO_QUERY_LOG")]
    no_query_log: bool,
    /// Days searches and feedback are kept in the query log.
    #[arg(long, env = "KEFU_RETENTION_DAYS", default_value_t = querylog::DEFAULT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    retention_days: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KEFU_LOG").unwrap_or_else(|_| "info,tantivy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
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

fn run(cli: Cli) -> Result<()> {
    // `kefu` alone is `kefu serve`, with the same environment and defaults.
    let command = match cli.command {
        Some(command) => command,
        None => Cli::parse_from(["kefu", "serve"]).command.context("serve is a subcommand")?,
    };
    match command {
        Command::Index { kb, index } => build_index(&kb, &index),
        Command::Serve(args) => serve(args),
        Command::Search { query, product, platform, public, limit, json, kb, index, data, no_log } => {
            ensure_index(&kb, &index, false)?;
            let searcher = SearchIndex::open(&index)?;
            let request =
                SearchRequest { query: &query, limit, product: product.as_deref(), platform, public_only: public };
            let response = SearchResponse::new(searcher.search(&request)?);
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
    }
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

fn serve(args: ServeArgs) -> Result<()> {
    if !args.addr.ip().is_loopback() {
        bail!(
            "refusing to listen on {}: no access keys are configured, so only a loopback address (127.0.0.1) is allowed",
            args.addr
        );
    }
    ensure_index(&args.kb, &args.index, true)?;
    let index = SearchIndex::open(&args.index)?;
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
    let state = AppState::with_log(SharedIndex::new(index), log);
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
    for (i, hit) in response.hits.iter().enumerate() {
        println!("\n{}. {}  [{}]  score {:.2}", i + 1, hit.question, hit.id, hit.score);
        if hit.matched != hit.question {
            println!("   matched: {}", hit.matched);
        }
        println!("   {}", emphasise(&hit.snippet, &hit.highlights, bold));
        println!("   {}:{}", hit.source.path, hit.source.line);
    }
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
