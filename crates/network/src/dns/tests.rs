//! The message logic, without sockets: queries built with hickory, answers parsed back.

use super::*;
use hickory_proto::op::Query;
use std::collections::HashMap;
use std::sync::Mutex;

/// Names per container, and every lookup it was asked for.
#[derive(Default)]
pub(super) struct FakeResolver {
    pub names: HashMap<String, Vec<Ipv4Addr>>,
    pub ptrs: HashMap<Ipv4Addr, String>,
    pub asked: Mutex<Vec<(String, String)>>,
}

impl FakeResolver {
    pub fn new() -> FakeResolver {
        let mut r = FakeResolver::default();
        r.names
            .insert("web".into(), vec![Ipv4Addr::new(172, 18, 0, 2)]);
        r.names
            .insert("web.mynet".into(), vec![Ipv4Addr::new(172, 18, 0, 2)]);
        r.names.insert(
            "db".into(),
            vec![Ipv4Addr::new(172, 18, 0, 3), Ipv4Addr::new(172, 18, 0, 4)],
        );
        r.names.insert("ghost".into(), Vec::new());
        r.ptrs
            .insert(Ipv4Addr::new(172, 18, 0, 2), "web.mynet".into());
        r
    }
}

impl Resolve for FakeResolver {
    fn lookup_a(&self, container: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        self.asked
            .lock()
            .unwrap()
            .push((container.to_string(), name.to_string()));
        self.names.get(name).cloned()
    }

    fn lookup_ptr(&self, _container: &str, ip: Ipv4Addr) -> Option<String> {
        self.ptrs.get(&ip).cloned()
    }
}

pub(super) fn query(name: &str, rtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.id = 0x1234;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    msg
}

fn run(msg: &Message, transport: Transport, resolver: &FakeResolver) -> Reply {
    handle(&msg.to_vec().unwrap(), transport, "c1", resolver)
}

fn answer(reply: Reply) -> Message {
    match reply {
        Reply::Answer(bytes) => Message::from_vec(&bytes).unwrap(),
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn a_records(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(A(ip)) => *ip,
            other => panic!("not an A record: {other:?}"),
        })
        .collect()
}

#[test]
fn owned_a_is_answered_authoritatively() {
    let r = FakeResolver::new();
    let resp = answer(run(&query("web.", RecordType::A), Transport::Udp, &r));
    assert_eq!(resp.metadata.id, 0x1234);
    assert_eq!(resp.metadata.message_type, MessageType::Response);
    assert_eq!(resp.metadata.response_code, ResponseCode::NoError);
    assert!(resp.metadata.authoritative);
    assert!(resp.metadata.recursion_available);
    assert!(resp.metadata.recursion_desired);
    assert!(!resp.metadata.truncation);
    assert_eq!(resp.queries.len(), 1);
    assert_eq!(resp.queries[0].name().to_ascii(), "web.");
    assert_eq!(a_records(&resp), vec![Ipv4Addr::new(172, 18, 0, 2)]);
    assert_eq!(resp.answers[0].ttl, TTL);
    assert_eq!(resp.answers[0].name.to_ascii(), "web.");
    assert!(resp.edns.is_none());
    assert_eq!(
        *r.asked.lock().unwrap(),
        vec![("c1".to_string(), "web".to_string())]
    );
}

#[test]
fn names_are_looked_up_lowercased_without_the_dot() {
    let r = FakeResolver::new();
    let resp = answer(run(&query("Web.MyNet", RecordType::A), Transport::Udp, &r));
    assert_eq!(a_records(&resp), vec![Ipv4Addr::new(172, 18, 0, 2)]);
    // The question keeps the client's spelling.
    assert_eq!(resp.answers[0].name.to_ascii(), "Web.MyNet.");
    assert_eq!(r.asked.lock().unwrap()[0].1, "web.mynet");
}

#[test]
fn every_address_of_an_alias_is_answered() {
    let r = FakeResolver::new();
    let resp = answer(run(&query("db.", RecordType::A), Transport::Udp, &r));
    let mut ips = a_records(&resp);
    ips.sort();
    assert_eq!(
        ips,
        vec![Ipv4Addr::new(172, 18, 0, 3), Ipv4Addr::new(172, 18, 0, 4)]
    );
}

#[test]
fn owned_names_without_addresses_get_an_empty_noerror() {
    let r = FakeResolver::new();
    for (name, rtype) in [
        ("web.", RecordType::AAAA),
        ("ghost.", RecordType::A),
        ("ghost.", RecordType::AAAA),
    ] {
        let resp = answer(run(&query(name, rtype), Transport::Udp, &r));
        assert_eq!(resp.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(resp.answers.is_empty(), "{name} {rtype}");
        assert!(resp.metadata.authoritative);
    }
}

#[test]
fn foreign_names_and_other_types_are_forwarded() {
    let r = FakeResolver::new();
    assert_eq!(
        run(&query("example.com.", RecordType::A), Transport::Udp, &r),
        Reply::Forward { max_size: 512 }
    );
    assert_eq!(
        run(&query("example.com.", RecordType::AAAA), Transport::Tcp, &r),
        Reply::Forward { max_size: 512 }
    );
    // Owned names with other record types go upstream too, as in Docker.
    assert_eq!(
        run(&query("web.", RecordType::MX), Transport::Udp, &r),
        Reply::Forward { max_size: 512 }
    );
    // A label with odd bytes cannot be a container's name.
    let odd = Name::from_labels(vec![b"we.b".to_vec()]).unwrap();
    let mut msg = query("x.", RecordType::A);
    msg.queries[0].set_name(odd);
    assert_eq!(
        run(&msg, Transport::Udp, &r),
        Reply::Forward { max_size: 512 }
    );
    // Other classes.
    let mut msg = query("web.", RecordType::A);
    msg.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(
        run(&msg, Transport::Udp, &r),
        Reply::Forward { max_size: 512 }
    );
    // The client's EDNS buffer size decides how large a forwarded answer may be.
    let mut msg = query("example.com.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    assert_eq!(
        run(&msg, Transport::Udp, &r),
        Reply::Forward { max_size: 4096 }
    );
}

#[test]
fn reverse_lookups() {
    let r = FakeResolver::new();
    let resp = answer(run(
        &query("2.0.18.172.in-addr.arpa.", RecordType::PTR),
        Transport::Udp,
        &r,
    ));
    assert_eq!(resp.answers.len(), 1);
    match &resp.answers[0].data {
        RData::PTR(PTR(name)) => assert_eq!(name.to_ascii(), "web.mynet."),
        other => panic!("not a PTR: {other:?}"),
    }
    assert_eq!(resp.answers[0].ttl, TTL);
    for name in [
        "3.0.18.172.in-addr.arpa.",      // not a container
        "0.18.172.in-addr.arpa.",        // not a full address
        "2.0.18.172.in-addr.arpa.evil.", // not arpa
        "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa.",
    ] {
        assert_eq!(
            run(&query(name, RecordType::PTR), Transport::Udp, &r),
            Reply::Forward { max_size: 512 },
            "{name}"
        );
    }
}

#[test]
fn edns_queries_get_edns_answers() {
    let r = FakeResolver::new();
    let mut msg = query("web.", RecordType::A);
    msg.set_edns(Edns::new());
    let resp = answer(run(&msg, Transport::Udp, &r));
    assert_eq!(
        resp.edns.as_ref().map(|e| e.max_payload()),
        Some(EDNS_PAYLOAD)
    );
    assert_eq!(a_records(&resp).len(), 1);
}

#[test]
fn large_answers_are_truncated_over_udp_only() {
    let mut r = FakeResolver::new();
    let many: Vec<Ipv4Addr> = (1..=100).map(|i| Ipv4Addr::new(172, 18, 1, i)).collect();
    r.names.insert("many".into(), many);
    let resp = answer(run(&query("many.", RecordType::A), Transport::Udp, &r));
    assert!(resp.metadata.truncation);
    assert!(resp.answers.is_empty());
    assert_eq!(resp.metadata.id, 0x1234);
    assert_eq!(resp.queries.len(), 1);
    let resp = answer(run(&query("many.", RecordType::A), Transport::Tcp, &r));
    assert!(!resp.metadata.truncation);
    assert_eq!(resp.answers.len(), 100);
    // A client with a big enough EDNS buffer gets them all over UDP.
    let mut msg = query("many.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    msg.set_edns(edns);
    let resp = answer(run(&msg, Transport::Udp, &r));
    assert_eq!(resp.answers.len(), 100);
}

#[test]
fn malformed_queries_are_dropped_or_formerr() {
    let r = FakeResolver::new();
    for garbage in [
        &b""[..],
        &b"\x12"[..],
        &b"\x12\x34\x01"[..],
        &[0xffu8; 40][..],
    ] {
        assert_eq!(handle(garbage, Transport::Udp, "c1", &r), Reply::Drop);
    }
    assert_eq!(handle(b"", Transport::Tcp, "c1", &r), Reply::Drop);
    let resp = answer(handle(b"\x12\x34\x01", Transport::Tcp, "c1", &r));
    assert_eq!(resp.metadata.id, 0x1234);
    assert_eq!(resp.metadata.response_code, ResponseCode::FormErr);
    assert!(resp.metadata.recursion_desired);
    // A header claiming a question that is not there.
    let mut cut = query("web.", RecordType::A).to_vec().unwrap();
    cut.truncate(16);
    assert_eq!(handle(&cut, Transport::Udp, "c1", &r), Reply::Drop);
    let resp = answer(handle(&cut, Transport::Tcp, "c1", &r));
    assert_eq!(resp.metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn odd_but_well_formed_messages() {
    let r = FakeResolver::new();
    // Responses are never answered (no loops between servers).
    let mut msg = query("web.", RecordType::A);
    msg.metadata.message_type = MessageType::Response;
    assert_eq!(run(&msg, Transport::Udp, &r), Reply::Drop);
    // No question, or two.
    let mut msg = query("web.", RecordType::A);
    msg.queries.clear();
    let resp = answer(run(&msg, Transport::Udp, &r));
    assert_eq!(resp.metadata.response_code, ResponseCode::FormErr);
    let mut msg = query("web.", RecordType::A);
    msg.add_query(Query::query(
        Name::from_ascii("db.").unwrap(),
        RecordType::A,
    ));
    let resp = answer(run(&msg, Transport::Udp, &r));
    assert_eq!(resp.metadata.response_code, ResponseCode::FormErr);
    // Other opcodes.
    let mut msg = query("web.", RecordType::A);
    msg.metadata.op_code = OpCode::Notify;
    let resp = answer(run(&msg, Transport::Udp, &r));
    assert_eq!(resp.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(resp.metadata.op_code, OpCode::Notify);
    // The root name is nobody's.
    assert_eq!(
        run(&query(".", RecordType::A), Transport::Udp, &r),
        Reply::Forward { max_size: 512 }
    );
}

#[test]
fn servfail_keeps_id_and_question() {
    let msg = query("example.com.", RecordType::A);
    let resp = Message::from_vec(&servfail(&msg.to_vec().unwrap()).unwrap()).unwrap();
    assert_eq!(resp.metadata.id, 0x1234);
    assert_eq!(resp.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(resp.metadata.message_type, MessageType::Response);
    assert_eq!(resp.queries, msg.queries);
    assert!(servfail(b"\x00").is_none());
}
