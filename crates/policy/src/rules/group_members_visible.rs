//! `group-members-visible`: a named group (`Customers: a@x.com, b@y.org;`) lists its members.
//!
//! What: RFC 5322 groups can hide a list (`undisclosed-recipients:;`, no members) or show it;
//! this rule fires when a group in a visible field (or a Bcc group left in a transmitted copy)
//! lists at least `min_members` external addresses from at least `min_parties` external
//! parties. A group of colleagues at one company is not a leak.
//! Why: a mailer that expands a distribution list into a group shows every member to every
//! other; the name ("All customers") usually tells what they have in common, too.
//! Example: `To: Premium customers: alice@gmail.com, bob@example.org;`.

use super::{header_offset, Ctx, Hit};
use crate::allow::Allow;
use crate::orgview;
use crate::raw::{RawRule, Validator};
use crate::redact;
use leakaudit_scanner::exposure::is_transmitted;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Params {
    pub min_members: usize,
    pub min_parties: usize,
}

/// The parameters this kind accepts (a key of another kind is an error).
pub const KEYS: &[&str] = &["min_parties", "min_members"];

pub(crate) fn from_raw(v: &mut Validator<'_>, raw: &RawRule) -> Option<Params> {
    Some(Params {
        min_members: v.count(&raw.min_members, "min_members", 2, 1),
        min_parties: v.count(&raw.min_parties, "min_parties", 2, 1),
    })
}

pub fn check(p: &Params, allow: &Allow, ctx: &Ctx<'_, '_>) -> Option<Hit> {
    let env = &ctx.msg.envelope;
    let mut worst: Option<(usize, usize, Vec<&leakaudit_scanner::Address>)> = None;
    for (gi, g) in env.groups.iter().enumerate() {
        if g.members == 0 || (g.field.is_blind() && !is_transmitted(env, ctx.org.archive_kind)) {
            continue;
        }
        let members: BTreeSet<_> = env
            .recipients
            .iter()
            .filter(|r| r.group == Some(gi))
            .map(|r| &r.mailbox.address)
            .filter(|a| {
                !orgview::is_internal(a, env, ctx.org) && !allow.recipient_domain_allowed(a)
            })
            .collect();
        let parties: BTreeSet<String> =
            members.iter().map(|a| orgview::party(a, ctx.org)).collect();
        if members.len() >= p.min_members && parties.len() >= p.min_parties {
            let better = worst.as_ref().is_none_or(|(_, n, _)| members.len() > *n);
            if better {
                worst = Some((gi, members.len(), members.into_iter().collect()));
            }
        }
    }
    let (gi, n, members) = worst?;
    let g = &env.groups[gi];
    Some(Hit {
        severity: None,
        message: format!(
            "group \"{}\" in {} lists {n} external members",
            g.name, g.field
        ),
        evidence: format!(
            "{}: {} members ({})",
            g.field,
            n,
            redact::address_sample(members.iter().copied(), 3)
        ),
        raw_offset: header_offset(ctx.raw, &[g.field.header_name()]),
        ..Hit::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests_support::*;
    use leakaudit_scanner::{Exposure, Field, Group, Org};

    fn with_group(members: &[&str]) -> leakaudit_scanner::Envelope {
        let list: Vec<(&str, Field)> = members.iter().map(|m| (*m, Field::To)).collect();
        let mut e = env("n@shop.example", &list);
        for r in &mut e.recipients {
            r.group = Some(0);
        }
        e.groups.push(Group {
            name: "Customers".into(),
            field: Field::To,
            members: members.len(),
        });
        e
    }

    #[test]
    fn group_of_strangers_fires_colleagues_do_not() {
        let org = Org::with_defaults();
        let e = Exposure::default();
        let raw = b"From: n@shop.example\nTo: Customers: a@x.com, b@y.org;\n\n";
        let m = msg(raw, with_group(&["a@x.com", "b@y.org"]));
        let h = check(
            &Params {
                min_members: 2,
                min_parties: 2,
            },
            &Allow::default(),
            &ctx(&m, &org, &e, raw),
        )
        .unwrap();
        assert!(h.message.contains("Customers"));
        assert!(h.evidence.starts_with("To: 2 members"));
        let m = msg(raw, with_group(&["a@x.com", "b@x.com"]));
        assert!(check(
            &Params {
                min_members: 2,
                min_parties: 2
            },
            &Allow::default(),
            &ctx(&m, &org, &e, raw)
        )
        .is_none());
        let m = msg(raw, with_group(&["a@shop.example", "b@shop.example"]));
        assert!(check(
            &Params {
                min_members: 2,
                min_parties: 1
            },
            &Allow::default(),
            &ctx(&m, &org, &e, raw)
        )
        .is_none());
    }
}
