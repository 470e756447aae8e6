//! Every header form of issue 2 through the library: one fixture under `fixtures/headers/`
//! per form, parsed with `parse_envelope`, checked field by field.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use leakaudit_scanner::headers::{parse_envelope, HeaderError};
use leakaudit_scanner::{Envelope, Field, HeaderWarningKind};
use std::path::PathBuf;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/headers")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn env(name: &str) -> Envelope {
    parse_envelope(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `(field, address)` for every recipient, in order.
fn rcpts(e: &Envelope) -> Vec<(Field, String)> {
    e.recipients
        .iter()
        .map(|r| (r.field, r.mailbox.address.to_string()))
        .collect()
}

fn displays(e: &Envelope) -> Vec<Option<String>> {
    e.recipients
        .iter()
        .map(|r| r.mailbox.display.clone())
        .collect()
}

fn to(addrs: &[&str]) -> Vec<(Field, String)> {
    addrs.iter().map(|a| (Field::To, a.to_string())).collect()
}

#[test]
fn folded_lf_and_crlf_give_the_same_envelope() {
    let lf = env("folded-lf.eml");
    let crlf = env("folded-crlf.eml");
    let expect = to(&["alice@gmail.com", "bob@yahoo.com", "carol@acme.example"]);
    assert_eq!(rcpts(&lf), expect);
    assert_eq!(rcpts(&crlf), expect);
    assert_eq!(lf.subject.as_deref(), Some("Your order has shipped"));
    assert_eq!(crlf.subject, lf.subject);
    assert_eq!(
        displays(&lf),
        vec![
            Some("Alice Anders".into()),
            Some("Bob Brown".into()),
            Some("Carol".into())
        ]
    );
    assert_eq!(displays(&crlf), displays(&lf));
    // 2026-03-03 10:00:00 +0100 = 09:00:00 UTC
    assert_eq!(lf.date, Some(1_772_528_400));
    assert_eq!(
        lf.date_raw.as_deref(),
        Some("Tue, 3 Mar 2026 10:00:00 +0100")
    );
    assert_eq!(lf.message_id.as_deref(), Some("folded-lf@shop.example"));
    assert_eq!(crlf.message_id.as_deref(), Some("folded-crlf@shop.example"));
    // header_len ends right after the blank line, whatever the line ending.
    let raw_lf = read("folded-lf.eml");
    let raw_crlf = read("folded-crlf.eml");
    assert!(raw_lf[..lf.header_len].ends_with(b"\n\n"));
    assert!(raw_crlf[..crlf.header_len].ends_with(b"\r\n\r\n"));
    assert_eq!(&raw_lf[lf.header_len..], b"Body line.\n");
    assert_eq!(&raw_crlf[crlf.header_len..], b"Body line.\r\n");
    assert!(lf.warnings.is_empty(), "{:?}", lf.warnings);
    assert!(crlf.warnings.is_empty(), "{:?}", crlf.warnings);
}

#[test]
fn repeated_cc_headers_both_count() {
    let e = env("repeated-cc.eml");
    assert_eq!(
        rcpts(&e),
        vec![
            (Field::To, "alice@gmail.com".into()),
            (Field::Cc, "bob@yahoo.com".into()),
            (Field::Cc, "carol@acme.example".into()),
            (Field::Cc, "dave@hotmail.com".into()),
        ]
    );
}

#[test]
fn encoded_word_display_names_are_decoded() {
    let e = env("encoded-word-name.eml");
    assert_eq!(rcpts(&e), to(&["asa@gmail.com", "francois@free.fr"]));
    assert_eq!(
        displays(&e),
        vec![Some("Åsa Nilsson".into()), Some("François".into())]
    );
    assert_eq!(e.from[0].display.as_deref(), Some("Jürgen Shop"));
    assert_eq!(e.subject.as_deref(), Some("Ihre Bestellung – versandt"));
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn encoded_words_decoding_to_commas_do_not_split_the_list() {
    let e = env("encoded-word-comma.eml");
    assert_eq!(
        rcpts(&e),
        to(&["john@gmail.com", "jane@yahoo.com", "max@web.de"])
    );
    assert_eq!(
        displays(&e),
        vec![
            Some("Doe, John".into()),
            Some("Smith, Jane".into()),
            Some("Miller, Max".into())
        ]
    );
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn quoted_display_names_with_commas_and_at_signs() {
    let e = env("quoted-name-comma-at.eml");
    // The address inside the quotes is a name, not a recipient.
    assert_eq!(
        rcpts(&e),
        to(&["john@gmail.com", "jane@outlook.com", "max@web.de"])
    );
    assert_eq!(
        displays(&e),
        vec![
            Some("Doe, John".into()),
            Some("jane@yahoo.com, the real one".into()),
            Some("Escaped \"quote\", and comma".into())
        ]
    );
}

#[test]
fn comments_are_ignored_even_with_commas() {
    let e = env("comments.eml");
    assert_eq!(
        rcpts(&e),
        to(&["alice@gmail.com", "bob@yahoo.com", "carol@acme.example"])
    );
    assert_eq!(e.from[0].address.as_str(), "shop@shop.example");
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn bare_addresses_without_angle_brackets() {
    let e = env("bare-addresses.eml");
    assert_eq!(
        rcpts(&e),
        to(&[
            "alice@gmail.com",
            "bob@yahoo.com",
            "carol@acme.example",
            "dave@hotmail.com"
        ])
    );
    assert!(displays(&e).iter().all(Option::is_none));
}

#[test]
fn raw_utf8_names_local_parts_and_domains() {
    let e = env("utf8-raw.eml");
    assert_eq!(
        rcpts(&e),
        to(&[
            "josé@xn--exmple-cua.com",
            "李雷@xn--fsqu00a.xn--fiqs8s",
            "zoe@gmail.com"
        ])
    );
    assert_eq!(
        displays(&e),
        vec![
            Some("José Núñez".into()),
            Some("李雷".into()),
            Some("Zoë".into())
        ]
    );
    assert_eq!(e.from[0].address.as_str(), "shop@xn--mller-kva.example");
    assert_eq!(e.subject.as_deref(), Some("Grüße aus Köln"));
}

#[test]
fn undisclosed_recipients_group_has_no_members() {
    let e = env("group-undisclosed.eml");
    assert_eq!(e.groups.len(), 1);
    assert_eq!(e.groups[0].name, "undisclosed-recipients");
    assert_eq!(e.groups[0].field, Field::To);
    assert_eq!(e.groups[0].members, 0);
    assert!(e.recipients.iter().all(|r| r.field == Field::Bcc));
    assert_eq!(e.recipients.len(), 3);
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
}

#[test]
fn named_group_shows_its_members() {
    let e = env("group-members.eml");
    assert_eq!(
        rcpts(&e),
        vec![
            (Field::To, "alice@gmail.com".into()),
            (Field::To, "bob@yahoo.com".into()),
            (Field::To, "other@acme.example".into()),
            (Field::Cc, "carol@web.de".into()),
        ]
    );
    let groups: Vec<Option<usize>> = e.recipients.iter().map(|r| r.group).collect();
    assert_eq!(groups, vec![Some(0), Some(0), None, Some(1)]);
    assert_eq!(e.groups.len(), 2);
    assert_eq!(
        (
            e.groups[0].name.as_str(),
            e.groups[0].field,
            e.groups[0].members
        ),
        ("Clients", Field::To, 2)
    );
    assert_eq!(
        (
            e.groups[1].name.as_str(),
            e.groups[1].field,
            e.groups[1].members
        ),
        ("VIP, list", Field::Cc, 1)
    );
    assert_eq!(e.recipients[1].mailbox.display.as_deref(), Some("Doe, Bob"));
}

#[test]
fn idn_twins_and_case_canonicalise_to_one_address() {
    let e = env("idn-twins.eml");
    assert_eq!(
        rcpts(&e),
        vec![
            (Field::To, "bob@xn--exmple-cua.com".into()),
            (Field::To, "bob@xn--exmple-cua.com".into()),
            (Field::To, "other@xn--bcher-kva.de".into()),
            (Field::Cc, "bob@xn--exmple-cua.com".into()),
        ]
    );
    let m = env("mixed-case-domain.eml");
    assert_eq!(
        rcpts(&m),
        to(&["alice@gmail.com", "alice@gmail.com", "bob@yahoo.com"])
    );
    assert_eq!(m.sender_domain(), Some("shop.example"));
}

#[test]
fn resent_fields_are_recipients() {
    let e = env("resent.eml");
    assert_eq!(
        rcpts(&e),
        vec![
            (Field::ResentTo, "alice@gmail.com".into()),
            (Field::ResentCc, "bob@yahoo.com".into()),
            (Field::ResentBcc, "carol@acme.example".into()),
            (Field::To, "team@shop.example".into()),
        ]
    );
}

#[test]
fn message_without_blank_line_is_all_header() {
    let raw = read("no-blank-line.eml");
    let e = parse_envelope(&raw).unwrap();
    assert_eq!(e.header_len, raw.len());
    assert_eq!(rcpts(&e), to(&["alice@gmail.com"]));
    assert_eq!(e.subject.as_deref(), Some("headers only, no body"));
}

#[test]
fn invalid_encodings_are_warnings_not_errors() {
    let e = env("invalid-encoding.eml");
    assert_eq!(rcpts(&e), to(&["alice@gmail.com", "mueller@web.de"]));
    // The invalid byte is replaced, the rest kept.
    assert_eq!(
        e.recipients[1].mailbox.display.as_deref(),
        Some("M\u{fffd}ller")
    );
    let w: Vec<String> = e.warnings.iter().map(ToString::to_string).collect();
    let w = w.join("\n");
    assert!(w.contains("invalid UTF-8 in To"), "{w}");
    assert!(w.contains("invalid UTF-8 in Subject"), "{w}");
    assert!(w.contains("undecodable encoded word in Subject"), "{w}");
    assert!(w.contains("undecodable encoded word in To"), "{w}");
    let kinds: Vec<(HeaderWarningKind, Option<&str>)> = e
        .warnings
        .iter()
        .map(|w| (w.kind, w.field.as_deref()))
        .collect();
    for want in [
        (HeaderWarningKind::InvalidUtf8, Some("To")),
        (HeaderWarningKind::InvalidUtf8, Some("Subject")),
        (HeaderWarningKind::UndecodableWord, Some("Subject")),
        (HeaderWarningKind::UndecodableWord, Some("To")),
    ] {
        assert!(kinds.contains(&want), "{want:?} in {kinds:?}");
    }
    assert!(e.subject.as_deref().unwrap().ends_with("and caf\u{fffd}"));
}

#[test]
fn address_without_domain_is_a_warning_and_the_rest_is_kept() {
    let e = env("no-domain.eml");
    assert_eq!(rcpts(&e), to(&["alice@gmail.com", "bob@yahoo.com"]));
    assert!(
        e.warnings
            .iter()
            .any(|w| w.to_string() == "address without domain in To: john"
                && w.kind == HeaderWarningKind::AddressWithoutDomain
                && w.detail == "john"),
        "{:?}",
        e.warnings
    );
}

#[test]
fn leading_mbox_from_line_is_skipped() {
    let raw = read("mbox-from-line.eml");
    let e = parse_envelope(&raw).unwrap();
    assert_eq!(rcpts(&e), to(&["alice@gmail.com"]));
    assert_eq!(e.from[0].address.as_str(), "shop@shop.example");
    assert!(raw[..e.header_len].starts_with(b"From shop@"));
}

fn err(name: &str) -> HeaderError {
    parse_envelope(&read(name)).expect_err(name)
}

#[test]
fn malformed_inputs_are_errors_with_a_reason() {
    assert_eq!(err("malformed-empty.eml").reason, "empty message");
    assert_eq!(
        err("malformed-no-header.eml").reason,
        "no header block: the first line is not a header field"
    );
    assert_eq!(
        err("malformed-binary.eml").reason,
        "no header block: binary data where the first header field should be"
    );
}

#[test]
fn every_fixture_parses_or_fails_as_its_name_says() {
    let dir = fixture_path("");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let res = parse_envelope(&std::fs::read(&path).unwrap());
        assert_eq!(
            res.is_err(),
            name.starts_with("malformed-"),
            "{name}: {res:?}"
        );
        n += 1;
    }
    assert!(n >= 20, "only {n} fixtures");
}
