//! A [`Channel`] carrying SOCP frames on a link (server ↔ server, client ↔
//! server): each frame is sealed whole into a `SECURE` envelope's record.
//! Both ends of a link use these, so the record layout and its context live
//! in one place.

use bytes::Bytes;
use zeroize::Zeroizing;

use super::{Channel, SessionError};
use crate::wire::messages::SecureRecord;
use crate::wire::{Envelope, Message, b64};

/// The context every link record is sealed with (the channel's
/// per-direction chains already tell the two directions apart).
pub const LINK_CONTEXT: &[u8] = b"socp server link";

/// `frame` sealed as the next record of `channel`, in a `SECURE` envelope
/// from `from` to `to` at `ts` (unsigned: the channel authenticates it).
///
/// # Errors
/// As [`Channel::seal`].
pub fn seal_frame(
    channel: &mut Channel,
    from: &str,
    to: &str,
    ts: u64,
    frame: &[u8],
) -> Result<Bytes, SessionError> {
    let record = channel.seal(LINK_CONTEXT, frame)?;
    let msg = SecureRecord {
        r: b64::encode(&record),
    };
    Ok(Bytes::from(
        Envelope::new(from, to, ts, Message::Secure(msg)).encode(),
    ))
}

/// The frame inside a `SECURE` record of `channel`.
///
/// # Errors
/// [`SessionError::Malformed`] for a record that is not base64url; as
/// [`Channel::open`] otherwise (the channel is then unchanged).
pub fn open_frame(
    channel: &mut Channel,
    record: &SecureRecord,
) -> Result<Zeroizing<Vec<u8>>, SessionError> {
    let bytes = b64::decode(&record.r).map_err(|_| SessionError::Malformed("record encoding"))?;
    channel.open(LINK_CONTEXT, &bytes)
}
