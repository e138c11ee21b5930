//! Request parameters of an OCS call, merged from the query string, a form
//! body and a JSON body, as Nextcloud merges them.

use std::collections::HashMap;

use percent_encoding::percent_decode_str;
use serde_json::Value;

use crate::OcsError;

/// Parameters by name; `name[]` repeated (or a JSON array) gives a list.
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, Vec<String>>,
    /// Names that came in the body (query parameters such as `format` excluded).
    body_keys: Vec<String>,
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

impl Params {
    pub fn parse(
        query: Option<&str>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Params, OcsError> {
        let mut p = Params::default();
        if let Some(q) = query {
            p.add_urlencoded(q, false);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(p);
        }
        let ctype = content_type.unwrap_or("").to_ascii_lowercase();
        if ctype.starts_with("application/json") {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| OcsError::new(400, format!("the JSON body is not valid: {e}")))?;
            let Value::Object(map) = v else {
                return Err(OcsError::new(400, "the JSON body must be an object"));
            };
            for (k, v) in map {
                p.body_keys.push(k.clone());
                let list = match v {
                    Value::Array(a) => a.into_iter().map(scalar).collect(),
                    Value::Null => Vec::new(),
                    other => vec![scalar(other)],
                };
                p.values.insert(k, list);
            }
        } else {
            let text = std::str::from_utf8(body)
                .map_err(|_| OcsError::new(400, "the body is not valid UTF-8"))?;
            p.add_urlencoded(text, true);
        }
        Ok(p)
    }

    fn add_urlencoded(&mut self, text: &str, body: bool) {
        for pair in text.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k);
            let k = k.strip_suffix("[]").map(str::to_owned).unwrap_or(k);
            if body {
                self.body_keys.push(k.clone());
            }
            self.values.entry(k).or_default().push(decode(v));
        }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|v| v.first()).map(String::as_str)
    }

    pub fn list(&self, key: &str) -> Vec<String> {
        self.values.get(key).cloned().unwrap_or_default()
    }

    /// A body parameter not in `allowed`, if any.
    pub fn unknown_body_key(&self, allowed: &[&str]) -> Option<&str> {
        self.body_keys.iter().map(String::as_str).find(|k| !allowed.contains(k))
    }

    /// `limit` and `offset` for lists: no limit by default, offset 0.
    pub fn window(&self) -> Result<(Option<usize>, usize), OcsError> {
        let num = |k: &str| -> Result<Option<usize>, OcsError> {
            match self.get(k).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse::<i64>()
                    .map(|n| (n >= 0).then_some(n as usize))
                    .map_err(|_| OcsError::new(400, format!("{k} must be a number"))),
            }
        };
        Ok((num("limit")?, num("offset")?.unwrap_or(0)))
    }
}

fn scalar(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_query_form_and_json() {
        let p = Params::parse(
            Some("format=json&search=a%20b"),
            Some("application/x-www-form-urlencoded"),
            b"groups[]=x&groups[]=y&key=quota",
        )
        .unwrap();
        assert_eq!(p.get("search"), Some("a b"));
        assert_eq!(p.list("groups"), vec!["x", "y"]);
        assert_eq!(p.unknown_body_key(&["groups", "key"]), None);
        let p = Params::parse(
            None,
            Some("application/json"),
            br#"{"userid":"dora","groups":["staff"],"quota":5}"#,
        )
        .unwrap();
        assert_eq!(p.get("userid"), Some("dora"));
        assert_eq!(p.list("groups"), vec!["staff"]);
        assert_eq!(p.get("quota"), Some("5"));
        assert_eq!(p.unknown_body_key(&["userid", "groups"]), Some("quota"));
        assert!(Params::parse(None, Some("application/json"), b"[1]").is_err());
    }
}
