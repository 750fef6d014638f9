//! File transfer payloads (socp-1.3.md §1.7, "File transfer"; §2 row 13).

use serde::{Deserialize, Serialize};

use super::lenient;

/// Whether a file goes to one user or to the public channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileMode {
    /// To one user (`"dm"`); the default when `mode` is absent (impl A).
    #[default]
    Dm,
    /// To the public channel (`"public"`).
    Public,
}

/// `FILE_START`: a file transfer's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStart {
    /// The transfer's id (a UUID).
    pub file_id: String,
    /// The file name as the sender gave it: untrusted, sanitize before use.
    pub name: String,
    /// Size of the plaintext in bytes.
    #[serde(deserialize_with = "lenient::u64")]
    pub size: u64,
    /// SHA-256 of the plaintext, hex (absent in impl A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// DM or public; `"dm"` when absent.
    #[serde(default)]
    pub mode: FileMode,
    /// The sender's public key (impl A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pub: Option<String>,
}

/// `FILE_CHUNK`: one encrypted piece of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The transfer's id.
    pub file_id: String,
    /// 0-based chunk index.
    #[serde(deserialize_with = "lenient::u64")]
    pub index: u64,
    /// RSA-OAEP ciphertext of the chunk, base64url.
    pub ciphertext: String,
    /// Total number of chunks (impl A).
    #[serde(
        default,
        deserialize_with = "lenient::opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub total: Option<u64>,
    /// The sender's public key (impl A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_pub: Option<String>,
    /// A content signature over the chunk (impl A; v1.3 defines none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sig: Option<String>,
}

/// `FILE_END`: the end of a file transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEnd {
    /// The transfer's id.
    pub file_id: String,
}
