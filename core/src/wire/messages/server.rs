//! Server ↔ server payloads (socp-1.3.md §1.6).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient;

/// `SERVER_HELLO_JOIN`: a new server asks an introducer to join; the
/// envelope's `to` is the introducer's `"host:port"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHelloJoin {
    /// Host the new server listens on.
    pub host: String,
    /// Port the new server listens on.
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    /// The new server's RSA-4096 public key, base64url.
    pub pubkey: String,
    /// Capabilities offered for the secure profile (docs/architecture.md);
    /// SOCP peers ignore the key. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
}

/// `SERVER_ANNOUNCE`: a server announces itself to every server (`to` = `"*"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAnnounce {
    /// Host the server listens on.
    pub host: String,
    /// Port the server listens on.
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    /// The server's RSA-4096 public key, base64url.
    pub pubkey: String,
    /// Secure-profile capabilities; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
}

/// `SERVER_HELLO_LINK`: a new server opens a link to a server it learned of
/// from the WELCOME (impl C, impl E; §2 row 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHelloLink {
    /// Host the server listens on.
    pub host: String,
    /// Port the server listens on.
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    /// The server's RSA-4096 public key, base64url.
    pub pubkey: String,
    /// Secure-profile capabilities; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
}

/// `SERVER_WELCOME`: the introducer's answer to a join.
///
/// Accepts every shape of §2 row 7: `servers` only (impl C), `servers` and
/// `clients` (impl B), `clients` only (the spec's body example), and impl A's
/// `{assigned_id, server_id, server_pub, snapshot}`. We send both lists,
/// empty or not, so that readers of either find theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerWelcome {
    /// The joiner's id: the one it asked for if unique, else a fresh one.
    pub assigned_id: String,
    /// The other servers of the mesh.
    #[serde(default)]
    pub servers: Vec<ServerInfo>,
    /// The users known to the introducer.
    #[serde(default)]
    pub clients: Vec<ClientInfo>,
    /// impl A: the introducer's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
    /// impl A: the introducer's public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_pub: Option<String>,
    /// impl A: a presence snapshot, `{"user_locations": {user_id: server_id}}`,
    /// kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Map<String, Value>>,
}

/// One server in a [`ServerWelcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's id.
    pub server_id: String,
    /// Host it listens on.
    pub host: String,
    /// Port it listens on.
    #[serde(deserialize_with = "lenient::port")]
    pub port: u16,
    /// Its RSA-4096 public key, base64url (to pin).
    pub pubkey: String,
}

/// One user in a [`ServerWelcome`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The user's id.
    pub user_id: String,
    /// The spec lists a host for users; often their server's. Optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The spec lists a port for users; often their server's. Optional.
    #[serde(
        default,
        deserialize_with = "lenient::opt_port",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<u16>,
    /// The user's RSA-4096 public key, base64url.
    pub pubkey: String,
    /// The user's home server (impl B).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_id: Option<String>,
}

/// `SERVER_GOODBYE`: a server leaves the mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerGoodbye {
    /// Why, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `USER_ADVERTISE`: a user is online at `server_id` (gossiped to all servers).
///
/// SOCP v1.3 carries no key here; impl B adds `pubkey` and impl C puts it in
/// `meta.pubkey` (§2 row 9). We send `pubkey` (and may copy it into `meta`);
/// [`UserAdvertise::pubkey`] reads either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAdvertise {
    /// The user's id.
    pub user_id: String,
    /// The user's home server.
    pub server_id: String,
    /// Decorative metadata (§1.10: `display_name`, `pronouns`, ...). Routing
    /// and crypto must not depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Map<String, Value>>,
    /// The user's RSA-4096 public key, base64url (impl B).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubkey: Option<String>,
}

impl UserAdvertise {
    /// The advertised public key: `pubkey`, else `meta.pubkey`; empty strings
    /// count as absent.
    #[must_use]
    pub fn pubkey(&self) -> Option<&str> {
        let top = self.pubkey.as_deref().filter(|key| !key.is_empty());
        top.or_else(|| {
            self.meta
                .as_ref()?
                .get("pubkey")?
                .as_str()
                .filter(|key| !key.is_empty())
        })
    }

    /// `meta.display_name`, if it is a string.
    #[must_use]
    pub fn display_name(&self) -> Option<&str> {
        self.meta.as_ref()?.get("display_name")?.as_str()
    }
}

/// `USER_REMOVE`: a user left `server_id`. Receivers delete their entry only
/// if it still names that server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRemove {
    /// The user's id.
    pub user_id: String,
    /// The server the user left.
    pub server_id: String,
}

/// `SERVER_DELIVER`: a DM forwarded to the recipient's server, unchanged
/// end to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerDeliver {
    /// The recipient.
    pub user_id: String,
    /// RSA-OAEP ciphertext, base64url (opaque to servers).
    pub ciphertext: String,
    /// The sender's user id.
    pub sender: String,
    /// The sender's public key, base64url.
    pub sender_pub: String,
    /// The sender's content signature, base64url.
    pub content_sig: String,
    /// The original MSG_DIRECT `ts` (impl A; §2 row 2), which
    /// `content_sig` covers. We always send it.
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub orig_ts: Option<u64>,
}

/// `HEARTBEAT`: link liveness. The payload is ignored on receipt (`{}`,
/// impl A's `{now}` and impl B's `{server_type}` all decode); we send `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {}

/// `SECURE_HANDSHAKE`: one message of the secure profile's handshake on a
/// server link (`core::session::handshake`), base64url. Not signed: the
/// handshake authenticates itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureHandshake {
    /// The handshake message, base64url.
    pub m: String,
}

/// `SECURE`: a frame sealed in a secure link's channel
/// (`core::session::channel`), base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureRecord {
    /// The channel record, base64url.
    pub r: String,
}

/// The secure-profile offer a socp server adds to its signed
/// `SERVER_HELLO_JOIN`, `SERVER_HELLO_LINK` and `SERVER_ANNOUNCE` payloads
/// (next to `caps`): its Ed25519 key and the RSA-PSS binding of that key to
/// its id (`core::session::identity`). Inside the transport-signed payload,
/// neither can be stripped or swapped without breaking the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureOffer {
    /// The Ed25519 public key, base64url.
    pub ed25519: String,
    /// The RSA-PSS binding signature, base64url.
    pub binding: String,
}

impl SecureOffer {
    /// The payload key of the Ed25519 key.
    pub const ED25519_KEY: &'static str = "ed25519";
    /// The payload key of the binding.
    pub const BINDING_KEY: &'static str = "ed25519_binding";

    /// Reads the offer from a hello's payload, if both keys are strings.
    #[must_use]
    pub fn from_payload(payload: &Map<String, Value>) -> Option<Self> {
        let ed25519 = payload.get(Self::ED25519_KEY)?.as_str()?.to_owned();
        let binding = payload.get(Self::BINDING_KEY)?.as_str()?.to_owned();
        Some(Self { ed25519, binding })
    }

    /// The payload keys to add to a hello.
    #[must_use]
    pub fn to_payload(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert(
            Self::ED25519_KEY.into(),
            Value::String(self.ed25519.clone()),
        );
        map.insert(
            Self::BINDING_KEY.into(),
            Value::String(self.binding.clone()),
        );
        map
    }
}
