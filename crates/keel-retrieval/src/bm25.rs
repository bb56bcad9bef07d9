//! The keyword index: tantivy BM25 over each chunk's text and its document title and heading
//! path (English: lower-cased, stop words removed, stemmed). A chunk is found by its key (a u64
//! fast field), so a metadata filter runs inside tantivy's collection, per matching chunk.
//! Each commit records the store generation it reflects (the commit payload); a mismatch on
//! open means the index missed writes, and it is rebuilt from the store.

use std::path::Path;
use std::sync::{Arc, Mutex};
use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

const ANALYZER: &str = "keel_en";
/// Writer heap: tantivy flushes a segment when it fills.
const WRITER_HEAP: usize = 64 << 20;

/// A shareable chunk predicate (a metadata filter over the collection's chunk table).
pub type KeyFilter = Arc<dyn Fn(u64) -> bool + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("keyword index: {0}")]
pub struct Bm25Error(String);

impl From<tantivy::TantivyError> for Bm25Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Self(e.to_string())
    }
}

pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    key: Field,
    text: Field,
    title: Field,
}

fn schema() -> (Schema, Field, Field, Field) {
    let mut b = Schema::builder();
    let key = b.add_u64_field("key", INDEXED | FAST);
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(ANALYZER)
        .set_index_option(IndexRecordOption::WithFreqs);
    let opts = TextOptions::default().set_indexing_options(indexing);
    let text = b.add_text_field("text", opts.clone());
    let title = b.add_text_field("title", opts);
    (b.build(), key, text, title)
}

fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder
            .filter(stop)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

impl Bm25 {
    /// Opens the index in `dir` (created if missing); also returns the store generation its
    /// last commit recorded (`None`: new or never committed).
    pub fn open(dir: &Path) -> Result<(Self, Option<u64>), Bm25Error> {
        std::fs::create_dir_all(dir).map_err(|e| Bm25Error(e.to_string()))?;
        let (schema, key, text, title) = schema();
        let directory =
            tantivy::directory::MmapDirectory::open(dir).map_err(|e| Bm25Error(e.to_string()))?;
        let index = Index::open_or_create(directory, schema)?;
        index.tokenizers().register(ANALYZER, analyzer());
        let generation = index
            .load_metas()?
            .payload
            .and_then(|p| p.parse::<u64>().ok());
        let writer = index.writer(WRITER_HEAP)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            Self {
                index,
                reader,
                writer: Mutex::new(writer),
                key,
                text,
                title,
            },
            generation,
        ))
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>>, Bm25Error> {
        self.writer
            .lock()
            .map_err(|_| Bm25Error("writer lock poisoned".into()))
    }

    /// Adds a chunk (visible after the next [`Bm25::commit`]). `title` is its document title
    /// and heading path.
    pub fn add(&self, key: u64, title: &str, text: &str) -> Result<(), Bm25Error> {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.key, key);
        doc.add_text(self.text, text);
        doc.add_text(self.title, title);
        self.writer()?.add_document(doc)?;
        Ok(())
    }

    pub fn remove(&self, key: u64) -> Result<(), Bm25Error> {
        self.writer()?
            .delete_term(Term::from_field_u64(self.key, key));
        Ok(())
    }

    /// Drops every chunk (before a rebuild from the store).
    pub fn clear(&self) -> Result<(), Bm25Error> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Makes the changes durable and visible, recording the store `generation` they reflect.
    pub fn commit(&self, generation: u64) -> Result<(), Bm25Error> {
        {
            let mut w = self.writer()?;
            let mut prepared = w.prepare_commit()?;
            prepared.set_payload(&generation.to_string());
            prepared.commit()?;
        }
        self.reader.reload()?;
        Ok(())
    }

    /// Chunks indexed and visible.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `k` best chunks for `query` among those `filter` passes, best first, with their BM25
    /// scores. Query syntax is not interpreted: the text is searched as words.
    pub fn search(
        &self,
        query: &str,
        k: usize,
        filter: Option<KeyFilter>,
    ) -> Result<Vec<(u64, f32)>, Bm25Error> {
        let words = plain_words(query);
        if words.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![self.text, self.title]);
        parser.set_field_boost(self.title, 0.5);
        let (q, _) = parser.parse_query_lenient(&words);
        let top = TopDocs::with_limit(k).order_by_score();
        let hits = match filter {
            Some(f) => searcher.search(
                &q,
                &FilterCollector::new("key".to_owned(), move |key: u64| f(key), top),
            )?,
            None => searcher.search(&q, &top)?,
        };
        let mut out = Vec::with_capacity(hits.len());
        for (score, addr) in hits {
            let seg = searcher.segment_reader(addr.segment_ord);
            let col = seg.fast_fields().u64("key")?;
            if let Some(key) = col.first(addr.doc_id) {
                out.push((key, score));
            }
        }
        Ok(out)
    }

    /// Bytes of the index files.
    pub fn disk_bytes(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// The query's words only: query-language characters (quotes, colons, parentheses, +/-,
/// wildcards) become spaces, so user text can never be a malformed or field-scoped query.
fn plain_words(q: &str) -> String {
    q.chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> (tempfile::TempDir, Bm25) {
        let dir = tempfile::tempdir().unwrap();
        let (b, g) = Bm25::open(dir.path()).unwrap();
        assert_eq!(g, None);
        (dir, b)
    }

    #[test]
    fn finds_by_stemmed_words_and_ranks_by_bm25() {
        let (_d, b) = index();
        b.add(1, "Cats", "Cats are small carnivorous mammals that purr.")
            .unwrap();
        b.add(2, "Dogs", "Dogs bark loudly and chase cats sometimes.")
            .unwrap();
        b.add(3, "Birds", "Birds fly south in the winter.").unwrap();
        b.commit(1).unwrap();
        let hits = b.search("purring cat", 10, None).unwrap();
        assert_eq!(hits[0].0, 1, "{hits:?}");
        assert!(hits.iter().all(|(k, _)| *k != 3));
        assert!(
            b.search("\"unbalanced (query: +-", 5, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn the_filter_runs_inside_the_search_not_after_top_k() {
        let (_d, b) = index();
        // 50 chunks say "apple" many times; one filtered-in chunk says it once.
        for k in 0..50 {
            b.add(k, "", "apple apple apple apple").unwrap();
        }
        b.add(100, "", "an apple and many other words here")
            .unwrap();
        b.commit(1).unwrap();
        let hits = b.search("apple", 3, Some(Arc::new(|k| k == 100))).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![100]);
    }

    #[test]
    fn removal_and_generation_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (b, _) = Bm25::open(dir.path()).unwrap();
            b.add(7, "", "persistent words").unwrap();
            b.add(8, "", "persistent other words").unwrap();
            b.commit(3).unwrap();
            b.remove(8).unwrap();
            b.commit(4).unwrap();
        }
        let (b, g) = Bm25::open(dir.path()).unwrap();
        assert_eq!(g, Some(4));
        let hits = b.search("persistent", 10, None).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![7]);
        assert_eq!(b.len(), 1);
    }
}
