//! The SOCP envelope: `{type, from, to, ts, payload, sig}` (socp-1.3.md §1.5).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::error::DecodeError;
use super::json;
use super::limits::Limits;
use super::messages::{self, Message, Payload};
use super::types::MsgType;

/// One SOCP frame.
///
/// The payload is kept as the JSON object received, unknown keys and all:
/// the transport `sig` covers its canonical form (§1.2), and a server
/// forwards it unchanged. [`Envelope::message`] gives a typed view.
///
/// # Reading liberally
///
/// [`Envelope::decode`] accepts, beyond the letter of §1.5:
/// - whitespace around the object, so a trailing `\n` or `\r\n` (§1.4);
/// - `ts` as a string of decimal digits (the spec's type column says
///   `"INT"`); it must still be a non-negative integer that fits in a `u64`;
/// - `sig` absent, `null` or `""`, all read as no signature;
/// - `payload` absent or `null`, read as `{}`;
/// - a bare `{"type":"CTRL_CLOSE"}` as §1.1 shows it: for CTRL_CLOSE only,
///   missing `from`/`to` read as `""` and a missing `ts` as 0;
/// - unknown top-level keys, which are ignored (and not kept);
/// - unknown types, kept as [`MsgType::Unknown`] rather than refused.
///
/// Every other frame must have string `type`, `from` and `to` and a `ts`.
///
/// # Sending strictly
///
/// [`Envelope::encode`] writes canonical JSON (sorted keys, no whitespace,
/// ASCII only), `ts` as a JSON integer, no trailing newline, and omits `sig`
/// when there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The message type (`type` on the wire).
    pub msg_type: MsgType,
    /// The sender: a server id or user id (for SERVER_HELLO_JOIN, the new
    /// server's id).
    pub from: String,
    /// The recipient: a server id, a user id, `"*"`, `"host:port"`
    /// (SERVER_HELLO_JOIN) or a group id (`"public"`).
    pub to: String,
    /// Unix time in milliseconds.
    pub ts: u64,
    /// The payload object, as received or as built.
    pub payload: Map<String, Value>,
    /// The transport signature, base64url, over [`Envelope::signing_bytes`].
    pub sig: Option<String>,
}

impl Envelope {
    /// An unsigned envelope carrying `message`; `msg_type` and `payload` come
    /// from it (a [`Message::Unknown`] gets an empty payload).
    #[must_use]
    pub fn new(
        from: impl Into<String>,
        to: impl Into<String>,
        ts: u64,
        message: impl Into<Message>,
    ) -> Self {
        let message = message.into();
        Self {
            msg_type: message.msg_type(),
            from: from.into(),
            to: to.into(),
            ts,
            payload: message.to_map(),
            sig: None,
        }
    }

    /// This envelope with its transport signature set.
    #[must_use]
    pub fn with_sig(mut self, sig: impl Into<String>) -> Self {
        self.sig = Some(sig.into());
        self
    }

    /// Decodes one received frame (a WebSocket text message) within `limits`.
    ///
    /// See the type's documentation for what is accepted. The payload is
    /// not checked against its type here: call [`Envelope::message`].
    pub fn decode(frame: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let mut object = match json::parse(frame, limits)? {
            Value::Object(object) => object,
            other => {
                return Err(DecodeError::NotAnObject {
                    found: json_type(&other),
                });
            }
        };
        let msg_type = match object.get("type") {
            Some(Value::String(name)) => MsgType::parse(name),
            Some(_) => return Err(wrong_type("type", "a string")),
            None => return Err(DecodeError::MissingField { field: "type" }),
        };
        // §1.1 shows CTRL_CLOSE as a bare `{"type":"CTRL_CLOSE"}`.
        let bare = msg_type == MsgType::CtrlClose;
        let from = take_string(&mut object, "from", bare)?;
        let to = take_string(&mut object, "to", bare)?;
        let ts = match object.get("ts") {
            None if bare => 0,
            None => return Err(DecodeError::MissingField { field: "ts" }),
            Some(value) => timestamp(value)?,
        };
        let payload = match object.remove("payload") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(payload)) => payload,
            Some(_) => return Err(wrong_type("payload", "an object")),
        };
        let sig = match object.remove("sig") {
            None | Some(Value::Null) => None,
            Some(Value::String(sig)) if sig.is_empty() => None,
            Some(Value::String(sig)) => Some(sig),
            Some(_) => return Err(wrong_type("sig", "a string")),
        };
        Ok(Self {
            msg_type,
            from,
            to,
            ts,
            payload,
            sig,
        })
    }

    /// The frame to send: the canonical JSON of the whole envelope, without
    /// `sig` when there is none, and without a trailing newline.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        // Keys in code-point order: from, payload, sig, to, ts, type.
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"from\":");
        json::write_string(&self.from, &mut out);
        out.extend_from_slice(b",\"payload\":");
        json::write_map(&self.payload, &mut out);
        if let Some(sig) = &self.sig {
            out.extend_from_slice(b",\"sig\":");
            json::write_string(sig, &mut out);
        }
        out.extend_from_slice(b",\"to\":");
        json::write_string(&self.to, &mut out);
        out.extend_from_slice(b",\"ts\":");
        out.extend_from_slice(self.ts.to_string().as_bytes());
        out.extend_from_slice(b",\"type\":");
        json::write_string(self.msg_type.as_str(), &mut out);
        out.push(b'}');
        out
    }

    /// [`Envelope::encode`] as a `String`, for a WebSocket text frame.
    #[must_use]
    pub fn encode_string(&self) -> String {
        json::ascii_to_string(self.encode())
    }

    /// The bytes the transport `sig` covers: the canonical JSON of the
    /// payload alone (§1.2; `type`, `from`, `to` and `ts` are not covered).
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        json::canonical_map(&self.payload)
    }

    /// SHA-256 of [`Envelope::signing_bytes`]: the payload part of the
    /// `seen_ids` key (socp-1.3.md §3, "Dedup").
    #[must_use]
    pub fn payload_digest(&self) -> [u8; 32] {
        Sha256::digest(self.signing_bytes()).into()
    }

    /// The payload, typed by `msg_type`. Unknown types give
    /// [`Message::Unknown`]; a payload that does not fit its type gives
    /// [`DecodeError::InvalidPayload`].
    pub fn message(&self) -> Result<Message, DecodeError> {
        Message::decode(&self.msg_type, &self.payload)
    }

    /// The payload as `P`, which must be the payload of this envelope's type
    /// (else [`DecodeError::TypeMismatch`]).
    pub fn decode_payload<P: Payload>(&self) -> Result<P, DecodeError> {
        if !P::is_carried_by(&self.msg_type) {
            return Err(DecodeError::TypeMismatch {
                expected: P::TYPE,
                found: self.msg_type.clone(),
            });
        }
        messages::decode_payload(&self.msg_type, &self.payload)
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> DecodeError {
    DecodeError::WrongType { field, expected }
}

/// Removes a string field; a missing one is `""` if `optional`.
fn take_string(
    object: &mut Map<String, Value>,
    field: &'static str,
    optional: bool,
) -> Result<String, DecodeError> {
    match object.remove(field) {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(wrong_type(field, "a string")),
        None if optional => Ok(String::new()),
        None => Err(DecodeError::MissingField { field }),
    }
}

/// A JSON integer ≥ 0, or a string of decimal digits, that fits in a `u64`.
fn timestamp(value: &Value) -> Result<u64, DecodeError> {
    let ts = match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => messages::digits_to_u64(text),
        _ => None,
    };
    ts.ok_or(DecodeError::InvalidTimestamp)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
