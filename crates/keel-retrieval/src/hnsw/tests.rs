//! Graph and search tests. Every test name starts with `hnsw_` so `cargo test hnsw` runs them.

use std::sync::OnceLock;

use super::rng::mix;
use super::search::{Cand, Visited, prefer_exact};
use super::testdata::{Mixture, recall};
use super::{Hnsw, HnswError, HnswParams};

pub(crate) const DIM: usize = 384;
const N: usize = 10_000;
const SMALL: usize = 5_000;

/// 10,000 vectors from 50 clusters in 384-d (keys 0..N), built once for the tests that share it.
pub(crate) fn shared() -> &'static (Hnsw, Vec<Vec<f32>>) {
    static INDEX: OnceLock<(Hnsw, Vec<Vec<f32>>)> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mix = Mixture::new(DIM, 50, 1.0, 1);
        let mut index = Hnsw::new(DIM, HnswParams::default());
        for (i, v) in mix.sample(N, 2).iter().enumerate() {
            index.insert(i as u64, v).unwrap();
        }
        (index, mix.sample(200, 3))
    })
}

/// A filter admitting about `percent`% of keys, unrelated to clusters or insertion order.
fn pct(percent: u64) -> impl Fn(u64) -> bool {
    move |k| mix(k ^ 0xf11e) % 100 < percent
}

/// Results of one search per query.
type Hits = Vec<Vec<(u64, f32)>>;

fn run(
    index: &Hnsw,
    queries: &[Vec<f32>],
    ef: Option<usize>,
    filter: Option<&dyn Fn(u64) -> bool>,
) -> (Hits, Hits) {
    let got = queries
        .iter()
        .map(|q| index.search(q, 10, ef, filter))
        .collect();
    let truth = queries.iter().map(|q| index.exact(q, 10, filter)).collect();
    (got, truth)
}

#[test]
fn hnsw_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Hnsw>();
}

#[test]
fn hnsw_recall_at_10_on_clustered_vectors() {
    let (index, queries) = shared();
    assert_eq!(index.len(), N);
    let (got, truth) = run(index, queries, None, None);
    let r = recall(&got, &truth);
    assert!(r >= 0.98, "recall@10 at ef=64: {r}");
    for (g, q) in got.iter().zip(queries) {
        assert_eq!(g.len(), 10);
        assert!(g.windows(2).all(|w| w[0].1 >= w[1].1), "best first");
        // Reported similarities are the real ones.
        for (key, sim) in g {
            let real: f32 = index
                .get(*key)
                .unwrap()
                .iter()
                .zip(q)
                .map(|(a, b)| a * b)
                .sum();
            assert!((real - sim).abs() < 1e-4);
        }
    }
}

#[test]
fn hnsw_filtered_search_returns_k_matching_with_recall() {
    let (index, queries) = shared();
    for percent in [1, 10, 50] {
        let f = pct(percent);
        let (got, truth) = run(index, queries, None, Some(&f));
        for g in &got {
            assert_eq!(g.len(), 10, "{percent}%: k results");
            assert!(
                g.iter().all(|(k, _)| f(*k)),
                "{percent}%: only matching keys"
            );
        }
        let r = recall(&got, &truth);
        assert!(r >= 0.95, "{percent}%: recall vs exact-with-filter {r}");
    }
}

#[test]
fn hnsw_filter_is_applied_inside_the_graph_walk() {
    // The beam alone (no exact fallback, whatever the cost model would pick) fills up with
    // admitted nodes at 10% and 2%, and its top 10 match the exact filtered answer.
    let (index, queries) = shared();
    for percent in [10, 2] {
        let f = pct(percent);
        let admit = |n: u32| f(index.keys[n as usize]);
        let (mut got, mut truth) = (Vec::new(), Vec::new());
        for q in queries.iter().take(50) {
            let entry = index.entry.unwrap();
            let mut ep = Cand {
                sim: 0.0,
                node: entry,
            };
            ep.sim = super::distance::dot(q, index.vector(entry));
            for lc in (1..=index.max_level).rev() {
                ep = index.greedy_closest(q, ep, lc);
            }
            let mut visited = Visited::new(index.node_count());
            let found = index.search_layer(q, &[ep], 64, 0, &mut visited, admit);
            assert_eq!(found.len(), 64, "{percent}%");
            assert!(found.iter().all(|c| admit(c.node)));
            got.push(
                found
                    .iter()
                    .take(10)
                    .map(|c| (index.keys[c.node as usize], c.sim))
                    .collect(),
            );
            truth.push(index.exact(q, 10, Some(&f)));
        }
        let r = recall(&got, &truth);
        assert!(
            r >= 0.95,
            "{percent}%: beam recall vs exact-with-filter {r}"
        );
    }
}

#[test]
fn hnsw_filter_edge_cases() {
    let (index, queries) = shared();
    let q = &queries[0];
    assert!(index.search(q, 10, None, Some(&|_: u64| false)).is_empty());
    let three = |k: u64| k == 5 || k == 500 || k == 9_999;
    let got = index.search(q, 10, None, Some(&three));
    let mut keys: Vec<u64> = got.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec![5, 500, 9_999]);
    // k larger than ef widens the beam to k.
    let wide = index.search(q, 100, Some(10), None);
    assert_eq!(wide.len(), 100);
    assert!(recall(&[wide], &[index.exact(q, 100, None)]) >= 0.95);
}

#[test]
fn hnsw_empty_index_and_zero_k_find_nothing() {
    let index = Hnsw::new(4, HnswParams::default());
    assert!(index.is_empty());
    assert!(
        index
            .search(&[1.0, 0.0, 0.0, 0.0], 10, None, None)
            .is_empty()
    );
    assert!(index.exact(&[1.0, 0.0, 0.0, 0.0], 10, None).is_empty());
    let (index, queries) = shared();
    assert!(index.search(&queries[0], 0, None, None).is_empty());
}

#[test]
fn hnsw_dimension_mismatch_and_non_finite_vectors_are_errors() {
    let mut index = Hnsw::new(4, HnswParams::default());
    match index.insert(1, &[1.0, 0.0, 0.0]) {
        Err(HnswError::Dimension {
            expected: 4,
            got: 3,
        }) => {}
        other => panic!("expected Dimension error, got {other:?}"),
    }
    assert!(index.is_empty());
    index.insert(1, &[1.0, 0.0, 0.0, 0.0]).unwrap();
    assert!(
        index.search(&[1.0, 0.0], 1, None, None).is_empty(),
        "wrong-dim query"
    );
    for bad in [f32::NAN, f32::INFINITY] {
        assert!(matches!(
            index.insert(2, &[bad, 0.0, 0.0, 0.0]),
            Err(HnswError::Corrupt(_))
        ));
        assert!(
            index
                .search(&[bad, 0.0, 0.0, 0.0], 1, None, None)
                .is_empty()
        );
        assert!(index.exact(&[bad, 0.0, 0.0, 0.0], 1, None).is_empty());
    }
    assert_eq!(index.len(), 1);
    assert_eq!(
        index.search(&[1.0, 0.0, 0.0, 0.0], 1, None, None),
        vec![(1, 1.0)]
    );
}

/// A fresh 5,000-vector index (keys 0..5000) and 50 queries.
fn small(seed: u64) -> (Hnsw, Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mix = Mixture::new(64, 20, 1.0, seed);
    let data = mix.sample(SMALL, seed + 1);
    let mut index = Hnsw::new(64, HnswParams::default());
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u64, v).unwrap();
    }
    (index, data, mix.sample(50, seed + 2))
}

#[test]
fn hnsw_removed_keys_are_never_returned() {
    let (mut index, data, queries) = small(10);
    // Remove a third, including the entry point (it keeps routing).
    let entry_key = index.keys[index.entry.unwrap() as usize];
    let gone: Vec<u64> = (0..SMALL as u64)
        .filter(|k| k % 3 == 0 || *k == entry_key)
        .collect();
    for &k in &gone {
        assert!(index.remove(k));
        assert!(!index.remove(k), "second remove is false");
        assert!(!index.contains(k) && index.get(k).is_none());
    }
    assert_eq!(index.len(), SMALL - gone.len());
    assert_eq!(index.tombstones(), gone.len());
    assert_eq!(index.keys().count(), index.len());
    let live = index.len() as f64 / index.node_count() as f64;
    assert!(
        !prefer_exact(index.node_count(), live, 64, false),
        "the beam answers"
    );
    let probes: Vec<&Vec<f32>> = gone.iter().take(50).map(|&k| &data[k as usize]).collect();
    for q in queries.iter().chain(probes) {
        let got = index.search(q, 10, None, None);
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|(k, _)| !gone.contains(k)));
    }
    let (got, truth) = run(&index, &queries, None, None);
    assert!(recall(&got, &truth) >= 0.98);
}

#[test]
fn hnsw_reinsert_replaces_the_old_vector() {
    let (mut index, data, _) = small(20);
    let key = 42u64;
    let other = data[2_000].clone();
    index.insert(key, &other).unwrap();
    assert_eq!(index.len(), SMALL);
    assert_eq!(index.tombstones(), 1);
    assert_eq!(index.get(key).unwrap(), &other[..]);
    // Key 42 now sits on top of key 2000's vector, and appears once.
    let got = index.search(&other, 10, None, None);
    let top2: Vec<u64> = got.iter().take(2).map(|(k, _)| *k).collect();
    assert!(top2.contains(&key) && top2.contains(&2_000), "{got:?}");
    assert_eq!(got.iter().filter(|(k, _)| *k == key).count(), 1);
    // Its old vector no longer finds it with similarity 1.
    let old = index.search(&data[42], 10, None, None);
    assert!(old.iter().all(|(k, s)| *k != key || *s < 0.99), "{old:?}");
}

#[test]
fn hnsw_compact_drops_tombstones_and_keeps_results() {
    let (mut index, _, queries) = small(30);
    for k in (0..SMALL as u64).filter(|k| k % 4 == 1) {
        index.remove(k);
    }
    let before_exact: Vec<_> = queries.iter().map(|q| index.exact(q, 10, None)).collect();
    let keys_before: Vec<u64> = index.keys().collect();
    let bytes_before = index.memory_bytes();
    index.compact();
    assert!(
        !prefer_exact(index.node_count(), 1.0, 64, false),
        "the beam answers"
    );
    assert_eq!(index.tombstones(), 0);
    assert_eq!(index.node_count(), keys_before.len());
    assert_eq!(index.keys().collect::<Vec<_>>(), keys_before);
    assert!(index.memory_bytes() < bytes_before);
    let after: Vec<_> = queries
        .iter()
        .map(|q| index.search(q, 10, None, None))
        .collect();
    assert!(recall(&after, &before_exact) >= 0.98);
    assert!(after.iter().flatten().all(|(k, _)| k % 4 != 1));
}

#[test]
fn hnsw_builds_are_reproducible_per_seed() {
    let (a, _, qa) = small(40);
    let (b, _, _) = small(40);
    assert_eq!(a.layer0, b.layer0);
    assert_eq!(a.levels, b.levels);
    for q in &qa {
        assert_eq!(a.search(q, 10, None, None), b.search(q, 10, None, None));
    }
}

#[test]
fn hnsw_small_index_and_memory_estimate() {
    let mut index = Hnsw::new(8, HnswParams::default());
    for i in 0..20u64 {
        let mut v = vec![0.0f32; 8];
        v[(i % 8) as usize] = 1.0;
        v[((i + 1) % 8) as usize] = i as f32 / 20.0;
        super::testdata::normalise(&mut v);
        index.insert(i, &v).unwrap();
    }
    let q = index.get(7).unwrap().to_vec();
    let got = index.search(&q, 3, None, None);
    assert_eq!(got[0].0, 7);
    assert_eq!(got, index.exact(&q, 3, None));
    let mut big = shared().0.clone();
    let vectors = big.node_count() * DIM * 4;
    let layer0 = big.node_count() * (2 * 16 + 1) * 4;
    big.reserve(10_000);
    let grown = big.memory_bytes();
    assert!(grown >= 2 * (vectors + layer0), "{grown}");
    big.shrink_to_fit();
    let mem = big.memory_bytes();
    assert!(
        mem >= vectors + layer0 && mem < (vectors + layer0) * 11 / 10,
        "{mem}"
    );
}
