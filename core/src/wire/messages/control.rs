//! Control payloads: ACK, ERROR, CTRL_CLOSE (socp-1.3.md §1.7).

use serde::{Deserialize, Serialize};

use crate::wire::ErrorCode;

/// `ACK`: a transport-level acknowledgement. What `msg_ref` names is not
/// defined by the spec; socp servers acknowledge a user's MSG_DIRECT or
/// MSG_PUBLIC_CHANNEL frame that carries socp's `msg_id` with
/// [`Ack::msg_ref_for`]`(to, msg_id, part)` once they passed it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The acknowledged message's reference.
    pub msg_ref: String,
}

impl Ack {
    /// socp's `msg_ref` for part `part` of message `msg_id` (32 lowercase hex
    /// digits) to `to`: `"{to}/{msg_id}/{part}"`.
    #[must_use]
    pub fn msg_ref_for(to: &str, msg_id: &str, part: u64) -> String {
        format!("{to}/{msg_id}/{part}")
    }
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
    /// socp extension: the [`Ack::msg_ref`] of the piece the error is about
    /// (`USER_NOT_FOUND` for a DM that carried socp's `msg_id`), so the
    /// sender knows which message failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_ref: Option<String>,
}

/// `CTRL_CLOSE`: sent before a normal close. Its payload is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtrlClose {}
