//! Decoding limits: how much a single frame may cost us.

/// Bounds applied to every frame before and while it is parsed.
///
/// Decoding checks the frame's length before looking at a single byte of it,
/// and the nesting depth in one linear pass before building any value, so a
/// hostile peer can make us allocate at most a small constant multiple of
/// `max_frame_bytes` (the parsed tree of a JSON text is at most ~25 times its
/// size, for a frame like `[0,0,0,…]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Largest accepted frame, in bytes (including any trailing newline).
    ///
    /// Default 1 MiB. The largest legitimate SOCP v1.3 frames are rosters:
    /// a SERVER_WELCOME entry or a PUBLIC_CHANNEL_UPDATED wrap costs about
    /// 0.8–1.2 KiB (a 734-character DER or 1067-character PEM public key, or a
    /// 683-character RSA-4096 ciphertext, plus ids), so 1 MiB carries roughly
    /// 900 servers or users in one frame. A FILE_CHUNK is under 1 KiB. A
    /// larger network needs a larger limit on both ends.
    pub max_frame_bytes: usize,
    /// Deepest accepted nesting of JSON arrays and objects; the envelope
    /// object itself is depth 1 and its `payload` depth 2.
    ///
    /// Default 32. The deepest SOCP frame (a WELCOME snapshot, a USER_ADVERTISE
    /// `meta` with `extras`) nests about 5 levels; 32 leaves room for
    /// decorative `meta` while keeping recursion in the parser, in
    /// [`canonical`](super::json::canonical) and in `Drop` shallow. Values
    /// above 127 are capped by serde_json's own recursion limit of 128.
    pub max_json_depth: usize,
}

impl Limits {
    /// 1 MiB: see [`Limits::max_frame_bytes`].
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 1024 * 1024;
    /// 32 levels: see [`Limits::max_json_depth`].
    pub const DEFAULT_MAX_JSON_DEPTH: usize = 32;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: Self::DEFAULT_MAX_FRAME_BYTES,
            max_json_depth: Self::DEFAULT_MAX_JSON_DEPTH,
        }
    }
}
