//! Reset tokens: a public selector (16 random bytes, hex) to find the row, and a secret of
//! 32 bytes from the OS CSPRNG (getrandom), stored only as an argon2id PHC hash. The secret
//! exists in memory only between issue and the notification write; it is never logged.

use crate::error::{Error, Result};
use crate::store::{AccountStore, TokenInfo};
use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};

/// argon2id cost. The OWASP minimum (m=19456 KiB, t=2, p=1) is the floor: settings can only go
/// upward from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

impl Argon2Settings {
    pub const OWASP_MIN: Argon2Settings = Argon2Settings {
        m_kib: 19456,
        t: 2,
        p: 1,
    };

    /// Validated settings: each parameter at or above the OWASP minimum.
    pub fn new(m_kib: u32, t: u32, p: u32) -> Result<Argon2Settings> {
        let min = Self::OWASP_MIN;
        if m_kib < min.m_kib || t < min.t || p < min.p {
            return Err(Error::Setting(format!(
                "argon2id m={m_kib} KiB, t={t}, p={p} is below the OWASP minimum (m={}, t={}, p={}); only higher costs are allowed",
                min.m_kib, min.t, min.p
            )));
        }
        Ok(Argon2Settings { m_kib, t, p })
    }

    fn hasher(&self) -> Result<Argon2<'static>> {
        let params = Params::new(self.m_kib, self.t, self.p, None)
            .map_err(|e| Error::Setting(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Self::OWASP_MIN
    }
}

/// A freshly issued token. `Debug` never shows the secret.
pub struct IssuedToken {
    pub selector: String,
    secret: String,
    /// argon2id PHC string of the secret.
    pub token_hash: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("selector", &self.selector)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl IssuedToken {
    /// The plaintext secret (hex): for the notification only.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| Error::Crypto(format!("OS random generator: {e}")))?;
    Ok(b)
}

/// Issues one token: random selector and secret, argon2id hash with a random salt.
pub fn issue(settings: &Argon2Settings) -> Result<IssuedToken> {
    let secret = hex::encode(random::<32>()?);
    let salt = random::<16>()?;
    let hash = settings
        .hasher()?
        .hash_password_with_salt(secret.as_bytes(), &salt)
        .map_err(|e| Error::Crypto(format!("argon2id: {e}")))?
        .to_string();
    Ok(IssuedToken {
        selector: hex::encode(random::<16>()?),
        secret,
        token_hash: hash,
    })
}

/// Whether `secret` matches a stored PHC hash (parameters are read from the hash).
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(secret.as_bytes(), phc)
        .is_ok()
}

/// Redeems a token: the secret must match and the token be live; it is then marked used
/// (single use). Returns the account id.
pub fn redeem(
    store: &mut dyn AccountStore,
    selector: &str,
    secret: &str,
    now: i64,
) -> Result<Option<String>> {
    let Some(info): Option<TokenInfo> = store.token_by_selector(selector)? else {
        return Ok(None);
    };
    if !info.is_live(now) || !verify_secret(secret, &info.token_hash) {
        return Ok(None);
    }
    if store.mark_token_used(selector, now)? {
        Ok(Some(info.account_id))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_enforced() {
        assert!(Argon2Settings::new(19455, 2, 1).is_err());
        assert!(Argon2Settings::new(19456, 1, 1).is_err());
        assert!(Argon2Settings::new(65536, 3, 2).is_ok());
    }

    #[test]
    fn issue_and_verify() {
        let t = issue(&Argon2Settings::OWASP_MIN).unwrap();
        assert_eq!(t.secret().len(), 64);
        assert!(t.token_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_secret(t.secret(), &t.token_hash));
        assert!(!verify_secret(&"0".repeat(64), &t.token_hash));
        assert!(!format!("{t:?}").contains(t.secret()));
        let u = issue(&Argon2Settings::OWASP_MIN).unwrap();
        assert_ne!(t.secret(), u.secret());
        assert_ne!(t.selector, u.selector);
    }
}
