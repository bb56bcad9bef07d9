//! Saving and loading. The file is written to a temporary file in the same folder, fsynced and
//! renamed over the target, so a reader sees the old index or the new one, never half of one.
//!
//! Format (little-endian), version 1:
//! ```text
//! "KEELHNSW" u32 version  u32 dim  u32 m  u32 ef_construction  u32 ef_search  u32 max_level
//! u64 nodes  u64 entry (u64::MAX = none)  u64 seed  u64 rng_state
//! keys: nodes × u64 | levels: nodes × u8 | deleted: nodes × u8 (0/1)
//! vectors: nodes × dim × f32 | layer 0: nodes × (2m+1) × u32 ([count, ids…])
//! upper layers: for each node, level × (m+1) × u32
//! u64 checksum of every byte before it
//! ```
//! Loading checks the sizes against the file length before allocating, the checksum, and then
//! every structural invariant the search relies on (ids in range, counts within capacity,
//! neighbours present on the layer they are linked on, unique live keys), so a truncated or
//! corrupt file is an `Err`, never a panic or a wrong index.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::checksum::Checksum;
use super::rng::SplitMix64;
use super::{Hnsw, HnswError, HnswParams, MAX_LEVEL};

const MAGIC: &[u8; 8] = b"KEELHNSW";
const VERSION: u32 = 1;
const NO_ENTRY: u64 = u64::MAX;
/// Bytes converted per read or write call for the bulk sections.
const CHUNK: usize = 1 << 16;

fn corrupt(msg: impl Into<String>) -> HnswError {
    HnswError::Corrupt(msg.into())
}

impl Hnsw {
    /// Writes the index to `path` atomically (temporary file in the same folder, fsync,
    /// rename, fsync of the folder).
    pub fn save(&self, path: &Path) -> Result<(), HnswError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = path.file_name().ok_or_else(|| {
            HnswError::Io(std::io::Error::new(
                ErrorKind::InvalidInput,
                "index path has no file name",
            ))
        })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = File::create(&tmp)
            .map_err(HnswError::from)
            .and_then(|f| self.write_to(f))
            .and_then(|()| std::fs::rename(&tmp, path).map_err(HnswError::from));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // Make the rename durable; some filesystems refuse to fsync a folder, which is no error
        // of the save itself.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    fn write_to(&self, file: File) -> Result<(), HnswError> {
        let mut out = Out {
            w: BufWriter::with_capacity(CHUNK, file),
            sum: Checksum::new(),
            buf: Vec::with_capacity(CHUNK),
        };
        let u32_of = |v: usize| u32::try_from(v).map_err(|_| corrupt(format!("{v} exceeds u32")));
        out.put(MAGIC)?;
        out.put(&VERSION.to_le_bytes())?;
        for v in [
            self.dim,
            self.params.m,
            self.params.ef_construction,
            self.params.ef_search,
            self.max_level,
        ] {
            out.put(&u32_of(v)?.to_le_bytes())?;
        }
        let entry = self.entry.map_or(NO_ENTRY, u64::from);
        for v in [self.keys.len() as u64, entry, self.seed, self.rng.state()] {
            out.put(&v.to_le_bytes())?;
        }
        out.bulk(&self.keys, |k| k.to_le_bytes())?;
        out.put(&self.levels)?;
        out.bulk(&self.deleted, |d| [u8::from(*d)])?;
        out.bulk(&self.vectors, |v| v.to_le_bytes())?;
        out.bulk(&self.layer0, |v| v.to_le_bytes())?;
        for u in &self.upper {
            out.bulk(u, |v| v.to_le_bytes())?;
        }
        let digest = out.sum.finish();
        out.w.write_all(&digest.to_le_bytes())?;
        let file = out
            .w
            .into_inner()
            .map_err(|e| HnswError::Io(e.into_error()))?;
        file.sync_all()?;
        Ok(())
    }

    /// Reads an index written by [`Hnsw::save`]. Any truncation, corruption or unknown version
    /// is an `Err`.
    pub fn load(path: &Path) -> Result<Self, HnswError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut inp = In {
            r: BufReader::with_capacity(CHUNK, file),
            sum: Checksum::new(),
            remaining: len,
            buf: vec![0; CHUNK],
        };
        let mut magic = [0u8; 8];
        inp.take(&mut magic)?;
        if &magic != MAGIC {
            return Err(corrupt("not an HNSW index (bad magic)"));
        }
        let version = inp.u32()?;
        if version != VERSION {
            return Err(corrupt(format!("unsupported version {version}")));
        }
        let dim = inp.u32()? as usize;
        let m = inp.u32()? as usize;
        let ef_construction = inp.u32()? as usize;
        let ef_search = inp.u32()? as usize;
        let max_level = inp.u32()? as usize;
        let nodes = inp.u64()?;
        let entry = inp.u64()?;
        let seed = inp.u64()?;
        let rng_state = inp.u64()?;
        let params = HnswParams {
            m,
            ef_construction,
            ef_search,
        };
        if params.sanitised() != params {
            return Err(corrupt(format!("invalid parameters {params:?}")));
        }
        if max_level > MAX_LEVEL {
            return Err(corrupt(format!("max level {max_level} > {MAX_LEVEL}")));
        }
        // Fixed-size sections must fit in what is left before anything is allocated.
        let per_node = 8 + 1 + 1 + 4 * dim as u64 + 4 * (2 * m as u64 + 1);
        let fixed = nodes
            .checked_mul(per_node)
            .and_then(|b| b.checked_add(8))
            .ok_or_else(|| corrupt("sizes overflow"))?;
        if fixed > inp.remaining || nodes >= u64::from(u32::MAX) {
            return Err(corrupt(format!(
                "{nodes} nodes do not fit in a {len}-byte file"
            )));
        }
        let n = nodes as usize;
        let keys = inp.bulk(n, u64::from_le_bytes)?;
        let levels = inp.bulk(n, |b: [u8; 1]| b[0])?;
        let deleted_raw = inp.bulk(n, |b: [u8; 1]| b[0])?;
        let vectors = inp.bulk(n * dim, f32::from_le_bytes)?;
        let layer0 = inp.bulk(n * (2 * m + 1), u32::from_le_bytes)?;
        let mut upper = Vec::with_capacity(n);
        for &l in &levels {
            if l as usize > max_level {
                return Err(corrupt(format!("node level {l} > max level {max_level}")));
            }
            let slots = l as usize * (m + 1);
            upper.push(inp.bulk(slots, u32::from_le_bytes)?.into_boxed_slice());
        }
        let digest = inp.sum.finish();
        let mut stored = [0u8; 8];
        inp.raw(&mut stored)?;
        if u64::from_le_bytes(stored) != digest {
            return Err(corrupt("checksum mismatch"));
        }
        if inp.remaining != 0 {
            return Err(corrupt(format!("{} trailing bytes", inp.remaining)));
        }

        let mut deleted = Vec::with_capacity(n);
        let mut key_to_node = HashMap::with_capacity(n);
        for (i, (&d, &key)) in deleted_raw.iter().zip(&keys).enumerate() {
            match d {
                0 => {
                    if key_to_node.insert(key, i as u32).is_some() {
                        return Err(corrupt(format!("key {key} is live twice")));
                    }
                    deleted.push(false);
                }
                1 => deleted.push(true),
                _ => return Err(corrupt(format!("tombstone flag {d}"))),
            }
        }
        let entry = match (entry, n) {
            (NO_ENTRY, 0) if max_level == 0 => None,
            (e, _) if e < nodes && levels[e as usize] as usize == max_level => Some(e as u32),
            _ => return Err(corrupt(format!("entry point {entry} invalid"))),
        };
        let index = Hnsw {
            dim,
            params,
            seed,
            rng: SplitMix64::new(rng_state),
            vectors,
            keys,
            levels,
            deleted,
            layer0,
            upper,
            key_to_node,
            entry,
            max_level,
        };
        index.check_links()?;
        Ok(index)
    }

    /// Every neighbour list: count within capacity, ids in range, and each neighbour present
    /// on the layer it is linked on.
    fn check_links(&self) -> Result<(), HnswError> {
        let stride0 = 2 * self.params.m + 1;
        for node in 0..self.keys.len() {
            for level in 0..=self.levels[node] as usize {
                let block = if level == 0 {
                    &self.layer0[node * stride0..(node + 1) * stride0]
                } else {
                    let s = (level - 1) * (self.params.m + 1);
                    &self.upper[node][s..s + self.params.m + 1]
                };
                let count = block[0] as usize;
                if count > self.capacity(level) {
                    return Err(corrupt(format!(
                        "node {node}: {count} links on layer {level}"
                    )));
                }
                for &nb in &block[1..1 + count] {
                    match self.levels.get(nb as usize) {
                        Some(&l) if l as usize >= level => {}
                        _ => {
                            return Err(corrupt(format!(
                                "node {node}: bad neighbour {nb} on layer {level}"
                            )));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Writer side: every byte goes through the checksum.
struct Out {
    w: BufWriter<File>,
    sum: Checksum,
    buf: Vec<u8>,
}

impl Out {
    fn put(&mut self, bytes: &[u8]) -> Result<(), HnswError> {
        self.sum.update(bytes);
        self.w.write_all(bytes)?;
        Ok(())
    }

    /// Writes a slice of fixed-size values, converted in chunks.
    fn bulk<T, const N: usize>(
        &mut self,
        items: &[T],
        enc: impl Fn(&T) -> [u8; N],
    ) -> Result<(), HnswError> {
        for chunk in items.chunks((CHUNK / N).max(1)) {
            self.buf.clear();
            for it in chunk {
                self.buf.extend_from_slice(&enc(it));
            }
            self.sum.update(&self.buf);
            self.w.write_all(&self.buf)?;
        }
        Ok(())
    }
}

/// Reader side: bounded by the bytes left in the file; every byte goes through the checksum.
struct In {
    r: BufReader<File>,
    sum: Checksum,
    remaining: u64,
    buf: Vec<u8>,
}

impl In {
    /// Reads exactly `out.len()` bytes without hashing them; a short file is `Corrupt`.
    fn raw(&mut self, out: &mut [u8]) -> Result<(), HnswError> {
        if out.len() as u64 > self.remaining {
            return Err(corrupt("truncated"));
        }
        self.r.read_exact(out).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => corrupt("truncated"),
            _ => HnswError::Io(e),
        })?;
        self.remaining -= out.len() as u64;
        Ok(())
    }

    fn take(&mut self, out: &mut [u8]) -> Result<(), HnswError> {
        self.raw(out)?;
        self.sum.update(out);
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, HnswError> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, HnswError> {
        let mut b = [0u8; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Reads `count` fixed-size values; checks the file holds them before allocating.
    fn bulk<T, const N: usize>(
        &mut self,
        count: usize,
        dec: impl Fn([u8; N]) -> T,
    ) -> Result<Vec<T>, HnswError> {
        let bytes = (count as u64).checked_mul(N as u64);
        if bytes.is_none_or(|b| b > self.remaining) {
            return Err(corrupt("truncated"));
        }
        let mut out = Vec::with_capacity(count);
        let per_chunk = (CHUNK / N).max(1);
        let mut left = count;
        let mut buf = std::mem::take(&mut self.buf);
        while left > 0 {
            let take = left.min(per_chunk);
            let region = &mut buf[..take * N];
            self.take(region)?;
            for c in region.chunks_exact(N) {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                out.push(dec(a));
            }
            left -= take;
        }
        self.buf = buf;
        Ok(out)
    }
}
