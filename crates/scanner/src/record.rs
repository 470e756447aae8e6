//! The exposure record: one JSON line per exposing message, written by `leakaudit scan` and
//! read back by `leakaudit affected --findings`. A public, versioned contract: both sides use
//! this one type, so renaming a field breaks the build, not a user's pipeline. The schema is
//! documented in docs/scan.md.

use crate::exposure::{ExposedAddress, Exposure};
use crate::model::{Format, Location, Message};
use serde::{Deserialize, Serialize};

/// Version of the record schema; bump it when a field changes meaning or goes away.
pub const RECORD_VERSION: u32 = 1;

/// One exposing message, as `scan` writes it. Written by [`ExposureRecord::write_json_line`],
/// which spells out every field: a field added here goes there too (its property test
/// compares the line with serde_json's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExposureRecord {
    /// Schema version ([`RECORD_VERSION`]); absent in records written before it existed.
    #[serde(default = "default_version")]
    pub record: u32,
    pub location: Location,
    pub format: Format,
    pub message_id: Option<String>,
    /// RFC 3339 UTC, when the Date header parsed.
    pub date: Option<String>,
    /// The Date header as written.
    pub date_raw: Option<String>,
    /// First From address (canonical).
    pub from: Option<String>,
    /// Decoded subject.
    pub subject: Option<String>,
    /// Every exposed address with its fields, party and audience.
    pub exposed: Vec<ExposedAddress>,
    /// Distinct external parties among all recipients (the possible audience).
    pub audience_size: usize,
    /// Distinct external parties among the visible recipients.
    pub visible_parties: usize,
    /// Envelope recipients (journal reports) who saw the exposed addresses without being
    /// shown themselves ([`Exposure::saw_others`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saw_others: Vec<crate::model::Address>,
    /// How the policy ranked the exposure (set by `scan`; absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<RecordTriage>,
}

/// The ranking of an exposing message, as plain values (the scanner does not know the
/// policy's types): the profile, the severity and the signals' stable codes, with reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordTriage {
    /// `gate` or `audit`.
    pub profile: String,
    /// `info` .. `critical`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

fn default_version() -> u32 {
    RECORD_VERSION
}

impl ExposureRecord {
    /// The record of `msg` given its exposure analysis.
    pub fn new(msg: &Message<'_>, exposure: &Exposure) -> ExposureRecord {
        let env = &msg.envelope;
        ExposureRecord {
            record: RECORD_VERSION,
            location: msg.location.clone(),
            format: msg.format,
            message_id: env.message_id.clone(),
            date: env.date.and_then(crate::time::rfc3339),
            date_raw: env.date_raw.clone(),
            from: env.from.first().map(|m| m.address.as_str().to_owned()),
            subject: env.subject.clone(),
            exposed: exposure.exposed.clone(),
            audience_size: exposure.audience_parties.len(),
            visible_parties: exposure.visible_parties,
            saw_others: exposure.saw_others.clone(),
            triage: None,
        }
    }

    /// Epoch seconds of `date`.
    pub fn date_secs(&self) -> Option<i64> {
        self.date.as_deref().and_then(crate::time::parse_rfc3339)
    }

    /// The record as one JSON line, byte for byte what serde_json writes
    /// ([`crate::io::write_json_line`]; property-tested), with the exposed addresses, most of
    /// a mass mail's record, encoded here: serde_json escapes every key and every string
    /// byte by byte (a tenth of a gate scan's instructions). Streamed to `w` in pieces of
    /// about 64 KiB: a million-address record is never held whole.
    pub fn write_json_line(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        const FLUSH: usize = 64 << 10;
        let mut out: Vec<u8> = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"record\":");
        push_u64(&mut out, u64::from(self.record));
        out.extend_from_slice(b",\"location\":");
        push_json(&mut out, &self.location)?;
        out.extend_from_slice(b",\"format\":\"");
        out.extend_from_slice(self.format.as_str().as_bytes());
        out.push(b'"');
        for (key, v) in [
            (&b",\"message_id\":"[..], &self.message_id),
            (b",\"date\":", &self.date),
            (b",\"date_raw\":", &self.date_raw),
            (b",\"from\":", &self.from),
            (b",\"subject\":", &self.subject),
        ] {
            out.extend_from_slice(key);
            match v {
                Some(s) => push_str(&mut out, s)?,
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b",\"exposed\":[");
        for (i, x) in self.exposed.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"address\":");
            push_str(&mut out, x.address.as_str())?;
            out.extend_from_slice(b",\"fields\":[");
            for (j, f) in x.fields.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(f.header_name().as_bytes());
                out.push(b'"');
            }
            out.extend_from_slice(b"],\"party\":");
            push_str(&mut out, x.party.as_str())?;
            out.extend_from_slice(b",\"audience\":");
            push_u64(&mut out, x.audience as u64);
            if x.in_group {
                out.extend_from_slice(b",\"in_group\":true");
            }
            if let Some(source) = &x.source {
                out.extend_from_slice(b",\"source\":");
                push_str(&mut out, source)?;
            }
            out.push(b'}');
            if out.len() >= FLUSH {
                w.write_all(&out)?;
                out.clear();
            }
        }
        out.extend_from_slice(b"],\"audience_size\":");
        push_u64(&mut out, self.audience_size as u64);
        out.extend_from_slice(b",\"visible_parties\":");
        push_u64(&mut out, self.visible_parties as u64);
        if !self.saw_others.is_empty() {
            out.extend_from_slice(b",\"saw_others\":");
            push_json(&mut out, &self.saw_others)?;
        }
        if let Some(t) = &self.triage {
            out.extend_from_slice(b",\"triage\":");
            push_json(&mut out, t)?;
        }
        out.extend_from_slice(b"}\n");
        w.write_all(&out)
    }
}

/// A cold part of a record (and any string that needs escaping), through serde_json.
fn push_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> std::io::Result<()> {
    serde_json::to_writer(out, v).map_err(std::io::Error::other)
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `s` as a JSON string: copied as it is when no byte needs escaping (a quote, a backslash, a
/// control character; eight bytes at a time), else serde_json's escaping.
fn push_str(out: &mut Vec<u8>, s: &str) -> std::io::Result<()> {
    if needs_escape(s.as_bytes()) {
        return push_json(out, s);
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether `b` holds a byte below 0x20, a `"` or a `\\` (the bytes JSON escapes).
fn needs_escape(b: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // A zero byte in `x`, or a byte below `n` (<= 0x80): exact, no false answers.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH != 0;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_ne_bytes(c.try_into().expect("8 bytes"));
        if below(x, 0x20)
            || zero(x ^ (ONES * u64::from(b'"')))
            || zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    (chunks.remainder().iter()).any(|&c| c < 0x20 || c == b'"' || c == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::{Fields, PartyKey};
    use crate::exposure::{analyse, Org};
    use crate::model::{Address, Field};
    use proptest::prelude::*;

    /// Text with everything JSON escapes, and more: quotes, backslashes, control bytes, DEL,
    /// non-ASCII (two-, three- and four-byte), runs long enough for the eight-byte check.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z.@-]{0,40}",
            "[\\x00-\\x7f]{0,20}",
            "[a-z\"\\\\\\x1f\\x7fé\u{2028}\u{1F600}]{0,20}",
        ]
    }

    fn exposed() -> impl Strategy<Value = ExposedAddress> {
        (
            text(),
            proptest::sample::subsequence(Field::ALL.to_vec(), 0..=3),
            text(),
            any::<usize>(),
            any::<bool>(),
            proptest::option::of(text()),
        )
            .prop_map(
                |(a, fields, p, audience, in_group, source)| ExposedAddress {
                    address: Address::from_canonical_str(&a),
                    fields: Fields::from(fields),
                    party: PartyKey::from(p),
                    audience,
                    in_group,
                    source: source.map(Into::into),
                },
            )
    }

    fn record() -> impl Strategy<Value = ExposureRecord> {
        (
            (any::<u32>(), text(), proptest::option::of(any::<u64>())),
            proptest::sample::select(vec![Format::Mbox, Format::Eml, Format::Ses]),
            proptest::collection::vec(proptest::option::of(text()), 5),
            proptest::collection::vec(exposed(), 0..5),
            (any::<usize>(), any::<usize>()),
            proptest::collection::vec(text(), 0..3),
            proptest::option::of((text(), proptest::collection::vec(text(), 0..3))),
        )
            .prop_map(
                |((record, path, offset), format, texts, exposed, (a, v), saw, triage)| {
                    let mut location = Location::file(path);
                    location.offset = offset;
                    location.index = offset.map(|o| o / 2);
                    ExposureRecord {
                        record,
                        location,
                        format,
                        message_id: texts[0].clone(),
                        date: texts[1].clone(),
                        date_raw: texts[2].clone(),
                        from: texts[3].clone(),
                        subject: texts[4].clone(),
                        exposed,
                        audience_size: a,
                        visible_parties: v,
                        saw_others: saw.iter().map(|s| Address::from_canonical_str(s)).collect(),
                        triage: triage.map(|(severity, reasons)| RecordTriage {
                            profile: "gate".into(),
                            severity,
                            signals: reasons.iter().map(|r| r.to_uppercase()).collect(),
                            reasons,
                        }),
                    }
                },
            )
    }

    proptest! {
        /// The hand-written line is serde_json's line, byte for byte.
        #[test]
        fn record_line_is_serde_json_line(rec in record()) {
            let mut want = Vec::new();
            crate::io::write_json_line(&mut want, &rec).unwrap();
            let mut got = Vec::new();
            rec.write_json_line(&mut got).unwrap();
            prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        }

        /// The eight-byte check finds every byte that JSON escapes, wherever it sits.
        #[test]
        fn needs_escape_is_exact(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let want = b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
            prop_assert_eq!(needs_escape(&b), want);
        }
    }

    #[test]
    fn a_mass_mails_record_is_streamed_alike() {
        let x = |i: usize| ExposedAddress {
            address: Address::from_canonical_str(&format!("user{i}@gmail.com")),
            fields: Fields::from(vec![Field::To]),
            party: PartyKey::from(format!("user{i}@gmail.com")),
            audience: 2999,
            in_group: false,
            source: None,
        };
        let rec = ExposureRecord {
            record: RECORD_VERSION,
            location: Location::in_mbox("a.mbox".into(), 10, 2),
            format: Format::Mbox,
            message_id: None,
            date: None,
            date_raw: None,
            from: Some("news@shop.example".into()),
            subject: Some("Hello \"you\"".into()),
            exposed: (0..3000).map(x).collect(),
            audience_size: 3000,
            visible_parties: 3000,
            saw_others: Vec::new(),
            triage: None,
        };
        let mut want = Vec::new();
        crate::io::write_json_line(&mut want, &rec).unwrap();
        let mut got = Vec::new();
        rec.write_json_line(&mut got).unwrap();
        assert!(want.len() > 64 << 10, "crosses a flush");
        assert_eq!(got, want);
    }

    #[test]
    fn written_and_read_back_alike() {
        let raw = b"From: shop@shop.example\r\nTo: a@gmail.com, b@yahoo.com\r\nDate: Fri, 01 Nov 2019 09:00:00 +0000\r\nMessage-ID: <m1@shop.example>\r\nSubject: Hello\r\n\r\nbody\r\n";
        let msg = Message::from_bytes_at(raw, Location::file("x.eml")).unwrap();
        let exp = analyse(&msg.envelope, &Org::with_defaults());
        let rec = ExposureRecord::new(&msg, &exp);
        assert_eq!(rec.date.as_deref(), Some("2019-11-01T09:00:00Z"));
        assert_eq!(rec.date_secs(), Some(1_572_598_800));
        assert_eq!(rec.exposed.len(), 2);
        let line = serde_json::to_string(&rec).unwrap();
        let back: ExposureRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        // Field names are the contract.
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in [
            "record",
            "location",
            "format",
            "message_id",
            "date",
            "date_raw",
            "from",
            "subject",
            "exposed",
            "audience_size",
            "visible_parties",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
    }
}
