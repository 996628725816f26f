//! Tests of the admin socket: requests over a real Unix socket against a
//! daemon side built from a test config, with a fake RIB.

use super::*;
use crate::pops::PopState;
use crate::session::PeerStatus;
use crate::testutil::{temp_path, TestConfig};
use reply::{PathInfo, RouteReply, Segment};

/// A daemon's admin side with POPs x (local) and y (one `pop` session, up),
/// a fake RIB that knows no routes, serving on a fresh socket.
async fn serve_test(tag: &str) -> (PathBuf, Arc<AdminCtx>) {
    serve_with_route(tag, RouteReply::default()).await
}

/// [`serve_test`] with a RIB answering every route query with `route`.
async fn serve_with_route(tag: &str, route: RouteReply) -> (PathBuf, Arc<AdminCtx>) {
    let cfg = TestConfig::two_pops()
        .with("steering:\n  fallback:\n    - {prefix: 198.51.100.0/24, pop: y}\n")
        .build();
    serve_config(tag, cfg, route).await
}

/// The admin side of `cfg` (whose first peer is up), with a RIB answering
/// every route query with `route`.
pub(crate) async fn serve_config(
    tag: &str,
    cfg: Config,
    route: RouteReply,
) -> (PathBuf, Arc<AdminCtx>) {
    let cfg = Arc::new(cfg);
    let peers = Arc::new(Peers {
        status: vec![std::sync::Mutex::new(PeerStatus::default())],
        ctl: vec![mpsc::unbounded_channel().0],
        established: Arc::new(crate::pops::SessionFlags::new(1)),
        adverts: crate::announce::channel().1,
    });
    peers.established.set(0, true);
    let (rib, mut rib_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(m) = rib_rx.recv().await {
            if let RibMsg::Query { query, reply } = m {
                let _ = reply.send(match query {
                    Query::Summary => QueryReply::Summary(Default::default()),
                    Query::PeerCounts => QueryReply::PeerCounts(Default::default()),
                    _ => QueryReply::Route(route.clone()),
                });
            }
        }
    });
    let steering = steer::handle(&cfg);
    let pops = Arc::new(PopState::new(&cfg, Some(peers.established.clone())));
    let dns: crate::dns::Shared = Arc::new(arc_swap::ArcSwap::from_pointee(
        crate::dns::Authority::new(&cfg, steering.clone(), pops.clone()).unwrap(),
    ));
    let reload = Arc::new(crate::reload::Reloader::new(
        None,
        cfg.clone(),
        dns.clone(),
        steering.clone(),
        pops.clone(),
    ));
    let health = Arc::new(crate::health::Status::new(&cfg, pops.clone()));
    let announcer = Arc::new(crate::announce::Announcer::new(
        cfg.clone(),
        crate::announce::channel().0,
    ));
    let ctx = Arc::new(AdminCtx {
        reload,
        health,
        announcer,
        cfg,
        peers,
        rib,
        stats: Arc::new(RibStats::default()),
        started: Instant::now(),
        steering,
        pops,
        store: Arc::new(crate::pops::StateStore::new(temp_path(&format!(
            "admin-{tag}-state.json"
        )))),
        dns,
    });
    let path = temp_path(&format!("admin-{tag}.sock"));
    let l = bind(&path, ctx.cfg.admin_mode()).unwrap();
    tokio::spawn(serve(l, ctx.clone()));
    (path, ctx)
}

async fn ask(path: &Path, req: Request) -> Value {
    serde_json::from_str(request(path, &req).await.unwrap().trim()).unwrap()
}

/// `explain` for `target`.
async fn explain(path: &Path, target: &str) -> Value {
    ask(
        path,
        Request::Explain {
            target: target.into(),
            name: None,
        },
    )
    .await
}

#[tokio::test]
async fn drain_undrain_and_pops() {
    let (path, ctx) = serve_test("drain").await;
    let drain = |pop: &str| Request::Drain {
        pop: pop.into(),
        by: Some("tester".into()),
    };
    let v = ask(&path, drain("y")).await;
    assert_eq!(
        v["data"],
        json!({"pop": "y", "was_drained": false, "drained": true, "changed": true, "up": true, "usable": false,
            "saved": true, "save_error": null})
    );
    assert!(ctx.pops.drained(1) && !ctx.pops.drained(0));
    let v = ask(&path, drain("y")).await;
    assert_eq!(
        (
            v["data"]["was_drained"].clone(),
            v["data"]["changed"].clone()
        ),
        (json!(true), json!(false))
    );
    let v = ask(&path, Request::Pops).await;
    assert_eq!(
        v["data"]["pops"],
        json!([
            {"name": "x", "asn": 65001, "local": true, "up": true, "monitored": false, "drained": false, "usable": true,
             "forced": "auto", "load": 0.0, "manual_load": null, "low": 0.8, "high": 1.0, "forced_addresses": []},
            {"name": "y", "asn": 65002, "local": false, "up": true, "monitored": true, "drained": true, "usable": false,
             "forced": "auto", "load": 0.0, "manual_load": null, "low": 0.8, "high": 1.0, "forced_addresses": []},
        ])
    );
    // `by` is optional on the wire.
    let raw = {
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"{\"cmd\":\"undrain\",\"pop\":\"y\"}\n")
            .await
            .unwrap();
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut s, &mut out)
            .await
            .unwrap();
        out
    };
    let v: Value = serde_json::from_str(raw.trim()).unwrap();
    assert_eq!(
        (
            v["data"]["was_drained"].clone(),
            v["data"]["drained"].clone()
        ),
        (json!(true), json!(false))
    );
    assert!(!ctx.pops.drained(1));
    // Unknown POP: an error naming the known ones, nothing changed.
    let v = ask(&path, drain("z")).await;
    assert_eq!(v["ok"], json!(false));
    assert_eq!(v["error"], json!("no POP named \"z\" (known: x, y)"));
    let v = ask(
        &path,
        Request::Undrain {
            pop: "".into(),
            by: None,
        },
    )
    .await;
    assert_eq!(v["ok"], json!(false));
    assert!(!ctx.pops.drained(0) && !ctx.pops.drained(1));
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn explain_marks_state_and_lists_answers() {
    let (path, ctx) = serve_test("explain").await;
    ctx.pops.set_drained("y", true).unwrap();
    let v = explain(&path, "198.51.100.9").await;
    let d = &v["data"];
    assert_eq!(d["ranking"], json!(["y", "x"]), "{v}");
    assert_eq!(
        d["ranking_state"],
        json!([
            {"pop": "y", "local": false, "up": true, "drained": true},
            {"pop": "x", "local": true, "up": true, "drained": false},
        ])
    );
    // No zones configured: an empty list, never missing.
    assert_eq!(d["answers"], json!([]));
    assert_eq!(
        d["rule"],
        json!("steering.fallback (the RIB is not used yet): 198.51.100.0/24 ranks y first")
    );
    // Undrained and the session down: marked down instead.
    ctx.pops.set_drained("y", false).unwrap();
    ctx.peers.established.set(0, false);
    let v = explain(&path, "::ffff:198.51.100.9").await;
    assert_eq!(
        v["data"]["ranking_state"][0],
        json!({"pop": "y", "local": false, "up": false, "drained": false})
    );
    assert_eq!(v["data"]["address"], json!("198.51.100.9"));
    let _ = std::fs::remove_file(&path);
}

/// A POP past one byte's indices (299, one byte 43) ranks first, answers
/// its steered name, and fails over when forced down.
#[tokio::test]
async fn explain_shows_pops_past_one_byte() {
    let cfg = TestConfig::yaml(crate::dns::zone::tests::CFG)
        .numbered_pops(300)
        .replace(
            "          y: {a: [198.51.100.10, 198.51.100.11]}\n",
            "          y: {a: [198.51.100.10, 198.51.100.11]}\n          p299: {a: [203.0.113.99]}\n",
        )
        .with("steering:\n  fallback:\n    - {prefix: 198.51.100.0/24, pop: p299}\n")
        .build();
    let (path, ctx) = serve_config("explain-many", cfg, RouteReply::default()).await;
    let v = explain(&path, "198.51.100.9").await;
    let d = &v["data"];
    let ranking = d["ranking"].as_array().unwrap();
    assert_eq!(ranking.len(), 300, "{v}");
    assert_eq!(ranking[..3], [json!("p299"), json!("x"), json!("y")]);
    assert_eq!(
        d["ranking_state"][0],
        json!({"pop": "p299", "local": false, "up": true, "drained": false})
    );
    assert_eq!(
        d["rule"],
        json!("steering.fallback (the RIB is not used yet): 198.51.100.0/24 ranks p299 first")
    );
    let a = &d["answers"][0];
    assert_eq!(
        (&a["rtype"], &a["pop"], &a["addresses"]),
        (&json!("A"), &json!("p299"), &json!(["203.0.113.99"])),
        "{v}"
    );
    ctx.pops
        .force("p299", None, crate::pops::Force::Down)
        .unwrap();
    let v = explain(&path, "198.51.100.9").await;
    let a = &v["data"]["answers"][0];
    assert_eq!(
        (&a["pop"], &a["addresses"]),
        (&json!("x"), &json!(["192.0.2.10"])),
        "{v}"
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn explain_applies_the_closest_pop_rule_to_the_best_path() {
    let route = RouteReply {
        query: "192.0.2.1/32".into(),
        prefix: Some("192.0.2.0/24".into()),
        paths: vec![PathInfo {
            peer: "py".into(),
            as_path: "65002 64500".into(),
            as_path_segments: vec![Segment {
                kind: "sequence".into(),
                asns: vec![65002, 64500],
            }],
            next_hop: Some("10.0.0.2".into()),
            origin: "igp".into(),
            best: true,
            ..PathInfo::default()
        }],
    };
    let (path, _ctx) = serve_with_route("explain-rule", route).await;
    let v = explain(&path, "192.0.2.1").await;
    let d = &v["data"];
    assert_eq!(
        d["pop_asn"],
        json!({"asn": 65002, "pop": "y", "position": 0, "path_length": 2})
    );
    assert_eq!(d["rib_prefix"], json!("192.0.2.0/24"));
    assert_eq!(
        d["best_path"],
        json!({"peer": "py", "as_path": "65002 64500", "next_hop": "10.0.0.2", "origin": "igp"})
    );
    let _ = std::fs::remove_file(&path);
}

/// The typed replies keep the socket's JSON keys.
#[tokio::test]
async fn peers_and_summary_keep_their_keys() {
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let (path, ctx) = serve_test("keys").await;
    let v = ask(&path, Request::Peers).await;
    let mut want: Vec<String> = [
        "name",
        "address",
        "remote_asn",
        "role",
        "state",
        "since_secs",
        "uptime_secs",
        "received",
        "accepted",
        "exported",
        "advertised",
        "eor",
        "max_prefix_exceeded",
        "max_prefix_events",
    ]
    .map(String::from)
    .into_iter()
    .chain(keys(&serde_json::to_value(PeerStatus::default()).unwrap()))
    .collect();
    want.sort();
    want.dedup();
    assert_eq!(keys(&v["data"]["peers"][0]), want);
    assert_eq!(
        v["data"]["peers"][0]["received"],
        json!({"ipv4": 0, "ipv6": 0})
    );
    let peer = &v["data"]["peers"][0];
    assert_eq!(
        peer["messages_sent"],
        json!({"open": 0, "update": 0, "notification": 0, "keepalive": 0, "route_refresh": 0})
    );
    assert_eq!(peer["notifications"], json!([]));
    assert_eq!(
        peer["rfc7606"],
        json!({"treat_as_withdraw": 0, "attribute_discard": 0})
    );
    // `advertised`: the RIB's `exported` plus our originated prefixes.
    ctx.peers.status[0].lock().unwrap().originated = vec!["192.0.2.0/24".parse().unwrap()];
    let v = ask(&path, Request::Peers).await;
    assert_eq!(
        v["data"]["peers"][0]["advertised"],
        json!({"ipv4": 1, "ipv6": 0})
    );
    let v = ask(&path, Request::Summary).await;
    let mut want = [
        "prefixes",
        "paths",
        "best_from",
        "attr_sets",
        "memory",
        "uptime_secs",
        "local_asn",
        "router_id",
        "pop",
        "steering",
        "peers",
    ]
    .map(String::from);
    want.sort();
    assert_eq!(keys(&v["data"]), want);
    assert_eq!(
        v["data"]["peers"],
        json!({"configured": 1, "established": 0})
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn force_and_load_are_saved_and_explained() {
    let (path, ctx) = serve_test("force").await;
    let _ = std::fs::remove_file(ctx.store.path());
    let v = ask(
        &path,
        Request::Force {
            pop: "y".into(),
            address: None,
            state: crate::pops::Force::Down,
            by: None,
        },
    )
    .await;
    let r: reply::ForceReply = serde_json::from_value(v["data"].clone()).unwrap();
    assert!(
        r.changed && r.saved && !r.up && r.was == crate::pops::Force::Auto,
        "{v}"
    );
    // An address that is not y's: an error, nothing saved.
    let v = ask(
        &path,
        Request::Force {
            pop: "y".into(),
            address: Some("192.0.2.1".into()),
            state: crate::pops::Force::Down,
            by: None,
        },
    )
    .await;
    assert_eq!(v["ok"], json!(false), "{v}");
    let v = ask(
        &path,
        Request::Load {
            pop: "x".into(),
            load: Some(0.9),
            by: None,
        },
    )
    .await;
    let r: reply::LoadReply = serde_json::from_value(v["data"].clone()).unwrap();
    assert!(
        r.saved && (r.load - 0.9).abs() < 1e-6 && r.was.is_none(),
        "{v}"
    );
    let bad = ask(
        &path,
        Request::Load {
            pop: "x".into(),
            load: Some(1.5),
            by: None,
        },
    )
    .await;
    assert_eq!(bad["ok"], json!(false));
    // The file holds both; a fresh state restored from it equals the live one.
    let fresh = PopState::new(&ctx.cfg, None);
    let restored = ctx.store.restore(&fresh);
    assert!(restored.loaded && restored.warnings.is_empty());
    assert_eq!(fresh.operator_state(), ctx.pops.operator_state());
    assert_eq!(fresh.forced(1), crate::pops::Force::Down);
    // pops shows it.
    let v = ask(&path, Request::Pops).await;
    assert_eq!(v["data"]["pops"][1]["forced"], json!("down"));
    assert_eq!(v["data"]["pops"][0]["manual_load"], json!(0.9));
    // lookup: the pick (y forced down -> x), not the ranking's first.
    let mut s = UnixStream::connect(&path).await.unwrap();
    s.write_all(b"{\"cmd\":\"lookup\"}\n198.51.100.7\nnope\n")
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut out)
        .await
        .unwrap();
    assert_eq!(out, "x\nNULL\n");
    let _ = std::fs::remove_file(ctx.store.path());
}

#[tokio::test]
async fn health_lists_loads_and_no_targets_without_checks() {
    let (path, ctx) = serve_test("health").await;
    ctx.pops.set_manual_load("y", Some(0.5)).unwrap();
    let v = ask(&path, Request::Health).await;
    let r: reply::HealthReply = serde_json::from_value(v["data"].clone()).unwrap();
    assert!(r.targets.is_empty());
    assert_eq!(r.loads.len(), 2);
    assert_eq!(
        (r.loads[1].pop.as_str(), r.loads[1].load, r.loads[1].manual),
        ("y", 0.5, Some(0.5))
    );
    assert_eq!((r.loads[1].low, r.loads[1].high), (0.8, 1.0));
    let text = crate::render::health(&r);
    assert!(text.starts_with("no health checks configured\n"), "{text}");
}
