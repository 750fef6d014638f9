//! Splitting plaintext into RSA-OAEP-sized pieces (socp-1.3.md §1.1: at most
//! 446 bytes per RSA-4096/SHA-256 block).

use crate::crypto::rsa::OAEP_MAX_PLAINTEXT;

/// Bytes of plaintext per encrypted piece or file chunk.
pub const PIECE_BYTES: usize = OAEP_MAX_PLAINTEXT;

/// Splits `text` into pieces of at most `max` bytes, never inside a UTF-8
/// character, so each piece is valid UTF-8 on its own. An empty text gives one
/// empty piece. With `max` < 4 a wide character gets a piece of its own.
#[must_use]
pub fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(text.len() / max.max(1) + 1);
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = max.min(rest.len());
        while end > 0 && !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // One character wider than `max`: keep it whole.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(end);
        pieces.push(piece);
        rest = tail;
    }
    if pieces.is_empty() {
        pieces.push("");
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_splits_at_the_limit() {
        let text = "a".repeat(PIECE_BYTES * 2 + 1);
        let pieces = split_utf8(&text, PIECE_BYTES);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [446, 446, 1]
        );
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn never_splits_a_four_byte_char_at_the_boundary() {
        // 444 ASCII bytes, then a 4-byte char straddling 446: it moves whole.
        let text = format!("{}😀tail", "a".repeat(444));
        let pieces = split_utf8(&text, PIECE_BYTES);
        assert_eq!(pieces[0].len(), 444);
        assert_eq!(pieces[1], "😀tail");
        // Exactly fitting: 442 + 4 = 446.
        let text = format!("{}😀x", "a".repeat(442));
        let pieces = split_utf8(&text, PIECE_BYTES);
        assert_eq!(pieces[0].len(), 446);
        assert_eq!(pieces[1], "x");
        for shift in 0..4 {
            let text = format!("{}{}", "b".repeat(shift), "😀é中".repeat(200));
            let pieces = split_utf8(&text, PIECE_BYTES);
            assert!(
                pieces
                    .iter()
                    .all(|p| p.len() <= PIECE_BYTES && !p.is_empty())
            );
            assert_eq!(pieces.concat(), text);
        }
    }

    #[test]
    fn empty_and_tiny_limits() {
        assert_eq!(split_utf8("", PIECE_BYTES), [""]);
        assert_eq!(split_utf8("é😀", 1), ["é", "😀"]);
    }
}
