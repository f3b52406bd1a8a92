//! Production (issue #19): the container image file, backup and restore.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A stage of the Containerfile: name, base image, instructions as (keyword, rest).
type Stage = (String, String, Vec<(String, String)>);

fn stages() -> Vec<Stage> {
    let text = std::fs::read_to_string(workspace().join("Containerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages: Vec<Stage> = Vec::new();
    for line in joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (keyword, rest) = line.split_once(' ').unwrap();
        if keyword == "FROM" {
            let (image, name) = rest.split_once(" AS ").unwrap();
            stages.push((name.to_string(), image.to_string(), Vec::new()));
        } else {
            stages.last_mut().unwrap().2.push((keyword.to_string(), rest.to_string()));
        }
    }
    stages
}

/// Where `cargo build --release` puts the entctl binary, relative to the workspace root.
fn release_binary() -> String {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace())
        .output()
        .unwrap();
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let target = PathBuf::from(metadata["target_directory"].as_str().unwrap());
    let root = PathBuf::from(metadata["workspace_root"].as_str().unwrap());
    let bin = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .find(|t| t["kind"] == serde_json::json!(["bin"]))
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_string();
    let relative = target.strip_prefix(&root).expect("the target folder is inside the workspace");
    format!("{}/release/{bin}", relative.display())
}

#[test]
fn the_image_copies_the_binary_the_release_build_makes_and_runs_it_as_a_non_root_user_without_a_shell() {
    let stages = stages();
    let names: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["build", "runtime-libreoffice", "runtime"], "the default image is the last stage");
    let (_, _, build) = &stages[0];
    let run = &build.iter().find(|(k, _)| k == "RUN").unwrap().1;
    assert!(run.starts_with("cargo build --release --locked -p entctl --bin entctl "), "{run}");
    assert!(!run.contains("--target ") && !run.contains("CARGO_TARGET_DIR"), "the output folder moved: {run}");
    // The binary installed to /out is the one cargo wrote, at the path this workspace's release build uses.
    let workdir = &build.iter().find(|(k, _)| k == "WORKDIR").unwrap().1;
    assert_eq!(workdir, "/src");
    assert!(run.contains(&format!("install -D -m 0755 {} /out/entctl", release_binary())), "{run}");
    for (name, base, steps) in &stages[1..] {
        let copy = steps.iter().find(|(k, rest)| k == "COPY" && rest.ends_with("/usr/local/bin/entctl")).unwrap();
        assert_eq!(copy.1, "--from=build /out/entctl /usr/local/bin/entctl", "{name}");
        let entrypoint = &steps.iter().find(|(k, _)| k == "ENTRYPOINT").unwrap().1;
        assert_eq!(entrypoint, r#"["/usr/local/bin/entctl"]"#, "{name}");
        let user = &steps.iter().rev().find(|(k, _)| k == "USER").unwrap().1;
        assert_eq!(user, "65532:65532", "{name}: numeric non-root user (runAsNonRoot can check it)");
        let env = steps.iter().filter(|(k, _)| k == "ENV").map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(" ");
        assert!(env.contains("HOME=/tmp") && env.contains("ENTCP_DATA_DIR=/var/lib/entcp"), "{name}: {env}");
        if name == "runtime" {
            assert!(base.starts_with("gcr.io/distroless/cc-debian12:nonroot"), "{base}");
            assert!(steps.iter().all(|(k, _)| k != "RUN"), "the default image runs nothing: it has no shell");
        } else {
            assert!(steps.iter().any(|(k, rest)| k == "RUN" && rest.contains("libreoffice-writer-nogui")));
        }
    }
    let ignored = std::fs::read_to_string(workspace().join(".dockerignore")).unwrap();
    assert!(ignored.lines().any(|l| l == "target/") && ignored.lines().any(|l| l == ".git/"), "{ignored}");
}
