//! Any bytes as a users groups report (JSON or CSV, detected): a report or an error, never a
//! panic, and every error names the origin.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = orgaudit::source::parse(data, "fuzz.report") {
        assert!(e.to_string().starts_with("fuzz.report"), "{e}");
    }
});
