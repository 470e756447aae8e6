//! The one conversion between epoch seconds and RFC 3339 text used by every output.

use chrono::{DateTime, SecondsFormat, Utc};

/// `secs` since the epoch as RFC 3339 UTC with a `Z` (`2024-01-02T03:04:05Z`); `None` when out
/// of chrono's range.
pub fn rfc3339(secs: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp(secs, 0).map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Parses RFC 3339 text (any offset) into epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_709_251_199).unwrap(), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(-1).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), None);
    }

    #[test]
    fn round_trip_and_offsets() {
        for t in [0, 1_572_598_800, -86_400] {
            assert_eq!(parse_rfc3339(&rfc3339(t).unwrap()), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2019-11-01T10:00:00+01:00"),
            Some(1_572_598_800)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
