//! Any text as a configuration file: settings or positioned errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = orgaudit::config::parse("fuzz.yaml", text);
    }
});
