use super::*;

#[test]
fn statements_that_differ_only_in_values_have_one_shape() {
    assert_eq!(
        normalize_statement("SELECT * FROM items WHERE id = 42 AND name = 'x''y'"),
        "SELECT * FROM items WHERE id = ? AND name = ?"
    );
    assert_eq!(
        normalize_statement("select *\n  from t where id in (1, 2,3) and v = $1"),
        "select * from t where id in (?) and v = ?"
    );
    assert_eq!(
        normalize_statement("SELECT col1 FROM t2"),
        "SELECT col1 FROM t2"
    );
}

#[test]
fn words_split_on_punctuation_and_camel_case() {
    let all = |s| words(s).collect::<Vec<_>>();
    assert_eq!(
        all("sendEmail /v1/notifications"),
        vec!["send", "Email", "v1", "notifications"]
    );
    assert_eq!(all("login-service"), vec!["login", "service"]);
    assert_eq!(all("HTTPServer"), vec!["HTTPServer"]);
    assert!(has_word("Notification-Service", &["notification"]));
    assert!(!has_word("login-service", &["log"]));
}

#[test]
fn url_hosts_lose_scheme_user_and_port() {
    assert_eq!(
        url_host("https://u@api.stripe.com:443/v1/charges"),
        Some("api.stripe.com")
    );
    assert_eq!(url_host("http://[::1]:8080/x"), Some("::1"));
    assert_eq!(url_host("example.com/x"), Some("example.com"));
}
