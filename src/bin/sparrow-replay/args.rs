//! Command-line arguments of `sparrow-replay` (clap). Read by every other
//! module; talks to nothing.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Parser;

/// Replay MRT RIB dumps (TABLE_DUMP / TABLE_DUMP_V2; plain, .gz, .bz2) as BGP
/// sessions to a speaker on loopback: one session per collector peer.
#[derive(Parser, Debug, Clone)]
#[command(name = "sparrow-replay", version)]
pub struct Args {
    /// MRT files; several files are read in parallel and merged (peers keyed by IP + ASN).
    #[arg(required = true)]
    pub mrt: Vec<PathBuf>,

    /// Target speaker (must be a loopback address), e.g. 127.0.0.1:1790.
    #[arg(long)]
    pub connect: Option<SocketAddr>,

    /// Source address of peer 0; peer i binds BASE + i (must stay in 127.0.0.0/8).
    #[arg(long, default_value = "127.0.1.1")]
    pub bind_base: IpAddr,

    /// Seconds to keep the sessions up after every peer has sent End-of-RIB.
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,

    /// Hard limit on the tool's run time in seconds (default: linger + 300).
    #[arg(long)]
    pub timeout: Option<f64>,

    /// Seconds to keep trying to connect / establish each session.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,

    /// Hold time offered in our OPENs.
    #[arg(long, default_value_t = 90)]
    pub hold_time: u16,

    /// The receiver's ASN: peers with this ASN are iBGP and get LOCAL_PREF (else never sent).
    #[arg(long)]
    pub local_asn: Option<u32>,

    /// Offer the extended-message capability (RFC 8654) and use 64 KiB UPDATEs if agreed.
    #[arg(long)]
    pub extended_message: bool,

    /// Only replay these peer indexes (comma separated, as in --list-peers).
    #[arg(long, value_delimiter = ',')]
    pub peers: Option<Vec<usize>>,

    /// Print the collector peers that have routes to send (the sessions a replay opens) as a
    /// JSON array and exit.
    #[arg(long)]
    pub list_peers: bool,

    /// Print the routes that would be sent (`peer_ip|prefix|as path|origin|next hop|med|communities`) and exit.
    #[arg(long)]
    pub dump_text: bool,
}

impl Args {
    /// Whether `--peers` (if given) includes peer `index`.
    pub fn selected(&self, index: usize) -> bool {
        self.peers.as_ref().is_none_or(|s| s.contains(&index))
    }
}
