//! `--unix-owner USER[:GROUP]`: names or numeric ids to a uid and gid.
//!
//! Names are looked up in `/etc/passwd` and `/etc/group`, which covers the
//! system accounts web servers run as (`www-data`, `nginx`, `apache`);
//! accounts known only to a directory service need their numeric ids.

use anyhow::{Context, Result, bail};

/// The uid and gid `spec` names: `USER` (its primary group too), `USER:GROUP`, or `:GROUP`.
pub(crate) fn parse(spec: &str) -> Result<(Option<u32>, Option<u32>)> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (spec, None),
    };
    let mut uid = None;
    let mut gid = None;
    if !user.is_empty() {
        let (u, primary) = lookup(user, "/etc/passwd", 2, Some(3))
            .with_context(|| format!("--unix-owner: no user {user:?}"))?;
        uid = Some(u);
        gid = primary;
    }
    match group {
        Some("") | None => {}
        Some(group) => {
            let (g, _) = lookup(group, "/etc/group", 2, None)
                .with_context(|| format!("--unix-owner: no group {group:?}"))?;
            gid = Some(g);
        }
    }
    if uid.is_none() && gid.is_none() {
        bail!("--unix-owner: expected USER, USER:GROUP or :GROUP");
    }
    Ok((uid, gid))
}

/// A numeric id as given, or the entry named `name` in the colon-separated
/// `file`: its field `id_field`, and field `extra_field` when asked.
fn lookup(
    name: &str,
    file: &str,
    id_field: usize,
    extra_field: Option<usize>,
) -> Result<(u32, Option<u32>)> {
    if let Ok(id) = name.parse::<u32>() {
        return Ok((id, None));
    }
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    find(&text, name, id_field, extra_field).with_context(|| format!("not in {file}"))
}

fn find(
    text: &str,
    name: &str,
    id_field: usize,
    extra: Option<usize>,
) -> Option<(u32, Option<u32>)> {
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.first() != Some(&name) {
            return None;
        }
        let id = fields.get(id_field)?.parse().ok()?;
        let extra = extra.and_then(|i| fields.get(i)?.parse().ok());
        Some((id, extra))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n";

    #[test]
    fn finds_names_and_numbers() {
        assert_eq!(find(PASSWD, "www-data", 2, Some(3)), Some((33, Some(33))));
        assert_eq!(find(PASSWD, "www", 2, Some(3)), None);
        assert_eq!(parse("0:0").ok(), Some((Some(0), Some(0))));
        assert_eq!(parse(":0").ok(), Some((None, Some(0))));
        assert_eq!(parse("root").ok(), Some((Some(0), Some(0))));
        assert!(parse(":").is_err());
        assert!(parse("no-such-user-here").is_err());
    }
}
