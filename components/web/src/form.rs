//! HTML form bodies (`application/x-www-form-urlencoded`).

pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
    }

    /// The trimmed value of a field ("" when absent).
    pub fn get(&self, name: &str) -> String {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_fields() {
        let form = Form::parse(b"email=a%40b.com&title=Rock+show&price=+10.5+");
        assert_eq!((form.get("email"), form.get("title"), form.get("price"), form.get("nope")),
                   ("a@b.com".into(), "Rock show".into(), "10.5".into(), String::new()));
    }
}
