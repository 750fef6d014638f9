//! How client updates are shown: readable lines for people, one JSON object
//! per line (`--json`) for programs and tests.

use serde_json::{Value, json};
use socp_core::client::{ClientEvent, FileFailure, SendFailure};
use socp_tokio::ClientUpdate;

/// Where the REPL writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Readable text.
    Human,
    /// One JSON object per line.
    Json,
}

/// A JSON object for an update (`{"event": ..., ...}`), or `None` for updates
/// not worth showing.
#[must_use]
pub fn update_json(update: &ClientUpdate) -> Option<Value> {
    Some(match update {
        ClientUpdate::Event(e) => event_json(e)?,
        ClientUpdate::FileSaved { file_id, path } => {
            json!({"event": "file_saved", "file_id": file_id.0, "path": path.display().to_string()})
        }
        ClientUpdate::FileSaveFailed { file_id, error } => {
            json!({"event": "file_save_failed", "file_id": file_id.0, "error": error})
        }
        ClientUpdate::Stopped => json!({"event": "stopped"}),
        _ => return None,
    })
}

fn send_failure(reason: &SendFailure) -> &'static str {
    match reason {
        SendFailure::NoKey => "no_key",
        SendFailure::UserNotFound => "USER_NOT_FOUND",
        SendFailure::QueueFull => "queue_full",
        SendFailure::Crypto => "crypto",
        _ => "other",
    }
}

fn file_failure(reason: &FileFailure) -> String {
    reason.to_string()
}

fn event_json(e: &ClientEvent) -> Option<Value> {
    Some(match e {
        ClientEvent::Connecting { url, .. } => json!({"event": "connecting", "url": url}),
        ClientEvent::Connected { index } => json!({"event": "connected", "server": index}),
        ClientEvent::Registered { user_id, username } => {
            json!({"event": "registered", "user_id": user_id, "username": username})
        }
        ClientEvent::LoggedIn { user_id } => json!({"event": "logged_in", "user_id": user_id}),
        ClientEvent::LoginFailed { code, detail } => {
            json!({"event": "login_failed", "code": code.as_str(), "detail": detail})
        }
        ClientEvent::Disconnected { retry_in } => {
            json!({"event": "disconnected", "retry_in_ms": u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX)})
        }
        ClientEvent::UserOnline { user_id } => json!({"event": "user_online", "user_id": user_id}),
        ClientEvent::UserOffline { user_id } => {
            json!({"event": "user_offline", "user_id": user_id})
        }
        ClientEvent::List(users) => json!({"event": "list", "users": users}),
        ClientEvent::KeyLearned {
            user_id,
            fingerprint,
            ..
        } => json!({"event": "key_learned", "user_id": user_id, "fingerprint": fingerprint}),
        ClientEvent::KeyChanged {
            user_id,
            old_fingerprint,
            new_fingerprint,
        } => {
            json!({"event": "key_changed", "user_id": user_id, "old": old_fingerprint, "new": new_fingerprint})
        }
        ClientEvent::Message {
            from,
            ts,
            text,
            status,
            public,
        } => {
            json!({"event": "message", "from": from, "ts": ts, "text": text, "status": status.as_str(), "public": public})
        }
        ClientEvent::Sent { msg_id, to, parts } => {
            json!({"event": "sent", "msg_id": msg_id.to_hex(), "to": to, "parts": parts})
        }
        ClientEvent::Acked { msg_id, to } => {
            json!({"event": "acked", "msg_id": msg_id.to_hex(), "to": to})
        }
        ClientEvent::SendFailed { msg_id, to, reason } => {
            json!({"event": "send_failed", "msg_id": msg_id.to_hex(), "to": to, "reason": send_failure(reason)})
        }
        ClientEvent::FileSent {
            file_id,
            to,
            chunks,
        } => json!({"event": "file_sent", "file_id": file_id.0, "to": to, "chunks": chunks}),
        ClientEvent::FileSendFailed {
            file_id,
            to,
            reason,
        } => {
            json!({"event": "file_send_failed", "file_id": file_id.0, "to": to, "reason": send_failure(reason)})
        }
        ClientEvent::FileOffered {
            file_id,
            from,
            name,
            size,
        } => {
            json!({"event": "file_offered", "file_id": file_id.0, "from": from, "name": name, "size": size})
        }
        ClientEvent::FileProgress {
            file_id,
            received,
            total,
        } => {
            json!({"event": "file_progress", "file_id": file_id.0, "received": received, "total": total})
        }
        ClientEvent::FileReceived {
            file_id,
            from,
            name,
            size,
            status,
        } => {
            json!({"event": "file_received", "file_id": file_id.0, "from": from, "name": name, "size": size, "status": status.as_str()})
        }
        ClientEvent::FileFailed { file_id, reason } => {
            json!({"event": "file_failed", "file_id": file_id.0, "reason": file_failure(reason)})
        }
        ClientEvent::PublicChannel { version } => {
            json!({"event": "public_channel", "version": version})
        }
        ClientEvent::ChannelKey {
            creator, status, ..
        } => json!({"event": "channel_key", "creator": creator, "status": status.as_str()}),
        ClientEvent::Error { code, detail } => {
            json!({"event": "error", "code": code.as_str(), "detail": detail})
        }
        ClientEvent::Dropped { reason } => json!({"event": "dropped", "reason": reason}),
        _ => return None,
    })
}

/// A readable line for an update, or `None` for updates a person need not
/// see. `names` turns a user id into a label.
#[must_use]
pub fn update_text(update: &ClientUpdate, names: &dyn Fn(&str) -> String) -> Option<String> {
    let e = match update {
        ClientUpdate::Event(e) => e,
        ClientUpdate::FileSaved { path, .. } => {
            return Some(format!("[file] saved to {}", path.display()));
        }
        ClientUpdate::FileSaveFailed { error, .. } => {
            return Some(format!("[file] could not be saved: {error}"));
        }
        ClientUpdate::Stopped => return Some("[closed]".to_owned()),
        _ => return None,
    };
    Some(match e {
        ClientEvent::Connecting { url, .. } => format!("[connecting to {url}]"),
        ClientEvent::Registered { user_id, username } => match username {
            Some(name) => format!("[REGISTERED] {name} = {user_id}"),
            None => format!("[REGISTERED] your user id is {user_id}"),
        },
        ClientEvent::LoggedIn { user_id } => format!("[LOGIN SUCCESS] {}", names(user_id)),
        ClientEvent::LoginFailed { code, detail } => {
            format!("[LOGIN FAILED] {}: {detail}", code.as_str())
        }
        ClientEvent::Disconnected { retry_in } => {
            format!(
                "[disconnected; retrying in {:.1} s]",
                retry_in.as_secs_f64()
            )
        }
        ClientEvent::UserOnline { user_id } => format!("[online] {}", names(user_id)),
        ClientEvent::UserOffline { user_id } => format!("[offline] {}", names(user_id)),
        ClientEvent::List(users) => {
            if users.is_empty() {
                "[online users] nobody else".to_owned()
            } else {
                let list: Vec<String> = users.iter().map(|u| format!("  {}", names(u))).collect();
                format!("[online users]\n{}", list.join("\n"))
            }
        }
        ClientEvent::KeyChanged {
            user_id,
            old_fingerprint,
            new_fingerprint,
        } => format!(
            "[WARNING] the key of {} CHANGED (pinned {}, offered {}). Their messages stay checked against the old key. If you verified the new fingerprint out of band: /accept {user_id}",
            names(user_id),
            short(old_fingerprint),
            short(new_fingerprint)
        ),
        ClientEvent::Message {
            from,
            text,
            status,
            public,
            ..
        } => {
            let kind = if *public { "PUBLIC" } else { "DM" };
            let flag = match status.as_str() {
                "verified" => String::new(),
                other => format!(" [{other}]"),
            };
            format!("{kind} from {}{flag}: {text}", names(from))
        }
        ClientEvent::Acked { .. } | ClientEvent::Sent { .. } => return None,
        ClientEvent::SendFailed { to, reason, .. } => {
            format!("[not delivered to {}: {}]", names(to), send_failure(reason))
        }
        ClientEvent::FileSent { to, chunks, .. } => {
            format!("[file sent to {} in {chunks} chunks]", names(to))
        }
        ClientEvent::FileSendFailed { to, reason, .. } => {
            format!("[file not sent to {}: {}]", names(to), send_failure(reason))
        }
        ClientEvent::FileOffered {
            from, name, size, ..
        } => format!("[file] {} sends {name} ({size} bytes)", names(from)),
        ClientEvent::FileProgress {
            received, total, ..
        } => progress_bar(*received, *total),
        ClientEvent::FileReceived {
            from, name, status, ..
        } => format!(
            "[file] {name} from {} is complete ({})",
            names(from),
            status.as_str()
        ),
        ClientEvent::FileFailed { reason, .. } => format!("[file FAILED] {reason}"),
        ClientEvent::Error { code, detail } => format!("[error {}] {detail}", code.as_str()),
        _ => return None,
    })
}

fn short(fp: &str) -> &str {
    fp.get(..16).unwrap_or(fp)
}

/// `[#########           ] 45%`.
#[must_use]
pub fn progress_bar(received: u64, total: u64) -> String {
    let pct = received
        .saturating_mul(100)
        .checked_div(total)
        .unwrap_or(100)
        .min(100);
    let filled = usize::try_from(pct / 5).unwrap_or(20);
    format!(
        "[file] [{}{}] {pct}%",
        "#".repeat(filled),
        " ".repeat(20 - filled.min(20))
    )
}
