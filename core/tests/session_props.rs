//! Properties of the secure profile's channels and Double Ratchet, for any
//! interleaving, reordering, duplication, loss and tampering within the skip
//! bound:
//! - every genuine message decrypts exactly once, to its plaintext;
//! - a second delivery is [`SessionError::Duplicate`];
//! - any altered byte (record or context) is rejected and leaves the session
//!   unchanged (its observable state is equal, and every genuine message
//!   still opens afterwards);
//! - a gap beyond [`MAX_SKIP`] is [`SessionError::TooFarAhead`].
//!
//! Cases: `PROPTEST_CASES` (default 256; each case is a few hundred
//! microseconds).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use socp_core::crypto::ed25519::Ed25519Identity;
use socp_core::crypto::rng_from_seed;
use socp_core::session::chain::MAX_SKIP;
use socp_core::session::handshake::Expect;
use socp_core::session::{
    Channel, DoubleRatchet, Established, Initiator, LocalIdentity, Responder, SessionError,
};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn pair(seed: u8) -> (Established, Established) {
    let alice = LocalIdentity::new("alice", Ed25519Identity::from_seed([1; 32])).unwrap();
    let bob = LocalIdentity::new("bob", Ed25519Identity::from_seed([2; 32])).unwrap();
    let mut rng = rng_from_seed([seed; 32]);
    let (init, m1) = Initiator::start(&alice, Expect::key(bob.public()), &mut rng);
    let (waiting, m2) = Responder::read_hello(&bob, &m1)
        .unwrap()
        .accept(&bob, &mut rng)
        .unwrap();
    let (a, m3) = init.finish(&alice, &m2).unwrap();
    (a, waiting.finish(&m3).unwrap())
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Op {
    /// Side 0 (initiator) or 1 sends a new message.
    Send(usize),
    /// Deliver to side `.0` the in-flight message picked by `.1` (modulo the
    /// number sent its way), altered at byte `.2` when `.3` is set (or its
    /// context altered when `.4` is set).
    Deliver(usize, usize, usize, bool, bool),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0..2usize).prop_map(Op::Send),
            3 => (0..2usize, any::<usize>(), any::<usize>(), prop::bool::weighted(0.2), prop::bool::weighted(0.1))
                .prop_map(|(to, pick, byte, alter, ctx)| Op::Deliver(to, pick, byte, alter, ctx)),
        ],
        0..80,
    )
}

/// A message sent towards one side: its bytes, context, plaintext, and
/// whether it was opened already.
struct Sent {
    bytes: Vec<u8>,
    context: Vec<u8>,
    plaintext: Vec<u8>,
    opened: bool,
}

/// What both kinds of session do, so one scenario runner checks both.
trait Session {
    fn send(&mut self, rng: &mut socp_core::crypto::CoreRng, ctx: &[u8], pt: &[u8]) -> Vec<u8>;
    fn recv(&mut self, ctx: &[u8], msg: &[u8]) -> Result<Vec<u8>, SessionError>;
    /// Observable state, compared before and after a refused message.
    fn state(&self) -> (u64, u64, usize, [u8; 32]);
}

impl Session for Channel {
    fn send(&mut self, _: &mut socp_core::crypto::CoreRng, ctx: &[u8], pt: &[u8]) -> Vec<u8> {
        self.seal(ctx, pt).unwrap()
    }
    fn recv(&mut self, ctx: &[u8], msg: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.open(ctx, msg).map(|p| p.to_vec())
    }
    fn state(&self) -> (u64, u64, usize, [u8; 32]) {
        (
            self.send_counter(),
            self.recv_counter(),
            self.skipped_keys(),
            [0; 32],
        )
    }
}

impl Session for DoubleRatchet {
    fn send(&mut self, rng: &mut socp_core::crypto::CoreRng, ctx: &[u8], pt: &[u8]) -> Vec<u8> {
        self.encrypt(rng, ctx, pt).unwrap()
    }
    fn recv(&mut self, ctx: &[u8], msg: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.decrypt(ctx, msg).map(|p| p.to_vec())
    }
    fn state(&self) -> (u64, u64, usize, [u8; 32]) {
        (0, 0, self.skipped_keys(), *self.ratchet_key().as_bytes())
    }
}

fn run<S: Session>(mut sides: [S; 2], ops: &[Op]) {
    // Not a seed `pair` uses: the same stream would repeat its ephemerals.
    let mut rng = rng_from_seed([255; 32]);
    // in_flight[to]: messages sent towards side `to`.
    let mut in_flight: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
    for op in ops {
        match *op {
            Op::Send(from) => {
                let to = 1 - from;
                let n = in_flight[to].len();
                let plaintext = format!("{from}->{to} #{n}").into_bytes();
                let context = format!("from={from};to={to};ts={n}").into_bytes();
                let bytes = sides[from].send(&mut rng, &context, &plaintext);
                in_flight[to].push(Sent {
                    bytes,
                    context,
                    plaintext,
                    opened: false,
                });
            }
            Op::Deliver(to, pick, byte, alter, alter_ctx) => {
                if in_flight[to].is_empty() {
                    continue;
                }
                let i = pick % in_flight[to].len();
                let sent = &in_flight[to][i];
                if alter || alter_ctx {
                    let mut bytes = sent.bytes.clone();
                    let mut context = sent.context.clone();
                    if alter {
                        let at = byte % bytes.len();
                        bytes[at] ^= 1 << (byte % 8);
                    } else {
                        context.push(b'!');
                    }
                    let before = sides[to].state();
                    let result = sides[to].recv(&context, &bytes);
                    assert!(result.is_err(), "an altered message opened: {op:?}");
                    assert_eq!(sides[to].state(), before, "a refused message changed state");
                    continue;
                }
                let result = sides[to].recv(&sent.context, &sent.bytes);
                if sent.opened {
                    assert!(
                        matches!(result, Err(SessionError::Duplicate { .. })),
                        "a second delivery gave {result:?}"
                    );
                } else {
                    assert_eq!(result.as_deref(), Ok(&sent.plaintext[..]), "{op:?}");
                    in_flight[to][i].opened = true;
                }
            }
        }
    }
    // Everything not delivered yet still opens, exactly once.
    for (to, msgs) in in_flight.iter().enumerate() {
        for sent in msgs.iter().filter(|s| !s.opened) {
            let got = sides[to].recv(&sent.context, &sent.bytes);
            assert_eq!(got.as_deref(), Ok(&sent.plaintext[..]));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn channel_messages_open_exactly_once(ops in ops(), seed in 0..255u8) {
        let (a, b) = pair(seed);
        run([a.into_channel(), b.into_channel()], &ops);
    }

    #[test]
    fn ratchet_messages_open_exactly_once(ops in ops(), seed in 0..255u8) {
        let (a, b) = pair(seed);
        run([a.into_double_ratchet(), b.into_double_ratchet()], &ops);
    }
}

#[test]
fn a_gap_beyond_the_bound_is_a_typed_error() {
    let (a, b) = pair(1);
    let (mut a, mut b) = (a.into_channel(), b.into_channel());
    let records: Vec<Vec<u8>> = (0..=MAX_SKIP + 1)
        .map(|i| a.seal(b"", &i.to_be_bytes()).unwrap())
        .collect();
    let last = records.last().unwrap();
    assert_eq!(
        b.open(b"", last),
        Err(SessionError::TooFarAhead {
            counter: MAX_SKIP + 1,
            gap: MAX_SKIP + 1,
            max: MAX_SKIP
        })
    );
    assert_eq!(b.recv_counter(), 0);
    // Exactly at the bound is fine, and the skipped ones still open.
    assert!(
        b.open(b"", &records[usize::try_from(MAX_SKIP).unwrap()])
            .is_ok()
    );
    assert_eq!(b.skipped_keys(), usize::try_from(MAX_SKIP).unwrap());
    assert!(b.open(b"", &records[3]).is_ok());

    let (a, b) = pair(2);
    let (mut a, mut b) = (a.into_double_ratchet(), b.into_double_ratchet());
    let mut rng = rng_from_seed([3; 32]);
    let msgs: Vec<Vec<u8>> = (0..=MAX_SKIP + 1)
        .map(|i| a.encrypt(&mut rng, b"", &i.to_be_bytes()).unwrap())
        .collect();
    assert!(matches!(
        b.decrypt(b"", msgs.last().unwrap()),
        Err(SessionError::TooFarAhead { .. })
    ));
    assert!(b.decrypt(b"", &msgs[0]).is_ok());
    assert!(b.decrypt(b"", msgs.last().unwrap()).is_ok());
}

/// After a round trip both sides use fresh ratchet keys: a leaked old state
/// (its chain keys) no longer opens new messages.
#[test]
fn the_ratchet_heals_after_a_round_trip() {
    let (a, b) = pair(4);
    let (mut a, mut b) = (a.into_double_ratchet(), b.into_double_ratchet());
    let mut rng = rng_from_seed([5; 32]);
    let first_key = a.ratchet_key();
    let m = a.encrypt(&mut rng, b"c", b"one").unwrap();
    assert_ne!(a.ratchet_key(), first_key, "the first send makes a new key");
    b.decrypt(b"c", &m).unwrap();
    let b_key = b.ratchet_key();
    let r = b.encrypt(&mut rng, b"c", b"two").unwrap();
    assert_ne!(b.ratchet_key(), b_key, "a reply after a new peer key steps");
    a.decrypt(b"c", &r).unwrap();
    let a_key = a.ratchet_key();
    let m2 = a.encrypt(&mut rng, b"c", b"three").unwrap();
    assert_ne!(a.ratchet_key(), a_key);
    assert_eq!(&*b.decrypt(b"c", &m2).unwrap(), b"three");
}
