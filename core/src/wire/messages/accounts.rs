//! Account payloads: register, log in, fetch the keystore (an extension of
//! SOCP v1.3 §1.10's "sign a nonce from the directory" login model).
//!
//! All of them travel on a user link's first frames, before the link has a
//! role; see `server::accounts` for the protocol and its security argument.

use serde::{Deserialize, Serialize};

use super::lenient;

/// Argon2id parameters and salt of an account's password verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// 16 random bytes, base64url.
    pub salt: String,
    /// Memory in KiB.
    #[serde(deserialize_with = "lenient::u64")]
    pub m: u64,
    /// Passes.
    #[serde(deserialize_with = "lenient::u64")]
    pub t: u64,
    /// Lanes.
    #[serde(deserialize_with = "lenient::u64")]
    pub p: u64,
}

/// `AUTH_HELLO`: asks for a login challenge for an account, named by id or
/// by username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthHello {
    /// The account's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Or its username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `AUTH_CHALLENGE`: a fresh single-use nonce, bound to this link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthChallenge {
    /// The account.
    pub user_id: String,
    /// 32 random bytes, base64url.
    pub nonce: String,
    /// When the nonce expires (Unix ms).
    #[serde(deserialize_with = "lenient::u64")]
    pub expires_ms: u64,
    /// The server that issued it (part of the signed transcript).
    pub server_id: String,
    /// `"login"` or `"register"` (part of the signed transcript).
    pub purpose: String,
    /// The password verifier's KDF parameters (login only), for a keystore fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
}

/// `AUTH_RESPONSE`: the nonce signed with the account's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResponse {
    /// The account.
    pub user_id: String,
    /// The nonce being answered.
    pub nonce: String,
    /// RSA-PSS (SHA-256) over the transcript, base64url.
    pub sig: String,
}

/// `AUTH_OK`: the link is now the account's user link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthOk {
    /// The account.
    pub user_id: String,
    /// Its username, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `USER_REGISTER`: creates an account (proved by a following `AUTH_RESPONSE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRegister {
    /// The new account's id, a UUIDv4.
    pub user_id: String,
    /// Its RSA-4096 key, base64url.
    pub pubkey: String,
    /// The password-sealed keystore (SOCP `privkey_store`).
    pub privkey_store: String,
    /// The password verifier (`auth_key`, 32 bytes base64url).
    pub verifier: String,
    /// How the verifier was derived.
    pub kdf: KdfParams,
    /// An optional unique username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// `KEYSTORE_FETCH`: asks for the sealed keystore, proving the password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeystoreFetch {
    /// The account.
    pub user_id: String,
    /// The challenge nonce being answered.
    pub nonce: String,
    /// HMAC-SHA256(auth_key, transcript), base64url.
    pub proof: String,
}

/// `KEYSTORE`: the sealed keystore of an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keystore {
    /// The account.
    pub user_id: String,
    /// The sealed keystore.
    pub privkey_store: String,
}

/// The bytes an `AUTH_RESPONSE` signs:
/// `"socp-login-v1|" purpose "|" server_id "|" user_id "|" nonce`.
///
/// The server id, the purpose and the single-use nonce bind a signature to one
/// server, one exchange and one link: it is worthless anywhere else.
#[must_use]
pub fn login_transcript(purpose: &str, server_id: &str, user_id: &str, nonce: &str) -> Vec<u8> {
    format!("socp-login-v1|{purpose}|{server_id}|{user_id}|{nonce}").into_bytes()
}

/// The bytes a `KEYSTORE_FETCH` proof authenticates (HMAC-SHA256 under the
/// account's `auth_key`): `"socp-keystore-fetch-v1|" server_id "|" user_id "|" nonce`.
#[must_use]
pub fn fetch_transcript(server_id: &str, user_id: &str, nonce: &str) -> Vec<u8> {
    format!("socp-keystore-fetch-v1|{server_id}|{user_id}|{nonce}").into_bytes()
}
