#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(finding) = socp_core::fuzzing::upgrade(data) {
        panic!("{finding}");
    }
});
