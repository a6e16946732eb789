//! A small Wadler-style document printer (groups that lay out flat when they fit, else
//! broken), with two additions the formatter needs: lazy indentation (no trailing
//! whitespace on blank lines) and text that may contain newlines (multi-line string
//! literals and block comments, printed verbatim).
//!
//! Hand-written rather than taken from the `pretty` crate because of those two
//! requirements and the "overflow last argument" layout ([`Doc::Overflow`]).

use std::borrow::Cow;

/// Indentation step.
pub const INDENT: usize = 4;

/// A layout document.
#[derive(Clone, Debug)]
pub enum Doc<'a> {
    /// Nothing.
    Nil,
    /// Verbatim text (may contain newlines only for verbatim literals/comments).
    Text(Cow<'a, str>),
    /// A space when flat, a newline when broken.
    Line,
    /// Nothing when flat, a newline when broken.
    SoftLine,
    /// Always a newline; a group containing one cannot be flat.
    HardLine,
    /// Zero width; a group containing one cannot be flat.
    BreakParent,
    /// `(broken, flat)`: chooses by the enclosing group's mode.
    IfBreak(Box<Doc<'a>>, Box<Doc<'a>>),
    /// Indents the content by [`INDENT`] after each newline.
    Nest(Box<Doc<'a>>),
    /// Flat if it fits in the remaining width, else broken.
    Group(Box<Doc<'a>>),
    /// Forces flat mode on the content.
    Flat(Box<Doc<'a>>),
    /// In broken mode: the first layout if its first line fits, else the second.
    /// In flat mode: the second, flat.
    Overflow(Box<Doc<'a>>, Box<Doc<'a>>),
    /// A sequence.
    Concat(Vec<Doc<'a>>),
    /// A document used in more than one place (the layouts of [`Doc::Overflow`]); sharing
    /// keeps nested alternatives linear in size.
    Shared(std::rc::Rc<Doc<'a>>),
}

/// Text.
pub fn text<'a>(s: impl Into<Cow<'a, str>>) -> Doc<'a> {
    Doc::Text(s.into())
}

/// A sequence.
pub fn concat(v: Vec<Doc<'_>>) -> Doc<'_> {
    Doc::Concat(v)
}

/// A group.
pub fn group(d: Doc<'_>) -> Doc<'_> {
    Doc::Group(Box::new(d))
}

/// Nested by one indentation step.
pub fn nest(d: Doc<'_>) -> Doc<'_> {
    Doc::Nest(Box::new(d))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// Whether `d` contains a forced break (a hard line or break-parent marker), which makes
/// every group around it break. Memoised per group in `cache` by address.
fn forces_break<'d>(
    d: &'d Doc<'d>,
    cache: &mut std::collections::HashMap<*const Doc<'d>, bool>,
) -> bool {
    match d {
        Doc::HardLine | Doc::BreakParent => true,
        Doc::Nil | Doc::Text(_) | Doc::Line | Doc::SoftLine => false,
        Doc::IfBreak(b, f) => forces_break(b, cache) | forces_break(f, cache),
        Doc::Nest(x) | Doc::Flat(x) => crate::parser::with_stack(|| forces_break(x, cache)),
        Doc::Shared(x) => {
            let key = std::rc::Rc::as_ptr(x);
            if let Some(&v) = cache.get(&key) {
                return v;
            }
            let v = crate::parser::with_stack(|| forces_break(x, cache));
            cache.insert(key, v);
            v
        }
        Doc::Group(x) => {
            let key = d as *const Doc<'d>;
            if let Some(&v) = cache.get(&key) {
                return v;
            }
            let v = forces_break(x, cache);
            cache.insert(key, v);
            v
        }
        Doc::Overflow(o, fb) => forces_break(o, cache) | forces_break(fb, cache),
        Doc::Concat(v) => v.iter().fold(false, |acc, x| forces_break(x, cache) | acc),
    }
}

/// Renders `doc` for a line width of `width` columns.
pub fn render(doc: &Doc<'_>, width: usize) -> String {
    let mut cache = std::collections::HashMap::new();
    forces_break(doc, &mut cache);
    let mut out = String::new();
    let mut col = 0usize;
    let mut pending_indent: Option<usize> = None;
    let mut stack: Vec<(usize, Mode, &Doc<'_>)> = vec![(0, Mode::Break, doc)];
    while let Some((ind, mode, d)) = stack.pop() {
        match d {
            Doc::Nil | Doc::BreakParent => {}
            Doc::Text(s) => {
                if s.is_empty() {
                    continue;
                }
                if let Some(i) = pending_indent.take() {
                    out.extend(std::iter::repeat_n(' ', i));
                    col = i;
                }
                out.push_str(s);
                match s.rfind('\n') {
                    Some(p) => col = s[p + 1..].chars().count(),
                    None => col += s.chars().count(),
                }
            }
            Doc::Line | Doc::SoftLine if mode == Mode::Flat => {
                if matches!(d, Doc::Line) {
                    if let Some(i) = pending_indent.take() {
                        out.extend(std::iter::repeat_n(' ', i));
                        col = i;
                    }
                    out.push(' ');
                    col += 1;
                }
            }
            Doc::Line | Doc::SoftLine | Doc::HardLine => {
                out.push('\n');
                col = 0;
                pending_indent = Some(ind);
            }
            Doc::IfBreak(b, f) => stack.push((ind, mode, if mode == Mode::Break { b } else { f })),
            Doc::Nest(x) => stack.push((ind + INDENT, mode, x)),
            Doc::Flat(x) => stack.push((ind, Mode::Flat, x)),
            Doc::Group(x) => {
                if mode == Mode::Flat {
                    stack.push((ind, Mode::Flat, x));
                } else if cache.get(&(d as *const Doc<'_>)).copied().unwrap_or(false) {
                    stack.push((ind, Mode::Break, x));
                } else {
                    let start = pending_indent.unwrap_or(col);
                    let flat = fits(
                        width.saturating_sub(start) as isize,
                        (ind, Mode::Flat, x),
                        &stack,
                        false,
                    );
                    stack.push((ind, if flat { Mode::Flat } else { Mode::Break }, x));
                }
            }
            Doc::Overflow(o, fb) => {
                if mode == Mode::Flat {
                    stack.push((ind, Mode::Flat, fb));
                } else {
                    let start = pending_indent.unwrap_or(col);
                    let ok = fits(
                        width.saturating_sub(start) as isize,
                        (ind, Mode::Break, o),
                        &stack,
                        true,
                    );
                    stack.push((ind, Mode::Break, if ok { o } else { fb }));
                }
            }
            Doc::Concat(v) => {
                for x in v.iter().rev() {
                    stack.push((ind, mode, x));
                }
            }
            Doc::Shared(x) => stack.push((ind, mode, x)),
        }
    }
    out
}

/// Whether `first` (then the rest of the stack, in its own modes) fits in `rem` columns
/// up to the first line break. With `first_line`, `first` is measured in broken mode and
/// must not contain a forced break before its first line ends.
fn fits<'d>(
    mut rem: isize,
    first: (usize, Mode, &'d Doc<'d>),
    rest: &[(usize, Mode, &'d Doc<'d>)],
    first_line: bool,
) -> bool {
    let mut cmds: Vec<(Mode, &Doc<'_>)> = vec![(first.1, first.2)];
    let mut rest_i = rest.len();
    let mut in_rest = false;
    let mut width_done = false;
    loop {
        let Some((mode, d)) = cmds.pop() else {
            if rest_i == 0 || width_done {
                return true;
            }
            rest_i -= 1;
            in_rest = true;
            cmds.push((rest[rest_i].1, rest[rest_i].2));
            continue;
        };
        match d {
            Doc::Nil => {}
            Doc::Text(s) => {
                if width_done {
                    continue;
                }
                if let Some(p) = s.find('\n') {
                    // The line ends inside this text: the width is settled, but the rest
                    // of the candidate must still be free of forced breaks.
                    rem -= s[..p].chars().count() as isize;
                    if rem < 0 {
                        return false;
                    }
                    if in_rest {
                        return true;
                    }
                    width_done = true;
                    continue;
                }
                rem -= s.chars().count() as isize;
                if rem < 0 {
                    return false;
                }
            }
            Doc::Line => match mode {
                Mode::Flat if width_done => {}
                Mode::Flat => {
                    rem -= 1;
                    if rem < 0 {
                        return false;
                    }
                }
                Mode::Break => return true,
            },
            Doc::SoftLine => {
                if mode == Mode::Break {
                    return true;
                }
            }
            Doc::HardLine => {
                // A forced break inside the candidate means it cannot be flat; in the
                // rest (or a broken candidate) it just ends the line.
                return in_rest || (mode == Mode::Break && first_line);
            }
            Doc::BreakParent => {
                if !in_rest && mode == Mode::Flat {
                    return false;
                }
            }
            Doc::IfBreak(b, f) => cmds.push((mode, if mode == Mode::Break { b } else { f })),
            Doc::Nest(x) | Doc::Group(x) => cmds.push((mode, x)),
            Doc::Flat(x) => cmds.push((Mode::Flat, x)),
            Doc::Overflow(o, fb) => cmds.push((mode, if mode == Mode::Flat { fb } else { o })),
            Doc::Concat(v) => {
                for x in v.iter().rev() {
                    cmds.push((mode, x));
                }
            }
            Doc::Shared(x) => cmds.push((mode, x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&'static str]) -> Doc<'static> {
        let mut v = vec![text("["), Doc::SoftLine];
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                v.push(text(","));
                v.push(Doc::Line);
            }
            v.push(text(*it));
        }
        group(concat(vec![
            text("["),
            nest(concat(vec![Doc::SoftLine, concat(v.split_off(2))])),
            Doc::IfBreak(Box::new(text(",")), Box::new(Doc::Nil)),
            Doc::SoftLine,
            text("]"),
        ]))
    }

    #[test]
    fn group_flat_or_broken() {
        assert_eq!(render(&list(&["a", "b"]), 100), "[a, b]");
        assert_eq!(
            render(&list(&["aaaa", "bbbb"]), 8),
            "[\n    aaaa,\n    bbbb,\n]"
        );
    }

    #[test]
    fn hard_line_breaks_group_and_no_trailing_spaces() {
        let d = group(concat(vec![
            text("{"),
            nest(concat(vec![
                Doc::Line,
                text("x"),
                Doc::HardLine,
                Doc::HardLine,
                text("y"),
            ])),
            Doc::Line,
            text("}"),
        ]));
        assert_eq!(render(&d, 100), "{\n    x\n\n    y\n}");
    }
}
