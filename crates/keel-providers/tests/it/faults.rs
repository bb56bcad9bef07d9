//! Upstream faults, against both adapters: stalls, resets, truncated and malformed streams,
//! refused connections, and the API key never leaking into errors or Debug output.

use crate::support::{KEY, KINDS, Kind, chat, drain, on_mock, provider};
use keel_providers::ProviderError;
use keel_providers::anthropic::AnthropicProvider;
use keel_providers::openai_compat::OpenAiCompatProvider;
use keel_testkit::{Behavior, MockUpstream};
use std::time::{Duration, Instant};

const SHORT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn stall_times_out_plain_and_streaming() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = provider(kind, &mock.base_url(), SHORT);
        mock.script([Behavior::Stall, Behavior::Stall]);
        let started = Instant::now();
        let e = p.chat(chat("x")).await.unwrap_err();
        assert!(
            matches!(e, ProviderError::Timeout(d) if d == SHORT),
            "{kind:?}: {e:?}"
        );
        assert!(e.retryable());
        let Err(e) = p.chat_stream(chat("x")).await else {
            panic!("{kind:?}: stream opened")
        };
        assert!(matches!(e, ProviderError::Timeout(_)), "{kind:?}: {e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{kind:?}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn delay_within_the_deadline_succeeds() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = provider(kind, &mock.base_url(), Duration::from_secs(5));
        mock.push(Behavior::Delay(Duration::from_millis(100)));
        let resp = p.chat(chat("late")).await.unwrap();
        assert_eq!(
            resp.choices[0].message.content.as_deref(),
            Some("echo: late"),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn a_silent_stream_hits_the_idle_timeout() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = provider(kind, &mock.base_url(), SHORT);
        mock.push(Behavior::SlowStream {
            per_chunk: Duration::from_secs(5),
        });
        // Headers arrive at once; the first event never does within the idle timeout.
        let stream = p.chat_stream(chat("x")).await.unwrap();
        let (chunks, error) = drain(stream).await;
        assert!(chunks.is_empty(), "{kind:?}");
        assert!(
            matches!(error, Some(ProviderError::Timeout(_))),
            "{kind:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn stream_idle_timeout_bounds_a_stall_mid_answer_independently_of_timeout() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let mut cfg = crate::support::config(&mock.base_url(), Duration::from_secs(120));
        cfg.stream_idle_timeout = Some(Duration::from_millis(200));
        let p: Box<dyn keel_providers::Provider> = match kind {
            Kind::OpenAi => Box::new(OpenAiCompatProvider::new("mock".into(), &cfg, None).unwrap()),
            Kind::Anthropic => Box::new(AnthropicProvider::new("mock".into(), &cfg, None).unwrap()),
        };
        mock.push(Behavior::StalledStream { after_chunks: 2 });
        let stream = p.chat_stream(chat("a b c d e f")).await.unwrap();
        // Without the idle limit only the 120 s attempt timeout would end this stall.
        let (chunks, error) = tokio::time::timeout(Duration::from_secs(30), drain(stream))
            .await
            .expect("the stall was not cut by stream_idle_timeout");
        assert!(
            !chunks.is_empty(),
            "{kind:?}: the events before the stall arrive"
        );
        assert!(
            matches!(error, Some(ProviderError::Timeout(_))),
            "{kind:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_but_steady_stream_completes() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = provider(kind, &mock.base_url(), SHORT);
        mock.push(Behavior::SlowStream {
            per_chunk: Duration::from_millis(50),
        });
        let (chunks, error) = drain(p.chat_stream(chat("slow one")).await.unwrap()).await;
        assert!(error.is_none(), "{kind:?}: {error:?}");
        assert_eq!(
            crate::support::assemble(&chunks).text,
            "echo: slow one",
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn reset_is_a_connect_or_stream_error() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = on_mock(kind, &mock);
        mock.script([Behavior::Reset, Behavior::Reset]);
        let e = p.chat(chat("x")).await.unwrap_err();
        assert!(
            matches!(e, ProviderError::Connect(_) | ProviderError::Stream(_)),
            "{kind:?}: {e:?}"
        );
        assert!(e.retryable());
        let Err(e) = p.chat_stream(chat("x")).await else {
            panic!("{kind:?}: stream opened")
        };
        assert!(
            matches!(e, ProviderError::Connect(_) | ProviderError::Stream(_)),
            "{kind:?}: {e:?}"
        );
        // The reset consumed exactly its own requests; the next one is answered.
        assert!(p.chat(chat("again")).await.is_ok(), "{kind:?}");
        assert_eq!(mock.request_count(), 3, "{kind:?}");
    }
}

#[tokio::test]
async fn truncated_streams_end_with_an_error_item() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = on_mock(kind, &mock);
        mock.push(Behavior::TruncatedStream { after_chunks: 3 });
        let (chunks, error) = drain(p.chat_stream(chat("hello there world")).await.unwrap()).await;
        assert!(!chunks.is_empty(), "{kind:?}");
        assert!(
            matches!(error, Some(ProviderError::Stream(_))),
            "{kind:?}: {error:?}"
        );
        assert!(error.unwrap().retryable());
    }
}

#[tokio::test]
async fn malformed_streams_end_with_an_error_item() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = on_mock(kind, &mock);
        mock.push(Behavior::MalformedStream);
        let (_, error) = drain(p.chat_stream(chat("x")).await.unwrap()).await;
        assert!(
            matches!(error, Some(ProviderError::InvalidResponse(_))),
            "{kind:?}: {error:?}"
        );
    }
}

#[tokio::test]
async fn broken_plain_bodies_are_invalid_responses() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = on_mock(kind, &mock);
        mock.script([
            Behavior::TruncatedStream { after_chunks: 1 },
            Behavior::MalformedStream,
        ]);
        for _ in 0..2 {
            let e = p.chat(chat("x")).await.unwrap_err();
            assert!(
                matches!(e, ProviderError::InvalidResponse(_)),
                "{kind:?}: {e:?}"
            );
        }
    }
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    // Bind then drop a listener: its port now refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for kind in KINDS {
        let p = provider(kind, &format!("http://127.0.0.1:{port}/v1"), SHORT);
        let e = p.chat(chat("x")).await.unwrap_err();
        assert!(
            matches!(&e, ProviderError::Connect(m) if !m.contains("127.0.0.1")),
            "{kind:?}: {e:?}"
        );
        let Err(e) = p.chat_stream(chat("x")).await else {
            panic!("stream opened")
        };
        assert!(matches!(e, ProviderError::Connect(_)), "{kind:?}: {e:?}");
    }
}

#[tokio::test]
async fn the_key_never_leaks_into_errors_or_debug() {
    for kind in KINDS {
        let mock = MockUpstream::start().await;
        let p = on_mock(kind, &mock);
        // An upstream that echoes the key back in its error message.
        let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
        mock.script([
            Behavior::Status {
                code: 401,
                body: Some(body),
                retry_after: None,
            },
            Behavior::Reset,
            Behavior::TruncatedStream { after_chunks: 2 },
        ]);
        let mut errors = vec![
            p.chat(chat("x")).await.unwrap_err(),
            p.chat(chat("x")).await.unwrap_err(),
        ];
        errors.extend(drain(p.chat_stream(chat("x")).await.unwrap()).await.1);
        assert_eq!(errors.len(), 3, "{kind:?}");
        assert!(
            errors[0]
                .to_string()
                .contains("Incorrect API key provided: <redacted>"),
            "{kind:?}"
        );
        for e in &errors {
            for text in [
                e.to_string(),
                format!("{e:?}"),
                e.to_api_error("mock/m").message,
            ] {
                assert!(!text.contains(KEY), "{kind:?}: key leaked in {text}");
            }
        }
        let debug = crate::support::debug_of(kind, &mock.base_url());
        assert!(!debug.contains(KEY), "{kind:?}: key leaked in {debug}");
        // ...while the upstream did receive it.
        let seen = mock.requests();
        let header = match kind {
            Kind::OpenAi => "authorization",
            Kind::Anthropic => "x-api-key",
        };
        assert!(
            seen.iter()
                .all(|r| r.header(header).is_some_and(|v| v.ends_with(KEY))),
            "{kind:?}"
        );
    }
}
