//! Unique names, so that tests never share a database, topic or consumer group.

use rand::Rng;
use rand::distr::Alphanumeric;

/// `prefix` and a short random part: `ordertest_k3v0q9x1zt`. Lower case, so that it is the
/// same name quoted or not in PostgreSQL.
pub fn unique(prefix: &str) -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect();
    format!("{prefix}_{suffix}")
}
