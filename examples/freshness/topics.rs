//! `delete-topics`: the script's clean-up of the topics a run made.

use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;

/// Deletes the topics whose names start with `prefix`.
pub async fn delete_topics(brokers: &str, prefix: &str) -> anyhow::Result<()> {
    if prefix.len() < 8 {
        bail!("a prefix of at least 8 characters, please: {prefix:?}");
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("cannot create a Kafka admin client")?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .with_context(|| format!("cannot list the topics of {brokers}"))?;
    let names: Vec<&str> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name())
        .filter(|name| name.starts_with(prefix))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.delete_topics(&names, &options).await? {
        if let Err((name, code)) = result {
            eprintln!("freshness: cannot delete topic {name}: {code}");
        }
    }
    eprintln!("freshness: deleted {} topics ({prefix}*)", names.len());
    Ok(())
}
