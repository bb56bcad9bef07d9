//! The jailguard prompt-injection MLP (384 → 256 ReLU → 128 ReLU → 1 sigmoid) over MiniLM
//! mean-pooled, L2-normalised sentence embeddings. The weights come from the `jailguard`
//! crate's source package (`keel_local::fetch::ensure_jailguard`); keel runs the forward pass
//! itself (a few hundred thousand multiply-adds, tens of microseconds).

use serde::Deserialize;
use std::path::Path;

/// The embedding width the MLP expects (all-MiniLM-L6-v2).
pub const EMBEDDING_DIM: usize = 384;

/// A dense layer stored row-major: `weights[o * inputs + i]`.
#[derive(Debug, Clone)]
struct Dense {
    inputs: usize,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

impl Dense {
    fn new(name: &str, rows: Vec<Vec<f32>>, bias: Vec<f32>, inputs: usize) -> Result<Self, String> {
        if rows.len() != bias.len() {
            return Err(format!(
                "{name}: {} weight rows but {} biases",
                rows.len(),
                bias.len()
            ));
        }
        let mut weights = Vec::with_capacity(rows.len() * inputs);
        for (o, row) in rows.into_iter().enumerate() {
            if row.len() != inputs {
                return Err(format!(
                    "{name}: row {o} has {} inputs, expected {inputs}",
                    row.len()
                ));
            }
            weights.extend(row);
        }
        if weights.iter().chain(&bias).any(|w| !w.is_finite()) {
            return Err(format!("{name}: a weight is not a finite number"));
        }
        Ok(Self {
            inputs,
            weights,
            bias,
        })
    }

    fn outputs(&self) -> usize {
        self.bias.len()
    }

    fn forward(&self, x: &[f32], relu: bool, out: &mut Vec<f32>) {
        out.clear();
        for (row, b) in self.weights.chunks_exact(self.inputs).zip(&self.bias) {
            let v = dot(row, x) + b;
            out.push(if relu { v.max(0.0) } else { v });
        }
    }
}

/// A dot product in eight independent lanes, which the compiler turns into SIMD (a plain
/// `zip().sum()` of floats stays sequential: reordering additions changes the result).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The jailguard MLP.
#[derive(Debug, Clone)]
pub struct Mlp {
    h1: Dense,
    h2: Dense,
    out: Dense,
}

/// The JSON layout of `neural_binary_200k.json` (training metadata keys are ignored).
#[derive(Deserialize)]
struct Weights {
    w_h1: Vec<Vec<f32>>,
    b_h1: Vec<f32>,
    w_h2: Vec<Vec<f32>>,
    b_h2: Vec<f32>,
    w_out: Vec<Vec<f32>>,
    b_out: Vec<f32>,
}

impl Mlp {
    /// Parses jailguard's JSON weights (`w_h1 b_h1 w_h2 b_h2 w_out b_out`, rows = outputs) and
    /// checks every shape.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let w: Weights =
            serde_json::from_slice(bytes).map_err(|e| format!("jailguard weights: {e}"))?;
        let h1 = Dense::new("w_h1", w.w_h1, w.b_h1, EMBEDDING_DIM)?;
        let h2 = Dense::new("w_h2", w.w_h2, w.b_h2, h1.outputs())?;
        let out = Dense::new("w_out", w.w_out, w.b_out, h2.outputs())?;
        if out.outputs() != 1 {
            return Err(format!("w_out: {} outputs, expected 1", out.outputs()));
        }
        Ok(Self { h1, h2, out })
    }

    /// Reads and parses a weights file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_json(&bytes)
    }

    /// The injection probability (0..=1) of a text given its embedding. A wrong-length
    /// embedding scores 0 — [`Mlp::check_dim`] first where that must be an error.
    pub fn score(&self, embedding: &[f32]) -> f32 {
        if embedding.len() != EMBEDDING_DIM {
            return 0.0;
        }
        let mut a = Vec::with_capacity(self.h1.outputs());
        let mut b = Vec::with_capacity(self.h2.outputs());
        self.h1.forward(embedding, true, &mut a);
        self.h2.forward(&a, true, &mut b);
        self.out.forward(&b, false, &mut a);
        let logit = a.first().copied().unwrap_or(0.0);
        1.0 / (1.0 + (-logit).exp())
    }

    /// `Err` with a reason when `embedding` is not an input this MLP can score.
    pub fn check_dim(embedding: &[f32]) -> Result<(), String> {
        if embedding.len() != EMBEDDING_DIM {
            return Err(format!(
                "expected a {EMBEDDING_DIM}-dimensional MiniLM embedding, got {}",
                embedding.len()
            ));
        }
        if embedding.iter().any(|v| !v.is_finite()) {
            return Err("the embedding has a non-finite value".into());
        }
        Ok(())
    }
}
