//! One WebSocket connection: its task (read, write, ping, idle timeout,
//! close) and how to dial one.

use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use async_tungstenite::{WebSocketReceiver, WebSocketSender, WebSocketStream};
use bytes::Bytes;
use event_listener::Event;
use futures_util::{SinkExt, StreamExt};
use smol::channel::{Receiver, Sender, TrySendError};
use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpStream;
use smol::{Timer, future};

use crate::{Clock, WsLimits, timeout};

/// How long a closing connection waits for the peer's close frame (or to
/// flush its own) before dropping the socket.
pub(crate) const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Every WebSocket of this crate: a TCP stream, possibly with bytes already
/// read from it (the request head the server peeked at).
pub(crate) type Socket = WebSocketStream<Prefixed>;

/// A TCP stream that first replays `prefix` (bytes already read from it).
#[derive(Debug)]
pub(crate) struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
}

impl Prefixed {
    /// `inner`, replaying `prefix` before anything else is read from it.
    pub(crate) fn new(inner: TcpStream, prefix: Vec<u8>) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(rest) = this.prefix.get(this.pos..)
            && !rest.is_empty()
        {
            let n = rest.len().min(buf.len());
            if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
                to.copy_from_slice(from);
            }
            this.pos += n;
            if this.pos >= this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

/// What a driver queues for a connection.
#[derive(Debug, Clone)]
pub(crate) enum Out {
    /// A text frame (UTF-8 JSON from the core).
    Frame(Bytes),
    /// Close with this code and reason, after everything queued before.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Short reason (cut to fit a close frame).
        reason: String,
    },
}

/// What a connection reports to its driver, tagged with the connection's id.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A text frame (valid UTF-8: tungstenite checks), holding its share of
    /// the driver's [`Budget`] until the driver drops it.
    Frame(Bytes, Permit),
    /// A binary frame (SOCP is text only).
    Binary,
    /// The connection is gone (the task is ending).
    Closed,
}

/// Most bytes of received frames waiting for one driver, across all its
/// connections (a reader waits for room before it hands a frame over).
pub(crate) const INBOUND_BUDGET: usize = 16 * 1024 * 1024;

/// The bytes of received frames a driver may have waiting, in KiB: a
/// semaphore taking several permits at once, waiters served in turn.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    shared: Arc<BudgetShared>,
}

#[derive(Debug)]
struct BudgetShared {
    free_kib: AtomicU32,
    total_kib: u32,
    /// Signalled whenever a permit is returned.
    released: Event,
    /// Held by the one reader waiting for room, so that waiters are served in
    /// order and a large frame is not starved by small ones.
    turn: smol::lock::Mutex<()>,
}

/// A frame's share of a [`Budget`], given back on drop.
#[derive(Debug)]
pub(crate) struct Permit {
    shared: Arc<BudgetShared>,
    kib: u32,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.shared.free_kib.fetch_add(self.kib, Ordering::AcqRel);
        self.shared.released.notify(usize::MAX);
    }
}

impl Budget {
    /// A budget of `bytes` (at least 1 KiB).
    pub(crate) fn new(bytes: usize) -> Self {
        let total_kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            shared: Arc::new(BudgetShared {
                free_kib: AtomicU32::new(total_kib),
                total_kib,
                released: Event::new(),
                turn: smol::lock::Mutex::new(()),
            }),
        }
    }

    /// Waits until a frame of `len` bytes fits (a frame larger than the whole
    /// budget waits for all of it).
    pub(crate) async fn acquire(&self, len: usize) -> Permit {
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.shared.total_kib);
        let _turn = self.shared.turn.lock().await;
        loop {
            if let Some(permit) = self.try_take(kib) {
                return permit;
            }
            let released = self.shared.released.listen();
            if let Some(permit) = self.try_take(kib) {
                return permit;
            }
            released.await;
        }
    }

    fn try_take(&self, kib: u32) -> Option<Permit> {
        self.shared
            .free_kib
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(kib)
            })
            .ok()
            .map(|_| Permit {
                shared: Arc::clone(&self.shared),
                kib,
            })
    }
}

/// The driver's side of a connection's outgoing queue, with its byte count.
#[derive(Debug)]
pub(crate) struct OutQueue {
    tx: Sender<Out>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// When the connection last received anything (frame, ping or pong), in
    /// the [`Clock`]'s microseconds; 0 before the first.
    pub(crate) heard: Arc<AtomicU64>,
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueError {
    /// Too many frames or bytes waiting: the peer does not read.
    Full,
    /// The connection task is gone.
    Gone,
}

impl<T> From<TrySendError<T>> for QueueError {
    fn from(e: TrySendError<T>) -> Self {
        match e {
            TrySendError::Full(_) => Self::Full,
            TrySendError::Closed(_) => Self::Gone,
        }
    }
}

/// Takes a frame's bytes back off the queue's count unless disarmed (the
/// frame was queued).
struct Uncount<'a>(&'a AtomicUsize, usize);

impl Drop for Uncount<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

impl OutQueue {
    /// Queues a frame without waiting. With `bound_bytes`, a frame that would
    /// take the queued bytes over the limit is refused as [`QueueError::Full`].
    pub(crate) fn push_frame(&self, frame: Bytes, bound_bytes: bool) -> Result<(), QueueError> {
        let len = frame.len();
        let queued = self.bytes.fetch_add(len, Ordering::Relaxed);
        let uncount = Uncount(&self.bytes, len);
        if bound_bytes && queued.saturating_add(len) > self.max_bytes {
            return Err(QueueError::Full);
        }
        self.tx.try_send(Out::Frame(frame))?;
        std::mem::forget(uncount);
        Ok(())
    }

    /// Queues a close without waiting.
    pub(crate) fn push_close(&self, code: u16, reason: String) -> Result<(), QueueError> {
        Ok(self.tx.try_send(Out::Close { code, reason })?)
    }

    /// Queues `out`, waiting for room (the client driver's backpressure);
    /// `false` if the connection task is gone. Cancelling it queues nothing.
    pub(crate) async fn send(&self, out: Out) -> bool {
        let len = match &out {
            Out::Frame(frame) => frame.len(),
            Out::Close { .. } => 0,
        };
        self.bytes.fetch_add(len, Ordering::Relaxed);
        let uncount = Uncount(&self.bytes, len);
        let sent = self.tx.send(out).await.is_ok();
        if sent {
            std::mem::forget(uncount);
        }
        sent
    }
}

/// Everything a connection task needs besides its socket.
pub(crate) struct ConnTask {
    id: u64,
    events: Sender<(u64, ConnEvent)>,
    budget: Budget,
    out: Receiver<Out>,
    bytes: Arc<AtomicUsize>,
    idle: Duration,
    ping: Duration,
    heard: Arc<AtomicU64>,
    clock: Clock,
}

/// A new connection's queue and task state: the driver keeps the [`OutQueue`]
/// and spawns [`run_conn`] with the [`ConnTask`].
pub(crate) fn conn_pair(
    id: u64,
    events: Sender<(u64, ConnEvent)>,
    budget: Budget,
    limits: &WsLimits,
    clock: Clock,
) -> (OutQueue, ConnTask) {
    let (tx, rx) = smol::channel::bounded(limits.queue());
    let bytes = Arc::new(AtomicUsize::new(0));
    let heard = Arc::new(AtomicU64::new(0));
    (
        OutQueue {
            tx,
            bytes: Arc::clone(&bytes),
            max_bytes: limits.outgoing_bytes.max(1),
            heard: Arc::clone(&heard),
        },
        ConnTask {
            id,
            events,
            budget,
            out: rx,
            bytes,
            idle: limits.idle(),
            ping: limits.ping_interval(),
            heard,
            clock,
        },
    )
}

/// How the read half ended.
#[derive(Debug)]
enum ReadEnd {
    /// The peer sent a close frame (tungstenite queued the reply).
    PeerClosed,
    /// The stream ended or failed.
    Gone(String),
    /// A message over the size limit.
    TooBig(String),
    /// Nothing received for the idle timeout.
    Idle,
    /// The driver stopped listening.
    DriverGone,
}

/// How the write half ended.
#[derive(Debug)]
enum WriteEnd {
    /// The driver asked for a close, which was sent.
    Closed,
    /// Writing failed or stalled.
    Failed(String),
    /// The driver dropped the queue.
    DriverGone,
}

/// Runs one connection until it closes, then reports [`ConnEvent::Closed`].
pub(crate) async fn run_conn(ws: Socket, task: ConnTask) {
    let ConnTask {
        id,
        events,
        budget,
        out,
        bytes,
        idle,
        ping,
        heard,
        clock,
    } = task;
    let (mut sink, mut stream) = ws.split();
    let ended = {
        let mut reader = pin!(read_loop(
            &mut stream,
            id,
            &events,
            &budget,
            idle,
            &heard,
            clock
        ));
        let mut writer = pin!(write_loop(&mut sink, &out, &bytes, idle, ping));
        let first = future::or(async { Ok((&mut reader).await) }, async {
            Err((&mut writer).await)
        })
        .await;
        if let Err(WriteEnd::Closed) = first {
            // Our close frame is out: give the peer a moment to answer it.
            let _ = timeout(CLOSE_LINGER, &mut reader).await;
        }
        first
    };
    match &ended {
        Ok(ReadEnd::PeerClosed) => {
            // Flush tungstenite's reply to the peer's close frame.
            let _ = timeout(CLOSE_LINGER, SinkExt::close(&mut sink)).await;
        }
        Ok(ReadEnd::TooBig(e)) => {
            tracing::info!(conn = id, error = %e, "message over the size limit: closing");
            let frame = close_frame(1009, "message too big");
            let _ = timeout(CLOSE_LINGER, sink.send(frame)).await;
        }
        Ok(ReadEnd::Idle) => {
            tracing::info!(conn = id, "idle timeout: closing");
            let frame = close_frame(1001, "idle timeout");
            let _ = timeout(CLOSE_LINGER, sink.send(frame)).await;
        }
        Ok(ReadEnd::Gone(e)) => tracing::debug!(conn = id, error = %e, "connection ended"),
        Err(WriteEnd::Failed(e)) => tracing::debug!(conn = id, error = %e, "write failed"),
        Ok(ReadEnd::DriverGone) | Err(WriteEnd::Closed | WriteEnd::DriverGone) => {}
    }
    drop(sink);
    drop(stream);
    let _ = events.send((id, ConnEvent::Closed)).await;
}

async fn read_loop(
    stream: &mut WebSocketReceiver<Prefixed>,
    id: u64,
    events: &Sender<(u64, ConnEvent)>,
    budget: &Budget,
    idle: Duration,
    heard: &AtomicU64,
    clock: Clock,
) -> ReadEnd {
    loop {
        let Some(next) = timeout(idle, stream.next()).await else {
            return ReadEnd::Idle;
        };
        heard.store(clock.now().mono.as_micros(), Ordering::Relaxed);
        let event = match next {
            None => return ReadEnd::Gone("end of stream".into()),
            Some(Ok(Message::Text(text))) => {
                let permit = budget.acquire(text.len()).await;
                ConnEvent::Frame(Bytes::from(text), permit)
            }
            Some(Ok(Message::Binary(_))) => ConnEvent::Binary,
            Some(Ok(Message::Close(_))) => return ReadEnd::PeerClosed,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Err(WsError::Capacity(e))) => return ReadEnd::TooBig(e.to_string()),
            Some(Err(e)) => return ReadEnd::Gone(e.to_string()),
        };
        if events.send((id, event)).await.is_err() {
            return ReadEnd::DriverGone;
        }
    }
}

async fn write_loop(
    sink: &mut WebSocketSender<Prefixed>,
    out: &Receiver<Out>,
    bytes: &AtomicUsize,
    stall: Duration,
    ping_every: Duration,
) -> WriteEnd {
    let mut ping = Timer::after(ping_every);
    loop {
        // The ping first: it is ready only when due, so a steady stream of
        // frames cannot hold it back (the peer's pong keeps our reader alive).
        let next = future::or(
            async {
                (&mut ping).await;
                None
            },
            async { Some(out.recv().await) },
        )
        .await;
        let msg = match next {
            None => {
                ping.set_after(ping_every);
                Message::Ping(Bytes::new())
            }
            Some(Ok(Out::Frame(frame))) => {
                bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                match Utf8Bytes::try_from(frame) {
                    Ok(text) => Message::Text(text),
                    Err(_) => {
                        tracing::warn!("dropping a frame that is not UTF-8");
                        continue;
                    }
                }
            }
            Some(Ok(Out::Close { code, reason })) => {
                let _ = timeout(CLOSE_LINGER, sink.send(close_frame(code, &reason))).await;
                return WriteEnd::Closed;
            }
            Some(Err(_)) => return WriteEnd::DriverGone,
        };
        match timeout(stall, sink.send(msg)).await {
            Some(Ok(())) => {}
            Some(Err(e)) => return WriteEnd::Failed(e.to_string()),
            None => return WriteEnd::Failed("write stalled for the idle timeout".into()),
        }
    }
}

/// A close message; the reason is cut to fit a control frame (123 bytes).
fn close_frame(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(reason.get(..end).unwrap_or_default()),
    }))
}

/// Opens a WebSocket to a `ws://` URL within the handshake timeout.
pub(crate) async fn dial(url: &str, limits: &WsLimits) -> Result<Socket, String> {
    let request = url
        .into_client_request()
        .map_err(|e| format!("bad URL {url}: {e}"))?;
    let uri = request.uri();
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => return Err(format!("{url}: wss:// is not supported by this adapter")),
        _ => return Err(format!("{url}: not a ws:// URL")),
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("{url}: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let config = crate::ws_config(limits);
    let connect = async move {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (ws, _response) = async_tungstenite::client_async_with_config(
            request,
            Prefixed::new(tcp, Vec::new()),
            Some(config),
        )
        .await
        .map_err(|e| format!("WebSocket handshake with {host}:{port}: {e}"))?;
        Ok(ws)
    };
    timeout(limits.handshake_timeout, connect)
        .await
        .ok_or_else(|| format!("{url}: handshake timeout"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_control_frame() {
        let long = "é".repeat(100);
        let Message::Close(Some(frame)) = close_frame(1000, &long) else {
            panic!("not a close frame");
        };
        assert!(frame.reason.len() <= 123);
        assert_eq!(u16::from(frame.code), 1000);
    }

    #[test]
    fn the_budget_waits_for_room_and_serves_in_turn() {
        smol::block_on(async {
            let budget = Budget::new(4 * 1024);
            let a = budget.acquire(3 * 1024).await;
            // Larger than the whole budget: waits for all of it.
            let big = budget.acquire(1 << 20);
            let waited = timeout(Duration::from_millis(50), big).await;
            assert!(waited.is_none());
            let small = budget.acquire(1).await;
            drop(a);
            let big = timeout(Duration::from_millis(50), budget.acquire(1 << 20)).await;
            assert!(big.is_none(), "one KiB is still held");
            drop(small);
            let big = timeout(Duration::from_secs(5), budget.acquire(1 << 20)).await;
            assert_eq!(big.map(|p| p.kib), Some(4));
        });
    }

    #[test]
    fn queued_bytes_are_counted_and_bounded() {
        smol::block_on(async {
            let (events, _rx) = smol::channel::bounded(1);
            let mut limits = WsLimits::default();
            limits.outgoing_queue = 2;
            limits.outgoing_bytes = 10;
            let (queue, task) = conn_pair(1, events, Budget::new(1), &limits, Clock::new());
            let frame = Bytes::from_static(b"123456");
            assert_eq!(queue.push_frame(frame.clone(), true), Ok(()));
            assert_eq!(queue.push_frame(frame.clone(), true), Err(QueueError::Full));
            assert_eq!(queue.push_frame(frame.clone(), false), Ok(()));
            assert_eq!(
                queue.push_frame(frame.clone(), false),
                Err(QueueError::Full)
            );
            assert_eq!(queue.bytes.load(Ordering::Relaxed), 12);
            // Waiting for room: a cancelled send leaves no trace.
            let blocked = timeout(
                Duration::from_millis(20),
                queue.send(Out::Frame(frame.clone())),
            );
            assert!(blocked.await.is_none());
            assert_eq!(queue.bytes.load(Ordering::Relaxed), 12);
            assert!(task.out.try_recv().is_ok());
            assert!(queue.send(Out::Frame(frame.clone())).await);
            assert_eq!(queue.bytes.load(Ordering::Relaxed), 18);
            drop(task);
            assert_eq!(queue.push_close(1000, String::new()), Err(QueueError::Gone));
            assert!(!queue.send(Out::Frame(frame)).await);
            assert_eq!(queue.bytes.load(Ordering::Relaxed), 18);
        });
    }
}
