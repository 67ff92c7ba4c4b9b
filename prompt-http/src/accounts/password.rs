//! Passwords: argon2id hashing, verification in constant work, and the policy.
//!
//! The parameters are argon2's defaults, which are OWASP's current recommendation for
//! argon2id (m = 19 MiB, t = 2, p = 1). The PHC string stores them, so raising them
//! later keeps old hashes verifiable (and [`needs_rehash`] tells when to upgrade one).

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use prompt_core::{Error, Result};

/// Fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Most bytes a password may have (argon2 takes any length; this bounds the work a
/// request can ask for).
pub const MAX_PASSWORD_BYTES: usize = 256;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hash `password` with a fresh salt into a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches `phc`. A malformed stored hash never matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the email is unknown, so that an
/// unknown email and a wrong password cost the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    hash_password(&hex::encode(bytes)).unwrap_or_default()
});

/// Spend the time of one verification, for a sign-in whose email is unknown.
pub fn verify_dummy(password: &str) {
    let _ = verify_password(&DUMMY_HASH, password);
}

/// Warm the dummy hash (at start-up, so the first unknown-email sign-in does not pay
/// for hashing on top of verifying).
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// Whether `phc` was made with weaker parameters than today's.
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return true;
    };
    let want = Params::default();
    parsed.algorithm.as_str() != "argon2id"
        || params.m_cost() < want.m_cost()
        || params.t_cost() < want.t_cost()
}

/// Check a new password: length, and strength against common passwords, dictionary
/// words, keyboard patterns and the user's own email and name (zxcvbn, score ≥ 3).
/// The error names the field `field` and says why.
pub fn check_policy(field: &str, password: &str, email: &str, name: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(
            field,
            format!("is {chars} characters long; at least {MIN_PASSWORD_CHARS} are required"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(
            field,
            format!("is longer than {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    let local = email.split('@').next().unwrap_or_default();
    let entropy = zxcvbn::zxcvbn(password, &[email, local, name, "prompt", "registry"]);
    if entropy.score() < zxcvbn::Score::Three {
        let why = entropy
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| w.to_string())
            .unwrap_or_else(|| "it is too easy to guess".to_owned());
        return Err(Error::invalid(
            field,
            format!("is too weak: {why}; use a longer passphrase of unrelated words"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password(&h, "correct horse battery staple"));
        assert!(!verify_password(&h, "correct horse battery stapl"));
        assert!(!verify_password("not a hash", "x"));
        assert!(!needs_rehash(&h));
        assert_ne!(h, hash_password("correct horse battery staple").unwrap());
    }

    #[test]
    fn policy_names_the_field_and_why() {
        for bad in ["short", "password123", "qwertyuiop", "alice@example.com1"] {
            let e = check_policy("password", bad, "alice@example.com", "Alice").unwrap_err();
            assert!(
                matches!(e, Error::InvalidInput { ref field, .. } if field == "password"),
                "{bad}: {e:?}"
            );
        }
        check_policy(
            "password",
            "violet tugboat ferments quietly",
            "alice@example.com",
            "Alice",
        )
        .unwrap();
    }
}
