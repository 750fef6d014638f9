//! Saving received files: only inside the download folder, never over an
//! existing file.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

/// How many numbered names (`name (1).ext`, ...) are tried before giving up.
const MAX_SUFFIX: u32 = 9999;

/// Whether `name` is a bare file name: one normal path component, no
/// separator of any platform, no `..`, not absolute, no NUL.
fn is_bare_name(name: &str) -> bool {
    if name.is_empty()
        || name.contains(['/', '\\', '\0'])
        || name.contains("..")
        || name.len() > 255
    {
        return false;
    }
    let path = Path::new(name);
    let mut components = path.components();
    matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) && !path.is_absolute()
}

/// `stem (n).ext` for `n > 0`, `name` itself for 0.
fn numbered(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    // A leading dot is part of the stem (".profile" has no extension).
    match name.rfind('.').filter(|&i| i > 0) {
        Some(dot) => {
            let (stem, ext) = name.split_at(dot);
            format!("{stem} ({n}){ext}")
        }
        None => format!("{name} ({n})"),
    }
}

/// Writes `bytes` to a new file named `name` inside `dir` (created if
/// missing), adding ` (1)`, ` (2)`, ... before the extension while the name is
/// taken. Never follows or replaces an existing entry (`create_new`). Blocking.
///
/// # Errors
/// `InvalidInput` for a name that is not a bare file name; any I/O error.
pub(crate) fn save_file(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    if !is_bare_name(name) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("refusing file name {name:?}: not a bare file name"),
        ));
    }
    std::fs::create_dir_all(dir)?;
    for n in 0..=MAX_SUFFIX {
        let candidate = numbered(name, n);
        if !is_bare_name(&candidate) {
            break;
        }
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
            "socp-tokio-files-{tag}-{}-{:x}",
            std::process::id(),
            u64::from_le_bytes(crate::random_seed()[..8].try_into().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn names_are_checked() {
        for bad in [
            "",
            "..",
            ".",
            "../x",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "x..y",
            "a\0b",
        ] {
            assert!(!is_bare_name(bad), "{bad:?}");
        }
        for good in ["a.txt", "report (1).pdf", ".profile", "ü.bin"] {
            assert!(is_bare_name(good), "{good:?}");
        }
        assert_eq!(numbered("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered(".profile", 1), ".profile (1)");
        assert_eq!(numbered("README", 3), "README (3)");
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
