//! Why a frame did not decode.

use super::types::MsgType;

/// Why a received frame, or the payload of a decoded envelope, was rejected.
///
/// Every variant says what was wrong without echoing more than a few bytes of
/// the frame, so its `Display` text can go back to the peer as an `ERROR`
/// `detail`, and [`DecodeError::kind`] gives a stable name to count by.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is longer than [`Limits::max_frame_bytes`](super::Limits);
    /// nothing of it was parsed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The frame's length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// Arrays and objects nest deeper than
    /// [`Limits::max_json_depth`](super::Limits); nothing was built.
    #[error("JSON nests deeper than {max} levels")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
    /// The frame is not UTF-8 (a WebSocket text frame must be).
    #[error("frame is not valid UTF-8 (from byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the longest valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The frame is not well-formed JSON.
    #[error("invalid JSON at line {line} column {column}: {reason}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What kind of mistake it is.
        reason: JsonErrorKind,
    },
    /// A string in the frame equals one of serde_json's private marker keys
    /// (`$serde_json::private::…`), which would make the parser build a
    /// number where the sender wrote an object. No SOCP peer sends these.
    #[error("frame contains a reserved serde_json marker key")]
    ReservedKey,
    /// A number too large for a double (e.g. `1e400`). Python would read it as
    /// infinity and write `Infinity`, which is not JSON, so a frame holding one
    /// could be neither verified nor relayed faithfully.
    #[error("frame contains a number out of the range of a double")]
    NumberOutOfRange,
    /// The frame is JSON, but not an object.
    #[error("frame is a JSON {found}, not an object")]
    NotAnObject {
        /// The JSON type found instead (`"array"`, `"string"`, ...).
        found: &'static str,
    },
    /// A required envelope field is absent.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field's name.
        field: &'static str,
    },
    /// An envelope field has the wrong JSON type.
    #[error("field `{field}` must be {expected}")]
    WrongType {
        /// The field's name.
        field: &'static str,
        /// What it must be, e.g. `"a string"`.
        expected: &'static str,
    },
    /// `ts` is neither a non-negative JSON integer nor a string of decimal
    /// digits, or does not fit in 64 bits.
    #[error("field `ts` must be a non-negative integer of milliseconds")]
    InvalidTimestamp,
    /// The payload does not match what its message type requires.
    #[error("invalid {msg_type} payload: {reason}")]
    InvalidPayload {
        /// The envelope's type.
        msg_type: MsgType,
        /// What serde found wrong, cut to at most
        /// [`DecodeError::MAX_REASON_BYTES`] bytes.
        reason: String,
    },
    /// A typed payload was asked of an envelope of another type
    /// (an API misuse, not a peer's fault).
    #[error("expected a {expected} payload, the envelope is {found}")]
    TypeMismatch {
        /// The type the caller asked for.
        expected: MsgType,
        /// The envelope's type.
        found: MsgType,
    },
}

impl DecodeError {
    /// Longest `reason` kept in [`DecodeError::InvalidPayload`]: serde's
    /// messages quote offending values, which a peer controls.
    pub const MAX_REASON_BYTES: usize = 160;

    /// A stable, short name for this kind of error, for metrics and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::TooDeep { .. } => "too_deep",
            Self::NotUtf8 { .. } => "not_utf8",
            Self::InvalidJson { .. } => "invalid_json",
            Self::ReservedKey => "reserved_key",
            Self::NumberOutOfRange => "number_out_of_range",
            Self::NotAnObject { .. } => "not_an_object",
            Self::MissingField { .. } => "missing_field",
            Self::WrongType { .. } => "wrong_type",
            Self::InvalidTimestamp => "invalid_timestamp",
            Self::InvalidPayload { .. } => "invalid_payload",
            Self::TypeMismatch { .. } => "type_mismatch",
        }
    }

    /// Builds [`DecodeError::InvalidPayload`] from a serde error, bounding the
    /// reason's length.
    pub(crate) fn invalid_payload(msg_type: MsgType, err: &serde_json::Error) -> Self {
        let mut reason = err.to_string();
        if reason.len() > Self::MAX_REASON_BYTES {
            let mut cut = Self::MAX_REASON_BYTES;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        Self::InvalidPayload { msg_type, reason }
    }
}

/// The class of a JSON syntax error, from serde_json's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Malformed JSON: a bad token, escape, number or trailing data.
    Syntax,
    /// The text ends in the middle of a value.
    Truncated,
    /// Well-formed but unrepresentable, such as a lone UTF-16 surrogate.
    Data,
}

impl JsonErrorKind {
    pub(crate) fn of(err: &serde_json::Error) -> Self {
        match err.classify() {
            serde_json::error::Category::Eof => Self::Truncated,
            serde_json::error::Category::Data => Self::Data,
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => Self::Syntax,
        }
    }
}

impl core::fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Syntax => "syntax error",
            Self::Truncated => "unexpected end of input",
            Self::Data => "unrepresentable value",
        })
    }
}
