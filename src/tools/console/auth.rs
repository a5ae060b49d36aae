//! Who may use the console: users of sedx.toml (`[[user]]`, argon2 hashes),
//! sessions held in memory (a restart logs everyone out), a CSRF token per
//! session, and a pause after repeated wrong passwords.

use crate::context::config::{UserConfig, UserRole};
use crate::context::error::{Error, Result};
use argon2::password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Wrong passwords in a row for one name before it must wait.
const MAX_FAILURES: u32 = 5;
/// How long a name waits after [`MAX_FAILURES`].
const LOCKOUT: Duration = Duration::from_secs(60);

/// The argon2id PHC string of `password` (a fresh random salt each time).
pub fn hash_password(password: &str) -> Result<String> {
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Other(format!("argon2: {e}")))
}

/// True if `password` matches the PHC string `phc`.
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// 32 random bytes as hex, for session ids and CSRF tokens.
pub fn token() -> String {
    let mut b = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
    hex::encode(b)
}

/// Compare secrets in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: UserRole,
    /// Every form carries it; a POST without it is refused.
    pub csrf: String,
    /// A message for the next page (what an action did).
    pub flash: Option<String>,
    last_used: Instant,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    /// Unknown name or wrong password (not said which).
    Wrong,
    /// Too many wrong passwords: wait.
    Paused,
}

/// The sessions of one console.
pub struct Sessions {
    by_id: HashMap<String, Session>,
    idle: Duration,
    failures: HashMap<String, (u32, Instant)>,
    /// Verified against for unknown names, so they take as long as known ones.
    decoy: String,
}

impl Sessions {
    pub fn new(idle: Duration) -> Result<Sessions> {
        Ok(Sessions {
            by_id: HashMap::new(),
            idle,
            failures: HashMap::new(),
            decoy: hash_password(&token())?,
        })
    }

    /// Check `name` and `password` against `users`; a new session id on success.
    pub fn login(
        &mut self,
        users: &[UserConfig],
        name: &str,
        password: &str,
    ) -> std::result::Result<String, LoginRefused> {
        if let Some((n, at)) = self.failures.get(name) {
            if *n >= MAX_FAILURES && at.elapsed() < LOCKOUT {
                return Err(LoginRefused::Paused);
            }
        }
        let user = users.iter().find(|u| u.name == name);
        let ok = verify_password(user.map_or(&self.decoy, |u| &u.password), password);
        let Some(user) = user.filter(|_| ok) else {
            let e = self
                .failures
                .entry(name.to_string())
                .or_insert((0, Instant::now()));
            if e.1.elapsed() >= LOCKOUT {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = Instant::now();
            return Err(LoginRefused::Wrong);
        };
        self.failures.remove(name);
        let id = token();
        self.by_id.insert(
            id.clone(),
            Session {
                user: user.name.clone(),
                role: user.role,
                csrf: token(),
                flash: None,
                last_used: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The live session `id` (its idle time restarts); expired ones are dropped.
    /// A user removed from sedx.toml, or whose role changed, is logged out.
    pub fn get(&mut self, id: &str, users: &[UserConfig]) -> Option<&mut Session> {
        let idle = self.idle;
        self.by_id.retain(|_, s| {
            s.last_used.elapsed() < idle
                && users.iter().any(|u| u.name == s.user && u.role == s.role)
        });
        let s = self.by_id.get_mut(id)?;
        s.last_used = Instant::now();
        Some(s)
    }

    pub fn logout(&mut self, id: &str) {
        self.by_id.remove(id);
    }
}
