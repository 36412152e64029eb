//! The world's tokenizer (assets/model/tokenizer.json): digits are single tokens, special ids
//! are fixed, and decoding ids gives the original text back.

use std::path::Path;

use draftscope::model::tokenizer::TextCodec;
use draftscope::world::{self, World, tokenizer};

fn assets() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/assets"))
}

fn shipped() -> tokenizers::Tokenizer {
    tokenizers::Tokenizer::from_file(assets().join("model/tokenizer.json")).unwrap()
}

#[test]
fn special_token_ids_are_fixed() {
    let ids = tokenizer::SpecialIds::of(&shipped()).unwrap();
    assert_eq!((ids.eos, ids.mask, ids.bos, ids.pad, ids.human, ids.assistant), (0, 1, 2, 3, 4, 5));
    assert!(ids.vocab_size > 300 && ids.vocab_size <= tokenizer::MAX_VOCAB, "vocab {}", ids.vocab_size);
}

#[test]
fn every_digit_is_its_own_token() {
    let tok = shipped();
    let enc = tok.encode("47+38=1085. Answer: 1085", false).unwrap();
    let toks: Vec<&str> = enc.get_tokens().iter().map(String::as_str).collect();
    assert_eq!(
        toks,
        ["4", "7", "+", "3", "8", "=", "1", "0", "8", "5", ".", "ĠAnswer", ":", "Ġ", "1", "0", "8", "5"]
    );
}

#[test]
fn role_tags_are_single_tokens() {
    let tok = shipped();
    let enc = tok.encode("<role>HUMAN</role>Who founded Valia?<role>ASSISTANT</role>", false).unwrap();
    assert_eq!(enc.get_ids()[0], 4);
    assert_eq!(*enc.get_ids().last().unwrap(), 5);
}

#[test]
fn decoding_training_text_gives_it_back() {
    let codec = TextCodec::load(&assets().join("model")).unwrap();
    for doc in World::default().training_docs(300, 7) {
        let text = doc.text();
        let ids = codec.encode(&text).unwrap();
        assert_eq!(codec.decode(&ids), text);
    }
}

#[test]
fn token_texts_concatenate_to_the_text() {
    let codec = TextCodec::load(&assets().join("model")).unwrap();
    let text = "Mia has 47 apples and gets 38 more.";
    let ids = codec.encode(text).unwrap();
    let joined: String = ids.iter().map(|&i| codec.token_text(i)).collect();
    assert_eq!(joined, text);
}

#[test]
fn world_words_stay_whole() {
    let tok = shipped();
    let world = World::default();
    for c in &world.countries {
        for name in [&c.name, &c.capital] {
            let enc = tok.encode(format!("Who founded {name}?"), false).unwrap();
            assert_eq!(enc.get_tokens()[2], format!("Ġ{name}"), "{name} split: {:?}", enc.get_tokens());
            let enc = tok.encode(name.as_str(), false).unwrap();
            assert_eq!(enc.get_ids().len(), 1, "bare {name} split: {:?}", enc.get_tokens());
        }
    }
}

#[test]
fn chat_template_renders_the_training_layout() {
    let codec = TextCodec::load(&assets().join("model")).unwrap();
    let rendered = codec.chat_prompt("Who founded Valia?").unwrap();
    assert_eq!(rendered, format!("{}Who founded Valia?{}", world::HUMAN_TAG, world::ASSISTANT_TAG));
}

#[test]
fn shipped_files_match_a_fresh_regeneration() {
    let w = World::default();
    let tok = tokenizer::train(&w).unwrap();
    let shipped = std::fs::read_to_string(assets().join("model/tokenizer.json")).unwrap();
    assert_eq!(tokenizer::tokenizer_json(&tok).unwrap(), shipped, "run `draftscope world` to regenerate");
    let cfg = std::fs::read_to_string(assets().join("model/tokenizer_config.json")).unwrap();
    assert_eq!(tokenizer::tokenizer_config_json(), cfg);
}
