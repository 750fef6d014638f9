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
}
