//! Saving received files: only inside the download folder, never over an
//! existing file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use socp_core::client::download_names;

/// Writes `bytes` to a new file named `name` inside `dir` (created if
/// missing), adding ` (1)`, ` (2)`, ... before the extension while the name is
/// taken. Never follows or replaces an existing entry (`create_new`). Blocking.
///
/// # Errors
/// `InvalidInput` for a name that is not a bare file name; any I/O error.
pub(crate) fn save_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let Some(candidates) = download_names(name) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing file name {name:?}: not a bare file name"),
        ));
    };
    std::fs::create_dir_all(dir)?;
    for candidate in candidates {
        let path = dir.join(&candidate);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(mut file) => {
                let written = file.write_all(bytes).and_then(|()| file.sync_all());
                if let Err(e) = written {
                    drop(file);
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free name for {name:?} in the download folder"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "socp-smol-files-{tag}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(crate::random_seed()[..8].try_into().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn never_overwrites_and_never_escapes() {
        let dir = temp_dir("save");
        let a = save_file(&dir, "x.txt", b"one").unwrap();
        let b = save_file(&dir, "x.txt", b"two").unwrap();
        let c = save_file(&dir, "x.txt", b"three").unwrap();
        assert_eq!(a, dir.join("x.txt"));
        assert_eq!(b, dir.join("x (1).txt"));
        assert_eq!(c, dir.join("x (2).txt"));
        assert_eq!(std::fs::read(&a).unwrap(), b"one");
        assert_eq!(std::fs::read(&b).unwrap(), b"two");
        for bad in ["../escape.txt", "/tmp/escape.txt", ".."] {
            let err = save_file(&dir, bad, b"evil").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(!dir.parent().unwrap().join("escape.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
