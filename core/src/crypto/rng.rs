//! The one CSPRNG of a state machine.
//!
//! The core never draws OS randomness: a driver hands each state machine a 32-byte
//! seed, and every nonce, salt, blinding factor and key it makes comes from a
//! [`CoreRng`] seeded with it. The same seed gives the same bytes, so a simulated run
//! repeats exactly; a real deployment seeds from the OS (`getrandom`) outside the core.

use rand_core::SeedableRng as _;

/// The CSPRNG every socp state machine holds: ChaCha20, as `rand_chacha` implements it.
pub type CoreRng = rand_chacha::ChaCha20Rng;

/// A [`CoreRng`] seeded with `seed`.
///
/// Deterministic: the same seed always yields the same stream.
#[must_use]
pub fn rng_from_seed(seed: [u8; 32]) -> CoreRng {
    CoreRng::from_seed(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng as _;

    #[test]
    fn same_seed_same_stream_and_debug_hides_state() {
        let mut a = rng_from_seed([7; 32]);
        let mut b = rng_from_seed([7; 32]);
        let mut c = rng_from_seed([8; 32]);
        let (mut x, mut y, mut z) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        c.fill_bytes(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        assert!(!format!("{a:?}").contains("0707"));
    }
}
