//! What the binary shows on a terminal besides the outputs: progress of a fetch, errors and
//! messages on standard error, each made safe for the terminal, none of it able to panic.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use orgaudit::render;
use orgaudit::source::telnyx::FetchEvent;
use orgaudit::Error;

fn human(bytes: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Writes to standard error, ignoring a closed one: a message nobody can read is not worth a
/// panic (`eprintln!` panics when stderr's reader went away).
pub fn say(text: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(text);
}

/// Prints an error as `error:` lines (help lines indented under theirs), made safe for a
/// terminal, after clearing a progress line that a terminal may show.
pub fn report_error(e: &Error) {
    let mut text = String::new();
    if std::io::stderr().is_terminal() {
        text.push_str("\r\x1b[K");
    }
    for line in e.to_string().lines() {
        let line = render::safe::terminal(line);
        if line.starts_with("  ") {
            text.push_str(&format!("{line}\n"));
        } else {
            text.push_str(&format!("error: {line}\n"));
        }
    }
    say(format_args!("{text}"));
}

/// A download's progress: what came, of how much when the server said, and how fast.
fn downloading(bytes: u64, total: Option<u64>, elapsed: std::time::Duration) -> String {
    let rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let of = match total.filter(|t| *t > 0) {
        Some(t) => format!(" of {} ({}%)", human(t as f64), bytes.min(t) * 100 / t),
        None => String::new(),
    };
    format!(
        "downloading {}{of} ({}/s)",
        human(bytes as f64),
        human(rate)
    )
}

/// Progress on a terminal; each step with `-v`; nothing otherwise. Nothing here sees the key,
/// and what a server or the network says is made safe for the terminal.
pub fn progress(verbose: bool) -> orgaudit::FetchObserver {
    let tty = std::io::stderr().is_terminal();
    Arc::new(move |org, ev| {
        let who = org
            .map(|o| format!(" [{}]", render::safe::terminal(o)))
            .unwrap_or_default();
        let clear = if tty { "\r\x1b[K" } else { "" };
        match ev {
            FetchEvent::Attempt { n, of, url } if verbose => say(format_args!(
                "{clear}orgaudit{who}: GET {} (attempt {n} of {of})\n",
                render::safe::terminal(&url)
            )),
            FetchEvent::Response { status } if verbose => {
                say(format_args!("{clear}orgaudit{who}: HTTP {status}\n"))
            }
            FetchEvent::Retry { after, reason } if verbose || tty => say(format_args!(
                "{clear}orgaudit{who}: {}; retrying in {:.1} s\n",
                render::safe::terminal(&reason),
                after.as_secs_f64()
            )),
            FetchEvent::Body {
                bytes,
                total,
                elapsed,
            } if tty => say(format_args!(
                "{clear}orgaudit{who}: {}",
                downloading(bytes, total, elapsed)
            )),
            FetchEvent::Done { bytes, elapsed } => {
                say(format_args!("{clear}"));
                if verbose {
                    say(format_args!(
                        "orgaudit{who}: received {} in {:.1} s\n",
                        human(bytes as f64),
                        elapsed.as_secs_f64()
                    ));
                }
            }
            _ => {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::downloading;
    use std::time::Duration;

    #[test]
    fn progress_shows_a_total_when_one_is_known() {
        let second = Duration::from_secs(1);
        let with = downloading(512 * 1024, Some(2 * 1024 * 1024), second);
        assert!(with.contains(" of ") && with.contains("(25%)"), "{with}");
        let without = downloading(512 * 1024, None, second);
        assert!(
            !without.contains(" of ") && without.starts_with("downloading "),
            "{without}"
        );
    }
}
