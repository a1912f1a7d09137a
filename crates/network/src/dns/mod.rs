//! The embedded DNS server containers on user-defined networks query at 127.0.0.11, as in Docker.
//!
//! Names berth knows (containers, their aliases, `name.network`) are answered from a [`Resolve`]
//! implementation the engine provides; everything else is forwarded, unchanged, to the host's resolvers.
//! The module is split in two:
//! - this file decides, as pure functions over raw DNS messages ([`handle`], [`servfail`]): answer, forward
//!   or drop. They are unit-tested without sockets;
//! - [`server`] owns the sockets: a UDP socket and a TCP listener bound inside the container's network
//!   namespace, served by one task on the caller's runtime, with forwarding from the daemon's own namespace.
//!
//! Behaviour, as Docker's resolver: `A` for an owned name gets every address (shuffled, for alias round
//! robin) with a TTL of 600 s, the authoritative and recursion-available flags; `AAAA` for an owned name gets
//! an empty NOERROR (berth networks are IPv4); `PTR` for an owned `in-addr.arpa` address gets the name;
//! anything else goes upstream. Malformed queries are dropped over UDP and answered FORMERR over TCP.

mod server;

pub use server::{serve_in_netns, DnsServer};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use std::net::Ipv4Addr;

/// The TTL of the records berth answers with (Docker's `respTTL`).
pub const TTL: u32 = 600;

/// The UDP payload size berth advertises in its EDNS answers.
const EDNS_PAYLOAD: u16 = 1232;

/// The names berth owns, as the engine knows them. Called on the server's task for every query: lookups must
/// be quick and must not block (an in-memory table behind a lock held briefly).
pub trait Resolve: Send + Sync + 'static {
    /// `name` is lowercased, without the trailing dot. `None`: not a name berth knows -> forward upstream.
    /// `Some(vec)`: berth owns the name (possibly with no IPv4 addresses).
    fn lookup_a(&self, container: &str, name: &str) -> Option<Vec<Ipv4Addr>>;
    /// Reverse lookup of a container address on this container's networks -> "name.network" style name.
    fn lookup_ptr(&self, container: &str, ip: Ipv4Addr) -> Option<String>;
}

/// How the query arrived, which decides truncation and what to do with garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back to the client.
    Answer(Vec<u8>),
    /// Not a name berth owns: send the query, unchanged, upstream. An answer for a UDP client may be up to
    /// `max_size` bytes (512, or what the client's EDNS record allows).
    Forward { max_size: u16 },
    /// Say nothing: not a query, or a malformed one over UDP.
    Drop,
}

/// Decide what to do with the DNS message `query` sent by `container`'s processes.
pub fn handle(
    query: &[u8],
    transport: Transport,
    container: &str,
    resolver: &dyn Resolve,
) -> Reply {
    let mut msg = match Message::from_vec(query) {
        Ok(msg) => msg,
        Err(_) => return malformed(query, transport),
    };
    if msg.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    if msg.metadata.op_code != OpCode::Query {
        return Reply::Answer(error_reply(msg, ResponseCode::NotImp));
    }
    if msg.queries.len() != 1 {
        return Reply::Answer(error_reply(msg, ResponseCode::FormErr));
    }
    let max_size = msg.max_payload();
    let forward = Reply::Forward { max_size };
    let q = &msg.queries[0];
    if q.query_class() != DNSClass::IN {
        return forward;
    }
    let name = q.name().clone();
    let answers: Vec<Record> = match q.query_type() {
        RecordType::A | RecordType::AAAA => {
            let Some(key) = lookup_key(&name) else {
                return forward;
            };
            let Some(mut ips) = resolver.lookup_a(container, &key) else {
                return forward;
            };
            if q.query_type() == RecordType::AAAA {
                Vec::new()
            } else {
                ips.shuffle(&mut rand::thread_rng());
                ips.into_iter()
                    .map(|ip| Record::from_rdata(name.clone(), TTL, RData::A(A(ip))))
                    .collect()
            }
        }
        RecordType::PTR => {
            let Some(ip) = arpa_v4(&name) else {
                return forward;
            };
            let Some(target) = resolver
                .lookup_ptr(container, ip)
                .and_then(|n| Name::from_ascii(n.trim_end_matches('.')).ok())
                .map(|mut n| {
                    n.set_fqdn(true);
                    n
                })
            else {
                return forward;
            };
            vec![Record::from_rdata(name, TTL, RData::PTR(PTR(target)))]
        }
        _ => return forward,
    };
    let had_edns = msg.edns.is_some();
    msg.metadata = response_metadata(&msg);
    msg.metadata.authoritative = true;
    msg.answers = answers;
    msg.authorities.clear();
    msg.additionals.clear();
    msg.signature = None;
    msg.edns = had_edns.then(our_edns);
    let Ok(bytes) = msg.to_vec() else {
        return Reply::Answer(error_reply(msg, ResponseCode::ServFail));
    };
    if transport == Transport::Udp && bytes.len() > usize::from(max_size) {
        // Too big for the client's buffer: the header and the question with TC set, so it retries over TCP.
        return Reply::Answer(msg.truncate().to_vec().unwrap_or_default());
    }
    Reply::Answer(bytes)
}

/// The SERVFAIL answer to `query` (same id and question), for when no upstream answered. `None` when the
/// query cannot be parsed.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_vec(query).ok()?;
    Some(error_reply(msg, ResponseCode::ServFail))
}

/// The name as the resolver wants it: lowercased, without the trailing dot. `None` for names that cannot be
/// a container's (a label with a dot, a space or a non-ASCII byte in it), which then go upstream.
fn lookup_key(name: &Name) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    for (i, label) in name.iter().enumerate() {
        if label.iter().any(|b| !b.is_ascii_graphic() || *b == b'.') {
            return None;
        }
        if i > 0 {
            key.push('.');
        }
        key.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    (!key.is_empty()).then_some(key)
}

/// The IPv4 address of a full `d.c.b.a.in-addr.arpa.` name.
fn arpa_v4(name: &Name) -> Option<Ipv4Addr> {
    match name.parse_arpa_name().ok()? {
        ipnet::IpNet::V4(net) if net.prefix_len() == 32 => Some(net.addr()),
        _ => None,
    }
}

/// Response flags for `msg`: its id, opcode, RD and CD copied; recursion available, as Docker sets it.
fn response_metadata(msg: &Message) -> hickory_proto::op::Metadata {
    let mut meta = hickory_proto::op::Metadata::response_from_request(&msg.metadata);
    meta.recursion_available = true;
    meta
}

fn our_edns() -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns
}

/// An answer with `code` and no records, keeping the question.
fn error_reply(mut msg: Message, code: ResponseCode) -> Vec<u8> {
    let had_edns = msg.edns.is_some();
    msg.metadata = response_metadata(&msg);
    msg.metadata.response_code = code;
    msg.answers.clear();
    msg.authorities.clear();
    msg.additionals.clear();
    msg.signature = None;
    msg.edns = had_edns.then(our_edns);
    if code == ResponseCode::FormErr {
        msg.queries.clear();
    }
    msg.to_vec()
        .unwrap_or_else(|_| bare_error(&msg.metadata.id.to_be_bytes(), code))
}

/// A message that did not parse: dropped over UDP; over TCP a FORMERR header if at least the id is there.
fn malformed(query: &[u8], transport: Transport) -> Reply {
    match transport {
        Transport::Tcp if query.len() >= 2 => {
            Reply::Answer(bare_error(query, ResponseCode::FormErr))
        }
        _ => Reply::Drop,
    }
}

/// A 12-byte answer header with `code`, the id (and the opcode and RD bit, when present) taken from `query`.
fn bare_error(query: &[u8], code: ResponseCode) -> Vec<u8> {
    let flags = query.get(2).copied().unwrap_or(0) & 0x79; // opcode and RD
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(&query[..2]);
    out[2] = 0x80 | flags;
    out[3] = 0x80 | (code.low() & 0x0f);
    out
}

#[cfg(test)]
mod tests;
