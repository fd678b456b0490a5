//! Bad input never panics: every prefix and many byte-level mutations of the example reports and
//! rule files must give a result or an error, and every error must name the origin.

use orgaudit::rules::RuleSet;
use orgaudit::source;

fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    [
        "acme-users-groups.json",
        "acme-users-groups.csv",
        "acme-users-groups-memberships.csv",
    ]
    .iter()
    .map(|n| (n.to_string(), std::fs::read(format!("{dir}/{n}")).unwrap()))
    .collect()
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn check(name: &str, bytes: &[u8]) {
    if let Err(e) = source::parse(bytes, name) {
        assert!(e.to_string().starts_with(name), "{e}");
    }
}

#[test]
fn every_prefix_of_the_examples() {
    for (name, bytes) in examples() {
        for end in 0..bytes.len() {
            check(&name, &bytes[..end]);
        }
    }
}

#[test]
fn byte_mutations_of_the_examples() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let specials = b"\x00\xff\"\\,;\n\r{}[]:-T Z";
    for (name, bytes) in examples() {
        for _ in 0..1500 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len());
                match rng.below(3) {
                    0 => b[at] = specials[rng.below(specials.len())],
                    1 => {
                        b.remove(at);
                    }
                    _ => b.insert(at, rng.next() as u8),
                }
            }
            check(&name, &b);
        }
    }
}

#[test]
fn every_prefix_of_a_rule_file() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rules/stale-sign-in.yaml"
    ))
    .unwrap();
    for (end, _) in text.char_indices() {
        let mut set = RuleSet::new();
        if let Err(e) = set.add_source("r.yaml", &text[..end]) {
            for err in &e.0 {
                assert_eq!(err.file.as_deref(), Some("r.yaml"), "{err}");
            }
        }
    }
}

mod common;

/// YAML nested 100,000 levels deep in block style, in every file orgaudit reads as YAML (and
/// 60,000 in `--set`, the most one argument holds): an error naming the limit, never an abort.
#[test]
fn deep_yaml_nesting_is_an_error_everywhere() {
    use common::{example, run};
    let deep = |indent: usize| format!("\n{}{}1\n", " ".repeat(indent), "- ".repeat(100_000));
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let when = write(
        "when.yaml",
        format!(
            "id: a\ntitle: A\nseverity: low\nscope: user\nwhen:{}",
            deep(0)
        ),
    );
    let params = write(
        "params.yaml",
        format!(
            "id: a\ntitle: A\nseverity: low\nscope: user\nparams:\n  x:{}when: {{field: active, equals: true}}\n",
            deep(2)
        ),
    );
    let config = write(
        "config.yaml",
        format!("rules:\n  params:\n    a.b:{}", deep(4)),
    );
    let waivers = write("waivers.yaml", format!("waivers:{}", deep(0)));
    let tests = write(
        "deep.test.yaml",
        format!("rules: [when.yaml]\ntests:{}", deep(0)),
    );
    let input = example("acme-users-groups.json");
    let input = input.to_str().unwrap();
    let set = format!("sso-bypass.x={}1", "- ".repeat(60_000));
    let runs = [
        run(&["rules", "validate", &when]),
        run(&["rules", "validate", &params]),
        run(&["config", "check", "--config", &config]),
        run(&["audit", "-i", input, "--waivers", &waivers]),
        run(&["rules", "test", &tests]),
        run(&["audit", "-i", input, "--set", &set]),
    ];
    for r in runs {
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("nested deeper than 255 levels"),
            "{}",
            r.stderr
        );
    }
}
