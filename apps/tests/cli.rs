//! The seed's run lines, as a newcomer would type them, against the real
//! `socp` binary: an introducer, two servers peering (one through the seed's
//! introducers.json, one with `--peer`), two clients in `--json` mode doing
//! /register, /list, /tell, /all, /file, and a third one doing /login.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(60);

fn socp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_socp"));
    cmd.kill_on_drop(true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_remove("RUST_LOG")
        .env_remove("HOST")
        .env_remove("PORT")
        .env_remove("INTRODUCERS_JSON")
        .env_remove("DB_PATH");
    cmd
}

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `socp <role> ...` and returns it with its URL (read from its first line).
async fn start_server(args: &[&str]) -> (Child, String) {
    let mut child = socp().args(args).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("server did not start")
        .unwrap()
        .expect("server printed nothing");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    // Keep reading its stdout so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

struct Client {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    events: Vec<Value>,
}

impl Client {
    async fn start(url: &str, downloads: &Path, runtime: &str) -> Self {
        let mut child = socp()
            .args([
                "client",
                "--json",
                "--runtime",
                runtime,
                "--server",
                url,
                "--downloads",
            ])
            .arg(downloads)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            _child: child,
            stdin,
            lines,
            events: Vec::new(),
        }
    }

    async fn send(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The first event (already seen or new) that `pred` accepts.
    async fn expect(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(v) = self.events.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}; saw {:#?}", self.events))
                .unwrap()
                .unwrap_or_else(|| {
                    panic!("client exited waiting for {what}; saw {:#?}", self.events)
                });
            let v: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            self.events.push(v.clone());
            if pred(&v) {
                return v;
            }
        }
    }

    async fn event(&mut self, name: &str) -> Value {
        self.expect(name, |v| v["event"] == name).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_run_lines_work() {
    let tmp = Tmp(std::env::temp_dir().join(format!("socp-cli-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).unwrap();
    let dir = tmp.0.to_str().unwrap().to_owned();

    // 1) An introducer.
    let (_intro, intro_url) = start_server(&[
        "introducer",
        "--bind",
        "ws://127.0.0.1:0",
        "--data-dir",
        &dir,
        "--db",
        &format!("{dir}/intro.db"),
    ])
    .await;
    let intro_port = intro_url.trim_end_matches('/').rsplit(':').next().unwrap();
    // 2) Server A through the seed's introducers.json, server B peering to A.
    //    B runs on smol (`--runtime smol`), the others on tokio: a mixed mesh
    //    of separate processes.
    let list = format!("{dir}/introducers.json");
    std::fs::write(
        &list,
        format!(r#"{{"bootstrap_servers": [{{"host": "127.0.0.1", "port": {intro_port}, "pubkey": ""}}]}}"#),
    )
    .unwrap();
    let (_a, url_a) = start_server(&[
        "server",
        "--bind",
        "ws://127.0.0.1:0",
        "--introducers",
        &list,
        "--data-dir",
        &dir,
        "--db",
        &format!("{dir}/a.db"),
        "--heartbeat-interval",
        "1",
    ])
    .await;
    let (_b, url_b) = start_server(&[
        "server",
        "--bind",
        "ws://127.0.0.1:0",
        "--peer",
        &url_a,
        "--data-dir",
        &dir,
        "--db",
        &format!("{dir}/b.db"),
        "--runtime",
        "smol",
        "--heartbeat-interval",
        "1",
    ])
    .await;

    // 3) Two clients: /register, then the password on the next line.
    let mut c1 = Client::start(&url_a, &tmp.0.join("dl1"), "tokio").await;
    c1.send("/register alice").await;
    c1.send("alice's password").await;
    let alice = c1.event("registered").await["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c2 = Client::start(&url_b, &tmp.0.join("dl2"), "smol").await;
    c2.send("/register bob").await;
    c2.send("bob's password").await;
    let bob = c2.event("registered").await["user_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // 4) /list until bob shows up on alice's side (gossip takes a moment).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        c1.events.retain(|v| v["event"] != "list");
        c1.send("/list").await;
        let list = c1.event("list").await;
        if list["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u == bob.as_str())
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "bob never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 5) /tell and /all.
    c1.send(&format!("/tell {bob} hello bob")).await;
    let dm = c2
        .expect("the DM", |v| {
            v["event"] == "message" && v["text"] == "hello bob"
        })
        .await;
    assert_eq!(
        (
            dm["from"].as_str(),
            dm["status"].as_str(),
            dm["public"].as_bool()
        ),
        (Some(alice.as_str()), Some("verified"), Some(false))
    );
    c2.send("/all hello-public").await;
    let public = c1
        .expect("the public message", |v| {
            v["event"] == "message" && v["text"] == "hello-public"
        })
        .await;
    assert_eq!(
        (public["from"].as_str(), public["public"].as_bool()),
        (Some(bob.as_str()), Some(true))
    );

    // 6) /file.
    let file = tmp.0.join("notes.txt");
    std::fs::write(&file, "a small file\n".repeat(100)).unwrap();
    c1.send(&format!("/file {bob} {}", file.display())).await;
    let saved = c2.event("file_saved").await;
    let path = PathBuf::from(saved["path"].as_str().unwrap());
    assert!(path.starts_with(tmp.0.join("dl2")));
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&file).unwrap());

    // 7) Errors are clear and the client keeps going.
    c1.send("/tell").await;
    assert!(
        c1.event("command_error").await["detail"]
            .as_str()
            .unwrap()
            .contains("usage")
    );
    c1.send("/quit").await;

    // 8) /login from a fresh client with the username and password only.
    let mut c3 = Client::start(&url_a, &tmp.0.join("dl3"), "smol").await;
    c3.send("/login alice").await;
    c3.send("wrong password").await;
    assert_eq!(c3.event("login_failed").await["code"], "INVALID_SIG");
    c3.send("/login alice").await;
    c3.send("alice's password").await;
    assert_eq!(c3.event("logged_in").await["user_id"], alice.as_str());
    c3.send(&format!("/tell {bob} it is me again")).await;
    c2.expect("the second DM", |v| {
        v["event"] == "message" && v["text"] == "it is me again"
    })
    .await;
    c3.send("/quit").await;
    c2.send("/quit").await;
}
