//! Any text as a rule file: rules or positioned errors; the rules that load are compiled and
//! evaluated over a small report, and their findings rendered.
#![no_main]

use orgaudit::rules::RuleSet;

const REPORT: &[u8] = include_bytes!("../../examples/acme-users-groups.json");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut set = RuleSet::new();
    if set.add_source("fuzz.yaml", text).is_err() {
        return;
    }
    let Ok(compiled) = set.compile() else {
        return;
    };
    let loaded = orgaudit::source::from_bytes(REPORT, "acme.json").expect("the example loads");
    let now = "2026-11-29T00:00:00Z".parse().expect("a time");
    let report = orgaudit::audit_compiled(&loaded, &compiled, now);
    let mut out = Vec::new();
    let _ = orgaudit::render::render(
        &report,
        orgaudit::render::Format::Text,
        &Default::default(),
        &mut out,
    );
});
