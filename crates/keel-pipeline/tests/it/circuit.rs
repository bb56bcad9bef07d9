//! Circuit breakers per model (scenario S15): a flapping primary is skipped while its circuit
//! is open, probed after the cooldown and used again once healthy; when every candidate's
//! circuit is open, keel tries them anyway rather than fail without trying.

use crate::support::{Harness, chat, models, outcomes};
use futures::StreamExt;
use keel_testkit::Behavior;
use std::time::Duration;

#[tokio::test]
async fn s15_a_flapping_primary_is_skipped_while_open_probed_and_used_again() {
    let mut h = Harness::start().await;
    h.primary.script((0..4).map(|_| Behavior::status(503)));
    let mut failed_over = Vec::new();
    for _ in 0..4 {
        let ctx = h.ctx(Duration::from_secs(10));
        let resp = h.pipeline.chat(&ctx, chat("chain", false)).await.unwrap();
        assert_eq!(resp.model, "b");
        failed_over.push(ctx.request_id);
    }
    assert_eq!(h.primary.request_count(), 4);
    assert_eq!(h.secondary.request_count(), 4);

    // Open: the primary is not asked at all.
    let mut skipped = Vec::new();
    for _ in 0..3 {
        let ctx = h.ctx(Duration::from_secs(10));
        let resp = h.pipeline.chat(&ctx, chat("chain", false)).await.unwrap();
        assert_eq!(resp.model, "b");
        skipped.push(ctx.request_id);
    }
    assert_eq!(
        h.primary.request_count(),
        4,
        "no request reaches an open primary"
    );
    assert_eq!(h.secondary.request_count(), 7);

    // After the cooldown one probe reaches the (now healthy) primary and closes the circuit.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let probe = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&probe, chat("chain", false)).await.unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 5);
    for _ in 0..3 {
        let ctx = h.ctx(Duration::from_secs(10));
        let resp = h.pipeline.chat(&ctx, chat("chain", false)).await.unwrap();
        assert_eq!(resp.model, "a", "closed again: the primary serves");
    }
    assert_eq!(h.primary.request_count(), 8);
    assert_eq!(h.secondary.request_count(), 7);

    let rec = h.record(&failed_over[3]).await;
    assert_eq!(outcomes(&rec), ["status_503", "ok"]);
    assert_eq!(models(&rec), ["a", "b"]);
    for id in &skipped {
        let rec = h.record(id).await;
        assert_eq!(models(&rec), ["b"], "a skipped candidate records nothing");
        assert_eq!(outcomes(&rec), ["ok"]);
    }
    let rec = h.record(&probe.request_id).await;
    assert_eq!(models(&rec), ["a"]);
    assert_eq!(outcomes(&rec), ["ok"]);
}

#[tokio::test]
async fn client_errors_do_not_open_the_circuit() {
    let h = Harness::start().await;
    h.primary.script((0..6).map(|_| Behavior::status(400)));
    for _ in 0..6 {
        let ctx = h.ctx(Duration::from_secs(10));
        let err = h
            .pipeline
            .chat(&ctx, chat("chain", false))
            .await
            .unwrap_err();
        assert_eq!(err.code.http_status(), 400);
    }
    let ctx = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ctx, chat("chain", false)).await.unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 7);
    assert_eq!(h.secondary.request_count(), 0);
}

#[tokio::test]
async fn when_every_circuit_is_open_the_candidates_are_tried_anyway() {
    let mut h = Harness::start().await;
    h.primary.script((0..5).map(|_| Behavior::status(503)));
    h.secondary.script((0..5).map(|_| Behavior::status(503)));
    for _ in 0..4 {
        let ctx = h.ctx(Duration::from_secs(10));
        let err = h
            .pipeline
            .chat(&ctx, chat("chain", false))
            .await
            .unwrap_err();
        assert_eq!(err.code.http_status(), 502);
    }
    assert_eq!(h.primary.request_count(), 4);
    assert_eq!(h.secondary.request_count(), 4);

    // Both open: still tried, in order, and the error names both upstreams.
    let ctx = h.ctx(Duration::from_secs(10));
    let err = h
        .pipeline
        .chat(&ctx, chat("chain", false))
        .await
        .unwrap_err();
    assert_eq!(err.code.http_status(), 502);
    assert!(err.message.contains("primary/model-a"), "{}", err.message);
    assert!(err.message.contains("secondary/model-b"), "{}", err.message);
    assert_eq!(h.primary.request_count(), 5);
    assert_eq!(h.secondary.request_count(), 5);

    // Both still open; the primary answers again.
    let ok = h.ctx(Duration::from_secs(10));
    let resp = h.pipeline.chat(&ok, chat("chain", false)).await.unwrap();
    assert_eq!(resp.model, "a");
    assert_eq!(h.primary.request_count(), 6);
    assert_eq!(h.secondary.request_count(), 5);

    let rec = h.record(&ctx.request_id).await;
    assert_eq!(models(&rec), ["a", "b"]);
    assert_eq!(outcomes(&rec), ["status_503", "status_503"]);
    let rec = h.record(&ok.request_id).await;
    assert_eq!(models(&rec), ["a"]);
}

/// A model whose streams break after their first chunk is unhealthy too: each broken stream
/// counts as a failure for its circuit (after the success its first chunk counted), so a
/// model that keeps cutting answers is skipped like one that keeps failing calls.
#[tokio::test]
async fn streams_cut_mid_answer_open_the_circuit_of_their_model() {
    let h = Harness::start().await;
    h.primary
        .script((0..2).map(|_| Behavior::TruncatedStream { after_chunks: 2 }));
    for _ in 0..2 {
        let ctx = h.ctx(Duration::from_secs(10));
        let s = h
            .pipeline
            .chat_stream(&ctx, chat("chain", true))
            .await
            .unwrap();
        assert_eq!(s.model, "a");
        let items: Vec<_> = s.stream.collect().await;
        assert!(items.last().unwrap().is_err(), "the cut is reported");
    }
    // Four outcomes in the window, two of them failures: open. The next stream goes to b.
    let ctx = h.ctx(Duration::from_secs(10));
    let s = h
        .pipeline
        .chat_stream(&ctx, chat("chain", true))
        .await
        .unwrap();
    assert_eq!(s.model, "b");
    let items: Vec<_> = s.stream.collect().await;
    assert!(items.iter().all(Result::is_ok));
    assert_eq!(
        h.primary.request_count(),
        2,
        "the open primary is not asked"
    );
}
