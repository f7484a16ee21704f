//! Pushed authorization requests (RFC 9126): the request goes to the provider first,
//! authenticated as the client, and the browser carries only `client_id` and the
//! `request_uri` the provider answers with.

use url::Url;

use super::{AuthRequest, Error};
use crate::discovery::Provider;
use crate::http;

/// The longest `request_uri` taken from a provider (RFC 9126 gives no limit; they are
/// URNs of a few dozen characters).
const MAX_REQUEST_URI: usize = 2048;

impl AuthRequest {
    /// Pushes the request to the provider's pushed authorization request endpoint (RFC
    /// 9126), authenticated as at the token endpoint. The browser's URL then carries only
    /// `client_id` and the `request_uri` the provider answers with: the request's
    /// parameters never pass through the browser, where they could be read or changed.
    pub async fn push(
        &mut self,
        http: &http::Client,
        provider: &Provider,
        endpoint: &Url,
        auth: &http::ClientAuth<'_>,
    ) -> Result<(), Error> {
        let all: Vec<(String, String)> = self.url.query_pairs().into_owned().collect();
        let client_id = all
            .iter()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        // The client authentication names the client (in the body, or the Basic header);
        // the request itself names it too (RFC 9126 section 2.1).
        let named_by_auth = matches!(
            auth,
            http::ClientAuth::None { .. } | http::ClientAuth::Post { .. }
        );
        let params: Vec<(&str, &str)> = all
            .iter()
            .filter(|(k, _)| !(named_by_auth && k == "client_id"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = http.post_form(endpoint, auth, &params).await?;
        #[derive(serde::Deserialize)]
        struct Pushed {
            request_uri: String,
        }
        let pushed: Pushed = http::decode(endpoint, &response)?;
        usable_request_uri(&pushed.request_uri)?;
        let mut url = provider.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &client_id)
            .append_pair("request_uri", &pushed.request_uri);
        self.url = url;
        Ok(())
    }
}

/// A `request_uri` as a provider answers a pushed request with: something, of a sane size,
/// that a URL can carry.
fn usable_request_uri(request_uri: &str) -> Result<(), Error> {
    if request_uri.is_empty()
        || request_uri.len() > MAX_REQUEST_URI
        || request_uri.chars().any(char::is_control)
    {
        return Err(Error::NoRequestUri);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_uri_must_be_one() {
        usable_request_uri("urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c")
            .unwrap();
        for bad in [
            "",
            "urn:x\r\nLocation: evil",
            &"x".repeat(MAX_REQUEST_URI + 1),
        ] {
            assert!(
                matches!(usable_request_uri(bad), Err(Error::NoRequestUri)),
                "{bad:?}"
            );
        }
    }
}
