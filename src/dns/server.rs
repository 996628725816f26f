//! hickory-server's request path: a `RequestHandler` over the shared resolver,
//! registered for TCP on every `dns.listen` address, and for UDP too with
//! `dns.udp_engine: hickory`.
//!
//! The query is parsed and decided by the same code as the fast path
//! (`packet::parse` and `packet::decide`, on the raw bytes hickory keeps), so
//! both paths accept, reject and answer alike; only the encoding differs
//! (hickory's, with name compression and its own truncation). Requests being answered are capped by a semaphore
//! (`dns.max_in_flight`): beyond it UDP queries are dropped and TCP ones get
//! SERVFAIL.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_server::proto::rr::Record;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::sync::Semaphore;
use tracing::debug;

use super::answer::{resolve, Resolution};
use super::iana::rcode;
use super::packet::{
    decide, echo_ecs, our_payload, parse, udp_payload, wire_rcode, Decision, Parsed,
};

/// The handler hickory-server calls per request.
pub struct Handler {
    pub auth: super::Shared,
    pub in_flight: Arc<Semaphore>,
}

fn no_response(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let udp = request.protocol() == Protocol::Udp;
        let permit = self.in_flight.clone().try_acquire_owned();
        if permit.is_err() && udp {
            return no_response(request);
        }
        let src = crate::net::canonical_ip(request.src().ip());
        // Held to the end of the request (a reload may swap in a new one meanwhile).
        let auth = self.auth.load_full();
        let mut p = Parsed::new();
        let parsed = parse(request.as_slice(), &mut p);
        let (res, code) = match (decide(parsed, &p, src), permit.is_ok()) {
            (Decision::Drop, _) => return no_response(request),
            (_, false) => (Resolution::default(), rcode::SERVFAIL),
            (Decision::Error(rc), true) => (Resolution::default(), rc),
            (Decision::Resolve(querier), true) => {
                let r = resolve(&auth, p.qname(), p.qtype, p.qclass, querier);
                let c = r.rcode;
                (r, c)
            }
        };
        let code = wire_rcode(&p, code);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = res.aa;
        metadata.recursion_available = false;
        metadata.authentic_data = false;
        metadata.response_code = ResponseCode::from((code >> 4) as u8, (code & 0xF) as u8);
        let edns = p.opt.map(|o| {
            let mut e = Edns::new();
            e.set_max_payload(if udp {
                udp_payload(&o, auth.max_udp_payload)
            } else {
                our_payload(auth.max_udp_payload)
            });
            e.set_version(0);
            e.set_dnssec_ok(o.dnssec_ok);
            if let Some(ecs) = echo_ecs(&o, parsed.is_ok(), code) {
                e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                    ecs.ip(),
                    ecs.source,
                    res.scope,
                )));
            }
            e
        });
        let answers = res.answer_records(p.qname());
        let answers = answers.iter();
        let authority = res.authority.iter().flat_map(|s| s.records.iter());
        let additional = res.additional.iter().flat_map(|s| s.records.iter());
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = &edns {
            builder.edns(e);
        }
        let response = builder.build(
            metadata,
            answers,
            authority,
            std::iter::empty::<&Record>(),
            additional,
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                debug!(error = %e, %src, "DNS send");
                no_response(request)
            }
        }
    }
}
