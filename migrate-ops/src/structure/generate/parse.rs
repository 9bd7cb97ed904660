//! Reading back the parts of catalog text the generator needs: names after `<schema>.`, lists, enum labels.

use crate::structure::object::SCHEMA_PLACEHOLDER;

/// One identifier at the start of `text`, as PostgreSQL prints it (bare, or double-quoted with `""` inside), and
/// the rest of the text after it.
pub(crate) fn identifier(text: &str) -> Option<(String, &str)> {
    if let Some(rest) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|(_, next)| *next == '"') {
                    chars.next();
                    name.push('"');
                } else {
                    return Some((name, &rest[i + 1..]));
                }
            } else {
                name.push(c);
            }
        }
        return None;
    }
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_owned(), &text[end..]))
}

/// The name of the schema's own object that `text` starts with (`<schema>.orders`, `<schema>."My Table"`).
pub(crate) fn own_name(text: &str) -> Option<(String, &str)> {
    identifier(text.strip_prefix(SCHEMA_PLACEHOLDER)?.strip_prefix('.')?)
}

/// The table an index is on, from `CREATE [UNIQUE] INDEX name ON [ONLY] <schema>.table USING ...`.
pub(crate) fn index_table(definition: &str) -> Option<String> {
    let after = &definition[definition.find(" ON ")? + 4..];
    let after = after.strip_prefix("ONLY ").unwrap_or(after);
    own_name(after).map(|(name, _)| name)
}

/// `(table, column)` of a sequence's `owned by`: `<schema>.orders.id`.
pub(crate) fn owned_by(text: &str) -> Option<(String, String)> {
    let (table, rest) = own_name(text)?;
    let (column, _) = identifier(rest.strip_prefix('.')?)?;
    Some((table, column))
}

/// Whether `text` names the schema's object `name` (`<schema>.name` or `<schema>."name"`), as catalog text
/// qualifies every object of the schema.
pub(crate) fn mentions(text: &str, name: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find(SCHEMA_PLACEHOLDER) {
        rest = &rest[at + SCHEMA_PLACEHOLDER.len()..];
        if let Some((found, _)) = rest.strip_prefix('.').and_then(identifier) {
            if found == name {
                return true;
            }
        }
    }
    false
}

/// Split a catalog list at its top-level `separator`, outside parentheses and quotes: `a integer, b numeric(12,2)`.
pub(crate) fn split_list<'t>(text: &'t str, separator: &str) -> Vec<&'t str> {
    let mut parts = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = bytes[i] as char;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' => depth += 1,
                ')' | ']' => depth -= 1,
                _ if depth == 0 && text[i..].starts_with(separator) => {
                    parts.push(&text[start..i]);
                    i += separator.len();
                    start = i;
                    continue;
                }
                _ => {}
            },
        }
        i += 1;
    }
    if start < text.len() || !parts.is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

/// An enum type's labels, as the catalog lists them (`'pending', 'it''s'`), each still a SQL literal.
pub(crate) fn labels(text: &str) -> Vec<&str> {
    split_list(text, ", ")
}

/// A domain's constraints, one `name definition` a line, as `(name, definition)`.
pub(crate) fn domain_constraints(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|line| identifier(line).map(|(name, rest)| (name, rest.trim_start().to_owned()))).collect()
}

/// A composite type's attributes, `name type` each, as `(name, type)`.
pub(crate) fn attributes(text: &str) -> Vec<(String, String)> {
    split_list(text, ", ")
        .into_iter()
        .filter_map(|part| identifier(part).map(|(name, rest)| (name, rest.trim_start().to_owned())))
        .collect()
}

/// A table's column names, in order, from its `columns` attribute.
pub(crate) fn columns(text: &str) -> Vec<String> {
    split_list(text, ", ").into_iter().filter_map(|part| identifier(part).map(|(name, _)| name)).collect()
}

/// A view's column comments, one `column: comment` a line (a comment's own line breaks continue it).
pub(crate) fn column_comments(text: &str) -> Vec<(String, String)> {
    let mut comments: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        match identifier(line).and_then(|(name, rest)| Some((name, rest.strip_prefix(": ")?))) {
            Some((name, comment)) => comments.push((name, comment.to_owned())),
            None => {
                if let Some((_, comment)) = comments.last_mut() {
                    comment.push('\n');
                    comment.push_str(line);
                }
            }
        }
    }
    comments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_back_as_postgresql_prints_them() {
        assert_eq!(identifier("\"My \"\"T\"\".x\" USING"), Some(("My \"T\".x".to_owned(), " USING")));
        assert_eq!(own_name("<schema>.orders_id_seq'::regclass"), Some(("orders_id_seq".to_owned(), "'::regclass")));
        assert_eq!(
            index_table("CREATE UNIQUE INDEX i ON ONLY <schema>.\"Big Table\" USING btree (a)").as_deref(),
            Some("Big Table")
        );
        assert_eq!(owned_by("<schema>.\"Customers\".id"), Some(("Customers".to_owned(), "id".to_owned())));
        assert!(mentions("SELECT x FROM <schema>.orders o JOIN <schema>.\"Order Lines\" l", "Order Lines"));
        assert!(!mentions("SELECT x FROM <schema>.orders_archive", "orders"));
    }

    #[test]
    fn lists_split_outside_parentheses_and_quotes() {
        assert_eq!(split_list("a numeric(12,2), \"b, c\" text, d", ", "), ["a numeric(12,2)", "\"b, c\" text", "d"]);
        assert_eq!(labels("'a, b', 'it''s', 'c'"), ["'a, b'", "'it''s'", "'c'"]);
        assert_eq!(attributes("street text, \"Zip\" character(8)")[1], ("Zip".to_owned(), "character(8)".to_owned()));
        assert_eq!(columns("id, \"Name\""), ["id", "Name"]);
        assert_eq!(
            column_comments("a: one\ntwo\n\"B\": three"),
            [("a".into(), "one\ntwo".into()), ("B".into(), "three".into())]
        );
        assert!(split_list("", ", ").is_empty());
    }
}
