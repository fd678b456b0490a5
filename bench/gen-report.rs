//! A deterministic generator of realistic synthetic users groups reports, for benchmarks.
//!
//! cargo run --release --example gen-report -- --users 1000000 --seed 7 --format json > r.json
//!
//! 1 owner (active, bypassing SSO), then sub-users: 85% enabled, 10% disabled, 5% blocked; 3%
//! bypass SSO; 8% never signed in; sign-ins spread over the two years before 2026-11-29; 0 to 5
//! groups each from a pool of 300 (one group only ever given to disabled users); about 0.1%
//! duplicate emails, 1% external domains, 0.05% sign-ins before creation. Every built-in rule
//! fires except no-active-owner, which cannot fire beside an active owner that bypasses SSO.
//! The same seed gives the same bytes.

use std::io::{BufWriter, Write};

/// splitmix64: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability `p` (0 to 1).
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const NOW: i64 = 1_795_910_400; // 2026-11-29T00:00:00Z
const DAY: i64 = 86_400;
const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoe",
];

fn rfc3339(t: i64, millis: u64) -> String {
    let dt = chrono::DateTime::from_timestamp(t, (millis * 1_000_000) as u32).expect("in range");
    dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct User {
    id: String,
    owner: bool,
    email: String,
    status: &'static str,
    bypass: bool,
    created: String,
    last: Option<String>,
    groups: Vec<usize>,
}

fn group_id(g: usize) -> String {
    format!("9a1b2c3d-0000-4000-8000-{g:012x}")
}

fn group_name(g: usize) -> String {
    const TEAMS: &[&str] = &[
        "Engineering",
        "Support",
        "Sales",
        "Billing",
        "Operations",
        "Security",
    ];
    format!("{} {}", TEAMS[g % TEAMS.len()], g / TEAMS.len() + 1)
}

fn user(rng: &mut Rng, i: u64) -> User {
    let owner = i == 0;
    let status = if owner {
        "enabled"
    } else {
        match rng.below(100) {
            0..=84 => "enabled",
            85..=94 => "disabled",
            _ => "blocked",
        }
    };
    let name = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
    let domain = if rng.chance(0.01) {
        "gmail.example"
    } else {
        "acme.example"
    };
    let mut email = format!("{name}.{i}@{domain}");
    if i > 10 && rng.chance(0.001) {
        // The same person twice, written differently.
        email = format!("{}.{}@ACME.example", name.to_uppercase(), i - 1);
    }
    let created_t = NOW - 60 * DAY - rng.below(1000) as i64 * DAY - rng.below(DAY as u64) as i64;
    let last = if !owner && rng.chance(0.08) {
        None
    } else if rng.chance(0.0005) {
        Some(created_t - 3600)
    } else {
        // Spread over the two years before now, never before the account existed.
        let span = (NOW - created_t).min(730 * DAY) as u64;
        Some(NOW - rng.below(span.max(1)) as i64)
    };
    let mut groups = Vec::new();
    if status == "enabled" || rng.chance(0.9) {
        for _ in 0..rng.below(6) {
            let g = rng.below(299) as usize;
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    if status == "disabled" && rng.chance(0.01) {
        groups.push(299); // only ever disabled members
    }
    User {
        id: format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            rng.next() as u32,
            i & 0xffff,
            rng.below(4096),
            rng.below(4096),
            i
        ),
        owner,
        email,
        status,
        bypass: owner || rng.chance(0.03),
        created: rfc3339(created_t, rng.below(1000)),
        last: last.map(|t| rfc3339(t, rng.below(1000))),
        groups,
    }
}

fn main() {
    let mut users: u64 = 100_000;
    let mut seed: u64 = 7;
    let mut format = "json".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--users" => users = value().parse().expect("--users takes a number"),
            "--seed" => seed = value().parse().expect("--seed takes a number"),
            "--format" => format = value(),
            other => panic!("unknown argument {other}; use --users N --seed S --format json|csv"),
        }
    }
    let mut rng = Rng(seed);
    let out = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    match format.as_str() {
        "json" => {
            out.write_all(b"{\"data\":[").unwrap();
            for i in 0..users {
                let u = user(&mut rng, i);
                if i > 0 {
                    out.write_all(b",").unwrap();
                }
                let groups: Vec<String> = u
                    .groups
                    .iter()
                    .map(|&g| {
                        format!(
                            "{{\"id\":\"{}\",\"name\":\"{}\"}}",
                            group_id(g),
                            group_name(g)
                        )
                    })
                    .collect();
                write!(
                    out,
                    "{{\"id\":\"{}\",\"record_type\":\"{}\",\"email\":\"{}\",\"user_status\":\"{}\",\"organization_user_bypasses_sso\":{},\"created_at\":\"{}\",\"last_sign_in_at\":{},\"groups\":[{}]}}",
                    u.id,
                    if u.owner { "organization_owner" } else { "organization_sub_user" },
                    u.email,
                    u.status,
                    u.bypass,
                    u.created,
                    u.last.map_or("null".to_string(), |l| format!("\"{l}\"")),
                    groups.join(",")
                )
                .unwrap();
            }
            out.write_all(b"]}\n").unwrap();
        }
        "csv" => {
            out.write_all(b"id,record_type,email,user_status,organization_user_bypasses_sso,created_at,last_sign_in_at,groups,group_ids\n").unwrap();
            for i in 0..users {
                let u = user(&mut rng, i);
                let names: Vec<String> = u.groups.iter().map(|&g| group_name(g)).collect();
                let ids: Vec<String> = u.groups.iter().map(|&g| group_id(g)).collect();
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{}",
                    u.id,
                    if u.owner {
                        "organization_owner"
                    } else {
                        "organization_sub_user"
                    },
                    u.email,
                    u.status,
                    u.bypass,
                    u.created,
                    u.last.unwrap_or_default(),
                    names.join(";"),
                    ids.join(";")
                )
                .unwrap();
            }
        }
        other => panic!("unknown format {other}; use json or csv"),
    }
    out.flush().unwrap();
}
