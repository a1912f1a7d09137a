//! Tests of the firewall: `describe` against a golden file and readable rule lines, the fake, and (as
//! root) the real `nft`.

use super::*;
use serde_json::Value;

fn net(bridge: &str, subnet: &str, internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.to_string(),
        subnet: subnet.parse().unwrap(),
        masquerade: true,
        internal,
    }
}

fn port(host_ip: Option<[u8; 4]>, host_port: u16, to: [u8; 4], bridge: &str) -> PortMapping {
    PortMapping {
        proto: Proto::Tcp,
        host_ip: host_ip.map(Ipv4Addr::from),
        host_port,
        container_ip: Ipv4Addr::from(to),
        container_port: 80,
        bridge: bridge.to_string(),
    }
}

/// Two user networks and an internal one; ports on every host address, on loopback, on one address,
/// and (ignored) on the internal network.
fn sample() -> Ruleset {
    let mut udp = port(None, 5353, [10, 1, 0, 3], "br1");
    udp.proto = Proto::Udp;
    udp.container_port = 53;
    Ruleset {
        networks: vec![
            net("br1", "10.1.0.0/24", false),
            net("br2", "10.2.0.0/24", false),
            net("br3", "10.3.0.0/24", true),
        ],
        ports: vec![
            port(None, 8080, [10, 1, 0, 2], "br1"),
            port(Some([127, 0, 0, 1]), 8081, [10, 1, 0, 2], "br1"),
            port(Some([192, 0, 2, 2]), 8082, [10, 2, 0, 2], "br2"),
            port(Some([0, 0, 0, 0]), 8083, [10, 2, 0, 2], "br2"),
            port(None, 8084, [10, 3, 0, 2], "br3"),
            udp,
        ],
    }
}

/// Just enough of nft's text syntax to read an expression in a test.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        Value::Object(o) => {
            let (k, v) = o.iter().next().unwrap();
            match k.as_str() {
                "meta" => v["key"].as_str().unwrap().to_string(),
                "payload" => format!("{} {}", text(&v["protocol"]), text(&v["field"])),
                "ct" => format!("ct {}", text(&v["key"])),
                "fib" => format!("fib {} {}", text(&v["flags"]), text(&v["result"])),
                "prefix" => format!("{}/{}", text(&v["addr"]), v["len"]),
                "set" => format!(
                    "{{ {} }}",
                    v.as_array()
                        .unwrap()
                        .iter()
                        .map(text)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "match" => {
                    let op = match v["op"].as_str().unwrap() {
                        "==" | "in" => String::new(),
                        other => format!("{other} "),
                    };
                    format!("{} {op}{}", text(&v["left"]), text(&v["right"]))
                }
                "dnat" => format!("dnat to {}:{}", text(&v["addr"]), text(&v["port"])),
                verdict => verdict.to_string(),
            }
        }
        other => panic!("unexpected {other}"),
    }
}

/// `chain: rule` lines in order, as `nft list` would show them (without the comments).
fn rules(rs: &Ruleset) -> Vec<String> {
    let doc = serde_json::to_value(describe("berth", rs)).unwrap();
    doc["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("add").and_then(|a| a.get("rule")))
        .map(|r| {
            let expr: Vec<String> = r["expr"].as_array().unwrap().iter().map(text).collect();
            format!("{}: {}", text(&r["chain"]), expr.join(" "))
        })
        .collect()
}

fn has(rules: &[String], want: &str) -> bool {
    rules.iter().any(|r| r == want)
}

#[test]
fn describe_matches_the_golden_file() {
    let golden =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/firewall.json");
    let got = serde_json::to_string_pretty(&describe("berth", &sample())).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        got == want,
        "describe changed; rerun with UPDATE_GOLDEN=1 cargo test -p berth-network to accept\n--- want\n{want}\n--- got\n{got}"
    );
}

#[test]
fn batch_replaces_our_table_whether_or_not_it_exists() {
    let doc = serde_json::to_value(describe("berth_x", &Ruleset::default())).unwrap();
    let objs = doc["nftables"].as_array().unwrap();
    let table = serde_json::json!({"table": {"family": "ip", "name": "berth_x"}});
    assert_eq!(objs[0], serde_json::json!({"add": table}));
    assert_eq!(objs[1], serde_json::json!({"delete": table}));
    assert_eq!(objs[2], serde_json::json!({"add": table}));
    let chains: Vec<String> = objs
        .iter()
        .filter_map(|o| o["add"].get("chain"))
        .map(|c| format!("{} {} {} {}", c["name"], c["type"], c["hook"], c["prio"]))
        .collect();
    assert_eq!(
        chains,
        [
            r#""guard" "filter" "prerouting" -300"#,
            r#""prerouting" "nat" "prerouting" -100"#,
            r#""output" "nat" "output" -100"#,
            r#""postrouting" "nat" "postrouting" 100"#,
            r#""forward" "filter" "forward" 0"#,
        ]
    );
    assert!(
        rules(&Ruleset::default()).is_empty(),
        "no networks, no rules"
    );
}

#[test]
fn published_ports_are_dnatted_from_outside_and_from_the_host() {
    let r = rules(&sample());
    for chain in ["prerouting", "output"] {
        assert!(
            has(
                &r,
                &format!("{chain}: fib daddr type local tcp dport 8080 dnat to 10.1.0.2:80")
            ),
            "{r:#?}"
        );
        assert!(
            has(
                &r,
                &format!("{chain}: ip daddr 192.0.2.2 tcp dport 8082 dnat to 10.2.0.2:80")
            ),
            "{r:#?}"
        );
        assert!(
            has(
                &r,
                &format!("{chain}: fib daddr type local tcp dport 8083 dnat to 10.2.0.2:80")
            ),
            "0.0.0.0 is every address: {r:#?}"
        );
        assert!(
            has(
                &r,
                &format!("{chain}: fib daddr type local udp dport 5353 dnat to 10.1.0.3:53")
            ),
            "{r:#?}"
        );
    }
    assert!(has(
        &r,
        "forward: oifname br1 ip daddr 10.1.0.2 tcp dport 80 ct status dnat accept"
    ));
    assert!(has(
        &r,
        "forward: oifname br1 ip daddr 10.1.0.3 udp dport 53 ct status dnat accept"
    ));
}

#[test]
fn a_port_published_on_loopback_is_reachable_from_the_host_only() {
    let r = rules(&sample());
    assert!(
        has(
            &r,
            "output: ip daddr 127.0.0.1 tcp dport 8081 dnat to 10.1.0.2:80"
        ),
        "{r:#?}"
    );
    assert!(
        !r.iter()
            .any(|l| l.starts_with("prerouting:") && l.contains("8081")),
        "{r:#?}"
    );
    assert!(has(
        &r,
        "postrouting: oifname br1 ip saddr 127.0.0.0/8 masquerade"
    ));
}

#[test]
fn loopback_destinations_from_a_bridge_are_dropped_before_nat() {
    let r = rules(&sample());
    for br in ["br1", "br2", "br3"] {
        assert!(
            has(
                &r,
                &format!("guard: iifname {br} ip daddr 127.0.0.0/8 drop")
            ),
            "{r:#?}"
        );
    }
}

#[test]
fn outbound_and_hairpin_traffic_is_masqueraded() {
    let r = rules(&sample());
    assert!(has(
        &r,
        "postrouting: ip saddr 10.1.0.0/24 oifname != br1 masquerade"
    ));
    assert!(has(
        &r,
        "postrouting: oifname br1 ct status dnat ip saddr 10.1.0.0/24 masquerade"
    ));
    let mut no_masq = sample();
    no_masq.networks[0].masquerade = false;
    assert!(!has(
        &rules(&no_masq),
        "postrouting: ip saddr 10.1.0.0/24 oifname != br1 masquerade"
    ));
}

#[test]
fn internal_networks_are_cut_off_and_publish_nothing() {
    let r = rules(&sample());
    assert!(has(&r, "forward: iifname br3 oifname != br3 drop"));
    assert!(has(&r, "forward: oifname br3 iifname != br3 drop"));
    assert!(!r
        .iter()
        .any(|l| l.contains("ip saddr 10.3.0.0/24 oifname != br3 masquerade")));
    assert!(
        !r.iter()
            .any(|l| l.contains("8084") || l.contains("10.3.0.2")),
        "{r:#?}"
    );
    // Cut-off comes before the established/related accept, so nothing slips through.
    let cut = r
        .iter()
        .position(|l| l == "forward: iifname br3 oifname != br3 drop")
        .unwrap();
    let est = r
        .iter()
        .position(|l| l == "forward: ct state established,related accept")
        .unwrap();
    assert!(cut < est);
}

#[test]
fn berth_bridges_are_isolated_from_each_other_but_published_ports_are_not() {
    let r = rules(&sample());
    assert!(
        has(&r, "forward: iifname br1 oifname { br2, br3 } drop"),
        "{r:#?}"
    );
    assert!(
        has(&r, "forward: iifname br2 oifname { br1, br3 } drop"),
        "{r:#?}"
    );
    let published = r
        .iter()
        .position(|l| l.contains("10.2.0.2 tcp dport 80 ct status dnat accept"))
        .unwrap();
    let isolation = r
        .iter()
        .position(|l| l == "forward: iifname br1 oifname { br2, br3 } drop")
        .unwrap();
    let outside = r
        .iter()
        .position(|l| l == "forward: oifname br1 iifname != br1 drop")
        .unwrap();
    assert!(published < isolation && isolation < outside, "{r:#?}");
    let single = Ruleset {
        networks: vec![net("br1", "10.1.0.0/24", false)],
        ports: vec![],
    };
    assert!(
        !rules(&single).iter().any(|l| l.contains("{")),
        "no isolation rule with one network"
    );
}

#[test]
fn ruleset_round_trips_through_json() {
    let rs = sample();
    let json = serde_json::to_string(&rs).unwrap();
    assert!(json.contains(r#""proto":"udp""#));
    assert_eq!(serde_json::from_str::<Ruleset>(&json).unwrap(), rs);
    assert_eq!(Proto::Tcp.to_string(), "tcp");
}

#[test]
fn fake_keeps_what_is_in_force() {
    let fake = FakeFirewall::new();
    fake.apply(&sample()).unwrap();
    fake.apply(&Ruleset::default()).unwrap();
    assert_eq!(fake.applied(), vec![sample(), Ruleset::default()]);
    assert_eq!(fake.current(), Some(Ruleset::default()));
    fake.clear().unwrap();
    assert_eq!((fake.current(), fake.clears()), (None, 1));
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Deletes the test's table however the test ends.
struct TableGuard(Nft);

impl Drop for TableGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.clear() {
            eprintln!("cleanup: {e}");
        }
    }
}

fn unique_table(n: u32) -> Nft {
    Nft::new(format!("berth_t{}_{n}", std::process::id()))
}

/// The rules as `nft` reads them back, comments only (enough to tell them apart).
fn listed(nft: &Nft) -> Option<Vec<String>> {
    let doc = nft.current().unwrap()?;
    Some(
        doc.objects
            .iter()
            .filter_map(|o| match o {
                NfObject::ListObject(NfListObject::Rule(r)) => Some(format!(
                    "{}: {}",
                    r.chain,
                    r.comment.as_deref().unwrap_or("")
                )),
                _ => None,
            })
            .collect(),
    )
}

#[test]
fn nft_applies_atomically_idempotently_and_clears() {
    if !root() {
        eprintln!("skipped: needs root (nft)");
        return;
    }
    let guard = TableGuard(unique_table(0));
    let nft = &guard.0;
    assert_eq!(listed(nft), None, "fresh table name");
    // Unused bridge names and a port no one serves: the rules touch no real traffic.
    let rs = Ruleset {
        networks: vec![
            net("bt_fw_a", "10.198.1.0/24", false),
            net("bt_fw_b", "10.198.2.0/24", true),
        ],
        ports: vec![
            port(None, 1, [10, 198, 1, 2], "bt_fw_a"),
            port(Some([127, 0, 0, 1]), 1, [10, 198, 1, 2], "bt_fw_a"),
        ],
    };
    nft.apply(&rs).unwrap();
    let first = listed(nft).expect("table exists");
    let expected = describe(nft.table(), &rs)
        .objects
        .iter()
        .filter(|o| matches!(o, NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(_)))))
        .count();
    assert_eq!(first.len(), expected, "{first:#?}");
    assert!(first
        .contains(&"output: publish tcp 127.0.0.1:1 -> 10.198.1.2:80 (from the host)".to_string()));
    nft.apply(&rs).unwrap();
    assert_eq!(
        listed(nft).unwrap(),
        first,
        "a second apply changes nothing"
    );
    nft.apply(&Ruleset::default()).unwrap();
    assert_eq!(
        listed(nft).unwrap(),
        Vec::<String>::new(),
        "replaced, not appended"
    );
    nft.clear().unwrap();
    assert_eq!(listed(nft), None);
    nft.clear().unwrap();
}

#[test]
fn nft_refusals_carry_its_message() {
    if !root() {
        eprintln!("skipped: needs root (nft)");
        return;
    }
    let guard = TableGuard(unique_table(1));
    // Longer than an interface name can be: nft refuses the batch, and nothing is applied.
    let rs = Ruleset {
        networks: vec![net("bt_fw_far_too_long_name", "10.198.3.0/24", false)],
        ports: vec![],
    };
    let err = guard.0.apply(&rs).unwrap_err().to_string();
    assert!(
        err.contains(&format!("apply table ip {}: ", guard.0.table())),
        "{err}"
    );
    assert!(
        err.contains("exceeds maximum length"),
        "nft's own message: {err}"
    );
    assert_eq!(listed(&guard.0), None, "all or nothing");
}

#[test]
fn nft_errors_name_the_table() {
    let nft = Nft::new("berth_t_missing").with_program("/nonexistent/nft");
    let err = nft.apply(&Ruleset::default()).unwrap_err().to_string();
    assert!(err.contains("apply table ip berth_t_missing"), "{err}");
}
