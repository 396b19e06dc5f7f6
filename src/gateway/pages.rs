//! The HTML the gateway shows a browser: the consent screen and the sign-in
//! error page, rendered by one handlebars engine from `templates/gateway/`.
//! Every value goes through handlebars' HTML escaping (`{{value}}`, never
//! `{{{value}}}`), so a client name or an IdP's message cannot inject markup.

use std::sync::LazyLock;

use handlebars::Handlebars;
use serde::Serialize;

const CONSENT: &str = "consent";
const ERROR: &str = "error";
const DEVICE: &str = "device";
const CONNECT: &str = "connect";

/// Shown when the error page itself cannot be rendered (a bug: the template
/// is compiled into the binary and checked at boot by [`check`]).
const FALLBACK_ERROR_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed</title></head><body><h1>Sign-in failed</h1><p>Start again from your MCP client.</p></body></html>";

/// The engine, built once per process. A page error is answered without the
/// application state at hand, so the engine is not kept there.
static ENGINE: LazyLock<Result<Handlebars<'static>, String>> = LazyLock::new(engine);

fn engine() -> Result<Handlebars<'static>, String> {
    let mut engine = Handlebars::new();
    // A misspelt variable fails the render instead of showing an empty field.
    engine.set_strict_mode(true);
    // One look for every page: the consent page's.
    engine
        .register_partial("style", include_str!("../../templates/gateway/style.hbs"))
        .map_err(|err| format!("template `style`: {err}"))?;
    for (name, text) in [
        (CONSENT, include_str!("../../templates/gateway/consent.html.hbs")),
        (ERROR, include_str!("../../templates/gateway/error.html.hbs")),
        (DEVICE, include_str!("../../templates/gateway/device.html.hbs")),
        (CONNECT, include_str!("../../templates/gateway/connect.html.hbs")),
    ] {
        engine.register_template_string(name, text).map_err(|err| format!("template `{name}`: {err}"))?;
    }
    Ok(engine)
}

/// The CSP source (`'sha256-…'`) of the consent page's one inline script,
/// which keeps Approve disabled for a moment after the page shows or regains
/// focus: a page that swaps this window under the user's cursor cannot turn
/// a double click into an approval.
pub(super) static CONSENT_SCRIPT_SOURCE: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine;
    use sha2::Digest;
    let template = include_str!("../../templates/gateway/consent.html.hbs");
    let script = template
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map_or("", |(script, _)| script);
    let digest = sha2::Sha256::digest(script.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
});

/// Whether every template compiles: called at boot, so a broken template
/// stops the gateway instead of failing the first sign-in.
pub(crate) fn check() -> Result<(), String> {
    ENGINE.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// What the consent screen shows and submits.
#[derive(Debug, Serialize)]
pub(super) struct ConsentPage<'a> {
    pub(crate) client_name: &'a str,
    /// The host of a client-id metadata document: who vouches for the name.
    pub(crate) client_id_host: Option<&'a str>,
    /// The user code of a device login, for the user to compare.
    pub(crate) user_code: Option<&'a str>,
    /// A client-id document's name sent to a loopback redirect: any program
    /// on the user's machine could claim that name (MCP authorization
    /// 2026-07-28, localhost redirect URI risks), so the page says so.
    pub(crate) loopback_warning: bool,
    pub(crate) redirect_host: &'a str,
    pub(crate) route: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) user: &'a str,
    pub(crate) consent_id: &'a str,
    pub(crate) csrf_token: &'a str,
}

pub(super) fn consent(page: &ConsentPage<'_>) -> Result<String, String> {
    render(CONSENT, page)
}

/// The sign-in error page: `message` (escaped) says what happened, and the
/// page what to do: try again later (`retry_later`, the gateway's or the
/// identity provider's fault) or start the sign-in again.
pub(super) fn error(message: &str, retry_later: bool) -> String {
    #[derive(Serialize)]
    struct ErrorPage<'a> {
        message: &'a str,
        retry_later: bool,
    }
    render(ERROR, &ErrorPage { message, retry_later }).unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot render the error page");
        FALLBACK_ERROR_PAGE.to_owned()
    })
}

#[derive(Serialize)]
struct DevicePage<'a> {
    /// Shown above the form (a wrong code), or alone once decided.
    message: Option<&'a str>,
    /// Whether to show the form for the user code.
    form: bool,
    /// A user code from a link, shown for the user to compare with their
    /// device's before the sign-in starts.
    confirm: Option<&'a str>,
}

/// The device login's page for entering the user code, with `message`.
pub(super) fn device_entry(message: Option<&str>) -> String {
    device(&DevicePage { message, form: true, confirm: None })
}

/// The device login's last page: `message` says what happened.
pub(super) fn device_done(message: &str) -> String {
    device(&DevicePage { message: Some(message), form: false, confirm: None })
}

/// The device login's confirmation of a user code that came in a link.
pub(super) fn device_confirm(user_code: &str) -> String {
    device(&DevicePage { message: None, form: false, confirm: Some(user_code) })
}

fn device(page: &DevicePage<'_>) -> String {
    render(DEVICE, page).unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot render the device page");
        FALLBACK_ERROR_PAGE.to_owned()
    })
}

/// What the page connecting a user's upstream account shows and submits.
#[derive(Debug, Serialize)]
pub(super) struct ConnectPage<'a> {
    pub(crate) display_name: &'a str,
    pub(crate) route: &'a str,
    pub(crate) user: &'a str,
    pub(crate) upstream_host: &'a str,
    pub(crate) authorization_host: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) consent_id: &'a str,
    pub(crate) csrf_token: &'a str,
}

pub(super) fn connect(page: &ConnectPage<'_>) -> Result<String, String> {
    #[derive(Serialize)]
    struct Form<'a> {
        form: bool,
        #[serde(flatten)]
        page: &'a ConnectPage<'a>,
    }
    render(CONNECT, &Form { form: true, page })
}

/// The connect flow's last page: `message` says what happened.
pub(super) fn connect_done(display_name: &str, message: &str) -> String {
    #[derive(Serialize)]
    struct Done<'a> {
        form: bool,
        display_name: &'a str,
        message: &'a str,
    }
    render(CONNECT, &Done { form: false, display_name, message }).unwrap_or_else(|err| {
        tracing::error!(error = %err, "cannot render the connect page");
        FALLBACK_ERROR_PAGE.to_owned()
    })
}

fn render(name: &str, data: &impl Serialize) -> Result<String, String> {
    let engine = ENGINE.as_ref().map_err(Clone::clone)?;
    engine.render(name, data).map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::{ConsentPage, check, consent, error};

    #[test]
    fn templates_compile() {
        check().unwrap();
        let entry = super::device_entry(Some("<b>wrong</b>"));
        assert!(entry.contains("name=\"user_code\"") && entry.contains("&lt;b&gt;wrong"), "{entry}");
        assert!(!super::device_done("Done").contains("name=\"user_code\""));
        let confirm = super::device_confirm("BCDF-GHJK");
        assert!(confirm.contains("<p id=\"user-code\">BCDF-GHJK</p>") && confirm.contains("id=\"link-warning\""));
    }

    #[test]
    fn the_error_page_has_the_consent_look_and_says_what_to_do() {
        let look = include_str!("../../templates/gateway/style.hbs").trim();
        let refused = error("This sign-in has expired.", false);
        assert!(refused.contains(look) && refused.contains("<main>"), "{refused}");
        assert!(refused.contains("start the sign-in again from your MCP client"), "{refused}");
        let failed = error("The identity provider did not complete the sign-in.", true);
        assert!(failed.contains(look) && failed.contains("Try again in a moment"), "{failed}");
    }

    #[test]
    fn values_are_html_escaped() {
        let page = error("<script>alert('x')</script> & \"more\"", false);
        assert!(
            page.contains(
                "<p id=\"error\">&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;more&quot;</p>"
            ),
            "{page}"
        );
        let html = consent(&ConsentPage {
            client_name: "<b>Evil</b>",
            client_id_host: Some("app.example.com"),
            user_code: None,
            loopback_warning: true,
            redirect_host: "app.example.com",
            route: "/mcp/echo",
            resource: "http://localhost:9000/mcp/echo",
            scope: "openid",
            user: "a@example.com",
            consent_id: "id",
            csrf_token: "token",
        })
        .unwrap();
        assert!(html.contains("&lt;b&gt;Evil&lt;/b&gt;") && !html.contains("<b>Evil"), "{html}");
        assert!(html.contains("<dd id=\"client-id-host\">app.example.com</dd>"), "{html}");
        assert!(!html.contains("user-code"), "{html}");
        assert!(html.contains("id=\"loopback-warning\""), "{html}");
    }
}
