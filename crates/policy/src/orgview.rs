//! The organisation's view of an address, delegated to the scanner's exposure model so every
//! rule agrees with it: internal or not (subdomains of internal domains, the sender's own
//! domain unless it is a consumer provider), and which party an address belongs to.

use leakaudit_scanner::{Address, Envelope, Org};

/// Internal for this message, exactly as the exposure model decides.
pub fn is_internal(addr: &Address, env: &Envelope, org: &Org) -> bool {
    org.view(env.from.first().map(|m| &m.address))
        .is_internal(addr)
}

/// Party key: the address itself at a consumer provider, else the domain.
pub fn party(addr: &Address, org: &Org) -> String {
    org.party_key(addr).to_string()
}
