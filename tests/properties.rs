//! Property tests of every reader (the fuzz targets' counterparts in the normal test run): any
//! input gives a result or an error that names its origin, never a panic; and a report written
//! as JSON and as CSV reads the same.

use orgaudit::rules::RuleSet;
use orgaudit::source;
use proptest::prelude::*;

/// Text that looks like YAML: keys, lists, flow collections, quotes, tags, deep indentation.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("id: a\n".to_string()),
        Just("title: T\n".to_string()),
        Just("severity: low\n".to_string()),
        Just("scope: user\n".to_string()),
        Just("when:\n".to_string()),
        Just("  - ".to_string()),
        Just("- ".to_string()),
        Just("{field: active, equals: true}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("!!str ".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("'q".to_string()),
        Just("\"\\u".to_string()),
        Just("message: \"{{ user.email }}\"\n".to_string()),
        Just("waivers:\n".to_string()),
        Just("rules:\n".to_string()),
        Just("  ".to_string()),
        Just("\n".to_string()),
        Just(": ".to_string()),
        "[a-z_]{1,8}".prop_map(|s| s),
        any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn reports_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(e) = source::parse(&data, "p.report") {
            prop_assert!(e.to_string().starts_with("p.report"), "{}", e);
        }
    }

    #[test]
    fn json_like_reports_never_panic(s in "[\\[\\]{}\",:a-z0-9 \\n_-]{0,400}") {
        let text = format!("{{\"data\": [{s}");
        if let Err(e) = source::parse(text.as_bytes(), "p.json") {
            prop_assert!(e.to_string().starts_with("p.json"), "{}", e);
        }
    }

    #[test]
    fn rule_files_never_panic(text in yamlish()) {
        let mut set = RuleSet::new();
        if let Err(e) = set.add_source("p.yaml", &text) {
            for err in e.0 {
                prop_assert_eq!(err.file.as_deref(), Some("p.yaml"));
            }
        }
    }

    #[test]
    fn configurations_never_panic(text in yamlish()) {
        if let Err(e) = orgaudit::config::parse("p.yaml", &text) {
            prop_assert!(e.to_string().starts_with("p.yaml"), "{}", e);
        }
    }

    #[test]
    fn waivers_never_panic(text in yamlish(), max in any::<u32>()) {
        let now = "2026-11-29T00:00:00Z".parse().unwrap();
        if let Err(e) = orgaudit::waivers::parse("p.yaml", &text, now, max) {
            prop_assert!(e.to_string().starts_with("p.yaml"), "{}", e);
        }
    }

    #[test]
    fn baselines_never_panic(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        if let Err(e) = orgaudit::baseline::parse(&data, "p.json") {
            prop_assert!(e.to_string().starts_with("p.json"), "{}", e);
        }
    }

    /// Users written as JSON and as CSV (one row per user) give the same report.
    #[test]
    fn json_and_csv_read_the_same(users in proptest::collection::vec(
        ("[a-z0-9]{1,6}", "[a-zA-Z0-9.]{1,8}@[a-z]{1,5}\\.example", 0..3usize, any::<bool>(),
         proptest::option::of(0..1000i64), proptest::collection::vec("[A-Za-z][A-Za-z ]{0,4}[A-Za-z]", 0..3)),
        1..12)) {
        let status = ["enabled", "disabled", "blocked"];
        let mut json = Vec::new();
        let mut csv = String::from("id,record_type,email,user_status,organization_user_bypasses_sso,created_at,last_sign_in_at,groups\n");
        for (id, email, st, bypass, last, groups) in &users {
            let last_s = last.map(|d| format!("2026-01-{:02}T00:00:00Z", 1 + d % 28));
            let mut gs: Vec<String> = groups.clone();
            gs.dedup();
            json.push(serde_json::json!({
                "id": id, "record_type": "organization_sub_user", "email": email,
                "user_status": status[*st], "organization_user_bypasses_sso": bypass,
                "created_at": "2024-01-01T00:00:00Z", "last_sign_in_at": last_s,
                "groups": gs.iter().map(|g| serde_json::json!({"id": g, "name": g})).collect::<Vec<_>>(),
            }));
            csv.push_str(&format!(
                "{id},organization_sub_user,{email},{},{bypass},2024-01-01T00:00:00Z,{},{}\n",
                status[*st],
                last_s.clone().unwrap_or_default(),
                gs.join(";")
            ));
        }
        let from_json = source::parse(serde_json::to_string(&json).unwrap().as_bytes(), "p.json").unwrap();
        let from_csv = source::parse(csv.as_bytes(), "p.csv").unwrap();
        prop_assert_eq!(from_json.report, from_csv.report);
    }
}
