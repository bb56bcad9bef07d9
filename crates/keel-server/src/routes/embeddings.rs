//! `POST /v1/embeddings`: float or base64 (`encoding_format`) vectors.

use super::{accept, served_headers};
use crate::auth::Caller;
use crate::error::OpenAiError;
use crate::request_id::RequestId;
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use keel_types::openai::{EmbeddingRequest, EmbeddingVector, EncodingFormat};

pub async fn embeddings_handler(
    State(state): State<AppState>,
    Extension(request_id): Extension<RequestId>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let (ctx, req) =
        match accept::<EmbeddingRequest>(&state, &request_id, &caller, "embeddings", body).await {
            Ok(v) => v,
            Err(e) => return OpenAiError(e).into_response(),
        };
    let format = req.encoding_format.unwrap_or_default();
    let route = req.model.clone();
    match state.pipeline.embed(&ctx, req).await {
        Ok(mut resp) => {
            if format == EncodingFormat::Base64 {
                for item in &mut resp.data {
                    if let EmbeddingVector::Float(v) = &item.embedding {
                        item.embedding = EmbeddingVector::Base64(encode_base64(v));
                    }
                }
            }
            let model = resp.model.clone();
            let mut out = Json(resp).into_response();
            served_headers(&mut out, &route, &model);
            out
        }
        Err(e) => OpenAiError(e).into_response(),
    }
}

/// Little-endian f32 bytes, base64 — what OpenAI returns and its SDKs decode.
fn encode_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_little_endian_floats() {
        let v = [0.5f32, -1.25, 3.0];
        let b = base64::engine::general_purpose::STANDARD
            .decode(encode_base64(&v))
            .unwrap();
        let back: Vec<f32> = b
            .chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(back, v);
    }
}
