//! The HTTP side of a server's port, before the WebSocket upgrade: which
//! request heads upgrade to the SOCP WebSocket and how every other one is
//! answered.
//!
//! WebSocket libraries write no response to a request that is not an
//! upgrade (they just fail), so a browser or `curl` would see the connection
//! drop. An adapter therefore reads the request head itself (at most
//! [`MAX_HEAD`] bytes, ending at [`head_len`]), asks [`judge`], and either
//! hands the connection to its WebSocket library with the bytes replayed or
//! writes [`Verdict::response`] and closes.

/// Largest request head accepted (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;

/// The paths that upgrade to the SOCP WebSocket (query strings allowed).
pub const PATHS: [&str; 2] = ["/", "/ws"];

/// The body of the answer to a request that is not a WebSocket upgrade.
pub const NOT_WEBSOCKET: &str =
    "socp: WebSocket endpoint; connect with a WebSocket client (ws://host:port/ or /ws)\n";

/// What to do with a request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A WebSocket upgrade to one of [`PATHS`]: hand it to the WebSocket
    /// library, with the bytes read so far replayed.
    Upgrade,
    /// Answer with this status, reason, body and extra headers, then close.
    Refuse {
        /// HTTP status code.
        status: u16,
        /// Its reason phrase.
        reason: &'static str,
        /// A short plain-text body.
        body: &'static str,
        /// Extra header lines, each ending in CRLF.
        headers: &'static str,
    },
}

impl Verdict {
    /// The answer to a head longer than [`MAX_HEAD`].
    #[must_use]
    pub fn too_large() -> Self {
        Self::Refuse {
            status: 431,
            reason: "Request Header Fields Too Large",
            body: "socp: request head too large\n",
            headers: "",
        }
    }

    /// The full HTTP/1.1 response of a refusal (`None` for an upgrade).
    #[must_use]
    pub fn response(&self) -> Option<String> {
        let Self::Refuse {
            status,
            reason,
            body,
            headers,
        } = self
        else {
            return None;
        };
        Some(format!(
            "HTTP/1.1 {status} {reason}\r\n{headers}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    }
}

/// The length of the head (through its blank line), if complete.
#[must_use]
pub fn head_len(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn bad_request(body: &'static str) -> Verdict {
    Verdict::Refuse {
        status: 400,
        reason: "Bad Request",
        body,
        headers: "",
    }
}

/// Decides what to do with a request head (`read` may run past the head;
/// only the head is looked at).
#[must_use]
pub fn judge(read: &[u8]) -> Verdict {
    let head = read
        .get(..head_len(read).unwrap_or(read.len()))
        .unwrap_or_default();
    let Ok(head) = core::str::from_utf8(head) else {
        return bad_request("socp: malformed request\n");
    };
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version), None) = (
        request_line.next(),
        request_line.next(),
        request_line.next(),
        request_line.next(),
    ) else {
        return bad_request("socp: malformed request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return bad_request("socp: HTTP/1.1 WebSocket upgrades only\n");
    }
    let headers: Vec<(String, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim()))
        .collect();
    let header = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| *v)
    };
    let has_token = |name: &'static str, token: &str| {
        header(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") {
        return Verdict::Refuse {
            status: 426,
            reason: "Upgrade Required",
            body: NOT_WEBSOCKET,
            headers: "Upgrade: websocket\r\n",
        };
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    if !PATHS.contains(&path) {
        return Verdict::Refuse {
            status: 404,
            reason: "Not Found",
            body: "socp: no such endpoint; the WebSocket is at / or /ws\n",
            headers: "",
        };
    }
    if method != "GET" {
        return bad_request("socp: a WebSocket upgrade is a GET\n");
    }
    if !has_token("connection", "upgrade") || header("sec-websocket-key").next().is_none() {
        return bad_request("socp: incomplete WebSocket upgrade request\n");
    }
    if !header("sec-websocket-version").any(|v| v == "13") {
        return Verdict::Refuse {
            status: 426,
            reason: "Upgrade Required",
            body: "socp: WebSocket version 13 only\n",
            headers: "Sec-WebSocket-Version: 13\r\n",
        };
    }
    Verdict::Upgrade
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(head: &str) -> u16 {
        match judge(head.as_bytes()) {
            Verdict::Upgrade => 101,
            Verdict::Refuse { status, .. } => status,
        }
    }

    const WS: &str = "Connection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn requests_are_judged() {
        assert_eq!(status(&format!("GET / HTTP/1.1\r\nHost: x\r\n{WS}")), 101);
        assert_eq!(status(&format!("GET /ws?a=b HTTP/1.1\r\n{WS}")), 101);
        assert_eq!(status(&format!("GET /?x HTTP/1.1\r\n{WS}")), 101);
        assert_eq!(status(&format!("GET /nope HTTP/1.1\r\n{WS}")), 404);
        assert_eq!(status(&format!("POST /ws HTTP/1.1\r\n{WS}")), 400);
        assert_eq!(status("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), 426);
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 426);
        assert_eq!(status("garbage\r\n\r\n"), 400);
        assert_eq!(status("PRI * HTTP/2.0\r\n\r\n"), 400);
        assert_eq!(
            status("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            400
        );
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\n{}", WS.replace(": 13", ": 8"))),
            426
        );
    }

    #[test]
    fn head_ends_at_the_blank_line() {
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n\r\nxyz"), Some(18));
        assert_eq!(head_len(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_len(b"GET / HTTP/1.1\r\n"), None);
    }
}
