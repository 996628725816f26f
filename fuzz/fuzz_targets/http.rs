//! The HTTP redirector's request parsing on arbitrary bytes: `head_end`,
//! `parse_request`, and the X-Forwarded-For client choice. No panic allowed.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use sparrow::http::{client_addr, head_end, parse_request, trusted_prefixes};

fuzz_target!(|data: &[u8]| {
    let head = match head_end(data) {
        Some(n) => &data[..n],
        None => data,
    };
    if let Ok(req) = parse_request(head) {
        let xff: Vec<&[u8]> = req.values("x-forwarded-for").collect();
        let proxies = trusted_prefixes(&["127.0.0.0/8".into(), "::1/128".into()]);
        let _ = client_addr(IpAddr::V4(Ipv4Addr::LOCALHOST), &xff, &proxies);
    }
});
