//! leakaudit-report: campaigns, the incident report (HTML, JSON summary, breach record).
//!
//! Data flow: the CLI collects an [`IncidentData`] (scan totals, one [`MessageRecord`] per
//! message with a finding, the affected-user list, the plan totals); [`Summary::build`] groups
//! the exposing messages into [`campaign::Campaign`]s and computes every number once; the
//! renderers ([`html`], [`breach`], `summary.json`) only format that one `Summary`, so the
//! outputs cannot disagree with each other. The crate never prints.
#![cfg_attr(test, allow(clippy::print_stdout, clippy::print_stderr))]

pub mod breach;
pub mod campaign;
pub mod data;
pub mod escape;
pub mod html;
pub mod pseudo;
pub mod summary;
pub mod svg;
pub mod text;

pub use campaign::{Campaign, CampaignOptions};
pub use data::{
    AffectedTotals, AffectedUser, FindingRef, IncidentData, MessageRecord, PlanDelta, PlanTotals,
    ScanTotals, TriageTotals,
};
pub use pseudo::Pseudonymiser;
pub use summary::{Summary, SUMMARY_SCHEMA_ID, SUMMARY_VERSION};

use std::path::{Path, PathBuf};

/// How the report is rendered.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Show addresses in clear (default: pseudonymised).
    pub show_addresses: bool,
    pub campaigns: CampaignOptions,
    /// Key for the pseudonym tags; a random per-run key when `None`.
    pub pseudonym_key: Option<Vec<u8>>,
}

/// Errors while writing the report files.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialise the summary: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no random key for the pseudonyms: {0}")]
    Random(String),
}

/// The files [`write_report`] produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub html: PathBuf,
    pub summary: PathBuf,
    pub breach_record: PathBuf,
    /// Every exposing message with its campaign (`campaigns.csv`).
    pub campaigns: PathBuf,
}

/// Builds the summary and writes `report.html`, `summary.json`, `breach-record.md` and
/// `campaigns.csv` into `dir` (each atomically, mode 0600). Returns the summary it wrote.
pub fn write_report(
    dir: &Path,
    mut data: IncidentData,
    opts: &ReportOptions,
) -> Result<(Summary, Written), ReportError> {
    let pseudo = Pseudonymiser::new(opts.show_addresses, opts.pseudonym_key.as_deref())
        .map_err(|e| ReportError::Random(e.to_string()))?;
    let copies = data::dedup_messages(&mut data.messages);
    let data = &data;
    let campaigns = campaign::group(&data.messages, &opts.campaigns);
    let mut summary = Summary::from_campaigns(data, &campaigns, &opts.campaigns, &pseudo);
    summary.headline.duplicate_copies = copies;
    let written = Written {
        html: dir.join("report.html"),
        summary: dir.join("summary.json"),
        breach_record: dir.join("breach-record.md"),
        campaigns: dir.join("campaigns.csv"),
    };
    write(
        &written.campaigns,
        campaign::to_csv(&campaigns, &data.messages).as_bytes(),
    )?;
    let json = serde_json::to_vec_pretty(&summary)?;
    write(&written.summary, &json)?;
    let page = html::render(&summary, data, &pseudo, opts);
    write(&written.html, page.as_bytes())?;
    let record = breach::render(&summary);
    write(&written.breach_record, record.as_bytes())?;
    Ok((summary, written))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    leakaudit_scanner::io::write_bytes_atomic(path, bytes).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Seconds since the epoch now (UTC), for `generated_at`.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Parses an RFC 3339 time (`2019-11-04T08:30:00Z`, `...+01:00`) or `YYYY-MM-DD HH:MM`
/// (taken as UTC) into seconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Some(t) = leakaudit_scanner::time::parse_rfc3339(s) {
        return Some(t);
    }
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use leakaudit_policy::Severity;
    use leakaudit_scanner::{Address, ExposedAddress, Field, Location};
    use std::os::unix::fs::PermissionsExt;

    const T0: i64 = 1_572_598_800;

    fn record(n: u64, subject: &str, date: Option<i64>, addrs: &[&str]) -> MessageRecord {
        MessageRecord {
            location: Location::in_mbox("a.mbox".into(), n * 100, n + 1),
            message_id: Some(format!("m{n}@kx.example")),
            date,
            from: Some("noreply@kx.example".into()),
            subject: Some(subject.into()),
            exposed: addrs
                .iter()
                .map(|a| ExposedAddress {
                    address: Address::parse(a).unwrap(),
                    fields: vec![Field::To].into(),
                    party: if a.ends_with("@corp.example") {
                        "corp.example".into()
                    } else {
                        (*a).into()
                    },
                    audience: addrs.len() - 1,
                    in_group: false,
                    source: None,
                })
                .collect(),
            audience_parties: addrs.len(),
            findings: vec![FindingRef {
                rule_id: "recipient-exposure".into(),
                severity: Severity::High,
            }],
        }
    }

    fn data() -> IncidentData {
        let a = ["ann@gmail.com", "bob@yahoo.com", "cy@corp.example"];
        IncidentData {
            tool_version: "0.1.0".into(),
            inputs: vec!["a.mbox".into()],
            accounts_store: Some("accounts.sqlite".into()),
            generated_at: T0 + 86400,
            detected_at: T0 + 3600,
            scan: ScanTotals {
                messages: 40,
                bytes: 12_345,
                by_format: [("mbox".to_string(), 40)].into(),
                problems: 0,
                errors: 0,
            },
            message_dates: (0..40).map(|k| T0 - 86400 + k * 3600).collect(),
            messages: vec![
                record(0, "<script>alert(1)</script> Notice", Some(T0), &a),
                record(
                    1,
                    "<script>alert(1)</script> Notice 2",
                    Some(T0 + 60),
                    &a[..2],
                ),
                record(2, "Undated", None, &a[1..]),
            ],
            affected: a
                .iter()
                .enumerate()
                .map(|(i, x)| AffectedUser {
                    address: (*x).into(),
                    account_ids: if i == 0 { vec!["A1".into()] } else { vec![] },
                    messages: 2,
                    audience: 2,
                    first: Some(T0),
                    last: Some(T0 + 60),
                })
                .collect(),
            plan: PlanTotals {
                resets: 1,
                reviews: 0,
                notifications: 1,
                file: Some("plan.json".into()),
                hash: Some("sha256:00".into()),
                ..PlanTotals::default()
            },
            triage: TriageTotals {
                profile: "audit".into(),
                min_severity: "medium".into(),
                addresses_below_min_severity: 3,
                suggested_internal_domains: vec!["sub.shop.example".into()],
            },
        }
    }

    #[test]
    fn breach_record_listed_failed_login_monitoring_without_data_regression() {
        let measure = "Monitoring of failed logins";
        for with_data in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut d = data();
            d.plan.failed_login_data = with_data;
            let (summary, written) =
                write_report(dir.path(), d.clone(), &ReportOptions::default()).unwrap();
            let record = std::fs::read_to_string(&written.breach_record).unwrap();
            assert_eq!(record.contains(measure), with_data, "{record}");
            assert_eq!(summary.plan.failed_login_data, with_data);
        }
    }

    #[test]
    fn writes_three_private_files_that_agree() {
        let dir = tempfile::tempdir().unwrap();
        let (summary, written) =
            write_report(dir.path(), data(), &ReportOptions::default()).unwrap();
        for p in [&written.html, &written.summary, &written.breach_record] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let h = &summary.headline;
        assert_eq!(h.exposing_messages, 3);
        assert_eq!(h.campaigns, 1);
        assert_eq!(
            h.single_messages, 1,
            "the undated message is a single message"
        );
        assert!(
            h.sentence.starts_with("Mass mailing \""),
            "the headline names the campaign: {}",
            h.sentence
        );
        assert_eq!(h.addresses_exposed, 3);
        assert_eq!(h.accounts_affected, 1);
        assert_eq!(h.exposed_without_account, 2);
        assert_eq!(h.address_exposures, 7);
        assert_eq!(summary.timeline.undated_exposing_messages, 1);
        assert_eq!(summary.data_subjects.consumer_addresses, 2);
        assert_eq!(summary.data_subjects.business_domains, 1);
        assert_eq!(summary.notification_deadline, "2019-11-04T10:00:00Z");

        let html = std::fs::read_to_string(&written.html).unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; Notice"));
        assert!(!html.contains("ann@gmail.com"));
        assert!(html.contains(r#"data-metric="addresses_exposed" data-value="3">3<"#));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no link out"
        );
        let md = std::fs::read_to_string(&written.breach_record).unwrap();
        assert!(md.contains("2019-11-04T10:00:00Z"));
        assert!(!md.contains("<script>"));
    }

    #[test]
    fn summary_json_validates_against_the_shipped_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schema/summary.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
        let dir = tempfile::tempdir().unwrap();
        for d in [data(), IncidentData::default()] {
            let (_, written) =
                write_report(dir.path(), d.clone(), &ReportOptions::default()).unwrap();
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&written.summary).unwrap()).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&json)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:#?}");
        }
        // The schema is strict enough to catch a wrong value.
        let (_, written) = write_report(dir.path(), data(), &ReportOptions::default()).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&written.summary).unwrap()).unwrap();
        json["headline"]["campaigns"] = serde_json::json!(-1);
        assert!(!validator.is_valid(&json));
        // Every headline field the struct writes is documented in the schema.
        let props = &schema["properties"]["headline"]["properties"];
        for k in json["headline"].as_object().unwrap().keys() {
            assert!(props.get(k).is_some(), "headline.{k} not in the schema");
        }
        for k in json.as_object().unwrap().keys() {
            assert!(
                schema["properties"].get(k).is_some(),
                "{k} not in the schema"
            );
        }
    }

    #[test]
    fn show_addresses_and_a_fixed_key() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ReportOptions {
            show_addresses: true,
            ..ReportOptions::default()
        };
        let (s, w) = write_report(dir.path(), data(), &opts).unwrap();
        assert!(!s.pseudonymised);
        assert!(std::fs::read_to_string(&w.html)
            .unwrap()
            .contains("ann@gmail.com"));
        let keyed = ReportOptions {
            pseudonym_key: Some(b"k".to_vec()),
            ..ReportOptions::default()
        };
        let (_, w) = write_report(dir.path(), data(), &keyed).unwrap();
        let one = std::fs::read_to_string(&w.html).unwrap();
        let (_, w) = write_report(dir.path(), data(), &keyed).unwrap();
        assert_eq!(
            one,
            std::fs::read_to_string(&w.html).unwrap(),
            "same key, same page"
        );
    }

    #[test]
    fn copies_of_one_message_count_once() {
        let mut d = data();
        d.messages.push(d.messages[0].clone());
        let mut other = d.messages[2].clone();
        other.message_id = None; // no Message-ID: never merged
        d.messages.push(other);
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = write_report(dir.path(), d.clone(), &ReportOptions::default()).unwrap();
        assert_eq!(s.headline.duplicate_copies, 1);
        assert_eq!(s.headline.exposing_messages, 4);
        assert_eq!(s.headline.address_exposures, 9);
    }

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("2019-11-01T09:00:00Z"), Some(T0));
        assert_eq!(parse_time("2019-11-01T10:00:00+01:00"), Some(T0));
        assert_eq!(parse_time("2019-11-01 09:00"), Some(T0));
        assert_eq!(parse_time("yesterday"), None);
    }
}
