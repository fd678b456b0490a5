//! Any text as a waivers file, at any limit: waivers or positioned errors, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&limit, rest)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest) {
        let now = "2026-11-29T00:00:00Z".parse().expect("a time");
        let max = if limit == 255 { u32::MAX } else { limit as u32 };
        let _ = orgaudit::waivers::parse("fuzz.yaml", text, now, max);
    }
});
