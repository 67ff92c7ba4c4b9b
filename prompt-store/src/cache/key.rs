//! Keys of the version caches, looked up without allocating.
//!
//! An entry's key owns the prompt's name; a lookup only borrows it. A tuple of owned
//! parts cannot be borrowed as a tuple of borrowed ones, so both implement
//! [`KeyParts`] and the owned key borrows as `dyn KeyParts` (the usual idiom for
//! composite keys): a resolve that hits the cache builds no `String`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use uuid::Uuid;

/// What a stored key and a lookup have in common: (project, prompt name, selector part:
/// a version number or a label).
pub(super) trait KeyParts<P: ?Sized> {
    /// The three parts, borrowed.
    fn parts(&self) -> (Uuid, &str, &P);
}

/// The key an entry is stored under.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct OwnedKey<O> {
    project: Uuid,
    name: String,
    part: O,
}

impl<O> OwnedKey<O> {
    pub(super) fn new(project: Uuid, name: &str, part: O) -> Self {
        OwnedKey {
            project,
            name: name.to_owned(),
            part,
        }
    }
}

/// The key of a lookup, borrowing its parts.
pub(super) struct Probe<'a, P: ?Sized> {
    pub(super) project: Uuid,
    pub(super) name: &'a str,
    pub(super) part: &'a P,
}

impl<O: Borrow<P>, P: ?Sized> KeyParts<P> for OwnedKey<O> {
    fn parts(&self) -> (Uuid, &str, &P) {
        (self.project, &self.name, self.part.borrow())
    }
}

impl<P: ?Sized> KeyParts<P> for Probe<'_, P> {
    fn parts(&self) -> (Uuid, &str, &P) {
        (self.project, self.name, self.part)
    }
}

impl<'a, O, P> Borrow<dyn KeyParts<P> + 'a> for OwnedKey<O>
where
    O: Borrow<P> + 'a,
    P: ?Sized + 'a,
{
    fn borrow(&self) -> &(dyn KeyParts<P> + 'a) {
        self
    }
}

/// Hashes the parts in order, as [`OwnedKey`]'s `Hash` does (a `String` hashes as its
/// `str`): a stored key and a lookup of the same parts hash alike.
fn hash_parts<P: ?Sized + Hash, H: Hasher>(parts: (Uuid, &str, &P), state: &mut H) {
    parts.0.hash(state);
    parts.1.hash(state);
    parts.2.hash(state);
}

impl<O: Hash> Hash for OwnedKey<O> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts((self.project, self.name.as_str(), &self.part), state);
    }
}

impl<P: ?Sized + Hash> Hash for dyn KeyParts<P> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.parts(), state);
    }
}

impl<P: ?Sized + PartialEq> PartialEq for dyn KeyParts<P> + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl<P: ?Sized + Eq> Eq for dyn KeyParts<P> + '_ {}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_probe_hashes_and_compares_like_the_stored_key() {
        let s = std::collections::hash_map::RandomState::new();
        let p = Uuid::new_v4();
        let label = OwnedKey::new(p, "support/triage", "production".to_owned());
        let probe: &dyn KeyParts<str> = &Probe {
            project: p,
            name: "support/triage",
            part: "production",
        };
        let stored: &dyn KeyParts<str> = label.borrow();
        assert_eq!(s.hash_one(&label), s.hash_one(probe));
        assert!(stored == probe);
        let other: &dyn KeyParts<str> = &Probe {
            project: p,
            name: "support/triage",
            part: "staging",
        };
        assert!(stored != other);

        let version = OwnedKey::new(p, "a", 3_u32);
        let probe: &dyn KeyParts<u32> = &Probe {
            project: p,
            name: "a",
            part: &3,
        };
        assert_eq!(s.hash_one(&version), s.hash_one(probe));
        let stored: &dyn KeyParts<u32> = version.borrow();
        assert!(stored == probe);
    }
}
