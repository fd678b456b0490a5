//! Any bytes as a history's compact snapshot: a report or an error naming the origin, never a
//! panic; a report read back writes and reads again to the same report.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match orgaudit::source::snapshot::parse(data, "fuzz.snapshot") {
        Err(e) => assert!(e.starts_with("fuzz.snapshot"), "{e}"),
        Ok(report) => {
            let mut out = Vec::new();
            orgaudit::source::snapshot::write(&report, &mut out).unwrap();
            let again = orgaudit::source::snapshot::parse(&out, "again").unwrap();
            assert_eq!(again.users.len(), report.users.len());
        }
    }
});
