//! The engine: evaluates one message against a rule pack. Built once, shared by reference
//! across the scanner's worker threads (`Engine: Sync`), so `evaluate` takes `&self`.
//!
//! Cost model: header rules are cheap and always run. Content rules are guarded: one
//! Aho-Corasick pass over the raw body finds every keyword of every content rule at once, an
//! `@` count gates the address-list rule, and MIME decoding happens only when the message
//! mentions base64, quoted-printable, HTML or an attached message. Candidate regexes run as
//! one `RegexSet` pass per segment before any individual regex is asked where it matched.

use crate::content::{self, Limits, LimitsHit, Segment};
use crate::finding::{Finding, Severity};
pub use crate::fingerprint::{fingerprint, message_key};
use crate::pack::{Rule, RuleInfo, RulePack};
use crate::rules::{self, Ctx, Hit, RuleKind};
use crate::triage::{self, Assessment, Profile, Signal, Thresholds, TriageContext};
use aho_corasick::AhoCorasick;
use leakaudit_scanner::{exposure, Exposure, Message, Org};
use regex::bytes::RegexSet;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What an Aho-Corasick pattern of the engine stands for.
#[derive(Debug, Clone, Copy)]
enum Pattern {
    /// A keyword of the content-regex rule with this index.
    Keyword(usize),
    /// quoted-printable, text/html: decoding refines what the raw bytes show.
    Mime,
    /// base64, message/rfc822: text only visible once decoded.
    Opaque,
}

/// The result of evaluating one message.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    pub exposure: Exposure,
    pub findings: Vec<Finding>,
    /// Set when a decoding limit left part of the message uninspected by the content rules:
    /// which limits (`content::LimitsHit::describe`). The gate must not call it clean.
    pub not_fully_audited: Option<String>,
}

/// A severity override names a rule that is not in the pack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("severity override for unknown rule `{0}`")]
pub struct UnknownRule(pub String);

pub struct Engine {
    rules: Vec<Rule>,
    severity: Vec<Severity>,
    overridden: Vec<bool>,
    infos: Vec<RuleInfo>,
    org: Org,
    /// `org` as the gate profile sees it ([`Profile::archive_kind`]).
    gate_org: Org,
    limits: Limits,
    /// Every keyword of the pack plus the MIME markers, searched in one pass.
    ac: AhoCorasick,
    /// Aho-Corasick pattern index -> what it stands for.
    ac_pattern: Vec<Pattern>,
    /// content-regex rules without keywords: always candidates.
    always: Vec<usize>,
    set: Option<RegexSet>,
    /// RegexSet index -> rule index.
    set_rule: Vec<usize>,
    /// Smallest `min_addresses` among address-list rules.
    min_at: Option<usize>,
    has_content: bool,
    has_unconditional_content: bool,
    /// `[rule.triage]` of the first recipient-exposure rule (defaults without one).
    triage: Thresholds,
}

impl Engine {
    /// Builds the engine; overrides for rule ids not in the pack are ignored (use
    /// [`Engine::try_new`] to reject them).
    pub fn new(pack: RulePack, org: Org, overrides: &BTreeMap<String, Severity>) -> Engine {
        let rules: Vec<Rule> = pack.rules.into_iter().filter(|r| r.enabled).collect();
        let severity: Vec<Severity> = rules
            .iter()
            .map(|r| {
                overrides
                    .get(&r.info.id)
                    .copied()
                    .unwrap_or(r.info.severity)
            })
            .collect();
        let overridden = rules
            .iter()
            .map(|r| overrides.contains_key(&r.info.id))
            .collect();
        let infos = rules
            .iter()
            .zip(&severity)
            .map(|(r, s)| RuleInfo {
                severity: *s,
                ..r.info.clone()
            })
            .collect();
        let mut keywords = Vec::new();
        let mut ac_pattern = Vec::new();
        let mut always = Vec::new();
        let mut patterns = Vec::new();
        let mut set_rule = Vec::new();
        let mut min_at: Option<usize> = None;
        let mut has_content = false;
        let mut has_unconditional_content = false;
        for (i, r) in rules.iter().enumerate() {
            match &r.kind {
                RuleKind::ContentRegex(p) => {
                    has_content = true;
                    if p.keywords.is_empty() {
                        always.push(i);
                        has_unconditional_content = true;
                    }
                    for k in &p.keywords {
                        keywords.push(k.clone());
                        ac_pattern.push(Pattern::Keyword(i));
                    }
                    patterns.push(p.regex.as_str().to_string());
                    set_rule.push(i);
                }
                RuleKind::AddressListInContent(p) => {
                    has_content = true;
                    min_at = Some(min_at.map_or(p.min_addresses, |m| m.min(p.min_addresses)));
                }
                RuleKind::SeedPhrase(_) => {
                    has_content = true;
                    has_unconditional_content = true;
                }
                RuleKind::RecipientExposure(_)
                | RuleKind::BccHeaderLeak(_)
                | RuleKind::GroupMembersVisible(_) => {}
            }
        }
        for (marker, opaque) in content::MIME_MARKERS {
            keywords.push(marker.to_string());
            ac_pattern.push(if opaque {
                Pattern::Opaque
            } else {
                Pattern::Mime
            });
        }
        // Case-sensitive, leftmost (non-overlapping) DFA matching keeps the SIMD prefilter and
        // runs at memory speed; keywords of different rules that overlap in the text are rare enough
        // that the rule missing out simply waits for its own next occurrence.
        let ac = AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostFirst)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("keywords are plain literals");
        let triage = exposure_thresholds(&rules);
        // Where the patterns cannot share one set (size limits), every candidate regex runs.
        let set = RegexSet::new(&patterns).ok();
        let gate_org = Org {
            archive_kind: Profile::Gate.archive_kind(org.archive_kind),
            ..org.clone()
        };
        Engine {
            rules,
            severity,
            overridden,
            infos,
            org,
            gate_org,
            limits: Limits::default(),
            ac,
            ac_pattern,
            always,
            set,
            set_rule,
            min_at,
            has_content,
            has_unconditional_content,
            triage,
        }
    }

    /// The triage thresholds an engine of `pack` would have, without compiling its rules
    /// (what `scan` needs of the pack; see [`crate::audit::thresholds`]).
    pub fn thresholds_of(pack: &RulePack) -> Thresholds {
        exposure_thresholds(pack.rules.iter().filter(|r| r.enabled))
    }

    /// Like [`Engine::new`], but an override naming no rule of the pack is an error.
    pub fn try_new(
        pack: RulePack,
        org: Org,
        overrides: &BTreeMap<String, Severity>,
    ) -> Result<Engine, UnknownRule> {
        if let Some(id) = overrides.keys().find(|id| pack.get(id).is_none()) {
            return Err(UnknownRule(id.clone()));
        }
        Ok(Engine::new(pack, org, overrides))
    }

    pub fn with_limits(mut self, limits: Limits) -> Engine {
        self.limits = limits;
        self
    }

    /// The enabled rules, with their effective severity.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.infos
    }

    pub fn org(&self) -> &Org {
        &self.org
    }

    /// The triage thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.triage
    }

    /// Evaluates every enabled rule on `msg` as the configured archive kind says (`auto`:
    /// per message), with findings without triage fields. The gate's reading of a rendered
    /// file is `evaluate_with(msg, &TriageContext::gate())`.
    pub fn evaluate(&self, msg: &Message<'_>) -> Evaluation {
        self.run(msg, None)
    }

    /// Evaluates every enabled rule on `msg` under `ctx`: with [`Profile::Audit`] the
    /// exposure rules take their severity from [`triage::assess`]; every finding states the
    /// profile, exposure findings their signals and reasons. Thread-safe like `evaluate`.
    pub fn evaluate_with(&self, msg: &Message<'_>, ctx: &TriageContext<'_>) -> Evaluation {
        self.run(msg, Some(ctx))
    }

    fn run(&self, msg: &Message<'_>, tctx: Option<&TriageContext<'_>>) -> Evaluation {
        // Under the gate a rendered file is what will be sent: never a sender's copy.
        let gate = tctx.is_some_and(|t| t.profile == Profile::Gate);
        let org = if gate { &self.gate_org } else { &self.org };
        let exposure = exposure::analyse(&msg.envelope, org);
        let raw: Cow<'_, [u8]> = msg.unquoted();
        let ctx = Ctx {
            msg,
            org,
            exposure: &exposure,
            raw: &raw,
            gate,
        };
        let mut hits: Vec<(usize, Hit)> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.kind.is_content() || r.allow.skips_message(msg) {
                continue;
            }
            let hit = match &r.kind {
                RuleKind::RecipientExposure(p) => {
                    rules::recipient_exposure::check(p, &r.allow, &ctx)
                }
                RuleKind::BccHeaderLeak(p) => rules::bcc_header_leak::check(p, &r.allow, &ctx),
                RuleKind::GroupMembersVisible(p) => {
                    rules::group_members_visible::check(p, &r.allow, &ctx)
                }
                // The content pass runs these (`content_rules`).
                RuleKind::AddressListInContent(_)
                | RuleKind::ContentRegex(_)
                | RuleKind::SeedPhrase(_) => None,
            };
            if let Some(h) = hit {
                hits.push((i, h));
            }
        }
        let mut not_fully_audited = None;
        if self.has_content {
            let cut = self.content_rules(&ctx, &mut hits);
            if cut.any() {
                not_fully_audited = Some(cut.describe(&self.limits));
            }
        }
        hits.sort_by_key(|(i, _)| *i);
        let mut key: Option<String> = None;
        let mut assessment: Option<Assessment> = None;
        let findings = hits
            .into_iter()
            .map(|(i, h)| {
                let key = key.get_or_insert_with(|| message_key(&msg.envelope, &raw));
                let mut f = self.finding(i, h, msg, &raw, key);
                if let Some(tc) = tctx {
                    f.profile = Some(tc.profile);
                    if is_exposure(&self.rules[i].kind) && exposure.exposes() {
                        let a = assessment.get_or_insert_with(|| self.assess(msg, &exposure, tc));
                        self.apply_triage(i, &mut f, a, tc.profile);
                    }
                }
                f
            })
            .collect();
        Evaluation {
            exposure,
            findings,
            not_fully_audited,
        }
    }

    /// Single-pass alternative to `evaluate_with`: ranks, after the fact, the exposure
    /// findings of an evaluation made while the history was still being built (pass 1 keeps
    /// only exposing messages' envelopes, exposures and quoted addresses). Gives the same
    /// findings as `evaluate_with(msg, ctx)` would have.
    pub fn retriage(
        &self,
        env: &leakaudit_scanner::Envelope,
        eval: &mut Evaluation,
        quoted: &[leakaudit_scanner::Address],
        ctx: &TriageContext<'_>,
    ) {
        let mut assessment: Option<Assessment> = None;
        for f in &mut eval.findings {
            f.profile = Some(ctx.profile);
            let Some(i) = self.rules.iter().position(|r| r.info.id == f.rule_id) else {
                continue;
            };
            if !is_exposure(&self.rules[i].kind) || !eval.exposure.exposes() {
                continue;
            }
            let a = assessment.get_or_insert_with(|| {
                self.assessment(env, &eval.exposure, || quoted.to_vec(), ctx)
            });
            // Start again from the rule's own severity, as `evaluate_with` would.
            f.severity = self.gate_severity(i, f);
            self.apply_triage(i, f, a, ctx.profile);
        }
    }

    /// The severity a finding of rule `i` had before any triage: the override, the
    /// recipient-exposure tiers, or the rule's own (bcc-header-leak, group-members-visible).
    fn gate_severity(&self, i: usize, f: &Finding) -> Severity {
        if self.overridden[i] {
            return self.severity[i];
        }
        match &self.rules[i].kind {
            RuleKind::RecipientExposure(p) => {
                rules::tier_severity(&p.tiers, f.exposed.len()).unwrap_or(self.severity[i])
            }
            RuleKind::BccHeaderLeak(_)
            | RuleKind::GroupMembersVisible(_)
            | RuleKind::AddressListInContent(_)
            | RuleKind::ContentRegex(_)
            | RuleKind::SeedPhrase(_) => self.severity[i],
        }
    }

    /// The triage's verdict; under the gate profile only the size, with the gate's reason.
    fn assess(&self, msg: &Message<'_>, exposure: &Exposure, tc: &TriageContext<'_>) -> Assessment {
        let quoted = || tc.quoted.map(|q| q(msg)).unwrap_or_default();
        self.assessment(&msg.envelope, exposure, quoted, tc)
    }

    fn assessment(
        &self,
        env: &leakaudit_scanner::Envelope,
        exposure: &Exposure,
        quoted: impl FnOnce() -> Vec<leakaudit_scanner::Address>,
        tc: &TriageContext<'_>,
    ) -> Assessment {
        match tc.profile {
            Profile::Audit => triage::assess(env, exposure, &self.org, &quoted(), tc, &self.triage),
            Profile::Gate => {
                let n = exposure.audience_parties.len();
                let size = if n >= self.triage.critical_parties {
                    Signal::MassExposure
                } else if n >= self.triage.high_parties {
                    Signal::ManyParties
                } else {
                    Signal::FewParties
                };
                Assessment {
                    severity: Severity::Info,
                    signals: vec![size],
                    reasons: vec![format!(
                        "gate profile: {n} external parties can see each other; an outbound \
                         message must never show two"
                    )],
                }
            }
        }
    }

    /// Audit: recipient-exposure and group-members-visible take the triage's severity; a
    /// leaked Bcc keeps at least its rule's severity. An explicit override always wins.
    fn apply_triage(&self, i: usize, f: &mut Finding, a: &Assessment, profile: Profile) {
        f.signals = a.signals.clone();
        f.reasons = a.reasons.clone();
        if profile != Profile::Audit || self.overridden[i] {
            return;
        }
        f.severity = match self.rules[i].kind {
            RuleKind::BccHeaderLeak(_) => f.severity.max(a.severity),
            RuleKind::RecipientExposure(_)
            | RuleKind::GroupMembersVisible(_)
            | RuleKind::AddressListInContent(_)
            | RuleKind::ContentRegex(_)
            | RuleKind::SeedPhrase(_) => a.severity,
        };
    }

    /// Adds the content rules' hits; returns the limits that left text uninspected.
    fn content_rules(&self, ctx: &Ctx<'_, '_>, hits: &mut Vec<(usize, Hit)>) -> LimitsHit {
        let raw = ctx.raw;
        // The scanner measured the header block; fall back to finding the blank line.
        let hl = ctx.msg.envelope.header_len;
        let body_off = if hl > 0 && hl <= raw.len() {
            hl
        } else {
            content::body_start(raw).unwrap_or(raw.len())
        };
        let body = &raw[body_off..];
        let n = self.rules.len();
        let (raw_kw, mime, opaque) = self.prefilter(raw, body_off, n);
        let any_kw = !raw_kw.is_empty();
        let at_enough = self
            .min_at
            .is_some_and(|m| memchr::memchr_iter(b'@', body).take(m).count() >= m);
        // Decode the MIME tree only when it can change the answer: text hidden in base64 or
        // an attached message, or a prefilter hit whose exact match needs the decoded text
        // (quoted-printable soft breaks, `=3D`, HTML). Everything else is inspected raw.
        let decode = mime && (any_kw || at_enough || opaque);
        if !(decode || at_enough || any_kw || self.has_unconditional_content) {
            return LimitsHit::default();
        }
        let mut cut = LimitsHit::default();
        let segs: Vec<Segment<'_>> = if decode {
            let (segs, hit) = content::segments_checked(raw, &self.limits, content::Layout::Flat);
            cut = hit;
            segs
        } else {
            vec![Segment {
                text: Cow::Borrowed(body),
                what: Cow::Borrowed("body"),
                raw_offset: Some(body_off),
            }]
        };
        // candidate[rule * segments + segment]: keyword prefilter, then the RegexSet. Left
        // empty (no allocation) in the common case where no keyword occurs at all.
        let ns = segs.len();
        let mut candidate: Vec<bool> = Vec::new();
        if any_kw || decode || !self.always.is_empty() {
            for (si, seg) in segs.iter().enumerate() {
                let kw = if decode {
                    self.keyword_hits(&seg.text, n)
                } else {
                    raw_kw.clone()
                };
                if kw.is_empty() && self.always.is_empty() {
                    continue;
                }
                if candidate.is_empty() {
                    candidate = vec![false; n * ns];
                }
                for (i, hit) in kw.iter().enumerate() {
                    if *hit {
                        candidate[i * ns + si] = true;
                    }
                }
                for &i in &self.always {
                    candidate[i * ns + si] = true;
                }
                if let Some(set) = &self.set {
                    let m = set.matches(&seg.text);
                    for (k, &i) in self.set_rule.iter().enumerate() {
                        if !m.matched(k) {
                            candidate[i * ns + si] = false;
                        }
                    }
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !r.kind.is_content() {
                continue;
            }
            let cand: &[bool] = if candidate.is_empty() {
                &[]
            } else {
                &candidate[i * ns..(i + 1) * ns]
            };
            let wanted = match &r.kind {
                RuleKind::ContentRegex(_) => cand.iter().any(|c| *c),
                RuleKind::AddressListInContent(_) => decode || at_enough,
                RuleKind::SeedPhrase(_)
                | RuleKind::RecipientExposure(_)
                | RuleKind::BccHeaderLeak(_)
                | RuleKind::GroupMembersVisible(_) => true,
            };
            if !wanted || r.allow.skips_message(ctx.msg) {
                continue;
            }
            let hit = match &r.kind {
                RuleKind::ContentRegex(p) => {
                    rules::content_regex::check(p, &r.allow, ctx, &segs, cand, &r.info.summary)
                }
                RuleKind::AddressListInContent(p) => rules::address_list_in_content::check(
                    p,
                    &r.allow,
                    ctx,
                    &segs,
                    &self.limits,
                    &mut cut,
                ),
                RuleKind::SeedPhrase(p) => rules::seed_phrase::check(p, &r.allow, ctx, &segs),
                // Header rules ran before the content pass.
                RuleKind::RecipientExposure(_)
                | RuleKind::BccHeaderLeak(_)
                | RuleKind::GroupMembersVisible(_) => None,
            };
            if let Some(h) = hit {
                hits.push((i, h));
            }
        }
        cut
    }

    /// One pass over the stored message: keyword hits in the body (by rule), and whether
    /// MIME decoding could matter (`mime`) or is needed to see some text at all (`opaque`).
    /// The keyword vector is empty (not allocated) when no keyword occurs.
    fn prefilter(&self, raw: &[u8], body_off: usize, n: usize) -> (Vec<bool>, bool, bool) {
        let mut hit: Vec<bool> = Vec::new();
        let (mut mime, mut opaque) = (false, false);
        for m in self.ac.find_iter(raw) {
            match self.ac_pattern[m.pattern().as_usize()] {
                Pattern::Keyword(i) if m.start() >= body_off => {
                    hit.resize(n, false);
                    hit[i] = true;
                }
                Pattern::Keyword(_) => {}
                Pattern::Mime => mime = true,
                Pattern::Opaque => {
                    mime = true;
                    opaque = true;
                }
            }
        }
        (hit, mime, opaque)
    }

    fn keyword_hits(&self, text: &[u8], n: usize) -> Vec<bool> {
        let mut hit: Vec<bool> = Vec::new();
        for m in self.ac.find_iter(text) {
            if let Pattern::Keyword(i) = self.ac_pattern[m.pattern().as_usize()] {
                hit.resize(n, false);
                hit[i] = true;
            }
        }
        hit
    }

    fn finding(&self, i: usize, h: Hit, msg: &Message<'_>, raw: &[u8], key: &str) -> Finding {
        let r = &self.rules[i];
        let severity = if self.overridden[i] {
            self.severity[i]
        } else {
            h.severity.unwrap_or(self.severity[i])
        };
        // In an mbox this is the line within the message; SARIF adds the message's own line.
        let line = h.raw_offset.map(|off| content::line_of(raw, off));
        let env = &msg.envelope;
        Finding {
            rule_id: r.info.id.clone(),
            severity,
            fingerprint: fingerprint(&r.info.id, key, &h.evidence),
            message: h.message,
            hint: r.info.hint.clone(),
            location: msg.location.clone(),
            line,
            message_id: env.message_id.clone(),
            date: env.date,
            from: env.from.first().map(|m| m.address.to_string()),
            subject: env.subject.clone(),
            evidence: h.evidence,
            exposed: h.exposed,
            audience_parties: h.audience_parties,
            signals: Vec::new(),
            reasons: Vec::new(),
            profile: None,
        }
    }
}

/// Header rules about who saw whom: ranked by the triage under the audit profile.
fn is_exposure(k: &RuleKind) -> bool {
    matches!(
        k,
        RuleKind::RecipientExposure(_)
            | RuleKind::BccHeaderLeak(_)
            | RuleKind::GroupMembersVisible(_)
    )
}

/// The first enabled recipient-exposure rule's triage thresholds (the defaults without one).
fn exposure_thresholds<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Thresholds {
    rules
        .into_iter()
        .find_map(|r| match &r.kind {
            RuleKind::RecipientExposure(p) => Some(p.triage.clone()),
            RuleKind::BccHeaderLeak(_)
            | RuleKind::GroupMembersVisible(_)
            | RuleKind::AddressListInContent(_)
            | RuleKind::ContentRegex(_)
            | RuleKind::SeedPhrase(_) => None,
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_sync() {
        fn sync<T: Sync + Send>() {}
        sync::<Engine>();
    }
}
