//! Any bytes as a baseline (an earlier JSON output), applied to an audit: never a panic.
#![no_main]

const REPORT: &[u8] = include_bytes!("../../examples/acme-users-groups.json");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(baseline) = orgaudit::baseline::parse(data, "fuzz.json") else {
        return;
    };
    let loaded = orgaudit::source::from_bytes(REPORT, "acme.json").expect("the example loads");
    let now = "2026-11-29T00:00:00Z".parse().expect("a time");
    let mut report =
        orgaudit::audit(&loaded, &orgaudit::rules::RuleSet::builtin(), now).expect("audits");
    orgaudit::baseline::apply(&mut report, &baseline);
    let mut out = Vec::new();
    for format in orgaudit::render::Format::ALL {
        out.clear();
        orgaudit::render::render(&report, format, &Default::default(), &mut out)
            .expect("renders into memory");
    }
});
