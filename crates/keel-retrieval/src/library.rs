//! `Library`: every tenant's collections under one directory, and ingestion from sources
//! (inline text, uploaded files, URLs) into them. A tenant only ever reaches its own
//! directory: collections are looked up by (tenant, name), never by path.

use crate::chunk::TokenCounter;
use crate::collection::{
    Collection, CollectionError, DocInput, DocOutcome, DocStatus, Settings, Stats,
};
use crate::embed::EmbedderSource;
use crate::extract::{self, Format};
use crate::fetch::{FetchPolicy, Fetcher};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Documents per upsert while ingesting a large batch (bounds memory, paces progress).
const GROUP: usize = 64;

pub struct Library {
    root: PathBuf,
    embedders: EmbedderSource,
    counter: TokenCounter,
    default_model: String,
    fetcher: Fetcher,
    limits: extract::Limits,
    open: Mutex<HashMap<(String, String), Arc<Collection>>>,
}

/// Where a document's content comes from.
#[derive(Debug, Clone)]
pub enum Body {
    /// Text given inline; Markdown unless `format` says otherwise.
    Text {
        text: String,
        format: Option<Format>,
    },
    Url(String),
    /// An uploaded or local file.
    File {
        name: String,
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
pub struct Source {
    /// Defaults to the URL or file name.
    pub id: Option<String>,
    pub title: Option<String>,
    pub metadata: Map<String, Value>,
    pub body: Body,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub id: String,
    /// A stable code: empty, binary, too_large, corrupt, unsupported, timeout, blocked, fetch,
    /// invalid, embedding, storage.
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: Vec<Failure>,
    pub documents: Vec<DocOutcome>,
}

pub const MAX_NAME: usize = 64;

/// Collection names: 1–64 of `[A-Za-z0-9_-]`.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a collection name is 1 to {MAX_NAME} letters, digits, '_' or '-', got \"{name}\""
        ))
    }
}

fn tenant_dir(tenant: Option<&str>) -> String {
    match tenant {
        None => "_local".to_owned(),
        Some(t) => format!("t-{}", hex::encode(&Sha256::digest(t.as_bytes())[..12])),
    }
}

impl Library {
    pub fn new(
        root: PathBuf,
        embedders: EmbedderSource,
        counter: TokenCounter,
        default_model: String,
        fetch: FetchPolicy,
        limits: extract::Limits,
    ) -> Self {
        Self {
            root,
            embedders,
            counter,
            default_model,
            fetcher: Fetcher::new(fetch),
            limits,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn embedders(&self) -> &EmbedderSource {
        &self.embedders
    }

    /// Largest document accepted (uploaded, inline or fetched).
    pub fn max_document_bytes(&self) -> usize {
        self.limits.max_bytes
    }

    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    fn dir(&self, tenant: Option<&str>, name: &str) -> PathBuf {
        self.root.join(tenant_dir(tenant)).join(name)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Collection>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a collection, or returns the existing one (`false`) if it already exists.
    pub fn create(
        &self,
        tenant: Option<&str>,
        name: &str,
        settings: Settings,
    ) -> Result<(Arc<Collection>, bool), CollectionError> {
        check_name(name).map_err(CollectionError::Invalid)?;
        if (self.embedders)(&settings.embedding_model).is_none() {
            return Err(CollectionError::Invalid(format!(
                "embedding_model: \"{}\" is not a configured embeddings model",
                settings.embedding_model
            )));
        }
        if let Some(c) = self.get(tenant, name)? {
            return Ok((c, false));
        }
        let key = (tenant_dir(tenant), name.to_owned());
        let c = Arc::new(Collection::open(
            name,
            &self.dir(tenant, name),
            Some(settings),
            self.counter.clone(),
        )?);
        self.map().insert(key, c.clone());
        Ok((c, true))
    }

    /// Default settings for a new collection.
    pub fn default_settings(&self) -> Settings {
        Settings {
            embedding_model: self.default_model.clone(),
            chunking: Default::default(),
            max_age_seconds: None,
        }
    }

    /// The tenant's collection `name`, opened on first use (`None`: it does not exist).
    pub fn get(
        &self,
        tenant: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<Collection>>, CollectionError> {
        check_name(name).map_err(CollectionError::Invalid)?;
        let key = (tenant_dir(tenant), name.to_owned());
        if let Some(c) = self.map().get(&key) {
            return Ok(Some(c.clone()));
        }
        let dir = self.dir(tenant, name);
        if !dir.join("collection.db").exists() {
            return Ok(None);
        }
        let c = Arc::new(Collection::open(name, &dir, None, self.counter.clone())?);
        Ok(Some(self.map().entry(key).or_insert(c).clone()))
    }

    /// The tenant's collections and their stats.
    pub fn list(&self, tenant: Option<&str>) -> Result<Vec<Stats>, CollectionError> {
        let dir = self.root.join(tenant_dir(tenant));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.path().join("collection.db").exists())
                    .filter_map(|e| e.file_name().to_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(c) = self.get(tenant, &n)? {
                out.push(c.stats());
            }
        }
        Ok(out)
    }

    /// Writes every open collection's vector snapshot (at shutdown).
    pub fn flush(&self) {
        let open: Vec<Arc<Collection>> = self.map().values().cloned().collect();
        for c in open {
            if let Err(e) = c.save_vectors() {
                tracing::warn!(collection = c.name(), error = %e, "vector snapshot failed at shutdown");
            }
        }
    }

    /// Ingests sources into `collection`: fetches and extracts each (a failure is reported with
    /// its reason and never stops the batch), then upserts them in groups. `progress` is called
    /// with the number of sources finished so far.
    pub async fn ingest(
        &self,
        collection: &Collection,
        sources: Vec<Source>,
        progress: &(dyn Fn(usize) + Send + Sync),
    ) -> IngestReport {
        let mut report = IngestReport::default();
        let mut done = 0;
        let mut sources = sources.into_iter().peekable();
        while sources.peek().is_some() {
            let group: Vec<Source> = sources.by_ref().take(GROUP).collect();
            let n = group.len();
            let mut docs = Vec::with_capacity(n);
            for s in group {
                match self.prepare(s).await {
                    Ok(d) => docs.push(d),
                    Err(f) => report.failed.push(f),
                }
            }
            let ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
            match collection.upsert(docs, &self.embedders).await {
                Ok(outcomes) => {
                    for o in outcomes {
                        match o.status {
                            DocStatus::Added => report.added += 1,
                            DocStatus::Updated => report.updated += 1,
                            DocStatus::Unchanged => report.unchanged += 1,
                        }
                        report.documents.push(o);
                    }
                }
                Err(e) => {
                    let reason = match &e {
                        CollectionError::Invalid(_) => "invalid",
                        CollectionError::Embedding(_) => "embedding",
                        CollectionError::Storage(_) => "storage",
                    };
                    report.failed.extend(ids.into_iter().map(|id| Failure {
                        id,
                        reason: reason.into(),
                        message: e.to_string(),
                    }));
                }
            }
            done += n;
            progress(done);
        }
        report
    }

    /// A source → its document text, or why not.
    async fn prepare(&self, s: Source) -> Result<DocInput, Failure> {
        let fallback_id = match &s.body {
            Body::Url(u) => u.clone(),
            Body::File { name, .. } => name.clone(),
            Body::Text { .. } => String::new(),
        };
        let id = s.id.clone().unwrap_or(fallback_id);
        let fail = |reason: &str, message: String| Failure {
            id: id.clone(),
            reason: reason.to_owned(),
            message,
        };
        crate::collection::check_id(&id).map_err(|m| fail("invalid", format!("id: {m}")))?;
        let (source, name, content_type, bytes, hint) = match s.body {
            Body::Text { text, format } => (
                "inline".to_owned(),
                None,
                None,
                text.into_bytes(),
                Some(format.unwrap_or(Format::Markdown)),
            ),
            Body::File {
                name,
                content_type,
                bytes,
            } => (name.clone(), Some(name), content_type, bytes, None),
            Body::Url(url) => {
                let f = self.fetcher.fetch(&url).await.map_err(|e| {
                    let reason = if e.reason() == "blocked" {
                        "blocked"
                    } else {
                        "fetch"
                    };
                    fail(reason, format!("{url}: {e}"))
                })?;
                (f.url.clone(), Some(f.url), f.content_type, f.bytes, None)
            }
        };
        let limits = self.limits.clone();
        let extracted = tokio::task::spawn_blocking(move || {
            let format = match hint {
                Some(f) => f,
                None => extract::detect(name.as_deref(), content_type.as_deref(), &bytes)?,
            };
            extract::extract(&bytes, format, &limits)
        })
        .await
        .map_err(|e| fail("corrupt", format!("extraction crashed: {e}")))?
        .map_err(|e| fail(e.reason(), e.to_string()))?;
        Ok(DocInput {
            id: id.clone(),
            title: s.title.or(extracted.title),
            source,
            format: extracted.format,
            text: extracted.text,
            metadata: s.metadata,
        })
    }
}
