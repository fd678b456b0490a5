//! The benchmarks' yardstick: what it costs only to parse a report into typed serde structs,
//! the way any Rust program would, with nothing audited. Prints the user count.
//!
//! cargo run --release --example parse-baseline -- report.json

use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
struct Group {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct User {
    id: String,
    record_type: String,
    email: String,
    user_status: String,
    #[serde(default)]
    organization_user_bypasses_sso: Option<bool>,
    created_at: String,
    last_sign_in_at: Option<String>,
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct Report {
    data: Vec<User>,
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: parse-baseline REPORT.json");
    let bytes = std::fs::read(&path).expect("readable report");
    let report: Report = serde_json::from_slice(&bytes).expect("a users groups report");
    println!("{}", report.data.len());
}
