//! `keel ingest <collection> <paths or URLs...>`: documents into a collection in-process,
//! through the same `Library` the server uses, with a progress bar and a summary (added,
//! updated, unchanged, failed with reasons). Directories are walked for text, Markdown, HTML
//! and PDF files; a file named explicitly is always tried.

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use keel_retrieval::{Body, Source};
use serde_json::Map;
use std::path::{Path, PathBuf};

const EXTENSIONS: &[&str] = &["txt", "text", "md", "markdown", "html", "htm", "pdf"];

pub struct Args {
    pub config: Option<PathBuf>,
    pub collection: String,
    pub inputs: Vec<String>,
    pub tenant: Option<String>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// The sources named on the command line (files read now; URLs fetched by the library).
fn sources(inputs: &[String]) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("http://") || input.starts_with("https://") {
            out.push(Source {
                id: None,
                title: None,
                metadata: Map::new(),
                body: Body::Url(input.clone()),
            });
            continue;
        }
        let path = Path::new(input);
        let mut files = Vec::new();
        if path.is_dir() {
            walk(path, &mut files)?;
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else {
            bail!("{input}: no such file, directory or http(s) URL");
        }
        for f in files {
            let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
            let name = f.display().to_string();
            out.push(Source {
                id: Some(name.clone()),
                title: None,
                metadata: Map::new(),
                body: Body::File {
                    name,
                    content_type: None,
                    bytes,
                },
            });
        }
    }
    Ok(out)
}

pub async fn run(args: Args) -> Result<()> {
    let config = crate::load_config(args.config.as_deref())?;
    let sources = sources(&args.inputs)?;
    if sources.is_empty() {
        bail!("nothing to ingest: no text, Markdown, HTML or PDF files found");
    }
    let runtime = crate::start_ready(&config).await?;
    let library = runtime
        .pipeline
        .library()
        .cloned()
        .context("retrieval is not enabled")?;
    let tenant = args.tenant.as_deref();
    let collection = match library.get(tenant, &args.collection)? {
        Some(c) => c,
        None => {
            let (c, _) = library.create(tenant, &args.collection, library.default_settings())?;
            eprintln!("created collection \"{}\"", args.collection);
            c
        }
    };
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} documents  {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress_bar = bar.clone();
    let report = library
        .ingest(&collection, sources, &move |done| {
            progress_bar.set_position(done as u64)
        })
        .await;
    bar.finish_and_clear();
    let stats = collection.stats();
    runtime.shutdown().await;
    let chunks_embedded: usize = report.documents.iter().map(|d| d.embedded).sum();
    println!(
        "{}: {} added, {} updated, {} unchanged, {} failed ({} chunks embedded; collection: {} documents, {} chunks)",
        args.collection,
        report.added,
        report.updated,
        report.unchanged,
        report.failed.len(),
        chunks_embedded,
        stats.documents,
        stats.chunks
    );
    for f in &report.failed {
        println!("  failed  {}  [{}] {}", f.id, f.reason, f.message);
    }
    if !report.failed.is_empty() {
        bail!("{} of the documents failed", report.failed.len());
    }
    Ok(())
}
