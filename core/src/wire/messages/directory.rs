//! Directory messages SOCP v1.3 leaves undefined, in the shapes other
//! implementations use: `/list` (§2 row 10) and key lookup (§2 row 9).

use serde::{Deserialize, Serialize};

use crate::wire::{Limits, json};

/// A `/list` request: `LIST_REQUEST` (impl A, what we send), or `CMD_LIST`,
/// `USER_LIST`, `LIST`. The dialect is the envelope's
/// [`MsgType::ListRequest`](crate::wire::MsgType::ListRequest). Its payload
/// is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {}

/// `LIST_RESPONSE` (impl A): the sorted ids of the online users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    /// Online user ids, sorted. `users` is read too.
    #[serde(alias = "users")]
    pub online_users: Vec<String>,
}

/// `COMMAND` (impl B): a client command such as `{"command": "/list"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The command line, e.g. `"/list"`.
    pub command: String,
}

impl Command {
    /// The command impl B sends for `/list`.
    pub const LIST: &'static str = "/list";

    /// Whether this is a `/list` command (surrounding whitespace ignored).
    #[must_use]
    pub fn is_list(&self) -> bool {
        self.command.trim() == Self::LIST
    }
}

/// `COMMAND_RESPONSE` (impl B): the answer to a [`Command`]; `response` is a
/// JSON document in a string, `{"users": [...]}` for `/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResponse {
    /// The command answered.
    pub command: String,
    /// The answer, a JSON text.
    pub response: String,
}

impl CommandResponse {
    /// The answer to `/list`: `response` is the canonical JSON of
    /// `{"users": users}`.
    #[must_use]
    pub fn list(users: &[String]) -> Self {
        let users = users
            .iter()
            .cloned()
            .map(serde_json::Value::String)
            .collect();
        let mut body = serde_json::Map::new();
        body.insert("users".to_owned(), serde_json::Value::Array(users));
        Self {
            command: Command::LIST.to_owned(),
            response: json::ascii_to_string(json::canonical_map(&body)),
        }
    }

    /// The user ids of a `/list` answer, if `response` is a JSON object with
    /// a `users` list of strings.
    #[must_use]
    pub fn list_users(&self) -> Option<Vec<String>> {
        let value = json::parse(self.response.as_bytes(), &Limits::default()).ok()?;
        value
            .get("users")?
            .as_array()?
            .iter()
            .map(|user| user.as_str().map(str::to_owned))
            .collect()
    }
}

/// `PUBKEY_REQUEST` (impl A): ask the server for a user's public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubkeyRequest {
    /// The user whose key is wanted.
    pub user_id: String,
}

/// `PUBKEY_RESPONSE` (impl A): a user's public key from the server's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubkeyResponse {
    /// The user.
    pub user_id: String,
    /// The user's RSA-4096 public key, base64url.
    pub pubkey: String,
}
