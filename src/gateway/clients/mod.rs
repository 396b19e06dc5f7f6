//! What the gateway accepts of an OAuth client, whichever way it introduces
//! itself (dynamic registration or a Client ID Metadata Document, [`cimd`]):
//! the grant types it may use and the redirect URIs an authorization code
//! may be sent to (RFC 6749 3.1.2, RFC 8252 7). Both the registration
//! endpoint and the document fetcher apply these rules, and the shared state
//! holds the fetcher, so they sit below all three.

pub(crate) mod cimd;

use url::Url;

/// Longest redirect URI a client may register.
pub(crate) const MAX_REDIRECT_URI_LEN: usize = 2048;

/// RFC 8628's grant type, registered by clients that log in with a user code.
pub(crate) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// The grants a client may register (and a client-id document may list).
pub(crate) const SUPPORTED_GRANTS: [&str; 3] = ["authorization_code", "refresh_token", DEVICE_CODE_GRANT];

/// Schemes that must never receive an authorization code.
const FORBIDDEN_SCHEMES: [&str; 12] = [
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "filesystem",
    "ftp",
    "ws",
    "wss",
    "mailto",
    "view-source",
];

pub(crate) fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = Url::parse(uri).map_err(|err| format!("`{uri}` is not an absolute URI ({err})"))?;
    if url.fragment().is_some() {
        return Err(format!("`{uri}` has a fragment"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if crate::contract::is_loopback(&url) => Ok(()),
        "http" => {
            Err(format!("`{uri}` uses http on a non-loopback host; use https, or http://127.0.0.1 / [::1] / localhost"))
        }
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => Err(format!("`{uri}` uses the `{scheme}` scheme")),
        "https" => Err(format!("`{uri}` has no host")),
        // A private-use scheme (RFC 8252 7.1).
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_redirect_uri;

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost:6274/oauth/callback",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "com.example.app:/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "http://10.0.0.1/cb",
            "javascript:alert(1)",
            "data:text/html,x",
            "file:///etc/passwd",
            "https://app.example.com/cb#frag",
            "/relative/cb",
            "not a uri",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
