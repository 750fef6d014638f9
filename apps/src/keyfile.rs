//! A server's RSA-4096 key on disk: PKCS#8 PEM, created on first start with
//! mode 0600 (like an SSH host key: the server must start unattended, so it is
//! not password-protected; protect the data directory).

use std::path::Path;

use socp_core::crypto::rsa::RsaIdentity;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an RSA private key in PKCS#8 PEM.
    #[error("key file: {0}")]
    Parse(String),
    /// Key generation failed.
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// Generates an RSA-4096 identity from the OS random source (about a second).
///
/// # Errors
/// [`KeyFileError::Generate`].
pub fn generate() -> Result<RsaIdentity, KeyFileError> {
    let mut rng = socp_core::crypto::rng_from_seed(socp_tokio::random_seed());
    RsaIdentity::generate(&mut rng).map_err(|e| KeyFileError::Generate(e.to_string()))
}

/// Loads the key at `path`, or generates one and writes it there (0600).
///
/// # Errors
/// See [`KeyFileError`].
pub fn load_or_create(path: &Path) -> Result<RsaIdentity, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => RsaIdentity::from_pem(&text)
            .map_err(|e| KeyFileError::Parse(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = generate()?;
            if let Some(dir) = path.parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            write_new_private(path, key.to_pkcs8_pem().as_bytes()).map_err(io)?;
            tracing::info!(path = %path.display(), "generated a new server key");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes a new secret file: fails if `path` exists, mode 0600 on Unix,
/// synced before returning.
///
/// # Errors
/// Any I/O error, `AlreadyExists` included.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
