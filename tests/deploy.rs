//! The production layout in `deploy/` agrees with the server, offline (`deploy/README.md`):
//!
//! - every manifest parses, and the kustomization lists each of them;
//! - the probes ask routes the router serves (`/readyz`, `/healthz`), on the container port that
//!   `STACKGATE_LISTEN` makes the server listen on, which the image exposes;
//! - the Service and the disruption budget select the Deployment's pods, not the migration Job's;
//! - no setting the binary treats as a secret (`hide_env_values` on its flag) is written into a
//!   manifest: each comes from a `secretKeyRef`, and no literal holds a password;
//! - the image is multi-stage, its final stage holds the binary alone and runs as a user other
//!   than root, the one the pods pin.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn manifest_files() -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

/// Every document of every manifest but the kustomization, with its file's name.
fn manifests() -> Vec<(String, Yaml)> {
    let mut out = Vec::new();
    for path in manifest_files() {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let docs = YamlLoader::load_from_str(&read(&path))
            .unwrap_or_else(|e| panic!("{name} is not YAML: {e}"));
        out.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    out.retain(|(_, d)| d["kind"].as_str() != Some("Kustomization"));
    out
}

fn only(kind: &str) -> Yaml {
    let found: Vec<Yaml> = manifests()
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect();
    assert_eq!(found.len(), 1, "exactly one {kind}");
    found.into_iter().next().expect("one")
}

fn list(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or_default()
}

/// `(key, value)` pairs of a mapping of strings (labels, selectors, ConfigMap data).
fn pairs(y: &Yaml) -> BTreeSet<(String, String)> {
    let Some(hash) = y.as_hash() else {
        return BTreeSet::new();
    };
    hash.iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), scalar(v)?)))
        .collect()
}

fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether `selector` (matchLabels) selects pods labelled `labels`.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    let wanted = pairs(selector);
    !wanted.is_empty() && wanted.is_subset(&pairs(labels))
}

fn server_container() -> Yaml {
    let deployment = only("Deployment");
    let containers = list(&deployment["spec"]["template"]["spec"]["containers"]);
    assert_eq!(containers.len(), 1, "one container per pod: the server");
    containers[0].clone()
}

#[test]
fn every_manifest_parses_and_the_kustomization_lists_them() {
    let dir = Path::new(ROOT).join("deploy/kubernetes");
    let kustomization = &YamlLoader::load_from_str(&read(&dir.join("kustomization.yaml")))
        .expect("kustomization parses")[0];
    let listed: BTreeSet<String> = list(&kustomization["resources"])
        .iter()
        .filter_map(|r| r.as_str().map(str::to_owned))
        .collect();
    let present: BTreeSet<String> = manifest_files()
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    for (file, doc) in manifests() {
        for field in ["apiVersion", "kind"] {
            assert!(doc[field].as_str().is_some(), "{file}: no {field}");
        }
        assert!(
            doc["metadata"]["name"].as_str().is_some(),
            "{file}: no name"
        );
    }
}

#[test]
fn probes_ask_served_routes_on_the_port_the_server_listens_on() {
    let router = read(&Path::new(ROOT).join("src/router.rs"));
    let container = server_container();
    let port = listen_port(&container);
    let named: Vec<(Option<String>, i64)> = list(&container["ports"])
        .iter()
        .map(|p| {
            (
                p["name"].as_str().map(str::to_owned),
                p["containerPort"].as_i64().expect("containerPort"),
            )
        })
        .collect();
    assert!(
        named.iter().any(|(_, p)| *p == port),
        "the container exposes {port}: {named:?}"
    );
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        assert!(
            router.contains(&format!(".route(\"{path}\"")),
            "src/router.rs serves {path}"
        );
        let probed = match &get["port"] {
            Yaml::Integer(n) => *n,
            Yaml::String(name) => named
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name.as_str()))
                .map(|(_, p)| *p)
                .unwrap_or_else(|| panic!("{probe} names no container port: {name}")),
            other => panic!("{probe} has no port: {other:?}"),
        };
        assert_eq!(probed, port, "{probe} asks the port the server listens on");
    }
    let dockerfile = read(&Path::new(ROOT).join("deploy/Dockerfile"));
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("EXPOSE {port}")),
        "the image exposes {port}"
    );
    let resources = &container["resources"];
    for (part, what) in [
        ("requests", "cpu"),
        ("requests", "memory"),
        ("limits", "memory"),
    ] {
        assert!(
            scalar(&resources[part][what]).is_some(),
            "resources.{part}.{what}"
        );
    }
    let replicas = only("Deployment")["spec"]["replicas"].as_i64();
    assert!(
        replicas.is_some_and(|n| n >= 2),
        "several replicas: {replicas:?}"
    );
}

/// The port of `STACKGATE_LISTEN` as the container gets it (its env, else its ConfigMap).
fn listen_port(container: &Yaml) -> i64 {
    let from_env = list(&container["env"])
        .iter()
        .find(|e| e["name"].as_str() == Some("STACKGATE_LISTEN"))
        .and_then(|e| e["value"].as_str().map(str::to_owned));
    let from_config_map = || {
        let config_map = only("ConfigMap");
        let referenced = list(&container["envFrom"])
            .iter()
            .any(|e| e["configMapRef"]["name"].as_str() == config_map["metadata"]["name"].as_str());
        assert!(referenced, "the container reads the ConfigMap");
        config_map["data"]["STACKGATE_LISTEN"]
            .as_str()
            .map(str::to_owned)
    };
    let listen = from_env
        .or_else(from_config_map)
        .expect("STACKGATE_LISTEN is set: the default, 127.0.0.1, is unreachable in a pod");
    let addr: std::net::SocketAddr = listen.parse().expect("STACKGATE_LISTEN is host:port");
    assert!(
        addr.ip().is_unspecified(),
        "a pod listens on every interface: {addr}"
    );
    i64::from(addr.port())
}

#[test]
fn the_service_and_the_budget_select_the_servers_and_not_the_migration() {
    let deployment = only("Deployment");
    let pods = &deployment["spec"]["template"]["metadata"]["labels"];
    let job_pods = &only("Job")["spec"]["template"]["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        pods
    ));
    let budget = only("PodDisruptionBudget");
    let service = only("Service");
    for (what, selector) in [
        (
            "the disruption budget",
            &budget["spec"]["selector"]["matchLabels"],
        ),
        ("the Service", &service["spec"]["selector"]),
    ] {
        assert!(
            selects(selector, pods),
            "{what} selects the Deployment's pods"
        );
        assert!(
            !selects(selector, job_pods),
            "{what} leaves the migration Job's pods alone"
        );
    }
    let replicas = deployment["spec"]["replicas"].as_i64().expect("replicas");
    let down = match (
        &budget["spec"]["maxUnavailable"],
        &budget["spec"]["minAvailable"],
    ) {
        (Yaml::Integer(n), _) => *n,
        (_, Yaml::Integer(n)) => replicas - n,
        other => panic!("the budget needs a whole maxUnavailable or minAvailable: {other:?}"),
    };
    assert!(
        (1..replicas).contains(&down),
        "a drain keeps a replica serving and can progress"
    );
    let target = &list(&service["spec"]["ports"])[0]["targetPort"];
    let container = server_container();
    let port_names: Vec<&str> = list(&container["ports"])
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        target.as_str().is_some_and(|t| port_names.contains(&t))
            || target.as_i64() == Some(listen_port(&container)),
        "the Service sends traffic to the server's port"
    );
}

/// The variables of every flag whose value `--help` hides: the binary's secrets.
fn secret_settings() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![Path::new(ROOT).join("src")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                for attribute in read(&path).split("#[arg(").skip(1) {
                    let attribute = attribute.split(")]").next().unwrap_or_default();
                    if !attribute.contains("hide_env_values = true") {
                        continue;
                    }
                    if let Some(env) = attribute.split("env = \"").nth(1) {
                        names.insert(env.split('"').next().unwrap_or_default().to_owned());
                    }
                }
            }
        }
    }
    assert!(
        names.contains("STACKGATE_JWT_SECRET"),
        "the scan finds the secrets: {names:?}"
    );
    names
}

#[test]
fn no_secret_is_written_into_a_manifest() {
    let secrets = secret_settings();
    let mut seen = BTreeSet::new();
    for (file, doc) in manifests() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        assert_ne!(
            kind, "Secret",
            "{file}: Secrets are created outside the repository"
        );
        for (key, value) in pairs(&doc["data"]) {
            assert!(!secrets.contains(&key), "{file}: {key} in a ConfigMap");
            assert!(!has_password(&value), "{file}: {key} holds a password");
        }
        let spec = &doc["spec"]["template"]["spec"];
        for container in list(&spec["containers"])
            .iter()
            .chain(list(&spec["initContainers"]))
        {
            for env in list(&container["env"]) {
                let name = env["name"].as_str().expect("env name").to_owned();
                let value = scalar(&env["value"]);
                assert!(
                    !value.as_deref().is_some_and(has_password),
                    "{file}: {name} holds a password"
                );
                if secrets.contains(&name) {
                    assert!(value.is_none(), "{file}: {name} is written inline");
                    assert!(
                        env["valueFrom"]["secretKeyRef"]["name"].as_str().is_some(),
                        "{file}: {name} comes from a secretKeyRef"
                    );
                    seen.insert(name);
                }
            }
        }
    }
    for needed in [
        "STACKGATE_APP_DATABASE_URL",
        "STACKGATE_JWT_SECRET",
        "DATABASE_URL",
    ] {
        assert!(
            seen.contains(needed),
            "{needed} reaches the pods from a Secret"
        );
    }
}

/// A URL with a password in it (`scheme://user:password@host`).
fn has_password(text: &str) -> bool {
    text.split("://").skip(1).any(|rest| {
        let authority = rest.split('/').next().unwrap_or_default();
        authority
            .split_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

#[test]
fn the_image_holds_the_binary_alone_and_runs_as_the_pods_user() {
    let dockerfile = read(&Path::new(ROOT).join("deploy/Dockerfile"));
    let instructions: Vec<String> = dockerfile
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let stages: Vec<usize> = (0..instructions.len())
        .filter(|&i| instructions[i].starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "a build stage and a run stage");
    let last = &instructions[*stages.last().expect("a stage")..];
    let copies: Vec<&String> = last.iter().filter(|l| l.starts_with("COPY ")).collect();
    assert_eq!(copies.len(), 1, "the run stage copies one file: {copies:?}");
    assert!(copies[0].starts_with("COPY --from=") && copies[0].ends_with("/stackgate"));
    let user = last
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the run stage names its USER");
    let uid = user.split(':').next().unwrap_or_default().trim();
    assert!(
        !matches!(uid, "" | "0" | "root"),
        "the image runs as root: {user}"
    );
    assert!(
        last.iter()
            .any(|l| l.starts_with("ENTRYPOINT [\"/usr/local/bin/stackgate\"")),
        "the binary is the entry point"
    );
    for (file, doc) in manifests() {
        let security = &doc["spec"]["template"]["spec"]["securityContext"];
        if security.is_badvalue() {
            continue;
        }
        assert_eq!(security["runAsNonRoot"].as_bool(), Some(true), "{file}");
        assert_eq!(
            scalar(&security["runAsUser"]).as_deref(),
            Some(uid),
            "{file}"
        );
    }
}

#[test]
fn the_password_check_finds_passwords_only() {
    assert!(has_password("postgres://app:hunter2@db:5432/stackgate"));
    assert!(!has_password("postgres://app@db/stackgate"));
    assert!(!has_password("0.0.0.0:8080"));
}

/// Debian's yamllint over the manifests, when it is installed (`tests/setup.sh` installs it);
/// the checks above are the ones that must pass everywhere.
#[test]
fn yamllint_passes_where_it_is_installed() {
    let run = std::process::Command::new("yamllint")
        .args([
            "-s",
            "-c",
            "deploy/yamllint.yaml",
            "deploy/kubernetes",
            "deploy/yamllint.yaml",
        ])
        .current_dir(ROOT)
        .output();
    let Ok(output) = run else {
        eprintln!("yamllint is not installed; skipped");
        return;
    };
    assert!(
        output.status.success(),
        "yamllint:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
