//! The client driver: one task owns the [`Client`]; its WebSocket runs on a
//! task of its own; received files are written on smol's blocking pool.
//!
//! Updates for the app ([`ClientUpdate`]) go through a bounded channel
//! ([`UPDATE_CAPACITY`]). When the app does not keep up, the driver keeps
//! what it could not hand over in a backlog and **stops reading from the
//! server and firing timers** until the app has caught up: memory does not
//! grow with what the network sends (the server sees a slow reader and may
//! drop the link), while commands from the app ([`ClientHandle::with`]) are
//! still served, so an app that sends many messages before it reads any
//! updates does not deadlock.

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;
use smol::channel::{Receiver, Sender, TrySendError};
use smol::{Task, future};
use socp_core::client::{Client, ClientAction, ClientEvent, FileId};
use socp_core::time::Now;

use crate::conn::{self, Budget, ConnEvent, Out, OutQueue, QueueError, Socket};
use crate::{ClientOptions, ClientUpdate, Clock, Deadline, UPDATE_CAPACITY, files, recv};

/// Capacity of the command channel from the app.
const COMMANDS: usize = 64;

/// A closure run on the client inside the driver.
type ClientFn = Box<dyn FnOnce(&mut Client, Now) + Send>;

/// A command for the driver.
enum Cmd {
    With(ClientFn),
    Close,
}

/// A running client (see [`spawn_client`]). Dropping the handle closes the
/// client.
pub struct ClientHandle {
    user_id: String,
    cmds: Sender<Cmd>,
    pub(crate) updates: Receiver<ClientUpdate>,
    /// Updates already taken off the channel (by `login_with_password`),
    /// handed out first.
    pub(crate) replay: VecDeque<ClientUpdate>,
}

impl core::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHandle")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl ClientHandle {
    /// The next update; `None` once the driver has ended (after
    /// [`ClientUpdate::Stopped`]).
    pub async fn next(&mut self) -> Option<ClientUpdate> {
        if let Some(update) = self.replay.pop_front() {
            return Some(update);
        }
        self.updates.recv().await.ok()
    }

    /// Runs `f` on the client inside the driver with the current time, then
    /// drains its queues (frames out, actions, events); returns `f`'s result,
    /// or `None` if the driver is gone. For example
    /// `handle.with(|c, now| c.send_direct(now, &to, &text)).await`.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, Now) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = smol::channel::bounded(1);
        let cmd = Cmd::With(Box::new(move |client: &mut Client, now: Now| {
            let _ = tx.try_send(f(client, now));
        }));
        self.cmds.send(cmd).await.ok()?;
        rx.recv().await.ok()
    }

    /// Our user id.
    #[must_use]
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Closes the client for good: `CTRL_CLOSE`, what is queued flushed, close
    /// frame 1000; returns once the driver has ended. Updates not read yet are
    /// discarded.
    pub async fn close(self) {
        let _ = self.cmds.send(Cmd::Close).await;
        while self.updates.recv().await.is_ok() {}
    }
}

/// Runs `client`: connects where it asks (`ws://` URLs; `wss://` fails the
/// dial), closes when it asks, and writes the files it received **only inside
/// `opts.download_dir`**, never over an existing file (`name (1).ext`, ...).
///
/// The driver runs on smol's global executor: no runtime is needed to call
/// this, and the handle works from any executor.
pub fn spawn_client(client: Client, opts: ClientOptions, clock: Clock) -> ClientHandle {
    let (cmd_tx, cmd_rx) = smol::channel::bounded(COMMANDS);
    let (update_tx, update_rx) = smol::channel::bounded(UPDATE_CAPACITY);
    let (conn_tx, conn_rx) = smol::channel::bounded(256);
    let (new_tx, new_rx) = smol::channel::bounded(4);
    let (written_tx, written_rx) = smol::channel::unbounded();
    let user_id = client.user_id().to_owned();
    let driver = Driver {
        client,
        clock,
        opts,
        updates: update_tx,
        backlog: VecDeque::new(),
        conn_tx,
        budget: Budget::new(conn::INBOUND_BUDGET),
        new_tx,
        written_tx,
        next_id: 1,
        link: Link::None,
        pending_out: VecDeque::new(),
        writes: 0,
        stopped: false,
        app_gone: false,
    };
    crate::executor::spawn(driver.run(cmd_rx, conn_rx, new_rx, written_rx)).detach();
    ClientHandle {
        user_id,
        cmds: cmd_tx,
        updates: update_rx,
        replay: VecDeque::new(),
    }
}

/// The one link, as the driver knows it. Dropping a task cancels it.
enum Link {
    None,
    Connecting {
        id: u64,
        _task: Task<()>,
    },
    Open {
        id: u64,
        queue: OutQueue,
        _task: Task<()>,
    },
}

/// A dial's outcome, tagged with the link's id.
type Dialed = (u64, Result<Box<Socket>, String>);
/// A file write's outcome.
type Written = (FileId, Result<PathBuf, String>);

struct Driver {
    client: Client,
    clock: Clock,
    opts: ClientOptions,
    updates: Sender<ClientUpdate>,
    /// Updates the app has not taken yet (see the module docs).
    backlog: VecDeque<ClientUpdate>,
    conn_tx: Sender<(u64, ConnEvent)>,
    /// Bytes of received frames waiting for this driver.
    budget: Budget,
    new_tx: Sender<Dialed>,
    written_tx: Sender<Written>,
    next_id: u64,
    link: Link,
    /// Frames (and a close) waiting for room in the link's queue.
    pending_out: VecDeque<Out>,
    /// File writes under way.
    writes: usize,
    /// The core client is closed for good (it asked for a close, or the app did).
    stopped: bool,
    /// The handle is gone: nobody reads updates.
    app_gone: bool,
}

/// What woke the driver.
enum Wake {
    Cmd(Option<Cmd>),
    Timeout,
    Connected(Dialed),
    Written(Written),
    /// The app took the oldest backlog update (`false`: the app is gone).
    Delivered(bool),
    /// The link's queue took the oldest pending frame (`false`: it is gone).
    Queued(bool),
    Conn(u64, ConnEvent),
}

impl Driver {
    async fn run(
        mut self,
        cmds: Receiver<Cmd>,
        conn_rx: Receiver<(u64, ConnEvent)>,
        new_rx: Receiver<Dialed>,
        written_rx: Receiver<Written>,
    ) {
        let mut deadline = Deadline::new();
        loop {
            self.drain();
            self.push_updates();
            self.push_out();
            if self.stopped && matches!(self.link, Link::None) && self.writes == 0 {
                break;
            }
            // While the app lags behind, the network and the timers wait.
            let caught_up = self.backlog.is_empty();
            deadline.set(
                self.client
                    .poll_timeout()
                    .filter(|_| caught_up)
                    .map(|t| self.clock.instant_to_deadline(t)),
            );
            let wake = {
                let cmd = async {
                    if self.app_gone {
                        future::pending().await
                    } else {
                        Wake::Cmd(cmds.recv().await.ok())
                    }
                };
                let timer = async {
                    deadline.wait().await;
                    Wake::Timeout
                };
                let connected = async { Wake::Connected(recv(&new_rx).await) };
                let written = async { Wake::Written(recv(&written_rx).await) };
                let deliver = async {
                    match self.backlog.front() {
                        Some(update) if !self.app_gone => {
                            Wake::Delivered(self.updates.send(update.clone()).await.is_ok())
                        }
                        _ => future::pending().await,
                    }
                };
                let queue = async {
                    match (&self.link, self.pending_out.front()) {
                        (Link::Open { queue, .. }, Some(out)) => {
                            Wake::Queued(queue.send(out.clone()).await)
                        }
                        // Nothing can be sent until a link is up.
                        _ => future::pending().await,
                    }
                };
                let conn = async {
                    if caught_up {
                        let (id, event) = recv(&conn_rx).await;
                        Wake::Conn(id, event)
                    } else {
                        future::pending().await
                    }
                };
                // Rarely ready branches first; the busy ones race fairly.
                future::or(
                    future::or(cmd, timer),
                    future::or(
                        future::or(connected, written),
                        future::race(future::race(deliver, queue), conn),
                    ),
                )
                .await
            };
            match wake {
                Wake::Cmd(Some(Cmd::With(f))) => f(&mut self.client, self.clock.now()),
                Wake::Cmd(Some(Cmd::Close)) => self.close(),
                Wake::Cmd(None) => {
                    self.app_gone = true;
                    self.backlog.clear();
                    self.close();
                }
                Wake::Timeout => self.client.handle_timeout(self.clock.now()),
                Wake::Connected((id, result)) => self.on_connected(id, result),
                Wake::Written(done) => self.on_written(done),
                Wake::Delivered(true) => {
                    self.backlog.pop_front();
                }
                Wake::Delivered(false) => self.app_gone(),
                Wake::Queued(true) => {
                    self.pending_out.pop_front();
                }
                // The link's task is gone; its Closed event follows.
                Wake::Queued(false) => self.pending_out.clear(),
                Wake::Conn(id, event) => self.on_conn_event(id, event),
            }
        }
        tracing::debug!(user_id = self.client.user_id(), "client stopped");
        if !self.app_gone {
            for update in self.backlog.drain(..) {
                if self.updates.send(update).await.is_err() {
                    break;
                }
            }
            let _ = self.updates.send(ClientUpdate::Stopped).await;
        }
    }

    /// The app (or its dropped handle) closes the client.
    fn close(&mut self) {
        let now = self.clock.now();
        self.client.close(now);
        self.stopped = true;
    }

    fn app_gone(&mut self) {
        self.app_gone = true;
        self.backlog.clear();
        if !self.stopped {
            self.close();
        }
    }

    /// Drains the core's frames, actions and events until all are empty.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(frame) = self.client.poll_transmit() {
                progressed = true;
                self.pending_out.push_back(Out::Frame(frame));
            }
            while let Some(action) = self.client.poll_action() {
                progressed = true;
                self.act(action);
            }
            while let Some(event) = self.client.poll_event() {
                progressed = true;
                log_event(self.client.user_id(), &event);
                if !self.app_gone {
                    self.backlog.push_back(ClientUpdate::Event(event));
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// Hands the backlog to the app as far as the channel has room.
    fn push_updates(&mut self) {
        while let Some(update) = self.backlog.pop_front() {
            match self.updates.try_send(update) {
                Ok(()) => {}
                Err(TrySendError::Full(update)) => {
                    self.backlog.push_front(update);
                    break;
                }
                Err(TrySendError::Closed(_)) => {
                    self.app_gone();
                    break;
                }
            }
        }
    }

    /// Moves pending frames into the link's queue as far as it has room.
    fn push_out(&mut self) {
        let Link::Open { queue, .. } = &self.link else {
            if matches!(self.link, Link::None) {
                self.pending_out.clear();
            }
            return;
        };
        while let Some(out) = self.pending_out.pop_front() {
            let result = match out {
                Out::Frame(frame) => queue
                    .push_frame(frame.clone(), false)
                    .map_err(|e| (e, Out::Frame(frame))),
                Out::Close { code, reason } => queue
                    .push_close(code, reason.clone())
                    .map_err(|e| (e, Out::Close { code, reason })),
            };
            match result {
                Ok(()) => {}
                Err((QueueError::Full, out)) => {
                    self.pending_out.push_front(out);
                    break;
                }
                Err((QueueError::Gone, _)) => {
                    self.pending_out.clear();
                    break;
                }
            }
        }
    }

    fn act(&mut self, action: ClientAction) {
        let now = self.clock.now();
        match action {
            ClientAction::Connect { index, url } => {
                self.drop_link();
                let id = self.next_id;
                self.next_id += 1;
                tracing::debug!(user_id = self.client.user_id(), index, %url, "connecting");
                let limits = self.opts.limits.clone();
                let new_tx = self.new_tx.clone();
                let task = crate::executor::spawn(async move {
                    let result = conn::dial(&url, &limits).await.map(Box::new);
                    let _ = new_tx.send((id, result)).await;
                });
                self.link = Link::Connecting { id, _task: task };
            }
            ClientAction::Close { code, reason } => {
                self.stopped = true;
                match &self.link {
                    Link::Open { .. } => self.pending_out.push_back(Out::Close { code, reason }),
                    Link::Connecting { .. } => {
                        self.drop_link();
                        self.client.handle_closed(now);
                    }
                    Link::None => {}
                }
            }
            ClientAction::WriteFile {
                file_id,
                name,
                bytes,
            } => self.write_file(file_id, name, bytes),
            other => tracing::debug!(action = ?other, "unknown client action ignored"),
        }
    }

    fn write_file(&mut self, file_id: FileId, name: String, bytes: Bytes) {
        let dir = self.opts.download_dir.clone();
        let done = self.written_tx.clone();
        self.writes += 1;
        smol::unblock(move || {
            // Always answer, so the driver's count of writes under way is right.
            let save = || files::save_file(&dir, &name, &bytes).map_err(|e| e.to_string());
            let saved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(save))
                .unwrap_or_else(|_| Err("the file writer panicked".into()));
            let _ = done.try_send((file_id, saved));
        })
        .detach();
    }

    fn on_written(&mut self, (file_id, saved): Written) {
        self.writes = self.writes.saturating_sub(1);
        let update = match saved {
            Ok(path) => {
                tracing::info!(%file_id, path = %path.display(), "file saved");
                ClientUpdate::FileSaved { file_id, path }
            }
            Err(error) => {
                tracing::warn!(%file_id, %error, "file not saved");
                ClientUpdate::FileSaveFailed { file_id, error }
            }
        };
        if !self.app_gone {
            self.backlog.push_back(update);
        }
    }

    /// Forgets the current link, cancelling its dial or its connection task.
    fn drop_link(&mut self) {
        self.link = Link::None;
        self.pending_out.clear();
    }

    fn on_connected(&mut self, id: u64, result: Result<Box<Socket>, String>) {
        if !matches!(self.link, Link::Connecting { id: current, .. } if current == id) {
            return;
        }
        let now = self.clock.now();
        match result {
            Ok(ws) => {
                let (queue, task) = conn::conn_pair(
                    id,
                    self.conn_tx.clone(),
                    self.budget.clone(),
                    &self.opts.limits,
                    self.clock,
                );
                let task = crate::executor::spawn(conn::run_conn(*ws, task));
                self.link = Link::Open {
                    id,
                    queue,
                    _task: task,
                };
                self.client.handle_connected(now);
            }
            Err(e) => {
                tracing::info!(user_id = self.client.user_id(), error = %e, "connect failed");
                self.link = Link::None;
                self.client.handle_closed(now);
            }
        }
    }

    fn on_conn_event(&mut self, id: u64, event: ConnEvent) {
        if !matches!(self.link, Link::Open { id: current, .. } if current == id) {
            return;
        }
        let now = self.clock.now();
        match event {
            ConnEvent::Frame(frame, _permit) => self.client.handle_frame(now, &frame),
            ConnEvent::Binary => tracing::debug!("binary frame from the server ignored"),
            ConnEvent::Closed => {
                self.link = Link::None;
                self.pending_out.clear();
                self.client.handle_closed(now);
            }
        }
    }
}

fn log_event(user_id: &str, event: &ClientEvent) {
    match event {
        ClientEvent::Connected { index } => tracing::info!(%user_id, index, "connected"),
        ClientEvent::Disconnected { retry_in } => {
            tracing::info!(%user_id, ?retry_in, "disconnected");
        }
        ClientEvent::LoginFailed { code, detail } => {
            tracing::warn!(%user_id, %code, %detail, "login failed");
        }
        ClientEvent::Error { code, detail } => {
            tracing::debug!(%user_id, %code, %detail, "error from the server");
        }
        other => tracing::trace!(%user_id, event = ?other, "client event"),
    }
}
