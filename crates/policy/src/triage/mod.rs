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
    addresses: &'f [Listed<'e>],
}

/// The kept parties grouped by `root` (the same person under several addresses), in order.
fn groups_of<'e>(kept: &[&Party<'e, '_>], root: &[usize]) -> Vec<Vec<&'e str>> {
    let mut groups: Vec<Vec<&str>> = Vec::new();
    let mut group_of: HashMap<usize, usize> = HashMap::new();
    for (i, p) in kept.iter().enumerate() {
        let g = *group_of.entry(root[i]).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(p.key);
    }
    groups
}

/// Audiences of this many parties and up to [`MAP_PARTIES`] are looked up through a map.
const MAP_MIN_PARTIES: usize = 32;
/// Larger sorted audiences are binary-searched: no map of a million keys.
const MAP_PARTIES: usize = 1 << 16;

/// Measures the [`Facts`] of an exposing message (see [`assess`]).
pub fn facts(
    env: &Envelope,
    exposure: &Exposure,
    org: &Org,
    quoted: &[Address],
    ctx: &TriageContext<'_>,
    t: &Thresholds,
) -> (Facts, Vec<String>) {
    let mut notes = Vec::new();
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
    let mut keys: Vec<&str> = Vec::with_capacity(audience_list.len());
    let mut listed: Vec<Listed<'_>> = Vec::with_capacity(env.recipients.len());
    for (n, r) in env.recipients.iter().enumerate() {
        let a = &r.mailbox.address;
        let key = org.party_key(a);
        let Some(pos) = position(key) else {
            continue;
        };
        if index[pos] == u32::MAX {
            index[pos] = keys.len() as u32;
            keys.push(key);
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
        parties.push(Party {
            key: keys[chunk[0].0 as usize],
            addresses: chunk,
        });
    }
    drop(keys);
    let party_index = |key: &str| {
        position(key)
            .map(|pos| index[pos])
            .filter(|&i| i != u32::MAX)
    };
    let sender = env.from.first();
    let name_forms = sender::sender_name(env).map(|(f, l)| sender::NameForms::new((&f, &l)));
    let sender_display = sender.and_then(|m| sender::display_key(m.display.as_deref()));
    // `consumer`: the address is at a consumer provider (its party key is itself).
    let own = |a: &Address, display: Option<&str>, consumer: bool| {
        ctx.aliases.contains(a)
            || (sender_display.is_some() && sender::display_key(display) == sender_display)
            || (consumer && name_forms.as_ref().is_some_and(|n| n.matches(a.local())))
    };
    let history = ctx.history;
    let org_domain = |d: &str| {
        history.is_some_and(|h| {
            !org.is_consumer(d)
                && std::iter::successors(Some(d), |x| x.split_once('.').map(|(_, r)| r))
                    .any(|s| s.contains('.') && h.is_org_domain(s))
        })
    };
    let mut own_addresses = 0;
    let mut org_parties = 0;
    let mut kept: Vec<&Party<'_, '_>> = Vec::new();
    // By party index (as in `index`): the party is kept.
    let mut is_kept = vec![false; parties.len()];
    for (i, p) in parties.iter().enumerate() {
        // The party key says what `org.is_consumer` would, without a lookup per address.
        let owned = (p.addresses.iter())
            .filter(|(_, _, a, d)| own(a, *d, party_is_address(p.key, a)))
            .count();
        if owned == p.addresses.len() {
            own_addresses += owned;
            continue;
        }
        if org_domain(p.addresses[0].2.domain()) {
            org_parties += 1;
            continue;
        }
        is_kept[i] = true;
        kept.push(p);
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
    for (i, p) in kept.iter().enumerate().filter(|_| merge_names) {
        for (_, _, _, d) in p.addresses {
            if let Some(k) = sender::display_key(*d) {
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
    let groups = if merge_names {
        groups_of(&kept, &root)
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
    let (tag, date) = (history::message_tag(env), history::pair_date(env.date));
    // Pairwise history from before this message; a party is new when it lacks such history
    // with another party (a later repeat of this exposure does not make it known).
    // Past the pair-recipient cap the history holds no pairs of such a size: all new.
    let (new_parties, known_pairs) = match history {
        Some(h) if n >= 2 && n <= h.options().max_pair_recipients => {
            let singles;
            let groups = if merge_names {
                &groups
            } else {
                singles = groups_of(&kept, &(0..kept.len()).collect::<Vec<_>>());
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
    // An exposed address carries its party key: no second `party_key` (a lookup of its
    // domain among the consumer providers) per address.
    let remaining: Vec<_> = exposure
        .exposed
        .iter()
        .filter(|x| party_index(x.party.as_str()).is_some_and(|i| is_kept[i as usize]))
        .collect();
    let quoted_set: HashSet<&Address> = quoted.iter().collect();
    let in_quote = remaining
        .iter()
        .filter(|x| quoted_set.contains(&x.address))
        .count();
    let campaign = match history {
        Some(h) => h.campaign(env, exposure.exposed.len(), t),
        None => CampaignStats {
            chunks: 1,
            addresses: exposure.exposed.len(),
        },
    };
    let bulk = sender::bulk_markers(&env.facts);
    if !bulk.is_empty() {
        notes.push(format!("bulk-mail headers: {}", bulk.join(", ")));
    }
    let system_sender = sender.is_some_and(|m| sender::is_system_sender(&m.address));
    let reply = env
        .subject
        .as_deref()
        .is_some_and(subject::is_reply_subject)
        || env.facts.in_reply_to.is_some()
        || env.facts.references > 0;
    let customer_parties = match ctx.is_customer {
        Some(f) => {
            let addresses: Vec<&Address> = remaining.iter().map(|x| &x.address).collect();
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
    let bcc_leaked = exposure.exposed.iter().any(|x| {
        x.fields
            .iter()
            .any(|f| matches!(f, Field::Bcc | Field::ResentBcc))
    });
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
        bulk: !bulk.is_empty(),
        system_sender,
        reply,
        quoted: in_quote,
        exposed: remaining.len(),
        customer_parties,
        bcc_leaked,
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
    let (f, notes) = facts(env, exposure, org, quoted, ctx, t);
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
