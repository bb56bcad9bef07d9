//! Save and load tests.

use super::testdata::Mixture;
use super::tests::shared;
use super::{Hnsw, HnswError, HnswParams};

/// An index with tombstones and a replaced key (so every section is non-trivial).
fn sample_index() -> (Hnsw, Vec<Vec<f32>>) {
    let mix = Mixture::new(48, 10, 1.0, 77);
    let mut index = Hnsw::with_seed(
        48,
        HnswParams {
            m: 8,
            ef_construction: 64,
            ef_search: 32,
        },
        9,
    );
    for (i, v) in mix.sample(1_500, 78).iter().enumerate() {
        index.insert(i as u64 * 3 + 1, v).unwrap();
    }
    for k in (0..100u64).map(|i| i * 3 + 1) {
        index.remove(k);
    }
    let replacement = mix.sample(1, 79).remove(0);
    index.insert(1_000, &replacement).unwrap();
    (index, mix.sample(40, 80))
}

fn assert_corrupt(bytes: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.hnsw");
    std::fs::write(&path, bytes).unwrap();
    match Hnsw::load(&path) {
        Err(HnswError::Corrupt(_)) => {}
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(_) => panic!("{what}: a damaged file loaded"),
    }
}

#[test]
fn hnsw_save_load_round_trip_gives_identical_results() {
    let (index, queries) = sample_index();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    index.save(&path).unwrap();
    let loaded = Hnsw::load(&path).unwrap();
    assert_eq!(loaded.dim(), 48);
    assert_eq!(loaded.params(), index.params());
    assert_eq!(loaded.len(), index.len());
    assert_eq!(loaded.tombstones(), index.tombstones());
    assert_eq!(
        loaded.keys().collect::<Vec<_>>(),
        index.keys().collect::<Vec<_>>()
    );
    assert_eq!(loaded.get(1_000), index.get(1_000));
    assert!(!loaded.contains(1));
    let odd = |k: u64| k % 2 == 1;
    for q in &queries {
        assert_eq!(
            loaded.search(q, 10, None, None),
            index.search(q, 10, None, None)
        );
        assert_eq!(
            loaded.search(q, 5, Some(100), Some(&odd)),
            index.search(q, 5, Some(100), Some(&odd))
        );
    }
    // The generator state travels too: the same next insert builds the same graph.
    let (mut a, mut b) = (index.clone(), loaded);
    a.insert(5, &queries[0]).unwrap();
    b.insert(5, &queries[0]).unwrap();
    assert_eq!(a.layer0, b.layer0);
    assert_eq!(a.levels, b.levels);
}

#[test]
fn hnsw_save_is_atomic_and_overwrites() {
    let (index, queries) = sample_index();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    Hnsw::new(48, HnswParams::default()).save(&path).unwrap();
    assert!(Hnsw::load(&path).unwrap().is_empty());
    index.save(&path).unwrap();
    let loaded = Hnsw::load(&path).unwrap();
    assert_eq!(
        loaded.search(&queries[1], 10, None, None),
        index.search(&queries[1], 10, None, None)
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("index.hnsw")],
        "no temp file left"
    );
    // A save into a missing folder fails cleanly.
    assert!(matches!(
        index.save(&dir.path().join("no/such/dir/x")),
        Err(HnswError::Io(_))
    ));
    assert!(matches!(
        Hnsw::load(&dir.path().join("missing")),
        Err(HnswError::Io(_))
    ));
}

#[test]
fn hnsw_empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.hnsw");
    Hnsw::new(16, HnswParams::default()).save(&path).unwrap();
    let loaded = Hnsw::load(&path).unwrap();
    assert!(loaded.is_empty() && loaded.dim() == 16);
    assert!(loaded.search(&[0.25; 16], 3, None, None).is_empty());
}

#[test]
fn hnsw_truncated_or_corrupt_files_are_errors() {
    let (index, _) = sample_index();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.hnsw");
    index.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let len = good.len();
    for cut in [
        0,
        4,
        8,
        12,
        40,
        63,
        64,
        65,
        1_000,
        len / 2,
        len - 9,
        len - 8,
        len - 1,
    ] {
        assert_corrupt(&good[..cut], &format!("truncated to {cut}"));
    }
    for pos in [
        0,
        9,
        13,
        30,
        50,
        70,
        5_000,
        len / 3,
        len / 2,
        len - 20,
        len - 3,
    ] {
        for bit in [0, 7] {
            let mut bad = good.clone();
            bad[pos] ^= 1 << bit;
            assert_corrupt(&bad, &format!("bit {bit} of byte {pos} flipped"));
        }
    }
    let mut longer = good.clone();
    longer.push(0);
    assert_corrupt(&longer, "trailing byte");
    let mut version = good.clone();
    version[8] = 2;
    assert_corrupt(&version, "unknown version");
    // A huge node count in the header is refused before anything is allocated.
    let mut huge = good.clone();
    huge[32..40].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert_corrupt(&huge, "huge node count");
    assert_corrupt(b"not an index at all, just text", "text");
}

#[test]
fn hnsw_large_shared_index_round_trips() {
    let (index, queries) = shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.hnsw");
    index.save(&path).unwrap();
    let loaded = Hnsw::load(&path).unwrap();
    for q in queries.iter().take(50) {
        assert_eq!(
            loaded.search(q, 10, None, None),
            index.search(q, 10, None, None)
        );
    }
}
