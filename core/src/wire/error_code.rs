//! The error codes of SOCP v1.3 `ERROR` frames (§1.7).

use core::fmt;

/// An `ERROR` payload's `code`.
///
/// SOCP v1.3 defines six codes and every implementation must parse all of them.
/// socp adds four more specific ones (peers that do not know them still read
/// `detail`). Codes that other implementations invent are kept verbatim in
/// [`ErrorCode::Other`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// The recipient is not known anywhere in the network.
    UserNotFound,
    /// A transport or content signature did not verify.
    InvalidSig,
    /// A public key is malformed, not RSA-4096, or not e = 65537.
    BadKey,
    /// A peer or an operation timed out.
    Timeout,
    /// The frame's `type` is not one this node handles.
    UnknownType,
    /// The user id (or name) is already taken.
    NameInUse,
    /// socp extension: the frame could not be decoded (bad JSON, missing or
    /// mistyped fields, too large, too deep).
    BadFrame,
    /// socp extension: the sender may not send this (a spoofed `from`, a frame
    /// before the link identified itself, a server-only type from a user).
    Forbidden,
    /// socp extension: `ts` is outside the freshness window.
    Stale,
    /// socp extension: too many frames or errors on this link.
    RateLimited,
    /// A code outside the six of v1.3, kept as received.
    Other(String),
}

impl ErrorCode {
    /// The code as it appears on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::UserNotFound => "USER_NOT_FOUND",
            Self::InvalidSig => "INVALID_SIG",
            Self::BadKey => "BAD_KEY",
            Self::Timeout => "TIMEOUT",
            Self::UnknownType => "UNKNOWN_TYPE",
            Self::NameInUse => "NAME_IN_USE",
            Self::BadFrame => "BAD_FRAME",
            Self::Forbidden => "FORBIDDEN",
            Self::Stale => "STALE",
            Self::RateLimited => "RATE_LIMITED",
            Self::Other(code) => code,
        }
    }

    /// Parses a wire code; unknown codes become [`ErrorCode::Other`].
    #[must_use]
    pub fn parse(code: &str) -> Self {
        match code {
            "USER_NOT_FOUND" => Self::UserNotFound,
            "INVALID_SIG" => Self::InvalidSig,
            "BAD_KEY" => Self::BadKey,
            "TIMEOUT" => Self::Timeout,
            "UNKNOWN_TYPE" => Self::UnknownType,
            "NAME_IN_USE" => Self::NameInUse,
            "BAD_FRAME" => Self::BadFrame,
            "FORBIDDEN" => Self::Forbidden,
            "STALE" => Self::Stale,
            "RATE_LIMITED" => Self::RateLimited,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Ok(Self::parse(&code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips() {
        for code in [
            ErrorCode::UserNotFound,
            ErrorCode::InvalidSig,
            ErrorCode::BadKey,
            ErrorCode::Timeout,
            ErrorCode::UnknownType,
            ErrorCode::NameInUse,
            ErrorCode::BadFrame,
            ErrorCode::Forbidden,
            ErrorCode::Stale,
            ErrorCode::RateLimited,
        ] {
            assert_eq!(ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("QUOTA_EXCEEDED"),
            ErrorCode::Other("QUOTA_EXCEEDED".into())
        );
    }
}
