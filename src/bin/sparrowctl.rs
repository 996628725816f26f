//! `sparrowctl`: admin client for sparrowd's Unix socket, plus `ready`, a
//! GET of the daemon's `/readyz` (HTTP, no socket) for container health checks.

#![deny(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use serde_json::Value;
use sparrow::admin::{self, Request};
use sparrow::config;
use sparrow::health::{http_get, split_url, HttpGet, HttpResponse};
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
    /// Ask the daemon's metrics endpoint whether it is ready: one HTTP GET of
    /// `--url`; the body (the reasons when not ready) is printed. Exit 0 on
    /// 200, 1 on any other status or error. Uses no admin socket: it is the
    /// container image's HEALTHCHECK (there is no curl in it).
    Ready {
        /// The readiness URL (`metrics.listen` plus `/readyz`).
        #[arg(long, default_value = "http://127.0.0.1:9153/readyz")]
        url: String,
        /// Seconds for the whole request (resolve, connect, read).
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
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
    if let Cmd::Ready { url, timeout } = &args.cmd {
        return ready(url, *timeout);
    }
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
        Cmd::Ready { .. } => unreachable!("handled above"),
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
        Cmd::Dump | Cmd::Lookup | Cmd::Ready { .. } => unreachable!("handled above"),
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

/// `sparrowctl ready`: print the body of `url`; Ok on HTTP 200, an error
/// (exit 1) on any other status or when there is no answer within `timeout`.
fn ready(url: &str, timeout: f64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(fetch(url, timeout))?;
    let body = String::from_utf8_lossy(&r.body);
    print!("{body}");
    if !body.is_empty() && !body.ends_with('\n') {
        println!();
    }
    if r.status != 200 {
        bail!("{url}: HTTP {} (not ready)", r.status);
    }
    Ok(())
}

/// One GET of `url` (`http[s]://HOST[:PORT]/PATH`), bounded by `timeout`
/// seconds as a whole; HTTPS certificates are verified against the system roots.
async fn fetch(url: &str, timeout: f64) -> anyhow::Result<HttpResponse> {
    let limit = std::time::Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--timeout {timeout}: give a positive number of seconds"))?;
    let (tls, host, port, path) =
        split_url(url).with_context(|| format!("bad URL {url:?}: use http://HOST:PORT/PATH"))?;
    let get = async {
        let (addr, name) = match host.parse::<IpAddr>() {
            Ok(ip) => (SocketAddr::new(ip, port), None),
            Err(_) => {
                let addr = tokio::net::lookup_host((host, port))
                    .await
                    .with_context(|| format!("resolve {host}"))?
                    .next()
                    .with_context(|| format!("resolve {host}: no address"))?;
                (addr, Some(host))
            }
        };
        let g = HttpGet {
            addr,
            tls,
            verify: true,
            host: name,
            path,
        };
        http_get(&g).await.map_err(|e| anyhow!("{url}: {e}"))
    };
    tokio::time::timeout(limit, get)
        .await
        .map_err(|_| anyhow!("{url}: no answer within {timeout}s"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A one-connection HTTP server on a loopback port: reads the request
    /// head, answers `reply` (or nothing, holding the connection, when
    /// `reply` is None), and hands back the request it read.
    fn serve_once(reply: Option<&str>) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/readyz", l.local_addr().unwrap());
        let reply = reply.map(str::to_string);
        let h = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.ends_with(b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            match reply {
                Some(r) => c.write_all(r.as_bytes()).unwrap(),
                // Hold the connection until the client gives up.
                None => while matches!(c.read(&mut b), Ok(n) if n > 0) {},
            }
            String::from_utf8(req).unwrap()
        });
        (url, h)
    }

    fn block<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn ready_200_is_ok_with_body() {
        let (url, h) = serve_once(Some(
            "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nready\n",
        ));
        let r = block(fetch(&url, 5.0)).unwrap();
        assert_eq!((r.status, &r.body[..]), (200, &b"ready\n"[..]));
        let req = h.join().unwrap();
        assert!(req.starts_with("GET /readyz HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("\r\nHost: 127.0.0.1:"), "{req}");
        assert!(ready(&url, 5.0).is_err(), "the one-shot server is gone");
    }

    #[test]
    fn ready_503_is_an_error_and_keeps_the_reasons() {
        let body = "not ready: listener dns 0.0.0.0:53 not bound\n";
        let reply = format!(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (url, h) = serve_once(Some(&reply));
        let r = block(fetch(&url, 5.0)).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(String::from_utf8_lossy(&r.body), body);
        h.join().unwrap();
        let (url, h) = serve_once(Some("HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n"));
        let e = ready(&url, 5.0).unwrap_err().to_string();
        assert!(e.contains("HTTP 503"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn ready_200_exits_ok() {
        let (url, h) = serve_once(Some("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        ready(&url, 5.0).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn ready_errors_refused_silent_and_bad_input() {
        // Nothing listening.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = ready(&format!("http://127.0.0.1:{port}/readyz"), 5.0).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        // A server that never answers: bounded by the timeout.
        let (url, h) = serve_once(None);
        let t = std::time::Instant::now();
        let e = ready(&url, 0.3).unwrap_err();
        assert!(e.to_string().contains("no answer within"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        h.join().unwrap();
        // Bad URL and timeout.
        assert!(ready("ftp://x/readyz", 1.0).is_err());
        assert!(ready("http://127.0.0.1:1/readyz", 0.0).is_err());
        assert!(ready("http://127.0.0.1:1/readyz", f64::NAN).is_err());
    }
}
