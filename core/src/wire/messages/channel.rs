//! Public channel payloads (socp-1.3.md §1.7, "Public channel").

use serde::{Deserialize, Serialize};

use super::lenient;

/// `MSG_PUBLIC_CHANNEL`: a message to the public channel (`to` = `"public"`,
/// or a member's id in impl A's per-recipient fan-out; §2 row 11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgPublicChannel {
    /// The ciphertext, base64url.
    pub ciphertext: String,
    /// The sender's public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pub: Option<String>,
    /// The sender's content signature, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sig: Option<String>,
}

/// `PUBLIC_CHANNEL_ADD`: users joined the public channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicChannelAdd {
    /// The user ids added.
    pub add: Vec<String>,
    /// The channel version the sender based the change on.
    #[serde(deserialize_with = "lenient::u64")]
    pub if_version: u64,
}

/// `PUBLIC_CHANNEL_UPDATED`: the channel's new version and per-member key wraps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicChannelUpdated {
    /// The channel version, bumped on every change.
    #[serde(deserialize_with = "lenient::u64")]
    pub version: u64,
    /// The group key wrapped for each member.
    #[serde(default)]
    pub wraps: Vec<ChannelWrap>,
}

/// One member's wrap in [`PublicChannelUpdated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelWrap {
    /// The member's user id.
    pub member_id: String,
    /// RSA-OAEP of the group key under the member's key, base64url.
    pub wrapped_key: String,
}

/// `PUBLIC_CHANNEL_KEY_SHARE`: the channel key wrapped for each member.
///
/// impl A names the list `wrapped` (§2 row 12); both names are read, ours is
/// `shares`. The `content_sig` covers the shares **as received**: verify it
/// over the raw payload's list, not over a re-serialization of this struct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicChannelKeyShare {
    /// One wrapped key per member.
    #[serde(alias = "wrapped")]
    pub shares: Vec<KeyShare>,
    /// The creator's public key, base64url (in practice the server's).
    pub creator_pub: String,
    /// Signature over the shares and `creator_pub`, base64url.
    pub content_sig: String,
}

/// One member's share in [`PublicChannelKeyShare`]. `member_id` and
/// `wrapped_key` (the names PUBLIC_CHANNEL_UPDATED uses) are read too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyShare {
    /// The member's user id.
    #[serde(alias = "member_id")]
    pub member: String,
    /// RSA-OAEP of the channel key under the member's key, base64url.
    #[serde(alias = "wrapped_key")]
    pub wrapped_public_channel_key: String,
}
