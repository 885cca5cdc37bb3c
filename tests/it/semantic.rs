//! The Rust sentence encoder against the numpy reference it reimplements.
//!
//! The model is not committed: run `scripts/fetch-model`. Without it these
//! tests skip, unless `CI` or `KEFU_REQUIRE_MODEL` is set, where they fail.
//! The fixtures come from `scripts/reference-vectors.py`.

use std::path::Path;
use std::sync::OnceLock;

use kefu::semantic::{default_model_dir, Encoder, MAX_TOKENS};
use serde_json::Value;

/// The encoder, loaded once for the whole test binary; `None` means skip.
fn encoder() -> Option<&'static Encoder> {
    static ENCODER: OnceLock<Option<Encoder>> = OnceLock::new();
    ENCODER
        .get_or_init(|| {
            let dir = default_model_dir();
            let present = dir.join("weights.npz").is_file() && dir.join("sp.model").is_file();
            let required = std::env::var_os("CI").is_some() || std::env::var_os("KEFU_REQUIRE_MODEL").is_some();
            if !present {
                assert!(!required, "model not found in {}: run scripts/fetch-model", dir.display());
                eprintln!("skipping semantic tests: no model in {} (run scripts/fetch-model)", dir.display());
                return None;
            }
            match Encoder::load(&dir) {
                Ok(encoder) => Some(encoder),
                Err(e) => panic!("{e}"),
            }
        })
        .as_ref()
}

/// Lines of a JSONL fixture under `tests/fixtures/semantic`.
fn fixture(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/semantic").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    text.lines().map(|line| serde_json::from_str(line).expect("JSON line")).collect()
}

fn text_of(line: &Value) -> &str {
    line["text"].as_str().expect("text")
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn vectors_match_the_numpy_reference() {
    let Some(encoder) = encoder() else { return };
    let lines = fixture("reference.jsonl");
    assert!(lines.len() >= 220);
    let mut worst = (f64::INFINITY, String::new());
    for line in &lines {
        let text = text_of(line);
        let want: Vec<f32> =
            line["vector"].as_array().expect("vector").iter().map(|v| v.as_f64().expect("number") as f32).collect();
        let got = encoder.encode(text);
        assert_eq!(got.len(), encoder.dim());
        let c = cosine(&got, &want);
        if c < worst.0 {
            worst = (c, text.to_string());
        }
    }
    eprintln!(
        "min cosine vs reference over {} texts: {:.9} (1 - cos = {:.1e}, {:?})",
        lines.len(),
        worst.0,
        1.0 - worst.0,
        worst.1
    );
    assert!(worst.0 >= 0.999, "cosine {} for {:?}", worst.0, worst.1);
}

#[test]
fn outputs_are_unit_length() {
    let Some(encoder) = encoder() else { return };
    for text in ["退款", "", "When will my order ship?"] {
        let v = encoder.encode(text);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
    }
}

#[test]
fn token_ids_match_the_reference_tokenizer() {
    let Some(encoder) = encoder() else { return };
    for line in fixture("tokens.jsonl") {
        let text = text_of(&line);
        let want: Vec<u32> =
            line["ids"].as_array().expect("ids").iter().map(|v| v.as_u64().expect("id") as u32).collect();
        assert_eq!(encoder.token_ids(text), want, "{text:?}");
    }
}

#[test]
fn batch_encoding_equals_one_by_one() {
    let Some(encoder) = encoder() else { return };
    let lines = fixture("reference.jsonl");
    let texts: Vec<&str> = lines.iter().map(text_of).collect();
    let batch = encoder.encode_batch(&texts);
    assert_eq!(batch.len(), texts.len());
    for (text, vector) in texts.iter().zip(&batch) {
        let c = cosine(vector, &encoder.encode(text));
        assert!(c > 0.99999, "{text:?}: {c}");
    }
    assert!(encoder.encode_batch(&[]).is_empty());
}

/// The server batches the queries that arrive together; each must get the
/// vector it gets alone, exactly, or rankings would depend on the load.
#[test]
fn batches_encode_like_single_queries() {
    let Some(encoder) = encoder() else { return };
    let lines = fixture("reference.jsonl");
    let texts: Vec<&str> = lines.iter().map(text_of).collect();
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| encoder.encode(t)).collect();
    for size in [2, 3, 7, 32] {
        for (group, want) in texts.chunks(size).zip(alone.chunks(size)) {
            assert_eq!(&encoder.encode_batch(group), want, "batches of {size}: {group:?}");
        }
    }
}

#[test]
fn very_long_input_is_truncated_not_slow() {
    let Some(encoder) = encoder() else { return };
    let long = "请问这件衣服什么时候发货，我很着急。".repeat(5_000);
    let ids = encoder.token_ids(&long);
    assert_eq!(ids.len(), MAX_TOKENS);
    assert_eq!(ids.last(), Some(&2));
    let v = encoder.encode(&long);
    assert!(v.iter().all(|x| x.is_finite()));
}

#[test]
fn similar_questions_are_closer_than_unrelated_ones() {
    let Some(encoder) = encoder() else { return };
    let refund = encoder.encode("怎么申请退款");
    let refund2 = encoder.encode("我想退钱，在哪里申请");
    let size = encoder.encode("身高170穿什么尺码");
    assert!(cosine(&refund, &refund2) > cosine(&refund, &size));
}

#[test]
fn broken_model_files_are_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    // No files at all: the tokenizer is read first.
    let err = Encoder::load(dir.path()).err().expect("error").to_string();
    assert!(err.contains("sp.model"), "{err}");
    // A valid tokenizer but a weights file that is not a zip.
    let Some(_) = encoder() else { return };
    std::fs::copy(default_model_dir().join("sp.model"), dir.path().join("sp.model")).expect("copy");
    std::fs::write(dir.path().join("weights.npz"), b"not a zip").expect("write");
    let err = Encoder::load(dir.path()).err().expect("error").to_string();
    assert!(err.contains("weights.npz"), "{err}");
}
