//! The Dockerfile and compose.yaml hold what the README promises: a
//! multi-stage build, a non-root user, the /data volume, the health check,
//! 0.0.0.0 with PUBLIC_URL required; and compose.yaml's two instances on
//! one Redis with append-only persistence behind Caddy (checked by parsing:
//! no container engine runs in the tests).

use std::path::Path;

fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name))
        .unwrap_or_else(|err| panic!("{name}: {err}"))
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<(String, String)> {
    let text = read("Dockerfile").replace("\\\n", " ");
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
            (
                op.to_uppercase(),
                rest.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect()
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_unprivileged_in_another() {
    let steps = instructions();
    let from: Vec<&String> = steps
        .iter()
        .filter(|(op, _)| op == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(
        from[0].starts_with("rust:") && from[0].ends_with(" AS builder"),
        "{}",
        from[0]
    );
    assert!(
        from[1].contains("slim") || from[1].contains("distroless"),
        "{}",
        from[1]
    );
    let runtime_start = steps.iter().rposition(|(op, _)| op == "FROM").unwrap();
    let runtime = &steps[runtime_start..];
    let has = |op: &str, args: &str| runtime.iter().any(|(o, a)| o == op && a.contains(args));
    assert!(has("COPY", "--from=builder /src/target/release/portico"));
    let user = runtime
        .iter()
        .rev()
        .find(|(op, _)| op == "USER")
        .map(|(_, a)| a.as_str());
    assert!(user.is_some_and(|u| u != "root" && u != "0"), "{user:?}");
    assert!(has("VOLUME", "/data"));
    assert!(has("ENV", "DATA_DIR=/data"));
    assert!(has("ENV", "BIND=0.0.0.0:3000"));
    assert!(has("EXPOSE", "3000"));
    assert!(has("HEALTHCHECK", r#"CMD ["portico", "healthcheck"]"#));
    assert!(
        !runtime
            .iter()
            .any(|(op, a)| op == "ENV" && a.contains("PUBLIC_URL")),
        "PUBLIC_URL has no default in the image: the operator sets it"
    );
    assert!(read("Dockerfile").contains("PUBLIC_URL is required"));
    let ignored = read(".dockerignore");
    assert!(ignored.lines().any(|l| l == "target") && ignored.lines().any(|l| l == "workspaces"));
}

/// compose.yaml, its `<<: *portico` merges applied as docker compose does.
fn compose() -> serde_yaml::Value {
    let mut compose: serde_yaml::Value = serde_yaml::from_str(&read("compose.yaml")).unwrap();
    compose.apply_merge().unwrap();
    for service in compose["services"].as_mapping_mut().unwrap().values_mut() {
        service.apply_merge().unwrap();
    }
    compose
}

fn strings(value: &serde_yaml::Value) -> Vec<&str> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn compose_runs_two_instances_on_one_redis_with_append_only_persistence_behind_a_proxy() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let names: Vec<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["redis", "portico-a", "portico-b", "proxy"]);
    let declared = compose["volumes"].as_mapping().unwrap();

    let redis = &compose["services"]["redis"];
    assert!(redis["image"].as_str().unwrap().starts_with("redis:"));
    let command = strings(&redis["command"]).join(" ");
    assert!(command.contains("--appendonly yes"), "{command}");
    assert!(
        command.contains("--maxmemory-policy noeviction"),
        "{command}"
    );
    assert!(
        command.contains("--requirepass ${REDIS_PASSWORD:?"),
        "{command}"
    );
    assert_eq!(strings(&redis["volumes"]), ["redis-data:/data"]);
    assert!(redis.get("ports").is_none(), "Redis is not published");

    let mut data_volumes = Vec::new();
    for name in ["portico-a", "portico-b"] {
        let portico = &compose["services"][name];
        assert_eq!(portico["build"], ".", "{name}");
        assert!(
            portico.get("ports").is_none(),
            "{name} is reached through the proxy only"
        );
        let env = &portico["environment"];
        let required = |var: &str| {
            let value = env[var].as_str().unwrap_or_else(|| panic!("{name}: {var}"));
            assert!(
                value.contains(&format!("${{{var}:?")),
                "{name}: {var} is required: {value}"
            );
        };
        required("PUBLIC_URL");
        let url = env["REDIS_URL"].as_str().unwrap();
        assert!(
            url.starts_with("redis://") && url.ends_with("@redis:6379"),
            "{url}"
        );
        assert_eq!(
            env["TRUSTED_PROXIES"],
            compose["services"]["proxy"]["networks"]["portico"]["ipv4_address"],
            "{name} believes forwarding headers from the proxy only"
        );
        assert_eq!(
            portico["depends_on"]["redis"]["condition"], "service_healthy",
            "{name}"
        );
        let volumes = strings(&portico["volumes"]);
        assert_eq!(volumes.len(), 1, "{name}: {volumes:?}");
        assert!(volumes[0].ends_with(":/data"), "{name}: {volumes:?}");
        data_volumes.push(volumes[0].split(':').next().unwrap().to_owned());
    }
    assert_ne!(
        data_volumes[0], data_volumes[1],
        "each instance has its own volume"
    );
    for volume in data_volumes
        .iter()
        .map(String::as_str)
        .chain(["redis-data"])
    {
        assert!(declared.contains_key(volume), "{volume} is declared");
    }
    assert_eq!(
        compose["services"]["portico-a"]["environment"],
        compose["services"]["portico-b"]["environment"],
        "every instance gets the same variables"
    );

    let proxy = &compose["services"]["proxy"];
    assert!(proxy["image"].as_str().unwrap().starts_with("caddy:"));
    assert_eq!(strings(&proxy["ports"]), ["3000:80"]);
    assert!(strings(&proxy["volumes"]).contains(&"./deploy/Caddyfile:/etc/caddy/Caddyfile:ro"));
    let caddyfile = read("deploy/Caddyfile");
    let upstreams = caddyfile
        .lines()
        .find_map(|line| line.trim().strip_prefix("reverse_proxy "))
        .expect("a reverse_proxy directive");
    assert_eq!(upstreams, "portico-a:3000 portico-b:3000 {");
    for directive in [
        "health_uri /api/health",
        "health_status 200",
        "lb_try_duration",
    ] {
        assert!(
            caddyfile.contains(directive),
            "the Caddyfile has {directive}"
        );
    }
    let example = read("deploy/compose.env.example");
    for var in ["PUBLIC_URL=", "REDIS_PASSWORD="] {
        assert!(
            example.lines().any(|l| l.starts_with(var)),
            "{var} in the example"
        );
    }
}
