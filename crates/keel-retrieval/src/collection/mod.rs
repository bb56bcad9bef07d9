//! A collection: one tenant's named set of documents, stored in SQLite ([`crate::store`]) and
//! indexed twice (BM25, HNSW). Writes (ingest, delete, a model change) take the collection's
//! writer lock one at a time; searches run concurrently on the current indexes.
//!
//! On disk, in the collection's directory: `collection.db` (the source of truth), `bm25/`
//! (tantivy), `hnsw-<model>.bin` (a vector index snapshot for that embeddings model). Opening
//! reconciles both indexes with the store, so a crash between a store commit and an index
//! update is repaired without re-ingesting or re-embedding.

mod ingest;
mod search;

pub use ingest::{DocInput, DocOutcome, DocStatus, check_id};
pub use search::{Hit, MAX_QUERY_BYTES, MAX_TOP_K, Mode, SearchQuery};

use crate::bm25::Bm25;
use crate::chunk::{ChunkSettings, TokenCounter};
use crate::hnsw::{Hnsw, HnswParams};
use crate::store::{DocRow, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum CollectionError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Embedding(String),
    #[error("{0}")]
    Storage(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for CollectionError {
            fn from(e: $t) -> Self {
                Self::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    crate::store::StoreError,
    crate::bm25::Bm25Error,
    crate::hnsw::HnswError,
    tokio::task::JoinError
);

/// What a collection is configured with (`POST /v1/collections`), stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The keel embeddings model its vectors come from.
    pub embedding_model: String,
    #[serde(default)]
    pub chunking: ChunkSettings,
    /// Documents not re-ingested for longer than this drop out of results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
}

/// One document as the filters and results see it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocInfo {
    pub id: String,
    pub title: Option<String>,
    pub version: String,
    pub metadata: Map<String, Value>,
    pub updated_at: i64,
    /// Last ingested, changed or not: the collection's max age counts from here.
    pub seen_at: i64,
}

impl DocInfo {
    fn from_row(d: &DocRow) -> Self {
        Self {
            id: d.id.clone(),
            title: d.title.clone(),
            version: d.version.clone(),
            metadata: d.metadata.clone(),
            updated_at: d.updated_at,
            seen_at: d.seen_at,
        }
    }
}

/// Chunk key → its document, and the documents by id: what filters evaluate.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub chunks: HashMap<u64, Arc<DocInfo>>,
    pub docs: HashMap<String, Arc<DocInfo>>,
}

/// The indexes searches read; replaced piecewise under the write lock.
struct State {
    table: Arc<Table>,
    hnsw: Hnsw,
    settings: Settings,
    dim: Option<usize>,
    last_update: i64,
}

pub struct Collection {
    name: String,
    dir: PathBuf,
    store: Mutex<Store>,
    bm25: Bm25,
    state: RwLock<State>,
    /// One write (ingest, delete, model change) at a time.
    writer: tokio::sync::Mutex<()>,
    counter: TokenCounter,
    /// Chunks waiting for their embeddings.
    pending: AtomicUsize,
    /// Vector changes since the last HNSW snapshot.
    unsaved: AtomicUsize,
}

/// A collection's size and freshness (`GET /v1/collections/{name}`).
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub name: String,
    pub settings: Settings,
    pub documents: usize,
    pub chunks: usize,
    pub dimension: Option<usize>,
    /// Milliseconds since the epoch of the last committed change (`None`: never written).
    pub last_update_ms: Option<i64>,
    /// Chunks being embedded right now.
    pub pending_chunks: usize,
    /// Vector changes not yet in the on-disk snapshot (replayed from the store on open).
    pub unsaved_vectors: usize,
    pub deleted_vectors: usize,
    pub disk_bytes: u64,
    pub vector_index_bytes: usize,
    pub token_counter: &'static str,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn snapshot_name(model: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(model.as_bytes());
    format!("hnsw-{}.bin", hex::encode(&h[..6]))
}

impl Collection {
    /// Opens (or creates, with `settings`) the collection stored in `dir`. An existing
    /// collection keeps its stored settings; `settings` only names the defaults for a new one.
    pub fn open(
        name: &str,
        dir: &Path,
        settings: Option<Settings>,
        counter: TokenCounter,
    ) -> Result<Self, CollectionError> {
        std::fs::create_dir_all(dir).map_err(|e| CollectionError::Storage(e.to_string()))?;
        let store = Store::open(&dir.join("collection.db"))?;
        let settings = match (store.meta("settings")?, settings) {
            (Some(s), _) => serde_json::from_str::<Settings>(&s)
                .map_err(|e| CollectionError::Storage(format!("stored settings: {e}")))?,
            (None, Some(s)) => {
                s.chunking.check().map_err(CollectionError::Invalid)?;
                let json = serde_json::to_string(&s)
                    .map_err(|e| CollectionError::Storage(e.to_string()))?;
                store.set_meta("settings", &json)?;
                store.set_meta("embedding_model", &s.embedding_model)?;
                s
            }
            (None, None) => {
                return Err(CollectionError::Invalid(format!(
                    "the collection \"{name}\" does not exist"
                )));
            }
        };
        let dim = store.meta("dim")?.and_then(|d| d.parse().ok());
        let (bm25, bm25_generation) = Bm25::open(&dir.join("bm25"))?;
        let mut table = Table::default();
        for d in store.documents()? {
            table
                .docs
                .insert(d.id.clone(), Arc::new(DocInfo::from_row(&d)));
        }
        let mut titles: HashMap<u64, (String, String)> = HashMap::new();
        let generation = store.generation()?;
        let rebuild_bm25 = bm25_generation != Some(generation);
        store.each_chunk(|c| {
            if let Some(doc) = table.docs.get(&c.doc_id) {
                table.chunks.insert(c.key, doc.clone());
                if rebuild_bm25 {
                    let title = index_title(doc.title.as_deref(), &c.place.headings);
                    titles.insert(c.key, (title, c.text));
                }
            }
        })?;
        if rebuild_bm25 {
            tracing::info!(
                collection = name,
                "rebuilding the keyword index from the store"
            );
            bm25.clear()?;
            for (key, (title, text)) in &titles {
                bm25.add(*key, title, text)?;
            }
            bm25.commit(generation)?;
        }
        let snapshot = dir.join(snapshot_name(&settings.embedding_model));
        let mut hnsw = match (dim, snapshot.exists()) {
            (Some(_), true) => Hnsw::load(&snapshot).unwrap_or_else(|e| {
                tracing::warn!(collection = name, error = %e, "vector snapshot unreadable; rebuilding from the store");
                Hnsw::new(dim.unwrap_or(0), HnswParams::default())
            }),
            _ => Hnsw::new(dim.unwrap_or(0), HnswParams::default()),
        };
        // Reconcile: drop vectors of deleted chunks, add those the snapshot missed.
        let stale: Vec<u64> = hnsw
            .keys()
            .filter(|k| !table.chunks.contains_key(k))
            .collect();
        for k in &stale {
            hnsw.remove(*k);
        }
        let mut replayed = 0usize;
        let mut bad = None;
        let indexed: std::collections::HashSet<u64> = hnsw.keys().collect();
        store.each_embedding(
            |k| table.chunks.contains_key(&k) && !indexed.contains(&k),
            |k, v| match hnsw.insert(k, &v) {
                Ok(()) => replayed += 1,
                Err(e) => bad = Some(e),
            },
        )?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        let last_update = store
            .meta("last_update")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let c = Self {
            name: name.to_owned(),
            dir: dir.to_owned(),
            store: Mutex::new(store),
            bm25,
            state: RwLock::new(State {
                table: Arc::new(table),
                hnsw,
                settings,
                dim,
                last_update,
            }),
            writer: tokio::sync::Mutex::new(()),
            counter,
            pending: AtomicUsize::new(0),
            unsaved: AtomicUsize::new(replayed + stale.len()),
        };
        if replayed + stale.len() > 0 {
            tracing::info!(
                collection = name,
                replayed,
                removed = stale.len(),
                "vector index reconciled with the store"
            );
            c.save_vectors()?;
        }
        Ok(c)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> Settings {
        self.read().settings.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the vector index snapshot if it is behind the store.
    pub fn save_vectors(&self) -> Result<(), CollectionError> {
        if self.unsaved.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let st = self.read();
        let n = self.unsaved.swap(0, Ordering::Relaxed);
        let path = self.dir.join(snapshot_name(&st.settings.embedding_model));
        if let Err(e) = st.hnsw.save(&path) {
            self.unsaved.fetch_add(n, Ordering::Relaxed);
            return Err(e.into());
        }
        Ok(())
    }

    pub fn stats(&self) -> Stats {
        let st = self.read();
        let disk = Store::disk_bytes(&self.dir.join("collection.db"))
            + Bm25::disk_bytes(&self.dir.join("bm25"))
            + std::fs::metadata(self.dir.join(snapshot_name(&st.settings.embedding_model)))
                .map(|m| m.len())
                .unwrap_or(0);
        Stats {
            name: self.name.clone(),
            settings: st.settings.clone(),
            documents: st.table.docs.len(),
            chunks: st.table.chunks.len(),
            dimension: st.dim,
            last_update_ms: (st.last_update > 0).then_some(st.last_update),
            pending_chunks: self.pending.load(Ordering::Relaxed),
            unsaved_vectors: self.unsaved.load(Ordering::Relaxed),
            deleted_vectors: st.hnsw.tombstones(),
            disk_bytes: disk,
            vector_index_bytes: st.hnsw.memory_bytes(),
            token_counter: self.counter.name(),
        }
    }
}

/// What BM25 indexes besides the chunk text: its document title and heading path.
fn index_title(title: Option<&str>, headings: &[String]) -> String {
    let mut parts: Vec<&str> = title.into_iter().collect();
    parts.extend(headings.iter().map(String::as_str));
    parts.join(" › ")
}
