//! Stamps the git revision into the binaries: Sentry's release and `loopscope_build_info` use it.
//! A container build has no `.git`, so `LOOPSCOPE_REVISION` set by the build wins when present.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LOOPSCOPE_REVISION");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let revision = std::env::var("LOOPSCOPE_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!(
        "cargo:rustc-env=LOOPSCOPE_REVISION={}",
        revision.unwrap_or_else(|| "unknown".into())
    );
}
