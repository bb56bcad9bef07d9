//! keel's own BERT encoder forward pass (inference only, f32, CPU) over the safetensors
//! weights, used by the embedder instead of candle's `BertModel`.
//!
//! Why: for the short texts of queries candle spent most of its time outside arithmetic
//! (re-packing every weight on every matmul, thread-pool dispatch per op, one allocation
//! per op, masked padding). Here the weights are packed once ([`PackedLinear`]), a forward
//! pass holds the tokens of several texts *without padding* (dense layers see all tokens as
//! one matrix; attention runs per text, so no mask is needed), and the elementwise steps are
//! fused loops ([`super::kernels`]). Numerically it is the same computation as the
//! PyTorch/candle model up to float summation order (checked against candle in the tests).

use super::attention::HeadView;
use super::kernels::{Activation, axpy, dot, layer_norm, softmax};
use super::matmul::{Backend, PackedLinear};
use super::pool::Job;

/// One attention head's output rows, or why it failed.
type HeadOutput = Result<Vec<f32>, String>;
use candle_core::{DType, Tensor};
use candle_transformers::models::bert::{Config, HiddenAct};
use std::collections::HashMap;

/// Fewest tokens in a pass worth splitting between threads.
const MIN_SPLIT_TOKENS: usize = 48;
/// Rows per thread are a multiple of this (whole kernel tiles: 4 for f32 panels, 8 for int8).
const ROW_GRAIN: usize = 8;

/// One share of a pass's per-row buffers: hidden states, a hidden-wide scratch, the
/// feed-forward activations and the next layer's query/key/value rows.
struct Rows<'a> {
    x: &'a mut [f32],
    tmp: &'a mut [f32],
    inter: &'a mut [f32],
    qkv: &'a mut [f32],
}

struct Layer {
    /// Query, key and value projections side by side (`3 × hidden` outputs).
    qkv: PackedLinear,
    attn_out: PackedLinear,
    attn_norm: (Vec<f32>, Vec<f32>),
    up: PackedLinear,
    down: PackedLinear,
    out_norm: (Vec<f32>, Vec<f32>),
}

/// A loaded BERT encoder.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    eps: f64,
    act: Activation,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding (sentence embeddings never use type 1).
    token_type: Vec<f32>,
    emb_norm: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    /// Threads one forward pass may use (its texts are split between them).
    threads: usize,
    /// The kernel the dense layers were packed for (attention: see [`Bert::head`]).
    backend: Backend,
}

/// Reads named f32 tensors out of a safetensors map, whatever prefix the checkpoint uses.
struct Weights {
    tensors: HashMap<String, Tensor>,
    prefix: &'static str,
}

impl Weights {
    fn get(&self, names: &[&str], len: usize) -> Result<Vec<f32>, String> {
        for name in names {
            let full = format!("{}{name}", self.prefix);
            if let Some(t) = self.tensors.get(&full) {
                let v = t
                    .to_dtype(DType::F32)
                    .and_then(|t| t.flatten_all())
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(|e| format!("{full}: {e}"))?;
                if v.len() != len {
                    return Err(format!("{full}: {} values, expected {len}", v.len()));
                }
                return Ok(v);
            }
        }
        Err(format!("missing tensor {}{}", self.prefix, names[0]))
    }

    fn norm(&self, base: &str, width: usize) -> Result<(Vec<f32>, Vec<f32>), String> {
        let w = self.get(
            &[&format!("{base}.weight"), &format!("{base}.gamma")],
            width,
        )?;
        let b = self.get(&[&format!("{base}.bias"), &format!("{base}.beta")], width)?;
        Ok((w, b))
    }

    fn linear(&self, base: &str, n: usize, k: usize) -> Result<(Vec<f32>, Vec<f32>), String> {
        let w = self.get(&[&format!("{base}.weight")], n * k)?;
        let b = self.get(&[&format!("{base}.bias")], n)?;
        Ok((w, b))
    }
}

fn pack(
    parts: (Vec<f32>, Vec<f32>),
    n: usize,
    k: usize,
    what: &str,
    backend: Backend,
) -> Result<PackedLinear, String> {
    PackedLinear::with_backend(&parts.0, &parts.1, n, k, backend)
        .ok_or_else(|| format!("{what}: bad shape"))
}

impl Bert {
    /// Builds the encoder from a checkpoint's tensors (`embeddings.*`, `encoder.layer.N.*`,
    /// optionally under `bert.`) and its config, packed for `backend`. `threads` bounds the
    /// threads one forward pass may use.
    pub(crate) fn load(
        tensors: HashMap<String, Tensor>,
        config: &Config,
        threads: usize,
        backend: Backend,
    ) -> Result<Self, String> {
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let w = Weights { tensors, prefix };
        let (h, ff) = (config.hidden_size, config.intermediate_size);
        let heads = config.num_attention_heads;
        if heads == 0 || h % heads != 0 {
            return Err(format!(
                "hidden size {h} is not a multiple of {heads} heads"
            ));
        }
        let act = match config.hidden_act {
            HiddenAct::Gelu => Activation::Gelu,
            HiddenAct::GeluApproximate => Activation::GeluTanh,
            HiddenAct::Relu => Activation::Relu,
        };
        let token_types = w.get(
            &["embeddings.token_type_embeddings.weight"],
            config.type_vocab_size * h,
        )?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let base = format!("encoder.layer.{i}");
            let q = w.linear(&format!("{base}.attention.self.query"), h, h)?;
            let k = w.linear(&format!("{base}.attention.self.key"), h, h)?;
            let v = w.linear(&format!("{base}.attention.self.value"), h, h)?;
            let qkv = PackedLinear::concat(
                &[(&q.0, &q.1, h), (&k.0, &k.1, h), (&v.0, &v.1, h)],
                h,
                backend,
            )
            .ok_or_else(|| format!("{base}: bad attention shapes"))?;
            layers.push(Layer {
                qkv,
                attn_out: pack(
                    w.linear(&format!("{base}.attention.output.dense"), h, h)?,
                    h,
                    h,
                    &base,
                    backend,
                )?,
                attn_norm: w.norm(&format!("{base}.attention.output.LayerNorm"), h)?,
                up: pack(
                    w.linear(&format!("{base}.intermediate.dense"), ff, h)?,
                    ff,
                    h,
                    &base,
                    backend,
                )?,
                down: pack(
                    w.linear(&format!("{base}.output.dense"), h, ff)?,
                    h,
                    ff,
                    &base,
                    backend,
                )?,
                out_norm: w.norm(&format!("{base}.output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            hidden: h,
            heads,
            eps: config.layer_norm_eps,
            act,
            max_positions: config.max_position_embeddings,
            word: w.get(
                &["embeddings.word_embeddings.weight"],
                config.vocab_size * h,
            )?,
            position: w.get(
                &["embeddings.position_embeddings.weight"],
                config.max_position_embeddings * h,
            )?,
            token_type: token_types[..h].to_vec(),
            emb_norm: w.norm("embeddings.LayerNorm", h)?,
            layers,
            threads: threads.max(1),
            backend,
        })
    }

    /// Mean-pooled, L2-normalised embeddings of `texts` (token ids with `[CLS]`/`[SEP]`,
    /// each at most `max_position_embeddings` long), in one forward pass.
    ///
    /// Several texts are split into groups of about equal token counts, one pool thread per
    /// group. A single text of at least [`MIN_SPLIT_TOKENS`]
    /// has its matmul rows and attention heads split instead (two dozen hand-offs per
    /// pass, which lost to one thread on a busy 2-core machine for a short query).
    pub(crate) fn embed(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        if self.threads < 2 {
            return self.embed_here(texts);
        }
        super::pool::install(|| self.embed_here(texts))
    }

    /// [`Bert::embed`] from the calling thread.
    fn embed_here(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>, String> {
        let tokens: usize = texts.iter().map(|t| t.len()).sum();
        let groups = self.threads.min(texts.len());
        if groups < 2 {
            // One text (or one thread): its matmuls and heads are split instead.
            return self.pass(texts, self.threads);
        }
        if tokens < MIN_SPLIT_TOKENS {
            return self.pass(texts, 1);
        }
        // Cut points at multiples of tokens / groups.
        let mut bounds = vec![0];
        let mut seen = 0;
        for (i, t) in texts.iter().enumerate() {
            seen += t.len();
            if bounds.len() < groups
                && seen * groups >= tokens * bounds.len()
                && i + 1 < texts.len()
            {
                bounds.push(i + 1);
            }
        }
        bounds.push(texts.len());
        let parts: Vec<&[&[u32]]> = bounds.windows(2).map(|w| &texts[w[0]..w[1]]).collect();
        let jobs: Vec<Job<'_, Result<Vec<Vec<f32>>, String>>> = parts
            .into_iter()
            .map(|part| Box::new(move || self.pass(part, 1)) as Box<_>)
            .collect();
        let results = super::pool::run_all(jobs);
        let mut out = Vec::with_capacity(texts.len());
        for r in results {
            out.extend(r?);
        }
        Ok(out)
    }

    /// [`Bert::embed`] of all `texts` on the calling thread.
    fn pass(&self, texts: &[&[u32]], threads: usize) -> Result<Vec<Vec<f32>>, String> {
        let h = self.hidden;
        let vocab = self.word.len() / h;
        let rows: usize = texts.iter().map(|t| t.len()).sum();
        // Splitting a short pass's row-split f32 matmuls costs more in hand-offs than it
        // saves; on tiles a short pass is bound by streaming the weights, which the threads
        // split by columns.
        let threads = if rows >= MIN_SPLIT_TOKENS || self.backend == Backend::Amx {
            threads
        } else {
            1
        };
        let mut x = vec![0.0f32; rows * h];
        let mut at = 0;
        for ids in texts {
            if ids.len() > self.max_positions {
                return Err(format!(
                    "{} tokens, at most {} allowed",
                    ids.len(),
                    self.max_positions
                ));
            }
            for (pos, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if id >= vocab {
                    return Err(format!("token id {id} outside the vocabulary ({vocab})"));
                }
                let dst = &mut x[at * h..][..h];
                let (wd, ps) = (&self.word[id * h..][..h], &self.position[pos * h..][..h]);
                for (((d, a), b), c) in dst.iter_mut().zip(wd).zip(ps).zip(&self.token_type) {
                    *d = a + b + c;
                }
                at += 1;
            }
        }
        layer_norm(&mut x, &self.emb_norm.0, &self.emb_norm.1, self.eps);

        let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let ff = self.layers.first().map_or(0, |l| l.up.out_features());
        let mut qkv = vec![0.0f32; rows * 3 * h];
        let mut ctx = vec![0.0f32; rows * h];
        let mut tmp = vec![0.0f32; rows * h];
        let mut inter = vec![0.0f32; rows * ff];
        if let Some(first) = self.layers.first() {
            first.qkv.forward(&x, &mut qkv, threads);
        }
        if threads > 1 && self.backend != Backend::Amx {
            // Rows split once per layer, not per matmul: between two attentions every step
            // is row by row, so each thread carries its rows through all of them (two
            // hand-offs per layer instead of five, and the norms split too). Tiles keep
            // per-matmul splits: a short pass on them splits columns instead.
            let per = rows.div_ceil(threads).div_ceil(ROW_GRAIN) * ROW_GRAIN;
            for (i, layer) in self.layers.iter().enumerate() {
                self.attention(&qkv, &lens, &mut ctx, threads)?;
                let next = self.layers.get(i + 1);
                let jobs: Vec<Job<'_, ()>> = x
                    .chunks_mut(per * h)
                    .zip(tmp.chunks_mut(per * h))
                    .zip(inter.chunks_mut(per * ff))
                    .zip(qkv.chunks_mut(per * 3 * h))
                    .zip(ctx.chunks(per * h))
                    .map(|((((x, tmp), inter), qkv), ctx)| {
                        Box::new(move || {
                            let rows = Rows { x, tmp, inter, qkv };
                            self.after_attention(layer, next, ctx, rows, 1);
                        }) as Box<_>
                    })
                    .collect();
                super::pool::run_all(jobs);
            }
        } else {
            for (i, layer) in self.layers.iter().enumerate() {
                self.attention(&qkv, &lens, &mut ctx, threads)?;
                let rows = Rows {
                    x: &mut x,
                    tmp: &mut tmp,
                    inter: &mut inter,
                    qkv: &mut qkv,
                };
                self.after_attention(layer, self.layers.get(i + 1), &ctx, rows, threads);
            }
        }

        let mut out = Vec::with_capacity(texts.len());
        let mut start = 0;
        for &len in &lens {
            let mut mean = vec![0.0f32; h];
            for row in x[start * h..(start + len) * h].chunks_exact(h) {
                axpy(1.0, row, &mut mean);
            }
            let count = len.max(1) as f32;
            mean.iter_mut().for_each(|v| *v /= count);
            let norm = dot(&mean, &mean).sqrt().max(1e-12);
            mean.iter_mut().for_each(|v| *v /= norm);
            out.push(mean);
            start += len;
        }
        Ok(out)
    }

    /// Everything of `layer` after its attention, on whole rows: the output projection and
    /// its residual norm, the feed-forward block and its residual norm, then `next`'s query,
    /// key and value projection.
    fn after_attention(
        &self,
        layer: &Layer,
        next: Option<&Layer>,
        ctx: &[f32],
        rows: Rows<'_>,
        threads: usize,
    ) {
        let Rows { x, tmp, inter, qkv } = rows;
        layer.attn_out.forward(ctx, tmp, threads);
        add_norm(x, tmp, &layer.attn_norm, self.eps);
        let act = self.act;
        layer
            .up
            .forward_then(x, inter, threads, &|rows| act.apply(rows));
        layer.down.forward(inter, tmp, threads);
        add_norm(x, tmp, &layer.out_norm, self.eps);
        if let Some(next) = next {
            next.qkv.forward(x, qkv, threads);
        }
    }

    /// Multi-head self-attention of each text over its own tokens: `qkv` holds every row's
    /// query, key and value (`3 × hidden` wide), `ctx` receives the heads' outputs.
    ///
    /// Per text and head both products go through [`PackedLinear`] with operands packed on
    /// the fly: the scores are `Q Kᵀ` (the keys as a layer's weight), the output is `P V`
    /// (`Vᵀ` as the weight), so attention runs on the same kernels as the dense layers.
    fn attention(
        &self,
        qkv: &[f32],
        lens: &[usize],
        ctx: &mut [f32],
        threads: usize,
    ) -> Result<(), String> {
        let h = self.hidden;
        let d = h / self.heads;
        let mut start = 0;
        for &len in lens {
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            let out = &mut ctx[start * h..(start + len) * h];
            let heads = if threads > 1 && len >= MIN_SPLIT_TOKENS {
                self.heads_split(rows, len, threads)
            } else {
                (0..self.heads).map(|hd| self.head(rows, len, hd)).collect()
            };
            for (head, o) in heads.into_iter().enumerate() {
                let o = o?;
                for (dst, src) in out.chunks_exact_mut(h).zip(o.chunks_exact(d)) {
                    dst[head * d..][..d].copy_from_slice(src);
                }
            }
            start += len;
        }
        Ok(())
    }

    /// Every head of one text, the heads split between `threads` threads.
    fn heads_split(&self, rows: &[f32], len: usize, threads: usize) -> Vec<HeadOutput> {
        let per = self.heads.div_ceil(threads);
        let range = |first: usize| first..(first + per).min(self.heads);
        let jobs: Vec<Job<'_, Vec<HeadOutput>>> = (0..self.heads)
            .step_by(per)
            .map(|first| {
                Box::new(move || range(first).map(|hd| self.head(rows, len, hd)).collect())
                    as Box<_>
            })
            .collect();
        super::pool::run_all(jobs).into_iter().flatten().collect()
    }

    /// One head's attention output (`len × head_dim`) over one text's `qkv` rows.
    ///
    /// With AMX, both products run on tiles (the operands packed as layer weights);
    /// otherwise on the f32 panel kernel with operands laid out in place
    /// ([`super::attention`]), the scores in int8 where the dense layers are.
    fn head(&self, rows: &[f32], len: usize, head: usize) -> Result<Vec<f32>, String> {
        let h = self.hidden;
        let d = h / self.heads;
        if self.backend != Backend::Amx {
            let view = HeadView {
                qkv: rows,
                len,
                hidden: h,
                dim: d,
                head,
            };
            return Ok(super::attention::head(view, self.backend == Backend::Int8));
        }
        let scale = 1.0 / (d as f32).sqrt();
        let column = |offset: usize| rows.chunks_exact(3 * h).map(move |r| &r[offset..][..d]);
        let mut queries = Vec::with_capacity(len * d);
        let mut keys = Vec::with_capacity(len * d);
        for (q, k) in column(head * d).zip(column(h + head * d)) {
            queries.extend(q.iter().map(|v| v * scale));
            keys.extend_from_slice(k);
        }
        // Vᵀ, written row by row (reading each value column with stride `3 · hidden`).
        let mut values_t = vec![0.0f32; d * len];
        let values: Vec<&[f32]> = column(2 * h + head * d).collect();
        for (c, dst) in values_t.chunks_exact_mut(len).enumerate() {
            for (x, v) in dst.iter_mut().zip(&values) {
                *x = v[c];
            }
        }
        let bad = || format!("attention head {head}: bad shapes");
        let keys = PackedLinear::with_backend(&keys, &vec![0.0; len], len, d, self.backend)
            .ok_or_else(bad)?;
        let mut scores = vec![0.0f32; len * len];
        keys.forward(&queries, &mut scores, 1);
        for row in scores.chunks_exact_mut(len) {
            softmax(row);
        }
        let values = PackedLinear::with_backend(&values_t, &vec![0.0; d], d, len, self.backend)
            .ok_or_else(bad)?;
        let mut out = vec![0.0f32; len * d];
        values.forward(&scores, &mut out, 1);
        Ok(out)
    }
}

/// `x = layer_norm(x + y)`.
fn add_norm(x: &mut [f32], y: &[f32], norm: &(Vec<f32>, Vec<f32>), eps: f64) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
    layer_norm(x, &norm.0, &norm.1, eps);
}
