//! SmolLM2 chat: determinism, usage, stops, limits, queueing, fairness, cancellation.

use keel_local::{ChatEngine, ChatEngineOptions, GenerateEvent, GenerateRequest, LocalError};
use keel_types::openai::{ChatMessage, FinishReason, Role};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;

fn ask(question: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        messages: vec![ChatMessage::text(Role::User, question)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..Default::default()
    }
}

struct Outcome {
    text: String,
    finish: FinishReason,
    prompt_tokens: u32,
    completion_tokens: u32,
}

async fn collect(mut rx: Receiver<GenerateEvent>) -> Outcome {
    let mut text = String::new();
    let mut started = None;
    while let Some(ev) = rx.recv().await {
        match ev {
            GenerateEvent::Started { prompt_tokens } => started = Some(prompt_tokens),
            GenerateEvent::Delta(d) => {
                assert!(started.is_some(), "delta before Started");
                assert!(!d.is_empty());
                text.push_str(&d);
            }
            GenerateEvent::Done {
                finish,
                prompt_tokens,
                completion_tokens,
            } => {
                assert_eq!(Some(prompt_tokens), started);
                assert!(rx.recv().await.is_none(), "events after Done");
                return Outcome {
                    text,
                    finish,
                    prompt_tokens,
                    completion_tokens,
                };
            }
            GenerateEvent::Failed(e) => panic!("generation failed: {e}"),
        }
    }
    panic!("stream ended without Done");
}

async fn run(engine: &ChatEngine, req: GenerateRequest) -> Outcome {
    collect(engine.generate(req).unwrap()).await
}

fn private_engine(max_active: usize, queue_capacity: usize) -> ChatEngine {
    ChatEngine::load(
        &crate::models().chat_gguf,
        ChatEngineOptions {
            max_active,
            queue_capacity,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn greedy_answer_is_deterministic_and_usage_matches_tokenizer() {
    let engine = crate::chat_engine();
    assert_eq!(engine.context_window(), 4096);
    let req = ask("What is 2+2?", 24);
    let a = run(&engine, req.clone()).await;
    let b = run(&engine, req.clone()).await;
    assert!(!a.text.trim().is_empty());
    assert_eq!(a.text, b.text);
    assert_eq!(a.completion_tokens, b.completion_tokens);
    assert!(a.text.contains('4'), "{:?}", a.text);

    let prompt = engine.render_prompt(&req.messages).unwrap();
    assert!(
        prompt.starts_with("<|im_start|>system\n") && prompt.ends_with("<|im_start|>assistant\n"),
        "{prompt:?}"
    );
    assert_eq!(a.prompt_tokens as usize, engine.count_tokens(&prompt));
    assert!(a.completion_tokens >= 1 && a.completion_tokens <= 24);
    // Re-encoding the answer gives (nearly) the number of tokens generated.
    let recount = engine.count_tokens(&a.text) as i64;
    assert!(
        (recount - i64::from(a.completion_tokens)).abs() <= 2,
        "{recount} vs {}",
        a.completion_tokens
    );
}

#[tokio::test]
async fn seeded_sampling_is_reproducible() {
    let engine = crate::chat_engine();
    let req = GenerateRequest {
        messages: vec![ChatMessage::text(
            Role::User,
            "Tell me something about cats.",
        )],
        max_tokens: Some(16),
        temperature: Some(0.9),
        top_p: Some(0.95),
        seed: Some(1234),
        ..Default::default()
    };
    let a = run(&engine, req.clone()).await;
    let b = run(&engine, req).await;
    assert!(!a.text.is_empty());
    assert_eq!(a.text, b.text);
}

#[tokio::test]
async fn stop_string_truncates_and_is_not_emitted() {
    let engine = crate::chat_engine();
    let req = ask("Name three colors of the rainbow.", 30);
    let full = run(&engine, req.clone()).await;
    // Pick a stop string from the middle of the greedy answer.
    let words: Vec<&str> = full.text.split_whitespace().collect();
    assert!(words.len() >= 4, "{:?}", full.text);
    let stop = words[words.len() / 2].to_string();
    let expected = &full.text[..full.text.find(&stop).unwrap()];

    let cut = run(
        &engine,
        GenerateRequest {
            stop: vec![stop.clone(), "\u{0}never".into()],
            ..req
        },
    )
    .await;
    assert_eq!(cut.finish, FinishReason::Stop);
    assert_eq!(cut.text, expected, "stop {stop:?}");
    assert!(!cut.text.contains(&stop));
    assert!(cut.completion_tokens < full.completion_tokens);
}

#[tokio::test]
async fn max_tokens_gives_finish_length() {
    let engine = crate::chat_engine();
    let out = run(
        &engine,
        ask("Write a long story about a dragon who learns to fly.", 5),
    )
    .await;
    assert_eq!(out.finish, FinishReason::Length);
    assert_eq!(out.completion_tokens, 5);
    assert!(!out.text.is_empty());
}

#[tokio::test]
async fn prompt_longer_than_context_is_rejected_synchronously() {
    let engine = crate::chat_engine();
    let before = engine.stats();
    let err = engine.generate(ask(&"hello ".repeat(5000), 5)).unwrap_err();
    match err {
        LocalError::ContextLength {
            prompt_tokens,
            context_window,
        } => {
            assert_eq!(context_window, 4096);
            assert!(prompt_tokens > 4096);
        }
        other => panic!("expected ContextLength, got {other:?}"),
    }
    assert_eq!(engine.stats().admitted, before.admitted);
}

#[tokio::test]
async fn invalid_parameters_are_rejected() {
    let engine = crate::chat_engine();
    let bad_temp = GenerateRequest {
        temperature: Some(3.0),
        ..ask("hi", 5)
    };
    assert!(matches!(
        engine.generate(bad_temp),
        Err(LocalError::InvalidRequest(_))
    ));
    assert!(matches!(
        engine.generate(ask("hi", 0)),
        Err(LocalError::InvalidRequest(_))
    ));
    let empty = GenerateRequest {
        messages: vec![],
        ..ask("hi", 5)
    };
    assert!(matches!(
        engine.generate(empty),
        Err(LocalError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn queue_full_when_capacity_is_exceeded() {
    let engine = private_engine(1, 1);
    let mut accepted = Vec::new();
    let mut full = 0;
    for _ in 0..5 {
        match engine.generate(ask("Count to ten.", 4)) {
            Ok(rx) => accepted.push(rx),
            Err(LocalError::QueueFull { capacity: 1 }) => full += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert!(full >= 2, "accepted {} full {full}", accepted.len());
    assert!(!accepted.is_empty());
    for rx in accepted {
        let out = collect(rx).await;
        assert!(out.completion_tokens <= 4);
    }
    assert_eq!(engine.stats().rejected, full);
}

#[tokio::test]
async fn concurrent_generations_interleave() {
    let engine = private_engine(2, 4);
    let story = "Write a long story about a lighthouse keeper.";
    let mut first = engine.generate(ask(story, 32)).unwrap();
    // Wait until the first request is decoding.
    loop {
        match first.recv().await.unwrap() {
            GenerateEvent::Delta(_) => break,
            GenerateEvent::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut second = engine
        .generate(ask("Write a poem about the sea.", 32))
        .unwrap();
    let second_first_delta = loop {
        match second.recv().await.unwrap() {
            GenerateEvent::Delta(_) => break Some(Instant::now()),
            GenerateEvent::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    let mut first_done = None;
    let mut first_tokens = 0;
    while let Some(ev) = first.recv().await {
        if let GenerateEvent::Done {
            completion_tokens, ..
        } = ev
        {
            first_done = Some(Instant::now());
            first_tokens = completion_tokens;
        }
    }
    let (second_first, first_done) = (second_first_delta.unwrap(), first_done.unwrap());
    assert!(
        first_tokens > 8,
        "first request too short to show interleaving: {first_tokens}"
    );
    assert!(
        second_first < first_done,
        "second request waited for the first to finish"
    );
    let mut second_done = false;
    while let Some(ev) = second.recv().await {
        if let GenerateEvent::Done {
            completion_tokens, ..
        } = ev
        {
            assert!(completion_tokens > 0);
            second_done = true;
        }
    }
    assert!(second_done);
}

#[tokio::test]
async fn dropping_the_receiver_frees_the_slot() {
    let engine = private_engine(1, 4);
    let mut long = engine
        .generate(ask(
            "Write a very long essay about the history of Rome.",
            2000,
        ))
        .unwrap();
    loop {
        if let GenerateEvent::Delta(_) = long.recv().await.unwrap() {
            break;
        }
    }
    drop(long);
    let started = Instant::now();
    let short = tokio::time::timeout(Duration::from_secs(20), run(&engine, ask("Say hi.", 3)))
        .await
        .unwrap();
    assert!(short.completion_tokens <= 3);
    // Far less than the 2000 tokens the dropped request would have taken.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stats = engine.stats();
    assert_eq!(stats.cancelled, 1, "{stats:?}");
    assert!(stats.completion_tokens < 200, "{stats:?}");
}

#[tokio::test]
async fn shutdown_fails_in_flight_and_later_requests() {
    let engine = private_engine(1, 4);
    let mut rx = engine
        .generate(ask("Write a long story about a dragon.", 500))
        .unwrap();
    assert!(matches!(
        rx.recv().await,
        Some(GenerateEvent::Started { .. })
    ));
    engine.shutdown();
    let mut failed = false;
    while let Some(ev) = rx.recv().await {
        if let GenerateEvent::Failed(LocalError::EngineStopped) = ev {
            failed = true;
        }
    }
    assert!(failed);
    assert!(matches!(
        engine.generate(ask("hi", 3)),
        Err(LocalError::EngineStopped)
    ));
}

/// Throughput numbers for the report (run with `--nocapture`).
#[tokio::test]
async fn measure_prefill_and_decode_rates() {
    let engine = private_engine(1, 4);
    let context = "The lighthouse stood on a rocky island far from the coast. ".repeat(20);
    let req = GenerateRequest {
        messages: vec![ChatMessage::text(
            Role::User,
            format!("{context}\nSummarise the text above."),
        )],
        max_tokens: Some(32),
        temperature: Some(0.0),
        ..Default::default()
    };
    let out = run(&engine, req).await;
    let s = engine.stats();
    let prefill = s.prefill_tokens as f64 / (s.prefill_micros as f64 / 1e6);
    let decode = s.decode_steps as f64 / (s.decode_micros as f64 / 1e6);
    println!(
        "chat: prompt {} tokens, prefill {prefill:.0} tok/s; {} tokens generated, decode {decode:.1} tok/s",
        out.prompt_tokens, out.completion_tokens
    );
    assert!(s.prefill_tokens >= 200 && s.decode_steps > 0);
}
