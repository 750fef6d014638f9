//! What one server spends forwarding a DM to the recipient's home server,
//! on a plain SOCP link (one RSA-4096 signature on the SERVER_DELIVER) and on
//! a secure link (the same frame, unsigned, sealed in the link's channel).
//!
//! Two real `Server`s (fixture keys 1 and 2) are wired by a tiny in-memory
//! pump: B joins through A, so they link (and, with `secure_links`, run the
//! handshake); Alice is on A, Bob on B. The timed part is A handling Alice's
//! MSG_DIRECT for Bob and producing what goes out (the SERVER_DELIVER to B and
//! the ACK to Alice). B's side is not timed: it is the same in both profiles
//! apart from opening the record (it signs the USER_DELIVER for Bob's plain
//! user link either way).
//!
//! Run: `cargo bench -p socp-core --bench secure_hop`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use socp_core::crypto::fixtures;
use socp_core::server::{
    Action, BootstrapEntry, Connection, LinkId, Server, ServerConfig, StoredState,
};
use socp_core::time::{Instant, Now};
use socp_core::wire::messages::{MsgDirect, UserHello};
use socp_core::wire::{Envelope, Limits, Message, MsgType, b64};

const ALICE: &str = "00000000-0000-4000-8000-00000000000a";
const BOB: &str = "00000000-0000-4000-8000-00000000000b";

fn now() -> Now {
    Now::new(Instant::from_micros(1_000_000), 1_760_000_000_000)
}

/// Two servers and the links between them, as the pump knows them.
struct Pair {
    a: Server,
    b: Server,
    /// (link id on A, link id on B) of the server link.
    link: Option<(LinkId, LinkId)>,
    alice: LinkId,
}

impl Pair {
    /// Moves frames between A and B until both are quiet; frames for users
    /// are dropped. Handles B's dial of A.
    fn pump(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(action) = self.b.poll_action() {
                if let Action::Dial { link, .. } = action {
                    let on_a = self.a.handle_connected(
                        now(),
                        Connection::Inbound {
                            remote: "127.0.0.1:2".into(),
                        },
                    );
                    self.link = Some((on_a, link));
                    let _ = self.b.handle_connected(now(), Connection::Dialed(link));
                    moved = true;
                }
            }
            while self.a.poll_action().is_some() {}
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
            let Some((on_a, on_b)) = self.link else {
                continue;
            };
            while let Some(tx) = self.a.poll_transmit() {
                if tx.link == on_a {
                    self.b.handle_frame(now(), on_b, &tx.frame);
                    moved = true;
                }
            }
            while let Some(tx) = self.b.poll_transmit() {
                if tx.link == on_b {
                    self.a.handle_frame(now(), on_a, &tx.frame);
                    moved = true;
                }
            }
            if !moved {
                return;
            }
        }
    }
}

fn hello(server: &mut Server, user: &str, key: usize) -> LinkId {
    let link = server.handle_connected(
        now(),
        Connection::Inbound {
            remote: "127.0.0.1:1".into(),
        },
    );
    let hello = UserHello {
        client: Some("bench".into()),
        pubkey: fixtures::rsa_identity_ref(key).public().to_wire(),
        enc_pubkey: None,
        caps: Vec::new(),
    };
    let frame = Envelope::new(user, "server", now().unix_ms, Message::from(hello)).encode();
    server.handle_frame(now(), link, &frame);
    link
}

fn pair(secure: bool) -> Pair {
    let mut cfg_a = ServerConfig::default();
    cfg_a.secure_links = secure;
    cfg_a.host = "a.invalid".into();
    cfg_a.port = 1;
    let a = Server::new(
        cfg_a,
        fixtures::rsa_identity(1),
        [1; 32],
        StoredState::default(),
        now(),
    );
    let mut cfg_b = ServerConfig::default();
    cfg_b.secure_links = secure;
    cfg_b.host = "b.invalid".into();
    cfg_b.port = 2;
    cfg_b.bootstrap = vec![BootstrapEntry {
        host: "a.invalid".into(),
        port: 1,
        pubkey: Some(fixtures::rsa_identity_ref(1).public().to_wire()),
    }];
    let b = Server::new(
        cfg_b,
        fixtures::rsa_identity(2),
        [2; 32],
        StoredState::default(),
        now(),
    );
    let mut pair = Pair {
        a,
        b,
        link: None,
        alice: LinkId(0),
    };
    pair.b.handle_timeout(now());
    pair.pump();
    pair.alice = hello(&mut pair.a, ALICE, 3);
    hello(&mut pair.b, BOB, 4);
    pair.pump();
    assert_eq!(pair.a.linked_servers().len(), 1, "the servers linked");
    assert_eq!(
        pair.a.secure_servers().len(),
        usize::from(secure),
        "secure link state"
    );
    assert!(pair.a.online_users().contains(&BOB.to_owned()));
    pair
}

fn msg_direct(n: u64) -> Vec<u8> {
    let mut bytes = [0x5a_u8; 512];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    let dm = MsgDirect {
        ciphertext: b64::encode(&bytes),
        sender_pub: Some(fixtures::rsa_identity_ref(3).public().to_wire()),
        content_sig: Some(b64::encode(&[7u8; 512])),
    };
    Envelope::new(ALICE, BOB, now().unix_ms, Message::from(dm)).encode()
}

/// A handles Alice's DM; returns the frames it sent to B.
fn forward(pair: &mut Pair, frame: &[u8]) -> usize {
    let alice = pair.alice;
    pair.a.handle_frame(now(), alice, frame);
    let (on_a, _) = pair.link.unwrap();
    let mut to_b = 0;
    while let Some(tx) = pair.a.poll_transmit() {
        if tx.link == on_a {
            to_b += 1;
            black_box(&tx.frame);
        }
    }
    while pair.a.poll_action().is_some() {}
    while pair.a.poll_event().is_some() {}
    to_b
}

fn hop(c: &mut Criterion) {
    let mut group = c.benchmark_group("hop");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    for (name, secure) in [("plain_forward_dm", false), ("secure_forward_dm", true)] {
        let mut pair = pair(secure);
        // The frame that leaves A is a SERVER_DELIVER: signed on the plain
        // link, sealed on the secure one.
        let alice = pair.alice;
        pair.a.handle_frame(now(), alice, &msg_direct(u64::MAX));
        let (on_a, _) = pair.link.unwrap();
        let out: Vec<_> = std::iter::from_fn(|| pair.a.poll_transmit())
            .filter(|tx| tx.link == on_a)
            .collect();
        assert_eq!(out.len(), 1);
        let env = Envelope::decode(&out[0].frame, &Limits::default()).unwrap();
        let want = if secure {
            MsgType::Secure
        } else {
            MsgType::ServerDeliver
        };
        assert_eq!(env.msg_type, want);
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    msg_direct(n)
                },
                |frame| assert_eq!(forward(&mut pair, &frame), 1),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);
