//! The `socp` command-line tool: server, introducer, client, keygen, demo.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use socp_apps::config::{self, ConfigError, FileConfig};
use socp_apps::logging::{self, LogFormat};
use socp_apps::node::{self, KeySource, NodeOptions};
use socp_apps::render::Mode;
use socp_apps::repl::{self, ClientCli};
use socp_apps::runtime::Runtime;
use socp_core::server::BootstrapEntry;

/// socp: a federated, end-to-end encrypted chat network speaking SOCP v1.3.
#[derive(Parser, Debug)]
#[command(name = "socp", version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Log level or filter (e.g. `debug`, `socp_tokio=trace`); default from
    /// RUST_LOG, else `info` (`warn` for the client and the demo).
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a chat server (it also answers joins, like an introducer).
    Server(ServerArgs),
    /// Run an introducer: a server that new servers join through.
    Introducer(ServerArgs),
    /// Interactive client: /register, /login, /list, /tell, /all, /file, /quit.
    Client(ClientArgs),
    /// Make an RSA-4096 key and print its public key in the wire encoding.
    Keygen(KeygenArgs),
    /// A whole network in one process: introducer, two servers, three users, and the story.
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
struct DemoArgs {
    /// The async runtime every node and client of the demo runs on.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
}

#[derive(Args, Debug)]
struct ServerArgs {
    /// Where to listen: ws://HOST:PORT (env HOST and PORT also work).
    #[arg(long)]
    bind: Option<String>,
    /// `auto` (the introducer assigns one) or a UUIDv4.
    #[arg(long)]
    server_id: Option<String>,
    /// A server or introducer to join through (repeatable): ws://HOST:PORT.
    #[arg(long = "peer")]
    peers: Vec<String>,
    /// Introducer list (the seed's introducers.json; .toml and .yaml too). Env INTRODUCERS_JSON.
    #[arg(long)]
    introducers: Option<PathBuf>,
    /// SQLite database (env DB_PATH); default in the data directory. `:memory:` keeps nothing.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Data directory for the key and the default database (env SOCP_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// TOML config file (bind, server_id, peers, introducers, db, data_dir,
    /// heartbeat_interval, timeout_threshold).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds between heartbeats (env HEARTBEAT_INTERVAL; default 15).
    #[arg(long)]
    heartbeat_interval: Option<String>,
    /// Seconds of silence before a server link is dead (env TIMEOUT_THRESHOLD; default 45).
    #[arg(long)]
    timeout_threshold: Option<String>,
    /// The async runtime that drives the server: its sockets, timers, state
    /// machine and store.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
}

#[derive(Args, Debug)]
struct ClientArgs {
    /// The server: ws://HOST:PORT.
    #[arg(long, default_value = "ws://127.0.0.1:8765")]
    server: String,
    /// One JSON event per line on stdout, for programs and tests.
    #[arg(long)]
    json: bool,
    /// Where received files are saved (default: ./downloads).
    #[arg(long, default_value = "downloads")]
    downloads: PathBuf,
    /// Largest file /file sends, in bytes.
    #[arg(long, default_value_t = socp_core::client::DEFAULT_MAX_FILE_SIZE)]
    max_file: u64,
    /// The async runtime that drives the client's connection and timers.
    #[arg(long, value_enum, default_value_t = Runtime::Tokio)]
    runtime: Runtime,
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Also write the private key (PKCS#8 PEM, mode 0600) here; it must not exist.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = matches!(
        cli.command,
        Command::Client(_) | Command::Demo(_) | Command::Keygen(_)
    );
    logging::init(
        cli.log_format,
        cli.log_level.as_deref(),
        if quiet { "warn" } else { "info" },
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("socp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => serve(args, false).await,
            Command::Introducer(args) => serve(args, true).await,
            Command::Client(args) => client(args).await,
            Command::Keygen(args) => keygen(args).await,
            Command::Demo(args) => demo(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("socp: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Flags, then environment, then config file, then defaults.
fn node_options(args: ServerArgs, introducer: bool) -> Result<NodeOptions, ConfigError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let (host, port) = match args.bind.clone().or_else(|| file.bind.clone()) {
        Some(url) => config::parse_ws_url(&url)?,
        None => {
            let host = env("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
            let port = match env("PORT") {
                Some(p) => p.parse().map_err(|_| ConfigError::Value {
                    what: "PORT".into(),
                    detail: format!("{p:?} is not a port number"),
                })?,
                None if introducer => 8000,
                None => 8765,
            };
            (host, port)
        }
    };
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(config::default_data_dir);
    let mut opts = NodeOptions::new(&host, port, &data_dir);
    opts.runtime = args.runtime;
    if port != 0 {
        opts.key = KeySource::File(data_dir.join(format!("server-{port}.key.pem")));
    } else {
        opts.key = KeySource::File(data_dir.join("server.key.pem"));
    }
    let db = args
        .db
        .clone()
        .or_else(|| env("DB_PATH").map(PathBuf::from))
        .or_else(|| file.db.clone());
    opts.db = match db {
        Some(p) if p.as_os_str() == ":memory:" => None,
        Some(p) => Some(p),
        None => Some(data_dir.join(format!("server-{port}.db"))),
    };
    opts.server_id = args
        .server_id
        .clone()
        .or_else(|| file.server_id.clone())
        .filter(|id| id != "auto");
    if let Some(id) = &opts.server_id
        && !socp_core::wire::is_uuid_v4(id)
    {
        return Err(ConfigError::Value {
            what: "--server-id".into(),
            detail: format!("{id:?} is not `auto` or a UUIDv4"),
        });
    }
    // Bootstrap: --peer, then the introducer list, then the seed's env fallback.
    let mut bootstrap: Vec<BootstrapEntry> = Vec::new();
    let peers = if args.peers.is_empty() {
        file.peers.clone()
    } else {
        args.peers.clone()
    };
    for peer in &peers {
        let (host, port) = config::parse_ws_url(peer)?;
        bootstrap.push(BootstrapEntry {
            host,
            port,
            pubkey: None,
        });
    }
    let list = args
        .introducers
        .clone()
        .or_else(|| env("INTRODUCERS_JSON").map(PathBuf::from))
        .or_else(|| file.introducers.clone());
    if let Some(path) = list {
        match config::load_introducers(&path) {
            Ok(entries) => bootstrap.extend(entries),
            Err(e) if args.introducers.is_none() => {
                tracing::warn!(error = %e, "introducer list unreadable; trying BOOTSTRAP_* variables");
                bootstrap.extend(config::bootstrap_from_env(&env));
            }
            Err(e) => return Err(e),
        }
    } else {
        bootstrap.extend(config::bootstrap_from_env(&env));
    }
    // Never join through ourselves (an introducer reading the shared list).
    bootstrap.retain(|e| !(e.port == port && same_host(&e.host, &host)));
    opts.bootstrap = bootstrap;
    if let Some(v) = args
        .heartbeat_interval
        .clone()
        .or_else(|| env("HEARTBEAT_INTERVAL"))
        .or_else(|| file.heartbeat_interval.map(|s| s.to_string()))
    {
        opts.heartbeat = config::seconds("heartbeat interval", &v)?;
    }
    if let Some(v) = args
        .timeout_threshold
        .clone()
        .or_else(|| env("TIMEOUT_THRESHOLD"))
        .or_else(|| file.timeout_threshold.map(|s| s.to_string()))
    {
        opts.dead_timeout = config::seconds("timeout threshold", &v)?;
    }
    Ok(opts)
}

fn same_host(a: &str, b: &str) -> bool {
    let local = |h: &str| matches!(h, "127.0.0.1" | "localhost" | "0.0.0.0" | "::1" | "::");
    a == b || (local(a) && local(b))
}

async fn serve(args: ServerArgs, introducer: bool) -> Result<ExitCode, String> {
    let opts = node_options(args, introducer).map_err(|e| e.to_string())?;
    let role = if introducer { "introducer" } else { "server" };
    let joins = opts.bootstrap.len();
    let node = node::start(opts).await.map_err(|e| e.to_string())?;
    println!(
        "socp {role} listening on {} (id {}), joining through {joins} introducer(s)",
        node.url,
        node.handle.server_id()
    );
    println!("public key: {}", node.pubkey);
    wait_for_signal().await;
    println!("shutting down");
    tokio::time::timeout(Duration::from_secs(5), node.handle.shutdown())
        .await
        .map_err(|_| "shutdown took longer than 5 s".to_owned())?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn client(args: ClientArgs) -> Result<ExitCode, String> {
    config::parse_ws_url(&args.server).map_err(|e| e.to_string())?;
    repl::run(ClientCli {
        server: args.server,
        mode: if args.json { Mode::Json } else { Mode::Human },
        download_dir: args.downloads,
        max_file: args.max_file,
        runtime: args.runtime,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

async fn keygen(args: KeygenArgs) -> Result<ExitCode, String> {
    let key = tokio::task::spawn_blocking(socp_apps::keyfile::generate)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(path) = &args.out {
        if path.exists() {
            return Err(format!("{} exists; not overwriting it", path.display()));
        }
        let pem = key.to_pkcs8_pem();
        socp_apps::keyfile::write_new_private(path, pem.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("private key written to {}", path.display());
    }
    println!("{}", key.public().to_wire());
    Ok(ExitCode::SUCCESS)
}

async fn demo(args: DemoArgs) -> Result<ExitCode, String> {
    let summary = socp_apps::demo::run(args.runtime).await?;
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
