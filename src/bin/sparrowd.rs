//! `sparrowd`: the daemon. `--config FILE` runs it, `--check-config FILE`
//! validates a config, no argument runs the embedded default (no peers).

#![deny(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sparrow::config::{self, Config, ConfigError, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "sparrowd",
    version,
    about = "BGP-steered authoritative DNS server"
)]
struct Args {
    /// Run with this YAML config (default: the embedded config, no peers).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Validate this config and exit: 0 if valid, 1 with `file:line: key: message` lines if not.
    #[arg(long, value_name = "FILE", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Print the embedded default config and exit.
    #[arg(long)]
    print_default_config: bool,
}

fn print_errors(errs: &[ConfigError]) {
    for e in errs {
        eprintln!("{e}");
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", config::DEFAULT_CONFIG);
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.check_config {
        return match config::load(path) {
            Ok(_) => {
                println!("{}: OK", path.display());
                ExitCode::SUCCESS
            }
            Err(errs) => {
                print_errors(&errs);
                ExitCode::FAILURE
            }
        };
    }
    let cfg: Config = match &args.config {
        Some(path) => match config::load(path) {
            Ok(c) => c,
            Err(errs) => {
                print_errors(&errs);
                return ExitCode::FAILURE;
            }
        },
        None => match config::parse(config::DEFAULT_CONFIG, "<embedded default>") {
            Ok(c) => c,
            Err(errs) => {
                print_errors(&errs);
                return ExitCode::FAILURE;
            }
        },
    };
    match run(cfg, args.config.clone()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sparrowd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config, path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            // hickory-proto (zone data) stays at warnings unless RUST_LOG asks.
            tracing_subscriber::EnvFilter::try_new(format!(
                "{},hickory_proto=warn",
                cfg.logging.level
            ))
        })
        .context("logging.level")?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: logs written to files stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cfg.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(sparrow::daemon::run(cfg, path))?;
    Ok(())
}
