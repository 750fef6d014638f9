//! File transfer (socp-1.3.md §1.7 "File transfer", §4 case 19).
//!
//! Sending: FILE_START `{file_id (UUIDv4), name, size, sha256 (hex), mode}`,
//! then FILE_CHUNK `{file_id, index, ciphertext}` with 446 plaintext bytes per
//! chunk, each RSA-OAEP encrypted to the recipient (for the public channel, to
//! each member in turn, `to` = the member), then FILE_END `{file_id}`. SOCP
//! defines no signature for files; socp adds an optional `content_sig` to
//! FILE_START: layout A over (SHA-256 of the canonical JSON array `[file_id,
//! name, size, sha256, mode]`, from, to, ts). The manifest carries the content's
//! SHA-256, so one signature authenticates the whole file.
//!
//! Receiving: chunks may arrive in any order and are kept by index. Memory is
//! bounded: at most [`ClientConfig::max_file_size`](super::ClientConfig::max_file_size)
//! per file and [`ClientConfig::max_incoming_files`](super::ClientConfig::max_incoming_files)
//! transfers at once; the bytes received never exceed the announced size; an
//! index must be below ⌈size / 128⌉ (peers use 190- to 446-byte chunks, §2
//! row 13). On FILE_END every chunk must be there (as many as the first chunk's
//! size implies), the sizes must add up and the SHA-256 must match; only then
//! does [`ClientAction::WriteFile`](super::ClientAction::WriteFile) ask the
//! adapter to save it, under [`sanitize_file_name`]'s name. Otherwise
//! [`ClientEvent::FileFailed`](super::ClientEvent::FileFailed): nothing is written.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::Value;

use super::chunking::PIECE_BYTES;
use super::filename::sanitize_file_name;
use super::public::is_channel;
use super::{
    Client, ClientAction, ClientEvent, FileFailure, FileId, MessageStatus, OutFile, SendFailure,
    hex, unhex,
};
use crate::crypto::content_sig::{DmFields, SigLayout, sign_dm, verify_dm};
use crate::crypto::rsa::RsaPublic;
use crate::crypto::sha256;
use crate::time::{Instant, Now};
use crate::wire::messages::{FileChunk, FileEnd, FileMode, FileStart};
use crate::wire::{Envelope, b64, json};

/// The smallest chunk size we expect from any peer, which bounds chunk indices.
const MIN_PEER_CHUNK: u64 = 128;
/// Longest `file_id` accepted.
const MAX_FILE_ID_LEN: usize = 64;

/// A file being received.
#[derive(Debug)]
pub(super) struct Incoming {
    file_id: FileId,
    name: String,
    size: u64,
    sha256: Option<[u8; 32]>,
    status: MessageStatus,
    chunks: BTreeMap<u64, Vec<u8>>,
    received: u64,
    max_chunks: u64,
    pub(super) deadline: Instant,
}

/// What the manifest `content_sig` covers, as the base64url "ciphertext" of a
/// layout-A DM signature.
fn manifest_digest(
    file_id: &str,
    name: &str,
    size: u64,
    sha256_hex: &str,
    mode: FileMode,
) -> String {
    let mode = match mode {
        FileMode::Dm => "dm",
        FileMode::Public => "public",
    };
    let fields = Value::Array(vec![
        Value::from(file_id),
        Value::from(name),
        Value::from(size),
        Value::from(sha256_hex),
        Value::from(mode),
    ]);
    b64::encode(&sha256(&json::canonical(&fields)))
}

impl Client {
    /// FILE_START, the encrypted chunks and FILE_END for one recipient.
    pub(super) fn file_frames(
        &mut self,
        now: Now,
        file_id: &FileId,
        to: &str,
        file: &OutFile,
        key: &RsaPublic,
    ) -> Result<Vec<Bytes>, SendFailure> {
        let ts = now.unix_ms;
        let me = self.identity.user_id.clone();
        let size = u64::try_from(file.bytes.len()).map_err(|_| SendFailure::Crypto)?;
        let mode = if file.public {
            FileMode::Public
        } else {
            FileMode::Dm
        };
        let digest = manifest_digest(&file_id.0, &file.name, size, &file.sha256_hex, mode);
        let fields = DmFields {
            ciphertext: &digest,
            from: &me,
            to,
            ts,
        };
        let sig = sign_dm(&self.identity.rsa, &mut self.rng, &fields, SigLayout::A)
            .map_err(|_| SendFailure::Crypto)?;
        let start = FileStart {
            file_id: file_id.0.clone(),
            name: file.name.clone(),
            size,
            sha256: Some(file.sha256_hex.clone()),
            mode,
            sender_pub: Some(self.key_wire.clone()),
        };
        let mut env = Envelope::new(me.clone(), to, ts, start);
        env.payload.insert("content_sig".into(), Value::String(sig));
        let mut frames = Vec::with_capacity(file.bytes.len() / PIECE_BYTES + 3);
        frames.push(Bytes::from(env.encode()));
        for (index, piece) in file.bytes.chunks(PIECE_BYTES).enumerate() {
            let ct = key
                .encrypt_oaep(&mut self.rng, piece)
                .map_err(|_| SendFailure::Crypto)?;
            let chunk = FileChunk {
                file_id: file_id.0.clone(),
                index: u64::try_from(index).map_err(|_| SendFailure::Crypto)?,
                ciphertext: b64::encode(&ct),
                total: None,
                sender_pub: None,
                content_sig: None,
            };
            frames.push(Bytes::from(
                Envelope::new(me.clone(), to, ts, chunk).encode(),
            ));
        }
        let end = FileEnd {
            file_id: file_id.0.clone(),
        };
        frames.push(Bytes::from(Envelope::new(me, to, ts, end).encode()));
        Ok(frames)
    }

    /// Whether a file frame is ours to read: from someone else, to us or to the channel.
    fn file_frame_for_me(&self, env: &Envelope) -> bool {
        env.from != self.identity.user_id
            && (env.to == self.identity.user_id || is_channel(&env.to))
    }

    pub(super) fn on_file_start(&mut self, now: Now, env: &Envelope, start: FileStart) {
        if !self.file_frame_for_me(env) {
            return;
        }
        let key = (env.from.clone(), start.file_id.clone());
        if start.file_id.is_empty() || start.file_id.len() > MAX_FILE_ID_LEN {
            return self.dropped("FILE_START with a bad file_id".into());
        }
        if self.incoming.contains_key(&key) {
            return self.dropped(format!("repeated FILE_START {}", start.file_id));
        }
        let file_id = FileId(start.file_id.clone());
        let fail = |client: &mut Self, reason| {
            client.events.push_back(ClientEvent::FileFailed {
                file_id: file_id.clone(),
                reason,
            });
        };
        if start.size > self.cfg.max_file_size {
            let max = self.cfg.max_file_size;
            return fail(
                self,
                FileFailure::TooLarge {
                    size: start.size,
                    max,
                },
            );
        }
        if self.incoming.len() >= self.cfg.max_incoming_files {
            return fail(self, FileFailure::TooManyTransfers);
        }
        let sha = match start.sha256.as_deref() {
            None => None,
            Some(text) => match unhex::<32>(text) {
                Some(digest) => Some(digest),
                None => return fail(self, FileFailure::BadManifest),
            },
        };
        let sig = env.payload.get("content_sig").and_then(Value::as_str);
        let status = match start.sha256.as_deref() {
            // Without a hash, a signature would not cover the content.
            None => MessageStatus::Unsigned,
            Some(sha_hex) => {
                let digest =
                    manifest_digest(&start.file_id, &start.name, start.size, sha_hex, start.mode);
                self.content_status(&env.from, sig, |key, sig| {
                    let fields = DmFields {
                        ciphertext: &digest,
                        from: &env.from,
                        to: &env.to,
                        ts: env.ts,
                    };
                    verify_dm(key, sig, &fields).is_ok()
                })
            }
        };
        if status == MessageStatus::InvalidSignature {
            return fail(self, FileFailure::InvalidSignature);
        }
        let name = sanitize_file_name(&start.name);
        self.incoming.insert(
            key,
            Incoming {
                file_id: file_id.clone(),
                name: name.clone(),
                size: start.size,
                sha256: sha,
                status,
                chunks: BTreeMap::new(),
                received: 0,
                max_chunks: start.size.div_ceil(MIN_PEER_CHUNK),
                deadline: now.mono + self.cfg.file_idle_timeout,
            },
        );
        self.events.push_back(ClientEvent::FileOffered {
            file_id,
            from: env.from.clone(),
            name,
            size: start.size,
        });
    }

    pub(super) fn on_file_chunk(&mut self, now: Now, env: &Envelope, chunk: FileChunk) {
        if !self.file_frame_for_me(env) {
            return;
        }
        let key = (env.from.clone(), chunk.file_id.clone());
        // Chunks of unknown or refused transfers are ignored without a word.
        let Some(inc) = self.incoming.get(&key) else {
            return;
        };
        if chunk.index >= inc.max_chunks {
            return self.fail_incoming(&key, FileFailure::BadChunkIndex { index: chunk.index });
        }
        if inc.chunks.contains_key(&chunk.index) {
            return;
        }
        let Some(plain) = self.decrypt(&chunk.ciphertext) else {
            if is_channel(&env.to) {
                return; // another member's copy
            }
            return self.fail_incoming(&key, FileFailure::DecryptionFailed { index: chunk.index });
        };
        let Some(inc) = self.incoming.get_mut(&key) else {
            return;
        };
        let len = u64::try_from(plain.len()).unwrap_or(u64::MAX);
        let got = inc.received.saturating_add(len);
        if got > inc.size {
            let expected = inc.size;
            return self.fail_incoming(&key, FileFailure::SizeMismatch { expected, got });
        }
        inc.chunks.insert(chunk.index, plain.to_vec());
        inc.received = got;
        inc.deadline = now.mono + self.cfg.file_idle_timeout;
        let event = ClientEvent::FileProgress {
            file_id: inc.file_id.clone(),
            received: got,
            total: inc.size,
        };
        self.events.push_back(event);
    }

    pub(super) fn on_file_end(&mut self, _now: Now, env: &Envelope, file_id: &str) {
        if !self.file_frame_for_me(env) {
            return;
        }
        let key = (env.from.clone(), file_id.to_owned());
        let Some(inc) = self.incoming.remove(&key) else {
            return;
        };
        let failed = |reason| ClientEvent::FileFailed {
            file_id: inc.file_id.clone(),
            reason,
        };
        // As many chunks as the first one's size implies, none missing.
        let first_len = inc
            .chunks
            .get(&0)
            .map_or(PIECE_BYTES as u64, |c| c.len() as u64)
            .max(1);
        let expected_chunks = inc.size.div_ceil(first_len);
        let mut next = 0u64;
        for index in inc.chunks.keys() {
            if *index != next {
                break;
            }
            next += 1;
        }
        if next < expected_chunks || next < inc.chunks.len() as u64 {
            return self
                .events
                .push_back(failed(FileFailure::MissingChunk { index: next }));
        }
        if inc.received != inc.size {
            return self.events.push_back(failed(FileFailure::SizeMismatch {
                expected: inc.size,
                got: inc.received,
            }));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(inc.size).unwrap_or(0));
        for chunk in inc.chunks.values() {
            bytes.extend_from_slice(chunk);
        }
        if let Some(expected) = inc.sha256
            && sha256(&bytes) != expected
        {
            return self.events.push_back(failed(FileFailure::HashMismatch));
        }
        self.events.push_back(ClientEvent::FileReceived {
            file_id: inc.file_id.clone(),
            from: env.from.clone(),
            name: inc.name.clone(),
            size: inc.size,
            status: inc.status,
        });
        self.actions.push_back(ClientAction::WriteFile {
            file_id: inc.file_id,
            name: inc.name,
            bytes: Bytes::from(bytes),
        });
    }

    fn fail_incoming(&mut self, key: &(String, String), reason: FileFailure) {
        if let Some(inc) = self.incoming.remove(key) {
            self.events.push_back(ClientEvent::FileFailed {
                file_id: inc.file_id,
                reason,
            });
        }
    }

    pub(super) fn expire_files(&mut self, now: Now) {
        let expired: Vec<(String, String)> = self
            .incoming
            .iter()
            .filter(|(_, f)| now.mono >= f.deadline)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.fail_incoming(&key, FileFailure::Timeout);
        }
    }
}

/// The hex SHA-256 of `bytes` (what FILE_START's `sha256` holds).
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha256(bytes))
}
