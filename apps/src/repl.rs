//! `socp client`: an interactive client with the seed's commands.
//!
//! ```text
//! /register [username]     make keys, create the account (asks a password)
//! /login <user_id|name>    log in with a password (fetches your sealed keys)
//! /guest                   plain SOCP USER_HELLO with a fresh key (no account)
//! /list                    online users
//! /tell <user_id> <text>   end-to-end encrypted DM
//! /all <text>              public channel message
//! /file <user_id|public> <path>
//! /accept <user_id>        accept a changed key (after checking it out of band)
//! /whoami, /sleep <secs>, /help, /quit
//! ```
//!
//! Input is read one line at a time; a password is read without echo when
//! stdin is a terminal, else as the next line (for scripts). When input ends,
//! the client waits (up to [`DRAIN_TIMEOUT`]) until what it sent is
//! acknowledged, then closes.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socp_core::client::{AuthMode, Client, ClientConfig, ClientEvent, FileTarget, UserIdentity};
use socp_core::crypto::KeystoreParams;
use socp_tokio::{ClientOptions, ClientUpdate};

use crate::runtime::{ClientHandle, Clock, Runtime, login_with_password, spawn_client};
use tokio::sync::oneshot;

use crate::render::{self, Mode};

/// How long the client waits, when input ends, for its messages to be
/// acknowledged.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How `socp client` runs.
#[derive(Debug, Clone)]
pub struct ClientCli {
    /// The server's URL.
    pub server: String,
    /// Output format.
    pub mode: Mode,
    /// Where received files go.
    pub download_dir: PathBuf,
    /// Largest file `/file` sends.
    pub max_file: u64,
    /// The adapter that runs the client.
    pub runtime: Runtime,
}

/// What the line reader reads next.
enum Want {
    Line,
    Secret(String),
}

/// A thread reading stdin one line per request, so a password can be read
/// without echo between two command lines.
struct Lines {
    ask: std::sync::mpsc::Sender<(Want, oneshot::Sender<Option<String>>)>,
}

impl Lines {
    fn spawn() -> Self {
        let (ask, asks) = std::sync::mpsc::channel::<(Want, oneshot::Sender<Option<String>>)>();
        let tty = std::io::stdin().is_terminal();
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            while let Ok((want, reply)) = asks.recv() {
                let line = match want {
                    Want::Secret(prompt) if tty => rpassword::prompt_password(prompt).ok(),
                    _ => {
                        let mut line = String::new();
                        match stdin.lock().read_line(&mut line) {
                            Ok(0) | Err(_) => None,
                            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
                        }
                    }
                };
                if reply.send(line).is_err() {
                    break;
                }
            }
        });
        Self { ask }
    }

    fn request(&self, want: Want) -> oneshot::Receiver<Option<String>> {
        let (tx, rx) = oneshot::channel();
        let _ = self.ask.send((want, tx));
        rx
    }
}

struct Session {
    cli: ClientCli,
    clock: Clock,
    handle: Option<ClientHandle>,
    out: Out,
}

struct Out {
    mode: Mode,
    tty: bool,
}

impl Out {
    fn info(&self, json: serde_json::Value, text: &str) {
        match self.mode {
            Mode::Json => println!("{json}"),
            Mode::Human => println!("{text}"),
        }
    }

    fn error(&self, detail: &str) {
        self.info(
            serde_json::json!({"event": "command_error", "detail": detail}),
            &format!("error: {detail}"),
        );
    }

    fn update(&self, update: &ClientUpdate) {
        match self.mode {
            Mode::Json => {
                if let Some(v) = render::update_json(update) {
                    println!("{v}");
                }
            }
            Mode::Human => {
                let progress = matches!(
                    update,
                    ClientUpdate::Event(ClientEvent::FileProgress { .. })
                );
                if let Some(line) = render::update_text(update, &|u| u.to_owned()) {
                    if progress && self.tty {
                        print!("\r{line}");
                        let _ = std::io::stdout().flush();
                    } else if !progress {
                        println!("{line}");
                    }
                }
            }
        }
    }
}

/// Runs the client until `/quit` or the end of input.
///
/// # Errors
/// Only for a setup failure (the download folder); command errors are shown
/// and the client keeps going.
pub async fn run(cli: ClientCli) -> Result<(), String> {
    std::fs::create_dir_all(&cli.download_dir).map_err(|e| {
        format!(
            "cannot create the download folder {}: {e}",
            cli.download_dir.display()
        )
    })?;
    let out = Out {
        mode: cli.mode,
        tty: std::io::stdout().is_terminal(),
    };
    if cli.mode == Mode::Human {
        println!("socp client for {}. /help lists the commands.", cli.server);
    }
    let clock = cli.runtime.clock();
    let mut session = Session {
        cli,
        clock,
        handle: None,
        out,
    };
    let lines = Lines::spawn();
    let mut pending = lines.request(Want::Line);
    loop {
        tokio::select! {
            line = &mut pending => {
                let Ok(Some(line)) = line else {
                    session.drain().await;
                    break;
                };
                if !session.command(line.trim(), &lines).await {
                    break;
                }
                pending = lines.request(Want::Line);
            }
            update = next_update(session.handle.as_mut()) => session.on_update(update),
        }
    }
    if let Some(handle) = session.handle.take() {
        handle.close().await;
    }
    Ok(())
}

async fn next_update(handle: Option<&mut ClientHandle>) -> Option<ClientUpdate> {
    match handle {
        Some(h) => h.next().await,
        None => std::future::pending().await,
    }
}

impl Session {
    fn on_update(&mut self, update: Option<ClientUpdate>) {
        match update {
            Some(update) => {
                self.out.update(&update);
                if matches!(update, ClientUpdate::Stopped) {
                    self.handle = None;
                }
            }
            None => self.handle = None,
        }
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig::new(vec![self.cli.server.clone()])
    }

    fn options(&self) -> ClientOptions {
        ClientOptions::new(self.cli.download_dir.clone())
    }

    /// Waits until nothing is left to send or acknowledge (input ended).
    async fn drain(&mut self) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while let Some(handle) = self.handle.as_mut() {
            let busy = handle
                .with(|c, _| c.pending_outgoing() + c.unacknowledged())
                .await
                .unwrap_or(0);
            if busy == 0 {
                break;
            }
            match tokio::time::timeout_at(deadline, handle.next()).await {
                Ok(update) => self.on_update(update),
                Err(_) => break,
            }
        }
        // Let the last frames (and late answers) arrive.
        let settle = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Some(handle) = self.handle.as_mut() {
            match tokio::time::timeout_at(settle, handle.next()).await {
                Ok(update) => self.on_update(update),
                Err(_) => break,
            }
        }
    }

    async fn ask_password(&self, lines: &Lines, prompt: &str) -> Option<String> {
        if self.out.mode == Mode::Human && !std::io::stdin().is_terminal() {
            println!("{prompt}");
        }
        lines
            .request(Want::Secret(prompt.to_owned()))
            .await
            .ok()
            .flatten()
    }

    /// Runs one command line; `false` to quit.
    async fn command(&mut self, line: &str, lines: &Lines) -> bool {
        if line.is_empty() {
            return true;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match cmd {
            "/quit" | "/exit" => return false,
            "/help" => self.out.info(
                serde_json::json!({"event": "help"}),
                "/register [username] | /login <user_id|username> | /guest | /list | /tell <user_id> <text> | /all <text> | /file <user_id|public> <path> | /accept <user_id> | /whoami | /sleep <secs> | /quit",
            ),
            "/register" => self.register(rest, lines).await,
            "/login" => self.login(rest, lines).await,
            "/guest" => self.guest().await,
            "/sleep" => {
                let secs = rest.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0 && *s <= 3600.0);
                match secs {
                    Some(secs) => self.sleep(Duration::from_secs_f64(secs)).await,
                    None => self.out.error("usage: /sleep <seconds>"),
                }
            }
            "/whoami" => match &self.handle {
                Some(h) => {
                    let id = h.user_id().to_owned();
                    self.out.info(serde_json::json!({"event": "whoami", "user_id": id}), &format!("you are {id}"));
                }
                None => self.out.error("not logged in: /register, /login or /guest first"),
            },
            "/list" => {
                if self.with(|c, now| c.request_list(now)).await.is_none() {
                    return true;
                }
            }
            "/tell" | "/msg" => {
                let Some((to, text)) = rest.split_once(' ') else {
                    self.out.error("usage: /tell <user_id> <text>");
                    return true;
                };
                let (to, text) = (to.to_owned(), text.trim().to_owned());
                if text.is_empty() {
                    self.out.error("usage: /tell <user_id> <text>");
                    return true;
                }
                self.with(move |c, now| {
                    c.send_direct(now, &to, &text);
                })
                .await;
            }
            "/all" => {
                if rest.is_empty() {
                    self.out.error("usage: /all <text>");
                    return true;
                }
                let text = rest.to_owned();
                self.with(move |c, now| {
                    c.send_public(now, &text);
                })
                .await;
            }
            "/file" => self.file(rest).await,
            "/accept" => {
                let user = rest.to_owned();
                let shown = user.clone();
                match self.with(move |c, now| c.accept_key(now, &user)).await {
                    Some(true) => self.out.info(serde_json::json!({"event": "key_accepted", "user_id": shown}), &format!("[key of {shown} accepted]")),
                    Some(false) => self.out.error(&format!("no changed key is waiting for {shown}")),
                    None => {}
                }
            }
            other => self.out.error(&format!("unknown command {other}; /help lists them")),
        }
        true
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client, socp_core::time::Now) -> R + Send + 'static,
    ) -> Option<R> {
        let Some(handle) = &self.handle else {
            self.out
                .error("not logged in: /register, /login or /guest first");
            return None;
        };
        let result = handle.with(f).await;
        if result.is_none() {
            self.out.error("the client has stopped");
        }
        result
    }

    async fn sleep(&mut self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        loop {
            let Some(handle) = self.handle.as_mut() else {
                tokio::time::sleep_until(until).await;
                return;
            };
            match tokio::time::timeout_at(until, handle.next()).await {
                Ok(update) => self.on_update(update),
                Err(_) => return,
            }
        }
    }

    async fn replace(&mut self, handle: ClientHandle) {
        if let Some(old) = self.handle.replace(handle) {
            old.close().await;
        }
    }

    async fn register(&mut self, username: &str, lines: &Lines) {
        let username = (!username.is_empty()).then(|| username.to_owned());
        let Some(password) = self.ask_password(lines, "Choose a password: ").await else {
            return self.out.error("no password given");
        };
        if password.len() < 8 {
            return self.out.error("a password has at least 8 characters");
        }
        self.out.info(
            serde_json::json!({"event": "generating_keys"}),
            "[generating your RSA-4096 keys...]",
        );
        let made =
            tokio::task::spawn_blocking(move || -> Result<(UserIdentity, AuthMode), String> {
                let identity = new_identity()?;
                let mut rng = socp_core::crypto::rng_from_seed(socp_tokio::random_seed());
                let auth = AuthMode::register(
                    &identity,
                    password.as_bytes(),
                    username.as_deref(),
                    &KeystoreParams::default(),
                    &mut rng,
                )
                .map_err(|e| e.to_string())?;
                Ok((identity, auth))
            })
            .await;
        let (identity, auth) = match made {
            Ok(Ok(made)) => made,
            Ok(Err(e)) => return self.out.error(&e),
            Err(e) => return self.out.error(&e.to_string()),
        };
        let client = Client::with_auth(
            self.client_config(),
            identity,
            auth,
            socp_tokio::random_seed(),
            self.clock.now(),
        );
        let handle = spawn_client(client, self.options(), self.clock);
        self.replace(handle).await;
        self.wait_session().await;
    }

    async fn login(&mut self, who: &str, lines: &Lines) {
        if who.is_empty() {
            return self.out.error("usage: /login <user_id|username>");
        }
        let Some(password) = self.ask_password(lines, "Password: ").await else {
            return self.out.error("no password given");
        };
        let result = login_with_password(
            &self.cli.server,
            who,
            password.as_bytes(),
            self.client_config(),
            self.options(),
            self.clock,
        )
        .await;
        match result {
            Ok(handle) => {
                self.replace(handle).await;
                self.wait_session().await;
            }
            Err(e) => self.out.info(
                serde_json::json!({"event": "login_failed", "detail": e.to_string(), "code": login_code(&e)}),
                &format!("[LOGIN FAILED] {e}"),
            ),
        }
    }

    async fn guest(&mut self) {
        let made = tokio::task::spawn_blocking(new_identity).await;
        let identity = match made {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => return self.out.error(&e),
            Err(e) => return self.out.error(&e.to_string()),
        };
        let client = Client::new(
            self.client_config(),
            identity,
            socp_tokio::random_seed(),
            self.clock.now(),
        );
        let handle = spawn_client(client, self.options(), self.clock);
        self.replace(handle).await;
        self.wait_session().await;
    }

    /// Shows updates until the new session is up (or refused), so the next
    /// command line sees a ready client.
    async fn wait_session(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Some(handle) = self.handle.as_mut() {
            let Ok(update) = tokio::time::timeout_at(deadline, handle.next()).await else {
                return self.out.error("the server did not answer within 30 s");
            };
            let done = matches!(
                update,
                Some(ClientUpdate::Event(
                    ClientEvent::Connected { .. } | ClientEvent::LoginFailed { .. }
                )) | Some(ClientUpdate::Stopped)
                    | None
            );
            self.on_update(update);
            if done {
                return;
            }
        }
    }

    async fn file(&mut self, rest: &str) {
        let Some((to, path)) = rest.split_once(' ') else {
            return self.out.error("usage: /file <user_id|public> <path>");
        };
        let path = PathBuf::from(path.trim());
        let meta = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m,
            Ok(_) => return self.out.error(&format!("{} is not a file", path.display())),
            Err(e) => return self.out.error(&format!("{}: {e}", path.display())),
        };
        if meta.len() > self.cli.max_file {
            return self.out.error(&format!(
                "{} is {} bytes; the limit is {}",
                path.display(),
                meta.len(),
                self.cli.max_file
            ));
        }
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) => return self.out.error(&format!("{}: {e}", path.display())),
        };
        let name = file_name(&path);
        let target = if to == "public" {
            FileTarget::Public
        } else {
            FileTarget::User(to.to_owned())
        };
        self.with(move |c, now| {
            c.send_file(now, target, &name, bytes);
        })
        .await;
    }
}

/// A fresh identity: an RSA-4096 key (about a second) and a random user id.
fn new_identity() -> Result<UserIdentity, String> {
    let key = crate::keyfile::generate().map_err(|e| e.to_string())?;
    let mut rng = socp_core::crypto::rng_from_seed(socp_tokio::random_seed());
    Ok(UserIdentity::with_random_id(key, &mut rng))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned())
}

fn login_code(e: &socp_tokio::LoginError) -> String {
    match e {
        socp_tokio::LoginError::Refused { code, .. } => code.as_str().to_owned(),
        socp_tokio::LoginError::Keystore(_) => "KEYSTORE".to_owned(),
        socp_tokio::LoginError::Timeout => "TIMEOUT".to_owned(),
        _ => "CONNECT".to_owned(),
    }
}
