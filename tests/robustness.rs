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
