//! User ↔ server payloads for hello and direct messages (socp-1.3.md §1.7).

use serde::{Deserialize, Serialize};

use super::lenient;

/// `USER_HELLO`: a user's first frame to its server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserHello {
    /// Client software name, e.g. `"cli-v1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The user's RSA-4096 signing key, base64url.
    pub pubkey: String,
    /// The user's RSA-4096 encryption key; peers that use one key send it
    /// twice, and a missing one means the same as `pubkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enc_pubkey: Option<String>,
    /// Secure-profile capabilities; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
}

impl UserHello {
    /// The key to encrypt to: `enc_pubkey` if present and non-empty, else `pubkey`.
    #[must_use]
    pub fn encryption_key(&self) -> &str {
        self.enc_pubkey
            .as_deref()
            .filter(|key| !key.is_empty())
            .unwrap_or(&self.pubkey)
    }
}

/// `MSG_DIRECT`: a DM from its sender to the sender's server, which must not
/// decrypt it. `from`/`to`/`ts` of the envelope are covered by `content_sig`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgDirect {
    /// RSA-OAEP ciphertext under the recipient's key, base64url.
    pub ciphertext: String,
    /// The sender's public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pub: Option<String>,
    /// The sender's content signature, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sig: Option<String>,
}

/// `USER_DELIVER`: a DM from the recipient's server to the recipient.
///
/// The recipient checks `content_sig` with `from` = `sender` and the
/// original `ts`: `orig_ts` if present, else the envelope's `ts` (which
/// impl B and impl C set to the original; §2 row 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeliver {
    /// RSA-OAEP ciphertext, base64url.
    pub ciphertext: String,
    /// The sender's user id.
    pub sender: String,
    /// The sender's public key, base64url.
    pub sender_pub: String,
    /// The sender's content signature, base64url.
    pub content_sig: String,
    /// The original MSG_DIRECT `ts`. We always send it.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub orig_ts: Option<u64>,
}
