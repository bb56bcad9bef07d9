//! HNSW benchmark: a plain program printing a table (`cargo bench -p keel-retrieval --bench hnsw`).
//! 100,000 clustered 384-d vectors (50 Gaussian clusters), 200 queries from the same mixture:
//! the full table. Then a second mixture whose clusters spread along 16 directions each (plus
//! a little isotropic noise), closer to the low intrinsic dimension of real text embeddings:
//! build, recall and latency only. `HNSW_BENCH_N` overrides the size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use keel_retrieval::hnsw::{Hnsw, HnswParams};

const DIM: usize = 384;
const QUERIES: usize = 200;
const K: usize = 10;

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

fn unit_vector(rng: &mut Rng) -> Vec<f32> {
    let mut c: Vec<f32> = (0..DIM).map(|_| rng.gauss()).collect();
    normalise(&mut c);
    c
}

/// A cluster: its centre and the directions it spreads along (none = isotropic).
struct Cluster {
    centre: Vec<f32>,
    axes: Vec<Vec<f32>>,
}

/// Points around random clusters with spread of norm ≈ 1: isotropic noise, or a Gaussian over
/// the cluster's axes plus isotropic noise of norm ≈ 0.2.
fn mixture(n: usize, clusters: &[Cluster], rng: &mut Rng) -> Vec<Vec<f32>> {
    let iso = 1.0 / (DIM as f32).sqrt();
    (0..n)
        .map(|_| {
            let c = &clusters[(rng.next_u64() % clusters.len() as u64) as usize];
            let mut v = c.centre.clone();
            if c.axes.is_empty() {
                v.iter_mut().for_each(|x| *x += iso * rng.gauss());
            } else {
                let along = 1.0 / (c.axes.len() as f32).sqrt();
                for a in &c.axes {
                    let z = along * rng.gauss();
                    v.iter_mut().zip(a).for_each(|(x, ai)| *x += z * ai);
                }
                v.iter_mut().for_each(|x| *x += 0.2 * iso * rng.gauss());
            }
            normalise(&mut v);
            v
        })
        .collect()
}

fn clusters(rng: &mut Rng, axes: usize) -> Vec<Cluster> {
    (0..50)
        .map(|_| Cluster {
            centre: unit_vector(rng),
            axes: (0..axes).map(|_| unit_vector(rng)).collect(),
        })
        .collect()
}

fn pct(d: &mut [Duration], p: f64) -> f64 {
    d.sort_unstable();
    let i = ((d.len() as f64 - 1.0) * p).round() as usize;
    d[i].as_secs_f64() * 1e6
}

fn recall(got: &[Vec<(u64, f32)>], truth: &[Vec<(u64, f32)>]) -> f64 {
    let (mut hit, mut total) = (0, 0);
    for (g, t) in got.iter().zip(truth) {
        total += t.len();
        hit += t
            .iter()
            .filter(|(k, _)| g.iter().any(|(gk, _)| gk == k))
            .count();
    }
    hit as f64 / total.max(1) as f64
}

type Filter<'a> = Option<&'a dyn Fn(u64) -> bool>;

fn timed<F: Fn(&[f32]) -> Vec<(u64, f32)>>(
    qs: &[Vec<f32>],
    f: F,
) -> (Vec<Vec<(u64, f32)>>, f64, f64) {
    let mut times = Vec::with_capacity(qs.len());
    let mut out = Vec::with_capacity(qs.len());
    for q in qs {
        let t = Instant::now();
        out.push(f(q));
        times.push(t.elapsed());
    }
    let p50 = pct(&mut times, 0.5);
    let p99 = pct(&mut times, 0.99);
    (out, p50, p99)
}

fn build(data: &[Vec<f32>]) -> Hnsw {
    let t = Instant::now();
    let mut index = Hnsw::new(DIM, HnswParams::default());
    for (i, v) in data.iter().enumerate() {
        index.insert(i as u64, v).unwrap();
    }
    let build = t.elapsed();
    println!(
        "build: {:.1} s ({:.0} inserts/s)",
        build.as_secs_f64(),
        data.len() as f64 / build.as_secs_f64()
    );
    index
}

/// Exact scan, then the beam at several ef; returns the exact answers.
fn recall_table(index: &Hnsw, queries: &[Vec<f32>], efs: &[usize]) {
    let (truth, e50, e99) = timed(queries, |q| index.exact(q, K, None));
    println!("\n| search              | recall@10 | p50 µs | p99 µs |");
    println!("|---------------------|-----------|--------|--------|");
    println!("| exact scan          | 1.0000    | {e50:>6.0} | {e99:>6.0} |");
    for &ef in efs {
        let (got, p50, p99) = timed(queries, |q| index.search(q, K, Some(ef), None));
        println!(
            "| hnsw ef={ef:<4}        | {:.4}    | {p50:>6.0} | {p99:>6.0} |",
            recall(&got, &truth)
        );
    }
}

fn main() {
    let n: usize = std::env::var("HNSW_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    println!(
        "HNSW bench: n={n}, dim={DIM}, 50 clusters, {QUERIES} queries, k={K}, {:?}",
        HnswParams::default()
    );

    println!("\n## isotropic Gaussian clusters");
    let mut rng = Rng(42);
    let centres = clusters(&mut rng, 0);
    let data = mixture(n, &centres, &mut rng);
    let queries = mixture(QUERIES, &centres, &mut rng);
    let index = build(&data);
    drop(data);
    recall_table(&index, &queries, &[32, 64, 128, 256]);
    for percent in [1u64, 2, 5, 10, 20, 50] {
        let f = move |k: u64| (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 100 < percent;
        let filter: Filter = Some(&f);
        let (ftruth, x50, x99) = timed(&queries, |q| index.exact(q, K, filter));
        let (got, p50, p99) = timed(&queries, |q| index.search(q, K, None, filter));
        println!(
            "| filter {percent:>2}% search   | {:.4}    | {p50:>6.0} | {p99:>6.0} |",
            recall(&got, &ftruth)
        );
        println!("| filter {percent:>2}% exact    | 1.0000    | {x50:>6.0} | {x99:>6.0} |");
    }

    let mut index = index;
    let grown = index.memory_bytes();
    index.shrink_to_fit();
    println!(
        "\nmemory_bytes: {:.1} MiB as built, {:.1} MiB after shrink_to_fit (vectors alone {:.1} MiB)",
        grown as f64 / 1048576.0,
        index.memory_bytes() as f64 / 1048576.0,
        (n * DIM * 4) as f64 / 1048576.0
    );
    let dir = std::env::temp_dir().join(format!("keel-hnsw-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.hnsw");
    let t = Instant::now();
    index.save(&path).unwrap();
    let save = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    let t = Instant::now();
    let loaded = Hnsw::load(&path).unwrap();
    let load = t.elapsed();
    assert_eq!(loaded.len(), index.len());
    println!(
        "save: {:.0} ms, load: {:.0} ms, file: {:.1} MiB",
        save.as_secs_f64() * 1e3,
        load.as_secs_f64() * 1e3,
        size as f64 / 1048576.0
    );
    std::fs::remove_dir_all(&dir).unwrap();
    drop((index, loaded));

    println!("\n## clusters spread along 16 directions each (+ isotropic noise of norm 0.2)");
    let mut rng = Rng(43);
    let centres = clusters(&mut rng, 16);
    let data = mixture(n, &centres, &mut rng);
    let queries = mixture(QUERIES, &centres, &mut rng);
    let index = build(&data);
    drop(data);
    recall_table(&index, &queries, &[32, 64, 128]);
}
