//! etcd endpoints as operators write them: `http://host:port`, several
//! separated by commas.

/// `host:port` of one etcd member's client URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(pub String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("no etcd endpoint given")]
    None,
    #[error("etcd endpoint {0:?}: only http:// is supported (the JSON gateway, no TLS)")]
    Scheme(String),
    #[error("etcd endpoint {0:?}: expected http://host:port")]
    Form(String),
}

/// Splits a comma-separated list of endpoint URLs (blank items ignored).
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses each `http://host:port` (a trailing `/` allowed).
pub fn parse_all(urls: &[String]) -> Result<Vec<Endpoint>, EndpointError> {
    if urls.is_empty() {
        return Err(EndpointError::None);
    }
    urls.iter().map(|u| parse(u)).collect()
}

fn parse(url: &str) -> Result<Endpoint, EndpointError> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.contains("://") {
            EndpointError::Scheme(url.to_string())
        } else {
            EndpointError::Form(url.to_string())
        });
    };
    let host_port = rest.strip_suffix('/').unwrap_or(rest);
    let valid = host_port.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if !valid {
        return Err(EndpointError::Form(url.to_string()));
    }
    Ok(Endpoint(host_port.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_urls_say_why() {
        let urls = split_list(" http://127.0.0.1:2379, http://etcd-2:2379/ ,");
        assert_eq!(
            parse_all(&urls),
            Ok(vec![
                Endpoint("127.0.0.1:2379".into()),
                Endpoint("etcd-2:2379".into())
            ])
        );
        assert_eq!(parse_all(&[]), Err(EndpointError::None));
        let https = vec!["https://e:2379".to_string()];
        assert!(matches!(parse_all(&https), Err(EndpointError::Scheme(_))));
        for bad in [
            "e:2379",
            "http://e",
            "http://e:0",
            "http://:2379",
            "http://e:2379/v3",
        ] {
            assert!(
                matches!(parse_all(&[bad.to_string()]), Err(EndpointError::Form(_))),
                "{bad}"
            );
        }
    }
}
