//! Received file names are untrusted: [`sanitize_file_name`] turns one into a
//! bare, harmless file name (socp-1.3.md §4 cases 19 and 22).

/// Longest sanitized name, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 120;

/// Names Windows reserves for devices, with or without an extension.
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A safe file name for `name` as a peer sent it:
/// - only the last path component is kept, splitting on both `/` and `\`
///   (so `../x`, `..\x`, `/etc/passwd` and `C:\Windows\x` lose their paths);
/// - control characters (NUL included) and the characters Windows forbids
///   (`<>:"|?*`) become `_`;
/// - runs of dots collapse to one, and leading and trailing dots and spaces
///   go (no hidden files, no `..`);
/// - a Windows device name (`CON`, `nul.txt`, `COM1`, ...) gets a `_` prefix;
/// - the result is cut to [`MAX_FILE_NAME_BYTES`] on a character boundary;
/// - an empty result becomes `"file"`.
#[must_use]
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::with_capacity(base.len().min(MAX_FILE_NAME_BYTES));
    let mut last_dot = false;
    for c in base.chars() {
        let c = if c.is_control() || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
            '_'
        } else {
            c
        };
        if c == '.' && last_dot {
            continue;
        }
        last_dot = c == '.';
        out.push(c);
    }
    let mut name = out
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_owned();
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        name.insert(0, '_');
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        let mut end = MAX_FILE_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
        name = name.trim_end_matches(['.', ' ']).to_owned();
    }
    if name.is_empty() {
        name.push_str("file");
    }
    name
}

/// How many numbered names (`name (1).ext`, ...) [`download_names`] offers
/// after the name itself.
pub const MAX_NAME_SUFFIX: u32 = 9999;

/// Whether `name` is a bare file name: one normal path component, no
/// separator of any platform, no `..`, not absolute, no NUL, at most 255 bytes.
#[must_use]
pub fn is_bare_name(name: &str) -> bool {
    if name.is_empty()
        || name.contains(['/', '\\', '\0'])
        || name.contains("..")
        || name.len() > 255
    {
        return false;
    }
    let path = std::path::Path::new(name);
    let mut components = path.components();
    matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !path.is_absolute()
}

/// `stem (n).ext` for `n > 0`, `name` itself for 0. A leading dot is part of
/// the stem (`.profile` has no extension).
#[must_use]
pub fn numbered_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.rfind('.').filter(|&i| i > 0) {
        Some(dot) => {
            let (stem, ext) = name.split_at(dot);
            format!("{stem} ({n}){ext}")
        }
        None => format!("{name} ({n})"),
    }
}

/// The names an adapter tries, in order, when it saves a received file
/// called `name` in a download folder: `name`, `name (1)`, ... up to
/// [`MAX_NAME_SUFFIX`], each a bare name. `None` if `name` itself is not a
/// bare name ([`is_bare_name`]): such a file must not be written at all.
/// The adapter creates each candidate with `create_new`, so an existing
/// entry is never followed or replaced.
pub fn download_names(name: &str) -> Option<impl Iterator<Item = String> + '_> {
    is_bare_name(name).then(|| {
        (0..=MAX_NAME_SUFFIX)
            .map(move |n| numbered_name(name, n))
            .take_while(|candidate| is_bare_name(candidate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped() {
        assert_eq!(sanitize_file_name("../x"), "x");
        assert_eq!(sanitize_file_name("..\\x"), "x");
        assert_eq!(sanitize_file_name("../../evil"), "evil");
        assert_eq!(sanitize_file_name("/etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("C:\\Windows\\x"), "x");
        assert_eq!(sanitize_file_name("C:x.txt"), "C_x.txt");
        assert_eq!(sanitize_file_name("dir/"), "file");
    }

    #[test]
    fn dots_and_empties() {
        assert_eq!(sanitize_file_name(".."), "file");
        assert_eq!(sanitize_file_name("..."), "file");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name(".bashrc"), "bashrc");
        assert_eq!(sanitize_file_name("a..b"), "a.b");
        assert_eq!(sanitize_file_name("report.pdf. "), "report.pdf");
        assert_eq!(sanitize_file_name("notes.txt"), "notes.txt");
    }

    #[test]
    fn control_and_reserved() {
        assert_eq!(sanitize_file_name("a\0b"), "a_b");
        assert_eq!(sanitize_file_name("a\nb\u{7f}"), "a_b_");
        assert_eq!(sanitize_file_name("\0"), "_");
        assert_eq!(sanitize_file_name("CON"), "_CON");
        assert_eq!(sanitize_file_name("nul.txt"), "_nul.txt");
        assert_eq!(sanitize_file_name("com1"), "_com1");
        assert_eq!(sanitize_file_name("CONSOLE"), "CONSOLE");
        assert_eq!(sanitize_file_name("a?b*c"), "a_b_c");
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let long = "é".repeat(200);
        let name = sanitize_file_name(&long);
        assert!(name.len() <= MAX_FILE_NAME_BYTES);
        assert!(name.chars().all(|c| c == 'é'));
    }

    #[test]
    fn download_names_are_bare_and_numbered() {
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
            assert!(download_names(bad).is_none(), "{bad:?}");
        }
        for good in ["a.txt", "report (1).pdf", ".profile", "\u{fc}.bin"] {
            assert!(is_bare_name(good), "{good:?}");
        }
        assert_eq!(numbered_name("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered_name(".profile", 1), ".profile (1)");
        assert_eq!(numbered_name("README", 3), "README (3)");
        let names: Vec<String> = download_names("x.txt").unwrap().take(3).collect();
        assert_eq!(names, ["x.txt", "x (1).txt", "x (2).txt"]);
        assert_eq!(download_names("x").unwrap().count(), 10_000);
        // A name of 255 bytes has no room for a suffix: only itself is offered.
        let long = "a".repeat(255);
        assert_eq!(download_names(&long).unwrap().count(), 1);
    }
}
