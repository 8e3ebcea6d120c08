//! The container and observability files in `deploy/`, checked without Docker:
//!
//! - every `ordo_*` name the Grafana dashboard and the Prometheus rules use is a metric the
//!   node exports, by two sources of truth: the metric macros in the node's sources (every
//!   metric, including those that only appear after rare events) and the `/metrics` of a
//!   real 4-validator testnet after one transfer (the names Prometheus really sees, and a
//!   check that the source scan misses nothing);
//! - `deploy/compose.yaml` runs what `ordo testnet init` generates: the validator services
//!   are the hosts given to init, each runs its own generated config from the shared
//!   volume, and the ports compose publishes, checks and Prometheus scrapes are the ones
//!   the generated configs listen on;
//! - Prometheus, Grafana and the Dockerfile are wired to each other and to compose.
//!
//! Compose and Prometheus files are read by the small block-YAML reader at the end of this
//! file (no YAML crate): keep them to plain mappings, `- ` lists, quoted or plain scalars
//! and one-line `[...]` lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ordo_testnet::ports::find_free_base;
use ordo_testnet::testnet::Testnet;
use serde_json::Value;

mod common;
use common::tool;

/// The crates whose `src/` make up a validator and its CLI.
const NODE_CRATES: [&str; 7] = [
    "types",
    "consensus",
    "network",
    "execution",
    "storage",
    "node",
    "cli",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the testnet crate sits in the workspace")
        .to_path_buf()
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn yaml_file(path: &Path) -> Value {
    yaml::parse(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Metric names.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric the node's sources register with a literal name, and the call sites whose
/// name is not a literal (which the scan cannot see).
struct Exported {
    metrics: BTreeMap<String, Kind>,
    not_literal: Vec<String>,
    /// Whether the node configures histogram buckets; without them the Prometheus exporter
    /// renders every histogram as a summary (`quantile` label, `_sum`, `_count`).
    buckets: bool,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn exported() -> Exported {
    let mut files = Vec::new();
    for krate in NODE_CRATES {
        rust_files(&repo().join(krate).join("src"), &mut files);
    }
    let mut metrics = BTreeMap::new();
    let mut not_literal = Vec::new();
    let mut buckets = false;
    for file in &files {
        let text = read(file);
        buckets |= text.contains("set_buckets");
        for (mac, kind) in [
            ("counter!(", Kind::Counter),
            ("gauge!(", Kind::Gauge),
            ("histogram!(", Kind::Histogram),
        ] {
            for (at, _) in text.match_indices(mac) {
                // The name may sit on the next line (rustfmt breaks long calls).
                let rest = text[at + mac.len()..].trim_start();
                let name = rest
                    .strip_prefix('"')
                    .and_then(|r| r.split_once('"'))
                    .map(|(name, _)| name);
                match name {
                    Some(name) if name.starts_with("ordo_") => {
                        metrics.insert(name.to_string(), kind);
                    }
                    Some(_) => {}
                    None => {
                        let line = text[..at].lines().count();
                        not_literal.push(format!("{}:{line}", file.display()));
                    }
                }
            }
        }
    }
    Exported {
        metrics,
        not_literal,
        buckets,
    }
}

/// Every `ordo_...` token in `text` (recording rules' `ordo:...` names are not metrics).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("ordo_") {
        if at > 0 && word(bytes[at - 1]) {
            continue;
        }
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |n| at + n);
        names.insert(text[at..end].to_string());
    }
    names
}

/// The metric a name in a query refers to, and its kind; `Err` says why it is not one.
fn resolve(name: &str, exported: &Exported) -> Result<(String, Kind), String> {
    if let Some(kind) = exported.metrics.get(name) {
        return Ok((name.to_string(), *kind));
    }
    for suffix in ["_sum", "_count", "_bucket"] {
        let Some(base) = name.strip_suffix(suffix) else {
            continue;
        };
        if exported.metrics.get(base) != Some(&Kind::Histogram) {
            continue;
        }
        if suffix == "_bucket" && !exported.buckets {
            return Err(format!(
                "{base} has no buckets: the node's exporter renders histograms as summaries; \
                 use {base}{{quantile=\"0.99\"}} or rate({base}_sum) / rate({base}_count)"
            ));
        }
        return Ok((base.to_string(), Kind::Histogram));
    }
    Err("no metric macro in the node's sources registers this name".into())
}

/// The deploy files whose queries name metrics, with the names each uses.
fn names_in_deploy_files() -> Vec<(PathBuf, BTreeSet<String>)> {
    let mut files = Vec::new();
    for (dir, ext) in [
        (deploy().join("grafana/dashboards"), "json"),
        (deploy().join("prometheus"), "yml"),
    ] {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == ext) {
                let names = metric_names(&read(&path));
                files.push((path, names));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn dashboard_and_rules_use_only_metrics_the_node_exports() {
    let exported = exported();
    assert!(
        exported.metrics.len() >= 50,
        "the scan of the node's sources found only {} metrics: is the scan broken?",
        exported.metrics.len()
    );
    let files = names_in_deploy_files();
    let dashboard = deploy().join("grafana/dashboards/ordo.json");
    let used = files
        .iter()
        .find(|(p, _)| *p == dashboard)
        .map(|(_, n)| n.len());
    assert!(
        used.is_some_and(|n| n >= 10),
        "{} names {used:?} metrics: is it there and complete?",
        dashboard.display()
    );
    let mut wrong = Vec::new();
    for (path, names) in &files {
        for name in names {
            if let Err(why) = resolve(name, &exported) {
                wrong.push(format!("{}: {name}: {why}", path.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "metrics the node does not export:\n  {}{}",
        wrong.join("\n  "),
        if exported.not_literal.is_empty() {
            String::new()
        } else {
            format!(
                "\n(metric macros without a literal name, which the scan cannot read: {})",
                exported.not_literal.join(", ")
            )
        }
    );
}

/// Stops the testnet in the folder, even when the test fails half-way.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        if let Ok(net) = Testnet::open(&self.0) {
            net.down(Duration::from_secs(10));
        }
    }
}

/// The families' types (`# TYPE` lines) and the series names of an exposition text.
fn exposition(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut types = BTreeMap::new();
    let mut series = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = rest.split_once(' ') {
                types.insert(name.to_string(), kind.trim().to_string());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            series.insert(line[..end].to_string());
        }
    }
    (types, series)
}

fn run_ok(cmd: &mut Command, what: &str) -> Value {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON document: {e}"))
}

#[test]
fn the_names_are_those_a_running_validator_exposes() {
    let exported = exported();
    let used: BTreeMap<String, (String, Kind)> = names_in_deploy_files()
        .into_iter()
        .flat_map(|(_, names)| names)
        .filter_map(|n| resolve(&n, &exported).ok().map(|r| (n, r)))
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let _down = Down(dir.clone());
    let dir_s = dir.to_str().unwrap();
    let base = find_free_base(4).unwrap().to_string();
    let up = run_ok(
        Command::new(tool()).args([
            "--json",
            "testnet",
            "up",
            "--validators",
            "4",
            "--dir",
            dir_s,
            "--port-base",
            &base,
            "--accounts",
            "10",
        ]),
        "ordo testnet up",
    );
    // One transaction, so that the transaction path's histograms exist too.
    let to = up["dev_accounts"][0]["address"]
        .as_str()
        .expect("the testnet funds development accounts")
        .to_string();
    let transfer = run_ok(
        Command::new(tool().with_file_name("ordo")).args([
            "--json",
            "transfer",
            "--testnet-dir",
            dir_s,
            "--to",
            &to,
            "--amount",
            "1",
        ]),
        "ordo transfer",
    );
    assert_eq!(transfer["status"], "committed", "{transfer}");

    // Gauges describe state: a validator that executed a block has set every one. Counters
    // and histograms count events, some of them rare: they are checked when present.
    let gauges: BTreeSet<&String> = used
        .iter()
        .filter(|(_, (_, kind))| *kind == Kind::Gauge)
        .map(|(name, _)| name)
        .collect();
    let net = Testnet::open(&dir).unwrap();
    let addr = net.net.validators[0].metrics;
    let deadline = Instant::now() + Duration::from_secs(20);
    let (types, series) = loop {
        let text = ordo_testnet::client::metrics_text(addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("scraping validator 0's /metrics at {addr}: {e}"));
        let (types, series) = exposition(&text);
        let missing: Vec<&&String> = gauges.iter().filter(|g| !series.contains(**g)).collect();
        if missing.is_empty() {
            break (types, series);
        }
        assert!(
            Instant::now() < deadline,
            "gauges the deploy files use are not in a running validator's /metrics after 20 s: {missing:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };

    // Every family the validator exposes is one the source scan found, of the same kind:
    // the scan misses nothing that a running validator shows.
    let mut wrong = Vec::new();
    for (family, kind) in types.iter().filter(|(f, _)| f.starts_with("ordo_")) {
        let expected = match exported.metrics.get(family) {
            None => {
                wrong.push(format!(
                    "{family} ({kind}) is exposed but not found by the source scan"
                ));
                continue;
            }
            Some(Kind::Counter) => "counter",
            Some(Kind::Gauge) => "gauge",
            Some(Kind::Histogram) if exported.buckets => "histogram",
            Some(Kind::Histogram) => "summary",
        };
        if kind != expected {
            wrong.push(format!("{family} is exposed as a {kind}, not a {expected}"));
        }
    }
    // A name whose family is exposed must be one of its series, exactly as written.
    for (name, (base, _)) in &used {
        if types.contains_key(base) && !series.contains(name) {
            wrong.push(format!(
                "{name}: the family {base} is exposed, but no series of that name"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Compose against `ordo testnet init`.

fn services(compose: &Value) -> &serde_json::Map<String, Value> {
    compose["services"]
        .as_object()
        .expect("compose.yaml has a services mapping")
}

/// A string, or a list of strings (a command line, mounts, ports); nothing otherwise.
fn words(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

/// Splits a `HOST_PATH:CONTAINER_PATH[:ro]` or `VOLUME:CONTAINER_PATH` mount.
fn mount(spec: &str) -> (String, String) {
    let mut parts = spec.split(':');
    let source = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    (source, target)
}

/// The container port of a published `[IP:]HOST:CONTAINER[/tcp]` port, with the host IP.
fn published(spec: &str) -> (Option<String>, u16) {
    let spec = spec.trim_end_matches("/tcp");
    let parts: Vec<&str> = spec.split(':').collect();
    let port = parts
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("published port {spec:?} does not end in a port number"));
    let ip = (parts.len() == 3).then(|| parts[0].to_string());
    (ip, port)
}

/// The tcp port and the `dns*` host of a multiaddr like `/dns4/v1/tcp/7000`.
fn multiaddr_parts(addr: &str) -> (Option<String>, Option<String>, Option<u16>) {
    let parts: Vec<&str> = addr.split('/').collect();
    let after = |key: &str| {
        parts
            .iter()
            .position(|p| *p == key)
            .and_then(|i| parts.get(i + 1))
            .map(|s| s.to_string())
    };
    let dns = after("dns4")
        .or_else(|| after("dns"))
        .or_else(|| after("dns6"));
    let port = after("tcp").and_then(|p| p.parse().ok());
    (dns, after("ip4"), port)
}

/// The init service's command line from `ordo testnet init` on, and the whole shell text.
fn init_command(compose: &Value) -> (String, Vec<String>, String) {
    for (name, svc) in services(compose) {
        let text = [words(&svc["entrypoint"]), words(&svc["command"])]
            .concat()
            .join(" ");
        if let Some(at) = text.find("ordo testnet init") {
            let line = text[at..]
                .split([';', '&', '|'])
                .next()
                .unwrap()
                .split_whitespace()
                .skip(1)
                .map(String::from)
                .collect();
            return (name.clone(), line, text);
        }
    }
    panic!("no service of compose.yaml runs `ordo testnet init`");
}

fn flag(args: &[String], name: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("the init command in compose.yaml has no {name} VALUE: {args:?}"))
        .clone()
}

#[test]
fn compose_runs_what_testnet_init_generates() {
    let compose = yaml_file(&deploy().join("compose.yaml"));
    let services = services(&compose);
    let (init_name, init_args, init_text) = init_command(&compose);
    let hosts: Vec<String> = flag(&init_args, "--hosts")
        .split(',')
        .map(String::from)
        .collect();
    let out = flag(&init_args, "--out");
    assert!(
        init_text.contains(&format!("[ -f {out}/genesis.json ] ||")),
        "the init service must generate only into an empty volume, guarded by \
         `[ -f {out}/genesis.json ] ||`: {init_text}"
    );

    // Generate with exactly compose's arguments, into an empty folder as the fresh volume is.
    let tmp = tempfile::tempdir().unwrap();
    let gen = tmp.path().canonicalize().unwrap();
    let args: Vec<String> = init_args
        .iter()
        .map(|a| {
            if *a == out {
                gen.to_str().unwrap().to_string()
            } else {
                a.clone()
            }
        })
        .collect();
    let result = Command::new(tool()).args(&args).output().unwrap();
    assert!(
        result.status.success(),
        "`ordo {}` (the init service's command) failed (exit {:?}): {}",
        init_args.join(" "),
        result.status.code(),
        String::from_utf8_lossy(&result.stderr).trim()
    );
    for file in ["genesis.json", "dev.key"] {
        assert!(gen.join(file).is_file(), "init wrote no {file}");
    }

    // The validator services are exactly the hosts, each running its own folder's config.
    let validators: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| words(&s["command"]).first().map(String::as_str) == Some("run"))
        .map(|(n, _)| n.clone())
        .collect();
    let host_set: BTreeSet<String> = hosts.iter().cloned().collect();
    assert_eq!(
        validators, host_set,
        "the services that run `ordo run` are not the hosts given to init"
    );
    let init = &services[&init_name];
    let init_mounts = words(&init["volumes"]);
    let volume = init_mounts
        .iter()
        .map(|m| mount(m))
        .find(|(_, target)| *target == out)
        .map(|(source, _)| source)
        .unwrap_or_else(|| panic!("the init service mounts no volume at {out}"));
    assert!(
        compose["volumes"].get(&volume).is_some(),
        "the volume {volume} is not declared under the top-level volumes"
    );

    let mut ports: Option<(u16, u16, u16)> = None;
    for host in &hosts {
        let svc = &services[host];
        let folder = gen.join(host);
        for file in [
            "config.toml",
            "validator.key",
            "network.key",
            "contribution.json",
            "genesis.json",
        ] {
            assert!(folder.join(file).is_file(), "init wrote no {host}/{file}");
        }
        assert_eq!(
            words(&svc["command"]),
            [
                "run",
                "--config",
                format!("{out}/{host}/config.toml").as_str()
            ],
            "service {host} must run its own generated config"
        );
        assert!(
            svc.get("entrypoint").is_none(),
            "service {host} must keep the image's entrypoint, ordo"
        );
        assert_eq!(
            svc["image"], init["image"],
            "service {host} runs another image than init"
        );
        assert_eq!(
            svc["build"], init["build"],
            "service {host} builds another image than init"
        );
        assert!(
            words(&svc["volumes"]).contains(&format!("{volume}:{out}")),
            "service {host} does not mount {volume}:{out}"
        );
        assert_eq!(
            svc["depends_on"][&init_name]["condition"], "service_completed_successfully",
            "service {host} must wait for {init_name} to complete successfully"
        );

        // The config the validator runs: it must load as `ordo run` loads it.
        let config = ordo_node::NodeConfig::load(&folder.join("config.toml"))
            .unwrap_or_else(|e| panic!("{host}/config.toml does not load: {e}"));
        assert!(
            config.data_dir.starts_with(&gen) || config.data_dir.starts_with(tmp.path()),
            "{host}'s data_dir {} is outside the generated folder, so not on the volume",
            config.data_dir.display()
        );
        let rpc = config.rpc.listen;
        let metrics = config
            .metrics
            .listen
            .unwrap_or_else(|| panic!("{host}'s config serves no separate metrics port"));
        let p2p = config.network.listen.to_string();
        let (_, ip, p2p_port) = multiaddr_parts(&p2p);
        for (what, unspecified) in [
            ("rpc.listen", rpc.ip().is_unspecified()),
            ("metrics.listen", metrics.ip().is_unspecified()),
            ("network.listen", ip.as_deref() == Some("0.0.0.0")),
        ] {
            assert!(
                unspecified,
                "{host}'s {what} is not on all interfaces: other containers cannot reach it \
                 (rpc {rpc}, metrics {metrics}, p2p {p2p})"
            );
        }
        let p2p_port = p2p_port.unwrap_or_else(|| panic!("{host} listens on no tcp port: {p2p}"));
        let these = (rpc.port(), metrics.port(), p2p_port);
        assert_eq!(
            *ports.get_or_insert(these),
            these,
            "{host} listens on other ports (rpc, metrics, p2p) than the others"
        );

        // It names every other validator by its host name and peer port.
        let genesis = ordo_node::GenesisFile::load(&config.genesis)
            .unwrap_or_else(|e| panic!("{host}'s genesis does not load: {e}"));
        let addresses: Vec<String> = genesis
            .validators
            .iter()
            .map(|v| v.address.to_string())
            .chain(config.network.peers.iter().map(|p| p.address.to_string()))
            .collect();
        for other in hosts.iter().filter(|h| *h != host) {
            assert!(
                addresses.iter().any(|a| {
                    let (dns, _, port) = multiaddr_parts(a);
                    dns.as_deref() == Some(other.as_str()) && port == Some(p2p_port)
                }),
                "{host}'s genesis and config give no address /dns4/{other}/tcp/{p2p_port}: {addresses:?}"
            );
        }

        // What compose publishes of a validator is its RPC, to this machine only, and the
        // health check asks that RPC.
        for spec in words(&svc["ports"]) {
            let (ip, port) = published(&spec);
            assert_eq!(
                port,
                rpc.port(),
                "{host} publishes {spec}, which is not its RPC port"
            );
            assert_eq!(
                ip.as_deref(),
                Some("127.0.0.1"),
                "{host} publishes its unauthenticated RPC beyond this machine: {spec}"
            );
        }
        let health = words(&svc["healthcheck"]["test"]).join(" ");
        assert!(
            health.contains(&format!("--rpc http://127.0.0.1:{}", rpc.port())),
            "{host}'s health check does not ask its RPC port {}: {health}",
            rpc.port()
        );
    }
    let (rpc, metrics, p2p) = ports.expect("at least one host");
    assert!(
        hosts.iter().any(|h| words(&services[h]["ports"])
            .iter()
            .any(|s| published(s).1 == rpc)),
        "no validator publishes its RPC port {rpc} for clients"
    );
    let expose = format!("EXPOSE {rpc} {metrics} {p2p}");
    assert!(
        read(&deploy().join("Dockerfile")).contains(&expose),
        "deploy/Dockerfile does not say `{expose}`, the ports init's configs listen on"
    );

    // Prometheus scrapes exactly the validators' metrics addresses.
    let prometheus = yaml_file(&deploy().join("prometheus/prometheus.yml"));
    let jobs = prometheus["scrape_configs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let job = jobs.iter().find(|j| j["job_name"] == "ordo").expect(
        "prometheus.yml has a scrape job `ordo` (the alerts and dashboard select job=\"ordo\")",
    );
    let targets: BTreeSet<String> = job["static_configs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| words(&c["targets"]))
        .collect();
    let expected: BTreeSet<String> = hosts.iter().map(|h| format!("{h}:{metrics}")).collect();
    assert_eq!(
        targets, expected,
        "prometheus.yml does not scrape exactly the validators"
    );
    if let Some(path) = job["metrics_path"].as_str() {
        assert_eq!(
            path, "/metrics",
            "validators serve their metrics at /metrics"
        );
    }
}

#[test]
fn prometheus_and_grafana_are_wired_to_compose() {
    let compose = yaml_file(&deploy().join("compose.yaml"));
    let services = services(&compose);

    // Every file compose mounts from this folder exists.
    let mut mounts: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for (name, svc) in services {
        for spec in words(&svc["volumes"]) {
            let (source, target) = mount(&spec);
            if source.starts_with('.') {
                let path = deploy().join(&source);
                assert!(
                    path.exists(),
                    "service {name} mounts {source}, which does not exist"
                );
                mounts.insert((name.clone(), target), path);
            } else {
                assert!(
                    compose["volumes"].get(&source).is_some(),
                    "service {name} mounts the undeclared volume {source}"
                );
            }
        }
    }
    // The host file behind a path inside a service's container.
    let host_path = |service: &str, inside: &str| -> PathBuf {
        mounts
            .iter()
            .filter(|((s, _), _)| s == service)
            .find_map(|((_, target), source)| {
                let rest = Path::new(inside).strip_prefix(target).ok()?;
                Some(if rest.as_os_str().is_empty() {
                    source.clone()
                } else {
                    source.join(rest)
                })
            })
            .unwrap_or_else(|| panic!("nothing is mounted in {service} at {inside}"))
    };

    // Prometheus: scrape interval and rule files.
    let prometheus = yaml_file(&deploy().join("prometheus/prometheus.yml"));
    assert_eq!(prometheus["global"]["scrape_interval"], "5s");
    let rules = words(&prometheus["rule_files"]);
    assert!(!rules.is_empty(), "prometheus.yml loads no rule file");
    for rule_file in rules {
        let path = host_path("prometheus", &rule_file);
        let alerts = yaml_file(&path);
        let count = alerts["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["expr"].is_string())
            .count();
        assert!(count >= 5, "{} holds only {count} rules", path.display());
    }
    let config_arg = words(&services["prometheus"]["command"])
        .into_iter()
        .find_map(|a| a.strip_prefix("--config.file=").map(String::from))
        .expect("the prometheus service names its --config.file");
    assert_eq!(
        host_path("prometheus", &config_arg),
        deploy().join("./prometheus/prometheus.yml")
    );

    // Grafana: the data source is the prometheus service, and the dashboards are where the
    // provider looks.
    let datasources = yaml_file(&host_path(
        "grafana",
        "/etc/grafana/provisioning/datasources/prometheus.yml",
    ));
    let source = &datasources["datasources"][0];
    let (_, prometheus_port) = published(&words(&services["prometheus"]["ports"])[0]);
    assert_eq!(
        source["url"],
        format!("http://prometheus:{prometheus_port}"),
        "Grafana's data source is not the prometheus service"
    );
    let uid = source["uid"]
        .as_str()
        .expect("the data source has a fixed uid");
    let provider = yaml_file(&host_path(
        "grafana",
        "/etc/grafana/provisioning/dashboards/ordo.yml",
    ));
    let folder = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("the dashboard provider names a path");
    let dashboard_path = host_path("grafana", &format!("{folder}/ordo.json"));
    let home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
        .as_str()
        .map(|p| host_path("grafana", p));
    assert_eq!(
        home.as_ref(),
        Some(&dashboard_path),
        "Grafana's home dashboard is not ordo.json"
    );

    let dashboard: Value = serde_json::from_str(&read(&dashboard_path))
        .unwrap_or_else(|e| panic!("{}: {e}", dashboard_path.display()));
    let panels = dashboard["panels"]
        .as_array()
        .expect("the dashboard has panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(panel["id"].to_string()),
            "two panels have the id {}",
            panel["id"]
        );
        assert_eq!(
            panel["datasource"]["uid"], uid,
            "panel {title:?} uses another data source"
        );
        let targets = panel["targets"]
            .as_array()
            .expect("every panel has queries");
        assert!(!targets.is_empty(), "panel {title:?} has no query");
        for t in targets {
            assert!(
                t["expr"].is_string(),
                "a query of panel {title:?} has no expr"
            );
            assert_eq!(
                t["datasource"]["uid"], uid,
                "a query of panel {title:?} uses another data source"
            );
        }
    }
}

#[test]
fn the_dockerfile_builds_and_runs_what_compose_expects() {
    let dockerfile = read(&deploy().join("Dockerfile"));
    let compose = yaml_file(&deploy().join("compose.yaml"));
    for (name, svc) in services(&compose) {
        if svc.get("build").is_some() {
            let context = deploy().join(svc["build"]["context"].as_str().unwrap_or("."));
            let file = context.join(svc["build"]["dockerfile"].as_str().unwrap_or("Dockerfile"));
            assert_eq!(
                file.canonicalize().ok(),
                deploy().join("Dockerfile").canonicalize().ok(),
                "service {name} builds another Dockerfile"
            );
            assert_eq!(
                context.canonicalize().ok(),
                repo().canonicalize().ok(),
                "service {name}'s build context is not the repository root"
            );
        }
    }
    for needed in [
        "cargo build --release --locked -p ordo-cli -p ordo-testnet --bins",
        "clang libclang-dev",
        "target/release/ordo target/release/ordo-testnet",
        "FROM debian:bookworm-slim",
        "libstdc++6 ca-certificates",
        "--uid 10001",
        "chown ordo:ordo /data /network",
        "VOLUME /data",
        "USER ordo",
        "ENTRYPOINT [\"ordo\"]",
    ] {
        assert!(
            dockerfile.contains(needed),
            "deploy/Dockerfile lacks {needed:?}"
        );
    }
    // The build image's toolchain is at least the workspace's rust-version.
    let version = |s: &str| -> Vec<u32> { s.split('.').filter_map(|p| p.parse().ok()).collect() };
    let rust = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .map(version)
        .expect("deploy/Dockerfile pins ARG RUST_VERSION=");
    let workspace = read(&repo().join("Cargo.toml"));
    let minimum = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| version(v.trim_matches('"')))
        .expect("Cargo.toml has a rust-version");
    assert!(
        rust >= minimum,
        "the image's Rust {rust:?} is older than rust-version {minimum:?}"
    );
    let ignore = read(&deploy().join("Dockerfile.dockerignore"));
    for pattern in [".git", "**/target", "contracts/node_modules"] {
        assert!(
            ignore.lines().any(|l| l.trim() == pattern),
            "deploy/Dockerfile.dockerignore does not leave out {pattern}"
        );
    }
    // Every image compose pulls has a fixed tag.
    for (name, svc) in services(&compose) {
        if svc.get("build").is_none() {
            let image = svc["image"].as_str().unwrap_or_default();
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
            assert!(
                tag.chars()
                    .next()
                    .is_some_and(|c| c == 'v' || c.is_ascii_digit()),
                "service {name}'s image {image:?} has no version tag"
            );
        }
    }
}

#[test]
fn the_yaml_reader_reads_what_the_deploy_files_use() {
    let v = yaml::parse(
        "# comment\na: 1\nb:\n  - x # trailing\n  - 'it''s'\n  - k: v\n    l: [\"p, q\", r]\nc:\nd: \"#\"\n",
    )
    .unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "a": "1", "b": ["x", "it's", {"k": "v", "l": ["p, q", "r"]}], "c": null, "d": "#"
        })
    );
    assert!(yaml::parse("a: &x 1\n").is_err());
    assert!(yaml::parse("a: |\n  text\n").is_err());
    assert!(yaml::parse("a: 1\na: 2\n").is_err());
}

/// A reader for the plain block YAML of the deploy files: mappings, `- ` lists, plain,
/// 'single' and "double" quoted scalars, one-line `[...]` lists of scalars, and `{}`.
/// Scalars stay strings. Anything else (anchors, tags, multi-line strings, flow mappings,
/// tabs) is refused, so that a file this reader would misread fails the test instead.
mod yaml {
    use serde_json::{Map, Value};

    struct Line {
        no: usize,
        indent: usize,
        text: String,
    }

    pub fn parse(src: &str) -> Result<Value, String> {
        let mut lines = Vec::new();
        for (i, raw) in src.lines().enumerate() {
            if raw.contains('\t') {
                return Err(format!("line {}: a tab", i + 1));
            }
            let text = strip_comment(raw).trim_end().to_string();
            if text.trim().is_empty() {
                continue;
            }
            let indent = text.len() - text.trim_start().len();
            lines.push(Line {
                no: i + 1,
                indent,
                text: text.trim_start().to_string(),
            });
        }
        if lines.is_empty() {
            return Ok(Value::Null);
        }
        let mut pos = 0;
        let indent = lines[0].indent;
        let value = block(&mut lines, &mut pos, indent)?;
        match lines.get(pos) {
            Some(l) => Err(format!("line {}: unexpected indentation", l.no)),
            None => Ok(value),
        }
    }

    /// The text before a `#` that starts a comment (at the start or after a space, outside
    /// quotes).
    fn strip_comment(line: &str) -> &str {
        let (mut single, mut double, mut prev) = (false, false, ' ');
        for (i, c) in line.char_indices() {
            match c {
                '\'' if !double => single = !single,
                '"' if !single && prev != '\\' => double = !double,
                '#' if !single && !double && prev.is_whitespace() => return &line[..i],
                _ => {}
            }
            prev = c;
        }
        line
    }

    fn is_item(text: &str) -> bool {
        text == "-" || text.starts_with("- ")
    }

    /// `key: value` (value possibly empty), split at the first `: ` outside quotes.
    fn key_value(text: &str) -> Option<(String, String)> {
        if text.starts_with(['"', '\'', '[', '{']) {
            return None;
        }
        let bytes = text.as_bytes();
        for (i, c) in text.char_indices() {
            if c == ':' && (i + 1 == text.len() || bytes[i + 1] == b' ') {
                return Some((text[..i].to_string(), text[i + 1..].trim().to_string()));
            }
        }
        None
    }

    fn block(lines: &mut [Line], pos: &mut usize, indent: usize) -> Result<Value, String> {
        if is_item(&lines[*pos].text) {
            let mut items = Vec::new();
            while *pos < lines.len() && lines[*pos].indent == indent && is_item(&lines[*pos].text) {
                let rest = lines[*pos].text[1..].trim_start().to_string();
                if rest.is_empty() {
                    *pos += 1;
                    items.push(nested(lines, pos, indent)?);
                } else if key_value(&rest).is_some() {
                    // A mapping whose first entry shares the dash's line.
                    let inner = indent + lines[*pos].text.len() - rest.len();
                    lines[*pos].indent = inner;
                    lines[*pos].text = rest;
                    items.push(block(lines, pos, inner)?);
                } else {
                    items.push(scalar(&rest, lines[*pos].no)?);
                    *pos += 1;
                }
            }
            return Ok(Value::Array(items));
        }
        let mut map = Map::new();
        while *pos < lines.len() && lines[*pos].indent == indent && !is_item(&lines[*pos].text) {
            let no = lines[*pos].no;
            let (key, value) = key_value(&lines[*pos].text)
                .ok_or_else(|| format!("line {no}: expected `key: value`"))?;
            *pos += 1;
            let value = if !value.is_empty() {
                scalar(&value, no)?
            } else if *pos < lines.len()
                && lines[*pos].indent == indent
                && is_item(&lines[*pos].text)
            {
                block(lines, pos, indent)?
            } else {
                nested(lines, pos, indent)?
            };
            if map.insert(key.clone(), value).is_some() {
                return Err(format!("line {no}: the key {key} again"));
            }
        }
        Ok(Value::Object(map))
    }

    /// The block indented under the line before, or null when there is none.
    fn nested(lines: &mut [Line], pos: &mut usize, indent: usize) -> Result<Value, String> {
        match lines.get(*pos) {
            Some(l) if l.indent > indent => {
                let inner = l.indent;
                block(lines, pos, inner)
            }
            _ => Ok(Value::Null),
        }
    }

    fn scalar(text: &str, no: usize) -> Result<Value, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("line {no}: a `[` list must end on its line"))?;
            let mut items = Vec::new();
            for item in split_commas(inner) {
                let item = item.trim();
                if item.starts_with(['[', '{']) {
                    return Err(format!("line {no}: nested flow collections"));
                }
                if !item.is_empty() {
                    items.push(scalar(item, no)?);
                }
            }
            return Ok(Value::Array(items));
        }
        if text == "{}" {
            return Ok(Value::Object(Map::new()));
        }
        if text.starts_with(['{', '&', '*', '!', '|', '>', '%', '@', '`']) {
            return Err(format!("line {no}: unsupported YAML: {text}"));
        }
        if let Some(inner) = text.strip_prefix('\'') {
            let inner = inner
                .strip_suffix('\'')
                .ok_or_else(|| format!("line {no}: unterminated quote"))?;
            return Ok(Value::String(inner.replace("''", "'")));
        }
        if text.starts_with('"') {
            return serde_json::from_str(text)
                .map_err(|e| format!("line {no}: a double-quoted string: {e}"));
        }
        Ok(Value::String(text.to_string()))
    }

    fn split_commas(text: &str) -> Vec<&str> {
        let (mut parts, mut start) = (Vec::new(), 0);
        let (mut single, mut double, mut prev) = (false, false, ' ');
        for (i, c) in text.char_indices() {
            match c {
                '\'' if !double => single = !single,
                '"' if !single && prev != '\\' => double = !double,
                ',' if !single && !double => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
            prev = c;
        }
        parts.push(&text[start..]);
        parts
    }
}
