//! The operations endpoint (`metrics.listen`, off by default): an HTTP
//! listener (the same connection loop as the redirector, `crate::http`'s
//! `serve_on`) answering
//! - `GET /metrics`: Prometheus text format (0.0.4), every name prefixed
//!   `sparrow_` (`collect`);
//! - `GET /healthz`: 200 while the process's threads and tasks run (the RIB
//!   thread answers, every DNS UDP thread is alive), else 503 naming them;
//! - `GET /readyz`: 200 once sparrowd is ready to serve (`ready`), else
//!   503 with one reason per line.
//!
//! Nothing is counted here. A scrape reads what the other modules keep:
//! the admin socket's typed replies (`summary`, `peers`, `pops`, `health`,
//! `announcements`: the same facts `sparrowctl` shows), the DNS counters
//! (`dns::stats`, per worker thread, added up at the scrape), the
//! redirector's (`http::HttpStats`), the steering builder's
//! (`steer::PublishStats`) and the reloads' (`reload::ReloadCounts`).
//!
//! Files: `expo` (the exposition writer over `prometheus-client`),
//! `collect` (what each metric is read from), `ready` (readiness and
//! liveness).

mod collect;
mod expo;
mod ready;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::admin::AdminCtx;
use crate::dns::stats::DnsStats;
use crate::http::{self, Handler, Request, Response, Status};
use crate::steer::PublishStats;

pub use collect::exposition;
pub use ready::{liveness, readiness};

/// Content type of the exposition (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What a scrape reads.
pub struct Ops {
    pub admin: Arc<AdminCtx>,
    pub dns: Arc<DnsStats>,
    pub http: Arc<http::HttpStats>,
    pub publish: Arc<PublishStats>,
    /// Set by the daemon once every listener (BGP, DNS, HTTP) is bound.
    pub listening: AtomicBool,
}

/// The endpoint's request handler.
struct Endpoint(Arc<Ops>);

impl Handler for Endpoint {
    async fn handle<'a>(&'a self, req: &'a Request<'a>, _peer: IpAddr) -> Response {
        if req.method != "GET" && req.method != "HEAD" {
            return Response::error(Status::MethodNotAllowed);
        }
        let path = req.target.split('?').next().unwrap_or("");
        match path {
            "/metrics" => match exposition(&self.0).await {
                Ok(text) => Response {
                    content_type: CONTENT_TYPE,
                    ..Response::text(Status::Ok, text)
                },
                Err(e) => Response::text(Status::Unavailable, format!("{e}\n")),
            },
            "/healthz" => verdict(liveness(&self.0).await),
            "/readyz" => verdict(readiness(&self.0).await),
            _ => Response::error(Status::NotFound),
        }
    }
}

/// 200 `ok` with no reasons, else 503 with one reason per line.
fn verdict(reasons: Vec<String>) -> Response {
    if reasons.is_empty() {
        Response::text(Status::Ok, "ok\n".into())
    } else {
        let mut body = reasons.join("\n");
        body.push('\n');
        Response::text(Status::Unavailable, body)
    }
}

/// Bind `metrics.listen` (nothing when empty) and serve the endpoint.
pub fn start(ops: Arc<Ops>, tasks: &mut JoinSet<()>) -> std::io::Result<()> {
    let addrs = ops.admin.cfg.metrics.listen.clone();
    if addrs.is_empty() {
        return Ok(());
    }
    http::serve_on(&addrs, Arc::new(Endpoint(ops)), "metrics endpoint", tasks)
}
