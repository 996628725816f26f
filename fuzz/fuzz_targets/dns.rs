//! The UDP/TCP DNS request path on arbitrary bytes: `dns::fast::respond`
//! (own header/question/OPT/ECS parsing, the resolver, the reply writer) over
//! the Super Sparrow example's zone. Checks: no panic, a reply never exceeds
//! the transport limit, carries the query's ID and has QR set.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sparrow::dns::{fast, Authority};
use sparrow::pops::PopState;
use sparrow::{config, steer};

const CONFIG: &str = include_str!("../../bgp-configs/super-sparrow/pop-x.yaml");

fn auth() -> &'static Authority {
    static A: OnceLock<Authority> = OnceLock::new();
    A.get_or_init(|| {
        let mut cfg = config::parse(CONFIG, "pop-x.yaml").expect("example config");
        // Some fallback entries so steered answers vary with the ECS address.
        cfg.steering.fallback = vec![
            config::FallbackEntry { prefix: "10.0.0.0/8".into(), pop: "y".into() },
            config::FallbackEntry { prefix: "10.1.0.0/16".into(), pop: "x".into() },
            config::FallbackEntry { prefix: "2001:db8::/32".into(), pop: "y".into() },
        ];
        let pops = Arc::new(PopState::new(&cfg, None));
        Authority::new(&cfg, steer::handle(&cfg), pops).expect("zones compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, query)) = data.split_first() else { return };
    let udp = mode & 1 == 0;
    let mut out = Vec::new();
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, mode));
    if fast::respond(auth(), query, src, udp, &mut out) {
        assert!(out.len() >= 12);
        assert!(!udp || out.len() <= 1232);
        assert_eq!(out[..2], query[..2]);
        assert!(out[2] & 0x80 != 0);
    }
});
