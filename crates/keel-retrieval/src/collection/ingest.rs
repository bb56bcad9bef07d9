//! Writing a collection: upsert documents (only chunks whose content hash is new are
//! embedded), delete documents (gone from results as soon as the call returns), and change the
//! embeddings model (everything re-embedded into a fresh index, swapped in at once).

use super::{Collection, CollectionError, DocInfo, index_title, now_ms, snapshot_name};
use crate::chunk::{self, Piece};
use crate::embed::{self, Embedder};
use crate::extract::Format;
use crate::hnsw::{Hnsw, HnswParams};
use crate::store::{DocChange, DocRow, NewChunk, Placement};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A document's extracted text and what to store with it.
#[derive(Debug, Clone)]
pub struct DocInput {
    pub id: String,
    pub title: Option<String>,
    /// A URL, a file path or `inline`.
    pub source: String,
    pub format: Format,
    pub text: String,
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocStatus {
    Added,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocOutcome {
    pub id: String,
    pub status: DocStatus,
    pub chunks: usize,
    /// Chunks embedded for this version (new or changed text); the rest were reused.
    pub embedded: usize,
    pub version: String,
}

fn sha(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// One document's plan before embedding.
struct Plan {
    input: DocInput,
    version: String,
    pieces: Vec<Piece>,
    /// Per piece: the old chunk key it reuses, if its text is unchanged.
    reuse: Vec<Option<u64>>,
    removed: Vec<u64>,
    existed: Option<DocRow>,
}

pub const MAX_ID_LEN: usize = 512;

pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(format!(
            "a document id must be 1 to {MAX_ID_LEN} bytes without control characters"
        ));
    }
    Ok(())
}

impl Collection {
    pub(crate) fn embedder_for(
        &self,
        source: &crate::embed::EmbedderSource,
        model: &str,
    ) -> Result<Arc<dyn Embedder>, CollectionError> {
        source(model).ok_or_else(|| {
            CollectionError::Invalid(format!(
                "the embeddings model \"{model}\" is not configured"
            ))
        })
    }

    /// Adds or updates documents. Documents whose text, title and metadata are unchanged are
    /// left alone; in a changed one only chunks with new text are embedded.
    pub async fn upsert(
        &self,
        docs: Vec<DocInput>,
        embedders: &crate::embed::EmbedderSource,
    ) -> Result<Vec<DocOutcome>, CollectionError> {
        for d in &docs {
            check_id(&d.id).map_err(CollectionError::Invalid)?;
        }
        let _w = self.writer.lock().await;
        let settings = self.settings();
        let embedder = self.embedder_for(embedders, &settings.embedding_model)?;
        // Plan: split, and match each piece's hash against the document's stored chunks.
        let mut plans = Vec::with_capacity(docs.len());
        let mut outcomes = Vec::new();
        for input in docs {
            let version = sha(&input.text);
            let existed = self.store().document(&input.id)?;
            if let Some(old) = &existed
                && old.version == version
                && old.title == input.title
                && old.metadata == input.metadata
            {
                self.touch(old, now_ms())?;
                outcomes.push(DocOutcome {
                    id: input.id,
                    status: DocStatus::Unchanged,
                    chunks: self.store().chunk_hashes(&old.id)?.len(),
                    embedded: 0,
                    version,
                });
                continue;
            }
            let pieces = chunk::split(&input.text, input.format, &settings.chunking, &self.counter)
                .map_err(CollectionError::Invalid)?;
            let mut old: HashMap<String, Vec<u64>> = HashMap::new();
            if existed.is_some() {
                for (k, h) in self.store().chunk_hashes(&input.id)?.into_iter().rev() {
                    old.entry(h).or_default().push(k);
                }
            }
            let reuse: Vec<Option<u64>> = pieces
                .iter()
                .map(|p| old.get_mut(&sha(&p.text)).and_then(Vec::pop))
                .collect();
            let removed = old.into_values().flatten().collect();
            plans.push(Plan {
                input,
                version,
                pieces,
                reuse,
                removed,
                existed,
            });
        }
        // Embed every new piece of every document together, in batches.
        let texts: Vec<String> = plans
            .iter()
            .flat_map(|p| {
                p.pieces
                    .iter()
                    .zip(&p.reuse)
                    .filter(|(_, r)| r.is_none())
                    .map(|(piece, _)| piece.text.clone())
            })
            .collect();
        self.pending.fetch_add(texts.len(), Ordering::Relaxed);
        let dim = self.read().dim;
        let n_texts = texts.len();
        let vectors = embed::embed_all(&*embedder, texts, dim, &self.pending).await;
        let mut vectors = match vectors {
            Ok(v) => v.into_iter(),
            Err(e) => {
                self.pending.fetch_sub(
                    n_texts.min(self.pending.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                return Err(CollectionError::Embedding(e));
            }
        };
        let now = now_ms();
        let mut generation = 0;
        for plan in plans {
            let title = plan.input.title.clone();
            let mut kept = Vec::new();
            let mut added = Vec::new();
            let mut added_heads = Vec::new();
            for (ord, (piece, reuse)) in plan.pieces.iter().zip(&plan.reuse).enumerate() {
                let place = Placement {
                    ord,
                    start: piece.start,
                    end: piece.end,
                    headings: piece.headings.clone(),
                };
                match reuse {
                    Some(k) => kept.push((*k, place)),
                    None => {
                        let embedding = vectors.next().ok_or_else(|| {
                            CollectionError::Embedding("fewer vectors than chunks".into())
                        })?;
                        added_heads.push(index_title(title.as_deref(), &piece.headings));
                        added.push(NewChunk {
                            place,
                            hash: sha(&piece.text),
                            text: piece.text.clone(),
                            embedding,
                        });
                    }
                }
            }
            let doc = DocRow {
                id: plan.input.id.clone(),
                title: title.clone(),
                source: plan.input.source.clone(),
                format: format!("{:?}", plan.input.format).to_lowercase(),
                version: plan.version.clone(),
                metadata: plan.input.metadata.clone(),
                created_at: plan.existed.as_ref().map_or(now, |d| d.created_at),
                updated_at: now,
                seen_at: now,
            };
            let change = DocChange {
                doc: doc.clone(),
                kept,
                removed: plan.removed,
                added,
            };
            let (keys, g) = self.store().apply(&change)?;
            generation = g;
            self.index_change(&doc, &change, &keys, &added_heads)?;
            outcomes.push(DocOutcome {
                id: doc.id,
                status: if plan.existed.is_some() {
                    super::DocStatus::Updated
                } else {
                    super::DocStatus::Added
                },
                chunks: plan.pieces.len(),
                embedded: keys.len(),
                version: plan.version,
            });
        }
        if generation > 0 {
            self.bm25.commit(generation)?;
            self.mark_updated(now)?;
            self.maybe_save();
        }
        Ok(outcomes)
    }

    /// Applies a committed store change to the in-memory table, BM25 (uncommitted) and HNSW.
    fn index_change(
        &self,
        doc: &DocRow,
        change: &DocChange,
        keys: &[u64],
        heads: &[String],
    ) -> Result<(), CollectionError> {
        let title_changed = {
            let st = self.read();
            st.table
                .docs
                .get(&doc.id)
                .is_some_and(|d| d.title != doc.title)
        };
        for k in &change.removed {
            self.bm25.remove(*k)?;
        }
        for ((k, c), head) in keys.iter().zip(&change.added).zip(heads) {
            self.bm25.add(*k, head, &c.text)?;
        }
        if title_changed && !change.kept.is_empty() {
            let kept: Vec<u64> = change.kept.iter().map(|(k, _)| *k).collect();
            for c in self.store().chunks(&kept)? {
                self.bm25.remove(c.key)?;
                self.bm25.add(
                    c.key,
                    &index_title(doc.title.as_deref(), &c.place.headings),
                    &c.text,
                )?;
            }
        }
        let info = Arc::new(DocInfo::from_row(doc));
        let mut st = self.write();
        let table = Arc::make_mut(&mut st.table);
        for k in &change.removed {
            table.chunks.remove(k);
        }
        for (k, _) in &change.kept {
            table.chunks.insert(*k, info.clone());
        }
        for k in keys {
            table.chunks.insert(*k, info.clone());
        }
        table.docs.insert(doc.id.clone(), info);
        if st.dim.is_none()
            && let Some(c) = change.added.first()
        {
            let dim = c.embedding.len();
            st.dim = Some(dim);
            st.hnsw = Hnsw::new(dim, HnswParams::default());
            self.store().set_meta("dim", &dim.to_string())?;
        }
        for k in &change.removed {
            st.hnsw.remove(*k);
        }
        for (k, c) in keys.iter().zip(&change.added) {
            st.hnsw.insert(*k, &c.embedding)?;
        }
        self.unsaved
            .fetch_add(change.removed.len() + keys.len(), Ordering::Relaxed);
        Ok(())
    }

    /// An unchanged document ingested again: still current for the max age.
    fn touch(&self, old: &DocRow, now: i64) -> Result<(), CollectionError> {
        self.store().touch(&old.id, now)?;
        let keys: Vec<u64> = self
            .store()
            .chunk_hashes(&old.id)?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut row = old.clone();
        row.seen_at = now;
        let info = Arc::new(DocInfo::from_row(&row));
        let mut st = self.write();
        let table = Arc::make_mut(&mut st.table);
        for k in keys {
            table.chunks.insert(k, info.clone());
        }
        table.docs.insert(row.id, info);
        Ok(())
    }

    fn mark_updated(&self, now: i64) -> Result<(), CollectionError> {
        self.store().set_meta("last_update", &now.to_string())?;
        self.write().last_update = now;
        Ok(())
    }

    /// Snapshots the vector index once enough changed since the last snapshot (the store
    /// replays the rest on open); compacts it first when a fifth of it is tombstones.
    fn maybe_save(&self) {
        {
            let mut st = self.write();
            if st.hnsw.tombstones() * 5 > st.hnsw.len() + st.hnsw.tombstones()
                && st.hnsw.tombstones() > 100
            {
                st.hnsw.compact();
            }
        }
        let (unsaved, len) = (self.unsaved.load(Ordering::Relaxed), self.read().hnsw.len());
        if unsaved > 0
            && (len < 50_000 || unsaved * 20 >= len)
            && let Err(e) = self.save_vectors()
        {
            tracing::warn!(collection = %self.name, error = %e, "vector snapshot failed; the store still has every vector");
        }
    }

    /// Deletes a document; `false` when there was none. Its chunks are gone from results when
    /// this returns.
    pub async fn delete(&self, id: &str) -> Result<bool, CollectionError> {
        let _w = self.writer.lock().await;
        let Some((keys, generation)) = self.store().delete(id)? else {
            return Ok(false);
        };
        {
            let mut st = self.write();
            let table = Arc::make_mut(&mut st.table);
            for k in &keys {
                table.chunks.remove(k);
            }
            table.docs.remove(id);
            for k in &keys {
                st.hnsw.remove(*k);
            }
        }
        for k in &keys {
            self.bm25.remove(*k)?;
        }
        self.bm25.commit(generation)?;
        self.unsaved.fetch_add(keys.len(), Ordering::Relaxed);
        self.mark_updated(now_ms())?;
        self.maybe_save();
        Ok(true)
    }

    /// Switches the collection to another embeddings model: every chunk is re-embedded into a
    /// new vector index, then the store, the settings and the index switch together. Searches
    /// keep using the old model's vectors until then; the two never mix.
    pub async fn change_model(
        &self,
        model: &str,
        embedders: &crate::embed::EmbedderSource,
    ) -> Result<usize, CollectionError> {
        let _w = self.writer.lock().await;
        if self.settings().embedding_model == model {
            return Ok(0);
        }
        let embedder = self.embedder_for(embedders, model)?;
        let mut keys = Vec::new();
        let mut texts = Vec::new();
        self.store().each_chunk(|c| {
            keys.push(c.key);
            texts.push(c.text);
        })?;
        self.pending.fetch_add(texts.len(), Ordering::Relaxed);
        let vectors = embed::embed_all(&*embedder, texts, None, &self.pending)
            .await
            .map_err(CollectionError::Embedding)?;
        let dim = vectors.first().map(Vec::len);
        let mut hnsw = Hnsw::new(dim.unwrap_or(0), HnswParams::default());
        for (k, v) in keys.iter().zip(&vectors) {
            hnsw.insert(*k, v)?;
        }
        let pairs: Vec<(u64, Vec<f32>)> = keys.into_iter().zip(vectors).collect();
        let mut settings = self.settings();
        let old_snapshot = self.dir.join(snapshot_name(&settings.embedding_model));
        settings.embedding_model = model.to_owned();
        hnsw.save(&self.dir.join(snapshot_name(model)))?;
        let json = serde_json::to_string(&settings)
            .map_err(|e| CollectionError::Storage(e.to_string()))?;
        self.store()
            .replace_embeddings(&json, model, dim.unwrap_or(0), &pairs)?;
        {
            let mut st = self.write();
            st.hnsw = hnsw;
            st.dim = dim;
            st.settings = settings;
        }
        let _ = std::fs::remove_file(old_snapshot);
        self.mark_updated(now_ms())?;
        Ok(pairs.len())
    }
}
