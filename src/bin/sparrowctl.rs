//! `sparrowctl`: admin client for sparrowd's Unix socket.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde_json::Value;
use sparrow::admin::{self, Request};
use sparrow::config;
use sparrow::render;

#[derive(Parser, Debug)]
#[command(
    name = "sparrowctl",
    version,
    about = "Inspect and control a running sparrowd",
    after_help = "Drains, forced states and manual loads are saved by sparrowd in its \
admin.state_file and survive a restart; each reply says whether the state was saved."
)]
struct Args {
    /// Admin socket of the daemon (its `admin.socket`; the embedded default
    /// config, for use without root, has /tmp/sparrow.sock).
    #[arg(
        long,
        short = 's',
        env = "SPARROW_SOCKET",
        default_value = config::DEFAULT_ADMIN_SOCKET
    )]
    socket: PathBuf,
    /// Print the daemon's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Sessions: state, uptime, prefixes received and accepted per family, last error.
    Peers,
    /// Longest match for an address (or exactly a prefix) with every path, best first.
    Route {
        /// An address (longest match) or a prefix (exact).
        target: String,
    },
    /// Prefix and path counts, attribute sets, memory.
    Summary,
    /// Total number of paths held (one integer).
    Paths,
    /// Every path, one JSON object per line.
    Dump,
    /// Reset a peer's session (Cease / Administrative Reset).
    Reset { peer: String },
    /// Re-read the config file (as SIGHUP does): zones are applied live; a file
    /// with any error is rejected whole (errors printed, running config kept);
    /// changed sections that need a restart are listed.
    Reload,
    /// Why an address gets its POP: matched prefix, best path, POP ASN, ranking
    /// (down and drained POPs marked), generation, and what each steered name answers.
    Explain {
        /// An IPv4 or IPv6 address.
        address: String,
        /// Only what this query name answers, and the wildcard it matches.
        name: Option<String>,
    },
    /// Read addresses on stdin, write the chosen POP per line, unbuffered
    /// (Apache RewriteMap `prg:` style; `NULL` for a line that is not an address).
    Lookup,
    /// Every POP: ASN, local, up, forced, drained, load and watermarks, and
    /// whether answers may use it.
    Pops,
    /// Health checks: every checked target (POP, address, up/down, forced
    /// state) with each check's last result, state, consecutive count and
    /// time since its last change; then every POP's load figures.
    Health,
    /// Anycast prefixes (`announce`): state (up, withdrawn, prepended,
    /// grace), why, time since the last change, and the peers that have it.
    Announcements,
    /// Stop answering with a POP: steered names answer with the next usable POP
    /// of each client's ranking (the ranking itself does not change).
    ///
    /// Saved in the daemon's state file: survives a restart.
    Drain {
        /// A POP name from the config's `pops`.
        pop: String,
    },
    /// Answer with a drained POP again (saved in the state file).
    Undrain {
        /// A POP name from the config's `pops`.
        pop: String,
    },
    /// Force a POP, or one of its answer addresses (POP/ADDR), up or down
    /// whatever checks and sessions say, or back to auto (saved in the state file).
    Force {
        /// POP, or POP/ADDRESS (an address of its steered records).
        target: String,
        /// up, down or auto.
        #[arg(value_parser = ["up", "down", "auto"])]
        state: String,
    },
    /// Set a POP's load figure (0 to 1), or `auto` to use the measured one
    /// again (saved in the state file). From `low` on a fraction of its
    /// clients move to their next POP; at `high` it counts as drained.
    Load {
        /// A POP name from the config's `pops`.
        pop: String,
        /// A number from 0 to 1, or `auto`.
        value: String,
    },
}

/// Who runs this (logged by the daemon with drains): the sudo user, else the user.
fn operator() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// What a failed request names: the socket and, when it does not exist,
/// where the daemon's socket may be.
fn socket_context(socket: &Path) -> String {
    if socket.exists() {
        return format!("admin socket {}", socket.display());
    }
    format!(
        "admin socket {} does not exist: is sparrowd running with this admin.socket? \
Give its path with --socket or $SPARROW_SOCKET (the embedded default config uses /tmp/sparrow.sock)",
        socket.display()
    )
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sparrowctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let req = match &args.cmd {
        Cmd::Peers => Request::Peers,
        Cmd::Route { target } => Request::Route {
            target: target.clone(),
            exact: false,
        },
        Cmd::Summary => Request::Summary,
        Cmd::Paths => Request::Paths,
        Cmd::Dump => Request::Dump,
        Cmd::Reset { peer } => Request::Reset { peer: peer.clone() },
        Cmd::Reload => Request::Reload,
        Cmd::Explain { address, name } => Request::Explain {
            target: address.clone(),
            name: name.clone(),
        },
        Cmd::Lookup => Request::Lookup,
        Cmd::Pops => Request::Pops,
        Cmd::Health => Request::Health,
        Cmd::Announcements => Request::Announcements,
        Cmd::Drain { pop } => Request::Drain {
            pop: pop.clone(),
            by: operator(),
        },
        Cmd::Undrain { pop } => Request::Undrain {
            pop: pop.clone(),
            by: operator(),
        },
        Cmd::Force { target, state } => {
            let (pop, address) = match target.split_once('/') {
                Some((p, a)) => (p.to_string(), Some(a.to_string())),
                None => (target.clone(), None),
            };
            Request::Force {
                pop,
                address,
                state: match state.as_str() {
                    "up" => sparrow::pops::Force::Up,
                    "down" => sparrow::pops::Force::Down,
                    _ => sparrow::pops::Force::Auto,
                },
                by: operator(),
            }
        }
        Cmd::Load { pop, value } => Request::Load {
            pop: pop.clone(),
            load: match value.as_str() {
                "auto" => None,
                v => Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|l| (0.0..=1.0).contains(l))
                        .with_context(|| {
                            format!("load {v:?}: give a number from 0 to 1, or auto")
                        })?,
                ),
            },
            by: operator(),
        },
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Cmd::Lookup = args.cmd {
        return rt
            .block_on(lookup(&args.socket))
            .with_context(|| socket_context(&args.socket));
    }
    if let Cmd::Dump = args.cmd {
        return rt
            .block_on(dump(&args.socket, &req))
            .with_context(|| socket_context(&args.socket));
    }
    let reply = rt
        .block_on(admin::request(&args.socket, &req))
        .with_context(|| socket_context(&args.socket))?;
    let v: Value = serde_json::from_str(reply.trim()).context("reply is not JSON")?;
    if v["ok"] != Value::Bool(true) {
        bail!("{}", v["error"].as_str().unwrap_or("error"));
    }
    let data = &v["data"];
    if args.json {
        println!("{}", serde_json::to_string_pretty(data)?);
        return Ok(());
    }
    let text = match args.cmd {
        Cmd::Peers => render::peers(&typed(data)?),
        Cmd::Route { .. } => render::route(&typed(data)?),
        Cmd::Summary => render::summary(&typed(data)?),
        Cmd::Paths => format!("{data}\n"),
        Cmd::Reset { peer } => format!("reset {peer}\n"),
        Cmd::Reload => render::reload(&typed(data)?),
        Cmd::Explain { .. } => render::explain(&typed(data)?),
        Cmd::Pops => render::pops(&typed(data)?),
        Cmd::Health => render::health(&typed(data)?),
        Cmd::Announcements => render::announce::announcements(&typed(data)?),
        Cmd::Drain { .. } | Cmd::Undrain { .. } => render::drain(&typed(data)?),
        Cmd::Force { .. } => render::force(&typed(data)?),
        Cmd::Load { .. } => render::load(&typed(data)?),
        Cmd::Dump | Cmd::Lookup => unreachable!("handled above"),
    };
    print!("{text}");
    Ok(())
}

/// The reply's `data` as its type (`sparrow::admin::reply`).
fn typed<T: serde::de::DeserializeOwned>(data: &Value) -> anyhow::Result<T> {
    T::deserialize(data).context("unexpected reply from the daemon")
}

/// Copy the dump's JSON lines to stdout as they arrive (a full table is never
/// held here either); an `{"ok":false,...}` line is the daemon's error.
async fn dump(socket: &std::path::Path, req: &Request) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
    let mut stream = tokio::net::UnixStream::connect(socket).await?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    let mut rd = BufReader::with_capacity(1 << 16, stream);
    let mut stdout = BufWriter::with_capacity(1 << 16, tokio::io::stdout());
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if rd.read_until(b'\n', &mut buf).await? == 0 {
            break;
        }
        if buf.starts_with(b"{\"ok\":false") {
            stdout.flush().await?;
            let v: Value = serde_json::from_slice(&buf)?;
            bail!("{}", v["error"].as_str().unwrap_or("error"));
        }
        stdout.write_all(&buf).await?;
    }
    stdout.flush().await?;
    Ok(())
}

/// Copy stdin lines to the daemon and its answers to stdout, one line each, flushed.
async fn lookup(socket: &std::path::Path) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let stream = tokio::net::UnixStream::connect(socket).await?;
    let (rd, mut wr) = stream.into_split();
    wr.write_all(b"{\"cmd\":\"lookup\"}\n").await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut answers = BufReader::new(rd).lines();
    let mut stdout = tokio::io::stdout();
    // One request in flight at a time: a RewriteMap program must answer each line
    // before the next is read.
    while let Some(mut line) = stdin.next_line().await? {
        line.push('\n');
        wr.write_all(line.as_bytes()).await?;
        let Some(mut answer) = answers.next_line().await? else {
            bail!("daemon closed the lookup stream");
        };
        answer.push('\n');
        stdout.write_all(answer.as_bytes()).await?;
        stdout.flush().await?;
    }
    Ok(())
}
