//! Numbers and times as the report's pages write them (shared by the summary, the HTML page,
//! the breach record and campaigns.csv; depends on nothing else of the crate).

/// `1234567` -> `1,234,567`.
pub fn thousands(n: impl Into<u128>) -> String {
    let s = n.into().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// RFC 3339 UTC with seconds (`2019-11-01T09:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    leakaudit_scanner::time::rfc3339(secs).unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1000u64), "1,000");
        assert_eq!(thousands(1234567u64), "1,234,567");
    }

    #[test]
    fn rfc3339_format() {
        assert_eq!(rfc3339(1_572_598_800), "2019-11-01T09:00:00Z");
    }
}
