//! Redaction of evidence. Every output (human, JSON, SARIF, JUnit, baseline) only ever sees
//! what these functions return: a short prefix and a mask, never a secret or a whole address.

use leakaudit_scanner::Address;

/// `AKIAIOSFODNN7EXAMPLE` -> `AKIA****` (keeps `keep` characters, at most half the value).
pub fn secret(value: &str, keep: usize) -> String {
    let n = value.chars().count();
    let keep = keep.min(n / 2);
    let prefix: String = value.chars().take(keep).collect();
    format!("{prefix}****")
}

/// `alice@gmail.com` -> `al***@gm***.com`: enough to recognise, not enough to contact.
pub fn address(addr: &str) -> String {
    let (local, domain) = addr.rsplit_once('@').unwrap_or((addr, ""));
    let l: String = local.chars().take(2).collect();
    let (host, tld) = match domain.rsplit_once('.') {
        Some((h, t)) => (h, t),
        None => (domain, ""),
    };
    let h: String = host.chars().take(2).collect();
    if tld.is_empty() {
        format!("{l}***@{h}***")
    } else {
        format!("{l}***@{h}***.{tld}")
    }
}

/// The first few exposed addresses, redacted, for a one-line evidence string.
pub fn address_sample<'a>(addrs: impl IntoIterator<Item = &'a Address>, max: usize) -> String {
    let mut out = Vec::new();
    let mut more = 0usize;
    for (i, a) in addrs.into_iter().enumerate() {
        if i < max {
            out.push(address(a.as_str()));
        } else {
            more += 1;
        }
    }
    let mut s = out.join(", ");
    if more > 0 {
        s.push_str(&format!(", +{more} more"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_keep_a_prefix_only() {
        assert_eq!(secret("AKIAIOSFODNN7EXAMPLE", 4), "AKIA****");
        // Short values never show more than half.
        assert_eq!(secret("abcd", 4), "ab****");
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(address("alice@gmail.com"), "al***@gm***.com");
        assert_eq!(address("x@localhost"), "x***@lo***");
        assert!(!address("alice@gmail.com").contains("alice"));
    }
}
