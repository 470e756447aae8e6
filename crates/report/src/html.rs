//! `report.html`: one self-contained page (inline CSS, inline SVG, one tiny inline script
//! allowed by hash), readable offline. A Content-Security-Policy forbids every network
//! fetch and every other script, so even a markup bug could not load or run anything.
//! Headline numbers carry `data-metric="<headline field>"` and `data-value` for machines.

use crate::data::IncidentData;
use crate::escape::html as esc;
use crate::pseudo::Pseudonymiser;
use crate::summary::{Summary, ART33_HOURS};
use crate::svg;
use crate::text::thousands;
use crate::ReportOptions;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// Records script errors and the number of charts into attributes of `<html>`, so a headless
/// browser's `--dump-dom` shows whether the page rendered cleanly.
/// It also records where the headline sentence ends on the page (`data-headline-bottom`, CSS
/// pixels), so a test can tell that the first screen names the incident.
const PROBE_SCRIPT: &str = "(function(){var r=document.documentElement;window.addEventListener('error',function(){r.setAttribute('data-js-errors',String(+(r.getAttribute('data-js-errors')||0)+1));});document.addEventListener('DOMContentLoaded',function(){r.setAttribute('data-charts',String(document.querySelectorAll('svg.chart').length));var h=document.querySelector('[data-headline]');if(h){r.setAttribute('data-headline-bottom',String(Math.round(h.getBoundingClientRect().bottom)));}});})();";

const CSS: &str = r#"
:root{--ink:#1d2733;--muted:#5b6875;--line:#e3e7eb;--bg:#f5f7f9;--red:#c0392b;--amber:#b9770e;--blue:#2f5d8a;--card:#fff}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:28px 24px 48px}
header.top{display:flex;justify-content:space-between;align-items:flex-start;gap:16px;border-bottom:3px solid var(--ink);padding-bottom:14px;margin-bottom:18px}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:11px;color:var(--muted);font-weight:600}
h1{font-size:26px;margin:2px 0 6px}
h2{font-size:16px;margin:0 0 12px}
.meta{color:var(--muted);margin:0;font-size:13px}
.badge{border:1px solid var(--red);color:var(--red);border-radius:4px;padding:4px 10px;font-size:11px;font-weight:700;letter-spacing:.06em;text-transform:uppercase;white-space:nowrap}
.badge.clear{border-color:var(--amber);color:var(--amber)}
.lead{font-size:19px;line-height:1.4;font-weight:600;margin:0 0 14px;overflow-wrap:anywhere}
tr.fold td{color:var(--muted);font-style:italic}
.deadline{background:#fff4f2;border:1px solid #f2c4bd;border-left:5px solid var(--red);border-radius:6px;padding:12px 16px;margin-bottom:18px}
.deadline strong{color:var(--red)}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-bottom:18px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.kpi .v{font-size:28px;font-weight:700;font-variant-numeric:tabular-nums;line-height:1.1}
.kpi .l{color:var(--muted);font-size:12px;margin-top:4px}
.kpi.alert .v{color:var(--red)}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin-bottom:18px}
.note{color:var(--muted);font-size:12.5px;margin:8px 0 0}
table{width:100%;border-collapse:collapse;font-size:13px}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.subj{max-width:380px;overflow-wrap:anywhere}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
.sev{display:inline-block;border-radius:3px;padding:1px 7px;font-size:11px;font-weight:700;text-transform:uppercase;color:#fff}
.sev-critical{background:#7b1d14}.sev-high{background:var(--red)}.sev-medium{background:var(--amber)}.sev-low{background:#6c7a89}.sev-info{background:#9aa5b1}
.subjects div+div{color:var(--muted)}
.two{display:grid;grid-template-columns:1fr 1fr;gap:18px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;font-variant-numeric:tabular-nums}
footer{color:var(--muted);font-size:12px;margin-top:24px}
@media (max-width:800px){.kpis{grid-template-columns:repeat(2,1fr)}.two{grid-template-columns:1fr}}
@media print{body{background:#fff}.card,.kpi{break-inside:avoid;border-color:#ccc}main{padding:0}}
"#;

/// `2019-11-01T09:00:00Z` -> `Fri 1 Nov 2019, 09:00 UTC`.
pub fn human_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|d| {
            d.with_timezone(&Utc)
                .format("%a %-d %b %Y, %H:%M UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

fn opt_time(t: &Option<String>) -> String {
    t.as_deref().map(human_time).unwrap_or_else(|| "—".into())
}

fn sev(s: Option<leakaudit_policy::Severity>) -> String {
    match s {
        Some(s) => format!(r#"<span class="sev sev-{0}">{0}</span>"#, s.as_str()),
        None => "—".into(),
    }
}

fn kpi(out: &mut String, metric: &str, value: usize, label: &str, alert: bool) {
    let _ = write!(
        out,
        r#"<div class="kpi{}"><div class="v" data-metric="{metric}" data-value="{value}">{}</div><div class="l">{}</div></div>"#,
        if alert && value > 0 { " alert" } else { "" },
        thousands(value as u64),
        esc(label)
    );
}

/// Renders the page.
pub fn render(
    s: &Summary,
    data: &IncidentData,
    pseudo: &Pseudonymiser,
    _opts: &ReportOptions,
) -> String {
    let script_hash =
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(PROBE_SCRIPT.as_bytes()));
    let h = &s.headline;
    let mut o = String::with_capacity(64 * 1024);
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en" data-js-errors="0"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"><meta name="referrer" content="no-referrer"><meta name="generator" content="leakaudit {}"><title>Incident report: recipient exposure</title><style>{CSS}</style><script>{PROBE_SCRIPT}</script></head><body><main>"#,
        esc(&s.tool_version)
    );

    // Header.
    let inputs = s
        .inputs
        .iter()
        .map(|i| esc(i))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        o,
        r#"<header class="top"><div><div class="eyebrow">leakaudit · incident report · confidential</div><h1>Recipient exposure incident</h1><p class="meta">Report generated {} · archives: <span class="mono">{inputs}</span>{}</p></div><div class="badge{}">{}</div></header>"#,
        esc(&human_time(&s.generated_at)),
        s.accounts_store
            .as_deref()
            .map(|a| format!(r#" · accounts: <span class="mono">{}</span>"#, esc(a)))
            .unwrap_or_default(),
        if s.pseudonymised { "" } else { " clear" },
        if s.pseudonymised {
            "Addresses pseudonymised"
        } else {
            "Contains personal data: addresses in clear"
        }
    );

    // The incident, in one sentence.
    let _ = write!(
        o,
        r#"<p class="lead" data-headline>{}</p>"#,
        esc(&crate::summary::headline_sentence(
            &s.campaigns,
            &s.singles,
            human_time
        ))
    );

    // Deadline banner.
    let _ = write!(
        o,
        r#"<section class="deadline" data-deadline="{}">GDPR Art. 33: notify the supervisory authority by <strong>{}</strong>, {ART33_HOURS} hours after detection ({}). First exposing message sent {}; last {}.</section>"#,
        esc(&s.notification_deadline),
        esc(&human_time(&s.notification_deadline)),
        esc(&human_time(&s.detected_at)),
        esc(&opt_time(&s.first_exposure)),
        esc(&opt_time(&s.last_exposure)),
    );

    // Headline numbers.
    o.push_str(r#"<section class="kpis" aria-label="Headline numbers">"#);
    kpi(
        &mut o,
        "messages_scanned",
        h.messages_scanned as usize,
        "messages scanned",
        false,
    );
    kpi(
        &mut o,
        "exposing_messages",
        h.exposing_messages,
        "exposing messages",
        true,
    );
    kpi(
        &mut o,
        "campaigns",
        h.campaigns,
        "campaigns (mailings of 2+ chunks)",
        true,
    );
    kpi(
        &mut o,
        "addresses_exposed",
        h.addresses_exposed,
        "addresses exposed",
        true,
    );
    kpi(
        &mut o,
        "accounts_affected",
        h.accounts_affected,
        "accounts affected",
        true,
    );
    kpi(
        &mut o,
        "resets_planned",
        h.resets_planned,
        "password resets planned",
        false,
    );
    kpi(
        &mut o,
        "reviews_planned",
        h.reviews_planned,
        "accounts for human review",
        false,
    );
    kpi(
        &mut o,
        "notifications_planned",
        h.notifications_planned,
        "notifications planned",
        false,
    );
    o.push_str("</section>");

    // Timeline.
    let _ = write!(
        o,
        r#"<section class="card"><h2>Exposing messages over time</h2>{}{}</section>"#,
        svg::timeline(&s.timeline),
        if s.timeline.undated_exposing_messages > 0 {
            format!(
                r#"<p class="note">{} exposing messages have no usable Date header and are not on the chart.</p>"#,
                s.timeline.undated_exposing_messages
            )
        } else {
            String::new()
        }
    );

    // Audience histogram + data subjects.
    let ds = &s.data_subjects;
    let mut domains = String::new();
    for d in &ds.top_consumer_domains {
        let _ = write!(
            domains,
            r#"<tr><td class="mono">{}</td><td class="n">{}</td></tr>"#,
            esc(&d.domain),
            thousands(d.addresses as u64)
        );
    }
    let _ = write!(
        o,
        r#"<section class="card"><h2>Audience of each exposed address</h2>{}<p class="note">Audience: the number of other external parties (a consumer mailbox, or one business domain) that received a message showing the address. Total <span data-metric="address_exposures" data-value="{}">{}</span> address exposures (address × message).</p></section>"#,
        svg::audience_histogram(&s.audience_histogram),
        h.address_exposures,
        thousands(h.address_exposures as u64)
    );

    // Campaigns.
    o.push_str(r#"<section class="card"><h2>Campaigns</h2><table data-table="campaigns"><thead><tr><th>id</th><th>sender</th><th>subject(s)</th><th>first / last chunk</th><th class="n">chunks</th><th class="n">addresses</th><th class="n">max audience</th><th>severity</th></tr></thead><tbody>"#);
    for c in &s.campaigns {
        let subjects: String = c
            .subjects
            .iter()
            .map(|x| format!("<div>{}</div>", esc(x)))
            .collect();
        let _ = write!(
            o,
            r#"<tr data-campaign="{}"><td>{}</td><td class="mono">{}</td><td class="subj subjects">{subjects}</td><td>{}<br>{}</td><td class="n" data-chunks="{}">{}</td><td class="n" data-addresses="{}">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
            esc(&c.id),
            esc(&c.id),
            esc(&c.sender),
            esc(&opt_time(&c.first)),
            esc(&opt_time(&c.last)),
            c.chunks,
            thousands(c.chunks as u64),
            c.addresses_exposed,
            thousands(c.addresses_exposed as u64),
            thousands(c.max_audience as u64),
            sev(c.max_severity)
        );
    }
    // The long tail in one line: each single message is in campaigns.csv, the largest under
    // Top messages.
    if s.singles.messages > 0 {
        let _ = write!(
            o,
            r#"<tr class="fold"><td colspan="8">{} <span data-metric="single_messages" data-value="{}">{}</span> single message{} exposing {} address{} (not part of a campaign; each is listed in campaigns.csv)</td></tr>"#,
            if s.campaigns.is_empty() {
                "No campaign;"
            } else {
                "and"
            },
            s.singles.messages,
            thousands(s.singles.messages as u64),
            if s.singles.messages == 1 { "" } else { "s" },
            thousands(s.singles.addresses_exposed as u64),
            if s.singles.addresses_exposed == 1 {
                ""
            } else {
                "es"
            },
        );
    } else if s.campaigns.is_empty() {
        o.push_str(r#"<tr><td colspan="8">No message exposed anyone.</td></tr>"#);
    }
    let copies = if h.duplicate_copies > 0 {
        format!(
            " {} further copies of these messages (same Message-ID) were found in the archives and are counted once.",
            thousands(h.duplicate_copies as u64)
        )
    } else {
        String::new()
    };
    let _ = write!(
        o,
        r#"</tbody></table><p class="note">A campaign groups the chunks of one mailing: same sender, same subject once numbers and punctuation are ignored, chunks at most {} apart; per-language variants sent by the same sender within {} of each other are merged and listed together.{copies}</p></section>"#,
        esc(&svg::human_secs(s.campaign_options.window_secs)),
        esc(&svg::human_secs(s.campaign_options.variant_gap_secs))
    );

    // Top messages.
    o.push_str(r#"<section class="card"><h2>Top messages</h2><table data-table="messages"><thead><tr><th>campaign</th><th>date</th><th>subject</th><th class="n">exposed</th><th class="n" title="other external parties who saw an exposed address">audience</th><th>rules</th><th>location</th></tr></thead><tbody>"#);
    for m in &s.top_messages {
        let _ = write!(
            o,
            r#"<tr><td>{}</td><td>{}</td><td class="subj">{}</td><td class="n">{}</td><td class="n">{}</td><td>{} <span class="mono">{}</span></td><td class="mono">{}</td></tr>"#,
            esc(m.campaign.as_deref().unwrap_or("—")),
            esc(&opt_time(&m.date)),
            esc(&m.subject),
            thousands(m.addresses_exposed as u64),
            thousands(m.audience as u64),
            sev(m.max_severity),
            esc(&m.rules.join(", ")),
            esc(&m.location)
        );
    }
    if s.top_messages.is_empty() {
        o.push_str(r#"<tr><td colspan="7">No findings.</td></tr>"#);
    }
    o.push_str("</tbody></table></section>");

    // Findings per rule + plan, side by side.
    o.push_str(r#"<div class="two"><section class="card"><h2>Findings per rule</h2><table data-table="rules"><thead><tr><th>rule</th><th>max severity</th><th class="n">findings</th><th class="n">messages</th></tr></thead><tbody>"#);
    for r in &s.findings_by_rule {
        let _ = write!(
            o,
            r#"<tr data-rule="{}"><td class="mono">{}</td><td>{}</td><td class="n" data-findings="{}">{}</td><td class="n">{}</td></tr>"#,
            esc(&r.rule_id),
            esc(&r.rule_id),
            sev(Some(r.max_severity)),
            r.findings,
            thousands(r.findings as u64),
            thousands(r.messages as u64)
        );
    }
    if s.findings_by_rule.is_empty() {
        o.push_str(r#"<tr><td colspan="4">No findings.</td></tr>"#);
    }
    let _ = write!(
        o,
        r#"</tbody></table><p class="note">Total <span data-metric="findings" data-value="{}">{}</span> findings in {} messages.</p></section>"#,
        h.findings,
        thousands(h.findings as u64),
        thousands(h.messages_with_findings as u64)
    );

    let p = &s.plan;
    let status = if p.applied {
        let mut status = format!(
            "Applied: {} actions done, {} failed.",
            p.done.unwrap_or(0),
            p.failed.unwrap_or(0)
        );
        if p.notices > 0 {
            status.push_str(&format!(
                " Notices to exposed addresses without an account: <span data-plan=\"notices_staged\">{}</span> staged, {} failed.",
                p.notices_done.unwrap_or(0),
                p.notices_failed.unwrap_or(0)
            ));
        }
        status
    } else {
        "Dry run: nothing has been changed. Review the plan, then run the same <span class=\"mono\">leakaudit incident</span> command with <span class=\"mono\">--apply</span> (or <span class=\"mono\">leakaudit remediate apply --plan plan.json</span>).".into()
    };
    let status = match p.delta_sentence() {
        Some(d) => format!("{status} <span data-plan=\"delta\">{}</span>", esc(&d)),
        None => status,
    };
    let _ = write!(
        o,
        r#"<section class="card"><h2>Remediation plan</h2><p>{status}</p><dl class="kv"><dt>password resets</dt><dd data-plan="resets">{}</dd><dt>human reviews</dt><dd data-plan="reviews">{}</dd><dt>notifications</dt><dd data-plan="notifications">{}</dd><dt>exposed, no account</dt><dd data-metric="exposed_without_account" data-value="{}">{}</dd><dt>notices without account</dt><dd data-plan="notices_without_account">{}</dd><dt>left out (ranked below {}, profile {})</dt><dd data-plan="below_min_severity">{}</dd><dt>plan file</dt><dd class="mono">{}</dd><dt>plan hash</dt><dd class="mono">{}</dd></dl></section></div>"#,
        thousands(p.resets as u64),
        thousands(p.reviews as u64),
        thousands(p.notifications as u64),
        h.exposed_without_account,
        thousands(h.exposed_without_account as u64),
        thousands(h.notices_without_account_planned as u64),
        esc(&s.triage.min_severity),
        esc(&s.triage.profile),
        thousands(s.triage.addresses_below_min_severity as u64),
        esc(p.file.as_deref().unwrap_or("—")),
        esc(p.hash.as_deref().unwrap_or("—"))
    );

    // Data subjects and the most exposed addresses.
    let mut rows = String::new();
    for a in &data.affected.most_exposed {
        let _ = write!(
            rows,
            r#"<tr><td class="mono">{}</td><td class="n">{}</td><td class="n">{}</td><td>{}</td></tr>"#,
            esc(&pseudo.show(&a.address)),
            thousands(a.audience as u64),
            thousands(a.messages as u64),
            if a.account_ids.is_empty() {
                "no"
            } else {
                "yes"
            }
        );
    }
    let _ = write!(
        o,
        r#"<div class="two"><section class="card"><h2>Data subjects</h2><dl class="kv"><dt>individual mailboxes</dt><dd>{}</dd><dt>business addresses</dt><dd>{} at {} domains</dd></dl><table style="margin-top:10px"><thead><tr><th>consumer provider</th><th class="n">addresses</th></tr></thead><tbody>{domains}</tbody></table></section><section class="card"><h2>Most exposed addresses</h2><table data-table="addresses"><thead><tr><th>address</th><th class="n">audience</th><th class="n">messages</th><th>account</th></tr></thead><tbody>{rows}</tbody></table><p class="note">{}</p></section></div>"#,
        thousands(ds.consumer_addresses as u64),
        thousands(ds.business_addresses as u64),
        thousands(ds.business_domains as u64),
        if pseudo.active() {
            "Addresses are masked and tagged with a keyed hash: one address, one tag, within this report. The full list is in the affected-user file (restricted)."
        } else {
            "Addresses shown in clear (--show-addresses): handle this report as personal data."
        }
    );

    // Scan details and footer.
    let formats = s
        .scan
        .by_format
        .iter()
        .map(|(f, n)| format!("{} {}", thousands(*n), esc(f)))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = write!(
        o,
        r#"<section class="card"><h2>Scan</h2><dl class="kv"><dt>messages</dt><dd>{} ({})</dd><dt>bytes read</dt><dd>{}</dd><dt>problems</dt><dd data-problems="{}">{} ({} errors)</dd></dl>{}</section>"#,
        thousands(s.scan.messages),
        if formats.is_empty() {
            "—".into()
        } else {
            formats
        },
        thousands(s.scan.bytes),
        s.scan.problems,
        thousands(s.scan.problems),
        thousands(s.scan.errors),
        if s.scan.errors > 0 {
            r#"<p class="note"><strong>Some input could not be audited</strong>: the numbers above are a lower bound. See the problems listed by the command.</p>"#
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        r#"<footer>leakaudit {} · summary schema {} v{} (summary.json) · GDPR record: breach-record.md</footer></main></body></html>"#,
        esc(&s.tool_version),
        esc(&s.schema),
        s.version
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_times() {
        assert_eq!(
            human_time("2019-11-01T09:00:00Z"),
            "Fri 1 Nov 2019, 09:00 UTC"
        );
    }
}
