//! The HTTP side of a server's port, before the WebSocket upgrade: the I/O
//! around [`socp_core::driver::upgrade`], which decides. The request head is
//! read here (at most [`MAX_HEAD`] bytes), judged by the core, then either
//! handed to the WebSocket library with the bytes replayed ([`Prefixed`]) or
//! answered with the core's HTTP error and closed.

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use socp_core::driver::upgrade::{MAX_HEAD, Verdict, head_len, judge};

use crate::conn::{Prefixed, Socket};
use crate::{WsLimits, timeout};

/// Reads the request head from an accepted connection and either upgrades it
/// or answers it with an HTTP error. The caller bounds the time it takes.
///
/// # Errors
/// A description of why there is no WebSocket (refused, EOF, I/O error).
pub(crate) async fn accept(mut tcp: TcpStream, limits: &WsLimits) -> Result<Socket, String> {
    let read = match read_head(&mut tcp).await {
        Ok(read) => read,
        Err(HeadError::TooLarge) => {
            respond(&mut tcp, &Verdict::too_large()).await;
            return Err("request head too large".into());
        }
        Err(HeadError::Io(e)) => return Err(e),
    };
    let verdict = judge(&read);
    if verdict != Verdict::Upgrade {
        respond(&mut tcp, &verdict).await;
        return Err(format!("refused HTTP request: {verdict:?}"));
    }
    async_tungstenite::accept_async_with_config(
        Prefixed::new(tcp, read),
        Some(crate::ws_config(limits)),
    )
    .await
    .map_err(|e| format!("WebSocket handshake: {e}"))
}

#[derive(Debug)]
enum HeadError {
    TooLarge,
    Io(String),
}

/// Reads until the end of the request head; returns every byte read (the head
/// and anything after it, to be replayed).
async fn read_head(tcp: &mut TcpStream) -> Result<Vec<u8>, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if head_len(&buf).is_some() {
            return Ok(buf);
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| HeadError::Io(e.to_string()))?;
        if n == 0 {
            return Err(HeadError::Io("connection closed before a request".into()));
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Writes an HTTP error response and shuts the connection down (best effort).
async fn respond(tcp: &mut TcpStream, verdict: &Verdict) {
    let Some(response) = verdict.response() else {
        return;
    };
    let _ = tcp.write_all(response.as_bytes()).await;
    // Closing a smol TcpStream's writer shuts down its write half.
    let _ = tcp.close().await;
    // Lingering close: read (and drop) what the client still sends for a
    // moment, so that closing with unread data does not reset the connection
    // before the client has read the answer.
    let mut sink = [0u8; 1024];
    let mut left = 64 * 1024usize;
    let linger = async {
        while left > 0 {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(core::time::Duration::from_secs(1), linger).await;
}
