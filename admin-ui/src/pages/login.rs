//! The sign-in page.

use leptos::prelude::*;

use crate::chrome::document;

/// The sign-in form. `csrf` goes in a hidden field and must match the CSRF cookie.
pub fn render_login_page(version: &str, error: Option<String>, csrf: &str) -> String {
    let (version, csrf) = (version.to_owned(), csrf.to_owned());
    document(
        "SyncChat admin: sign in",
        None,
        view! {
            <header><strong>"SyncChat admin"</strong><span>{version}</span></header>
            <main>
                <div class="card">
                    <h1>"Sign in"</h1>
                    <p>"For accounts with the admin role (created with " <code>"syncchat admin create-user"</code> ")."</p>
                    {error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
                    <form method="post" action="/admin/login">
                        <input type="hidden" name="csrf" value=csrf/>
                        <label>"Username or email " <input name="login" autocomplete="username" required/></label>
                        <label>"Password " <input name="password" type="password" autocomplete="current-password" required/></label>
                        <button type="submit">"Sign in"</button>
                    </form>
                </div>
            </main>
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_page_carries_the_csrf_token_and_the_error() {
        let html = render_login_page("9.9.9", Some("wrong password".into()), "tok123");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("name=\"csrf\" value=\"tok123\""), "{html}");
        assert!(html.contains("wrong password"));
        assert!(html.contains("action=\"/admin/login\""));
    }
}
