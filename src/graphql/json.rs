//! A response's JSON, written straight from async-graphql's values.
//!
//! A dashboard answer is some 400 KB of JSON made of ~15,000 small values. serde's generic path
//! (`serde_json::to_vec(&response)`) goes through `collect_map` and `collect_seq` for every
//! object and list and escapes every string one byte at a time; this writer walks the value tree
//! itself and copies a string's clean runs eight bytes at a time. Its output is byte for byte
//! `serde_json::to_vec`'s (the tests compare them; objects given as text by [`text`] aside), so
//! an `ETag`, a cached body or a live query's fingerprint does not depend on which of the two
//! wrote it. Extensions and errors, small and rare, still go through serde.

use async_graphql::{Response, Value};

/// `serde_json::to_vec(response)`, faster.
pub fn response(response: &Response) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"{\"data\":");
    write_value(&mut out, &response.data);
    if !response.extensions.is_empty() {
        out.extend_from_slice(b",\"extensions\":");
        // Writing into a `Vec` cannot fail, nor can serializing string-keyed values.
        let _ = serde_json::to_writer(&mut out, &response.extensions);
    }
    if !response.errors.is_empty() {
        out.extend_from_slice(b",\"errors\":");
        let _ = serde_json::to_writer(&mut out, &response.errors);
    }
    out.push(b'}');
    out
}

/// `serde_json::to_string(value)`, faster.
pub fn value(value: &Value) -> String {
    let mut out = Vec::with_capacity(4096);
    write_value(&mut out, value);
    // Only whole UTF-8 strings and ASCII were written.
    String::from_utf8(out).unwrap_or_default()
}

/// An object given as its JSON text (`json`: one whole JSON object, UTF-8), which this module's
/// writer copies where the object stands. Nothing else writes it as JSON: only values answered
/// to [`response`] may hold one (`crate::graphql::serial::JsonText`).
///
/// It travels as `Value::Binary`, which costs no map, no hashed key and no UTF-8 check per
/// object. No value of the schema is bytes otherwise: its only scalars beside the built-in ones
/// are `DateTime` (a string) and `JSON` (made from `serde_json` values, which have no bytes), as
/// `the_schema_serves_no_bytes` checks; so this writer takes every `Value::Binary` for text.
pub fn text(json: Vec<u8>) -> Value {
    // As a boxed slice, `Bytes` takes the buffer over without a header of its own (shrinking
    // it is done in place by the allocator, which keeps a block that stays over half full).
    Value::Binary(json.into_boxed_slice().into())
}

/// `"key":value`, as a member of an object being written.
pub fn write_member(out: &mut Vec<u8>, key: &str, value: &Value) {
    write_str(out, key);
    out.push(b':');
    write_value(out, value);
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Binary(json) => out.extend_from_slice(json),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Boolean(true) => out.extend_from_slice(b"true"),
        Value::Boolean(false) => out.extend_from_slice(b"false"),
        Value::String(s) => write_str(out, s),
        Value::Enum(name) => write_str(out, name),
        Value::List(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_member(out, key, item);
            }
            out.push(b'}');
        }
        // Numbers (float formatting) are serde's.
        Value::Number(_) => {
            let _ = serde_json::to_writer(&mut *out, value);
        }
    }
}

/// What follows the backslash for each byte that JSON strings escape (`u`: `\u00XX`); 0: none.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether any of the eight bytes of `word` may need escaping (a control byte, `"` or `\`).
/// Never false when one does; a rare true for a clean word only costs a byte-wise look.
const fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * b'"' as u64);
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = word ^ (ONES * b'\\' as u64);
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (below_space | quote | backslash) & HIGH != 0
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            if !may_need_escape(word) {
                i += 8;
                continue;
            }
        }
        let escape = ESCAPE[bytes[i] as usize];
        if escape != 0 {
            out.extend_from_slice(&bytes[start..i]);
            if escape == b'u' {
                let b = bytes[i];
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            } else {
                out.extend_from_slice(&[b'\\', escape]);
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::Name;
    use async_graphql::ServerError;
    use async_graphql::indexmap::IndexMap;

    fn same_as_serde(value: &Value) {
        assert_eq!(
            super::value(value),
            serde_json::to_string(value).expect("serializes"),
            "{value:?}"
        );
    }

    #[test]
    fn every_byte_is_escaped_as_serde_escapes_it() {
        // Each byte alone, at each offset of an eight-byte word and across word boundaries.
        for b in 0u8..0x80 {
            for pad in 0..10 {
                let s = format!("{}{}{}", "a".repeat(pad), b as char, "z".repeat(9 - pad));
                same_as_serde(&Value::String(s));
            }
        }
        for s in [
            "",
            "plain ascii words that are long enough for several words",
            "quotes \" and \\ backslashes \\\" together",
            "\u{7f}\u{80}é – ünïcödé 🚀 \u{2028}\u{2029}",
            "\n\r\t\u{8}\u{c}\0\u{1f}",
            "12345678\"12345678\\12345678\n",
        ] {
            same_as_serde(&Value::String(s.to_owned()));
            same_as_serde(&Value::Enum(Name::new(s)));
        }
    }

    #[test]
    fn nested_values_and_responses_are_written_as_serde_writes_them() {
        let mut inner = IndexMap::new();
        inner.insert(Name::new("n\"ame"), Value::String("x".into()));
        inner.insert(Name::new("int"), Value::from(-42));
        inner.insert(Name::new("float"), Value::from(1.5e-7));
        inner.insert(Name::new("big"), Value::from(u64::MAX));
        inner.insert(Name::new("yes"), Value::Boolean(true));
        inner.insert(Name::new("no"), Value::Boolean(false));
        inner.insert(Name::new("none"), Value::Null);
        inner.insert(Name::new("status"), Value::Enum(Name::new("ACTIVE")));
        inner.insert(Name::new("empty"), Value::List(vec![]));
        inner.insert(Name::new("nothing"), Value::Object(IndexMap::new()));
        let mut outer = IndexMap::new();
        outer.insert(
            Name::new("items"),
            Value::List(vec![Value::Object(inner.clone()), Value::Object(inner)]),
        );
        let data = Value::Object(outer);
        same_as_serde(&data);

        let mut full = Response::new(data.clone());
        assert_eq!(
            response(&full),
            serde_json::to_vec(&full).expect("serializes")
        );
        full.errors.push(ServerError::new("went \"wrong\"", None));
        full.extensions.insert("cost".into(), Value::from(12));
        assert_eq!(
            response(&full),
            serde_json::to_vec(&full).expect("serializes")
        );
        let empty = Response::default();
        assert_eq!(
            response(&empty),
            serde_json::to_vec(&empty).expect("serializes")
        );
    }

    #[test]
    fn the_schema_serves_no_bytes() {
        // `text` travels as `Value::Binary`: no scalar of the schema may give bytes of its own.
        // The built-in ones do not; ours must be those whose values are known not to.
        let sdl = crate::graphql::sdl();
        let scalars: Vec<&str> = sdl
            .lines()
            .filter_map(|line| line.strip_prefix("scalar "))
            .map(str::trim)
            .collect();
        assert_eq!(
            scalars,
            ["DateTime", "JSON"],
            "a new scalar: may it give bytes?"
        );
    }

    #[test]
    fn an_object_given_as_text_is_copied_and_a_look_alike_stays_data() {
        let inner = text(br#"{"a":[1,"\u0000"]}"#.to_vec());
        let mut outer = IndexMap::new();
        outer.insert(Name::new("x"), inner);
        // A provider's JSON with a member spelled like the marker: written as data.
        let mut look_alike = IndexMap::new();
        look_alike.insert(
            Name::new("stackgate:json-text"),
            Value::String(r#""injected"#.into()),
        );
        outer.insert(Name::new("y"), Value::Object(look_alike));
        assert_eq!(
            super::value(&Value::Object(outer)),
            r#"{"x":{"a":[1,"\u0000"]},"y":{"stackgate:json-text":"\"injected"}}"#
        );
    }
}
