//! What the secure profile costs (core::session):
//!
//! - `session/handshake`: a full three-message handshake, both sides (four
//!   X25519 operations, two Ed25519 signatures and two verifications);
//! - `session/channel_100B`: seal + open of one 100-byte record on a channel
//!   (what a secure link pays per frame, per direction);
//! - `session/ratchet_100B`: Double Ratchet encrypt + decrypt of one 100-byte
//!   message on an established chain (no DH step);
//! - `session/ratchet_round_trip_100B`: a message each way, so each message
//!   carries a DH ratchet step (two X25519 + HKDF per message).
//!
//! Run: `cargo bench -p socp-core --bench session`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use socp_core::crypto::ed25519::Ed25519Identity;
use socp_core::crypto::rng_from_seed;
use socp_core::session::handshake::Expect;
use socp_core::session::{Established, Initiator, LocalIdentity, Responder};

fn identities() -> (LocalIdentity, LocalIdentity) {
    (
        LocalIdentity::new("alice", Ed25519Identity::from_seed([1; 32])).unwrap(),
        LocalIdentity::new("bob", Ed25519Identity::from_seed([2; 32])).unwrap(),
    )
}

fn handshake(
    alice: &LocalIdentity,
    bob: &LocalIdentity,
    rng: &mut socp_core::crypto::CoreRng,
) -> (Established, Established) {
    let (init, m1) = Initiator::start(alice, Expect::key(bob.public()), rng);
    let (waiting, m2) = Responder::read_hello(bob, &m1)
        .unwrap()
        .accept(bob, rng)
        .unwrap();
    let (a, m3) = init.finish(alice, &m2).unwrap();
    (a, waiting.finish(&m3).unwrap())
}

fn bench(c: &mut Criterion) {
    let (alice, bob) = identities();
    let mut rng = rng_from_seed([9; 32]);
    let mut group = c.benchmark_group("session");

    group.bench_function("handshake", |b| {
        b.iter(|| black_box(handshake(&alice, &bob, &mut rng)));
    });

    let payload = [0x42u8; 100];
    let context = b"from=alice;to=bob;ts=1700000000000";
    group.throughput(Throughput::Elements(1));

    let (a, b_side) = handshake(&alice, &bob, &mut rng);
    let (mut a_ch, mut b_ch) = (a.into_channel(), b_side.into_channel());
    group.bench_function("channel_100B", |b| {
        b.iter(|| {
            let record = a_ch.seal(context, &payload).unwrap();
            black_box(b_ch.open(context, &record).unwrap());
        });
    });

    let (a, b_side) = handshake(&alice, &bob, &mut rng);
    let (mut a_dr, mut b_dr) = (a.into_double_ratchet(), b_side.into_double_ratchet());
    group.bench_function("ratchet_100B", |b| {
        b.iter(|| {
            let msg = a_dr.encrypt(&mut rng, context, &payload).unwrap();
            black_box(b_dr.decrypt(context, &msg).unwrap());
        });
    });

    group.throughput(Throughput::Elements(2));
    group.bench_function("ratchet_round_trip_100B", |b| {
        b.iter(|| {
            let msg = a_dr.encrypt(&mut rng, context, &payload).unwrap();
            black_box(b_dr.decrypt(context, &msg).unwrap());
            let reply = b_dr.encrypt(&mut rng, context, &payload).unwrap();
            black_box(a_dr.decrypt(context, &reply).unwrap());
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
