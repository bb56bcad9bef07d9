//! `ensure_models`: paths, marker idempotence and speed when present.

use std::time::Instant;

#[test]
fn ensure_models_is_idempotent_and_fast_when_present() {
    let paths = crate::models();
    assert!(paths.chat_gguf.is_file());
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "LICENSE",
        "NOTICE",
        "1_Pooling/config.json",
    ] {
        assert!(paths.embeddings_dir.join(f).is_file(), "missing {f}");
    }
    let cache = keel_local::default_cache_dir().unwrap();
    assert!(paths.chat_gguf.starts_with(cache.join("models")));
    assert_eq!(paths.chat_gguf, keel_local::fetch::chat_model_path(&cache));
    assert_eq!(
        paths.embeddings_dir,
        keel_local::fetch::embeddings_dir(&cache)
    );

    let started = Instant::now();
    let again = keel_local::ensure_models(&cache).unwrap();
    assert_eq!(&again, paths);
    assert!(
        started.elapsed().as_millis() < 200,
        "took {:?}",
        started.elapsed()
    );
}
