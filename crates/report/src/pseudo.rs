//! Pseudonymisation of addresses in shared reports: `j***@g***.com#3fa2c1`. The mask keeps
//! what a reader needs to see (a person at a consumer provider, which TLD); the tag is a keyed
//! HMAC-SHA-256 prefix, so one address has one tag throughout the report (and in every report
//! made with the same key) while nobody can confirm a guessed address without the key. With no
//! key given, a random one is drawn per run: tags then only match within one report.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Shows an address in clear or pseudonymised.
#[derive(Clone)]
pub struct Pseudonymiser {
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Pseudonymiser")
            .field("show_addresses", &self.key.is_none())
            .finish()
    }
}

impl Pseudonymiser {
    /// `show` leaves addresses in clear. Otherwise `key` keys the tags (a random 32-byte key
    /// when `None`).
    pub fn new(show: bool, key: Option<&[u8]>) -> Result<Self, getrandom::Error> {
        if show {
            return Ok(Pseudonymiser { key: None });
        }
        let key = match key {
            Some(k) => k.to_vec(),
            None => {
                let mut k = vec![0u8; 32];
                getrandom::fill(&mut k)?;
                k
            }
        };
        Ok(Pseudonymiser { key: Some(key) })
    }

    /// Addresses are pseudonymised.
    pub fn active(&self) -> bool {
        self.key.is_some()
    }

    /// The address as the report shows it.
    pub fn show(&self, address: &str) -> String {
        match &self.key {
            None => address.to_owned(),
            Some(key) => format!("{}#{}", mask(address), tag(key, address)),
        }
    }
}

/// `jane.doe@gmail.com` -> `j***@g***.com`; the first character of the local part and of the
/// domain, and the last domain label, are kept.
pub fn mask(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let mut out = format!("{}***", first(local));
    if !domain.is_empty() {
        out.push('@');
        match domain.rsplit_once('.') {
            Some((rest, tld)) => {
                out.push_str(&first(rest));
                out.push_str("***.");
                out.push_str(tld);
            }
            None => {
                out.push_str(&first(domain));
                out.push_str("***");
            }
        }
    }
    out
}

fn tag(key: &[u8], address: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(address.as_bytes());
    let out = mac.finalize().into_bytes();
    out[..3].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_tags() {
        let p = Pseudonymiser::new(false, Some(b"k")).unwrap();
        let a = p.show("jane.doe@gmail.com");
        assert!(a.starts_with("j***@g***.com#"), "{a}");
        assert_eq!(a.len(), "j***@g***.com#".len() + 6);
        assert_eq!(a, p.show("jane.doe@gmail.com"), "stable within a key");
        assert_ne!(
            a,
            p.show("john.doe@gmail.com"),
            "different people, different tags"
        );
        let q = Pseudonymiser::new(false, Some(b"other")).unwrap();
        assert_ne!(a, q.show("jane.doe@gmail.com"), "the key matters");
        assert!(!a.contains("jane"));
    }

    #[test]
    fn show_addresses_is_clear() {
        let p = Pseudonymiser::new(true, None).unwrap();
        assert!(!p.active());
        assert_eq!(p.show("a@b.example"), "a@b.example");
    }

    #[test]
    fn mask_edge_cases() {
        assert_eq!(mask("a@localhost"), "a***@l***");
        assert_eq!(mask("noat"), "n***");
        assert_eq!(mask("ü@xn--exmple-cua.de"), "ü***@x***.de");
    }
}
