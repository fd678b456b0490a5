//! Any report that loads, audited with the built-in pack and rendered in every format: the
//! renderers take whatever the values hold, never panic, and the text output holds no raw
//! control character.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(loaded) = orgaudit::source::from_bytes(data, "fuzz.json") else {
        return;
    };
    let now = "2026-11-29T00:00:00Z".parse().expect("a time");
    let Ok(report) = orgaudit::audit(&loaded, &orgaudit::rules::RuleSet::builtin(), now) else {
        return;
    };
    let mut out = Vec::new();
    for format in orgaudit::render::Format::ALL {
        out.clear();
        orgaudit::render::render(&report, format, &Default::default(), &mut out)
            .expect("renders into memory");
        if format == orgaudit::render::Format::Text {
            let text = String::from_utf8_lossy(&out);
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "a control character reached the text output"
            );
        }
    }
});
