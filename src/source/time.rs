//! Timestamp formats accepted in reports. All times are UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::model::Timestamp;

/// RFC 3339, with or without fractional seconds, any offset (converted to UTC).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// In CSV: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` without an offset, taken as UTC.
pub(crate) fn parse_csv(s: &str) -> Option<Timestamp> {
    parse_rfc3339(s).or_else(|| {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .map(|n| n.and_utc())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let a = parse_rfc3339("2018-02-02T22:25:27.521Z").unwrap();
        assert_eq!(parse_rfc3339("2018-02-02T23:25:27.521+01:00"), Some(a));
        assert!(parse_rfc3339("2018-02-02T22:25:27Z").is_some());
        assert!(parse_rfc3339("2018-02-02").is_none());
        assert!(parse_rfc3339("2018-02-02 22:25:27.521").is_none());
        assert_eq!(parse_csv("2018-02-02 22:25:27.521"), Some(a));
        assert!(parse_csv("2018-02-02 22:25:27").is_some());
        assert!(parse_csv("02/02/2018").is_none());
    }
}
