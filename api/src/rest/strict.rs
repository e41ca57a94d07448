//! JSON strings that are strings. poem-openapi reads `false` or `12` into a `String` field as
//! `"false"` or `"12"`; the spec says `type: string`, so REST refuses them, as GraphQL does.
//! (poem-openapi has no switch for this; a field opts in with `deserialize_with`.)

use poem_openapi::types::{ParseError, ParseResult};
use serde_json::Value;

fn not_a_string<T: poem_openapi::types::Type>(found: &Value) -> ParseError<T> {
    let kind = match found {
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Null => "null",
        Value::String(_) => "a string",
    };
    ParseError::custom(format!("expected a string, found {kind}"))
}

/// A required string field.
pub fn text(value: Option<Value>) -> ParseResult<String> {
    match value {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(not_a_string(&other)),
        None => Err(ParseError::expected_input()),
    }
}

/// An optional string field (absent or `null`: none).
pub fn optional_text(value: Option<Value>) -> ParseResult<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(not_a_string(&other)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_strings_are_strings() {
        assert_eq!(text(Some(json!("hi"))).ok(), Some("hi".to_owned()));
        for bad in [json!(false), json!(12), json!(["a"]), json!({}), Value::Null] {
            assert!(text(Some(bad.clone())).is_err(), "{bad}");
        }
        assert!(text(None).is_err());
        assert_eq!(optional_text(Some(Value::Null)).ok(), Some(None));
        assert_eq!(optional_text(None).ok(), Some(None));
        assert!(optional_text(Some(json!(true))).is_err());
    }
}
