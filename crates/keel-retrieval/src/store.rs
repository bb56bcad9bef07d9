//! A collection's source of truth: one SQLite file with its settings, documents and chunks
//! (text, offsets, heading path, content hash, embedding). The BM25 and vector indexes are
//! derived from it and reconciled with it when the collection opens, so a crash between a
//! committed write and an index snapshot loses nothing and needs no re-ingest.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("collection store: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  id TEXT PRIMARY KEY, title TEXT, source TEXT NOT NULL, format TEXT NOT NULL,
  version TEXT NOT NULL, metadata TEXT NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, seen_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
  key INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, ord INTEGER NOT NULL,
  start INTEGER NOT NULL, end INTEGER NOT NULL, headings TEXT NOT NULL, hash TEXT NOT NULL,
  text TEXT NOT NULL, ingested_at INTEGER NOT NULL, embedding BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
";

/// A document as stored (without its chunks).
#[derive(Debug, Clone, PartialEq)]
pub struct DocRow {
    pub id: String,
    pub title: Option<String>,
    /// Where it came from: a URL, a file path or `inline`.
    pub source: String,
    pub format: String,
    /// sha256 of the extracted text: the document's version.
    pub version: String,
    pub metadata: Map<String, Value>,
    pub created_at: i64,
    /// When this version was ingested.
    pub updated_at: i64,
    /// When it was last ingested, changed or not (what a collection's max age counts from).
    pub seen_at: i64,
}

/// A chunk's position and identity within its document.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub ord: usize,
    pub start: usize,
    pub end: usize,
    pub headings: Vec<String>,
}

/// A chunk as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRow {
    pub key: u64,
    pub doc_id: String,
    pub place: Placement,
    pub hash: String,
    pub text: String,
    pub ingested_at: i64,
}

/// A new chunk to insert: text, where it sits, its hash and its embedding.
pub struct NewChunk {
    pub place: Placement,
    pub hash: String,
    pub text: String,
    pub embedding: Vec<f32>,
}

/// One document's change, applied in one transaction.
pub struct DocChange {
    pub doc: DocRow,
    /// Chunks kept from the previous version (same text), at their new places.
    pub kept: Vec<(u64, Placement)>,
    /// Chunks of the previous version no longer present.
    pub removed: Vec<u64>,
    pub added: Vec<NewChunk>,
}

pub struct Store {
    conn: Connection,
}

fn vec_to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn blob_to_vec(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

impl Store {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Bumped by every committed change; the BM25 index records the generation it reflects.
    pub fn generation(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta("generation")?
            .and_then(|g| g.parse().ok())
            .unwrap_or(0))
    }

    fn bump(tx: &rusqlite::Transaction<'_>) -> Result<u64, StoreError> {
        let g: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let next = g.and_then(|g| g.parse::<u64>().ok()).unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('generation', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [next.to_string()],
        )?;
        Ok(next)
    }

    pub fn document(&self, id: &str) -> Result<Option<DocRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, title, source, format, version, metadata, created_at, updated_at, seen_at
             FROM documents WHERE id = ?1",
        )?;
        Ok(st.query_row([id], doc_row).optional()?)
    }

    pub fn documents(&self) -> Result<Vec<DocRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, title, source, format, version, metadata, created_at, updated_at, seen_at
             FROM documents ORDER BY id",
        )?;
        let rows = st.query_map([], doc_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// (key, hash) of a document's chunks, in order.
    pub fn chunk_hashes(&self, doc_id: &str) -> Result<Vec<(u64, String)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT key, hash FROM chunks WHERE doc_id = ?1 ORDER BY ord")?;
        let rows = st.query_map([doc_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies one document's change; returns the keys of the added chunks, in order, and the
    /// new generation.
    pub fn apply(&mut self, change: &DocChange) -> Result<(Vec<u64>, u64), StoreError> {
        let tx = self.conn.transaction()?;
        let d = &change.doc;
        tx.execute(
            "INSERT INTO documents(id, title, source, format, version, metadata, created_at, updated_at, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(id) DO UPDATE SET title = excluded.title, source = excluded.source,
               format = excluded.format, version = excluded.version,
               metadata = excluded.metadata, updated_at = excluded.updated_at,
               seen_at = excluded.seen_at",
            params![
                d.id,
                d.title,
                d.source,
                d.format,
                d.version,
                serde_json::to_string(&d.metadata)?,
                d.created_at,
                d.updated_at,
                d.seen_at
            ],
        )?;
        for key in &change.removed {
            tx.execute("DELETE FROM chunks WHERE key = ?1", [*key as i64])?;
        }
        for (key, p) in &change.kept {
            tx.execute(
                "UPDATE chunks SET ord = ?2, start = ?3, end = ?4, headings = ?5 WHERE key = ?1",
                params![
                    *key as i64,
                    p.ord as i64,
                    p.start as i64,
                    p.end as i64,
                    serde_json::to_string(&p.headings)?
                ],
            )?;
        }
        let mut keys = Vec::with_capacity(change.added.len());
        for c in &change.added {
            tx.execute(
                "INSERT INTO chunks(doc_id, ord, start, end, headings, hash, text, ingested_at, embedding)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    d.id,
                    c.place.ord as i64,
                    c.place.start as i64,
                    c.place.end as i64,
                    serde_json::to_string(&c.place.headings)?,
                    c.hash,
                    c.text,
                    d.updated_at,
                    vec_to_blob(&c.embedding)
                ],
            )?;
            keys.push(tx.last_insert_rowid() as u64);
        }
        let generation = Self::bump(&tx)?;
        tx.commit()?;
        Ok((keys, generation))
    }

    /// Records that an unchanged document was ingested again at `now`.
    pub fn touch(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE documents SET seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        Ok(())
    }

    /// Deletes a document and its chunks; returns the removed chunk keys (`None`: unknown).
    pub fn delete(&mut self, id: &str) -> Result<Option<(Vec<u64>, u64)>, StoreError> {
        let keys: Vec<u64> = self.chunk_hashes(id)?.into_iter().map(|(k, _)| k).collect();
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
        if n == 0 {
            return Ok(None);
        }
        tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [id])?;
        let generation = Self::bump(&tx)?;
        tx.commit()?;
        Ok(Some((keys, generation)))
    }

    /// The chunks with these keys (missing keys are skipped).
    pub fn chunks(&self, keys: &[u64]) -> Result<Vec<ChunkRow>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT key, doc_id, ord, start, end, headings, hash, text, ingested_at
             FROM chunks WHERE key = ?1",
        )?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(r) = st.query_row([*k as i64], chunk_row).optional()? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Visits every chunk (without embeddings), in key order.
    pub fn each_chunk(&self, mut f: impl FnMut(ChunkRow)) -> Result<(), StoreError> {
        let mut st = self.conn.prepare(
            "SELECT key, doc_id, ord, start, end, headings, hash, text, ingested_at
             FROM chunks ORDER BY key",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            f(chunk_row(r)?);
        }
        Ok(())
    }

    /// Visits the embedding of every chunk whose key passes `want`.
    pub fn each_embedding(
        &self,
        want: impl Fn(u64) -> bool,
        mut f: impl FnMut(u64, Vec<f32>),
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT key, embedding FROM chunks ORDER BY key")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let key = r.get::<_, i64>(0)? as u64;
            if want(key) {
                let blob = r
                    .get_ref(1)?
                    .as_blob()
                    .map_err(|e| StoreError(e.to_string()))?;
                f(key, blob_to_vec(blob));
            }
        }
        Ok(())
    }

    /// Replaces every chunk's embedding and the recorded model in one transaction (a model
    /// change: vectors of two models never coexist).
    pub fn replace_embeddings(
        &mut self,
        settings_json: &str,
        model: &str,
        dim: usize,
        vectors: &[(u64, Vec<f32>)],
    ) -> Result<u64, StoreError> {
        let tx = self.conn.transaction()?;
        for (k, v) in vectors {
            tx.execute(
                "UPDATE chunks SET embedding = ?2 WHERE key = ?1",
                params![*k as i64, vec_to_blob(v)],
            )?;
        }
        for (key, value) in [
            ("settings", settings_json.to_owned()),
            ("embedding_model", model.to_owned()),
            ("dim", dim.to_string()),
        ] {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
        }
        let generation = Self::bump(&tx)?;
        tx.commit()?;
        Ok(generation)
    }

    /// Bytes of the database file and its WAL.
    pub fn disk_bytes(path: &Path) -> u64 {
        ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// A JSON column, its parse error reported as a conversion failure of that column.
fn json_col<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DocRow> {
    Ok(DocRow {
        id: r.get(0)?,
        title: r.get(1)?,
        source: r.get(2)?,
        format: r.get(3)?,
        version: r.get(4)?,
        metadata: json_col(r, 5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        seen_at: r.get(8)?,
    })
}

fn chunk_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRow> {
    Ok(ChunkRow {
        key: r.get::<_, i64>(0)? as u64,
        doc_id: r.get(1)?,
        place: Placement {
            ord: r.get::<_, i64>(2)? as usize,
            start: r.get::<_, i64>(3)? as usize,
            end: r.get::<_, i64>(4)? as usize,
            headings: json_col(r, 5)?,
        },
        hash: r.get(6)?,
        text: r.get(7)?,
        ingested_at: r.get(8)?,
    })
}
