//! The env file format, read by both paths: `cognigate` reads ids back from
//! the file it wrote, `cognigate-gateway` reads its settings from it.

use std::collections::HashMap;

/// Parses dotenv syntax: `KEY=VALUE`, an optional `export ` prefix, values in
/// single quotes (literal), double quotes (`\n`, `\"`, `\\` escapes) or bare
/// (trailing ` # comment` removed, whitespace trimmed); `#` lines are comments.
pub(crate) fn parse(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let mut vars = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err((line_no, "expected KEY=VALUE".to_owned()));
        };
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_key {
            return Err((line_no, format!("`{key}` is not a valid variable name")));
        }
        let value = parse_value(value.trim()).map_err(|problem| (line_no, problem))?;
        vars.insert(key.to_owned(), value);
    }
    Ok(vars)
}

fn parse_value(value: &str) -> Result<String, String> {
    if let Some(rest) = value.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("unterminated single quote".to_owned());
        };
        return Ok(rest[..end].to_owned());
    }
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => break,
                },
                other => out.push(other),
            }
        }
        return Err("unterminated double quote".to_owned());
    }
    let bare = match value.find(" #") {
        Some(at) => &value[..at],
        None => value,
    };
    Ok(bare.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_dotenv_syntax() {
        let text = "# comment\n\nA=1\nexport B = two words \nC='single # kept'\nD=\"dq \\\"x\\\"\\n\"\nE=bare # trailing comment\nF=\n";
        let vars = parse(text).unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "single # kept");
        assert_eq!(vars["D"], "dq \"x\"\n");
        assert_eq!(vars["E"], "bare");
        assert_eq!(vars["F"], "");
    }

    #[test]
    fn rejects_bad_lines_with_line_number() {
        assert_eq!(parse("A=1\nnot a pair\n").unwrap_err().0, 2);
        assert_eq!(parse("1A=x").unwrap_err().0, 1);
        assert!(parse("A=\"open").unwrap_err().1.contains("unterminated"));
    }
}
