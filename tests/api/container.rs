//! The Dockerfile and compose.yaml hold what the README promises: a
//! multi-stage build, a non-root user, the /data volume, the health check,
//! 0.0.0.0 with PUBLIC_URL required, and no service that is not built.

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

#[test]
fn compose_runs_portico_alone_with_a_named_volume_and_requires_public_url() {
    let compose: serde_yaml::Value = serde_yaml::from_str(&read("compose.yaml")).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    assert_eq!(
        services.len(),
        1,
        "only Portico: Redis mode is not built yet"
    );
    let portico = &compose["services"]["portico"];
    assert_eq!(portico["build"], ".");
    let volumes: Vec<&str> = portico["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(volumes, ["portico-data:/data"]);
    assert!(compose["volumes"]
        .as_mapping()
        .unwrap()
        .contains_key("portico-data"));
    let public_url = portico["environment"]["PUBLIC_URL"].as_str().unwrap();
    assert!(
        public_url.starts_with("${PUBLIC_URL:?"),
        "required: {public_url}"
    );
    assert!(portico["ports"][0].as_str().unwrap().ends_with(":3000"));
    assert!(!read("compose.yaml").to_lowercase().contains("image: redis"));
}
