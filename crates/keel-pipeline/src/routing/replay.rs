//! A complete answer replayed as a chat stream: what a cascade sends a streaming client when
//! a buffered (cheaper) answer was trusted. Same chunk shapes as an upstream stream: a role
//! and content delta per choice, tool call deltas, the finish reason, then the usage chunk.

use keel_providers::ChunkStream;
use keel_types::openai::{
    ChatCompletionChunk, ChatCompletionResponse, Delta, FunctionCallDelta, ToolCallDelta,
};

/// The first chunk and the rest of the stream for `resp`.
pub fn stream(resp: ChatCompletionResponse) -> (ChatCompletionChunk, ChunkStream) {
    let mut chunks = Vec::new();
    let piece = |index: u32, delta: Delta, finish| {
        let mut c = ChatCompletionChunk::delta(&resp.id, resp.created, &resp.model, delta, finish);
        if let Some(choice) = c.choices.first_mut() {
            choice.index = index;
        }
        c
    };
    for choice in &resp.choices {
        let m = &choice.message;
        chunks.push(piece(
            choice.index,
            Delta {
                role: Some("assistant".into()),
                content: Some(m.content.clone().unwrap_or_default()),
                tool_calls: None,
            },
            None,
        ));
        if let Some(calls) = &m.tool_calls {
            let deltas = (0u32..)
                .zip(calls)
                .map(|(i, call)| ToolCallDelta {
                    index: i,
                    id: Some(call.id.clone()),
                    kind: Some(call.kind.clone()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                })
                .collect();
            chunks.push(piece(
                choice.index,
                Delta {
                    tool_calls: Some(deltas),
                    ..Delta::default()
                },
                None,
            ));
        }
        chunks.push(piece(choice.index, Delta::default(), choice.finish_reason));
    }
    if let Some(usage) = resp.usage {
        chunks.push(ChatCompletionChunk::usage_only(
            &resp.id,
            resp.created,
            &resp.model,
            usage,
        ));
    }
    let mut chunks = chunks.into_iter();
    let first = chunks.next().unwrap_or_else(|| {
        ChatCompletionChunk::delta(&resp.id, resp.created, &resp.model, Delta::default(), None)
    });
    let rest: ChunkStream = Box::pin(futures::stream::iter(chunks.map(Ok)));
    (first, rest)
}
