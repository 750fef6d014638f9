//! The secure profile's handshake: it completes, and each Gravy flaw
//! (seed-systems.md C.7) and every classic attack on a signed DH exchange is
//! refused with its own error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use socp_core::crypto::ed25519::Ed25519Identity;
use socp_core::crypto::fixtures;
use socp_core::crypto::hash::sha256_concat;
use socp_core::crypto::rng_from_seed;
use socp_core::crypto::x25519::X25519Secret;
use socp_core::session::handshake::Expect;
use socp_core::session::{
    Established, Initiator, LABEL_SIG_INITIATOR, LABEL_TRANSCRIPT, LocalIdentity, Responder,
    SessionError,
};

fn party(name: &str, seed: u8) -> LocalIdentity {
    LocalIdentity::new(name, Ed25519Identity::from_seed([seed; 32])).unwrap()
}

/// One full handshake; returns both sides and the three messages.
fn handshake(
    client: &LocalIdentity,
    server: &LocalIdentity,
    seed: u8,
) -> (Established, Established, [Vec<u8>; 3]) {
    let mut rng = rng_from_seed([seed; 32]);
    let (init, m1) = Initiator::start(client, Expect::key(server.public()), &mut rng);
    let pending = Responder::read_hello(server, &m1).unwrap();
    assert_eq!(pending.peer().id, client.id());
    let (waiting, m2) = pending.accept(server, &mut rng).unwrap();
    let (c, m3) = init.finish(client, &m2).unwrap();
    let s = waiting.finish(&m3).unwrap();
    (c, s, [m1, m2, m3])
}

#[test]
fn both_sides_agree_and_talk_both_ways() {
    let alice = party("alice", 1);
    let bob = party("bob", 2);
    let (a, b, _) = handshake(&alice, &bob, 9);
    assert_eq!(a.session_id(), b.session_id());
    assert_eq!(a.peer().key, bob.public());
    assert_eq!(b.peer().key, alice.public());
    let (mut a, mut b) = (a.into_channel(), b.into_channel());
    let r1 = a.seal(b"ctx", b"hello bob").unwrap();
    let r2 = b.seal(b"ctx", b"hello alice").unwrap();
    assert_eq!(&**b.open(b"ctx", &r1).unwrap(), b"hello bob");
    assert_eq!(&**a.open(b"ctx", &r2).unwrap(), b"hello alice");
    // Directions have their own chains: a record does not open on its sender.
    let r3 = a.seal(b"ctx", b"again").unwrap();
    assert_eq!(a.open(b"ctx", &r3), Err(SessionError::Decrypt));
    // A record opened under another context (from, to, ts) fails.
    assert_eq!(b.open(b"other", &r3), Err(SessionError::Decrypt));
    assert_eq!(&**b.open(b"ctx", &r3).unwrap(), b"again");
    assert_eq!(
        b.open(b"ctx", &r3),
        Err(SessionError::Duplicate { counter: 1 })
    );
}

#[test]
fn sessions_differ_every_time() {
    let alice = party("alice", 1);
    let bob = party("bob", 2);
    let (a1, _, m1) = handshake(&alice, &bob, 1);
    let (a2, _, m2) = handshake(&alice, &bob, 2);
    assert_ne!(a1.session_id(), a2.session_id());
    assert_ne!(m1[0], m2[0]);
}

/// Gravy's unknown-key-share: Mallory relays Carol's ephemeral to the server
/// under her own identity. The server's signature then covers Mallory's
/// identity, so Carol refuses it; and Mallory cannot finish as herself
/// because she lacks Carol's ephemeral secret for the key confirmation.
#[test]
fn relay_mis_binding_is_refused() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let mallory = party("mallory", 3);
    let mut rng = rng_from_seed([5; 32]);
    let (carol_init, m1) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);

    // Mallory rewrites M1: same ephemeral and nonce, her identity.
    let mut forged = m1[..2 + 32 + 32].to_vec();
    mallory.as_peer().encode(&mut forged);
    let pending = Responder::read_hello(&server, &forged).unwrap();
    assert_eq!(pending.peer().id, "mallory");
    let (waiting, m2) = pending.accept(&server, &mut rng).unwrap();

    // Carol gets the server's M2: it was signed over Mallory's identity.
    assert_eq!(
        carol_init.finish(&carol, &m2).unwrap_err(),
        SessionError::BadSignature
    );

    // Mallory signs this very transcript with her own key (it is all public)
    // but cannot compute the key confirmation: that needs Carol's ephemeral
    // secret.
    let len = |b: &[u8]| u32::try_from(b.len()).unwrap().to_be_bytes();
    let body = &m2[..m2.len() - 96];
    let th2 = sha256_concat(&[LABEL_TRANSCRIPT, &len(&forged), &forged, &len(body), body]);
    let th3 = sha256_concat(&[LABEL_TRANSCRIPT, &th2, &m2[m2.len() - 96..]]);
    let mut signed = LABEL_SIG_INITIATOR.to_vec();
    signed.extend_from_slice(&th3);
    let mut m3 = vec![1u8, 3];
    m3.extend_from_slice(&Ed25519Identity::from_seed([3; 32]).sign(&signed));
    m3.extend_from_slice(&[0x5a; 32]);
    assert_eq!(
        waiting.finish(&m3).unwrap_err(),
        SessionError::BadConfirmation,
        "the signature verifies, the missing key confirmation is what stops her"
    );
}

/// A relay that forwards M1 untouched but replaces Carol's M3 with its own
/// signature fails: the server checks M3 against the key M1 named.
#[test]
fn relay_cannot_swap_the_final_signature() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let mut rng = rng_from_seed([7; 32]);
    let (carol_init, m1) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);
    let (waiting, m2) = Responder::read_hello(&server, &m1)
        .unwrap()
        .accept(&server, &mut rng)
        .unwrap();
    let (_, mut m3) = carol_init.finish(&carol, &m2).unwrap();
    let mallory = Ed25519Identity::from_seed([3; 32]);
    let fake = mallory.sign(b"anything");
    m3[2..66].copy_from_slice(&fake);
    assert_eq!(waiting.finish(&m3).unwrap_err(), SessionError::BadSignature);
}

/// Gravy's reflection: the server's own key among its contacts let a dialler
/// echo the server's signature back. socp refuses our own key outright, on
/// both sides, and role labels keep a responder signature from passing as an
/// initiator's.
#[test]
fn reflection_is_refused() {
    let server = party("server", 2);
    let carol = party("carol", 1);
    // A dialler claiming the server's own identity.
    let mut rng = rng_from_seed([8; 32]);
    let (_, m1) = Initiator::start(&server, Expect::anyone(), &mut rng);
    assert_eq!(
        Responder::read_hello(&server, &m1).unwrap_err(),
        SessionError::Reflection
    );
    // The server dials out and gets its own M2 (from another session) back.
    let (_, m1_carol) = Initiator::start(&carol, Expect::anyone(), &mut rng);
    let (_, server_m2) = Responder::read_hello(&server, &m1_carol)
        .unwrap()
        .accept(&server, &mut rng)
        .unwrap();
    let (init, _) = Initiator::start(&server, Expect::anyone(), &mut rng);
    assert_eq!(
        init.finish(&server, &server_m2).unwrap_err(),
        SessionError::Reflection
    );
    // The responder's signature and MAC placed in M3: the labels differ.
    let (carol_init, m1) = Initiator::start(&carol, Expect::anyone(), &mut rng);
    let (waiting, m2) = Responder::read_hello(&server, &m1)
        .unwrap()
        .accept(&server, &mut rng)
        .unwrap();
    drop(carol_init);
    let mut m3 = vec![1u8, 3];
    m3.extend_from_slice(&m2[m2.len() - 96..]);
    assert_eq!(waiting.finish(&m3).unwrap_err(), SessionError::BadSignature);
}

/// Signed messages of an old session do not verify in a new one.
#[test]
fn replayed_handshake_messages_are_refused() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let (_, _, old) = handshake(&carol, &server, 1);
    // An old M2 against a fresh initiator.
    let mut rng = rng_from_seed([2; 32]);
    let (init, _) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);
    assert_eq!(
        init.finish(&carol, &old[1]).unwrap_err(),
        SessionError::BadSignature
    );
    // An old M1 then an old M3 against the server: its new ephemeral and
    // nonce are not in the old signature.
    let (waiting, _) = Responder::read_hello(&server, &old[0])
        .unwrap()
        .accept(&server, &mut rng)
        .unwrap();
    assert_eq!(
        waiting.finish(&old[2]).unwrap_err(),
        SessionError::BadSignature
    );
}

#[test]
fn a_wrong_contact_key_is_refused() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let impostor = party("server", 4);
    let mut rng = rng_from_seed([3; 32]);
    let (init, m1) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);
    let (_, m2) = Responder::read_hello(&impostor, &m1)
        .unwrap()
        .accept(&impostor, &mut rng)
        .unwrap();
    let err = init.finish(&carol, &m2).unwrap_err();
    assert!(
        matches!(&err, SessionError::UnexpectedPeer(why) if why.contains("pinned contact key")),
        "{err:?}"
    );
    // Expecting an id: a different id is refused too.
    let (init, m1) = Initiator::start(&carol, Expect::id("server-b"), &mut rng);
    let (_, m2) = Responder::read_hello(&server, &m1)
        .unwrap()
        .accept(&server, &mut rng)
        .unwrap();
    assert!(matches!(
        init.finish(&carol, &m2).unwrap_err(),
        SessionError::UnexpectedPeer(_)
    ));
}

#[test]
fn every_altered_byte_fails_the_handshake() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let (_, _, msgs) = handshake(&carol, &server, 4);
    // M2: flip each byte in turn against a re-run of the same initiator.
    for i in 0..msgs[1].len() {
        let mut rng = rng_from_seed([4; 32]);
        let (init, m1) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);
        assert_eq!(m1, msgs[0]);
        let mut m2 = msgs[1].clone();
        m2[i] ^= 0x01;
        assert!(init.finish(&carol, &m2).is_err(), "byte {i} of M2");
    }
    // M3 likewise against the server.
    for i in 0..msgs[2].len() {
        let mut rng = rng_from_seed([4; 32]);
        let (_, m1) = Initiator::start(&carol, Expect::key(server.public()), &mut rng);
        let (waiting, _) = Responder::read_hello(&server, &m1)
            .unwrap()
            .accept(&server, &mut rng)
            .unwrap();
        let mut m3 = msgs[2].clone();
        m3[i] ^= 0x80;
        assert!(waiting.finish(&m3).is_err(), "byte {i} of M3");
    }
    // Truncations and garbage never panic.
    for cut in 0..msgs[0].len() {
        assert!(Responder::read_hello(&server, &msgs[0][..cut]).is_err());
    }
    let mut bad_version = msgs[0].clone();
    bad_version[0] = 2;
    assert_eq!(
        Responder::read_hello(&server, &bad_version).unwrap_err(),
        SessionError::Version(2)
    );
}

#[test]
fn a_low_order_ephemeral_is_refused() {
    let carol = party("carol", 1);
    let server = party("server", 2);
    let mut rng = rng_from_seed([5; 32]);
    let (_, m1) = Initiator::start(&carol, Expect::anyone(), &mut rng);
    let mut weak = m1.clone();
    weak[2..34].copy_from_slice(&[0u8; 32]);
    let pending = Responder::read_hello(&server, &weak).unwrap();
    assert_eq!(
        pending.accept(&server, &mut rng).unwrap_err(),
        SessionError::WeakKey
    );
    let _ = X25519Secret::generate(&mut rng);
}

#[test]
fn the_rsa_binding_ties_the_ed25519_key_to_the_socp_identity() {
    let rsa = fixtures::rsa_identity(1);
    let other_rsa = fixtures::rsa_identity(2);
    let mut rng = rng_from_seed([6; 32]);
    let bound = LocalIdentity::bound(
        "user-1",
        Ed25519Identity::from_seed([1; 32]),
        &rsa,
        &mut rng,
    )
    .unwrap();
    let peer = bound.as_peer();
    peer.verify_binding(rsa.public()).unwrap();
    assert_eq!(
        peer.verify_binding(other_rsa.public()),
        Err(SessionError::BadBinding)
    );
    // The same binding under another id, or for another key, is refused.
    let mut renamed = peer.clone();
    renamed.id = "user-2".into();
    assert_eq!(
        renamed.verify_binding(rsa.public()),
        Err(SessionError::BadBinding)
    );
    let mut rekeyed = peer.clone();
    rekeyed.key = Ed25519Identity::from_seed([2; 32]).public();
    assert_eq!(
        rekeyed.verify_binding(rsa.public()),
        Err(SessionError::BadBinding)
    );
    // Unbound identities have no binding to check.
    assert_eq!(
        party("x", 3).as_peer().verify_binding(rsa.public()),
        Err(SessionError::BadBinding)
    );
    // The binding travels in the handshake.
    let server = party("server", 2);
    let (init, m1) = Initiator::start(&bound, Expect::anyone(), &mut rng);
    let pending = Responder::read_hello(&server, &m1).unwrap();
    pending.peer().verify_binding(rsa.public()).unwrap();
    let (waiting, m2) = pending.accept(&server, &mut rng).unwrap();
    let (_, m3) = init.finish(&bound, &m2).unwrap();
    let done = waiting.finish(&m3).unwrap();
    done.peer().verify_binding(rsa.public()).unwrap();
}
