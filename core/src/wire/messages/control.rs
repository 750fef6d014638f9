//! Control payloads: ACK, ERROR, CTRL_CLOSE (socp-1.3.md §1.7).

use serde::{Deserialize, Serialize};

use crate::wire::ErrorCode;

/// `ACK`: a transport-level acknowledgement. What `msg_ref` names is not
/// defined by the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged message's reference.
    pub msg_ref: String,
}

/// `ERROR`: an error report.
///
/// Never answer an ERROR with an ERROR (socp-1.3.md §3, "No error storms").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMsg {
    /// One of the six SOCP codes, or another kept verbatim.
    pub code: ErrorCode,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// socp extension: the user the error is about (e.g. the recipient of
    /// `USER_NOT_FOUND`), so a client need not parse `detail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `CTRL_CLOSE`: sent before a normal close. Its payload is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrlClose {}
