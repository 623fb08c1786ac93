//! Unique names, so that tests never share a database, topic or consumer group, and the one
//! scheme that derives a test's database, topics and group from its name.

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

/// The names of one test's own database, topics and consumer group.
#[derive(Debug, Clone)]
pub struct Names {
    /// The unique name; also the database's name.
    pub name: String,
    /// The topic orders are produced to.
    pub topic: String,
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// The consumer group.
    pub group: String,
}

impl Names {
    /// Fresh names starting with `prefix`.
    pub fn unique(prefix: &str) -> Self {
        let name = unique(prefix);
        Self {
            topic: format!("{name}_orders"),
            dlq_topic: format!("{name}_orders.dlq"),
            group: format!("{name}_group"),
            name,
        }
    }
}
