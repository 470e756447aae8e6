//! The exposure model: which recipients a message shows to which other parties.
//!
//! Rules (see also docs/architecture/addresses-headers-exposure.md):
//! - **Internal** addresses: at a domain listed in [`Org::internal_domains`] or a subdomain of
//!   one, and (when [`Org::sender_domain_internal`]) at the From domain of the message or a
//!   subdomain of it. Exception: when the From domain is a consumer provider, only the sender's
//!   own address is internal, never the whole provider (a mass mail sent from a gmail.com
//!   account must not make every gmail.com recipient "internal").
//! - **Parties** of external addresses: at a consumer provider ([`Org::consumer_domains`],
//!   exact domain match) each address is its own party (key: the address); at any other
//!   domain all addresses form one party (key: the domain, exact: `eu.acme.com` and
//!   `acme.com` are two parties, since we ship no public-suffix list).
//! - **Visible** recipients: To, Cc, Resent-To, Resent-Cc, and Bcc/Resent-Bcc only in a
//!   transmitted copy ([`is_transmitted`]: forced by [`ArchiveKind::Transmitted`] /
//!   [`ArchiveKind::Sent`], else per message from its transit headers); a Bcc header in a
//!   sender's Sent copy is normal.
//! - **Viewers**: every recipient in every field (a Bcc recipient sees To and Cc).
//! - An external visible address is **exposed** when a viewer belongs to another external
//!   party; its audience is the number of distinct external parties among all recipients
//!   other than its own. Internal recipients are never audience and never exposed.
//!
//! Linear in the number of recipients (hash sets), so a 20,000-address header is cheap.

pub use crate::compact::{Fields, PartyKey};
use crate::model::{Address, Envelope, HeaderFacts};
use serde::{Deserialize, Serialize};
// foldhash, not SipHash: these per-message sets are keyed by addresses from the archive,
// and SipHash was ~5% of the scan's CPU time. (No HashDoS concern: one message's sets.)
use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeSet;

/// Whether a Bcc header in the archive is itself a leak.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    /// Decided per message ([`is_transmitted`]): a copy with transit traces (Received,
    /// Delivered-To, X-Original-To, Return-Path) that still carries a Bcc header leaked it;
    /// a sender's copy without them is normal. Right for mixed archives and unknown exports.
    #[default]
    Auto,
    /// What recipients actually received (MTA journal, provider export): a Bcc header leaked.
    Transmitted,
    /// The sender's own "Sent" copies: a Bcc header there is normal.
    Sent,
}

/// Whether this copy of a message went through an MTA (Received, Delivered-To, X-Original-To
/// or Return-Path present): only such a copy can have leaked a Bcc header to its recipients.
pub fn has_transit_traces(f: &HeaderFacts) -> bool {
    f.received > 0 || f.delivered_to || f.x_original_to || f.return_path
}

/// Whether Bcc headers of `env` were visible to its recipients under `kind`.
pub fn is_transmitted(env: &Envelope, kind: ArchiveKind) -> bool {
    match kind {
        ArchiveKind::Transmitted => true,
        ArchiveKind::Sent => false,
        ArchiveKind::Auto => has_transit_traces(&env.facts),
    }
}

/// The organisation's view: who is internal, which domains are consumer providers.
#[derive(Debug, Clone, Default)]
pub struct Org {
    /// Lowercase, IDNA-ASCII domains of the organisation (in addition to the sender's domain
    /// when `sender_domain_internal` is set).
    pub internal_domains: BTreeSet<String>,
    /// Consumer mail providers (gmail.com, qq.com...): every address there is its own party.
    /// A hash set: several lookups per address (a tree's string comparisons were ~3% of a
    /// scan's CPU).
    pub consumer_domains: foldhash::HashSet<String>,
    /// Treat the From domain of each message as internal (default true).
    pub sender_domain_internal: bool,
    pub archive_kind: ArchiveKind,
}

/// One external address that the message shows to at least one other external party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposedAddress {
    pub address: Address,
    /// Fields it was visible in (sorted, deduplicated).
    pub fields: Fields,
    /// Party key of the address itself (the address for consumer domains, else the domain).
    pub party: PartyKey,
    /// Number of distinct external parties other than its own that received the message.
    pub audience: usize,
    /// The address was listed as a member of a named group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_group: bool,
    /// For an address in the content, not a header: where (`body`, `attachment:NAME`,
    /// `forwarded`). One label shared by every address of a part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<std::sync::Arc<str>>,
}

/// The exposure analysis of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// External addresses exposed to someone, in first-seen order, one entry per address.
    pub exposed: Vec<ExposedAddress>,
    /// Distinct external party keys among the visible recipients.
    pub visible_parties: usize,
    /// Distinct external party keys among all recipients (the possible audience), sorted.
    pub audience_parties: Vec<PartyKey>,
    /// External envelope recipients (a journal report's Bcc, expanded or forwarded
    /// recipients) who received an exposing message without being shown in it: they saw the
    /// exposed addresses. In envelope order, one entry per address; empty when nothing is
    /// exposed or the archive records no envelope.
    pub saw_others: Vec<Address>,
}

impl Exposure {
    pub fn exposes(&self) -> bool {
        !self.exposed.is_empty()
    }
}

/// The shipped consumer-provider list (`rules/consumer-domains.txt`), compiled in.
pub const CONSUMER_DOMAINS_TXT: &str = include_str!("../../../rules/consumer-domains.txt");

/// Parses a domain list: one domain per line, `#` comments, blank lines ignored; each domain
/// canonicalised (lowercase IDNA ASCII). Lines that are not domains are returned as errors
/// with their 1-based line number.
pub fn parse_domain_list(text: &str) -> (BTreeSet<String>, Vec<(usize, String)>) {
    let mut set = BTreeSet::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match crate::address::canonical_domain(line) {
            Some(d) => {
                set.insert(d);
            }
            None => bad.push((i + 1, line.to_owned())),
        }
    }
    (set, bad)
}

impl Org {
    /// The shipped defaults: consumer providers from `rules/consumer-domains.txt`, the From
    /// domain internal, archive kind auto, no extra internal domains.
    pub fn with_defaults() -> Org {
        Org {
            internal_domains: BTreeSet::new(),
            consumer_domains: parse_domain_list(CONSUMER_DOMAINS_TXT)
                .0
                .into_iter()
                .collect(),
            sender_domain_internal: true,
            archive_kind: ArchiveKind::Auto,
        }
    }

    /// Adds an internal domain in canonical form; `false` if it is not a valid domain.
    pub fn add_internal_domain(&mut self, domain: &str) -> bool {
        match crate::address::canonical_domain(domain) {
            Some(d) => {
                self.internal_domains.insert(d);
                true
            }
            None => false,
        }
    }

    /// Adds a consumer-provider domain in canonical form; `false` if it is not a valid domain.
    pub fn add_consumer_domain(&mut self, domain: &str) -> bool {
        match crate::address::canonical_domain(domain) {
            Some(d) => {
                self.consumer_domains.insert(d);
                true
            }
            None => false,
        }
    }

    /// Whether `domain` (canonical) is a consumer provider.
    pub fn is_consumer(&self, domain: &str) -> bool {
        self.consumer_domains.contains(domain)
    }

    /// Whether `domain` (canonical) is one of the organisation's domains or a subdomain of one.
    pub fn is_internal_domain(&self, domain: &str) -> bool {
        !self.internal_domains.is_empty()
            && suffixes(domain).any(|s| self.internal_domains.contains(s))
    }

    /// Party key of an external address: the address at a consumer provider, else the domain.
    pub fn party_key<'a>(&self, address: &'a Address) -> &'a str {
        if self.is_consumer(address.domain()) {
            address.as_str()
        } else {
            address.domain()
        }
    }

    /// The per-message view: who is internal for a message from `sender`.
    pub fn view<'a>(&'a self, sender: Option<&'a Address>) -> OrgView<'a> {
        let (sender_domain, sender_address) = match sender {
            Some(a) if self.sender_domain_internal => {
                if self.is_consumer(a.domain()) {
                    (None, Some(a))
                } else {
                    (Some(a.domain()), Some(a))
                }
            }
            _ => (None, None),
        };
        OrgView {
            org: self,
            sender_domain,
            sender_address,
        }
    }
}

/// `a.b.c` -> `a.b.c`, `b.c`, `c`.
fn suffixes(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
}

/// [`Org`] applied to one message (its sender known).
#[derive(Debug, Clone, Copy)]
pub struct OrgView<'a> {
    org: &'a Org,
    /// Internal because it is the (non-consumer) From domain.
    sender_domain: Option<&'a str>,
    /// The sender's own address (internal even at a consumer provider).
    sender_address: Option<&'a Address>,
}

impl OrgView<'_> {
    /// Whether `address` belongs to the organisation for this message.
    pub fn is_internal(&self, address: &Address) -> bool {
        self.sender_address == Some(address) || self.is_internal_domain(address.domain())
    }

    /// Whether every address at `domain` (canonical) is internal for this message.
    pub fn is_internal_domain(&self, domain: &str) -> bool {
        if let Some(sd) = self.sender_domain {
            if suffixes(domain).any(|s| s == sd) {
                return true;
            }
        }
        self.org.is_internal_domain(domain)
    }
}

/// Whether `party`, the [`Org::party_key`] of `address`, is the address itself (a consumer
/// provider's address) rather than its domain, which is always shorter: no second lookup.
pub fn party_is_address(party: &str, address: &Address) -> bool {
    party.len() == address.as_str().len()
}

/// The shared key of `party` (the party key of `address`): a consumer address's key reuses the
/// address's own string, a domain is a string of its own.
fn shared_party_key(party: &str, address: &Address) -> PartyKey {
    if party_is_address(party, address) {
        PartyKey::from(address.shared())
    } else {
        PartyKey::from(party)
    }
}

/// Computes which external recipients `env` shows to which other external parties.
pub fn analyse(env: &Envelope, org: &Org) -> Exposure {
    match (&env.recipients[..], &env.envelope_recipients[..]) {
        ([], []) => Exposure::default(),
        ([only], []) => analyse_one(env, org, only),
        _ => analyse_list(env, org),
    }
}

/// [`analyse`] of a message with one recipient and no envelope list (most of a journal): one
/// party at most, so nobody is exposed; what the general pass gives without its maps and
/// lists (five allocations per message). Property-tested against [`analyse_list`].
fn analyse_one(env: &Envelope, org: &Org, only: &crate::model::Recipient) -> Exposure {
    let view = org.view(env.from.first().map(|m| &m.address));
    let addr = &only.mailbox.address;
    if view.is_internal(addr) {
        return Exposure::default();
    }
    let key = shared_party_key(org.party_key(addr), addr);
    let visible = is_transmitted(env, org.archive_kind) || !only.field.is_blind();
    Exposure {
        exposed: Vec::new(),
        visible_parties: usize::from(visible),
        audience_parties: vec![key],
        saw_others: Vec::new(),
    }
}

fn analyse_list(env: &Envelope, org: &Org) -> Exposure {
    let view = org.view(env.from.first().map(|m| &m.address));
    let transmitted = is_transmitted(env, org.archive_kind);

    // Pass 1: external party keys among all recipients (the possible audience), and the
    // visible external addresses in first-seen order with their fields and party. Each map
    // holds an index into its vector: pass 2 then reads the vectors with no lookup (three
    // hash lookups and a second party key per exposed address were a fifth of the gate's
    // time on a mass mail).
    // A party key is made once per party (`shared_party_key`: a domain is allocated once
    // however many recipients it has). One map for the audience and visibility both: a
    // 1,000,000-party message held two.
    // Sized for a mass mail's list up front (no rehash series), not for a million parties that
    // may be one domain.
    let n = env.recipients.len().min(1 << 16);
    let mut parties: HashMap<&str, usize> = HashMap::with_capacity(n);
    // (party key, visible), by first appearance.
    let mut party_list: Vec<(PartyKey, bool)> = Vec::with_capacity(n);
    let mut visible_parties = 0;
    // Visible external addresses, first seen first: (address, fields, in a group, party).
    let mut order: Vec<(&Address, Fields, bool, usize)> = Vec::with_capacity(n);
    // address -> its index in `order`
    let mut seen: HashMap<&Address, usize> = HashMap::with_capacity(n);
    let mut internal_cache: HashMap<&str, bool> = HashMap::new();
    // External envelope recipients, for `saw_others`.
    let mut envelope_only: Vec<&Address> = Vec::new();
    // Envelope recipients (a journal report's list) received the message without being shown
    // in it: audience, never visible. A Bcc recipient of a message showing its To list saw
    // those addresses.
    let headers = env
        .recipients
        .iter()
        .map(|r| (&r.mailbox.address, Some(r.field), r.group.is_some()));
    let envelope = env
        .envelope_recipients
        .iter()
        .map(|r| (&r.address, None, false));
    for (addr, field, in_group) in headers.chain(envelope) {
        // An envelope recipient a header showed (the headers come first) adds nothing: its
        // party is counted, and it saw others while shown itself.
        if field.is_none() && seen.contains_key(addr) {
            continue;
        }
        let internal = view.sender_address == Some(addr)
            || *internal_cache
                .entry(addr.domain())
                .or_insert_with(|| view.is_internal_domain(addr.domain()));
        if internal {
            continue;
        }
        let party = org.party_key(addr);
        let slot = *parties.entry(party).or_insert_with(|| {
            party_list.push((shared_party_key(party, addr), false));
            party_list.len() - 1
        });
        let Some(field) = field else {
            envelope_only.push(addr);
            continue;
        };
        let visible = transmitted || !field.is_blind();
        if !visible {
            continue;
        }
        if !party_list[slot].1 {
            party_list[slot].1 = true;
            visible_parties += 1;
        }
        let i = *seen.entry(addr).or_insert_with(|| {
            order.push((addr, Fields::default(), false, slot));
            order.len() - 1
        });
        order[i].1.insert(field);
        order[i].2 |= in_group;
    }
    drop(parties);

    // Pass 2: every visible external address is seen by the other external parties.
    let others = party_list.len().saturating_sub(1);
    let exposed = if others == 0 {
        Vec::new()
    } else {
        order
            .into_iter()
            .map(|(addr, fields, in_group, slot)| ExposedAddress {
                address: addr.clone(),
                fields,
                party: party_list[slot].0.clone(),
                audience: others,
                in_group,
                source: None,
            })
            .collect()
    };
    // Who saw them without being shown: external envelope recipients no header made visible.
    let mut saw_others: Vec<Address> = Vec::new();
    if !exposed.is_empty() {
        let mut listed: std::collections::HashSet<&Address> = Default::default();
        for a in envelope_only {
            if !seen.contains_key(a) && listed.insert(a) {
                saw_others.push(a.clone());
            }
        }
    }
    drop(seen);
    let audience_parties = sorted_keys(party_list.into_iter().map(|(k, _)| k).collect());
    Exposure {
        exposed,
        visible_parties,
        audience_parties,
        saw_others,
    }
}

/// Distinct party keys in `sort_unstable` order, mostly compared on their first eight bytes:
/// a comparison of two keys reads both from the heap, and sorting a mass mail's ~1,000 keys
/// that way was ~2% of a scan's instructions.
fn sorted_keys(mut keys: Vec<PartyKey>) -> Vec<PartyKey> {
    if keys.len() < 32 {
        keys.sort_unstable();
        return keys;
    }
    // Big-endian, zero-padded: ordered as the keys are, up to ties that the keys settle.
    let prefix = |k: &str| {
        let mut p = [0u8; 8];
        let n = k.len().min(8);
        p[..n].copy_from_slice(&k.as_bytes()[..n]);
        u64::from_be_bytes(p)
    };
    let mut order: Vec<(u64, usize)> = keys.iter().map(|k| prefix(k)).zip(0..).collect();
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| keys[a.1].cmp(&keys[b.1])));
    // Shared strings: a clone is a count.
    order.iter().map(|&(_, i)| keys[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::parse_envelope;
    use crate::model::Field;

    fn env(s: &str) -> Envelope {
        parse_envelope(s.as_bytes()).unwrap()
    }

    fn run(s: &str) -> Exposure {
        analyse(&env(s), &Org::with_defaults())
    }

    fn exposed(x: &Exposure) -> Vec<(&str, usize)> {
        x.exposed
            .iter()
            .map(|e| (e.address.as_str(), e.audience))
            .collect()
    }

    /// The exposure refers to the envelope's strings (and a consumer address is its own party
    /// key): a 1,000,000-address message once held every address four times over.
    #[test]
    fn regression_exposure_copied_every_address_string() {
        let e = env("From: shop@shop.example\nTo: a@gmail.com, b@acme.example, c@acme.example\n\n");
        let x = run_env(&e);
        assert_eq!(x.exposed.len(), 3);
        for (ex, r) in x.exposed.iter().zip(&e.recipients) {
            assert_eq!(ex.address, r.mailbox.address);
            assert!(std::ptr::eq(
                ex.address.as_str(),
                r.mailbox.address.as_str()
            ));
        }
        let a = &x.exposed[0];
        assert!(std::ptr::eq(a.party.as_str(), a.address.as_str()));
        // One string per party, shared by its addresses and the audience list.
        let (b, c) = (&x.exposed[1], &x.exposed[2]);
        assert!(std::ptr::eq(b.party.as_str(), c.party.as_str()));
        assert!(x
            .audience_parties
            .iter()
            .any(|p| std::ptr::eq(p.as_str(), b.party.as_str())));
        // 48 bytes and the content source (16, shared per part): no allocation per address.
        assert_eq!(std::mem::size_of::<ExposedAddress>(), 64);
    }

    #[test]
    fn shipped_consumer_list_parses_cleanly() {
        let (set, bad) = parse_domain_list(CONSUMER_DOMAINS_TXT);
        assert!(bad.is_empty(), "{bad:?}");
        assert!(set.len() >= 60);
        for d in [
            "gmail.com",
            "qq.com",
            "mail.ru",
            "proton.me",
            "yahoo.co.uk",
            "163.com",
        ] {
            assert!(set.contains(d), "{d}");
        }
        let (_, bad) = parse_domain_list("ok.example # comment\nnot a domain\n");
        assert_eq!(bad, [(2, "not a domain".to_owned())]);
    }

    #[test]
    fn support_thread_with_customer_and_colleague_is_not_exposed() {
        let x = run("From: Support <help@shop.example>\n\
                     To: Customer <jane@acme.example>\n\
                     Cc: Colleague <joe@acme.example>, agent2@shop.example\n\n");
        assert!(!x.exposes(), "{x:?}");
        assert_eq!(x.visible_parties, 1);
        assert_eq!(x.audience_parties, ["acme.example"]);
    }

    #[test]
    fn internal_only_mail_exposes_nobody() {
        let mut org = Org::with_defaults();
        assert!(org.add_internal_domain("Shop-Group.EXAMPLE"));
        let e = env(
            "From: ceo@shop.example\nTo: all@shop.example, cfo@eu.shop.example\n\
                     Cc: legal@shop-group.example, it@de.shop-group.example\n\n",
        );
        let x = analyse(&e, &org);
        assert!(!x.exposes());
        assert_eq!(x.visible_parties, 0);
        assert!(x.audience_parties.is_empty());
    }

    #[test]
    fn proper_bcc_marketing_with_undisclosed_recipients() {
        let e = env("From: news@shop.example\nTo: undisclosed-recipients:;\n\
                     Bcc: a@gmail.com, b@gmail.com, c@acme.example\n\n");
        let mut org = Org::with_defaults();
        // A Sent copy: the Bcc header is normal there, nobody is exposed.
        org.archive_kind = ArchiveKind::Sent;
        let x = analyse(&e, &org);
        assert!(!x.exposes());
        assert_eq!(x.visible_parties, 0);
        assert_eq!(x.audience_parties.len(), 3);
        // The usual transmitted copy of such a mail has no Bcc header at all.
        let e = env("From: news@shop.example\nTo: undisclosed-recipients:;\n\n");
        let x = run_env(&e);
        assert!(!x.exposes());
        assert!(x.audience_parties.is_empty());
    }

    proptest::proptest! {
        /// Sorting on the eight-byte prefix first gives `sort_unstable`'s order: shared
        /// prefixes, keys shorter than eight bytes, keys with NUL bytes, small and large lists.
        #[test]
        fn sorted_keys_is_the_plain_sort(
            keys in proptest::collection::hash_set(
                proptest::prop_oneof![
                    "[a-c]{0,10}",
                    "grace\\.[a-c\\x00]{0,4}@[a-b]{1,3}\\.example",
                    "[\\x00-\\x02a]{0,9}",
                ],
                0..200,
            )
        ) {
            let keys: Vec<PartyKey> = keys.into_iter().map(PartyKey::from).collect();
            let mut want = keys.clone();
            want.sort_unstable();
            proptest::prop_assert_eq!(sorted_keys(keys), want);
        }

        /// The one-recipient path gives what the general pass gives: internal, consumer,
        /// business and the sender's own address, in every field, in a group, sent or
        /// transmitted copies, with an internal domain configured or not.
        #[test]
        fn one_recipient_fast_path_agrees_with_the_list_pass(
            from in proptest::sample::select(vec![
                "", "From: news@acme.example\n", "From: Ann <ann@gmail.com>\n",
                "From: x@mail.acme.example\n",
            ]),
            field in proptest::sample::select(vec!["To", "Cc", "Bcc", "Resent-To", "Resent-Bcc"]),
            rcpt in proptest::sample::select(vec![
                "ann@gmail.com", "bob@partner.example", "news@acme.example",
                "eve@sub.acme.example", "x@mail.acme.example", "Team: carl@partner.example;",
            ]),
            received in proptest::bool::ANY,
            kind in 0..3u8,
            internal in proptest::bool::ANY,
        ) {
            let text = format!(
                "{from}{}{field}: {rcpt}\nSubject: s\n\nbody\n",
                if received { "Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n" } else { "" },
            );
            let e = env(&text);
            proptest::prop_assume!(e.recipients.len() <= 1);
            let mut org = Org::with_defaults();
            org.archive_kind = [ArchiveKind::Auto, ArchiveKind::Sent, ArchiveKind::Transmitted][kind as usize];
            if internal {
                org.add_internal_domain("acme.example");
            }
            proptest::prop_assert_eq!(analyse(&e, &org), analyse_list(&e, &org), "{}", text);
        }
    }

    fn run_env(e: &Envelope) -> Exposure {
        analyse(e, &Org::with_defaults())
    }

    fn transmitted() -> Org {
        let mut o = Org::with_defaults();
        o.archive_kind = ArchiveKind::Transmitted;
        o
    }

    #[test]
    fn single_transactional_mail_exposes_nobody() {
        let x = run("From: orders@shop.example\nTo: Jane <jane@gmail.com>\n\n");
        assert!(!x.exposes());
        assert_eq!(x.visible_parties, 1);
        assert_eq!(x.audience_parties, ["jane@gmail.com"]);
    }

    #[test]
    fn thousand_address_batch_in_to_exposes_everyone_to_999() {
        let list: Vec<String> = (0..1000)
            .map(|i| match i % 3 {
                0 => format!("user{i}@gmail.com"),
                1 => format!("user{i}@qq.com"),
                _ => format!("user{i}@company{i}.example"),
            })
            .collect();
        let raw = format!("From: promo@shop.example\nTo: {}\n\n", list.join(",\n "));
        let x = run(&raw);
        assert_eq!(x.exposed.len(), 1000);
        assert!(x.exposed.iter().all(|e| e.audience == 999));
        assert!(x.exposed.iter().all(|e| e.fields == [Field::To]));
        assert_eq!(x.visible_parties, 1000);
        assert_eq!(x.audience_parties.len(), 1000);
        assert_eq!(x.exposed[0].address.as_str(), "user0@gmail.com");
        assert_eq!(x.exposed[0].party, "user0@gmail.com");
        assert_eq!(x.exposed[2].party, "company2.example");
        let mut sorted = x.audience_parties.clone();
        sorted.sort();
        assert_eq!(sorted, x.audience_parties);
    }

    #[test]
    fn twenty_thousand_addresses_is_linear() {
        let list: Vec<String> = (0..20_000).map(|i| format!("u{i}@gmail.com")).collect();
        let raw = format!("From: promo@shop.example\nTo: {}\n\n", list.join(", "));
        let x = run(&raw);
        assert_eq!(x.exposed.len(), 20_000);
        assert_eq!(x.exposed[19_999].audience, 19_999);
    }

    #[test]
    fn bcc_depends_on_archive_kind() {
        let e = env("From: news@shop.example\nTo: a@gmail.com\nBcc: b@yahoo.com\n\n");
        let x = analyse(&e, &transmitted());
        assert_eq!(exposed(&x), [("a@gmail.com", 1), ("b@yahoo.com", 1)]);
        assert_eq!(x.exposed[1].fields, [Field::Bcc]);
        assert_eq!(x.visible_parties, 2);
        let mut sent = Org::with_defaults();
        sent.archive_kind = ArchiveKind::Sent;
        let x = analyse(&e, &sent);
        // The Bcc recipient still saw the To list.
        assert_eq!(exposed(&x), [("a@gmail.com", 1)]);
        assert_eq!(x.visible_parties, 1);
        assert_eq!(x.audience_parties, ["a@gmail.com", "b@yahoo.com"]);
    }

    #[test]
    fn envelope_recipients_are_audience_never_visible() {
        use crate::model::{EnvelopeKind, EnvelopeRecipient};
        let rcpt = |a: &str, kind| EnvelopeRecipient {
            address: Address::parse(a).unwrap(),
            kind,
            expanded_from: None,
            forwarded_for: None,
        };
        // A correct Bcc mailing, as a journal report lists it: nobody is shown to anyone.
        let mut e = env("From: news@shop.example\nTo: undisclosed-recipients:;\nReceived: x\n\n");
        e.envelope_recipients = vec![
            rcpt("a@gmail.com", EnvelopeKind::Bcc),
            rcpt("b@yahoo.com", EnvelopeKind::Bcc),
            rcpt("crm@shop.example", EnvelopeKind::Bcc),
        ];
        let x = analyse(&e, &transmitted());
        assert!(!x.exposes(), "{x:?}");
        assert!(x.saw_others.is_empty(), "nothing exposed, nothing seen");
        assert_eq!(x.audience_parties, ["a@gmail.com", "b@yahoo.com"]);
        // The leak: the To list was shown, and the Bcc recipient saw it too.
        let mut e = env("From: news@shop.example\nTo: a@gmail.com, b@yahoo.com\n\n");
        e.envelope_recipients = vec![
            rcpt("a@gmail.com", EnvelopeKind::To),
            rcpt("b@yahoo.com", EnvelopeKind::To),
            rcpt("c@web.de", EnvelopeKind::Bcc),
        ];
        let x = analyse(&e, &Org::with_defaults());
        assert_eq!(exposed(&x), [("a@gmail.com", 2), ("b@yahoo.com", 2)]);
        assert_eq!(x.visible_parties, 2);
        assert_eq!(
            x.audience_parties,
            ["a@gmail.com", "b@yahoo.com", "c@web.de"]
        );
        // The Bcc recipient saw them without being shown: listed as such, once.
        e.envelope_recipients
            .push(rcpt("c@web.de", EnvelopeKind::Recipient));
        e.envelope_recipients
            .push(rcpt("crm@shop.example", EnvelopeKind::Bcc));
        let x = analyse(&e, &Org::with_defaults());
        let saw: Vec<&str> = x.saw_others.iter().map(Address::as_str).collect();
        assert_eq!(saw, ["c@web.de"]);
    }

    #[test]
    fn auto_is_the_default_and_decides_bcc_visibility_per_copy() {
        assert_eq!(ArchiveKind::default(), ArchiveKind::Auto);
        assert_eq!(Org::with_defaults().archive_kind, ArchiveKind::Auto);
        let mut e = env("From: news@shop.example\nTo: a@gmail.com\nBcc: b@yahoo.com\n\n");
        // The sender's own copy: no transit traces, the Bcc header is normal.
        let x = run_env(&e);
        assert_eq!(exposed(&x), [("a@gmail.com", 1)]);
        // The same copy after an MTA delivered it: the Bcc header leaked.
        for mark in [
            |f: &mut HeaderFacts| f.received = 2,
            |f: &mut HeaderFacts| f.delivered_to = true,
            |f: &mut HeaderFacts| f.x_original_to = true,
            |f: &mut HeaderFacts| f.return_path = true,
        ] {
            e.facts = HeaderFacts::default();
            mark(&mut e.facts);
            let x = run_env(&e);
            assert_eq!(exposed(&x), [("a@gmail.com", 1), ("b@yahoo.com", 1)]);
        }
        // Forced kinds ignore the traces.
        let mut sent = Org::with_defaults();
        sent.archive_kind = ArchiveKind::Sent;
        assert_eq!(exposed(&analyse(&e, &sent)), [("a@gmail.com", 1)]);
        e.facts = HeaderFacts::default();
        assert_eq!(analyse(&e, &transmitted()).exposed.len(), 2);
        assert_eq!(
            serde_json::from_str::<ArchiveKind>("\"auto\"").unwrap(),
            ArchiveKind::Auto
        );
    }

    #[test]
    fn bcc_viewer_sees_a_to_recipient_even_in_sent_kind() {
        let e = env("From: me@shop.example\nTo: Client <client@acme.example>\n\
                     Resent-Bcc: spy@other.example\n\n");
        let mut org = Org::with_defaults();
        org.archive_kind = ArchiveKind::Sent;
        let x = analyse(&e, &org);
        assert_eq!(exposed(&x), [("client@acme.example", 1)]);
        assert_eq!(x.exposed[0].party, "acme.example");
    }

    #[test]
    fn idn_twins_are_one_address_and_one_party() {
        let x = run("From: shop@shop.example\n\
                     To: Bob <Bob@Exämple.com>, bob@xn--exmple-cua.com, al@gmail.com\n\
                     Cc: BOB@XN--EXMPLE-CUA.COM\n\n");
        assert_eq!(
            exposed(&x),
            [("bob@xn--exmple-cua.com", 1), ("al@gmail.com", 1)]
        );
        assert_eq!(x.exposed[0].fields, [Field::To, Field::Cc]);
        assert_eq!(x.audience_parties, ["al@gmail.com", "xn--exmple-cua.com"]);
    }

    #[test]
    fn group_members_are_exposed_and_flagged() {
        let x = run("From: shop@shop.example\nTo: Clients: a@gmail.com, b@gmail.com;\n\n");
        assert_eq!(exposed(&x), [("a@gmail.com", 1), ("b@gmail.com", 1)]);
        assert!(x.exposed.iter().all(|e| e.in_group));
    }

    #[test]
    fn two_consumer_addresses_are_two_parties_but_colleagues_are_one() {
        let x = run("From: shop@shop.example\nTo: a@gmail.com, b@gmail.com\n\n");
        assert_eq!(exposed(&x), [("a@gmail.com", 1), ("b@gmail.com", 1)]);
        let x = run("From: shop@shop.example\nTo: a@acme.example, b@acme.example\n\n");
        assert!(!x.exposes());
    }

    #[test]
    fn consumer_sender_domain_is_not_internal() {
        // A mass mail sent from a gmail.com account: its gmail recipients are strangers.
        let x = run("From: organiser@gmail.com\nTo: a@gmail.com, b@gmail.com\n\
                     Cc: organiser@gmail.com\n\n");
        assert_eq!(exposed(&x), [("a@gmail.com", 1), ("b@gmail.com", 1)]);
        assert_eq!(x.audience_parties, ["a@gmail.com", "b@gmail.com"]);
    }

    #[test]
    fn sender_domain_rule_can_be_switched_off() {
        let e = env("From: me@shop.example\nTo: a@shop.example, b@gmail.com\n\n");
        assert!(!run_env(&e).exposes());
        let mut org = Org::with_defaults();
        org.sender_domain_internal = false;
        let x = analyse(&e, &org);
        assert_eq!(exposed(&x), [("a@shop.example", 1), ("b@gmail.com", 1)]);
    }

    #[test]
    fn internal_recipients_are_never_audience() {
        // One external party plus many internal viewers: nobody exposed.
        let x =
            run("From: me@shop.example\nTo: a@gmail.com\nCc: x@shop.example, y@shop.example\n\n");
        assert!(!x.exposes());
        assert_eq!(x.audience_parties, ["a@gmail.com"]);
    }

    #[test]
    fn internal_domain_matching_is_label_wise() {
        let mut org = Org::with_defaults();
        org.add_internal_domain("shop.example");
        assert!(org.is_internal_domain("shop.example"));
        assert!(org.is_internal_domain("mail.shop.example"));
        assert!(!org.is_internal_domain("evilshop.example"));
        assert!(!org.is_internal_domain("example"));
    }
}
