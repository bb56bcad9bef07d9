//! The embedded local provider: SmolLM2 chat and MiniLM embeddings from `keel-local`, fetched
//! and loaded in the background so the server can answer `/healthz` at once and `/readyz`
//! once the models are in memory.

use crate::{ChunkStream, Provider, ProviderError};
use futures::future::BoxFuture;
use keel_config::LocalProviderConfig;
use keel_config::validate::LOCAL_EMBEDDINGS_INT8;
use keel_local::{
    ChatEngine, ChatEngineOptions, EmbedPrecision, Embedder, EmbedderOptions, GenerateEvent,
    GenerateRequest, LocalError,
};
use keel_types::ids;
use keel_types::openai::{
    AssistantMessage, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Choice,
    Delta, Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage,
    EmbeddingVector, ResponseFormat, Usage,
};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Clone)]
enum LoadState {
    Loading,
    Ready(Arc<Engines>),
    Failed(String),
}

struct Engines {
    chat: ChatEngine,
    embedder: Embedder,
    /// The same embeddings model with int8 dense layers (upstream `embeddings-int8`), loaded
    /// only when a configured model uses it.
    embedder_int8: Option<Embedder>,
}

pub struct LocalProvider {
    name: String,
    state: watch::Receiver<LoadState>,
}

impl LocalProvider {
    /// Starts fetching (if missing) and loading the models on a blocking thread and returns
    /// at once. Requests before the models are ready get [`ProviderError::NotReady`].
    /// `int8_embeddings`: also load the int8 embedder (upstream `embeddings-int8`).
    pub fn spawn_load(
        name: String,
        cfg: &LocalProviderConfig,
        default_cache: PathBuf,
        int8_embeddings: bool,
    ) -> Self {
        let (tx, rx) = watch::channel(LoadState::Loading);
        let cfg = cfg.clone();
        tokio::task::spawn_blocking(move || {
            let state = match load(&cfg, &default_cache, int8_embeddings) {
                Ok(engines) => LoadState::Ready(Arc::new(engines)),
                Err(e) => {
                    tracing::error!(error = %e, "local models failed to load");
                    LoadState::Failed(e.to_string())
                }
            };
            let _ = tx.send(state);
        });
        Self { name, state: rx }
    }

    /// Waits until the models are loaded (or failed to).
    pub async fn wait_ready(&self) -> Result<(), ProviderError> {
        let mut rx = self.state.clone();
        let state = rx
            .wait_for(|s| !matches!(s, LoadState::Loading))
            .await
            .map_err(|_| ProviderError::Local("model loader stopped".into()))?;
        match &*state {
            LoadState::Failed(e) => Err(ProviderError::Local(e.clone())),
            _ => Ok(()),
        }
    }

    /// Checks the request, then queues it on the chat engine.
    fn start_generation(
        &self,
        request: &ChatCompletionRequest,
    ) -> Result<tokio::sync::mpsc::Receiver<GenerateEvent>, ProviderError> {
        check_supported(request)?;
        self.engines()?
            .chat
            .generate(generate_request(request))
            .map_err(local_error)
    }

    fn engines(&self) -> Result<Arc<Engines>, ProviderError> {
        match &*self.state.borrow() {
            LoadState::Ready(e) => Ok(e.clone()),
            LoadState::Loading => Err(ProviderError::NotReady),
            LoadState::Failed(e) => Err(ProviderError::Local(e.clone())),
        }
    }
}

/// The `tokenizer.json` of the embeddings model this provider serves (it may not be fetched
/// yet): what retrieval counts chunk tokens with.
pub fn embeddings_tokenizer(cfg: &LocalProviderConfig) -> Option<std::path::PathBuf> {
    let dir = match &cfg.embeddings_dir {
        Some(d) => d.clone(),
        None => {
            let cache = match &cfg.cache_dir {
                Some(c) => c.clone(),
                None => keel_config::defaults::cache_dir(),
            };
            keel_local::fetch::embeddings_dir(&cache)
        }
    };
    Some(dir.join("tokenizer.json"))
}

fn load(
    cfg: &LocalProviderConfig,
    default_cache: &std::path::Path,
    int8_embeddings: bool,
) -> Result<Engines, LocalError> {
    let cache = cfg
        .cache_dir
        .clone()
        .unwrap_or_else(|| default_cache.to_path_buf());
    let (gguf, emb_dir) = match (&cfg.chat_gguf, &cfg.embeddings_dir) {
        (Some(g), Some(e)) => (g.clone(), e.clone()),
        (g, e) => {
            let fetched = keel_local::fetch::ensure_models(&cache)?;
            (
                g.clone().unwrap_or(fetched.chat_gguf),
                e.clone().unwrap_or(fetched.embeddings_dir),
            )
        }
    };
    let chat = ChatEngine::load(
        &gguf,
        ChatEngineOptions {
            max_active: cfg.chat_max_active,
            queue_capacity: cfg.chat_queue,
        },
    )?;
    let embedder_options = |precision| EmbedderOptions {
        max_batch: cfg.embed_max_batch,
        queue_capacity: cfg.embed_queue,
        precision,
    };
    let embedder = Embedder::load(&emb_dir, embedder_options(EmbedPrecision::Full))?;
    let embedder_int8 = if int8_embeddings {
        Some(Embedder::load(
            &emb_dir,
            embedder_options(EmbedPrecision::Int8),
        )?)
    } else {
        None
    };
    tracing::info!(chat = %gguf.display(), embeddings = %emb_dir.display(), "local models loaded");
    Ok(Engines {
        chat,
        embedder,
        embedder_int8,
    })
}

fn local_error(e: LocalError) -> ProviderError {
    match e {
        LocalError::QueueFull { .. } => ProviderError::Overloaded,
        LocalError::ContextLength {
            prompt_tokens,
            context_window,
        } => ProviderError::ContextLength {
            prompt_tokens,
            context_window,
        },
        LocalError::InvalidRequest(message) => ProviderError::InvalidRequest {
            param: None,
            message,
        },
        other => ProviderError::Local(other.to_string()),
    }
}

/// Fields the local chat model cannot honour get a 400 naming them, never silent ignoring.
fn check_supported(req: &ChatCompletionRequest) -> Result<(), ProviderError> {
    let unsupported = |param: &str, what: &str| ProviderError::Unsupported {
        param: param.into(),
        message: format!("the local model does not support {what}"),
    };
    if req.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(unsupported("tools", "tool calling"));
    }
    if matches!(
        req.response_format,
        Some(ResponseFormat::JsonObject | ResponseFormat::JsonSchema { .. })
    ) {
        return Err(unsupported("response_format", "structured output"));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(unsupported("n", "more than one choice (n > 1)"));
    }
    Ok(())
}

fn generate_request(req: &ChatCompletionRequest) -> GenerateRequest {
    GenerateRequest {
        messages: req.messages.clone(),
        max_tokens: req.max_output_tokens(),
        temperature: req.temperature,
        top_p: req.top_p,
        seed: req.seed,
        stop: req.stop_sequences(),
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Provider for LocalProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn ready(&self) -> bool {
        matches!(&*self.state.borrow(), LoadState::Ready(_))
    }

    fn chat(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChatCompletionResponse, ProviderError>> {
        Box::pin(async move {
            let mut rx = self.start_generation(&request)?;
            let mut text = String::new();
            while let Some(event) = rx.recv().await {
                match event {
                    GenerateEvent::Started { .. } => {}
                    GenerateEvent::Delta(d) => text.push_str(&d),
                    GenerateEvent::Failed(e) => return Err(local_error(e)),
                    GenerateEvent::Done {
                        finish,
                        prompt_tokens,
                        completion_tokens,
                    } => {
                        return Ok(ChatCompletionResponse {
                            id: ids::completion_id(),
                            object: "chat.completion".into(),
                            created: now_secs(),
                            model: request.model.clone(),
                            choices: vec![Choice {
                                index: 0,
                                message: AssistantMessage {
                                    role: "assistant".into(),
                                    content: Some(text),
                                    ..Default::default()
                                },
                                finish_reason: Some(finish),
                                logprobs: None,
                            }],
                            usage: Some(Usage::new(prompt_tokens, completion_tokens)),
                            system_fingerprint: None,
                            keel: None,
                        });
                    }
                }
            }
            Err(ProviderError::Local(
                "generation ended without a result".into(),
            ))
        })
    }

    fn chat_stream(
        &self,
        request: ChatCompletionRequest,
    ) -> BoxFuture<'_, Result<ChunkStream, ProviderError>> {
        Box::pin(async move {
            let mut rx = self.start_generation(&request)?;
            let id = ids::completion_id();
            let created = now_secs();
            let model = request.model.clone();
            let stream = async_stream::stream! {
                let role = Delta { role: Some("assistant".into()), content: Some(String::new()), tool_calls: None };
                yield Ok(ChatCompletionChunk::delta(&id, created, &model, role, None));
                let mut done = false;
                while let Some(event) = rx.recv().await {
                    match event {
                        GenerateEvent::Started { .. } => {}
                        GenerateEvent::Delta(d) => {
                            let delta = Delta { content: Some(d), ..Default::default() };
                            yield Ok(ChatCompletionChunk::delta(&id, created, &model, delta, None));
                        }
                        GenerateEvent::Failed(e) => {
                            yield Err(local_error(e));
                            done = true;
                            break;
                        }
                        GenerateEvent::Done { finish, prompt_tokens, completion_tokens } => {
                            yield Ok(ChatCompletionChunk::delta(&id, created, &model, Delta::default(), Some(finish)));
                            yield Ok(ChatCompletionChunk::usage_only(&id, created, &model, Usage::new(prompt_tokens, completion_tokens)));
                            done = true;
                            break;
                        }
                    }
                }
                if !done {
                    yield Err(ProviderError::Stream("local generation stopped without finishing".into()));
                }
            };
            Ok(Box::pin(stream) as ChunkStream)
        })
    }

    fn embed(
        &self,
        request: EmbeddingRequest,
    ) -> BoxFuture<'_, Result<EmbeddingResponse, ProviderError>> {
        Box::pin(async move {
            let texts = match request.input {
                EmbeddingInput::One(s) => vec![s],
                EmbeddingInput::Many(v) => v,
                EmbeddingInput::Tokens(_) | EmbeddingInput::ManyTokens(_) => {
                    return Err(ProviderError::Unsupported {
                        param: "input".into(),
                        message: "the local embedding model takes text, not token arrays".into(),
                    });
                }
            };
            let engines = self.engines()?;
            let embedder = match request.model.as_str() {
                LOCAL_EMBEDDINGS_INT8 => engines.embedder_int8.as_ref().ok_or_else(|| {
                    ProviderError::Local(format!(
                        "\"{LOCAL_EMBEDDINGS_INT8}\" was not loaded: no configured model uses it"
                    ))
                })?,
                _ => &engines.embedder,
            };
            let dims = embedder.dimensions();
            if let Some(d) = request.dimensions
                && d as usize != dims
            {
                return Err(ProviderError::Unsupported {
                    param: "dimensions".into(),
                    message: format!(
                        "the local embedding model has {dims} dimensions and cannot produce {d}"
                    ),
                });
            }
            let out = embedder.embed(texts).await.map_err(local_error)?;
            let tokens: u32 = out.token_counts.iter().sum();
            let data = out
                .vectors
                .into_iter()
                .enumerate()
                .map(|(i, v)| Embedding {
                    object: "embedding".into(),
                    index: i as u32,
                    embedding: EmbeddingVector::Float(v),
                })
                .collect();
            Ok(EmbeddingResponse {
                object: "list".into(),
                data,
                model: request.model,
                usage: EmbeddingUsage {
                    prompt_tokens: tokens,
                    total_tokens: tokens,
                },
            })
        })
    }
}
