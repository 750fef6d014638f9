//! What routing a direct message through `Server::handle_frame` costs, and how
//! much of it is RSA.
//!
//! - `route/local_dm`: MSG_DIRECT from a local user to another local user, out as
//!   USER_DELIVER (one RSA-4096 PSS signature);
//! - `route/server_deliver`: SERVER_DELIVER from a linked server for a local
//!   user (one RSA-4096 PSS verification, then one signature);
//! - `no_crypto/*`: the same frames without RSA. The server API has no way to
//!   route without signing, so this measures what the server does around the
//!   RSA operations, done by hand: decode the envelope, type its payload, build
//!   the USER_DELIVER, canonicalize its payload (the bytes that get signed) and
//!   encode it. It leaves out the map lookups and the seen cache, which are
//!   small next to the JSON work;
//! - `rsa/*`: one RSA-4096 PSS signature and one verification, for reference.
//!
//! Every routed DM is unique (its ciphertext carries a counter), so the seen
//! cache never short-circuits one. Run: `cargo bench -p socp-core --bench server_routing`.
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
use socp_core::crypto::rng_from_seed;
use socp_core::crypto::rsa::RsaIdentity;
use socp_core::server::{Connection, LinkId, Server, ServerConfig, StoredState};
use socp_core::time::{Instant, Now};
use socp_core::wire::messages::{
    MsgDirect, ServerDeliver, ServerHelloLink, UserDeliver, UserHello,
};
use socp_core::wire::{Envelope, Limits, Message, MsgType, b64};

const ALICE: &str = "00000000-0000-4000-8000-00000000000a";
const BOB: &str = "00000000-0000-4000-8000-00000000000b";
const PEER: &str = "00000000-0000-4000-9000-000000000001";

fn now() -> Now {
    Now::new(Instant::from_micros(1_000_000), 1_760_000_000_000)
}

/// Takes every output; returns the frames sent.
fn drain(server: &mut Server) -> Vec<bytes::Bytes> {
    let mut frames = Vec::new();
    while let Some(tx) = server.poll_transmit() {
        frames.push(tx.frame);
    }
    while server.poll_action().is_some() {}
    while server.poll_event().is_some() {}
    frames
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
    drain(server);
    link
}

/// A standalone server (fixture key 1) with Alice and Bob connected, and a peer
/// server (fixture key 2) linked to it.
fn setup() -> (Server, LinkId, LinkId) {
    let mut server = Server::new(
        ServerConfig::default(),
        fixtures::rsa_identity(1),
        [1; 32],
        StoredState::default(),
        now(),
    );
    let alice = hello(&mut server, ALICE, 3);
    hello(&mut server, BOB, 4);
    let peer_link = server.handle_connected(
        now(),
        Connection::Inbound {
            remote: "127.0.0.1:2".into(),
        },
    );
    let link_hello = ServerHelloLink {
        host: "peer.invalid".into(),
        port: 9000,
        pubkey: fixtures::rsa_identity_ref(2).public().to_wire(),
        caps: Vec::new(),
    };
    let to = server.id().to_owned();
    let frame = Envelope::new(PEER, to, now().unix_ms, Message::from(link_hello)).encode();
    server.handle_frame(now(), peer_link, &frame);
    drain(&mut server);
    assert_eq!(server.linked_servers(), vec![PEER.to_owned()]);
    assert_eq!(server.local_users().len(), 2);
    (server, alice, peer_link)
}

fn ciphertext(n: u64) -> String {
    // About the size of a real RSA-4096 OAEP ciphertext (683 base64url characters).
    let mut bytes = [0x5a_u8; 512];
    bytes[..8].copy_from_slice(&n.to_le_bytes());
    b64::encode(&bytes)
}

fn msg_direct(n: u64) -> Vec<u8> {
    let dm = MsgDirect {
        ciphertext: ciphertext(n),
        sender_pub: Some(fixtures::rsa_identity_ref(3).public().to_wire()),
        content_sig: Some(b64::encode(&[7u8; 512])),
    };
    Envelope::new(ALICE, BOB, now().unix_ms, Message::from(dm)).encode()
}

fn server_deliver(n: u64, peer: &RsaIdentity, server_id: &str) -> Vec<u8> {
    let d = ServerDeliver {
        user_id: BOB.into(),
        ciphertext: ciphertext(n),
        sender: "00000000-0000-4000-8000-0000000000cc".into(),
        sender_pub: fixtures::rsa_identity_ref(5).public().to_wire(),
        content_sig: b64::encode(&[7u8; 512]),
        orig_ts: Some(now().unix_ms),
    };
    let mut env = Envelope::new(PEER, server_id, now().unix_ms, Message::from(d));
    let mut rng = rng_from_seed([n as u8; 32]);
    let sig = peer.sign_pss(&mut rng, &env.signing_bytes()).unwrap();
    env.sig = Some(b64::encode(&sig));
    env.encode()
}

fn is_user_deliver(frames: &[bytes::Bytes]) -> bool {
    frames.len() == 1
        && Envelope::decode(&frames[0], &Limits::default())
            .is_ok_and(|e| e.msg_type == MsgType::UserDeliver && e.sig.is_some())
}

fn route(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));

    let (mut server, alice, _) = setup();
    let mut n = 0u64;
    // The frames are built outside the timed part.
    group.bench_function("local_dm", |b| {
        b.iter_batched(
            || {
                n += 1;
                msg_direct(n)
            },
            |frame| {
                server.handle_frame(now(), alice, &frame);
                let out = drain(&mut server);
                debug_assert!(is_user_deliver(&out));
                out
            },
            BatchSize::SmallInput,
        );
    });
    server.handle_frame(now(), alice, &msg_direct(u64::MAX));
    assert!(is_user_deliver(&drain(&mut server)), "a local DM routes");

    let (mut server, _, peer_link) = setup();
    let server_id = server.id().to_owned();
    let peer = fixtures::rsa_identity_ref(2);
    let mut n = 0u64;
    group.bench_function("server_deliver", |b| {
        b.iter_batched(
            || {
                n += 1;
                server_deliver(n, peer, &server_id)
            },
            |frame| {
                server.handle_frame(now(), peer_link, &frame);
                let out = drain(&mut server);
                debug_assert!(is_user_deliver(&out));
                out
            },
            BatchSize::SmallInput,
        );
    });
    server.handle_frame(
        now(),
        peer_link,
        &server_deliver(u64::MAX, peer, &server_id),
    );
    assert!(
        is_user_deliver(&drain(&mut server)),
        "a SERVER_DELIVER routes"
    );
    group.finish();
}

/// The work around the RSA operations, by hand: decode, type, build the
/// USER_DELIVER, canonicalize its payload, encode.
fn deliver_without_rsa(frame: &[u8]) -> Vec<u8> {
    let env = Envelope::decode(frame, &Limits::default()).unwrap();
    let deliver = match env.message().unwrap() {
        Message::MsgDirect(dm) => UserDeliver {
            ciphertext: dm.ciphertext,
            sender: env.from.clone(),
            sender_pub: dm.sender_pub.unwrap_or_default(),
            content_sig: dm.content_sig.unwrap_or_default(),
            orig_ts: Some(env.ts),
        },
        Message::ServerDeliver(d) => {
            // The server also canonicalizes the incoming payload to verify it.
            black_box(env.signing_bytes());
            UserDeliver {
                ciphertext: d.ciphertext,
                sender: d.sender,
                sender_pub: d.sender_pub,
                content_sig: d.content_sig,
                orig_ts: d.orig_ts,
            }
        }
        other => panic!("unexpected {other:?}"),
    };
    let mut out = Envelope::new("server", BOB, env.ts, Message::from(deliver));
    black_box(out.signing_bytes());
    out.sig = Some(b64::encode(&[9u8; 512]));
    out.encode()
}

fn no_crypto(c: &mut Criterion) {
    let mut group = c.benchmark_group("no_crypto");
    let dm = msg_direct(1);
    group.bench_function("local_dm", |b| {
        b.iter(|| deliver_without_rsa(black_box(&dm)));
    });
    let sd = server_deliver(1, fixtures::rsa_identity_ref(2), "server");
    group.bench_function("server_deliver", |b| {
        b.iter(|| deliver_without_rsa(black_box(&sd)));
    });
    group.bench_function("envelope_decode_msg_direct", |b| {
        b.iter(|| {
            let env = Envelope::decode(black_box(&dm), &Limits::default()).unwrap();
            env.message().unwrap()
        });
    });
    group.finish();
}

fn rsa(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa");
    group.sample_size(30);
    let key = fixtures::rsa_identity_ref(1);
    let payload = Envelope::decode(&msg_direct(1), &Limits::default())
        .unwrap()
        .signing_bytes();
    let mut rng = rng_from_seed([3; 32]);
    group.bench_function("sign_pss_4096", |b| {
        b.iter(|| key.sign_pss(&mut rng, black_box(&payload)).unwrap());
    });
    let sig = key.sign_pss(&mut rng, &payload).unwrap();
    group.bench_function("verify_pss_4096", |b| {
        b.iter(|| key.public().verify_pss(black_box(&payload), &sig).unwrap());
    });
    group.finish();
}

criterion_group!(benches, route, no_crypto, rsa);
criterion_main!(benches);
