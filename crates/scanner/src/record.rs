//! The exposure record: one JSON line per exposing message, written by `leakaudit scan` and
//! read back by `leakaudit affected --findings`. A public, versioned contract: both sides use
//! this one type, so renaming a field breaks the build, not a user's pipeline. The schema is
//! documented in docs/scan.md.

use crate::exposure::{ExposedAddress, Exposure};
use crate::model::{Format, Location, Message};
use serde::{Deserialize, Serialize};

/// Version of the record schema; bump it when a field changes meaning or goes away.
pub const RECORD_VERSION: u32 = 1;

/// One exposing message, as `scan` writes it.
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposure::{analyse, Org};

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
