//! The `kefu` command: parses arguments and hands over to the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kefu::http::{AppState, SearchResponse};
use kefu::index::{self, Refresh, SearchIndex, SharedIndex};
use kefu::model::Platform;
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
    },
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
        Command::Search { query, product, platform, public, limit, json, kb, index } => {
            ensure_index(&kb, &index, false)?;
            let searcher = SearchIndex::open(&index)?;
            let request =
                SearchRequest { query: &query, limit, product: product.as_deref(), platform, public_only: public };
            let response = SearchResponse::new(searcher.search(&request)?);
            if json {
                println!("{}", serde_json::to_string_pretty(&response)?);
            } else {
                print_hits(&response);
            }
            Ok(())
        }
    }
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
    std::fs::create_dir_all(&args.data).with_context(|| format!("cannot create {}", args.data.display()))?;
    ensure_index(&args.kb, &args.index, true)?;
    let index = SearchIndex::open(&args.index)?;
    tracing::info!(entries = index.entries().len(), revision = %index.revision, "index opened");
    let state = AppState::new(SharedIndex::new(index));
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
