//! Load sources (`pops[].capacity.url` or `.file`): one poll reads a number
//! from 0 to 1 (the whole body or file, whitespace trimmed); [`Smoother`]
//! keeps the exponentially weighted moving average (weight `smoothing` on the
//! new sample) and forgets it when no poll succeeded for `stale_after`
//! seconds (the figure is then `None`, which the pick counts as 0).
//! Out-of-range or unparsable values are a failed poll.
//!
//! `Smoother` and `parse_load` are pure; `poll` does the I/O. Used by `runner`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::httpget::{self, Get};
use crate::config::CapacityConfig;

/// The moving average of one POP's load samples.
#[derive(Clone, Debug)]
pub struct Smoother {
    weight: f64,
    stale_after: Duration,
    value: Option<f64>,
    last_ok: Option<Instant>,
    /// The last raw sample.
    pub last_sample: Option<f64>,
}

impl Smoother {
    pub fn new(weight: f64, stale_after: Duration) -> Smoother {
        Smoother {
            weight: weight.clamp(f64::MIN_POSITIVE, 1.0),
            stale_after,
            value: None,
            last_ok: None,
            last_sample: None,
        }
    }

    /// For a POP's capacity config (`stale_after` default: 3 × interval).
    pub fn for_config(c: &CapacityConfig) -> Smoother {
        let stale = c.stale_after.unwrap_or(3.0 * c.interval).max(0.0);
        Smoother::new(c.smoothing, Duration::from_secs_f64(stale))
    }

    /// Add a sample taken at `now`.
    pub fn sample(&mut self, v: f64, now: Instant) {
        let fresh = self.value(now);
        self.value = Some(match fresh {
            None => v,
            Some(prev) => prev + self.weight * (v - prev),
        });
        self.last_ok = Some(now);
        self.last_sample = Some(v);
    }

    /// The smoothed figure, `None` before the first sample or when stale.
    pub fn value(&self, now: Instant) -> Option<f64> {
        let t = self.last_ok?;
        (now.saturating_duration_since(t) <= self.stale_after).then_some(self.value?)
    }

    /// Seconds since the last good sample.
    pub fn age(&self, now: Instant) -> Option<f64> {
        self.last_ok
            .map(|t| now.saturating_duration_since(t).as_secs_f64())
    }
}

/// A load figure from text: a number from 0 to 1.
pub fn parse_load(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v: f64 = t.parse().map_err(|_| {
        format!(
            "`{}` is not a number",
            t.chars().take(40).collect::<String>()
        )
    })?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} is outside 0..1"));
    }
    Ok(v)
}

/// `http[s]://HOST[:PORT][/PATH]` split into (tls, host, port, path).
pub fn split_url(url: &str) -> Option<(bool, &str, u16, &str)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        (true, url.strip_prefix("https://")?)
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let default = if tls { 443 } else { 80 };
    let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
        let (h, after) = h.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        (h, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, default),
        }
    };
    (!host.is_empty()).then_some((tls, host, port, path))
}

/// One poll of a POP's load source (bounded by its timeout).
pub async fn poll(c: &CapacityConfig) -> Result<f64, String> {
    let to = Duration::from_secs_f64(c.timeout.max(0.001));
    match tokio::time::timeout(to, poll_inner(c)).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

async fn poll_inner(c: &CapacityConfig) -> Result<f64, String> {
    if let Some(url) = &c.url {
        let (tls, host, port, path) = split_url(url).ok_or_else(|| format!("bad URL `{url}`"))?;
        let addr = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("resolve {host}: no address"))?,
        };
        let r = httpget::get(&Get {
            addr,
            tls,
            verify: false,
            host: host.parse::<IpAddr>().is_err().then_some(host),
            path,
        })
        .await?;
        if r.status != 200 {
            return Err(format!("http {}", r.status));
        }
        return parse_load(&String::from_utf8_lossy(&r.body));
    }
    if let Some(f) = &c.file {
        let text = tokio::fs::read_to_string(f)
            .await
            .map_err(|e| format!("{f}: {e}"))?;
        return parse_load(&text);
    }
    Err("no load source".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_and_staleness() {
        let t0 = Instant::now();
        let mut s = Smoother::new(0.5, Duration::from_secs(3));
        assert_eq!(s.value(t0), None);
        s.sample(0.8, t0);
        assert_eq!(s.value(t0), Some(0.8));
        s.sample(0.4, t0 + Duration::from_secs(1));
        assert!((s.value(t0 + Duration::from_secs(1)).unwrap() - 0.6).abs() < 1e-9);
        // 3 s after the last good sample: still fresh; after that: stale
        assert!(s.value(t0 + Duration::from_secs(4)).is_some());
        assert_eq!(s.value(t0 + Duration::from_millis(4001)), None);
        // a sample after staleness starts over (no memory of the old average)
        s.sample(0.2, t0 + Duration::from_secs(10));
        assert_eq!(s.value(t0 + Duration::from_secs(10)), Some(0.2));
    }

    #[test]
    fn weight_one_is_no_smoothing() {
        let t = Instant::now();
        let mut s = Smoother::new(1.0, Duration::from_secs(3));
        s.sample(0.1, t);
        s.sample(0.9, t);
        assert_eq!(s.value(t), Some(0.9));
    }

    #[test]
    fn stale_default_is_three_intervals() {
        let c = CapacityConfig {
            interval: 2.0,
            ..Default::default()
        };
        assert_eq!(Smoother::for_config(&c).stale_after, Duration::from_secs(6));
    }

    #[test]
    fn load_text() {
        assert_eq!(parse_load(" 0.75\n"), Ok(0.75));
        assert_eq!(parse_load("1"), Ok(1.0));
        assert!(parse_load("1.2").is_err());
        assert!(parse_load("-0.1").is_err());
        assert!(parse_load("NaN").is_err());
        assert!(parse_load("busy").is_err());
        assert!(parse_load("").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_url("http://192.0.2.1:8080/load"),
            Some((false, "192.0.2.1", 8080, "/load"))
        );
        assert_eq!(
            split_url("https://lb.example"),
            Some((true, "lb.example", 443, "/"))
        );
        assert_eq!(
            split_url("http://[2001:db8::1]/l?x=1"),
            Some((false, "2001:db8::1", 80, "/l?x=1"))
        );
        assert_eq!(split_url("ftp://x/"), None);
        assert_eq!(split_url("http://:80/"), None);
        assert_eq!(split_url("http://h:port/"), None);
    }
}
