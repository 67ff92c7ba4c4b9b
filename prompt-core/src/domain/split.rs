//! Release splits: a label pointing at several versions with weights (A/B without a
//! deploy), and the one place where a version is picked from a split.
//!
//! A split is a map version → weight, e.g. `{4: 90, 5: 10}`. Weights are positive
//! integers with any positive sum (they are not normalised to 100): version `v` gets
//! `weight(v) / sum` of the traffic. The label's own `version` stays the **primary**
//! arm (the largest weight, ties to the highest version), so readers that know nothing
//! of splits keep seeing one version.
//!
//! [`pick`] maps a caller's key to an arm with a fixed-seed hash (xxh3 of the prompt's
//! id, the label and the key): the same key gets the same version for as long as the
//! split stands, on every process and every release of this crate. The arms take
//! consecutive ranges of `[0, sum)` in version order, so moving weight from one arm to
//! the next (90/10 → 80/20) moves only the keys that must move. Without a key the pick
//! is uniformly random.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::{Error, Result};
use crate::validate;

/// The weights of a split: version → weight (a positive integer).
pub type SplitWeights = BTreeMap<u32, u32>;

/// Most versions one split may point at.
pub const MAX_SPLIT_ARMS: usize = 10;

/// Largest sum of a split's weights.
pub const MAX_SPLIT_TOTAL: u64 = 1_000_000;

/// The seed of the sticky hash. Fixed forever: changing it would move every caller of
/// every running split to another arm.
const SPLIT_SEED: u64 = 0x5052_4f4d_5054_5350; // "PROMPTSP"

/// The split a version was resolved through (on a resolved version and on the run
/// that used it).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSplit {
    /// The label carrying the split.
    pub label: String,
    /// Version → weight.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, u32>))]
    pub weights: SplitWeights,
}

impl LabelSplit {
    /// The version a caller with `key` gets (see [`pick`]).
    pub fn pick(&self, prompt_id: Uuid, key: Option<&str>) -> u32 {
        pick(&self.weights, prompt_id, &self.label, key)
    }
}

/// Check a split: 2 to [`MAX_SPLIT_ARMS`] versions, each a version number (1 or more)
/// with a positive weight, the weights summing to at most [`MAX_SPLIT_TOTAL`].
/// Whether the versions exist is the store's check. Errors name the field: `split`,
/// or `split.N` for version `N`.
pub fn validate_split(weights: &SplitWeights) -> Result<()> {
    if weights.len() < 2 {
        return Err(Error::invalid(
            "split",
            "needs at least 2 versions (to point the label at one version, give `version`)",
        ));
    }
    if weights.len() > MAX_SPLIT_ARMS {
        return Err(Error::invalid(
            "split",
            format!(
                "has {} versions, at most {MAX_SPLIT_ARMS} are allowed",
                weights.len()
            ),
        ));
    }
    for (&v, &w) in weights {
        validate::version_number(v).map_err(|e| validate::in_field(e, &format!("split.{v}")))?;
        if w == 0 {
            return Err(Error::invalid(
                format!("split.{v}"),
                "weight must be a positive integer",
            ));
        }
    }
    let total: u64 = weights.values().map(|&w| u64::from(w)).sum();
    if total > MAX_SPLIT_TOTAL {
        return Err(Error::invalid(
            "split",
            format!("weights sum to {total}, at most {MAX_SPLIT_TOTAL} is allowed"),
        ));
    }
    Ok(())
}

/// Longest split key accepted, in bytes.
pub const MAX_SPLIT_KEY_LEN: usize = 200;

/// Check a caller's split key: 1 to [`MAX_SPLIT_KEY_LEN`] bytes (`InvalidInput` on
/// `split_key`).
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("split_key", "must not be empty"));
    }
    validate::max_len("split_key", key, MAX_SPLIT_KEY_LEN)
}

/// The error of arm `version` of a split that does not resolve (missing or deleted):
/// `InvalidInput` naming `split.N`; other errors as they are.
pub fn arm_error(e: Error, version: u32) -> Error {
    match e {
        Error::NotFound { what } => Error::invalid(
            format!("split.{version}"),
            format!("names a version that does not exist: {what}"),
        ),
        other => other,
    }
}

/// The primary arm of a split: the version with the largest weight, ties to the
/// highest version. It is what the label's `version` says. `0` for an empty map
/// (which [`validate_split`] refuses).
pub fn primary(weights: &SplitWeights) -> u32 {
    weights
        .iter()
        .max_by_key(|(v, w)| (**w, **v))
        .map_or(0, |(v, _)| *v)
}

/// The bucket in `[0, total)` of `key` for the split of `label` on prompt `prompt_id`:
/// a fixed-seed xxh3 hash, scaled by multiply-shift (no modulo bias worth naming).
pub fn bucket(prompt_id: Uuid, label: &str, key: &str, total: u64) -> u64 {
    let seed = xxh3_64_with_seed(prompt_id.as_bytes(), SPLIT_SEED);
    let seed = xxh3_64_with_seed(label.as_bytes(), seed);
    let h = xxh3_64_with_seed(key.as_bytes(), seed);
    ((u128::from(h) * u128::from(total)) >> 64) as u64
}

/// Pick a version of a split: sticky for `key` (see [`bucket`]), uniformly random
/// without one. The arms take consecutive ranges of `[0, sum)` in version order.
/// **The** pick: the registry (Rust, Python, HTTP, the gateway) calls nothing else.
pub fn pick(weights: &SplitWeights, prompt_id: Uuid, label: &str, key: Option<&str>) -> u32 {
    let total: u64 = weights.values().map(|&w| u64::from(w)).sum();
    if total == 0 {
        return primary(weights);
    }
    let mut b = match key {
        Some(k) => bucket(prompt_id, label, k, total),
        None => rand::random_range(0..total),
    };
    for (&v, &w) in weights {
        let w = u64::from(w);
        if b < w {
            return v;
        }
        b -= w;
    }
    primary(weights)
}

/// Serde of a [`SplitWeights`] field that serde reads through a buffer (a field of
/// an untagged or internally tagged enum: `BatchOp`, an export's labels), for
/// `#[serde(with = "…::split::keys")]`. Buffered map keys keep their source type, so
/// a plain `u32` key would refuse JSON's `"4"` there: the keys are read by a visitor
/// that takes a number (YAML) or a numeric string (JSON) alike.
pub mod keys {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    use super::SplitWeights;

    /// Serialize as a map (string keys in JSON, numbers in YAML).
    pub fn serialize<S: Serializer>(w: &SplitWeights, s: S) -> Result<S::Ok, S::Error> {
        w.serialize(s)
    }

    /// Read a map version → weight whose keys are numbers or numeric strings.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SplitWeights, D::Error> {
        let keyed: BTreeMap<VersionKey, u32> = BTreeMap::deserialize(d)?;
        Ok(keyed.into_iter().map(|(k, w)| (k.0, w)).collect())
    }

    /// The same for an optional field (`#[serde(default, with = "…::keys::option")]`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::SplitWeights;

        /// Serialize as [`super::serialize`] does, `None` as null.
        pub fn serialize<S: Serializer>(w: &Option<SplitWeights>, s: S) -> Result<S::Ok, S::Error> {
            w.serialize(s)
        }

        /// Read as [`super::deserialize`] does; null is `None`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SplitWeights>, D::Error> {
            #[derive(Deserialize)]
            struct Lenient(#[serde(with = "super")] SplitWeights);
            Ok(Option::<Lenient>::deserialize(d)?.map(|l| l.0))
        }
    }

    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct VersionKey(u32);

    impl<'de> Deserialize<'de> for VersionKey {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KeyVisitor)
        }
    }

    struct KeyVisitor;

    impl Visitor<'_> for KeyVisitor {
        type Value = VersionKey;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a version number")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<VersionKey, E> {
            u32::try_from(v)
                .map(VersionKey)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<VersionKey, E> {
            u32::try_from(v)
                .map(VersionKey)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<VersionKey, E> {
            v.parse()
                .map(VersionKey)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(pairs: &[(u32, u32)]) -> SplitWeights {
        pairs.iter().copied().collect()
    }

    #[test]
    fn validation_names_the_field() {
        let field = |r: Result<()>| match r {
            Err(Error::InvalidInput { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(validate_split(&w(&[(4, 100)]))), "split");
        assert_eq!(field(validate_split(&w(&[(4, 90), (5, 0)]))), "split.5");
        assert_eq!(field(validate_split(&w(&[(0, 1), (5, 1)]))), "split.0");
        let many: SplitWeights = (1..=11).map(|v| (v, 1)).collect();
        assert_eq!(field(validate_split(&many)), "split");
        assert_eq!(field(validate_split(&w(&[(1, 999_999), (2, 2)]))), "split");
        validate_split(&w(&[(4, 90), (5, 10)])).unwrap();
        validate_split(&w(&[(4, 3), (5, 1)])).unwrap();
    }

    #[test]
    fn primary_is_the_heaviest_arm_ties_to_the_highest_version() {
        assert_eq!(primary(&w(&[(4, 90), (5, 10)])), 4);
        assert_eq!(primary(&w(&[(4, 50), (5, 50)])), 5);
        assert_eq!(primary(&w(&[(2, 1), (7, 3), (9, 3)])), 9);
    }

    #[test]
    fn the_hash_is_fixed() {
        // Changing the seed or the hash would move every caller of every split.
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let b = bucket(id, "production", "user-123", 100);
        assert_eq!(b, bucket(id, "production", "user-123", 100));
        assert!(b < 100);
        assert_ne!(
            (0..20)
                .map(|i| bucket(id, "production", &format!("user-{i}"), 100))
                .collect::<Vec<_>>(),
            vec![b; 20],
            "keys spread"
        );
    }

    #[test]
    fn sticky_and_proportional() {
        let id = Uuid::from_u128(42);
        let split = w(&[(4, 90), (5, 10)]);
        let first = pick(&split, id, "production", Some("user-123"));
        for _ in 0..10_000 {
            assert_eq!(pick(&split, id, "production", Some("user-123")), first);
        }
        let n = 100_000;
        let fives = (0..n)
            .filter(|i| pick(&split, id, "production", Some(&format!("user-{i}"))) == 5)
            .count();
        let share = fives as f64 * 100.0 / n as f64;
        assert!((share - 10.0).abs() < 1.5, "{share}% got version 5");
        // Without a key: random, but every arm comes up.
        let random: std::collections::BTreeSet<u32> = (0..1_000)
            .map(|_| pick(&split, id, "production", None))
            .collect();
        assert_eq!(random.into_iter().collect::<Vec<_>>(), vec![4, 5]);
    }
}
