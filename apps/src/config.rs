//! Server settings from flags, the seed's environment variables, a TOML config
//! file and introducer lists (the seed's `introducers.json`, or the same list
//! in TOML or YAML).
//!
//! Precedence: command-line flag, then environment variable (`HOST`, `PORT`,
//! `INTRODUCERS_JSON`, `DB_PATH`, `HEARTBEAT_INTERVAL`, `TIMEOUT_THRESHOLD`),
//! then `--config` file, then the default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use socp_core::server::BootstrapEntry;

/// A configuration problem, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be parsed.
    #[error("{path}: {detail}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A value is malformed.
    #[error("{what}: {detail}")]
    Value {
        /// Which setting.
        what: String,
        /// What is wrong.
        detail: String,
    },
}

/// The `--config` file (TOML). Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `ws://HOST:PORT` to listen on.
    pub bind: Option<String>,
    /// `auto` or a UUIDv4.
    pub server_id: Option<String>,
    /// Servers to join through (`ws://HOST:PORT`).
    #[serde(default)]
    pub peers: Vec<String>,
    /// An introducer list file.
    pub introducers: Option<PathBuf>,
    /// SQLite database path.
    pub db: Option<PathBuf>,
    /// Data directory (keys, default database).
    pub data_dir: Option<PathBuf>,
    /// Seconds between heartbeats.
    pub heartbeat_interval: Option<u64>,
    /// Seconds of silence before a server link is dead.
    pub timeout_threshold: Option<u64>,
}

impl FileConfig {
    /// Reads a TOML config file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = read(path)?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// `ws://host:port[/path]` → `(host, port)`. A missing port is 80.
///
/// # Errors
/// [`ConfigError::Value`] for anything that is not a `ws://` URL.
pub fn parse_ws_url(url: &str) -> Result<(String, u16), ConfigError> {
    let bad = |detail: &str| ConfigError::Value {
        what: format!("URL {url:?}"),
        detail: detail.to_owned(),
    };
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| bad("must start with ws://"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("has no host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed [ in host"))?;
        let port = after.strip_prefix(':').unwrap_or("80");
        (h.to_owned(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p),
            None => (authority.to_owned(), "80"),
        }
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| bad("port must be a number from 0 to 65535"))?;
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    Ok((host, port))
}

/// One entry of an introducer list file.
#[derive(Debug, Deserialize)]
struct RawEntry {
    host: String,
    port: u16,
    #[serde(default)]
    pubkey: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawList {
    bootstrap_servers: Vec<RawEntry>,
}

fn entries(raw: Vec<RawEntry>) -> Vec<BootstrapEntry> {
    raw.into_iter()
        .map(|e| BootstrapEntry {
            host: e.host,
            port: e.port,
            pubkey: e.pubkey.filter(|k| !k.trim().is_empty()),
        })
        .collect()
}

/// Reads an introducer list: `{"bootstrap_servers": [{host, port, pubkey}]}`
/// as JSON (the seed's `introducers.json`), TOML (`[[bootstrap_servers]]`)
/// or YAML (SOCP §8's `bootstrap_servers:` list; the block-list subset:
/// `- host: ...` entries with `key: value` lines). The format follows the
/// extension (`.json`, `.toml`, `.yaml`/`.yml`); JSON otherwise. An empty
/// `pubkey` means "trust on first use, then pin".
///
/// # Errors
/// [`ConfigError::Read`] or [`ConfigError::Parse`].
pub fn load_introducers(path: &Path) -> Result<Vec<BootstrapEntry>, ConfigError> {
    let text = read(path)?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parse_err = |detail: String| ConfigError::Parse {
        path: path.display().to_string(),
        detail,
    };
    let raw: RawList = match ext.as_str() {
        "toml" => toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?,
        "yaml" | "yml" => parse_yaml_list(&text).map_err(parse_err)?,
        _ => serde_json::from_str(&text).map_err(|e| parse_err(e.to_string()))?,
    };
    Ok(entries(raw.bootstrap_servers))
}

/// The YAML subset of a bootstrap list.
fn parse_yaml_list(text: &str) -> Result<RawList, String> {
    let mut list: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let mut seen_key = false;
    for (n, line) in text.lines().enumerate() {
        let no_comment = line.split(" #").next().unwrap_or_default();
        let trimmed = no_comment.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed == "bootstrap_servers:" {
            seen_key = true;
            continue;
        }
        if !seen_key {
            return Err(format!("line {}: expected `bootstrap_servers:`", n + 1));
        }
        let item = if let Some(rest) = trimmed.strip_prefix("- ") {
            list.push(serde_json::Map::new());
            rest
        } else {
            trimmed
        };
        let (k, v) = item
            .split_once(':')
            .ok_or_else(|| format!("line {}: expected `key: value`", n + 1))?;
        let v = v.trim().trim_matches('"').trim_matches('\'');
        let value = match k.trim() {
            "port" => serde_json::Value::from(
                v.parse::<u16>()
                    .map_err(|_| format!("line {}: port must be a number", n + 1))?,
            ),
            _ => serde_json::Value::from(v),
        };
        list.last_mut()
            .ok_or_else(|| format!("line {}: entries start with `- `", n + 1))?
            .insert(k.trim().to_owned(), value);
    }
    let value = serde_json::json!({ "bootstrap_servers": list });
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// The seed's fallback variables `BOOTSTRAP_HOST_n`, `BOOTSTRAP_PORT_n`,
/// `BOOTSTRAP_PUBKEY_n` (n = 1, 2, 3).
#[must_use]
pub fn bootstrap_from_env(env: &dyn Fn(&str) -> Option<String>) -> Vec<BootstrapEntry> {
    (1..=3)
        .filter_map(|n| {
            let host = env(&format!("BOOTSTRAP_HOST_{n}"))?;
            let port = env(&format!("BOOTSTRAP_PORT_{n}"))?.parse().ok()?;
            Some(BootstrapEntry {
                host,
                port,
                pubkey: env(&format!("BOOTSTRAP_PUBKEY_{n}")).filter(|k| !k.is_empty()),
            })
        })
        .collect()
}

/// Parses a number of seconds from a setting.
///
/// # Errors
/// [`ConfigError::Value`].
pub fn seconds(what: &str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| ConfigError::Value {
            what: what.to_owned(),
            detail: format!("{value:?} is not a positive number of seconds"),
        })
}

/// The data directory: `$SOCP_DATA_DIR`, else `$XDG_DATA_HOME/socp`, else
/// `~/.local/share/socp`, else `./socp-data`.
#[must_use]
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SOCP_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("socp");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/socp");
    }
    PathBuf::from("socp-data")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_ws_url("ws://127.0.0.1:8765").unwrap(),
            ("127.0.0.1".into(), 8765)
        );
        assert_eq!(
            parse_ws_url("ws://example.org:9/ws?x=1").unwrap(),
            ("example.org".into(), 9)
        );
        assert_eq!(parse_ws_url("ws://[::1]:80/").unwrap(), ("::1".into(), 80));
        assert!(parse_ws_url("http://a:1").is_err());
        assert!(parse_ws_url("ws://a:99999").is_err());
        assert!(parse_ws_url("ws://:1").is_err());
    }

    #[test]
    fn yaml_subset() {
        let text = "# intro\nbootstrap_servers:\n  - host: 127.0.0.1\n    port: 8000\n    pubkey: \"\"\n  - host: b.example\n    port: 8001 # second\n    pubkey: abc\n";
        let list = entries(parse_yaml_list(text).unwrap().bootstrap_servers);
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].host.as_str(), list[0].port), ("127.0.0.1", 8000));
        assert_eq!(list[0].pubkey, None);
        assert_eq!(list[1].pubkey.as_deref(), Some("abc"));
        assert!(parse_yaml_list("servers:\n - host: a\n").is_err());
        assert!(parse_yaml_list("bootstrap_servers:\n  - host: a\n    port: x\n").is_err());
    }

    #[test]
    fn env_fallback() {
        let env = |k: &str| match k {
            "BOOTSTRAP_HOST_1" => Some("10.0.0.1".to_owned()),
            "BOOTSTRAP_PORT_1" => Some("8000".to_owned()),
            _ => None,
        };
        let list = bootstrap_from_env(&env);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].port, 8000);
    }
}
