//! The server driver: one task owns the [`Server`], one task per WebSocket,
//! an accept loop, and a thread for the [`Store`].
//!
//! The driver loop: take one input (a frame, a new or closed connection, a
//! dial result, a store reply, a timer tick or a control command), feed it to
//! the core, then drain the core's frames (to the per-link queues), actions
//! (dial, close, store) and events (tracing and [`ServerHandle::subscribe`]),
//! and sleep until the next input or [`Server::poll_timeout`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_broadcast::{InactiveReceiver, Receiver as EventReceiver, Sender as EventSender};
use smol::channel::{Receiver, Sender};
use smol::lock::{Semaphore, SemaphoreGuardArc};
use smol::net::TcpListener;
use smol::{Task, Timer, future};
use socp_core::server::{
    Action, Connection, Event, LinkId, LoadRequest, Server, Store, StoreOp, StoredReply, Transmit,
};

use crate::conn::{self, Budget, ConnEvent, OutQueue, QueueError, Socket};
use crate::{Clock, Deadline, WsLimits, http, recv, timeout, timeout_at};

/// Capacity of the channel from connection tasks to the driver (frames wait
/// there, and readers slow down, while the driver is busy).
const CONN_EVENTS: usize = 1024;
/// Capacity of the channel of new connections (accepted or dialed).
const NEW_CONNS: usize = 64;
/// Capacity of the event broadcast; a subscriber that falls further behind
/// loses the oldest events (`RecvError::Overflowed`).
const EVENT_CAPACITY: usize = 1024;
/// How long a graceful shutdown waits for queued frames and close frames to
/// go out before dropping the remaining sockets.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Most store writes applied in one batch.
const STORE_BATCH: usize = 256;

/// A running server (see [`spawn_server`]). Dropping the handle shuts the
/// server down gracefully in the background, as [`ServerHandle::shutdown`].
pub struct ServerHandle {
    local_addr: SocketAddr,
    ctrl: Sender<Ctrl>,
    events: InactiveReceiver<Event>,
    server_id: Arc<Mutex<String>>,
    /// Closed (never sent on) once the server has stopped.
    stopped: Receiver<()>,
    store_errors: Arc<AtomicU64>,
}

impl core::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .field("server_id", &self.server_id())
            .finish_non_exhaustive()
    }
}

/// A read-only look at the server, run inside the driver.
type InspectFn = Box<dyn FnOnce(&Server) + Send>;

/// Commands from the handle.
enum Ctrl {
    Shutdown,
    Kill,
    Inspect(InspectFn),
}

impl ServerHandle {
    /// The address the server listens on.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every event of the core from now on (each is also logged with
    /// `tracing`). A subscriber more than 1024 events behind loses the oldest
    /// (`RecvError::Overflowed`); the driver never waits for a subscriber.
    #[must_use]
    pub fn subscribe(&self) -> EventReceiver<Event> {
        self.events.activate_cloned()
    }

    /// The server's current id (it changes when an introducer assigns one).
    #[must_use]
    pub fn server_id(&self) -> String {
        self.server_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` on the server inside its driver (read only: rosters, links,
    /// the public channel) and returns its result, or `None` if the server
    /// has stopped. For status pages, metrics and tests.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Server) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = smol::channel::bounded(1);
        let inspect: InspectFn = Box::new(move |server: &Server| {
            let _ = tx.try_send(f(server));
        });
        self.ctrl.try_send(Ctrl::Inspect(inspect)).ok()?;
        rx.recv().await.ok()
    }

    /// How many store operations have failed so far (each is logged).
    #[must_use]
    pub fn store_errors(&self) -> u64 {
        self.store_errors.load(Ordering::Relaxed)
    }

    /// Shuts down gracefully: `SERVER_GOODBYE` to every linked server, every
    /// queued frame flushed and every socket closed with code 1000 (waiting at
    /// most a few seconds for slow peers), every pending store write applied;
    /// returns once the server has stopped.
    pub async fn shutdown(self) {
        let _ = self.ctrl.try_send(Ctrl::Shutdown);
        self.closed().await;
    }

    /// Stops abruptly, as a crash would: every socket is dropped with no
    /// goodbye and no close frame. Pending store writes are still applied.
    /// Returns at once; [`ServerHandle::closed`] tells when it is done.
    pub fn kill(self) {
        let _ = self.ctrl.try_send(Ctrl::Kill);
    }

    /// Resolves once the server has stopped (listener closed, sockets
    /// dropped, store thread finished).
    pub async fn closed(&self) {
        let _ = self.stopped.recv().await;
    }
}

/// A new WebSocket for the driver.
enum NewConn {
    /// Accepted by the listener.
    Inbound {
        remote: SocketAddr,
        ws: Box<Socket>,
        permit: SemaphoreGuardArc,
    },
    /// The outcome of an [`Action::Dial`].
    Dialed {
        link: LinkId,
        result: Result<Box<Socket>, String>,
    },
}

/// A request for the store thread.
enum StoreReq {
    Write(StoreOp),
    Load(LoadRequest),
}

/// What the driver knows of a link. Dropping a task cancels it.
enum Slot {
    /// A dial in progress.
    Dialing(Task<()>),
    /// An open WebSocket: its queue and its task.
    Open { queue: OutQueue, task: Task<()> },
}

/// Runs `server` on `listener` (already bound; the caller built `server`
/// with the listener's real port in its `ServerConfig`) until
/// [`ServerHandle::shutdown`], [`ServerHandle::kill`] or the handle is dropped.
///
/// `store` answers the core's [`Action::Store`] and [`Action::Load`] on a
/// thread of its own, never on the executor: writes are applied in order,
/// in batches; a read first applies every earlier write, and its reply goes
/// back to [`Server::handle_stored`]. A store error is logged with
/// `tracing::error`, counted ([`ServerHandle::store_errors`]), and the server
/// keeps running (a failed read is not answered: that login times out and the
/// client retries).
///
/// The driver runs on smol's global executor: no runtime is needed to call
/// this, and the handle works from any executor.
pub fn spawn_server<S: Store>(
    listener: TcpListener,
    server: Server,
    store: S,
    limits: WsLimits,
    clock: Clock,
) -> ServerHandle {
    let local_addr = listener.local_addr().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the listener has no local address");
        SocketAddr::from(([0, 0, 0, 0], 0))
    });
    let store_errors = Arc::new(AtomicU64::new(0));
    let (store_tx, store_rx) = std::sync::mpsc::channel::<StoreReq>();
    let (reply_tx, reply_rx) = smol::channel::unbounded::<StoredReply>();
    // Never sent on: closed when the store thread ends.
    let (store_done_tx, store_done_rx) = smol::channel::bounded::<()>(1);
    let errors = Arc::clone(&store_errors);
    let spawned = std::thread::Builder::new()
        .name("socp-store".into())
        .spawn(move || store_thread(store, &store_rx, &reply_tx, &errors, store_done_tx));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the store thread; nothing will be persisted");
    }

    let (ctrl_tx, ctrl_rx) = smol::channel::unbounded();
    let (mut events, events_rx) = async_broadcast::broadcast(EVENT_CAPACITY);
    // A lagging subscriber loses its oldest events; the driver never waits.
    events.set_overflow(true);
    let server_id = Arc::new(Mutex::new(server.id().to_owned()));
    let (stopped_tx, stopped_rx) = smol::channel::bounded(1);
    let (conn_tx, conn_rx) = smol::channel::bounded(CONN_EVENTS);
    let (new_tx, new_rx) = smol::channel::bounded(NEW_CONNS);

    tracing::info!(addr = %local_addr, server_id = server.id(), "server listening");
    let accept = crate::executor::spawn(accept_loop(listener, new_tx.clone(), limits.clone()));
    let driver = Driver {
        server,
        clock,
        limits,
        links: HashMap::new(),
        conn_tx,
        budget: Budget::new(conn::INBOUND_BUDGET),
        new_tx,
        store_tx: Some(store_tx),
        events,
        server_id: Arc::clone(&server_id),
        stopping: false,
    };
    let channels = Channels {
        ctrl: ctrl_rx,
        conn: conn_rx,
        new: new_rx,
        replies: reply_rx,
    };
    crate::executor::spawn(driver.run(channels, accept, store_done_rx, stopped_tx)).detach();
    ServerHandle {
        local_addr,
        ctrl: ctrl_tx,
        events: events_rx.deactivate(),
        server_id,
        stopped: stopped_rx,
        store_errors,
    }
}

/// Accepts connections, and upgrades each on a task of its own within the
/// handshake timeout.
async fn accept_loop(listener: TcpListener, new_tx: Sender<NewConn>, limits: WsLimits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropped with this task (on shutdown or kill), which cancels every handshake.
    let mut handshakes: Vec<Task<()>> = Vec::new();
    loop {
        match listener.accept().await {
            Ok((tcp, remote)) => {
                handshakes.retain(|task| !task.is_finished());
                let Some(permit) = permits.try_acquire_arc() else {
                    tracing::warn!(%remote, "connection limit reached: refusing");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let new_tx = new_tx.clone();
                let limits = limits.clone();
                handshakes.push(crate::executor::spawn(async move {
                    match timeout(limits.handshake_timeout, http::accept(tcp, &limits)).await {
                        Some(Ok(ws)) => {
                            let conn = NewConn::Inbound {
                                remote,
                                ws: Box::new(ws),
                                permit,
                            };
                            let _ = new_tx.send(conn).await;
                        }
                        Some(Err(e)) => tracing::debug!(%remote, error = %e, "no WebSocket"),
                        None => tracing::debug!(%remote, "handshake timeout"),
                    }
                }));
            }
            Err(e) => {
                // Out of file descriptors, most likely: back off a little.
                tracing::warn!(error = %e, "accept failed");
                Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Applies store requests in order, batching writes, until the driver drops
/// its sender; then applies what is left and returns (dropping `done`).
fn store_thread<S: Store>(
    mut store: S,
    rx: &std::sync::mpsc::Receiver<StoreReq>,
    replies: &Sender<StoredReply>,
    errors: &AtomicU64,
    done: Sender<()>,
) {
    let mut batch = Vec::new();
    let flush = |store: &mut S, batch: &mut Vec<StoreOp>| {
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.apply(batch) {
            errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, writes = batch.len(), "store write failed");
        }
        batch.clear();
    };
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(req) = next {
            match req {
                StoreReq::Write(op) => {
                    batch.push(op);
                    if batch.len() >= STORE_BATCH {
                        flush(&mut store, &mut batch);
                    }
                }
                StoreReq::Load(request) => {
                    flush(&mut store, &mut batch);
                    match store.load(&request) {
                        Ok(reply) => {
                            let _ = replies.try_send(reply);
                        }
                        Err(e) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(error = %e, ?request, "store read failed");
                        }
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        flush(&mut store, &mut batch);
    }
    drop(done);
}

/// The driver's input channels.
struct Channels {
    ctrl: Receiver<Ctrl>,
    conn: Receiver<(u64, ConnEvent)>,
    new: Receiver<NewConn>,
    replies: Receiver<StoredReply>,
}

/// How the main loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Graceful,
    Kill,
}

/// What woke the driver.
enum Wake {
    Ctrl(Option<Ctrl>),
    Timeout,
    Stored(StoredReply),
    New(NewConn),
    Conn(u64, ConnEvent),
}

struct Driver {
    server: Server,
    clock: Clock,
    limits: WsLimits,
    links: HashMap<LinkId, Slot>,
    conn_tx: Sender<(u64, ConnEvent)>,
    /// Bytes of received frames waiting for this driver.
    budget: Budget,
    new_tx: Sender<NewConn>,
    store_tx: Option<std::sync::mpsc::Sender<StoreReq>>,
    events: EventSender<Event>,
    server_id: Arc<Mutex<String>>,
    /// Shutting down: no new dials.
    stopping: bool,
}

impl Driver {
    async fn run(
        mut self,
        ch: Channels,
        accept: Task<()>,
        store_done: Receiver<()>,
        stopped: Sender<()>,
    ) {
        let mut deadline = Deadline::new();
        let stop = loop {
            self.drain();
            deadline.set(
                self.server
                    .poll_timeout()
                    .map(|t| self.clock.instant_to_deadline(t)),
            );
            let ctrl = async { Wake::Ctrl(ch.ctrl.recv().await.ok()) };
            let timer = async {
                deadline.wait().await;
                Wake::Timeout
            };
            let stored = async { Wake::Stored(recv(&ch.replies).await) };
            let new = async { Wake::New(recv(&ch.new).await) };
            let conn = async {
                let (id, event) = recv(&ch.conn).await;
                Wake::Conn(id, event)
            };
            // Rarely ready branches first; the busy ones race fairly.
            let wake = future::or(
                future::or(ctrl, timer),
                future::or(stored, future::race(new, conn)),
            )
            .await;
            match wake {
                Wake::Ctrl(Some(Ctrl::Kill)) => break Stop::Kill,
                Wake::Ctrl(Some(Ctrl::Inspect(f))) => f(&self.server),
                Wake::Ctrl(Some(Ctrl::Shutdown) | None) => break Stop::Graceful,
                Wake::Timeout => self.on_timeout(),
                Wake::Stored(reply) => self.server.handle_stored(self.clock.now(), reply),
                Wake::New(new) => self.on_new_conn(new),
                Wake::Conn(id, event) => self.on_conn_event(LinkId(id), event),
            }
        };
        accept.cancel().await;
        self.stopping = true;
        match stop {
            Stop::Graceful => self.shutdown(&ch.conn).await,
            Stop::Kill => tracing::warn!("server killed: dropping every connection"),
        }
        for (_, slot) in self.links.drain() {
            let (Slot::Dialing(task) | Slot::Open { task, .. }) = slot;
            task.cancel().await;
        }
        // Drain what the core produced last (store writes), then let the store
        // thread apply everything and stop.
        self.drain();
        self.store_tx = None;
        let _ = store_done.recv().await;
        tracing::info!(server_id = self.server.id(), "server stopped");
        drop(stopped);
    }

    /// The core's timers are due.
    fn on_timeout(&mut self) {
        // A frame received but still queued behind seconds of work (a file
        // relayed piece by piece, an RSA signature each) is evidence its link
        // is alive: tell the core what the sockets heard before its timers
        // judge liveness.
        let now = self.clock.now();
        for (link, slot) in &self.links {
            if let Slot::Open { queue, .. } = slot {
                let heard = queue.heard.load(Ordering::Relaxed);
                if heard > 0 {
                    let at = socp_core::time::Instant::from_micros(heard);
                    self.server.handle_heard(now, *link, at);
                }
            }
        }
        self.server.handle_timeout(self.clock.now());
    }

    /// Graceful shutdown: goodbyes and close frames out, bounded wait.
    async fn shutdown(&mut self, conn_rx: &Receiver<(u64, ConnEvent)>) {
        tracing::info!(server_id = self.server.id(), "server shutting down");
        self.server.shutdown(self.clock.now());
        self.drain();
        // Dials in progress are cancelled; open links close.
        self.links
            .retain(|_, slot| matches!(slot, Slot::Open { .. }));
        let deadline = Instant::now().checked_add(SHUTDOWN_GRACE);
        while !self.links.is_empty() {
            let Some((id, event)) = timeout_at(deadline, recv(conn_rx)).await else {
                tracing::warn!(
                    left = self.links.len(),
                    "shutdown: dropping connections that did not close in time"
                );
                break;
            };
            if matches!(event, ConnEvent::Closed) {
                self.on_conn_event(LinkId(id), event);
                self.drain();
            }
        }
    }

    /// Drains the core's frames, actions and events until all are empty.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(tx) = self.server.poll_transmit() {
                progressed = true;
                self.transmit(tx);
            }
            while let Some(action) = self.server.poll_action() {
                progressed = true;
                self.act(action);
            }
            while let Some(event) = self.server.poll_event() {
                progressed = true;
                log_event(&event);
                let _ = self.events.try_broadcast(event);
            }
            if !progressed {
                break;
            }
        }
        let id = self.server.id();
        let mut current = self
            .server_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *current != id {
            id.clone_into(&mut current);
        }
    }

    fn transmit(&mut self, tx: Transmit) {
        let link = tx.link;
        let full = match self.links.get(&link) {
            Some(Slot::Open { queue, .. }) => {
                queue.push_frame(tx.frame, true) == Err(QueueError::Full)
            }
            Some(Slot::Dialing(_)) | None => {
                tracing::trace!(link = link.0, "frame for a link that is not open: dropped");
                false
            }
        };
        if full {
            self.slow_reader(link);
        }
    }

    /// A link whose queue is full: dropped at once (its task cancelled), and
    /// the core told.
    fn slow_reader(&mut self, link: LinkId) {
        if let Some(Slot::Open { .. }) = self.links.remove(&link) {
            tracing::warn!(
                link = link.0,
                "slow reader: outgoing queue full, disconnecting"
            );
            self.server.handle_closed(self.clock.now(), link);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Dial { link, host, port } => self.dial(link, &host, port),
            Action::Close { link, code, reason } => match self.links.get(&link) {
                Some(Slot::Open { queue, .. }) => {
                    tracing::debug!(link = link.0, code, %reason, "closing link");
                    if queue.push_close(code, reason) == Err(QueueError::Full) {
                        self.slow_reader(link);
                    }
                }
                Some(Slot::Dialing(_)) => {
                    self.links.remove(&link);
                    self.server.handle_closed(self.clock.now(), link);
                }
                None => self.server.handle_closed(self.clock.now(), link),
            },
            Action::Store(op) => self.send_store(StoreReq::Write(op)),
            Action::Load(request) => self.send_store(StoreReq::Load(request)),
            other => tracing::debug!(action = ?other, "unknown action ignored"),
        }
    }

    fn dial(&mut self, link: LinkId, host: &str, port: u16) {
        if self.stopping {
            return;
        }
        let url = if host.contains(':') {
            format!("ws://[{host}]:{port}/")
        } else {
            format!("ws://{host}:{port}/")
        };
        tracing::debug!(link = link.0, %url, "dialing");
        let limits = self.limits.clone();
        let new_tx = self.new_tx.clone();
        let task = crate::executor::spawn(async move {
            let result = conn::dial(&url, &limits).await.map(Box::new);
            let _ = new_tx.send(NewConn::Dialed { link, result }).await;
        });
        self.links.insert(link, Slot::Dialing(task));
    }

    fn send_store(&mut self, req: StoreReq) {
        let sent = self
            .store_tx
            .as_ref()
            .is_some_and(|tx| tx.send(req).is_ok());
        if !sent {
            tracing::error!("the store thread is gone: a store request was lost");
        }
    }

    fn on_new_conn(&mut self, new: NewConn) {
        let now = self.clock.now();
        match new {
            NewConn::Inbound { remote, ws, permit } => {
                let link = self.server.handle_connected(
                    now,
                    Connection::Inbound {
                        remote: remote.to_string(),
                    },
                );
                tracing::debug!(link = link.0, %remote, "connection accepted");
                self.open(link, *ws, Some(permit));
            }
            NewConn::Dialed { link, result } => {
                if !matches!(self.links.get(&link), Some(Slot::Dialing(_))) {
                    return; // Closed meanwhile.
                }
                match result {
                    Ok(ws) => {
                        tracing::debug!(link = link.0, "dialed");
                        self.open(link, *ws, None);
                        let _ = self.server.handle_connected(now, Connection::Dialed(link));
                    }
                    Err(e) => {
                        tracing::info!(link = link.0, error = %e, "dial failed");
                        self.links.remove(&link);
                        self.server.handle_closed(now, link);
                    }
                }
            }
        }
    }

    fn open(&mut self, link: LinkId, ws: Socket, permit: Option<SemaphoreGuardArc>) {
        let (queue, task) = conn::conn_pair(
            link.0,
            self.conn_tx.clone(),
            self.budget.clone(),
            &self.limits,
            self.clock,
        );
        let task = crate::executor::spawn(async move {
            let _permit = permit;
            conn::run_conn(ws, task).await;
        });
        self.links.insert(link, Slot::Open { queue, task });
    }

    fn on_conn_event(&mut self, link: LinkId, event: ConnEvent) {
        let now = self.clock.now();
        match event {
            ConnEvent::Frame(frame, _permit) => {
                if self.links.contains_key(&link) {
                    self.server.handle_frame(now, link, &frame);
                }
            }
            ConnEvent::Binary => {
                if self.links.contains_key(&link) {
                    self.server.handle_binary(now, link);
                }
            }
            ConnEvent::Closed => {
                if self.links.remove(&link).is_some() {
                    tracing::debug!(link = link.0, "connection closed");
                    self.server.handle_closed(now, link);
                }
            }
        }
    }
}

/// Logs a core event at a level that suits it (refusals at debug: a hostile
/// peer must not be able to flood the logs).
fn log_event(event: &Event) {
    match event {
        Event::Joined {
            server_id,
            introducer,
        } => tracing::info!(%server_id, %introducer, "joined the network"),
        Event::BootstrapFailed => {
            tracing::warn!("no introducer reachable; serving standalone and retrying");
        }
        Event::ServerLinked { server_id } => tracing::info!(%server_id, "server linked"),
        Event::ServerLost { server_id, reason } => {
            tracing::info!(%server_id, %reason, "server lost");
        }
        Event::UserOnline { user_id, location } => {
            tracing::info!(%user_id, ?location, "user online");
        }
        Event::UserOffline { user_id } => tracing::info!(%user_id, "user offline"),
        Event::Rejected { link, code, detail } => {
            tracing::debug!(link = link.0, %code, %detail, "frame rejected");
        }
        Event::Duplicate { link } => tracing::trace!(link = link.0, "duplicate dropped"),
        other => tracing::debug!(event = ?other, "server event"),
    }
}
