//! The etcd v3 calls membership needs, over etcd's JSON gateway (`/v3/...`:
//! the gRPC API as JSON, keys and values base64, 64-bit numbers as
//! strings, fields at their default value left out). A call tries the
//! endpoints in turn, starting with the last one that answered, and
//! splits what is left of its deadline among those it has yet to try.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

use super::endpoint::Endpoint;
use super::http::{self, Closer, HttpError, Reply};

#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd at {endpoint}: {source}")]
    Unreachable {
        endpoint: String,
        #[source]
        source: HttpError,
    },
    #[error("etcd at {endpoint} refused {call}: {message}")]
    Refused {
        endpoint: String,
        call: &'static str,
        message: String,
    },
    #[error("etcd at {endpoint}: unexpected {call} reply: {reply}")]
    Unexpected {
        endpoint: String,
        call: &'static str,
        reply: String,
    },
}

/// A lease as granted: its id and the TTL etcd chose (it may raise a short
/// one to its minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: Duration,
}

/// A key and its value, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A change to one key under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The store revision of the change.
    pub revision: u64,
    pub key: Vec<u8>,
    /// The new value; `None` for a delete (or a lease expiry).
    pub value: Option<Vec<u8>>,
}

/// One message of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchMessage {
    Created,
    Events(Vec<WatchEvent>),
    /// etcd ended the watch (e.g. its start revision was compacted).
    Canceled(String),
}

/// A client of one etcd cluster through the listed endpoints.
pub struct EtcdClient {
    endpoints: Vec<Endpoint>,
    /// The endpoint to try first: the last one that answered.
    current: usize,
}

impl EtcdClient {
    /// `endpoints` must not be empty (see `endpoint::parse_all`).
    pub fn new(endpoints: Vec<Endpoint>) -> EtcdClient {
        assert!(!endpoints.is_empty(), "an etcd client needs an endpoint");
        EtcdClient {
            endpoints,
            current: 0,
        }
    }

    /// A client of the `http://host:port` URLs given.
    pub fn from_urls(urls: &[String]) -> Result<EtcdClient, super::EndpointError> {
        Ok(EtcdClient::new(super::endpoint::parse_all(urls)?))
    }

    /// Grants a lease of `ttl`, rounded up to whole seconds (etcd's unit).
    pub fn grant(&mut self, ttl: Duration, deadline: Instant) -> Result<Lease, EtcdError> {
        let secs = ttl.as_millis().div_ceil(1000).max(1);
        let (endpoint, reply) = self.call(
            "lease grant",
            "/v3/lease/grant",
            json!({ "TTL": secs.to_string() }),
            deadline,
        )?;
        match (int(&reply["ID"]), int(&reply["TTL"])) {
            (id, ttl) if id != 0 && ttl > 0 => Ok(Lease {
                id,
                ttl: Duration::from_secs(ttl.unsigned_abs()),
            }),
            _ => Err(unexpected(endpoint, "lease grant", &reply)),
        }
    }

    /// Renews lease `id` once; `Ok(None)` when etcd no longer has it.
    pub fn keep_alive(
        &mut self,
        id: i64,
        deadline: Instant,
    ) -> Result<Option<Duration>, EtcdError> {
        let body = json!({ "ID": id.to_string() });
        let (_, reply) = self.call("lease keep-alive", "/v3/lease/keepalive", body, deadline)?;
        // A stream's messages come wrapped as {"result": ...}.
        let ttl = int(&reply["result"]["TTL"]);
        Ok((ttl > 0).then(|| Duration::from_secs(ttl.unsigned_abs())))
    }

    pub fn revoke(&mut self, id: i64, deadline: Instant) -> Result<(), EtcdError> {
        let body = json!({ "ID": id.to_string() });
        self.call("lease revoke", "/v3/lease/revoke", body, deadline)
            .map(drop)
    }

    /// Puts `key` = `value`, attached to `lease` unless it is 0; returns the
    /// store revision of the put.
    pub fn put(
        &mut self,
        key: &str,
        value: &[u8],
        lease: i64,
        deadline: Instant,
    ) -> Result<u64, EtcdError> {
        let mut body = json!({ "key": BASE64.encode(key), "value": BASE64.encode(value) });
        if lease != 0 {
            body["lease"] = json!(lease.to_string());
        }
        let (_, reply) = self.call("put", "/v3/kv/put", body, deadline)?;
        Ok(revision(&reply))
    }

    pub fn delete(&mut self, key: &str, deadline: Instant) -> Result<u64, EtcdError> {
        let body = json!({ "key": BASE64.encode(key) });
        let (_, reply) = self.call("delete", "/v3/kv/deleterange", body, deadline)?;
        Ok(revision(&reply))
    }

    /// Every key under `prefix` and the store revision they were read at.
    pub fn range_prefix(
        &mut self,
        prefix: &str,
        deadline: Instant,
    ) -> Result<(u64, Vec<KeyValue>), EtcdError> {
        let body =
            json!({ "key": BASE64.encode(prefix), "range_end": BASE64.encode(prefix_end(prefix)) });
        let (endpoint, reply) = self.call("range", "/v3/kv/range", body, deadline)?;
        let empty = Vec::new();
        let kvs = reply["kvs"].as_array().unwrap_or(&empty);
        let mut out = Vec::with_capacity(kvs.len());
        for kv in kvs {
            match (bytes(&kv["key"]), bytes(&kv["value"])) {
                (Some(key), Some(value)) => out.push(KeyValue { key, value }),
                _ => return Err(unexpected(endpoint, "range", &reply)),
            }
        }
        Ok((revision(&reply), out))
    }

    /// Opens a watch of every key under `prefix` from `start_revision`; the
    /// connection and the first reply end by `deadline`, the stream then
    /// flows for as long as etcd keeps it, or until the [`Closer`] closes it.
    pub fn watch(
        &mut self,
        prefix: &str,
        start_revision: u64,
        deadline: Instant,
    ) -> Result<(WatchStream, Closer), EtcdError> {
        let body = json!({ "create_request": {
            "key": BASE64.encode(prefix),
            "range_end": BASE64.encode(prefix_end(prefix)),
            "start_revision": start_revision.to_string(),
        }});
        let endpoint = self.endpoints[self.current].0.clone();
        let opened = http::post(
            &endpoint,
            "/v3/watch",
            body.to_string().as_bytes(),
            Some(deadline),
        )
        .and_then(|reply| {
            let closer = reply.closer()?;
            Ok((reply, closer))
        });
        match opened {
            Ok((reply, closer)) if reply.status == 200 => {
                Ok((WatchStream::new(endpoint, reply.without_deadline()), closer))
            }
            Ok((reply, _)) => Err(EtcdError::Refused {
                endpoint,
                call: "watch",
                message: format!("HTTP {}", reply.status),
            }),
            Err(source) => {
                self.current = (self.current + 1) % self.endpoints.len();
                Err(EtcdError::Unreachable { endpoint, source })
            }
        }
    }

    /// One unary call, trying each endpoint once; an endpoint that answers
    /// with an error ends the tries (it is etcd's answer, not an outage).
    fn call(
        &mut self,
        name: &'static str,
        path: &str,
        body: Value,
        deadline: Instant,
    ) -> Result<(String, Value), EtcdError> {
        let count = self.endpoints.len();
        let mut last = None;
        for attempt in 0..count {
            let index = (self.current + attempt) % count;
            let endpoint = &self.endpoints[index].0;
            let left = deadline.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(count - attempt).unwrap_or(u32::MAX);
            match http::call(endpoint, path, &body, Instant::now() + share) {
                Ok(reply) => {
                    self.current = index;
                    return Ok((endpoint.clone(), reply));
                }
                Err(HttpError::Status { body, .. }) => {
                    self.current = index;
                    return Err(EtcdError::Refused {
                        endpoint: endpoint.clone(),
                        call: name,
                        message: error_message(&body),
                    });
                }
                Err(source) => {
                    last = Some(EtcdError::Unreachable {
                        endpoint: endpoint.clone(),
                        source,
                    })
                }
            }
        }
        Err(last.expect("at least one endpoint was tried"))
    }
}

/// The messages of an open watch, read as they arrive.
pub struct WatchStream {
    endpoint: String,
    messages: serde_json::StreamDeserializer<'static, serde_json::de::IoRead<Reply>, Value>,
}

impl WatchStream {
    fn new(endpoint: String, reply: Reply) -> WatchStream {
        WatchStream {
            endpoint,
            messages: serde_json::Deserializer::from_reader(reply).into_iter(),
        }
    }

    /// The next message; `None` when the stream ended cleanly.
    pub fn next_message(&mut self) -> Option<Result<WatchMessage, EtcdError>> {
        let value = match self.messages.next()? {
            Ok(value) => value,
            Err(e) => {
                return Some(Err(EtcdError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    source: HttpError::Json(e),
                }))
            }
        };
        Some(
            parse_watch_message(&value)
                .ok_or_else(|| unexpected(self.endpoint.clone(), "watch", &value)),
        )
    }
}

fn parse_watch_message(value: &Value) -> Option<WatchMessage> {
    if let Some(error) = value.get("error") {
        return Some(WatchMessage::Canceled(error_message(&error.to_string())));
    }
    let result = value.get("result")?;
    if result["canceled"].as_bool() == Some(true) {
        let reason = result["cancel_reason"].as_str().unwrap_or("");
        let compacted = int(&result["compact_revision"]);
        return Some(WatchMessage::Canceled(format!(
            "{reason} (compact revision {compacted})"
        )));
    }
    let Some(events) = result["events"].as_array() else {
        return Some(WatchMessage::Created);
    };
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let kv = &event["kv"];
        let key = bytes(&kv["key"])?;
        let value = match event["type"].as_str() {
            None | Some("PUT") => Some(bytes(&kv["value"])?),
            Some("DELETE") => None,
            Some(_) => return None,
        };
        let revision = u64::try_from(int(&kv["mod_revision"])).ok()?;
        out.push(WatchEvent {
            revision,
            key,
            value,
        });
    }
    Some(WatchMessage::Events(out))
}

/// The smallest key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xff (or empty): to the end of the key space.
    vec![0]
}

/// A protobuf int64 as the gateway writes it (a string, or left out at 0).
fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn revision(reply: &Value) -> u64 {
    u64::try_from(int(&reply["header"]["revision"])).unwrap_or(0)
}

/// A bytes field: base64, or left out when empty.
fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::String(s) => BASE64.decode(s).ok(),
        _ => None,
    }
}

/// etcd's `message` (or `error`) from an error body, else the body.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v["message"].as_str().or(v["error"].as_str()))
        .unwrap_or(body)
        .to_string()
}

fn unexpected(endpoint: String, call: &'static str, reply: &Value) -> EtcdError {
    let mut text = reply.to_string();
    text.truncate(200);
    EtcdError::Unexpected {
        endpoint,
        call,
        reply: text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_exactly_the_prefix() {
        assert_eq!(prefix_end("/c/"), b"/c0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn watch_messages_parse_puts_deletes_and_cancels() {
        let put = json!({"result": {"events": [
            {"kv": {"key": BASE64.encode("/c/members/a"), "mod_revision": "7", "value": BASE64.encode("v")}},
            {"type": "DELETE", "kv": {"key": BASE64.encode("/c/members/b"), "mod_revision": "8"}}
        ]}});
        assert_eq!(
            parse_watch_message(&put),
            Some(WatchMessage::Events(vec![
                WatchEvent {
                    revision: 7,
                    key: b"/c/members/a".to_vec(),
                    value: Some(b"v".to_vec())
                },
                WatchEvent {
                    revision: 8,
                    key: b"/c/members/b".to_vec(),
                    value: None
                },
            ]))
        );
        let created = json!({"result": {"header": {"revision": "3"}, "created": true}});
        assert_eq!(parse_watch_message(&created), Some(WatchMessage::Created));
        let canceled = json!({"result": {"canceled": true, "compact_revision": "5"}});
        assert!(matches!(
            parse_watch_message(&canceled),
            Some(WatchMessage::Canceled(_))
        ));
        let bad = json!({"result": {"events": [{"kv": {"key": "!!"}}]}});
        assert_eq!(parse_watch_message(&bad), None);
        assert_eq!(
            error_message(r#"{"error":"x","message":"lease not found"}"#),
            "lease not found"
        );
    }
}
