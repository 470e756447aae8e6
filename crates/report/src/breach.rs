//! `breach-record.md`: the record a controller keeps under GDPR Art. 33(5), laid out along
//! Art. 33(3) (a)-(d), filled from the summary. What the data cannot know (who the controller
//! and the DPO are, the assessment of the risk, the decision to notify) is marked
//! `[TO BE COMPLETED: ...]` for a person; nothing is guessed.

use crate::escape::markdown as md;
use crate::html::human_time;
use crate::summary::{Summary, ART33_HOURS};
use crate::text::thousands;
use std::fmt::Write;

/// The marker of a field a person must fill in.
pub const TODO: &str = "[TO BE COMPLETED:";

fn todo(what: &str) -> String {
    format!("{TODO} {what}]")
}

fn t(s: &Option<String>) -> String {
    s.as_deref()
        .map(human_time)
        .unwrap_or_else(|| todo("date unknown: no exposing message had a usable Date header"))
}

/// Renders the record.
pub fn render(s: &Summary) -> String {
    let h = &s.headline;
    let ds = &s.data_subjects;
    let mut o = String::new();
    let _ = writeln!(o, "# Personal data breach record (GDPR Art. 33)\n");
    let _ = writeln!(
        o,
        "Drafted by leakaudit {} on {} from the audit of: {}. Figures come from the scan; \
         every `{TODO} ...]` field needs a person. Keep this record whether or not the breach \
         is notified (Art. 33(5)).\n",
        s.tool_version,
        human_time(&s.generated_at),
        s.inputs
            .iter()
            .map(|i| format!("`{}`", crate::escape::code(i)))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(o, "## Key dates\n");
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| First exposing message sent | {} |",
        t(&s.first_exposure)
    );
    let _ = writeln!(
        o,
        "| Last exposing message sent | {} |",
        t(&s.last_exposure)
    );
    let _ = writeln!(
        o,
        "| Detected (controller became aware) | {} |",
        human_time(&s.detected_at)
    );
    let _ = writeln!(
        o,
        "| **Notification deadline ({ART33_HOURS} hours after detection)** | **{}** (`{}`) |",
        human_time(&s.notification_deadline),
        s.notification_deadline
    );
    let _ = writeln!(
        o,
        "| Notified to the supervisory authority on | {} |",
        todo("date and reference, or the decision not to notify and why")
    );
    let _ = writeln!(
        o,
        "| Reasons for any delay beyond {ART33_HOURS} hours | {} |\n",
        todo("only if notified late")
    );

    let _ = writeln!(o, "## Controller and contact point (Art. 33(3)(b))\n");
    let _ = writeln!(o, "- Controller: {}", todo("legal name and address"));
    let _ = writeln!(
        o,
        "- Data protection officer or other contact point: {}",
        todo("name, e-mail, telephone")
    );
    let _ = writeln!(
        o,
        "- Lead supervisory authority: {}\n",
        todo("authority and case number")
    );

    let _ = writeln!(o, "## Nature of the breach (Art. 33(3)(a))\n");
    let _ = writeln!(
        o,
        "Breach of **confidentiality**: outgoing e-mail showed recipients' addresses to other \
         recipients (addresses in To/Cc instead of Bcc, or a transmitted Bcc header). \
         {} of {} messages scanned exposed at least one address: {} campaign(s) (mailings of \
         two or more chunks) and {} single message(s). {}\n",
        thousands(h.exposing_messages as u64),
        thousands(h.messages_scanned),
        thousands(h.campaigns as u64),
        thousands(h.single_messages as u64),
        md(&h.sentence)
    );
    for c in &s.campaigns {
        let subjects = c
            .subjects
            .iter()
            .map(|x| format!("\"{}\"", md(x)))
            .collect::<Vec<_>>()
            .join(" / ");
        let _ = writeln!(
            o,
            "- **{}**: {} chunk(s) from `{}`, {} to {}, subject {}: {} addresses exposed, up to {} other parties per address.",
            md(&c.id),
            c.chunks,
            crate::escape::code(&c.sender),
            t(&c.first),
            t(&c.last),
            subjects,
            thousands(c.addresses_exposed as u64),
            thousands(c.max_audience as u64)
        );
    }
    if s.singles.messages > 0 {
        // The largest few by subject; every one is in campaigns.csv.
        let largest = s
            .top_messages
            .iter()
            .filter(|m| m.campaign.is_none() && m.addresses_exposed > 0)
            .take(3)
            .map(|m| {
                format!(
                    "\"{}\" ({} addresses)",
                    md(&m.subject),
                    thousands(m.addresses_exposed as u64)
                )
            })
            .collect::<Vec<_>>();
        let _ =
            writeln!(
            o,
            "- {} {} single message(s) exposing {} address(es){}; each is listed in campaigns.csv.",
            if s.campaigns.is_empty() { "No campaign;" } else { "And" },
            thousands(s.singles.messages as u64),
            thousands(s.singles.addresses_exposed as u64),
            if largest.is_empty() {
                String::new()
            } else {
                format!(", the largest: {}", largest.join(", "))
            }
        );
    } else if s.campaigns.is_empty() {
        let _ = writeln!(o, "- No message exposed an address.");
    }
    let _ = writeln!(
        o,
        "\nHow it happened: {}\n",
        todo("cause (tool, template, person), how it was detected")
    );

    let _ = writeln!(
        o,
        "## Data subjects and records concerned (Art. 33(3)(a))\n"
    );
    let _ = writeln!(
        o,
        "- Approximate number of data subjects: **{}** distinct e-mail addresses exposed",
        thousands(h.addresses_exposed as u64)
    );
    let _ = writeln!(
        o,
        "  - {} individual mailboxes at consumer providers, {} business addresses at {} organisations",
        thousands(ds.consumer_addresses as u64),
        thousands(ds.business_addresses as u64),
        thousands(ds.business_domains as u64)
    );
    let _ = writeln!(
        o,
        "  - {} are holders of customer accounts; {} have no account in the store ({}); {} of them get a notice all the same",
        thousands(h.accounts_affected as u64),
        thousands(h.exposed_without_account as u64),
        todo("who they are: former customers, prospects, partners"),
        thousands(h.notices_without_account_planned as u64)
    );
    if s.triage.addresses_below_min_severity > 0 {
        let _ = writeln!(
            o,
            "  - {} further exposed addresses were ranked below `{}` by the triage (profile `{}`: reply-all on existing threads, known groups, the sender's own addresses) and are not in the response ({})",
            thousands(s.triage.addresses_below_min_severity as u64),
            s.triage.min_severity,
            s.triage.profile,
            todo("confirm that leaving them out is right")
        );
    }
    let _ = writeln!(
        o,
        "- Approximate number of records: **{}** address exposures (one address shown in one message)",
        thousands(h.address_exposures as u64)
    );
    let _ = writeln!(
        o,
        "- Categories of personal data: e-mail address, display name where the message carried one; \
         the fact of being a customer of the sender. Other categories: {}",
        todo("check the message bodies for further data")
    );
    let _ = writeln!(
        o,
        "- Special categories (Art. 9) or data on minors involved: {}\n",
        todo("yes/no")
    );

    let _ = writeln!(o, "## Likely consequences (Art. 33(3)(c))\n");
    let _ = writeln!(
        o,
        "- Every recipient of an exposing message learnt the addresses of up to {} other recipients and that they are customers of the sender.",
        thousands(s.campaigns.iter().map(|c| c.max_audience).max().unwrap_or(0) as u64)
    );
    let _ = writeln!(o, "- Targeted phishing impersonating the sender, using a believable context (\"your account\").");
    let _ = writeln!(o, "- Credential stuffing and account takeover against the exposed accounts, above all those without 2FA that hold a balance.");
    let _ = writeln!(
        o,
        "- Spam, and disclosure of the customer relationship itself."
    );
    let _ = writeln!(o, "- Assessment of the risk to the rights and freedoms of the data subjects: {}\n", todo("low / risk / high risk, with reasons; high risk requires informing the data subjects (Art. 34)"));

    let p = &s.plan;
    let _ = writeln!(o, "## Measures taken or proposed (Art. 33(3)(d))\n");
    let _ = writeln!(
        o,
        "- Remediation plan {}: {} forced password resets, {} accounts for human review, {} notifications to data subjects with an account and {} to exposed addresses without one{}.",
        if p.applied { "**applied**" } else { "**proposed** (dry run, not yet applied)" },
        thousands(p.resets as u64),
        thousands(p.reviews as u64),
        thousands(p.notifications as u64),
        thousands(p.notices as u64),
        p.file
            .as_deref()
            .map(|f| format!(" (plan `{}`, hash `{}`)", crate::escape::code(f), p.hash.as_deref().unwrap_or("-")))
            .unwrap_or_default()
    );
    if let Some(d) = p.delta_sentence() {
        let _ = writeln!(o, "- {}", crate::escape::markdown(&d));
    }
    if let (Some(done), Some(failed)) = (p.done, p.failed) {
        let _ = writeln!(o, "- Actions done: {done}; failed: {failed}.");
    }
    if let (Some(done), Some(failed)) = (p.notices_done, p.notices_failed) {
        let _ = writeln!(
            o,
            "- Notices to exposed addresses without an account staged: {done}; failed: {failed}."
        );
    }
    // Listed only when backed by data: an export without failed-login counts gives nothing
    // to monitor, and the record must not claim a measure that was not possible.
    if p.failed_login_data {
        let _ = writeln!(
            o,
            "- Monitoring of failed logins on the exposed accounts since the first exposing message."
        );
    }
    let _ = writeln!(
        o,
        "- Recall of the message and request to delete it, where the mail system allows: {}",
        todo("done / not possible")
    );
    let _ = writeln!(
        o,
        "- Measures against recurrence: `leakaudit check` as a gate on outgoing mass mail; {}",
        todo("other organisational measures")
    );
    let _ = writeln!(
        o,
        "- Communication to the data subjects (Art. 34): {}\n",
        todo("date and channel, or why not required")
    );

    let _ = writeln!(o, "## Evidence\n");
    let _ = writeln!(o, "- `summary.json` (schema `{}` v{}), `report.html`, the affected-user list and the remediation plan in the same folder.", s.schema, s.version);
    let _ = writeln!(
        o,
        "- Scan: {} messages, {} bytes, {} problems ({} errors){}.",
        thousands(s.scan.messages),
        thousands(s.scan.bytes),
        thousands(s.scan.problems),
        thousands(s.scan.errors),
        if s.scan.errors > 0 {
            "; some input could not be audited, the figures are a lower bound"
        } else {
            ""
        }
    );
    let _ = writeln!(o, "- Record kept by: {}", todo("name and role"));
    o
}
