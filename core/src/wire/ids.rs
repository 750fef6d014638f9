//! Identifier checks (socp-1.3.md §1.1: server and user ids are UUID v4).

/// Whether `id` is a UUID version 4 (RFC 9562 variant) in the canonical
/// hyphenated form `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
///
/// Hex digits may be upper or lower case: Python's `str(uuid4())` is lower
/// case, but a peer that upper-cases is still sending a UUID v4. Ids are
/// compared case-sensitively everywhere (§1.1), so this accepts the form and
/// never normalises it. The simple, braced and URN forms are refused.
#[must_use]
pub fn is_uuid_v4(id: &str) -> bool {
    const HYPHENS: [usize; 4] = [8, 13, 18, 23];
    id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| {
            (b == b'-') == HYPHENS.contains(&i) && (b == b'-' || b.is_ascii_hexdigit())
        })
        && uuid::Uuid::try_parse(id).is_ok_and(|uuid| {
            uuid.get_version_num() == 4 && uuid.get_variant() == uuid::Variant::RFC4122
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_canonical_v4_in_either_case() {
        assert!(is_uuid_v4("3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b"));
        assert!(is_uuid_v4("3F2B8C1E-9A4D-4E6F-BB2A-1C3D5E7F9A0B"));
    }

    #[test]
    fn refuses_other_versions_variants_and_forms() {
        // Version 1 and 7.
        assert!(!is_uuid_v4("3f2b8c1e-9a4d-1e6f-8b2a-1c3d5e7f9a0b"));
        assert!(!is_uuid_v4("3f2b8c1e-9a4d-7e6f-8b2a-1c3d5e7f9a0b"));
        // Variant bits 0xxx and 110x.
        assert!(!is_uuid_v4("3f2b8c1e-9a4d-4e6f-7b2a-1c3d5e7f9a0b"));
        assert!(!is_uuid_v4("3f2b8c1e-9a4d-4e6f-cb2a-1c3d5e7f9a0b"));
        // Other textual forms of the same UUID.
        assert!(!is_uuid_v4("3f2b8c1e9a4d4e6f8b2a1c3d5e7f9a0b"));
        assert!(!is_uuid_v4("{3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b}"));
        assert!(!is_uuid_v4("urn:uuid:3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b"));
        // Misplaced hyphens, non-hex, the spec's example names.
        assert!(!is_uuid_v4("3f2b8c1e9-a4d-4e6f-8b2a-1c3d5e7f9a0b"));
        assert!(!is_uuid_v4("3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0g"));
        assert!(!is_uuid_v4("Alice"));
        assert!(!is_uuid_v4(""));
    }
}
