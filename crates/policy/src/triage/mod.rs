//! Triage: tells an incident from ordinary correspondence, and says why.
//!
//! The exposure analysis (who saw whom) is never changed here; the triage only ranks an
//! exposing message: severity, signals and reasons. Two passes:
//! 1. [`History::observe`] over every message (in parallel, partials merged): party pairs
//!    that already corresponded, the archive's own sender domains, exposing chunks per
//!    sender (campaigns). Optional save/load for incremental runs.
//! 2. per message, on worker threads: [`assess`] (called by
//!    [`crate::Engine::evaluate_with`] for the exposure rules under [`Profile::Audit`]).
//!
//! See `severity.rs` for the decision table and docs/architecture/policy.md ("Triage").

pub mod config;
pub mod history;
pub mod sender;
pub mod severity;
pub mod signal;
pub mod subject;

pub use history::{
    CampaignStats, History, HistoryBuilder, HistoryError, HistoryOptions, HISTORY_VERSION,
};
pub use severity::{decide, Facts, Outcome, Thresholds};
pub use signal::{Assessment, Profile, Signal};

use leakaudit_scanner::exposure::party_is_address;
use leakaudit_scanner::{Address, Envelope, Exposure, Field, Message, Org};
// foldhash: per-message sets keyed by addresses, as in the exposure model.
use foldhash::{HashMap, HashMapExt, HashSet};

/// Addresses found in the quoted original of a message (quoted `>` text, "On ... wrote:",
/// forwarded / "Original Message" header blocks): `policy::quoted::quoted_addresses`.
pub type QuotedFn = fn(&Message<'_>) -> Vec<Address>;

/// Whether each of a message's addresses belongs to an account holder, in order. Asked once
/// per message with every remaining address, so a store can answer in batches.
pub type IsCustomer<'a> = dyn Fn(&[&Address]) -> Vec<bool> + Sync + 'a;

/// Everything the triage needs besides the message, shared by every worker thread.
#[derive(Clone, Copy, Default)]
pub struct TriageContext<'a> {
    pub profile: Profile,
    /// The first pass; `None`: novelty and campaigns unknown (every exposure counts as new).
    pub history: Option<&'a History>,
    /// With an account store: whether each address belongs to an account holder.
    pub is_customer: Option<&'a IsCustomer<'a>>,
    /// Addresses of the organisation's own people outside its domains (home mailboxes):
    /// never a party.
    pub aliases: &'a [Address],
    /// Quoted-reply detection; `None`: no quoted-original signal.
    pub quoted: Option<QuotedFn>,
}

impl std::fmt::Debug for TriageContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriageContext")
            .field("profile", &self.profile)
            .field("history", &self.history.map(|h| h.messages()))
            .field("is_customer", &self.is_customer.is_some())
            .field("aliases", &self.aliases.len())
            .field("quoted", &self.quoted.is_some())
            .finish()
    }
}

impl TriageContext<'_> {
    /// Gate profile, no history: today's behaviour.
    pub fn gate() -> TriageContext<'static> {
        TriageContext::default()
    }
}

/// Above this many parties, same display names are not merged into one person.
const MAX_NAME_MERGE_PARTIES: usize = 10;

/// One listing of an external address: (party index, header position, address, display
/// name).
type Listed<'e> = (u32, u32, &'e Address, Option<&'e str>);

/// One external party of the message with the addresses it was listed with (a slice of one
/// flat list: a Vec per party cost ~100 MiB at 1,000,000 parties).
struct Party<'e, 'f> {
    key: &'e str,
    /// Position of `key` in the exposure's audience list.
    position: u32,
    addresses: &'f [Listed<'e>],
}

/// The kept parties' keys grouped by `root` (the same person under several addresses), in
/// order.
fn groups_of<'k>(kept: &[&'k str], root: &[usize]) -> Vec<Vec<&'k str>> {
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    for (i, key) in kept.iter().enumerate() {
        let g = *group_of.entry(root[i]).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(*key);
    }
    groups
}

/// Audiences of this many parties and up to [`MAP_PARTIES`] are looked up through a map.
const MAP_MIN_PARTIES: usize = 32;
/// Larger sorted audiences are binary-searched: no map of a million keys.
const MAP_PARTIES: usize = 1 << 16;

/// What the triage measures of an exposing message without the history ([`prepare`]): made
/// where the message was just parsed, so that the ranking after the pass ([`assess_prepared`])
/// reads a few numbers per party instead of every address again, out of cache by then (the
/// ranking was most of the audit's serial end, issue 34). Owns its data: it is held beside
/// the envelope and the exposure it was made from, and means nothing with others.
#[derive(Debug, Clone)]
pub struct Prepared {
    own_addresses: usize,
    /// The parties not wholly the sender's own, in party order (header order).
    others: Vec<OtherParty>,
    /// Header positions of the others' addresses (each party's a range of it), for the
    /// display names.
    positions: Vec<u32>,
    /// Per exposed address: its party's index in `others` (`u32::MAX`: none).
    exposed_other: Vec<u32>,
    bulk: Vec<&'static str>,
    system_sender: bool,
    reply: bool,
    bcc_leaked: bool,
}

/// A party of [`Prepared::others`].
#[derive(Debug, Clone)]
struct OtherParty {
    /// Position of its key in the exposure's audience list.
    key: u32,
    /// At a consumer provider (its key is its address): never at an organisation's domain.
    consumer: bool,
    /// Its addresses' header positions: `Prepared::positions[start..end]`.
    start: u32,
    end: u32,
    /// Its exposed addresses, and of those the ones on the quoted original.
    exposed: u32,
    quoted: u32,
}

/// The history-free part of [`facts`] (see [`Prepared`]). `aliases`: the context's.
pub fn prepare(
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    quoted: &[Address],
    aliases: &[Address],
) -> Prepared {
    // The exposure model sorts its party keys: a lookup there needs no set of its own (a
    // 1,000,000-party message spent hundreds of MiB on this function's sets and maps).
    // Up to `MAP_PARTIES` a map all the same: every address is looked up twice, and a binary
    // search over a mass mail's ~1,000 keys (cache misses, string compares) was a third of its
    // ranking (issue 34).
    let audience_list = &exposure.audience_parties;
    let mapped = (MAP_MIN_PARTIES..=MAP_PARTIES).contains(&audience_list.len())
        || !audience_list.is_sorted();
    let by_key: Option<HashMap<&str, usize>> = mapped.then(|| {
        audience_list
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_str(), i))
            .collect()
    });
    // A party's position in the audience list (`None`: not in the audience).
    let position = |key: &str| match &by_key {
        Some(map) => map.get(key).copied(),
        None => audience_list.binary_search_by(|p| p.as_str().cmp(key)).ok(),
    };
    // Parties in header order: audience position -> party index, and back.
    // Sized up front: a doubling series of large blocks is memory the allocator keeps.
    let mut index: Vec<u32> = vec![u32::MAX; audience_list.len()];
    let mut keys: Vec<(&str, u32)> = Vec::with_capacity(audience_list.len());
    let mut listed: Vec<Listed<'_>> = Vec::with_capacity(env.recipients.len());
    for (n, r) in env.recipients.iter().enumerate() {
        let a = &r.mailbox.address;
        let key = org.party_key(a);
        let Some(pos) = position(key) else {
            continue;
        };
        if index[pos] == u32::MAX {
            index[pos] = keys.len() as u32;
            keys.push((key, pos as u32));
        }
        listed.push((index[pos], n as u32, a, r.mailbox.display.as_deref()));
    }
    // Grouped by party, each address once with its first display name (the header position
    // orders equals without a stable sort's scratch buffer; a per-party search was
    // quadratic in one domain's size).
    listed.sort_unstable_by(|x, y| (x.0, x.2, x.1).cmp(&(y.0, y.2, y.1)));
    listed.dedup_by(|later, first| later.0 == first.0 && later.2 == first.2);
    let mut parties: Vec<Party<'_, '_>> = Vec::with_capacity(keys.len());
    for chunk in listed.chunk_by(|x, y| x.0 == y.0) {
        let (key, position) = keys[chunk[0].0 as usize];
        parties.push(Party {
            key,
            position,
            addresses: chunk,
        });
    }
    drop(keys);
    let sender = env.from.first();
    let name_forms = sender::sender_name(env).map(|(f, l)| sender::NameForms::new((&f, &l)));
    let sender_display = sender.and_then(|m| sender::display_key(m.display.as_deref()));
    // `consumer`: the address is at a consumer provider (its party key is itself).
    let own = |a: &Address, display: Option<&str>, consumer: bool| {
        aliases.contains(a)
            || (sender_display.is_some() && sender::display_key(display) == sender_display)
            || (consumer && name_forms.as_ref().is_some_and(|n| n.matches(a.local())))
    };
    let mut own_addresses = 0;
    let mut others: Vec<OtherParty> = Vec::new();
    let mut positions: Vec<u32> = Vec::new();
    // By party index (as in `index`): the party's index in `others`.
    let mut other_of = vec![u32::MAX; parties.len()];
    for (i, p) in parties.iter().enumerate() {
        // The party key says what `org.is_consumer` would, without a lookup per address.
        let owned = (p.addresses.iter())
            .filter(|(_, _, a, d)| own(a, *d, party_is_address(p.key, a)))
            .count();
        if owned == p.addresses.len() {
            own_addresses += owned;
            continue;
        }
        other_of[i] = others.len() as u32;
        let start = positions.len() as u32;
        positions.extend(p.addresses.iter().map(|x| x.1));
        others.push(OtherParty {
            key: p.position,
            consumer: org.is_consumer(p.addresses[0].2.domain()),
            start,
            end: positions.len() as u32,
            exposed: 0,
            quoted: 0,
        });
    }
    // An exposed address carries its party key: no second `party_key` (a lookup of its
    // domain among the consumer providers) per address.
    let quoted_set: HashSet<&Address> = quoted.iter().collect();
    let exposed_other = (exposure.exposed.iter())
        .map(|x| {
            let Some(i) = position(x.party.as_str()).map(|pos| index[pos]) else {
                return u32::MAX;
            };
            let o = other_of.get(i as usize).copied().unwrap_or(u32::MAX);
            if let Some(p) = others.get_mut(o as usize) {
                p.exposed += 1;
                p.quoted += u32::from(!quoted_set.is_empty() && quoted_set.contains(&x.address));
            }
            o
        })
        .collect();
    Prepared {
        own_addresses,
        others,
        positions,
        exposed_other,
        bulk: sender::bulk_markers(&env.facts),
        system_sender: sender.is_some_and(|m| sender::is_system_sender(&m.address)),
        reply: env
            .subject
            .as_deref()
            .is_some_and(subject::is_reply_subject)
            || env.facts.in_reply_to.is_some()
            || env.facts.references > 0,
        bcc_leaked: exposure.exposed.iter().any(|x| {
            x.fields
                .iter()
                .any(|f| matches!(f, Field::Bcc | Field::ResentBcc))
        }),
    }
}

/// Measures the [`Facts`] of an exposing message (see [`assess`]).
pub fn facts(
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    quoted: &[Address],
    ctx: &TriageContext<'_>,
    t: &Thresholds,
) -> (Facts, Vec<String>) {
    let p = prepare(env, exposure, org, quoted, ctx.aliases);
    prepared_facts(&p, env, exposure, org, ctx, t)
}

/// [`facts`] from what [`prepare`] made of the same envelope and exposure.
fn prepared_facts(
    p: &Prepared,
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    ctx: &TriageContext<'_>,
    t: &Thresholds,
) -> (Facts, Vec<String>) {
    let mut notes = Vec::new();
    let key = |o: &OtherParty| exposure.audience_parties[o.key as usize].as_str();
    let history = ctx.history;
    // A party not at a consumer provider is keyed by its domain.
    let org_domain = |d: &str| {
        history.is_some_and(|h| {
            std::iter::successors(Some(d), |x| x.split_once('.').map(|(_, r)| r))
                .any(|s| s.contains('.') && h.is_org_domain(s))
        })
    };
    let mut own_addresses = p.own_addresses;
    let mut org_parties = 0;
    let mut kept: Vec<&OtherParty> = Vec::new();
    // By index in `others`: the party is kept.
    let mut is_kept = vec![false; p.others.len()];
    for (i, o) in p.others.iter().enumerate() {
        if !o.consumer && org_domain(key(o)) {
            org_parties += 1;
            continue;
        }
        is_kept[i] = true;
        kept.push(o);
    }
    if own_addresses > 0 {
        notes.push(format!(
            "{own_addresses} exposed address(es) are the sender's own"
        ));
    }
    if org_parties > 0 {
        notes.push(format!(
            "{org_parties} part{} at the organisation's other sender domains",
            if org_parties == 1 { "y" } else { "ies" }
        ));
    }
    // One person listed under several addresses (same display name) is one party. Only in
    // small messages: among hundreds of recipients two different "Maria Garcia" are likely.
    // Past the cap every kept party is its own group: the groups are only built when needed.
    let merge_names = kept.len() <= MAX_NAME_MERGE_PARTIES;
    let mut root: Vec<usize> = if merge_names {
        (0..kept.len()).collect()
    } else {
        Vec::new()
    };
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, o) in kept.iter().enumerate().filter(|_| merge_names) {
        for &n in &p.positions[o.start as usize..o.end as usize] {
            let d = env.recipients[n as usize].mailbox.display.as_deref();
            if let Some(k) = sender::display_key(d) {
                match by_name.get(&k) {
                    Some(&j) if root[j] != root[i] => {
                        let (ri, rj) = (root[i], root[j]);
                        for r in root.iter_mut() {
                            if *r == ri {
                                *r = rj;
                            }
                        }
                    }
                    Some(_) => {}
                    None => {
                        by_name.insert(k, i);
                    }
                }
            }
        }
    }
    let kept_keys: Vec<&str> = kept.iter().map(|o| key(o)).collect();
    let groups = if merge_names {
        groups_of(&kept_keys, &root)
    } else {
        Vec::new()
    };
    let n = if merge_names {
        groups.len()
    } else {
        kept.len()
    };
    let merged = kept.len() - n;
    if merged > 0 {
        own_addresses += merged;
        notes.push(format!(
            "{merged} part{} the same person under another address (same name)",
            if merged == 1 { "y is" } else { "ies are" }
        ));
    }
    // Pairwise history from before this message; a party is new when it lacks such history
    // with another party (a later repeat of this exposure does not make it known).
    // Past the pair-recipient cap the history holds no pairs of such a size: all new.
    let (new_parties, known_pairs) = match history {
        Some(h) if n >= 2 && n <= h.options().max_pair_recipients => {
            let (tag, date) = (history::message_tag(env), history::pair_date(env.date));
            let singles;
            let groups = if merge_names {
                &groups
            } else {
                singles = groups_of(&kept_keys, &(0..kept.len()).collect::<Vec<_>>());
                &singles
            };
            let hashes: Vec<Vec<u64>> = groups
                .iter()
                .map(|g| g.iter().map(|k| history::party_hash(k)).collect())
                .collect();
            let mut lacking = vec![false; n];
            let mut known = 0;
            for i in 0..n {
                for j in i + 1..n {
                    let shared = hashes[i]
                        .iter()
                        .any(|a| hashes[j].iter().any(|b| h.shared_hashes(*a, *b, tag, date)));
                    if shared {
                        known += 1;
                    } else {
                        lacking[i] = true;
                        lacking[j] = true;
                    }
                }
            }
            (lacking.iter().filter(|l| **l).count(), known)
        }
        _ => (n, 0),
    };
    let exposed: usize = kept.iter().map(|o| o.exposed as usize).sum();
    let in_quote: usize = kept.iter().map(|o| o.quoted as usize).sum();
    let campaign = match history {
        Some(h) => h.campaign(env, exposure.exposed.len(), t),
        None => CampaignStats {
            chunks: 1,
            addresses: exposure.exposed.len(),
        },
    };
    if !p.bulk.is_empty() {
        notes.push(format!("bulk-mail headers: {}", p.bulk.join(", ")));
    }
    let customer_parties = match ctx.is_customer {
        Some(f) => {
            let addresses: Vec<&Address> = (exposure.exposed.iter().zip(&p.exposed_other))
                .filter(|(_, &o)| is_kept.get(o as usize).copied().unwrap_or(false))
                .map(|(x, _)| &x.address)
                .collect();
            let flags = f(&addresses);
            addresses
                .iter()
                .zip(flags)
                .filter(|(_, customer)| *customer)
                .map(|(a, _)| org.party_key(a))
                .collect::<HashSet<_>>()
                .len()
        }
        None => 0,
    };
    let facts = Facts {
        raw_parties: exposure.audience_parties.len(),
        parties: n,
        new_parties,
        known_pairs,
        has_history: history.is_some(),
        own_addresses,
        org_domain_parties: org_parties,
        campaign_chunks: campaign.chunks,
        campaign_addresses: campaign.addresses,
        bulk: !p.bulk.is_empty(),
        system_sender: p.system_sender,
        reply: p.reply,
        quoted: in_quote,
        exposed,
        customer_parties,
        bcc_leaked: p.bcc_leaked,
    };
    (facts, notes)
}

/// Ranks one exposing message under the audit profile. `quoted`: the addresses of its quoted
/// original (empty when unknown).
pub fn assess(
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    quoted: &[Address],
    ctx: &TriageContext<'_>,
    t: &Thresholds,
) -> Assessment {
    let p = prepare(env, exposure, org, quoted, ctx.aliases);
    assess_prepared(&p, env, exposure, org, ctx, t)
}

/// [`assess`] from what [`prepare`] made of the same `env` and `exposure` (with the same
/// `org`, quoted addresses and `ctx.aliases`).
pub fn assess_prepared(
    p: &Prepared,
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    ctx: &TriageContext<'_>,
    t: &Thresholds,
) -> Assessment {
    let (f, notes) = prepared_facts(p, env, exposure, org, ctx, t);
    let (severity, _, signals, mut reasons) = decide(&f, t);
    reasons.extend(notes);
    Assessment {
        severity,
        signals,
        reasons,
    }
}

#[cfg(test)]
mod tests;
