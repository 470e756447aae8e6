use super::*;
use crate::finding::Severity;
use leakaudit_scanner::exposure::analyse;
use leakaudit_scanner::headers::parse_envelope;

fn org() -> Org {
    let mut o = Org::with_defaults();
    o.add_internal_domain("enron.com");
    o.archive_kind = leakaudit_scanner::ArchiveKind::Sent;
    o
}

fn run(raw: &str, ctx: &TriageContext<'_>, quoted: &[Address]) -> Assessment {
    let env = parse_envelope(raw.as_bytes()).unwrap();
    let o = org();
    let x = analyse(&env, &o);
    assert!(x.exposes(), "fixture must expose: {raw}");
    assess(&env, &x, &o, quoted, ctx, &Thresholds::default())
}

fn audit() -> TriageContext<'static> {
    TriageContext {
        profile: Profile::Audit,
        ..TriageContext::default()
    }
}

#[test]
fn sender_copying_his_own_personal_mailbox_is_info() {
    let a = run(
        "From: John Smith <john.smith@enron.com>\nTo: jane@acme.example\nCc: jsmith@aol.com\n\n",
        &audit(),
        &[],
    );
    assert_eq!(a.severity, Severity::Info, "{a:?}");
    assert!(a.signals.contains(&Signal::OwnAddresses));
}

#[test]
fn one_person_at_work_and_home_is_one_party() {
    let a = run(
        "From: john.smith@enron.com\nTo: Mary Jones <mary@acme.example>, \"Jones, Mary\" <mjones77@yahoo.com>\n\n",
        &audit(),
        &[],
    );
    assert_eq!(a.severity, Severity::Info, "{a:?}");
    assert!(a.reasons.iter().any(|r| r.contains("same person")), "{a:?}");
}

#[test]
fn aliases_are_never_parties() {
    let alias = [Address::parse("boss@home.example").unwrap()];
    let ctx = TriageContext {
        aliases: &alias,
        ..audit()
    };
    let raw = "From: x@enron.com\nTo: a@acme.example, boss@home.example\n\n";
    assert_eq!(run(raw, &ctx, &[]).severity, Severity::Info);
    assert_eq!(run(raw, &audit(), &[]).severity, Severity::Medium);
}

#[test]
fn quoted_original_makes_reply_all_low() {
    let raw = "From: x@enron.com\nSubject: budget\nTo: a@acme.example, b@beta.example, c@gamma.example\n\n";
    let q: Vec<Address> = [
        "a@acme.example",
        "b@beta.example",
        "c@gamma.example",
        "z@z.example",
    ]
    .iter()
    .map(|s| Address::parse(s).unwrap())
    .collect();
    let a = run(raw, &audit(), &q);
    assert_eq!(a.severity, Severity::Low, "{a:?}");
    assert!(a.signals.contains(&Signal::QuotedOriginal));
    // One address that was not on the original: the sender added a stranger.
    let a = run(raw, &audit(), &q[..2]);
    assert_eq!(a.severity, Severity::Medium, "{a:?}");
}

#[test]
fn customers_are_counted_by_party() {
    let is_customer = |a: &Address| a.domain() == "gmail.com";
    let ctx = TriageContext {
        is_customer: Some(&is_customer),
        ..audit()
    };
    let a = run(
        "From: noreply@enron.com\nTo: a@gmail.com, b@gmail.com\n\n",
        &ctx,
        &[],
    );
    assert_eq!(a.severity, Severity::High, "{a:?}");
    assert!(a.signals.contains(&Signal::Customers) && a.signals.contains(&Signal::SystemSender));
}
