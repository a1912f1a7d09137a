//! The whole rule set berth needs, described as data and applied as one atomic nftables transaction.
//!
//! Everything lives in ONE table of family `ip` whose name the caller picks (the daemon uses `berth`).
//! [`describe`] turns a [`Ruleset`] (every network and every published port) into one batch: add the
//! table, delete it, add it again with all chains and rules. The batch works whether or not the table
//! existed, replaces it atomically (no moment without rules), and gives a host that lost our rules (a
//! `nft flush ruleset`, a firewall reload) all of them back on the next apply. The caller (the engine)
//! keeps the full [`Ruleset`] and applies it after every change, one apply at a time.
//!
//! The chains (Docker's semantics, with the kernel forwarding published ports instead of a userland proxy):
//!
//! | chain | hook, priority | rules |
//! |---|---|---|
//! | `guard` | filter prerouting -300 (raw) | drop `ip daddr 127.0.0.0/8` arriving on a berth bridge: with `route_localnet` on, a neighbour could otherwise reach the host's loopback services (CVE-2020-8558) |
//! | `prerouting` | nat prerouting -100 (dstnat) | per published port: `fib daddr type local` (or `ip daddr HOST_IP`) + `tcp dport HOST_PORT` → `dnat to CONTAINER:PORT`. A port published on 127.x gets no rule here, so it is reachable from the host only |
//! | `output` | nat output -100 | the same DNAT for locally made packets (`curl 127.0.0.1:PORT` on the host) |
//! | `postrouting` | nat postrouting 100 (srcnat) | outbound masquerade per network (`ip saddr SUBNET oifname != BRIDGE`); loopback sources leaving through a bridge; hairpin (`oifname BRIDGE ct status dnat ip saddr SUBNET`, a container reaching a published port on its own network) |
//! | `forward` | filter forward 0, policy accept | internal networks cut off from other interfaces; established/related accept; published ports accepted (`ct status dnat`, so also from containers on other berth networks); isolation between berth bridges; then everything else entering a bridge from outside is dropped (Docker 28's default: unpublished ports are not reachable from the LAN) |
//!
//! Ports published on an internal network are ignored, as Docker does. Applying costs one `nft -j -f -`
//! process, about 9 ms; [`Firewall::apply`] blocks, so async callers use `spawn_blocking`.

use crate::{NetworkError, Result};
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, SetItem, CT,
};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Nftables, Rule, Table};
use nftables::stmt::{Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the firewall needs to know about one bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRules {
    pub bridge: String,
    pub subnet: ipnet::Ipv4Net,
    /// Masquerade traffic leaving the network (Docker's `com.docker.network.bridge.enable_ip_masquerade`).
    pub masquerade: bool,
    /// No traffic to or from anything but the bridge itself (`docker network create --internal`).
    pub internal: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub proto: Proto,
    /// `None`: every host address (Docker's `0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    /// The bridge the container is reached through.
    pub bridge: String,
}

/// Everything berth's firewall holds: every bridge network and every published port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortMapping>,
}

/// Applies a whole [`Ruleset`] at once.
pub trait Firewall: Send + Sync {
    /// Replace everything berth has in the firewall with `rs`, atomically.
    fn apply(&self, rs: &Ruleset) -> Result<()>;
    /// Remove everything berth has in the firewall; nothing there is not an error.
    fn clear(&self) -> Result<()>;
}

const GUARD: &str = "guard";
const PREROUTING: &str = "prerouting";
const OUTPUT: &str = "output";
const POSTROUTING: &str = "postrouting";
const FORWARD: &str = "forward";

/// Builds the rules of one table.
struct Builder {
    table: String,
    objects: Vec<NfObject<'static>>,
}

impl Builder {
    fn table(&self) -> Table<'static> {
        Table {
            family: NfFamily::IP,
            name: Cow::Owned(self.table.clone()),
            handle: None,
        }
    }

    fn cmd(&mut self, cmd: NfCmd<'static>) {
        self.objects.push(NfObject::CmdObject(cmd));
    }

    fn chain(&mut self, name: &str, kind: NfChainType, hook: NfHook, prio: i32) {
        self.cmd(NfCmd::Add(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(name.to_string()),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(prio),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        })));
    }

    fn rule(&mut self, chain: &str, comment: String, expr: Vec<Statement<'static>>) {
        self.cmd(NfCmd::Add(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Owned(chain.to_string()),
            expr: Cow::Owned(expr),
            handle: None,
            index: None,
            comment: Some(Cow::Owned(comment)),
        })));
    }
}

fn string(s: impl ToString) -> Expression<'static> {
    Expression::String(Cow::Owned(s.to_string()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}

fn prefix(net: ipnet::Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(string(net.network())),
        len: u32::from(net.prefix_len()),
    }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn set_of(items: impl IntoIterator<Item = Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        items.into_iter().map(SetItem::Element).collect(),
    ))
}

fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

fn ne(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::NEQ, right)
}

fn iifname(name: &str) -> Statement<'static> {
    eq(meta(MetaKey::Iifname), string(name))
}

fn oifname(name: &str) -> Statement<'static> {
    eq(meta(MetaKey::Oifname), string(name))
}

fn ct_status_dnat() -> Statement<'static> {
    matches(ct("status"), Operator::IN, string("dnat"))
}

fn daddr_is_local() -> Statement<'static> {
    eq(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        string("local"),
    )
}

fn dport(proto: Proto, port: u16) -> Statement<'static> {
    eq(
        payload(proto.as_str(), "dport"),
        Expression::Number(u32::from(port)),
    )
}

fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

fn drop_() -> Statement<'static> {
    Statement::Drop(None)
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

fn loopback() -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).expect("127.0.0.0/8 is a valid prefix")
}

/// The batch that makes table `ip <table>` hold exactly `rs` (see the module docs). Pure: same input, same
/// output, so it is golden-tested without root.
pub fn describe(table: &str, rs: &Ruleset) -> Nftables<'static> {
    let mut b = Builder {
        table: table.to_string(),
        objects: Vec::new(),
    };
    // add + delete + add: works whether or not the table existed, in one transaction.
    b.cmd(NfCmd::Add(NfListObject::Table(b.table())));
    b.cmd(NfCmd::Delete(NfListObject::Table(b.table())));
    b.cmd(NfCmd::Add(NfListObject::Table(b.table())));
    b.chain(GUARD, NfChainType::Filter, NfHook::Prerouting, -300);
    b.chain(PREROUTING, NfChainType::NAT, NfHook::Prerouting, -100);
    b.chain(OUTPUT, NfChainType::NAT, NfHook::Output, -100);
    b.chain(POSTROUTING, NfChainType::NAT, NfHook::Postrouting, 100);
    b.chain(FORWARD, NfChainType::Filter, NfHook::Forward, 0);

    let internal: HashSet<&str> = rs
        .networks
        .iter()
        .filter(|n| n.internal)
        .map(|n| n.bridge.as_str())
        .collect();
    let published: Vec<&PortMapping> = rs
        .ports
        .iter()
        .filter(|p| !internal.contains(p.bridge.as_str()))
        .collect();

    for n in &rs.networks {
        b.rule(
            GUARD,
            format!("{}: no packets to loopback addresses", n.bridge),
            vec![
                iifname(&n.bridge),
                eq(payload("ip", "daddr"), prefix(loopback())),
                drop_(),
            ],
        );
    }

    for p in &published {
        let host_ip = p.host_ip.filter(|ip| !ip.is_unspecified());
        let shown = format!(
            "{} {}:{} -> {}:{}",
            p.proto,
            host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            p.host_port,
            p.container_ip,
            p.container_port
        );
        let dest = match host_ip {
            None => daddr_is_local(),
            Some(ip) => eq(payload("ip", "daddr"), string(ip)),
        };
        let dnat = Statement::DNAT(Some(NAT {
            addr: Some(string(p.container_ip)),
            family: None,
            port: Some(Expression::Number(u32::from(p.container_port))),
            flags: None,
        }));
        let expr = vec![dest, dport(p.proto, p.host_port), dnat];
        // A port published on a loopback address must not be reachable from other interfaces.
        if !host_ip.is_some_and(|ip| ip.is_loopback()) {
            b.rule(PREROUTING, format!("publish {shown}"), expr.clone());
        }
        b.rule(OUTPUT, format!("publish {shown} (from the host)"), expr);
    }

    for n in &rs.networks {
        let br = n.bridge.as_str();
        if n.masquerade && !n.internal {
            b.rule(
                POSTROUTING,
                format!("{br}: masquerade outbound"),
                vec![
                    eq(payload("ip", "saddr"), prefix(n.subnet)),
                    ne(meta(MetaKey::Oifname), string(br)),
                    masquerade(),
                ],
            );
        }
        b.rule(
            POSTROUTING,
            format!("{br}: loopback sources get the bridge address"),
            vec![
                oifname(br),
                eq(payload("ip", "saddr"), prefix(loopback())),
                masquerade(),
            ],
        );
        b.rule(
            POSTROUTING,
            format!("{br}: hairpin to published ports"),
            vec![
                oifname(br),
                ct_status_dnat(),
                eq(payload("ip", "saddr"), prefix(n.subnet)),
                masquerade(),
            ],
        );
    }

    for n in rs.networks.iter().filter(|n| n.internal) {
        let br = n.bridge.as_str();
        b.rule(
            FORWARD,
            format!("{br}: internal, nothing leaves"),
            vec![iifname(br), ne(meta(MetaKey::Oifname), string(br)), drop_()],
        );
        b.rule(
            FORWARD,
            format!("{br}: internal, nothing enters"),
            vec![oifname(br), ne(meta(MetaKey::Iifname), string(br)), drop_()],
        );
    }
    if !rs.networks.is_empty() {
        b.rule(
            FORWARD,
            "replies and related traffic".to_string(),
            vec![
                matches(
                    ct("state"),
                    Operator::IN,
                    Expression::List(vec![string("established"), string("related")]),
                ),
                accept(),
            ],
        );
    }
    // Several host ports may lead to one container port: one accept is enough.
    let mut accepted = HashSet::new();
    for p in &published {
        if !accepted.insert((&p.bridge, p.container_ip, p.proto, p.container_port)) {
            continue;
        }
        b.rule(
            FORWARD,
            format!(
                "{}: published {} {}:{}",
                p.bridge, p.proto, p.container_ip, p.container_port
            ),
            vec![
                oifname(&p.bridge),
                eq(payload("ip", "daddr"), string(p.container_ip)),
                dport(p.proto, p.container_port),
                ct_status_dnat(),
                accept(),
            ],
        );
    }
    for n in &rs.networks {
        let others: Vec<Expression<'static>> = rs
            .networks
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| string(&o.bridge))
            .collect();
        if others.is_empty() {
            continue;
        }
        b.rule(
            FORWARD,
            format!("{}: isolated from the other berth networks", n.bridge),
            vec![
                iifname(&n.bridge),
                eq(meta(MetaKey::Oifname), set_of(others)),
                drop_(),
            ],
        );
    }
    for n in rs.networks.iter().filter(|n| !n.internal) {
        let br = n.bridge.as_str();
        b.rule(
            FORWARD,
            format!("{br}: unpublished ports are not reachable from outside"),
            vec![oifname(br), ne(meta(MetaKey::Iifname), string(br)), drop_()],
        );
    }

    Nftables {
        objects: Cow::Owned(b.objects),
    }
}

/// The batch that removes table `ip <table>` whether or not it exists.
fn describe_clear(table: &str) -> Nftables<'static> {
    let t = Table {
        family: NfFamily::IP,
        name: Cow::Owned(table.to_string()),
        handle: None,
    };
    Nftables {
        objects: Cow::Owned(vec![
            NfObject::CmdObject(NfCmd::Add(NfListObject::Table(t.clone()))),
            NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(t))),
        ]),
    }
}

/// The firewall through the `nft` program (`nft -j -f -`, one transaction per call).
#[derive(Debug, Clone)]
pub struct Nft {
    table: String,
    program: PathBuf,
}

impl Nft {
    /// Rules in table `ip <table>`, applied with `nft` found on `PATH`.
    pub fn new(table: impl Into<String>) -> Self {
        Nft {
            table: table.into(),
            program: PathBuf::from("nft"),
        }
    }

    /// Use this `nft` binary instead of the one on `PATH`.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// What the kernel holds in our table now (`nft -j list table ip <table>`); `None` when there is no
    /// such table.
    pub fn current(&self) -> Result<Option<Nftables<'static>>> {
        let tables = nftables::helper::get_current_ruleset_with_args(
            Some(&self.program),
            ["list", "tables", "ip"],
        )
        .map_err(|e| self.error("list tables", e))?;
        let exists = tables.objects.iter().any(
            |o| matches!(o, NfObject::ListObject(NfListObject::Table(t)) if t.name == self.table),
        );
        if !exists {
            return Ok(None);
        }
        nftables::helper::get_current_ruleset_with_args(
            Some(&self.program),
            ["list", "table", "ip", self.table.as_str()],
        )
        .map(Some)
        .map_err(|e| self.error("list table", e))
    }

    /// `nft -j -f -` with `batch` on stdin: one transaction. (Run here rather than through
    /// `nftables::helper::apply_ruleset`, which leaves nft's stderr, the only useful part of a refusal,
    /// out of its error.)
    fn run(&self, what: &str, batch: &Nftables) -> Result<()> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let fail =
            |detail: String| NetworkError::Firewall(format!("{what} ip {}: {detail}", self.table));
        let json = serde_json::to_vec(batch).map_err(|e| fail(e.to_string()))?;
        let mut child = Command::new(&self.program)
            .args(["-j", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("run {}: {e}", self.program.display())))?;
        // nft reads all its input before it writes anything, so this cannot deadlock on a full pipe.
        let written = child
            .stdin
            .take()
            .map(|mut stdin| stdin.write_all(&json))
            .unwrap_or(Ok(()));
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("wait for {}: {e}", self.program.display())))?;
        if !out.status.success() {
            // One line per distinct message (nft repeats an error once per place it occurs).
            let mut lines: Vec<&str> = Vec::new();
            let stderr = String::from_utf8_lossy(&out.stderr);
            for line in stderr.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if !lines.contains(&line) {
                    lines.push(line);
                }
            }
            return Err(fail(format!("{} ({})", lines.join("; "), out.status)));
        }
        written.map_err(|e| fail(format!("write to {}: {e}", self.program.display())))
    }

    fn error(&self, what: &str, e: nftables::helper::NftablesError) -> NetworkError {
        use nftables::helper::NftablesError as E;
        let detail = match e {
            E::NftFailed { stderr, .. } => stderr.trim().to_string(),
            other => other.to_string(),
        };
        NetworkError::Firewall(format!("{what} ip {}: {detail}", self.table))
    }
}

impl Firewall for Nft {
    fn apply(&self, rs: &Ruleset) -> Result<()> {
        self.run("apply table", &describe(&self.table, rs))
    }

    fn clear(&self) -> Result<()> {
        self.run("delete table", &describe_clear(&self.table))
    }
}

/// A recording fake: remembers every applied rule set, how often it was cleared, and what is in force.
#[derive(Debug, Default)]
pub struct FakeFirewall {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    applied: Vec<Ruleset>,
    current: Option<Ruleset>,
    clears: usize,
}

impl FakeFirewall {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every rule set applied so far, oldest first.
    pub fn applied(&self) -> Vec<Ruleset> {
        self.lock().applied.clone()
    }

    /// The rule set in force: the last one applied, `None` after a clear.
    pub fn current(&self) -> Option<Ruleset> {
        self.lock().current.clone()
    }

    pub fn clears(&self) -> usize {
        self.lock().clears
    }
}

impl Firewall for FakeFirewall {
    fn apply(&self, rs: &Ruleset) -> Result<()> {
        let mut st = self.lock();
        st.applied.push(rs.clone());
        st.current = Some(rs.clone());
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        let mut st = self.lock();
        st.clears += 1;
        st.current = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
