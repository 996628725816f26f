//! HTTP redirect listener (optional): answers GET and HEAD with a `302 Found`
//! to the chosen POP's base URL (`pops[].url`), keeping path and query.
//!
//! Owns its listening sockets (`http.listen`; IPv6 ones are v6only, so list
//! `0.0.0.0:PORT` and `[::]:PORT` for both families) and one accept loop per
//! address; reads `steer::Handle` and `PopState`, talks to nobody else.
//!
//! The decision is the DNS one: [`steer::select`] on the client address, then
//! [`crate::pops::pick`] over the POPs that have a `url`: the first usable one
//! (up, not forced down, not drained, load below `high`), with load shedding
//! keyed on the decision's safe-scope block; if none is usable,
//! `health.all_down` decides (`answer_all`: the first with a `url`; `empty`:
//! 503). The client address is the TCP source, or, when the TCP
//! source lies in `http.trusted_proxies`, the address [`client_addr`] takes
//! from `X-Forwarded-For`.
//!
//! HTTP/1.0 and 1.1, one request per connection (every response says
//! `Connection: close`). Limits: [`MAX_CONNECTIONS`] at once over all
//! listeners (more are closed at accept), [`MAX_HEAD`] bytes of request head
//! (414 / 431 beyond), [`READ_TIMEOUT`] to receive the head (408 if part of it
//! came).
//!
//! Files, one job each:
//! - `request`: request-head scanning and parsing (pure);
//! - `client`: the client address and the `X-Forwarded-For` rule (pure);
//! - `redirect`: the decision for one request and its `Location`;
//! - `response`: statuses and the response bytes (pure);
//! - `server`: listeners, accept loops and connections, for any
//!   [`Handler`] (the redirector's, and `crate::metrics`' operations
//!   endpoint);
//! - `stats`: the redirector's counters (responses by status, redirects by
//!   POP).

mod client;
mod redirect;
mod request;
mod response;
mod server;
mod stats;

pub use client::{client_addr, trusted_prefixes};
pub use redirect::location;
pub use request::{head_end, parse_request, Request, RequestError};
pub use response::TEXT_PLAIN;
pub use response::{http_date, Response, Status};
pub use server::{serve_on, start, Handler, MAX_CONNECTIONS, MAX_HEAD, READ_TIMEOUT};
pub use stats::HttpStats;
