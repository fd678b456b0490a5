//! The built-in rule pack, embedded in the binary from `rules/`.

/// `(file name, text)` of every built-in rule file, in name order.
pub(super) static FILES: &[(&str, &str)] = &[
    (
        "added-to-watched-group.yaml",
        include_str!("../../rules/added-to-watched-group.yaml"),
    ),
    (
        "disabled-user-in-groups.yaml",
        include_str!("../../rules/disabled-user-in-groups.yaml"),
    ),
    (
        "disabled-user-lingering.yaml",
        include_str!("../../rules/disabled-user-lingering.yaml"),
    ),
    (
        "duplicate-email.yaml",
        include_str!("../../rules/duplicate-email.yaml"),
    ),
    (
        "external-email-domain.yaml",
        include_str!("../../rules/external-email-domain.yaml"),
    ),
    (
        "group-without-active-members.yaml",
        include_str!("../../rules/group-without-active-members.yaml"),
    ),
    (
        "never-signed-in.yaml",
        include_str!("../../rules/never-signed-in.yaml"),
    ),
    ("new-owner.yaml", include_str!("../../rules/new-owner.yaml")),
    (
        "no-active-owner.yaml",
        include_str!("../../rules/no-active-owner.yaml"),
    ),
    (
        "owner-sso-bypass.yaml",
        include_str!("../../rules/owner-sso-bypass.yaml"),
    ),
    (
        "sign-in-before-creation.yaml",
        include_str!("../../rules/sign-in-before-creation.yaml"),
    ),
    (
        "sso-bypass-turned-on.yaml",
        include_str!("../../rules/sso-bypass-turned-on.yaml"),
    ),
    (
        "sso-bypass.yaml",
        include_str!("../../rules/sso-bypass.yaml"),
    ),
    (
        "stale-sign-in.yaml",
        include_str!("../../rules/stale-sign-in.yaml"),
    ),
    (
        "ungrouped-user.yaml",
        include_str!("../../rules/ungrouped-user.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_rules_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml") && !n.ends_with(".test.yaml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = super::FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            on_disk, embedded,
            "add new rule files to src/rules/builtin.rs"
        );
    }

    #[test]
    fn the_pack_loads_and_each_file_is_named_by_its_rule() {
        let set = super::super::RuleSet::builtin();
        assert_eq!(set.rules().len(), super::FILES.len());
        for rule in set.rules() {
            assert_eq!(rule.origin.file, format!("builtin:{}.yaml", rule.id));
        }
    }
}
