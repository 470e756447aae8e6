//! Compact forms of what an [`crate::ExposedAddress`] carries, so that a message exposing
//! 1,000,000 addresses, copied into its findings and records, stays small: the header fields
//! as a bit set (one byte, no allocation) and the party key as a shared string (a consumer
//! address is its own party: the address's string is reused). Both serialise exactly as the
//! `Vec<Field>` and `String` they replace.

use crate::model::Field;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A set of header fields, iterated (and serialised) in [`Field::ALL`] order.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Fields(u8);

impl Fields {
    fn bit(f: Field) -> u8 {
        1 << (f as u8)
    }
    pub fn insert(&mut self, f: Field) {
        self.0 |= Self::bit(f);
    }
    pub fn contains(&self, f: Field) -> bool {
        self.0 & Self::bit(f) != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }
    /// The fields in [`Field::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Field> + '_ {
        Field::ALL.into_iter().filter(|f| self.contains(*f))
    }
    pub fn to_vec(&self) -> Vec<Field> {
        self.iter().collect()
    }
}

impl FromIterator<Field> for Fields {
    fn from_iter<I: IntoIterator<Item = Field>>(it: I) -> Self {
        let mut s = Fields::default();
        for f in it {
            s.insert(f);
        }
        s
    }
}

impl From<Vec<Field>> for Fields {
    fn from(v: Vec<Field>) -> Self {
        v.into_iter().collect()
    }
}

impl<const N: usize> From<[Field; N]> for Fields {
    fn from(v: [Field; N]) -> Self {
        v.into_iter().collect()
    }
}

impl<const N: usize> PartialEq<[Field; N]> for Fields {
    fn eq(&self, other: &[Field; N]) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl PartialEq<Vec<Field>> for Fields {
    fn eq(&self, other: &Vec<Field>) -> bool {
        self.iter().eq(other.iter().copied())
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Field>::deserialize(d)?.into())
    }
}

/// A party key (an address at a consumer provider, else a domain), shared by reference.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PartyKey(Arc<str>);

impl PartyKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Arc<str>> for PartyKey {
    fn from(s: Arc<str>) -> Self {
        PartyKey(s)
    }
}

impl From<String> for PartyKey {
    fn from(s: String) -> Self {
        PartyKey(s.into())
    }
}

impl From<&str> for PartyKey {
    fn from(s: &str) -> Self {
        PartyKey(s.into())
    }
}

impl AsRef<str> for PartyKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Deref for PartyKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PartyKey {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for PartyKey {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for PartyKey {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl fmt::Debug for PartyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for PartyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_serialise_as_the_list_they_replace() {
        let f: Fields = [Field::Cc, Field::To, Field::ResentBcc].into();
        assert_eq!(f, [Field::To, Field::Cc, Field::ResentBcc]);
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(json, r#"["To","Cc","Resent-Bcc"]"#);
        assert_eq!(json, serde_json::to_string(&f.to_vec()).unwrap());
        let back: Fields = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f);
        assert!(Fields::default().is_empty());
        assert_eq!(serde_json::to_string(&Fields::default()).unwrap(), "[]");
        assert_eq!(format!("{f:?}"), "[To, Cc, ResentBcc]");
    }

    #[test]
    fn party_key_serialises_as_a_string() {
        let p = PartyKey::from("acme.example");
        assert_eq!(p, "acme.example");
        assert_eq!(serde_json::to_string(&p).unwrap(), r#""acme.example""#);
        let back: PartyKey = serde_json::from_str(r#""acme.example""#).unwrap();
        assert_eq!(back, p);
    }
}
