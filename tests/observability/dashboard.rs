//! The Grafana dashboard and the compose profile that runs it (`deploy/`, compose.yaml) against
//! the service: every metric the dashboard's expressions query is one the running service
//! exports on `/metrics`, the dashboard has the panels docs/operations.md describes, and the
//! "observability" profile mounts provisioning files that exist and agree with each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::app::TestApp;
use crate::common::sample::{SAMPLE, SAMPLE_UID};
use crate::metrics::scrape;
use crate::promql::{base_name, metric_names};

/// The panels the dashboard must have, by title.
const PANELS: &[&str] = &[
    "Ingest rate",
    "Consumer lag per partition",
    "Rejections by reason",
    "Batch size",
    "Database latency",
    "HTTP request rate by route and status",
    "HTTP latency by route and status",
    "Cache hit ratio",
    "Cache size",
];

/// A file of the repository.
fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A text file of the repository.
fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The dashboard, parsed.
fn dashboard() -> Value {
    serde_json::from_str(&read("deploy/grafana/dashboards/order-service.json"))
        .expect("the dashboard is JSON")
}

/// Every `panels` entry, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut all = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = stack.pop() {
        stack.extend(panel["panels"].as_array().into_iter().flatten());
        all.push(panel);
    }
    all
}

/// Every target's `expr`.
fn exprs(dashboard: &Value) -> Vec<&str> {
    panels(dashboard)
        .into_iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .filter_map(|target| target["expr"].as_str())
        .collect()
}

#[test]
fn the_dashboard_has_the_panels_the_docs_describe() {
    let dashboard = dashboard();
    let titles: BTreeSet<&str> = panels(&dashboard)
        .iter()
        .filter_map(|panel| panel["title"].as_str())
        .collect();
    for title in PANELS {
        assert!(titles.contains(title), "no panel {title:?} in {titles:?}");
    }
    let operations = read("docs/operations.md");
    for title in &titles {
        assert!(
            operations.contains(&format!("**{title}**")),
            "docs/operations.md does not describe the panel {title:?}"
        );
    }
    // Every panel queries the provisioned data source.
    let uid = "uid: prometheus";
    assert!(read("deploy/grafana/provisioning/datasources/prometheus.yaml").contains(uid));
    for panel in panels(&dashboard) {
        assert_eq!(
            panel["datasource"]["uid"], "prometheus",
            "{}",
            panel["title"]
        );
        assert!(!panel["targets"].as_array().is_none_or(Vec::is_empty));
    }
}

/// The metric names on `/metrics` now, histogram suffixes stripped.
async fn exported(app: &TestApp) -> BTreeSet<String> {
    scrape(app)
        .await
        .into_keys()
        .map(|series| base_name(series.split('{').next().unwrap_or_default()).to_owned())
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_exported() {
    let queried: BTreeSet<String> = exprs(&dashboard())
        .into_iter()
        .flat_map(metric_names)
        .collect();
    assert!(queried.len() >= 10, "{queried:?}");

    let _one_at_a_time = crate::COUNTERS.lock().await;
    let app = TestApp::spawn().await;
    // An order, its redelivery and a broken message; a cache hit and a miss.
    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.produce(Some(SAMPLE_UID), Some(SAMPLE.as_bytes())).await;
    app.produce(Some("broken"), Some(b"{not json")).await;
    app.wait_for_order(SAMPLE_UID).await;
    assert_eq!(
        app.get(&format!("/api/order/{SAMPLE_UID}")).await.status(),
        200
    );
    assert_eq!(app.get("/api/order/no-such-order").await.status(), 404);

    // The lag comes with librdkafka's statistics, every 5 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        let exported = exported(&app).await;
        let missing: Vec<&String> = queried.difference(&exported).collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing.into_iter().cloned().collect::<Vec<String>>();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not export: {missing:?}"
    );
    println!(
        "queried {} metrics, all exported: {queried:?}",
        queried.len()
    );
    app.stop_and_drop().await;
}

/// The lines of the service `name` in compose.yaml.
fn service<'a>(compose: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("  {name}:");
    compose
        .lines()
        .skip_while(|line| *line != header)
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with("   "))
        .collect()
}

/// The host paths of the service's bind mounts (`- ./path:/container/path[:ro]`), with the
/// container paths.
fn bind_mounts<'a>(lines: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    lines
        .iter()
        .filter_map(|line| line.trim().strip_prefix("- ./"))
        .filter_map(|mount| {
            let mut parts = mount.split(':');
            Some((parts.next()?, parts.next()?))
        })
        .collect()
}

#[test]
fn the_observability_profile_mounts_provisioning_files_that_exist() {
    let compose = read("compose.yaml");
    let mut mounted = Vec::new();
    for name in ["prometheus", "grafana"] {
        let lines = service(&compose, name);
        assert!(!lines.is_empty(), "no service {name} in compose.yaml");
        assert!(
            lines.contains(&r#"    profiles: ["observability"]"#),
            "{name} is not in the observability profile"
        );
        let image = lines.iter().find_map(|l| l.trim().strip_prefix("image: "));
        let tag = image
            .and_then(|image| image.split_once(':'))
            .map(|(_, tag)| tag);
        assert!(
            tag.is_some_and(|tag| tag != "latest" && tag.contains('.')),
            "{name}'s image is not pinned: {image:?}"
        );
        mounted.extend(bind_mounts(&lines));
    }
    for (host, _) in &mounted {
        assert!(
            repo(host).exists(),
            "compose.yaml mounts ./{host}, which does not exist"
        );
    }
    let target = |host: &str| {
        mounted
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, container)| *container)
            .unwrap_or_else(|| panic!("./{host} is not mounted"))
    };
    assert_eq!(
        target("deploy/prometheus/prometheus.yml"),
        "/etc/prometheus/prometheus.yml"
    );
    assert_eq!(
        target("deploy/grafana/provisioning/datasources"),
        "/etc/grafana/provisioning/datasources"
    );
    assert_eq!(
        target("deploy/grafana/provisioning/dashboards"),
        "/etc/grafana/provisioning/dashboards"
    );
    // The dashboard provider reads the folder the dashboards are mounted at.
    let dashboards = target("deploy/grafana/dashboards");
    let provider = read("deploy/grafana/provisioning/dashboards/order-service.yaml");
    assert!(
        provider.contains(&format!("path: {dashboards}")),
        "{provider}"
    );
    // Prometheus scrapes the service's metrics route, on the compose service's port.
    let prometheus = read("deploy/prometheus/prometheus.yml");
    let route = order_service::http::routes::metrics::ROUTE.path;
    assert!(
        prometheus.contains(&format!("metrics_path: {route}")),
        "{prometheus}"
    );
    assert!(
        prometheus.contains("\"order-service:8081\""),
        "{prometheus}"
    );
    assert!(service(&compose, "order-service").contains(&"      HTTP_ADDR: 0.0.0.0:8081"));
}
