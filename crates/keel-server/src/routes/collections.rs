//! The collections API, per tenant (the tenant comes from the API key, never the request):
//! - `POST /v1/collections` `{name, embedding_model?, chunking?, max_age_seconds?}`
//! - `GET /v1/collections`, `GET /v1/collections/{name}` (size, freshness, pending work)
//! - `PATCH /v1/collections/{name}` `{embedding_model}`: re-embeds every chunk
//! - `POST /v1/collections/{name}/documents`: JSON `{id, text | url, title, metadata, format}`
//!   or `{documents: [...]}`, or multipart files (`metadata` field: JSON for all of them)
//! - `DELETE /v1/collections/{name}/documents/{id}`
//! - `POST /v1/collections/{name}/search` `{query, top_k, mode, filters, fusion, mmr, ...}`

use crate::auth::Caller;
use crate::body::{parse_json, read_limited};
use crate::error::OpenAiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Extension, FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use keel_retrieval::chunk::ChunkSettings;
use keel_retrieval::extract::Format;
use keel_retrieval::{Body, Collection, CollectionError, Library, SearchQuery, Source};
use keel_types::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

fn library(state: &AppState) -> Result<Arc<Library>, OpenAiError> {
    state.pipeline.library().cloned().ok_or_else(|| {
        OpenAiError(ApiError::new(
            ErrorCode::NotFound,
            "retrieval is not enabled",
        ))
    })
}

fn api(e: CollectionError) -> OpenAiError {
    OpenAiError(match e {
        CollectionError::Invalid(m) => ApiError::new(ErrorCode::InvalidRequest, m),
        CollectionError::Embedding(m) => {
            ApiError::new(ErrorCode::UpstreamError, format!("embeddings model: {m}"))
        }
        CollectionError::Storage(m) => ApiError::internal(format!("collection storage: {m}")),
    })
}

fn invalid(message: impl Into<String>, param: &str) -> OpenAiError {
    OpenAiError(ApiError::new(ErrorCode::InvalidRequest, message).with_param(param))
}

fn collection(lib: &Library, caller: &Caller, name: &str) -> Result<Arc<Collection>, OpenAiError> {
    lib.get(caller.tenant.as_deref(), name)
        .map_err(api)?
        .ok_or_else(|| {
            OpenAiError(ApiError::new(
                ErrorCode::NotFound,
                format!("no collection named \"{name}\""),
            ))
        })
}

/// The library, the caller's collection `name` and the parsed JSON body.
async fn with_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    caller: &Caller,
    name: &str,
    body: axum::body::Body,
) -> Result<(Arc<Library>, Arc<Collection>, T), OpenAiError> {
    let lib = library(state)?;
    let c = collection(&lib, caller, name)?;
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(OpenAiError)?;
    let parsed = parse_json(&bytes).map_err(OpenAiError)?;
    Ok((lib, c, parsed))
}

fn stats_json(c: &Collection) -> Value {
    let mut v = serde_json::to_value(c.stats()).unwrap_or_default();
    v["object"] = json!("collection");
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    embedding_model: Option<String>,
    #[serde(default)]
    chunking: Option<ChunkSettings>,
    #[serde(default)]
    max_age_seconds: Option<u64>,
}

pub async fn create_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<Value>), OpenAiError> {
    let lib = library(&state)?;
    let bytes = read_limited(body, state.max_body_bytes)
        .await
        .map_err(OpenAiError)?;
    let b: CreateBody = parse_json(&bytes).map_err(OpenAiError)?;
    keel_retrieval::library::check_name(&b.name).map_err(|m| invalid(m, "name"))?;
    let mut settings = lib.default_settings();
    if let Some(m) = b.embedding_model {
        settings.embedding_model = m;
    }
    if let Some(c) = b.chunking {
        c.check().map_err(|m| invalid(m, "chunking"))?;
        settings.chunking = c;
    }
    settings.max_age_seconds = b.max_age_seconds;
    let wanted = settings.clone();
    let (c, created) = lib
        .create(caller.tenant.as_deref(), &b.name, settings)
        .map_err(api)?;
    if !created && c.settings() != wanted {
        return Err(OpenAiError(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "the collection \"{}\" exists with other settings; change its model with PATCH",
                b.name
            ),
        )));
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stats_json(&c))))
}

pub async fn list_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, OpenAiError> {
    let lib = library(&state)?;
    let t = caller.tenant.clone();
    let stats = tokio::task::spawn_blocking(move || lib.list(t.as_deref()))
        .await
        .map_err(|e| OpenAiError(ApiError::internal(e.to_string())))?
        .map_err(api)?;
    Ok(Json(json!({"object": "list", "data": stats})))
}

pub async fn get_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let lib = library(&state)?;
    let c = collection(&lib, &caller, &name)?;
    Ok(Json(stats_json(&c)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    embedding_model: String,
}

pub async fn patch_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, OpenAiError> {
    let (lib, c, b) = with_body::<PatchBody>(&state, &caller, &name, body).await?;
    if (lib.embedders())(&b.embedding_model).is_none() {
        return Err(invalid(
            format!(
                "\"{}\" is not a configured embeddings model",
                b.embedding_model
            ),
            "embedding_model",
        ));
    }
    let n = c
        .change_model(&b.embedding_model, lib.embedders())
        .await
        .map_err(api)?;
    let mut v = stats_json(&c);
    v["reembedded_chunks"] = json!(n);
    Ok(Json(v))
}

/// One document in a JSON ingest request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocBody {
    id: Option<String>,
    text: Option<String>,
    url: Option<String>,
    title: Option<String>,
    #[serde(default)]
    metadata: Map<String, Value>,
    /// How to read `text`: markdown (default), text or html.
    format: Option<Format>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum DocsBody {
    Many { documents: Vec<DocBody> },
    One(DocBody),
}

fn to_source(d: DocBody, param: &str) -> Result<Source, OpenAiError> {
    let body = match (d.text, d.url) {
        (Some(text), None) => {
            if d.id.is_none() {
                return Err(invalid("id is required with text", &format!("{param}.id")));
            }
            Body::Text {
                text,
                format: d.format,
            }
        }
        (None, Some(url)) => Body::Url(url),
        _ => {
            return Err(invalid(
                "exactly one of text or url is required",
                &format!("{param}.text"),
            ));
        }
    };
    Ok(Source {
        id: d.id,
        title: d.title,
        metadata: d.metadata,
        body,
    })
}

pub async fn documents_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<Value>, OpenAiError> {
    let lib = library(&state)?;
    let c = collection(&lib, &caller, &name)?;
    let is_multipart = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let sources = if is_multipart {
        multipart_sources(req, &state).await?
    } else {
        let limit = state.max_body_bytes.max(lib.max_document_bytes());
        let bytes = read_limited(req.into_body(), limit)
            .await
            .map_err(OpenAiError)?;
        match parse_json::<DocsBody>(&bytes).map_err(OpenAiError)? {
            DocsBody::One(d) => vec![to_source(d, "document")?],
            DocsBody::Many { documents } => documents
                .into_iter()
                .enumerate()
                .map(|(i, d)| to_source(d, &format!("documents[{i}]")))
                .collect::<Result<_, _>>()?,
        }
    };
    if sources.is_empty() {
        return Err(invalid("no documents in the request", "documents"));
    }
    let report = lib.ingest(&c, sources, &|_| {}).await;
    let mut v = serde_json::to_value(&report).unwrap_or_default();
    v["object"] = json!("ingest.report");
    v["collection"] = json!(name);
    Ok(Json(v))
}

async fn multipart_sources(req: Request, state: &AppState) -> Result<Vec<Source>, OpenAiError> {
    let mut mp = Multipart::from_request(req, state)
        .await
        .map_err(|e| invalid(format!("multipart body: {e}"), "file"))?;
    let mut files = Vec::new();
    let mut metadata = Map::new();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| invalid(format!("multipart body: {e}"), "file"))?
    {
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name == "metadata" {
            let text = field
                .text()
                .await
                .map_err(|e| invalid(format!("metadata: {e}"), "metadata"))?;
            metadata = match serde_json::from_str(&text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(invalid("metadata must be a JSON object", "metadata")),
            };
            continue;
        }
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| invalid(format!("{file_name}: {e}"), "file"))?;
        files.push((file_name, content_type, bytes.to_vec()));
    }
    Ok(files
        .into_iter()
        .map(|(name, content_type, bytes)| Source {
            id: Some(name.clone()),
            title: None,
            metadata: metadata.clone(),
            body: Body::File {
                name,
                content_type,
                bytes,
            },
        })
        .collect())
}

pub async fn delete_document_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Value>, OpenAiError> {
    let lib = library(&state)?;
    let c = collection(&lib, &caller, &name)?;
    if c.delete(&id).await.map_err(api)? {
        Ok(Json(
            json!({"object": "document", "id": id, "deleted": true}),
        ))
    } else {
        Err(OpenAiError(ApiError::new(
            ErrorCode::NotFound,
            format!("no document \"{id}\" in the collection \"{name}\""),
        )))
    }
}

pub async fn search_handler(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: axum::body::Body,
) -> Result<Json<Value>, OpenAiError> {
    let (lib, c, q) = with_body::<SearchQuery>(&state, &caller, &name, body).await?;
    if let Err(m) = q.check() {
        let param = m.split([' ', ':']).next().unwrap_or("query").to_owned();
        return Err(invalid(m, &param));
    }
    let hits = c.search(&q, lib.embedders()).await.map_err(api)?;
    Ok(Json(json!({
        "object": "list",
        "collection": name,
        "mode": q.mode,
        "data": hits,
    })))
}
